//! Buy-till-you-die models against independent truth on the CDNOW data (Fader & Hardie):
//! the published parameters and checks, and `lifetimes` 0.11.3 (fits and per-customer
//! predictions). The data lives in `/work/shared/data` (the repository's `../shared/data`);
//! see its README.md.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::PathBuf;

use prossimo_analytics::btyd::{
    BgNbd, ClvOptions, CountData, CountModel, FitOptions, GammaGamma, ModifiedBgNbd, Optimizer,
    ParetoNbd, PurchaseHistory, SpendData, customer_lifetime_value, holdout_report,
};
use prossimo_analytics::summary::{calibration_and_holdout, summarize};
use prossimo_analytics::{DAY_MS, Period, Purchase};

fn data_path(file: &str) -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    let path = dir.join(file);
    assert!(
        path.exists(),
        "reference data {} is missing: the CDNOW files belong in {} (see shared/data/README.md)",
        path.display(),
        dir.display()
    );
    path
}

/// A CSV file as header → column index and rows of numbers.
fn read_csv(file: &str) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut reader = csv::Reader::from_path(data_path(file)).expect("open CSV");
    let header = reader
        .headers()
        .expect("CSV header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|record| {
            record
                .expect("CSV record")
                .iter()
                .map(|field| field.parse::<f64>().expect("numeric field"))
                .collect()
        })
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("column {name} not in {header:?}"))
}

/// The papers' 2,357-customer calibration summary: (ID, x, tₓ, T, z̄) in weeks.
struct SummaryRow {
    id: i64,
    history: PurchaseHistory,
    monetary_value: f64,
}

fn cdnow_summary() -> Vec<SummaryRow> {
    let (header, rows) = read_csv("cdnow_customers_summary_with_transactions.csv");
    assert_eq!(header, ["ID", "x", "t_x", "T", "zbar"]);
    rows.iter()
        .map(|row| SummaryRow {
            id: row[0] as i64,
            history: PurchaseHistory {
                frequency: row[1],
                recency: row[2],
                t: row[3],
            },
            monetary_value: row[4],
        })
        .collect()
}

fn count_data() -> CountData {
    CountData::from_histories(cdnow_summary().iter().map(|row| row.history)).expect("valid summary")
}

fn spend_data() -> SpendData {
    let rows = cdnow_summary();
    SpendData::from_weighted(
        rows.iter()
            .filter(|row| row.history.frequency > 0.0)
            .map(|row| (row.history.frequency, row.monetary_value, 1.0)),
    )
    .expect("valid spend data")
}

fn assert_relative(actual: f64, expected: f64, tolerance: f64, what: &str) {
    let error = (actual / expected - 1.0).abs();
    assert!(
        error <= tolerance,
        "{what}: {actual} vs {expected} (relative error {error:.2e} > {tolerance:.0e})"
    );
}

fn assert_absolute(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} vs {expected} (difference {:.2e} > {tolerance:.0e})",
        (actual - expected).abs()
    );
}

// ----------------------------------------------------------------------------- fits

#[test]
fn bgnbd_fit_reproduces_the_maximum_likelihood_of_lifetimes_and_the_paper() {
    let fit = BgNbd::fit(&count_data(), &FitOptions::default()).expect("fit");
    assert!(fit.report.converged, "{:?}", fit.report);
    assert_eq!(fit.report.optimizer, Optimizer::Lbfgs);
    assert_eq!(fit.report.customers, 2357.0);
    let BgNbd { r, alpha, a, b } = fit.model;
    // lifetimes 0.11.3, unpenalised (shared/data/README.md, 6 s.f.).
    assert_relative(r, 0.242593, 1e-4, "r");
    assert_relative(alpha, 4.41353, 1e-4, "alpha");
    assert_relative(a, 0.792886, 1e-4, "a");
    assert_relative(b, 2.42575, 1e-4, "b");
    assert_absolute(fit.report.log_likelihood, -9582.4256, 1e-4, "LL");
    // Fader, Hardie & Lee (2005), table in section 5, rounded to 3 decimals.
    assert_absolute(r, 0.243, 5e-4, "published r");
    assert_absolute(alpha, 4.414, 5e-4, "published alpha");
    assert_absolute(a, 0.793, 5e-4, "published a");
    assert_absolute(b, 2.426, 5e-4, "published b");
    assert_absolute(fit.report.log_likelihood, -9582.4, 0.05, "published LL");
}

