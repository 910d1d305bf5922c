//! The tables of a store, however it got them (SQLite, both files; PostgreSQL when
//! `PROSSIMO_TEST_DATABASE_URL` is set): an upgraded store ends
//! with the same tables and indexes as a new one once every feature has brought its own
//! up to date, and a feature's migrations alone create exactly the shapes the store has,
//! so its first migration truly adopts the tables the core made before it owned them.
// Tests: a failing unwrap is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use prossimo_identity::IdentityConfig;
use prossimo_runtime::FEATURE_SCHEMAS;
use prossimo_store::testsuite::{
    postgres_location, postgres_schema, postgres_schema_of, postgres_store_at_version,
    sqlite_schema, sqlite_schema_of, sqlite_store_at_version,
};
use prossimo_store::{Location, Store};

fn open_with_features(dir: &std::path::Path) -> Store {
    open_location_with_features(&Location::DataDir(dir.to_owned()))
}

fn open_location_with_features(location: &Location) -> Store {
    let store = Store::open(location, IdentityConfig::default()).expect("open");
    for schema in FEATURE_SCHEMAS {
        store.migrate(schema).expect("the feature's migrations");
    }
    store
}

#[test]
fn an_upgraded_store_has_the_schema_of_a_new_one() {
    let new = tempfile::tempdir().unwrap();
    let expected = sqlite_schema(&open_with_features(new.path()));
    assert!(
        expected.iter().any(|t| t.contains("membership_changes")),
        "{expected:#?}"
    );
    // Version 3: orders and computed traits, before audiences, destinations and users.
    // Version 5: console users, memberships still intervals, every table in one file.
    for version in [3, 5] {
        let old = tempfile::tempdir().unwrap();
        sqlite_store_at_version(old.path(), version);
        let upgraded = sqlite_schema(&open_with_features(old.path()));
        assert_eq!(upgraded, expected, "upgraded from version {version}");
    }
}

#[test]
fn a_features_migrations_alone_make_the_tables_it_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_schema(&open_with_features(dir.path()));
    for schema in FEATURE_SCHEMAS {
        let alone = sqlite_schema_of(schema);
        assert!(!alone.is_empty(), "{} creates nothing", schema.name);
        for line in &alone {
            assert!(
                store.contains(line),
                "{}: {line}\nis not in the store as\n{:#?}",
                schema.name,
                store
                    .iter()
                    .filter(|s| s.split(':').next() == line.split(':').next())
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn an_upgraded_postgres_store_has_the_schema_of_a_new_one() {
    let Some(new) = postgres_location() else {
        eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set");
        return;
    };
    open_location_with_features(&new);
    let expected = postgres_schema(&new);
    assert!(
        expected.iter().any(|t| t.contains("membership_changes")),
        "{expected:#?}"
    );
    for version in [3, 5] {
        let old = postgres_location().unwrap();
        postgres_store_at_version(&old, version);
        open_location_with_features(&old);
        let upgraded = postgres_schema(&old);
        let missing: Vec<&String> = expected.iter().filter(|l| !upgraded.contains(l)).collect();
        let extra: Vec<&String> = upgraded.iter().filter(|l| !expected.contains(l)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "upgraded from version {version}: missing {missing:#?}, extra {extra:#?}"
        );
    }
}

#[test]
fn a_features_postgres_migrations_alone_make_the_tables_it_adopted() {
    let Some(location) = postgres_location() else {
        eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set");
        return;
    };
    open_location_with_features(&location);
    let store = postgres_schema(&location);
    for schema in FEATURE_SCHEMAS {
        let alone = postgres_schema_of(schema).unwrap();
        assert!(!alone.is_empty(), "{} creates nothing", schema.name);
        for line in &alone {
            assert!(
                store.contains(line),
                "{}: {line}\nis not in the store",
                schema.name
            );
        }
    }
}
