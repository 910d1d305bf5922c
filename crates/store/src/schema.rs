//! The tables of a feature, created and changed by the feature's own migrations.
//!
//! The store's own migrations create the customer core (profiles, identifiers, the
//! identity log, events, orders, sources and keys); each feature crate (audiences,
//! destinations, console users) ships its migrations for both backends and describes them
//! with a [`Schema`]. They are applied on the feature's first use of a store
//! ([`Store::migrate`]) and recorded in a history table of their own, so features change
//! their tables without touching the store or each other.

use std::collections::HashSet;

use crate::sql::{self, WriteDomain};
use crate::{Backend, Store, StoreError};

/// A feature's migrations for both backends.
pub struct Schema {
    /// The feature's name: its history table is `prossimo_<name>_migrations`.
    pub name: &'static str,
    /// The SQLite file its tables live in (one write domain: a feature's write
    /// transaction never spans files).
    pub domain: WriteDomain,
    /// `refinery::embed_migrations!`'s runner for each backend.
    pub sqlite: fn() -> refinery::Runner,
    pub postgres: fn() -> refinery::Runner,
}

impl Schema {
    pub fn history_table(&self) -> String {
        format!("prossimo_{}_migrations", self.name)
    }
}

/// The names of the schemas this store has brought up to date since it was opened.
#[derive(Default)]
pub(crate) struct Migrated(parking_lot::Mutex<HashSet<&'static str>>);

/// Runs `runner` on PostgreSQL under one advisory lock, the core's migrations and every
/// feature's alike: nodes starting together must not run the same migration twice.
///
/// The wait for that lock is not the store's `lock_wait` (meant for a write behind another
/// writer, answered with a 503): a node starting beside another that is migrating waits
/// for it, up to [`MIGRATION_WAIT`].
pub(crate) fn migrate_postgres(
    conn: &mut postgres::Client,
    runner: &refinery::Runner,
) -> Result<(), StoreError> {
    conn.batch_execute(&format!(
        "SET lock_timeout = {}; SELECT pg_advisory_lock({MIGRATION_LOCK})",
        MIGRATION_WAIT.as_millis()
    ))?;
    let migrated = runner.run(conn);
    conn.batch_execute(&format!(
        "SELECT pg_advisory_unlock({MIGRATION_LOCK}); RESET lock_timeout"
    ))?;
    migrated?;
    Ok(())
}

const MIGRATION_LOCK: i64 = 1886547820;

/// How long opening a store waits for another node's migrations on PostgreSQL.
const MIGRATION_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

impl Store {
    /// Brings `schema`'s tables up to date, once per opened store: a feature calls this
    /// before its first query, so no caller can forget it.
    ///
    /// Pending migrations apply in one transaction with their history rows, so a crash
    /// never leaves one applied but unrecorded. The feature must not call this inside a
    /// write transaction of its own file (the migration's connection would wait for it).
    ///
    /// Tables a feature took over from the store are adopted by the feature's first
    /// migration (`CREATE TABLE IF NOT EXISTS` with the shape they already had), so a
    /// store written before the move keeps its data.
    pub fn migrate(&self, schema: &Schema) -> Result<(), StoreError> {
        let mut done = self.migrated.0.lock();
        if done.contains(schema.name) {
            return Ok(());
        }
        match &self.backend {
            Backend::Sqlite { dir, .. } => {
                let mut conn = match schema.domain {
                    WriteDomain::Customers => {
                        sql::open_sqlite(&dir.join(crate::DATABASE_FILE), self.lock_wait)?
                    }
                    WriteDomain::Decisions => {
                        sql::open_decisions(&dir.join(crate::DECISIONS_FILE), self.lock_wait)?
                    }
                };
                let mut runner = (schema.sqlite)().set_grouped(true);
                runner.set_migration_table_name(schema.history_table());
                runner.run(&mut conn)?;
            }
            Backend::Postgres(pool) => {
                let mut runner = (schema.postgres)().set_grouped(true);
                runner.set_migration_table_name(schema.history_table());
                migrate_postgres(&mut *pool.get()?, &runner)?;
            }
        }
        done.insert(schema.name);
        Ok(())
    }

    /// Runs `read` on a connection of the pool (both files attached on SQLite).
    pub fn read<T>(
        &self,
        read: impl FnOnce(&mut dyn sql::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        read(self.conn()?.conn())
    }
}

/// Declares a feature's [`Schema`] from the crate's `migrations/sqlite` and
/// `migrations/postgres` directories (the crate depends on `refinery`):
///
/// ```ignore
/// prossimo_store::feature_schema! {
///     /// Destinations and their outbox.
///     pub const SCHEMA = ("destinations", WriteDomain::Decisions);
/// }
/// ```
#[macro_export]
macro_rules! feature_schema {
    ($(#[$doc:meta])* $vis:vis const $name:ident = ($feature:literal, $domain:expr);) => {
        mod migrations {
            pub mod sqlite {
                refinery::embed_migrations!("migrations/sqlite");
            }
            pub mod postgres {
                refinery::embed_migrations!("migrations/postgres");
            }
        }

        $(#[$doc])*
        $vis const $name: $crate::Schema = $crate::Schema {
            name: $feature,
            domain: $domain,
            sqlite: migrations::sqlite::migrations::runner,
            postgres: migrations::postgres::migrations::runner,
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IdentityConfig, Location, StoreOptions};

    /// A node opening its store while another migrates waits for it, however short its
    /// `lock_wait` (CI once saw a 200 ms handle fail beside parallel tests' migrations).
    #[test]
    fn opening_waits_for_another_nodes_migrations_beyond_lock_wait() {
        let Ok(url) = std::env::var("PROSSIMO_TEST_DATABASE_URL") else {
            eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set");
            return;
        };
        let mut other_node = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        other_node
            .batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .expect("the migration lock");
        let release = std::thread::spawn(move || {
            #[allow(clippy::disallowed_methods)] // a thread of the test's own
            std::thread::sleep(std::time::Duration::from_millis(600));
            other_node
                .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                .expect("unlock");
        });
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let opened = crate::Store::open_with(
            &Location::Postgres {
                url,
                schema: Some(schema),
            },
            IdentityConfig::default(),
            StoreOptions {
                lock_wait: std::time::Duration::from_millis(100),
            },
        );
        release.join().expect("release");
        opened.expect("opened once the other node's migrations were done");
    }

    /// A pooled connection keeps the store's `lock_wait` after running a feature's
    /// migrations with the longer wait.
    #[test]
    fn migrating_gives_the_connection_its_lock_wait_back() {
        let Ok(url) = std::env::var("PROSSIMO_TEST_DATABASE_URL") else {
            eprintln!("skipped: PROSSIMO_TEST_DATABASE_URL is not set");
            return;
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut config: postgres::Config = url.parse().expect("a URL");
        config.options(&format!("-c lock_timeout=100 -c search_path={schema}"));
        let mut conn = config.connect(postgres::NoTls).expect("connect");
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("a schema for the migration history");
        migrate_postgres(&mut conn, &refinery::Runner::new(&[])).expect("nothing to migrate");
        let row = conn.query_one("SHOW lock_timeout", &[]).expect("show");
        assert_eq!(row.get::<_, String>(0), "100ms");
    }
}
