//! The whole path on the papers' data: the CDNOW sample's purchases go in as Segment
//! `Order Completed` events through the store's ingest path; the analyses read them back,
//! and the fitted models must be those `lifetimes` 0.11.3 fits on the same summary
//! (`../shared/peers/cdnow_fits.py`, dataset "sample_built"); the computed traits must be
//! on the profiles, and live scoring must agree with the full run.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::path::PathBuf;

use prossimo_analytics::Period;
use prossimo_store::testsuite::{Fixture, incoming};
use prossimo_store::{ProfileKey, Store};
use prossimo_understand::{Analysis, LiveScorer, Options, run};
use serde_json::{Value, json};

fn sample() -> PathBuf {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/CDNOW_sample.txt"
    ));
    assert!(path.exists(), "reference data missing: {}", path.display());
    path
}

/// 1997-09-30 and 1998-06-30, end of day UTC.
const CALIBRATION_END: i64 = 875_663_999_999;
const OBSERVATION_END: i64 = 899_251_199_999;

fn load_cdnow(store: &Store) {
    let source = store.bootstrap(None, None).unwrap().source;
    let text = std::fs::read_to_string(sample()).unwrap();
    let messages: Vec<Value> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let date = f[2];
            json!({"type": "track", "event": "Order Completed", "userId": f[1],
                   "messageId": format!("cdnow-{n}"),
                   "timestamp": format!("{}-{}-{}T00:00:00Z", &date[..4], &date[4..6], &date[6..]),
                   "properties": {"order_id": format!("o{n}"), "revenue": f[4].parse::<f64>().unwrap()}})
        })
        .collect();
    assert_eq!(messages.len(), 6_919);
    for chunk in messages.chunks(2_000) {
        store
            .ingest(&incoming(store, source.id, chunk.to_vec()))
            .unwrap();
    }
}

fn close(actual: f64, expected: f64, relative: f64, what: &str) {
    assert!(
        ((actual - expected) / expected).abs() <= relative,
        "{what}: {actual} vs {expected}"
    );
}

#[test]
fn cdnow_through_the_store_gives_lifetimes_fits_and_traits() {
    let fixture = Fixture::sqlite();
    let store = &fixture.store;
    load_cdnow(store);

    // Evaluation run: fitted on the 39-week calibration period, compared with the holdout.
    let mut options = Options::new(OBSERVATION_END);
    options.period = Period::WEEK;
    options.calibration_end_ms = Some(CALIBRATION_END);
    let outcome = run(store, &[Analysis::Clv], &options).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    let clv = outcome.clv.expect("clv report");
    assert_eq!(clv.customers, 2_357);
    let b = clv.bgnbd.parameters;
    close(b.r, 0.242_594_5, 1e-4, "BG/NBD r");
    close(b.alpha, 4.413_602_7, 1e-4, "BG/NBD alpha");
    close(b.a, 0.792_921_8, 1e-4, "BG/NBD a");
    close(b.b, 2.425_905_7, 1e-4, "BG/NBD b");
    assert!((clv.bgnbd.log_likelihood + 9_582.429_2).abs() < 1e-3);
    let m = clv.mbgnbd.parameters;
    close(m.r, 0.524_842_9, 1e-4, "MBG/NBD r");
    close(m.b, 1.614_003, 1e-4, "MBG/NBD b");
    // Pareto/NBD's surface is flat: lifetimes stops early, so compare the likelihood.
    assert!((clv.pareto.log_likelihood + 9_594.976_2).abs() < 1e-3);
    let g = clv.gamma_gamma.parameters;
    close(g.p, 6.249_572, 1e-4, "Gamma-Gamma p");
    close(g.q, 3.744_225, 1e-4, "Gamma-Gamma q");
    close(g.v, 15.443_52, 1e-4, "Gamma-Gamma v");
    assert!(clv.bgnbd.report.converged && clv.gamma_gamma.report.converged);
    let holdout = clv.holdout.as_ref().expect("holdout report");
    assert_eq!(holdout[0].customers, 2_357);
    // Independent count of purchase days in the holdout (see the analytics crate's tests).
    assert_eq!(holdout[0].actual_total, 1_882.0);
    // The evaluation wrote no traits and is stored apart from the live parameters.
    assert_eq!(outcome.profiles_updated, 0);
    let reports = prossimo_understand::Reports::of(store).unwrap();
    assert!(reports.get("clv").unwrap().is_none());
    assert!(reports.get("clv_evaluation").unwrap().is_some());

    // Full run as of the end of the data: every analysis, traits on every buyer.
    let mut options = Options::new(OBSERVATION_END);
    options.clusters = Some(4);
    let outcome = run(store, &[], &options).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(outcome.profiles_updated, 2_357);
    assert_eq!(outcome.clusters.as_ref().unwrap().customers, 2_357);
    let dynamics = outcome.dynamics.as_ref().unwrap();
    assert_eq!(dynamics.base.periods.last().unwrap().customers_total, 2_357);
    assert!(outcome.cohorts.as_ref().unwrap().cohorts.len() >= 3);
    // The RFM grid and the prediction spread account for every customer once.
    let rfm = outcome.rfm.as_ref().unwrap();
    assert_eq!(rfm.rf_grid.iter().flatten().sum::<u64>(), 2_357);
    let spread = outcome.clv.as_ref().unwrap().spread.as_ref().unwrap();
    let banded: usize = spread.clv_bands.iter().map(|b| b.customers).sum();
    assert_eq!(banded, 2_357);
    let by_recency: usize = spread.p_alive_by_recency.iter().map(|b| b.customers).sum();
    assert_eq!(by_recency, 2_357);

    // Customer 0003 bought once (x = 0): BG/NBD says P(alive) = 1 by construction.
    let key = |id: &str| ProfileKey::parse(&format!("user_id:{id}"), store.identity()).unwrap();
    let once = store.profile(&key("0003"), &[]).unwrap().unwrap();
    assert_eq!(once.computed["p_alive"], json!(1.0));
    for name in [
        "rfm_score",
        "rfm_segment",
        "expected_purchases_90d",
        "clv_12m",
        "cluster",
    ] {
        assert!(
            once.computed.contains_key(name),
            "{name} missing: {:?}",
            once.computed
        );
    }

    // Live scoring from the stored run reproduces the run's own scores for every trait.
    let scorer = LiveScorer::load(store).unwrap();
    for id in ["0001", "0003", "1516", "1901", "2240"] {
        let p = store.profile(&key(id), &[]).unwrap().unwrap();
        let purchases: Vec<_> = store
            .orders_of(p.id)
            .unwrap()
            .iter()
            .map(prossimo_analytics::Purchase::from)
            .collect();
        let live = scorer.traits(&purchases, OBSERVATION_END).unwrap();
        for name in ["p_alive", "expected_purchases_90d", "clv_12m"] {
            let (a, b) = (
                live[name].as_f64().unwrap(),
                p.computed[name].as_f64().unwrap(),
            );
            assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "{id} {name}: {a} vs {b}"
            );
        }
        assert_eq!(
            live["rfm_segment"], p.computed["rfm_segment"],
            "customer {id}"
        );
    }
}
