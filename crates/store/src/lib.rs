//! Storage behind one interface, with two real backends.
//!
//! SQLite in WAL mode with `synchronous = FULL` is the embedded default (one file in the
//! data directory); PostgreSQL is the scale-out backend that several stateless `prossimo`
//! nodes can share. Both speak the same SQL through [`sql::Conn`], so ingestion, identity
//! writes and reads are written once, and one conformance suite ([`testsuite`]) runs
//! against both.

mod analytics;
mod decide;
mod destinations;
mod error;
mod ingest;
mod keys;
mod lease;
mod read;
pub mod sql;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;
mod users;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

pub use analytics::{StoredAnalysis, Touchpoint};
pub use decide::{
    DecidePosition, DecideWrite, EventScan, LoggedEvent, MemberRecord, MembershipChange,
    MembershipRecord, MergeRecord, NewDelivery, ProfileFacts, SEGMENT_ENTERED, SEGMENT_EXITED,
    SegmentInput, SegmentRecord, check_slug,
};
pub use destinations::{
    AttemptRecord, DeliveryOutcome, DeliveryRecord, DeliveryStatus, DestinationInput,
    DestinationKind, DestinationRecord,
};
pub use error::StoreError;
use ingest::StatisticsSchedule;
pub use ingest::{Incoming, IngestReport, OrderLine};
pub use keys::{Bootstrap, Source, TokenInfo};
pub use lease::Lease;
use prossimo_identity::IdentityConfig;
use prossimo_model::Money;
pub use read::{EventPage, EventQuery, Profile360, ProfileKey, ProfileSummary};
use sql::{PgManager, Pooled, SqliteManager};
pub use users::{NewSession, Role, SessionRecord, UserRecord, normalise_email};

mod migrations {
    pub mod sqlite {
        refinery::embed_migrations!("migrations/sqlite");
    }
    pub mod postgres {
        refinery::embed_migrations!("migrations/postgres");
    }
}

/// Name of the SQLite file inside the data directory.
pub const DATABASE_FILE: &str = "prossimo.db";

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded store in this directory.
    DataDir(PathBuf),
    /// A PostgreSQL connection string, with an optional schema to use instead of `public`.
    Postgres { url: String, schema: Option<String> },
}

impl Location {
    pub fn describe(&self) -> String {
        match self {
            Location::DataDir(dir) => format!("sqlite:{}", dir.join(DATABASE_FILE).display()),
            Location::Postgres { url, schema } => {
                let host = postgres::Config::from_str(url)
                    .ok()
                    .map(|c| format!("{:?}/{}", c.get_hosts(), c.get_dbname().unwrap_or("")))
                    .unwrap_or_else(|| "postgres".into());
                match schema {
                    Some(s) => format!("postgres:{host} (schema {s})"),
                    None => format!("postgres:{host}"),
                }
            }
        }
    }
}

enum Backend {
    Sqlite(r2d2::Pool<SqliteManager>),
    Postgres(r2d2::Pool<PgManager>),
}

/// The store: a pool of connections to one backend plus the identity policy used when
/// writing.
pub struct Store {
    backend: Backend,
    identity: IdentityConfig,
    money: Money,
    location: Location,
    /// PostgreSQL only: when to refresh planner statistics (see `ingest`).
    statistics: Option<StatisticsSchedule>,
    /// SQLite only: this process's writers queue here for their turn (see
    /// [`Store::write_transaction`]).
    write_gate: Option<parking_lot::Mutex<()>>,
    lock_wait: Duration,
}

/// How the store talks to its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a write waits for a lock another writer holds (SQLite's busy timeout,
    /// PostgreSQL's `lock_timeout`) before it fails with a transient error, which the HTTP
    /// edge answers with 503 and `Retry-After`. Default: 10 s.
    pub lock_wait: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            lock_wait: Duration::from_secs(10),
        }
    }
}

impl Store {
    /// Opens (creating and migrating if needed) the store at `location`.
    pub fn open(location: &Location, identity: IdentityConfig) -> Result<Store, StoreError> {
        Store::open_with(location, identity, StoreOptions::default())
    }

