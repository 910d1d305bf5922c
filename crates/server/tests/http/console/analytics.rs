//! The analytics page and its runs.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;

use prossimo_store::testsuite::incoming;

use crate::harness::*;

/// The CDNOW sample's orders through the store, then every analysis and a calibration run,
/// as `prossimo analyze` does: the analytics page draws every chart from the stored reports.
#[tokio::test]
async fn the_analytics_page_draws_every_chart_from_the_stored_reports() {
    let c = TestApp::new().with_console_users();
    let session = c.session("viewer@example.it").await;
    let before = c.page("/analytics", &session).await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(before.body.contains("No analysis has run yet"));

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/CDNOW_sample.txt"
    );
    let text = std::fs::read_to_string(path).expect("reference data: ../shared/data");
    let source = c.store.bootstrap(None, None).unwrap().source;
    let orders: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let d = f[2];
            json!({"type": "track", "event": "Order Completed", "userId": format!("cd{}", f[1]),
                   "messageId": format!("cdnow-{n}"),
                   "timestamp": format!("{}-{}-{}T00:00:00Z", &d[..4], &d[4..6], &d[6..]),
                   "properties": {"order_id": format!("o{n}"), "revenue": f[4].parse::<f64>().unwrap()}})
        })
        .collect();
    for chunk in orders.chunks(2_000) {
        c.store
            .ingest(&incoming(&c.store, source.id, chunk.to_vec()))
            .unwrap();
    }
    // 1998-06-30 and 1997-09-30, end of day UTC (the papers' observation and calibration ends).
    let mut options = prossimo_understand::Options::new(899_251_199_999);
    options.period = prossimo_analytics::Period::WEEK;
    let outcome = prossimo_understand::run(&c.store, &[], &options).unwrap();
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    options.calibration_end_ms = Some(875_663_999_999);
    prossimo_understand::run(&c.store, &[prossimo_understand::Analysis::Clv], &options).unwrap();

    let page = c.page("/analytics", &session).await;
    assert_eq!(page.status, StatusCode::OK);
    for chart in [
        "growth",
        "new-returning",
        "cohorts",
        "rfm",
        "clv-distribution",
        "p-alive-recency",
        "churn-loyalty",
        "channels",
        "holdout",
    ] {
        let start = page
            .body
            .find(&format!("data-chart=\"{chart}\""))
            .unwrap_or_else(|| panic!("no {chart} chart"));
        let figure = &page.body[start..start + page.body[start..].find("</figure>").unwrap()];
        assert!(figure.contains("data-value="), "{chart} has no data");
        assert!(!figure.contains("Not computed"), "{chart}");
        assert!(figure.contains("<figcaption"), "{chart}");
    }
    // Independent truth: 1,882 purchase days in CDNOW's holdout (counted in the analytics
    // crate's tests), and 2,357 customers in the sample.
    assert!(
        page.body.contains("Holdout totals: Actual 1,882"),
        "holdout total"
    );
    assert!(page.body.contains("<strong>2,357</strong>"), "buyers");
}

/// A run that failed, or could not compute everything, is said on the Analytics page with
/// its problems; an admin can ask for a new one there (a viewer cannot).
#[tokio::test]
async fn a_failed_analysis_run_shows_with_its_problems_and_admins_can_run_again() {
    let c = TestApp::new().with_console_users();
    prossimo_understand::Reports::of(&c.store)
        .unwrap()
        .save(
            prossimo_understand::LAST_RUN,
            &json!({"ok": false, "seconds": 1.5, "error": "storage unavailable: locked", "problems": []}),
        )
        .unwrap();
    let viewer = c.session("viewer@example.it").await;
    let page = c.page("/analytics", &viewer).await;
    assert!(page.body.contains("id=\"last-run\""), "{}", page.body);
    assert!(page.body.contains("The last analysis run failed"));
    assert!(page.body.contains("storage unavailable: locked"));
    assert!(
        !page.body.contains("action=\"/analytics/run\""),
        "viewers cannot run"
    );
    let refused = c
        .submit(
            "/analytics/run",
            &viewer,
            &format!("csrf={}", page.hidden_csrf()),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    prossimo_understand::Reports::of(&c.store)
        .unwrap()
        .save(
            prossimo_understand::LAST_RUN,
            &json!({"ok": true, "seconds": 1.5, "problems": [
                // A run from before problems had kinds stored English sentences.
                "orders: 1 left out of every analysis",
                {"kind": "touchpoints_too_early", "count": 3,
                 "message": "touchpoints: 3 events dated before 1900 left out of cohorts and dynamics"},
            ]}),
        )
        .unwrap();
    let admin = c.session("admin@example.it").await;
    let english = c.page("/analytics", &admin).await;
    assert!(
        english
            .body
            .contains("touchpoints: 3 events dated before 1900 left out"),
        "{}",
        english.body
    );
    let page = c.page("/analytics?lang=it", &admin).await;
    assert!(
        page.body
            .contains("punti di contatto: 3 eventi datati prima del 1900 esclusi"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("L&#39;ultima analisi non ha potuto calcolare tutto")
            || page
                .body
                .contains("L'ultima analisi non ha potuto calcolare tutto"),
        "{}",
        page.body
    );
    assert!(page.body.contains("orders: 1 left out of every analysis"));
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let _listening = c.bus.subscribe(
        "test",
        &[prossimo_bus::Topic::AnalysisRequested],
        move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        },
    );
    let forged = c.submit("/analytics/run", &admin, "csrf=forged").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0);
    let done = c
        .submit(
            "/analytics/run",
            &admin,
            &format!("csrf={}", page.hidden_csrf()),
        )
        .await;
    assert_eq!(done.location(), "/analytics?run=requested");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    let after = c.page("/analytics?run=requested", &admin).await;
    assert!(after.body.contains("id=\"run-requested\""));
}