#[test]
fn mbgnbd_fit_reproduces_lifetimes() {
    let fit = ModifiedBgNbd::fit(&count_data(), &FitOptions::default()).expect("fit");
    assert!(fit.report.converged, "{:?}", fit.report);
    let ModifiedBgNbd { r, alpha, a, b } = fit.model;
    assert_relative(r, 0.524838, 1e-4, "r");
    assert_relative(alpha, 6.18299, 1e-4, "alpha");
    assert_relative(a, 0.891356, 1e-4, "a");
    assert_relative(b, 1.61400, 1e-4, "b");
    assert_absolute(fit.report.log_likelihood, -9582.1327, 1e-4, "LL");
}

#[test]
fn pareto_nbd_fit_reaches_the_maximum_likelihood() {
    let fit = ParetoNbd::fit(&count_data(), &FitOptions::default()).expect("fit");
    assert!(fit.report.converged, "{:?}", fit.report);
    // The surface is flat (shared/peers/README.md pitfall 3): compare the LL tightly and
    // the parameters loosely, against lifetimes and the paper (r=0.55, α=10.58, s=0.61,
    // β=11.67, LL −9595.0).
    assert_absolute(fit.report.log_likelihood, -9594.9739, 1e-4, "LL");
    let ParetoNbd { r, alpha, s, beta } = fit.model;
    assert_relative(r, 0.553282, 1e-3, "r");
    assert_relative(alpha, 10.5778, 1e-3, "alpha");
    assert_relative(s, 0.606171, 1e-3, "s");
    assert_relative(beta, 11.6669, 1e-3, "beta");
    assert_absolute(r, 0.55, 0.005, "published r");
    assert_absolute(alpha, 10.58, 0.005, "published alpha");
    assert_absolute(s, 0.61, 0.005, "published s");
    assert_absolute(beta, 11.67, 0.005, "published beta");
}

#[test]
fn gamma_gamma_fit_reproduces_lifetimes_and_the_note() {
    let data = spend_data();
    assert_eq!(data.customers(), 946.0);
    let fit = GammaGamma::fit(&data, &FitOptions::default()).expect("fit");
    assert!(fit.report.converged, "{:?}", fit.report);
    let GammaGamma { p, q, v } = fit.model;
    assert_relative(p, 6.24880, 1e-4, "p");
    assert_relative(q, 3.74459, 1e-4, "q");
    assert_relative(v, 15.4477, 1e-4, "v");
    assert_absolute(fit.report.log_likelihood, -4055.9232, 1e-4, "LL");
    // Fader & Hardie note 025: p = 6.25, q = 3.74, γ = 15.44 (a rounding of 15.4477).
    assert_absolute(p, 6.25, 0.005, "published p");
    assert_absolute(q, 3.74, 0.005, "published q");
    assert_absolute(v, 15.44, 0.01, "published v");
}

#[test]
fn a_penalty_shrinks_the_parameters_and_zero_gives_the_mle() {
    let data = count_data();
    let plain = BgNbd::fit(&data, &FitOptions::default())
        .expect("fit")
        .model;
    let options = FitOptions {
        penalizer_coef: 0.1,
        ..FitOptions::default()
    };
    let penalised = BgNbd::fit(&data, &options).expect("fit");
    assert!(penalised.report.converged);
    assert!(penalised.report.log_likelihood < plain.log_likelihood(&data));
    // The penalty is on the scaled parameters: a and b (unscaled, both > 1 or near it)
    // must come down.
    assert!(penalised.model.b < plain.b);
}

// ----------------------------------------------------------------------------- predictions

/// lifetimes 0.11.3's fitted parameters on the summary, to full precision: `params` of each
/// model in cdnow_fits.json written by shared/peers/cdnow_fits.py (run in the peers venv;
/// its cdnow_predictions_all.csv equals cdnow_sample_lifetimes_predictions.csv to 1e-11).
const LIFETIMES_BGNBD: BgNbd = BgNbd {
    r: 0.2425929282798216,
    alpha: 4.413532265271803,
    a: 0.7928859664405851,
    b: 2.42575238262545,
};
const LIFETIMES_PARETO: ParetoNbd = ParetoNbd {
    r: 0.5532815861528053,
    alpha: 10.577753122778805,
    s: 0.6061714462872277,
    beta: 11.666906530603386,
};
const LIFETIMES_MBGNBD: ModifiedBgNbd = ModifiedBgNbd {
    r: 0.5248377255677019,
    alpha: 6.182988479134203,
    a: 0.8913562809310627,
    b: 1.614000025671838,
};
const LIFETIMES_GAMMA_GAMMA: GammaGamma = GammaGamma {
    p: 6.248802496074264,
    q: 3.744588460923312,
    v: 15.447748064932831,
};

