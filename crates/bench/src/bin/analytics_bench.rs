//! Analytics benchmark (issue #3, BENCHMARKS.md): the customer-analytics pipeline of
//! `prossimo-analytics` on the peers' seeded synthetic log (`gen_synth.py`, 1,000,000
//! customers / 10,370,334 purchases), timed stage by stage so each stage can be put next to
//! the peers' (`scale_bench.py`: DuckDB SQL RFM, `lifetimes`).
//!
//! Loading the CSV into `Vec<Purchase>` is timed once, apart (the peers' `read_parquet` is
//! reported apart too). Then, `--reps` times each (median reported, every rep kept):
//!
//! - (a)  `summary::summarize` in days, observation end 2024-12-31 (lifetimes `freq='D'`),
//!   checked against the peers README's exact column means (fails loudly otherwise);
//! - (a') `rfm::score_rfm` on top of the summaries (quintile scores and segments);
//! - (b)  BG/NBD fit (`CountData::from_summaries` + `BgNbd::fit`, days, as scale_bench.py's
//!   `BetaGeoFitter`) and Gamma-Gamma fit (`SpendData::from_summaries` + `GammaGamma::fit`;
//!   the peer does not fit Gamma-Gamma, so it is reported apart);
//! - (c)  what scale_bench.py's lifetimes stage scores: E[X(30 days)] + P(alive) for every
//!   customer; and apart, `score_customers` with Gamma-Gamma and 12-month CLV.
//!
//! Like the peers' `benchutil.py`, each timed region records the CPU seconds other processes
//! burned during it (`foreign_cpu_s`, /proc/stat minus our own /proc/self/stat), and before
//! each rep it waits (up to `--max-wait-idle` s) until the machine is under 8% busy for
//! 3 one-second samples, unless `--no-wait-idle`. Threads: rayon's default (all cores),
//! `RAYON_NUM_THREADS=1` for one.
//!
//! Prints progress on stderr and one JSON line with everything on stdout.
//!
//!   cargo run --release -p prossimo-bench --bin analytics_bench -- --csv peer-results/synth.csv \
//!       [--peer-json peer-results/scale_bench.json] [--rfm-csv peer-results/rfm.csv]
// A benchmark harness run by a developer: a failed step ends the run with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use prossimo_analytics::btyd::BgNbd;
use prossimo_analytics::btyd::{
    ClvOptions, CountData, CountModel, FitOptions, GammaGamma, PurchaseHistory, ScoreOptions,
    SpendData, score_customers,
};
use prossimo_analytics::{CustomerSummary, DAY_MS, Period, Purchase, rfm, summary};
use rayon::prelude::*;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    about = "Times RFM summary, BG/NBD + Gamma-Gamma fits and scoring on the peers' synthetic log"
)]
struct Args {
    /// The peers' synthetic log as CSV (customer_id,order_id,timestamp,revenue,currency).
    #[arg(long, default_value = "peer-results/synth.csv")]
    csv: PathBuf,
    /// Timed repetitions of every stage (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// scale_bench.py's output, to compare parameters and predictions with this run's lifetimes.
    #[arg(long)]
    peer_json: Option<PathBuf>,
    /// scale_bench.py's --rfm-csv table, for a per-customer cross-check of the summaries.
    #[arg(long)]
    rfm_csv: Option<PathBuf>,
    /// Do not wait for an idle machine before each rep (foreign CPU is still recorded).
    #[arg(long)]
    no_wait_idle: bool,
    /// Give up waiting for an idle machine after this many seconds and measure anyway.
    #[arg(long, default_value_t = 900.0)]
    max_wait_idle: f64,
    /// Skip the check of the column means against the peers README (for a prefix or another
    /// log; the full 1M log must pass it).
    #[arg(long)]
    no_check: bool,
    /// Also write the JSON result to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Observation end of the peers: 2024-12-31 (lifetimes truncates it to the day).
const OBSERVATION_END: &str = "2024-12-31T23:59:59Z";
/// The peers README's exact column means for the 1M log, seed 20240601.
const EXPECTED_MEANS: [(&str, f64); 4] = [
    ("frequency", 9.095361),
    ("recency", 282.107641),
    ("T", 548.070093),
    ("monetary_value", 34.0292154443),
];
/// lifetimes' BG/NBD on this log, from the peers README (days).
const README_LIFETIMES: [f64; 4] = [1.02614, 29.0201, 0.806206, 6.94056];
const README_LIFETIMES_LL: f64 = -40_719_044.87;

// ------------------------------------------------------------------ measuring (as benchutil.py)

fn clock_ticks() -> f64 {
    100.0 // USER_HZ on Linux; /proc reports in these units
}

/// Busy CPU seconds of the whole machine (user nice system irq softirq steal).
fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    (v.len() >= 8).then(|| (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / clock_ticks())
}

/// This process's CPU seconds, all threads.
fn own_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        f.get(i - 3)
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (get(14) + get(15)) / clock_ticks()
}