    /// As [`Store::open`], with explicit options.
    pub fn open_with(
        location: &Location,
        identity: IdentityConfig,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let backend = match location {
            Location::DataDir(dir) => open_sqlite(dir, options)?,
            Location::Postgres { url, schema } => open_postgres(url, schema.as_deref(), options)?,
        };
        let statistics = match &backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(pool) => Some(StatisticsSchedule::starting_at(&mut *pool.get()?)?),
        };
        let write_gate = matches!(backend, Backend::Sqlite(_)).then(|| parking_lot::Mutex::new(()));
        Ok(Store {
            backend,
            identity,
            money: Money::default(),
            location: location.clone(),
            statistics,
            write_gate,
            lock_wait: options.lock_wait,
        })
    }

    /// The reporting currency and conversion rates orders are valued with.
    pub fn with_money(self, money: Money) -> Store {
        Store { money, ..self }
    }

    pub fn money(&self) -> &Money {
        &self.money
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn identity(&self) -> &IdentityConfig {
        &self.identity
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub(crate) fn conn(&self) -> Result<Pooled, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(pool) => Pooled::Sqlite(pool.get()?),
            Backend::Postgres(pool) => Pooled::Postgres(pool.get()?),
        })
    }

    /// Cheap liveness probe of the backend, for `/ready`.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.conn().query("SELECT 1", &[])?;
        Ok(())
    }
}

fn open_sqlite(dir: &Path, options: StoreOptions) -> Result<Backend, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
        path: dir.to_owned(),
        source,
    })?;
    let path = dir.join(DATABASE_FILE);
    let mut conn = sql::open_sqlite(&path, options.lock_wait)?;
    migrations::sqlite::migrations::runner().run(&mut conn)?;
    drop(conn);
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(SqliteManager::new(&path, options.lock_wait))?;
    Ok(Backend::Sqlite(pool))
}

fn open_postgres(
    url: &str,
    schema: Option<&str>,
    options: StoreOptions,
) -> Result<Backend, StoreError> {
    let mut config = postgres::Config::from_str(url)?;
    config.connect_timeout(Duration::from_secs(10));
    // Options already in the URL (`?options=-c search_path=…`) are kept.
    let mut session = config
        .get_options()
        .map(|o| format!("{o} "))
        .unwrap_or_default();
    session.push_str(&format!(
        "-c lock_timeout={}",
        options.lock_wait.as_millis().max(1)
    ));
    if let Some(schema) = schema {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::Invalid(format!(
                "schema name {schema:?} may hold only letters, digits and _"
            )));
        }
        let mut admin = config.connect(postgres::NoTls)?;
        admin.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
        session.push_str(&format!(" -c search_path={schema}"));
    }
    config.options(&session);
    let mut conn = config.connect(postgres::NoTls)?;
    // Nodes starting together must not run the same migration twice.
    conn.batch_execute("SELECT pg_advisory_lock(1886547820)")?;
    let migrated = migrations::postgres::migrations::runner().run(&mut conn);
    conn.batch_execute("SELECT pg_advisory_unlock(1886547820)")?;
    migrated?;
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(10))
        .build(PgManager::new(config, postgres::NoTls))?;
    Ok(Backend::Postgres(pool))
}