fn check_predictions<M: CountModel>(model: &M, prefix: &str) {
    let (header, rows) = read_csv("cdnow_sample_lifetimes_predictions.csv");
    let [frequency, recency, age, monetary, e39, palive, clv12] = [
        "frequency".to_string(),
        "recency".to_string(),
        "T".to_string(),
        "monetary_value".to_string(),
        format!("{prefix}_e39"),
        format!("{prefix}_palive"),
        format!("{prefix}_clv12"),
    ]
    .map(|name| column(&header, &name));
    assert_eq!(rows.len(), 2357);
    let clv_options = ClvOptions::lifetimes_default(Period::WEEK);
    assert_eq!(clv_options.periods_per_month, 4.345);
    for row in &rows {
        let history = PurchaseHistory {
            frequency: row[frequency],
            recency: row[recency],
            t: row[age],
        };
        let id = row[0];
        let expected = model.conditional_expected_purchases(39.0, &history);
        assert_relative(
            expected,
            row[e39],
            1e-6,
            &format!("{prefix} E[X(39)] of {id}"),
        );
        let alive = model.probability_alive(&history);
        assert_relative(
            alive,
            row[palive],
            1e-6,
            &format!("{prefix} P(alive) of {id}"),
        );
        let clv = customer_lifetime_value(
            model,
            &LIFETIMES_GAMMA_GAMMA,
            &history,
            row[monetary],
            &clv_options,
        );
        assert_relative(clv, row[clv12], 1e-6, &format!("{prefix} CLV of {id}"));
    }
}

#[test]
fn bgnbd_predictions_match_lifetimes_for_every_customer() {
    check_predictions(&LIFETIMES_BGNBD, "bgnbd");
}

#[test]
fn pareto_nbd_predictions_match_lifetimes_for_every_customer() {
    check_predictions(&LIFETIMES_PARETO, "pareto");
}

#[test]
fn mbgnbd_predictions_match_lifetimes_for_every_customer() {
    check_predictions(&LIFETIMES_MBGNBD, "mbgnbd");
}

#[test]
fn log_likelihoods_at_lifetimes_parameters_match_lifetimes_in_weeks() {
    // `loglik` in cdnow_fits.json: lifetimes' objective converted back to the LL in weeks.
    let data = count_data();
    assert_absolute(
        LIFETIMES_BGNBD.log_likelihood(&data),
        -9582.425560567366,
        1e-6,
        "BG/NBD",
    );
    assert_absolute(
        LIFETIMES_MBGNBD.log_likelihood(&data),
        -9582.13268489992,
        1e-6,
        "MBG/NBD",
    );
    assert_absolute(
        LIFETIMES_PARETO.log_likelihood(&data),
        -9594.97392991023,
        1e-6,
        "Pareto/NBD",
    );
    let spend = spend_data();
    assert_absolute(
        LIFETIMES_GAMMA_GAMMA.log_likelihood(&spend),
        -4055.9232435028653,
        1e-6,
        "GG",
    );
}

#[test]
fn bgnbd_matches_hardies_spreadsheet_and_lifetimes() {
    // Hardie's spreadsheet (4 decimals) and lifetimes' own values (cdnow_customers_anchor.json)
    // at lifetimes' fitted parameters; the spreadsheet agrees with both to 4e-4.
    let times = [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0];
    let spreadsheet = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576];
    let lifetimes = [
        0.007816071495941226,
        0.05318473689562826,
        0.15063191917331856,
        1.040494243413379,
        1.0437371658705277,
        1.8579717035277747,
    ];
    for ((t, sheet), reference) in times.into_iter().zip(spreadsheet).zip(lifetimes) {
        let actual = LIFETIMES_BGNBD.expected_purchases(t);
        assert_absolute(actual, sheet, 5e-4, &format!("E[X({t})] vs spreadsheet"));
        assert_relative(actual, reference, 1e-9, &format!("E[X({t})] vs lifetimes"));
    }
    let customer_1 = PurchaseHistory {
        frequency: 2.0,
        recency: 30.43,
        t: 38.86,
    };
    let expected = LIFETIMES_BGNBD.conditional_expected_purchases(39.0, &customer_1);
    assert_absolute(expected, 1.226, 5e-4, "E[Y(39) | 2, 30.43, 38.86]");
    assert_relative(expected, 1.2259104241744259, 1e-9, "vs lifetimes");
}