#[derive(Clone, Copy)]
struct Sample {
    wall_s: f64,
    own_cpu_s: f64,
    foreign_cpu_s: Option<f64>,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Sample) {
    let (b0, o0, t0) = (machine_busy_s(), own_cpu_s(), Instant::now());
    let out = f();
    let wall_s = t0.elapsed().as_secs_f64();
    let own = own_cpu_s() - o0;
    let foreign = match (b0, machine_busy_s()) {
        (Some(a), Some(b)) => Some((b - a - own).max(0.0)),
        _ => None,
    };
    (
        out,
        Sample {
            wall_s,
            own_cpu_s: own,
            foreign_cpu_s: foreign,
        },
    )
}

fn busy_fraction() -> Option<f64> {
    let (b0, t0) = (machine_busy_s()?, Instant::now());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    Some((machine_busy_s()? - b0) / (t0.elapsed().as_secs_f64() * cores))
}

/// Wait until 3 consecutive 1 s samples show < 8% of all cores busy, at most `max_s`.
fn wait_quiet(enabled: bool, max_s: f64) -> Value {
    if !enabled {
        return json!({"skipped": true});
    }
    let t0 = Instant::now();
    let (mut ok, mut last) = (0, 0.0);
    let mut told = false;
    while t0.elapsed().as_secs_f64() < max_s {
        let Some(b) = busy_fraction() else {
            return json!({"skipped": true});
        };
        last = b;
        ok = if b < 0.08 { ok + 1 } else { 0 };
        if ok >= 3 {
            return json!({"waited_s": round3(t0.elapsed().as_secs_f64()), "busy_fraction": round3(b), "quiet": true});
        }
        if !told && b >= 0.08 {
            eprintln!(
                "[analytics_bench] machine busy ({:.0}%), waiting (--no-wait-idle skips this)...",
                100.0 * b
            );
            told = true;
        }
    }
    eprintln!("[analytics_bench] machine still busy after {max_s:.0}s, measuring anyway");
    json!({"waited_s": round3(t0.elapsed().as_secs_f64()), "busy_fraction": round3(last), "quiet": false})
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Per stage: every rep's samples.
#[derive(Default)]
struct Stages(Vec<(&'static str, Vec<Sample>)>);

impl Stages {
    fn push(&mut self, name: &'static str, s: Sample) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(s),
            None => self.0.push((name, vec![s])),
        }
    }
    fn median(&self, name: &str) -> f64 {
        let v = &self.0.iter().find(|(n, _)| *n == name).expect("stage").1;
        median(v.iter().map(|s| s.wall_s).collect())
    }
    fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (name, v) in &self.0 {
            let fc: Vec<f64> = v.iter().filter_map(|s| s.foreign_cpu_s).collect();
            m.insert(
                name.to_string(),
                json!({
                    "median_s": median(v.iter().map(|s| s.wall_s).collect()),
                    "wall_s": v.iter().map(|s| s.wall_s).collect::<Vec<_>>(),
                    "own_cpu_s": v.iter().map(|s| s.own_cpu_s).collect::<Vec<_>>(),
                    "foreign_cpu_s": fc,
                    "n_contaminated": v.iter().filter(|s| s.foreign_cpu_s.is_some_and(|f| f > (0.05 * s.wall_s).max(0.03))).count(),
                }),
            );
        }
        Value::Object(m)
    }
}

// ------------------------------------------------------------------ loading

/// An ISO-8601 timestamp (`2023-01-01T00:00:02Z`) to unix ms. Loading is not timed as a
/// stage, so the general parser is fine.
fn parse_timestamp(b: &[u8]) -> Result<i64> {
    let text = std::str::from_utf8(b)?;
    Ok(chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("bad timestamp {text:?}"))?
        .timestamp_millis())
}

