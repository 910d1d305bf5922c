//! The analyses' stored reports on both backends (PostgreSQL when
//! `PROSSIMO_TEST_DATABASE_URL` is set, see `scripts/postgres.sh`).
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use prossimo_model::ManualClock;
use prossimo_store::Store;
use prossimo_understand::Reports;
use serde_json::json;

prossimo_store::conformance_cases!(a_report_is_replaced_and_stamped_by_the_store_clock);

/// Saving a report again replaces it; its time is the store's clock's.
fn a_report_is_replaced_and_stamped_by_the_store_clock(store: &Store) {
    let clock = Arc::new(ManualClock::at(1_767_225_600_000));
    let timed = Store::open(store.location(), store.identity().clone())
        .unwrap()
        .with_clock(clock.clone());
    let reports = Reports::of(&timed).unwrap();
    assert!(reports.get("clv").unwrap().is_none());
    reports.save("clv", &json!({"bgnbd": {"r": 0.24}})).unwrap();
    clock.advance(60_000);
    reports.save("clv", &json!({"bgnbd": {"r": 0.25}})).unwrap();
    let stored = reports.get("clv").unwrap().unwrap();
    assert_eq!(stored.result, json!({"bgnbd": {"r": 0.25}}));
    assert_eq!(stored.computed_at, 1_767_225_660_000);
}