impl Store {
    /// Runs `write` in a write transaction (see [`sql::Conn::begin_write`]): committed when
    /// it returns `Ok`, rolled back otherwise.
    ///
    /// On SQLite the writers of this process (the ingest writer, the decider, the
    /// dispatcher, the analyst) first queue on an in-process lock: SQLite's own busy
    /// handler polls with sleeps of up to 100 ms, so a writer waiting behind another's
    /// short transaction could oversleep it many times over (BENCHMARKS.md, "Audiences":
    /// ingest acknowledgements at p99 391 ms with the decider running at 10,000 events/s
    /// before this queue and mimalloc, 98 ms after). The busy handler is left to other
    /// processes (`prossimo import`, a second node).
    pub(crate) fn write_transaction<T>(
        &self,
        conn: &mut dyn sql::Conn,
        write: impl FnOnce(&mut dyn sql::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _turn = match &self.write_gate {
            Some(gate) => Some(gate.try_lock_for(self.lock_wait).ok_or_else(|| {
                StoreError::Unavailable(format!(
                    "another write of this process held the store for over {} s",
                    self.lock_wait.as_secs_f64()
                ))
            })?),
            None => None,
        };
        if let Err(e) = conn.begin_write() {
            // PostgreSQL's BEGIN has already opened the transaction when the lock wait that
            // follows it fails; left open, it would poison the pooled connection.
            let _ = conn.batch("ROLLBACK");
            return Err(e);
        }
        match write(conn) {
            Ok(value) => {
                conn.batch("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                // The original error matters more than a failed rollback.
                let _ = conn.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    /// A store written before memberships became a log (V5: intervals, and a
    /// `Segment Entered`/`Exited` event per change from the platform's own source) opens
    /// with the same memberships, history and timeline.
    #[test]
    fn intervals_and_platform_events_become_the_change_log() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join(DATABASE_FILE);
        let mut conn = sql::open_sqlite(&path, Duration::from_secs(5)).expect("open");
        migrations::sqlite::migrations::runner()
            .set_target(refinery::Target::Version(5))
            .run(&mut conn)
            .expect("migrate to V5");
        let t = 1_769_904_000_000_i64;
        conn.execute_batch(&format!(
            "INSERT INTO sources (id, name, write_key, created_at) VALUES (1, 'web', 'k1', 0);
             INSERT INTO sources (id, name, write_key, created_at, revoked_at) VALUES (2, 'prossimo:internal', 'k2', 0, 0);
             INSERT INTO profiles (id, state, created_at, updated_at) VALUES (7, '{{}}', 0, 0);
             INSERT INTO segments (id, slug, name, description, definition, created_at, updated_at)
                 VALUES (3, 'vip', 'VIP', '', 'count(any event) >= 1', 0, 0);
             -- A first member (no event), out at t+2; back in at t+3 (with its event).
             INSERT INTO memberships (id, segment_id, profile_id, entered_at, exited_at) VALUES (1, 3, 7, {t1}, {t2});
             INSERT INTO memberships (id, segment_id, profile_id, entered_at, exited_at) VALUES (2, 3, 7, {t3}, NULL);
             INSERT INTO events (source_id, message_id, profile_id, type, event, channel, ts, received_at, body)
                 VALUES (1, 'm1', 7, 'track', 'Viewed', 'web', {t1}, {t1}, '{{\"type\":\"track\",\"event\":\"Viewed\",\"messageId\":\"m1\"}}'),
                        (2, 'segment-exited-3-7-{t2}', 7, 'track', 'Segment Exited', 'other', {t2}, {t2}, '{{}}'),
                        (2, 'segment-entered-3-7-{t3}', 7, 'track', 'Segment Entered', 'other', {t3}, {t3}, '{{}}');",
            t1 = t + 60_000,
            t2 = t + 120_000,
            t3 = t + 180_000,
        ))
        .expect("V5 rows");
        drop(conn);

        let store = Store::open(
            &Location::DataDir(dir.path().to_owned()),
            IdentityConfig::default(),
        )
        .expect("migrates");
        assert_eq!(store.current_memberships().unwrap(), [(3, 7)]);
        let intervals: Vec<(i64, Option<i64>)> = store
            .memberships_of(7)
            .unwrap()
            .into_iter()
            .map(|m| (m.entered_at, m.exited_at))
            .collect();
        assert_eq!(
            intervals,
            [(t + 180_000, None), (t + 60_000, Some(t + 120_000))]
        );
        let timeline = store
            .events(
                &ProfileKey::Id(7),
                &EventQuery {
                    limit: 10,
                    ..EventQuery::default()
                },
            )
            .unwrap()
            .unwrap();
        let names: Vec<&str> = timeline
            .events
            .iter()
            .filter_map(|e| e["event"].as_str())
            .collect();
        assert_eq!(
            names,
            ["Segment Entered", "Segment Exited", "Viewed"],
            "the platform's events come from the log, once; the first entry is not one"
        );
        assert_eq!(
            store.event_count().unwrap(),
            1,
            "only the customer's event is stored"
        );
    }
}