fn load_csv(path: &PathBuf) -> Result<Vec<Purchase>> {
    let mut reader = csv::ReaderBuilder::new()
        .buffer_capacity(1 << 20)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let header = reader.byte_headers()?.clone();
    let want: [&[u8]; 5] = [
        b"customer_id",
        b"order_id",
        b"timestamp",
        b"revenue",
        b"currency",
    ];
    if header.iter().collect::<Vec<_>>() != want {
        bail!("unexpected header {:?}", header);
    }
    let mut purchases = Vec::with_capacity(10_500_000);
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record)? {
        let line = || record.position().map(|p| p.line()).unwrap_or(0);
        let customer: i64 = std::str::from_utf8(&record[0])?
            .parse()
            .with_context(|| format!("line {}: bad customer_id", line()))?;
        let at_ms = parse_timestamp(&record[2]).with_context(|| format!("line {}", line()))?;
        let amount: f64 = std::str::from_utf8(&record[3])?
            .parse()
            .with_context(|| format!("line {}: bad revenue", line()))?;
        if &record[4] != b"EUR" {
            bail!("line {}: currency is not EUR", line());
        }
        purchases.push(Purchase {
            customer,
            at_ms,
            amount,
        });
    }
    Ok(purchases)
}

// ------------------------------------------------------------------ checks

fn column_means(s: &[CustomerSummary]) -> [f64; 4] {
    let n = s.len() as f64;
    let mut sums = [0.0; 4];
    for c in s {
        sums[0] += c.frequency;
        sums[1] += c.recency;
        sums[2] += c.t;
        sums[3] += c.monetary_value;
    }
    sums.map(|x| x / n)
}

fn check_means(means: &[f64; 4]) -> Result<()> {
    for ((name, expected), got) in EXPECTED_MEANS.iter().zip(means) {
        // The first three are exact (integer sums over 1,000,000); monetary to summation order.
        let ok = if *name == "monetary_value" {
            ((got - expected) / expected).abs() < 1e-9
        } else {
            (got - expected).abs() < 5e-7
        };
        if !ok {
            bail!(
                "RFM summary check FAILED: mean {name} = {got:.10}, the peers README says {expected}"
            );
        }
    }
    Ok(())
}

/// Per-customer comparison with scale_bench.py's --rfm-csv table (max abs difference per column).
fn crosscheck_rfm(path: &PathBuf, s: &[CustomerSummary]) -> Result<Value> {
    let mut reader = csv::Reader::from_path(path)?;
    let mut max = [0.0f64; 4];
    let mut n = 0usize;
    for (i, row) in reader.records().enumerate() {
        let row = row?;
        let v: Vec<f64> = row
            .iter()
            .map(|x| x.parse::<f64>())
            .collect::<Result<_, _>>()?;
        let Some(ours) = s.get(i) else {
            bail!("peer RFM has more customers than ours")
        };
        if ours.customer != v[0] as i64 {
            bail!(
                "customer order differs at row {i}: ours {} vs {}",
                ours.customer,
                v[0]
            );
        }
        for (k, x) in [ours.frequency, ours.recency, ours.t, ours.monetary_value]
            .iter()
            .enumerate()
        {
            max[k] = max[k].max((x - v[k + 1]).abs());
        }
        n += 1;
    }
    if n != s.len() {
        bail!("peer RFM has {n} customers, ours {}", s.len());
    }
    Ok(
        json!({"customers": n, "max_abs_diff": {"frequency": max[0], "recency": max[1], "T": max[2], "monetary_value": max[3]},
              "note": "peer table written with %.10g"}),
    )
}

/// E[X(30)] + P(alive) for every customer, as scale_bench.py's lifetimes stage predicts.
fn predict_all<M: CountModel>(model: &M, summaries: &[CustomerSummary]) -> Vec<(f64, f64)> {
    summaries
        .par_iter()
        .map(|s| {
            let h = PurchaseHistory::from(s);
            (
                model.conditional_expected_purchases(30.0, &h),
                model.probability_alive(&h),
            )
        })
        .collect()
}

fn prediction_sums(p: &[(f64, f64)]) -> (f64, f64) {
    let sum_e30: f64 = p.iter().map(|x| x.0).sum();
    let mean_palive = p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64;
    (sum_e30, mean_palive)
}

fn rel(ours: f64, theirs: f64) -> f64 {
    (ours - theirs) / theirs.abs()
}