#[test]
fn pareto_nbd_matches_the_btyd_r_package() {
    let heavy_buyer = PurchaseHistory {
        frequency: 26.0,
        recency: 30.86,
        t: 31.0,
    };
    let expected = LIFETIMES_PARETO.conditional_expected_purchases(52.0, &heavy_buyer);
    assert_absolute(expected, 25.46, 5e-3, "E[Y(52) | 26, 30.86, 31]");
    assert_relative(expected, 25.45680049702658, 1e-9, "vs lifetimes");
}

#[test]
fn gamma_gamma_matches_hardies_sheet_at_the_published_parameters() {
    // Note 025's spreadsheet, first ten customers of the summary.
    let published = GammaGamma {
        p: 6.25,
        q: 3.74,
        v: 15.44,
    };
    let sheet = [
        24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17,
    ];
    for (row, expected) in cdnow_summary().iter().zip(sheet) {
        let actual =
            published.conditional_expected_average_spend(row.history.frequency, row.monetary_value);
        // The sheet's own γ = 15.4477 moves the population mean 35.17 → 35.22 (README).
        assert_absolute(actual, expected, 0.06, &format!("E[spend] of {}", row.id));
    }
}

#[test]
fn bgnbd_purchase_count_distribution_sums_to_one_and_has_the_expected_mean() {
    for t in [1.0, 39.0, 78.0] {
        let probabilities: Vec<f64> = (0..1000)
            .map(|n| LIFETIMES_BGNBD.probability_of_purchases(t, n))
            .collect();
        let total: f64 = probabilities.iter().sum();
        let mean: f64 = probabilities
            .iter()
            .enumerate()
            .map(|(n, p)| n as f64 * p)
            .sum();
        assert_absolute(total, 1.0, 1e-9, &format!("Σ P(X({t}) = n)"));
        assert_relative(
            mean,
            LIFETIMES_BGNBD.expected_purchases(t),
            1e-6,
            "mean of X(t)",
        );
    }
}

// ----------------------------------------------------------------------------- summary

/// Unix milliseconds of midnight UTC of a `YYYYMMDD` date (Hinnant's days_from_civil).
fn unix_ms(date: &str) -> i64 {
    let number: i64 = date.parse().expect("YYYYMMDD");
    let (year, month, day) = (number / 10_000, number / 100 % 100, number % 100);
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era - 719_468) * DAY_MS
}

/// CDNOW_sample.txt: `master_id sample_id date cds dollars`; the customer is the sample id.
fn sample_purchases() -> Vec<Purchase> {
    let text = std::fs::read_to_string(data_path("CDNOW_sample.txt")).expect("read sample");
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Purchase {
                customer: fields[1].parse().expect("sample id"),
                at_ms: unix_ms(fields[2]),
                amount: fields[4].parse().expect("dollar value"),
            }
        })
        .collect()
}

const CALIBRATION_END: &str = "19970930";
const OBSERVATION_END: &str = "19980630";

#[test]
fn dates_convert_to_unix_time() {
    assert_eq!(unix_ms("19700101"), 0);
    assert_eq!(unix_ms("19970101"), 852_076_800_000);
    assert_eq!(unix_ms("20000301"), 951_868_800_000);
}

#[test]
fn summarize_rebuilds_the_papers_summary_from_the_transactions() {
    let purchases = sample_purchases();
    assert_eq!(purchases.len(), 6919);
    let summaries = summarize(&purchases, unix_ms(CALIBRATION_END), Period::WEEK).expect("summary");
    let shipped = cdnow_summary();
    assert_eq!(summaries.len(), shipped.len());
    for (built, paper) in summaries.iter().zip(&shipped) {
        assert_eq!(built.customer, paper.id);
        assert_eq!(
            built.frequency, paper.history.frequency,
            "x of {}",
            paper.id
        );
        // The shipped file rounds weeks to 0.01 (shared/peers/README.md pitfall 6).
        assert_absolute(built.recency, paper.history.recency, 0.0043, "recency");
        assert_absolute(built.t, paper.history.t, 0.0043, "T");
        assert_absolute(
            built.monetary_value,
            paper.monetary_value,
            0.005 + 1e-9,
            "spend",
        );
        assert_eq!(built.purchase_days, built.frequency as u32 + 1);
        assert!(built.first_ms <= built.last_ms && built.last_ms <= unix_ms(CALIBRATION_END));
    }
    // Every customer's first purchase is in 1997's first quarter, so T ≥ 26 weeks.
    assert!(summaries.iter().all(|s| s.t >= 26.0 && s.t <= 39.0));
}

