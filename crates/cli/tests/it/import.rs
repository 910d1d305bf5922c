//! `prossimo import`: CDNOW as orders, rejects with line numbers, idempotent re-runs.

use std::fs;

use prossimo_identity::IdentityConfig;
use prossimo_store::{Location, ProfileKey, Store};

use crate::common::{prossimo, shared_data};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn cdnow_master_imports_as_orders_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = shared_data("CDNOW_master.txt");
    // CDNOW's amounts are dollars: a workspace reporting in euros without a dollar rate
    // refuses them all, loudly.
    let rejects = dir.path().join("cdnow.rejects.ndjson");
    let refused = prossimo(
        &data,
        &[
            "import",
            "orders",
            file.to_str().unwrap(),
            "--rejects",
            rejects.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused)
            .contains(":2: properties.currency: unknown currency USD: no rate into EUR"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stdout(&refused).contains("69659 rows, 0 stored"),
        "{}",
        stdout(&refused)
    );
    let config = dir.path().join("prossimo.toml");
    fs::write(&config, "[money]\ncurrency = \"USD\"\n").unwrap();
    let config = config.to_str().unwrap();
    let first = prossimo(
        &data,
        &[
            "--config",
            config,
            "import",
            "orders",
            file.to_str().unwrap(),
        ],
    );
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    assert!(
        stdout(&first).contains(
            "69659 rows, 69659 stored, 0 already present, 0 rejected; 23570 new profiles"
        ),
        "{}",
        stdout(&first)
    );

    let again = prossimo(
        &data,
        &[
            "--config",
            config,
            "import",
            "orders",
            file.to_str().unwrap(),
        ],
    );
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("69659 rows, 0 stored, 69659 already present"),
        "{}",
        stdout(&again)
    );

    let store = Store::open(&Location::DataDir(data.clone()), IdentityConfig::default()).unwrap();
    assert_eq!(store.event_count().unwrap(), 69_659);
    assert_eq!(store.profile_count().unwrap(), 23_570);
    // Customer 00001 of CDNOW: one purchase on 1997-01-01 of $11.77.
    let p = store
        .profile(
            &ProfileKey::parse("user_id:00001", store.identity()).unwrap(),
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(p.orders.count, 1);
    assert!((p.orders.revenue - 11.77).abs() < 1e-9);
    assert_eq!(p.first_seen.as_deref(), Some("1997-01-01T00:00:00.000Z"));
    drop(store);

    // The papers' calibration/holdout split on the whole cohort: the fitted models must be
    // those lifetimes 0.11.3 fits on the summary it builds from this file
    // (../shared/peers/cdnow_fits.py, dataset "master_built", polished MLE).
    let out = prossimo(
        &data,
        &[
            "analyze",
            "clv",
            "--calibration-end",
            "1997-09-30",
            "--as-of",
            "1998-06-30",
            "--period",
            "week",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let models: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let expect = [
        ("bgnbd", "r", 0.251_624_0),
        ("bgnbd", "alpha", 4.788_943),
        ("bgnbd", "a", 0.723_433_6),
        ("bgnbd", "b", 2.161_089),
        ("mbgnbd", "r", 0.637_139_7),
        ("mbgnbd", "b", 1.228_394),
        ("gamma_gamma", "p", 6.275_359),
        ("gamma_gamma", "q", 3.624_450),
        ("gamma_gamma", "v", 14.983_69),
    ];
    for (model, name, value) in expect {
        let got = models[model][name].as_f64().unwrap_or(f64::NAN);
        assert!(
            ((got - value) / value).abs() < 1e-4,
            "{model}.{name}: {got} vs {value}"
        );
    }
    assert!((models["bgnbd"]["log_likelihood"].as_f64().unwrap() + 95_368.443_9).abs() < 1e-2);
    // Pareto/NBD: compare the likelihood (lifetimes' parameters are only good to ~1e-4).
    assert!((models["pareto"]["log_likelihood"].as_f64().unwrap() + 95_415.118_6).abs() < 1e-2);
    for key in ["r", "alpha", "s", "beta", "converged"] {
        assert!(models["pareto"].get(key).is_some(), "pareto.{key} missing");
    }
    assert_eq!(models["customers"], 23_570);
    assert!(
        models["holdout"][0]["buckets"]
            .as_array()
            .is_some_and(|b| b.len() == 8)
    );
}

#[test]
fn bad_rows_are_reported_with_line_and_field_and_good_rows_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("orders.csv");
    fs::write(
        &csv,
        "customer_id,order_id,timestamp,revenue,currency,channel\n\
         c1,o1,2026-01-05,19.90,EUR,store\n\
         c2,o2,not-a-date,10,EUR,web\n\
         c3,o3,2026-01-06T10:00:00+01:00,abc,EUR,web\n\
         ,o4,2026-01-06,5,EUR,web\n\
         c5,o5,2026-01-07,7.5,EURO,web\n\
         c6,o6,2026-01-08,12,EUR,fax\n\
         c7,o7,2026-01-09,30,,app\n",
    )
    .unwrap();
    let out = prossimo(&data, &["import", "orders", csv.to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "rejections make the exit status non-zero"
    );
    let err = stderr(&out);
    let file = csv.display().to_string();
    for expected in [
        format!("{file}:3: timestamp:"),
        format!("{file}:4: revenue:"),
        format!("{file}:5: customer_id:"),
        format!("{file}:6: currency:"),
        format!("{file}:7: properties.channel:"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(
        stdout(&out).contains("7 rows, 2 stored"),
        "{}",
        stdout(&out)
    );
    let rejects = fs::read_to_string(dir.path().join("orders.csv.rejects.ndjson")).unwrap();
    assert_eq!(rejects.lines().count(), 5);
    let first: serde_json::Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(first["line"], 3);
    assert_eq!(first["field"], "timestamp");

    let store = Store::open(&Location::DataDir(data), IdentityConfig::default()).unwrap();
    let p = store
        .profile(
            &ProfileKey::parse("user_id:c7", store.identity()).unwrap(),
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.orders.revenue, p.orders.currency.as_str()),
        (30.0, "EUR"),
        "a missing currency is the reporting currency"
    );
    assert_eq!(p.counts_by_channel["app"], 1);
}

#[test]
fn a_header_without_required_columns_names_the_file_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("orders.csv");
    fs::write(&csv, "customer_id,timestamp,revenue\nc1,2026-01-01,3\n").unwrap();
    let out = prossimo(&data, &["import", "orders", csv.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "{}:1: the header needs an order_id column",
            csv.display()
        )),
        "{}",
        stderr(&out)
    );
    let store = Store::open(&Location::DataDir(data), IdentityConfig::default()).unwrap();
    assert_eq!(store.event_count().unwrap(), 0);
}

#[test]
fn customers_and_ndjson_events_import_through_identity_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let customers = dir.path().join("customers.csv");
    fs::write(
        &customers,
        "customer_id,email,first_name,last_name,city\nk1,Anna.Neri@Example.it,Anna,Neri,Bari\nk2,luca@example.it,Luca,Sala,Como\n",
    )
    .unwrap();
    let out = prossimo(&data, &["import", "customers", customers.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = dir.path().join("events.ndjson");
    fs::write(
        &events,
        "{\"type\":\"track\",\"anonymousId\":\"web-9\",\"event\":\"Viewed\",\"context\":{\"traits\":{\"email\":\"anna.neri@example.it\"}},\"timestamp\":\"2026-02-01T10:00:00Z\"}\n\
         {\"type\":\"page\",\"anonymousId\":\"web-9\",\"name\":\"Home\",\"timestamp\":\"2026-02-01T10:01:00Z\"}\n\
         {not json}\n",
    )
    .unwrap();
    let out = prossimo(&data, &["import", "events", events.to_str().unwrap()]);
    assert!(
        stderr(&out).contains(":3: line: not JSON"),
        "{}",
        stderr(&out)
    );
    // Re-running is idempotent: message ids are derived from the lines.
    prossimo(&data, &["import", "events", events.to_str().unwrap()]);
    let store = Store::open(&Location::DataDir(data), IdentityConfig::default()).unwrap();
    let p = store
        .profile(
            &ProfileKey::parse("anonymous_id:web-9", store.identity()).unwrap(),
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(p.name.as_deref(), Some("Anna Neri"));
    assert_eq!(p.traits["city"], "Bari");
    assert_eq!(p.event_count, 3, "identify + the two events, stored once");
}

#[test]
fn demo_fills_a_living_retailer_through_the_ingest_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = prossimo(
        &data,
        &[
            "demo",
            "--customers",
            "400",
            "--seed",
            "11",
            "--until",
            "2026-11-01",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("demo: 400 customers"),
        "{}",
        stdout(&out)
    );
    let again = prossimo(
        &data,
        &[
            "demo",
            "--customers",
            "400",
            "--seed",
            "11",
            "--until",
            "2026-11-01",
        ],
    );
    assert!(
        stdout(&again).contains(" 0 events stored"),
        "seeded ids make a re-run a no-op: {}",
        stdout(&again)
    );
    assert!(
        stdout(&out).contains("demo: 3 example messages and 2 example journeys saved"),
        "{}",
        stdout(&out)
    );
    let list = prossimo(&data, &["journey", "list"]);
    let listed = stdout(&list);
    assert!(
        listed.contains("abandoned-cart") && listed.contains("published"),
        "the abandoned cart is live: {listed}"
    );
    assert!(
        listed.contains("win-back") && listed.contains("draft"),
        "{listed}"
    );

    let hint = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("try:  prossimo profile ").map(str::to_owned))
        .expect("a profile to try");
    let store = Store::open(&Location::DataDir(data), IdentityConfig::default()).unwrap();
    assert!(store.event_count().unwrap() > 2_000);
    let p = store
        .profile(&ProfileKey::parse(&hint, store.identity()).unwrap(), &[])
        .unwrap()
        .expect("the suggested profile exists");
    assert!(
        p.traits.contains_key("email") && p.traits.contains_key("city"),
        "{:?}",
        p.traits
    );
    assert!(
        p.counts_by_channel.len() >= 2 && p.orders.count >= 2,
        "{p:?}"
    );
    // Shared family tablets produce refused merges, recorded in the identity log.
    assert!(
        store
            .search("tablet-11", 5)
            .unwrap()
            .iter()
            .any(|s| s.matched.starts_with("anonymous_id:tablet-11"))
    );
    // Every channel of the retailer shows up across the first customers.
    let mut channels = std::collections::BTreeSet::new();
    for n in 1..=60 {
        let key = ProfileKey::parse(&format!("user_id:c{n:05}"), store.identity()).unwrap();
        if let Some(p) = store.profile(&key, &[]).unwrap() {
            channels.extend(p.counts_by_channel.keys().cloned());
        }
    }
    for channel in ["web", "store", "email", "call_center"] {
        assert!(
            channels.contains(channel),
            "{channel} missing from {channels:?}"
        );
    }
}