/// This run's lifetimes figures, from scale_bench.py's JSON and its progress log.
fn peer_figures(path: &PathBuf) -> Result<Value> {
    let j: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let progress = path.with_file_name(format!(
        "{}_progress.jsonl",
        path.file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scale_bench")
    ));
    let mut predict = Value::Null;
    if let Ok(text) = std::fs::read_to_string(&progress) {
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && v["step"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("predict_all"))
            {
                predict = v;
            }
        }
    }
    Ok(json!({
        "medians_s": j["medians_s"],
        "bgnbd_params": j["lifetimes"]["bgnbd_params"],
        "bgnbd_loglik": j["lifetimes"]["bgnbd_loglik"],
        "sum_e30": predict["sum_e30"],
        "mean_palive": predict["mean_palive"],
        "machine": j["machine"],
        "rfm_means": j["crosscheck"]["rfm_means"],
    }))
}

// ------------------------------------------------------------------ main

fn main() -> Result<()> {
    let args = Args::parse();
    let reps = args.reps.max(1);
    let wait = !args.no_wait_idle && machine_busy_s().is_some();
    let observation_end_ms =
        chrono::DateTime::parse_from_rfc3339(OBSERVATION_END)?.timestamp_millis();
    let load_start = loadavg();

    eprintln!("[analytics_bench] loading {}", args.csv.display());
    let (purchases, load) = timed(|| load_csv(&args.csv));
    let purchases = purchases?;
    eprintln!(
        "[analytics_bench] {} purchases loaded in {:.2}s",
        purchases.len(),
        load.wall_s
    );

    let mut stages = Stages::default();
    let mut quiet = Vec::new();
    let mut last = None;
    let mut load_during = Vec::new();
    for rep in 0..reps {
        quiet.push(wait_quiet(wait, args.max_wait_idle));
        load_during.push(loadavg());
        let (summaries, s) =
            timed(|| summary::summarize(&purchases, observation_end_ms, Period::DAY));
        let summaries = summaries?;
        stages.push("a_summarize", s);
        let (rfm_scores, s) = timed(|| rfm::score_rfm(&summaries, observation_end_ms));
        let rfm_scores = rfm_scores?;
        stages.push("a2_score_rfm", s);

        let (count_data, s) = timed(|| CountData::from_summaries(&summaries));
        let count_data = count_data?;
        stages.push("b1_bgnbd_data", s);
        let (bg, s) = timed(|| BgNbd::fit(&count_data, &FitOptions::default()));
        let bg = bg?;
        stages.push("b1_bgnbd_fit", s);
        let (spend_data, s) = timed(|| SpendData::from_summaries(&summaries));
        let spend_data = spend_data?;
        stages.push("b2_gg_data", s);
        let (gg, s) = timed(|| GammaGamma::fit(&spend_data, &FitOptions::default()));
        let gg = gg?;
        stages.push("b2_gg_fit", s);

        let (predictions, s) = timed(|| predict_all(&bg.model, &summaries));
        stages.push("c1_predict_e30_palive", s);
        let options = ScoreOptions {
            horizon: 30.0,
            clv: ClvOptions::lifetimes_default(Period::DAY),
        };
        let (scores, s) =
            timed(|| score_customers(&bg.model, Some(&gg.model), &summaries, &options));
        stages.push("c2_score_customers_clv", s);

        let means = column_means(&summaries);
        if !args.no_check {
            check_means(&means)?;
        }
        eprintln!(
            "[analytics_bench] rep {rep}: summarize {:.3}s, score_rfm {:.3}s, BG/NBD {:.3}s+{:.3}s, GG {:.3}s+{:.3}s, predict {:.3}s, CLV scoring {:.3}s",
            stages.0[0].1[rep].wall_s,
            stages.0[1].1[rep].wall_s,
            stages.0[2].1[rep].wall_s,
            stages.0[3].1[rep].wall_s,
            stages.0[4].1[rep].wall_s,
            stages.0[5].1[rep].wall_s,
            stages.0[6].1[rep].wall_s,
            stages.0[7].1[rep].wall_s
        );
        last = Some((
            summaries,
            rfm_scores.len(),
            count_data,
            bg,
            spend_data,
            gg,
            predictions,
            scores,
            means,
        ));
    }
    let (summaries, rfm_customers, count_data, bg, spend_data, gg, predictions, scores, means) =
        last.expect("at least one rep");
    let load_end = loadavg();

    // Cross-checks, untimed.
    let rfm_check = match &args.rfm_csv {
        Some(p) => crosscheck_rfm(p, &summaries)?,
        None => Value::Null,
    };
    let (sum_e30, mean_palive) = prediction_sums(&predictions);
    let sum_clv: f64 = scores.iter().filter_map(|s| s.clv).sum();
    let m = bg.model;
    let ours = [m.r, m.alpha, m.a, m.b];
    let names = ["r", "alpha", "a", "b"];
    let readme_model = BgNbd {
        r: README_LIFETIMES[0],
        alpha: README_LIFETIMES[1],
        a: README_LIFETIMES[2],
        b: README_LIFETIMES[3],
    };
    let vs_readme = json!({
        "params": README_LIFETIMES,
        "loglik": README_LIFETIMES_LL,
        "our_loglik_at_their_params": readme_model.log_likelihood(&count_data),
        "rel_diff": names.iter().zip(ours.iter().zip(README_LIFETIMES)).map(|(n, (o, t))| (n.to_string(), json!(rel(*o, t)))).collect::<serde_json::Map<_, _>>(),
        "ll_diff": bg.report.log_likelihood - README_LIFETIMES_LL,
    });
    let peer = match &args.peer_json {
        Some(p) if p.exists() => {
            let mut peer = peer_figures(p)?;
            let pp = &peer["bgnbd_params"];
            if let (Some(r), Some(alpha), Some(a), Some(b)) = (
                pp["r"].as_f64(),
                pp["alpha"].as_f64(),
                pp["a"].as_f64(),
                pp["b"].as_f64(),
            ) {
                let theirs = BgNbd { r, alpha, a, b };
                let (e, pa) = prediction_sums(&predict_all(&theirs, &summaries));
                peer["rel_diff"] = json!({"r": rel(m.r, r), "alpha": rel(m.alpha, alpha), "a": rel(m.a, a), "b": rel(m.b, b)});
                peer["our_loglik_at_their_params"] = json!(theirs.log_likelihood(&count_data));
                peer["our_predictions_at_their_params"] = json!({"sum_e30": e, "mean_palive": pa});
            }
            peer
        }
        Some(p) => json!({"missing": p.display().to_string()}),
        None => Value::Null,
    };

    let abc = stages.median("a_summarize")
        + stages.median("b1_bgnbd_data")
        + stages.median("b1_bgnbd_fit")
        + stages.median("c1_predict_e30_palive");
    let abc_full = abc + stages.median("b2_gg_data") + stages.median("b2_gg_fit");
    let out = json!({
        "bench": "analytics",
        "csv": args.csv.display().to_string(),
        "purchases": purchases.len(),
        "customers": summaries.len(),
        "rfm_scored": rfm_customers,
        "reps": reps,
        "threads": rayon::current_num_threads(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "loadavg": {"start": load_start, "before_each_rep": load_during, "end": load_end},
        "wait_idle": wait,
        "quiet": quiet,
        "load_csv": {"wall_s": load.wall_s, "own_cpu_s": load.own_cpu_s, "foreign_cpu_s": load.foreign_cpu_s},
        "stages": stages.to_json(),
        "totals_median_s": {
            "a_summarize": stages.median("a_summarize"),
            "a_plus_score_rfm": stages.median("a_summarize") + stages.median("a2_score_rfm"),
            "b_bgnbd": stages.median("b1_bgnbd_data") + stages.median("b1_bgnbd_fit"),
            "b_gamma_gamma": stages.median("b2_gg_data") + stages.median("b2_gg_fit"),
            "c_predict_e30_palive": stages.median("c1_predict_e30_palive"),
            "c_score_customers_clv": stages.median("c2_score_customers_clv"),
            "abc_like_lifetimes": abc,
            "abc_with_gamma_gamma": abc_full,
        },
        "rfm_means": {"frequency": means[0], "recency": means[1], "T": means[2], "monetary_value": means[3], "checked_against_readme": !args.no_check},
        "rfm_crosscheck": rfm_check,
        "bgnbd": {"r": m.r, "alpha": m.alpha, "a": m.a, "b": m.b, "report": bg.report},
        "gamma_gamma": {"p": gg.model.p, "q": gg.model.q, "v": gg.model.v, "report": gg.report, "repeat_customers": spend_data.customers()},
        "predictions": {"sum_e30": sum_e30, "mean_palive": mean_palive, "sum_clv_12m": sum_clv},
        "vs_lifetimes_readme": vs_readme,
        "vs_lifetimes_this_run": peer,
        "unit_ms_per_day": DAY_MS,
    });
    let line = serde_json::to_string(&out)?;
    if let Some(p) = &args.out {
        std::fs::write(p, format!("{line}\n"))?;
    }
    println!("{line}");
    Ok(())
}