#[test]
fn calibration_and_holdout_matches_the_papers_split() {
    let purchases = sample_purchases();
    let rows = calibration_and_holdout(
        &purchases,
        unix_ms(CALIBRATION_END),
        unix_ms(OBSERVATION_END),
        Period::WEEK,
    )
    .expect("split");
    assert_eq!(rows.len(), 2357);
    let calibration =
        summarize(&purchases, unix_ms(CALIBRATION_END), Period::WEEK).expect("summary");
    for (row, summary) in rows.iter().zip(&calibration) {
        assert_eq!(&row.calibration, summary);
        assert_eq!(row.holdout_duration, 39.0);
    }
    // Holdout repeat purchase days, counted independently from the raw log.
    let cal_end = unix_ms(CALIBRATION_END);
    let obs_end = unix_ms(OBSERVATION_END);
    let mut holdout_days: Vec<(i64, i64)> = purchases
        .iter()
        .filter(|p| p.at_ms > cal_end && p.at_ms <= obs_end)
        .map(|p| (p.customer, p.at_ms / DAY_MS))
        .collect();
    holdout_days.sort_unstable();
    holdout_days.dedup();
    let total: f64 = rows.iter().map(|row| row.holdout_frequency).sum();
    assert_eq!(total, holdout_days.len() as f64);
}

/// lifetimes 0.11.3's BG/NBD fit on the summary it builds from CDNOW_sample.txt
/// (`sample_built` in cdnow_fits.json).
const LIFETIMES_BGNBD_SAMPLE_BUILT: BgNbd = BgNbd {
    r: 0.24259454342106748,
    alpha: 4.413602716077385,
    a: 0.7929218333479277,
    b: 2.425905728721954,
};

#[test]
fn bgnbd_holdout_forecast_by_calibration_frequency() {
    let purchases = sample_purchases();
    let rows = calibration_and_holdout(
        &purchases,
        unix_ms(CALIBRATION_END),
        unix_ms(OBSERVATION_END),
        Period::WEEK,
    )
    .expect("split");
    let data = CountData::from_histories(
        rows.iter()
            .map(|row| PurchaseHistory::from(&row.calibration)),
    )
    .expect("data");
    let fit = BgNbd::fit(&data, &FitOptions::default()).expect("fit");
    assert!(fit.report.converged);
    let BgNbd { r, alpha, a, b } = fit.model;
    let reference = LIFETIMES_BGNBD_SAMPLE_BUILT;
    for (ours, theirs) in [
        (r, reference.r),
        (alpha, reference.alpha),
        (a, reference.a),
        (b, reference.b),
    ] {
        assert_relative(ours, theirs, 1e-4, "BG/NBD on the rebuilt summary");
    }
    let report = holdout_report(&fit.model, &rows, 7);
    eprintln!("{}", serde_json::to_string_pretty(&report).expect("json"));
    assert_eq!(report.model, "bgnbd");
    assert_eq!(report.customers, 2357);
    let bucketed: usize = report.buckets.iter().map(|b| b.customers).sum();
    assert_eq!(bucketed, 2357);
    let labels: Vec<(u32, bool)> = report
        .buckets
        .iter()
        .map(|b| (b.calibration_frequency, b.open_ended))
        .collect();
    assert_eq!(labels, (0..8).map(|k| (k, k == 7)).collect::<Vec<_>>());
    // The raw log has 1,959 holdout purchases on 1,882 customer-days (counted independently
    // in calibration_and_holdout_matches_the_papers_split).
    assert_eq!(report.actual_total, 1882.0);
    // The model forecasts 1,653 (lifetimes' own per-customer E[Y(39)] sum to 1,653.4 on the
    // shipped summary): 12% under. Not "within a few percent": on this data the BG/NBD
    // under-forecasts the holdout, most visibly for customers with 1 or 2 calibration
    // repeat purchases, as in figure 4 of Fader, Hardie & Lee (2005).
    assert_relative(
        report.predicted_total,
        1653.4,
        1e-3,
        "predicted holdout purchases",
    );
    let error = report.predicted_total / report.actual_total - 1.0;
    assert!((-0.15..0.0).contains(&error), "forecast error {error}");
    // Conditional expectations rise with calibration frequency, as the actuals do, and each
    // bucket's mean is within 0.4 purchases of the actual.
    for pair in report.buckets.windows(2) {
        assert!(pair[1].predicted_mean > pair[0].predicted_mean);
        assert!(pair[1].actual_mean > pair[0].actual_mean);
    }
    for bucket in &report.buckets {
        assert_absolute(
            bucket.predicted_mean,
            bucket.actual_mean,
            0.4,
            "bucket mean",
        );
    }
}
