//! Storage behind one interface, with two real backends.
//!
//! SQLite in WAL mode with `synchronous = FULL` is the embedded default (two files in the
//! data directory, see [`sql::WriteDomain`]; the decider's derived writes commit without
//! a sync of their own, see [`sql::Commit`]); PostgreSQL is the scale-out backend that
//! several stateless `prossimo` nodes can share. Both speak the same SQL through
//! [`sql::Conn`], so ingestion, identity writes and reads are written once, and one
//! conformance suite ([`testsuite`]) runs against both.

mod analytics;
mod checkpoint;
mod error;
mod events;
mod ingest;
mod keys;
mod lease;
mod log;
mod platform;
mod read;
mod schema;
pub mod sql;
#[cfg(any(test, feature = "testsuite"))]
// Test support: a failing assertion or unwrap is the report.
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub mod testsuite;
mod timeline;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use analytics::Touchpoint;
pub use error::{
    MAX_DEFINITION_BYTES, MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES, MAX_URL_BYTES, StoreError, bounded,
};
pub use events::{EventLog, NewEvent, SqlEventLog};
use ingest::StatisticsSchedule;
pub use ingest::{Incoming, IngestReport, OrderLine};
pub use keys::{Bootstrap, Source, TokenInfo, hash_token, normalise_origin, random_key};
pub use lease::Lease;
pub use log::{EventScan, LogPosition, LoggedEvent, MergeRecord, ProfileFacts};
pub use platform::{PLATFORM_SOURCE, PlatformEvent};
use prossimo_identity::IdentityConfig;
use prossimo_model::{Clock, Money, SystemClock};
pub use read::{
    EventPage, EventQuery, MAX_SEARCH_OFFSET, Profile360, ProfileKey, ProfileSummary, SearchPage,
};
pub use schema::Schema;
use sql::Commit;
pub use sql::WriteDomain;
use sql::{PgManager, Pooled, SqliteManager};
pub use timeline::{Bound, EntryKind, PageSql, TimelineEntry, TimelineSource};

mod migrations {
    pub mod sqlite {
        refinery::embed_migrations!("migrations/sqlite");
    }
    pub mod sqlite_decisions {
        refinery::embed_migrations!("migrations/sqlite-decisions");
    }
    pub mod postgres {
        refinery::embed_migrations!("migrations/postgres");
    }
}

/// Name of the SQLite file of customers (events, profiles, identities) inside the data
/// directory.
pub const DATABASE_FILE: &str = "prossimo.db";
/// Name of the SQLite file of decisions (segments, memberships, destinations) beside it;
/// see [`sql::WriteDomain`].
pub const DECISIONS_FILE: &str = "decisions.db";

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
    Sqlite {
        /// The data directory holding both files.
        dir: PathBuf,
        pool: r2d2::Pool<SqliteManager>,
        /// This process's writers of each file queue here for their turn (see
        /// [`Store::write_transaction`]).
        write_gates: Arc<WriteGates>,
        /// Checkpoints the WAL files off the writers' path.
        _checkpointer: checkpoint::Checkpointer,
    },
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
    lock_wait: Duration,
    migrated: schema::Migrated,
    /// Where every write and every feature reads "now" from.
    clock: Arc<dyn Clock>,
    /// Where events are appended and read back.
    events: Arc<dyn EventLog>,
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
            Backend::Sqlite { .. } => None,
            Backend::Postgres(pool) => Some(StatisticsSchedule::starting_at(&mut *pool.get()?)?),
        };
        Ok(Store {
            backend,
            identity,
            money: Money::default(),
            location: location.clone(),
            statistics,
            lock_wait: options.lock_wait,
            migrated: schema::Migrated::default(),
            clock: Arc::new(SystemClock),
            events: Arc::new(SqlEventLog),
        })
    }

    /// The store with its events in `events` instead of the `events` table: the seam a
    /// faster event engine plugs into (see [`EventLog`]).
    pub fn with_event_log(self, events: Arc<dyn EventLog>) -> Store {
        Store { events, ..self }
    }

    /// The reporting currency and conversion rates orders are valued with.
    pub fn with_money(self, money: Money) -> Store {
        Store { money, ..self }
    }

    /// The clock this store and the features using it read the time from (a hand-moved
    /// one in tests).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Store {
        Store { clock, ..self }
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    /// Now, in milliseconds since the epoch, by [`Store::clock`].
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
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
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub(crate) fn conn(&self) -> Result<Pooled, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite { pool, .. } => Pooled::Sqlite(pool.get()?),
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
    let (customers, decisions) = (dir.join(DATABASE_FILE), dir.join(DECISIONS_FILE));
    migrations::sqlite::migrations::runner()
        .run(&mut sql::open_sqlite(&customers, options.lock_wait)?)?;
    migrations::sqlite_decisions::migrations::runner()
        .run(&mut sql::open_decisions(&decisions, options.lock_wait)?)?;
    let files = SqliteManager::new(&customers, &decisions, options.lock_wait);
    move_decisions(&mut r2d2::ManageConnection::connect(&files)?)?;
    let write_gates = Arc::new(WriteGates::new(files.clone()));
    let checkpointer = checkpoint::Checkpointer::start(
        &files,
        Arc::clone(&write_gates),
        checkpoint::CheckpointPolicy::default(),
    )?;
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(files)?;
    Ok(Backend::Sqlite {
        dir: dir.to_owned(),
        pool,
        write_gates,
        _checkpointer: checkpointer,
    })
}

/// The tables that moved from the customer file to the decisions file, with their columns.
const MOVED_TABLES: [(&str, &str); 6] = [
    (
        "segments",
        "id, slug, name, description, definition, created_at, updated_at",
    ),
    (
        "membership_changes",
        "id, segment_id, profile_id, entered, at, first_fill",
    ),
    ("segment_sizes", "segment_id, hour, size"),
    (
        "destinations",
        "id, name, kind, url, secret, filter, enabled, created_at",
    ),
    (
        "deliveries",
        "id, destination_id, profile_id, webhook_id, payload, status, attempts, next_attempt_at, created_at, finished_at, last_error",
    ),
    (
        "delivery_attempts",
        "id, delivery_id, at, status_code, error, duration_ms",
    ),
];

/// Moves the decider's tables of a store written before the split (and the empty ones
/// the customer file's own migrations create) into the decisions file.
///
/// Two transactions, each inside one file, because a commit across attached files is not
/// atomic: the copy replaces whatever an interrupted earlier copy left, then the originals
/// go. Interrupted anywhere, the next open finishes the move with nothing lost.
fn move_decisions(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    let pending: i64 = conn.query_row(
        "SELECT COUNT(*) FROM main.sqlite_master WHERE type = 'table' AND name = 'segments'",
        [],
        |row| row.get(0),
    )?;
    if pending == 0 {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (table, columns) in MOVED_TABLES {
        tx.execute_batch(&format!(
            "DELETE FROM decisions.{table};
             INSERT INTO decisions.{table} ({columns}) SELECT {columns} FROM main.{table};"
        ))?;
    }
    tx.execute_batch(
        "DELETE FROM decisions.decide_position;
         INSERT INTO decisions.decide_position (id, event_seq, log_id)
         SELECT 1,
                COALESCE((SELECT CAST(value AS INTEGER) FROM main.settings WHERE key = 'decide.event_seq'), 0),
                COALESCE((SELECT CAST(value AS INTEGER) FROM main.settings WHERE key = 'decide.log_id'), 0)
         WHERE EXISTS (SELECT 1 FROM main.settings WHERE key LIKE 'decide.%');",
    )?;
    tx.commit()?;
    let tx = conn.transaction()?;
    for (table, _) in MOVED_TABLES {
        tx.execute_batch(&format!("DROP TABLE main.{table};"))?;
    }
    tx.execute_batch("DELETE FROM main.settings WHERE key LIKE 'decide.%';")?;
    tx.commit()?;
    Ok(())
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
    schema::migrate_postgres(&mut conn, &migrations::postgres::migrations::runner())?;
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(10))
        .build(PgManager::new(config, postgres::NoTls))?;
    Ok(Backend::Postgres(pool))
}

impl Store {
    /// Runs `write` in a write transaction of `domain` (see [`sql::Conn::begin_write`]):
    /// committed when it returns `Ok`, rolled back otherwise.
    ///
    /// On SQLite the writers of this process to one file (the ingest writer and the
    /// analyst; the decider, the dispatcher and the API's changes to segments and
    /// destinations) queue on an in-process lock that owns the file's one writing
    /// connection ([`WriteGates`]). SQLite's own busy handler polls with sleeps of up to
    /// 100 ms, so a writer waiting behind another's short transaction could oversleep it
    /// many times over (BENCHMARKS.md, "Audiences": ingest acknowledgements at p99 391 ms
    /// with the decider running at 10,000 events/s before this queue and mimalloc, 98 ms
    /// after). The busy handler is left to other processes (`prossimo import`, a second
    /// node).
    pub fn write_transaction<T>(
        &self,
        domain: WriteDomain,
        write: impl FnOnce(&mut dyn sql::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write_transaction_with(domain, Commit::Durable, write)
    }

    /// [`Store::write_transaction`] with the commit's durability chosen.
    pub fn write_transaction_with<T>(
        &self,
        domain: WriteDomain,
        commit: Commit,
        write: impl FnOnce(&mut dyn sql::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite { write_gates, .. } => {
                write_gates.transaction(domain, commit, self.lock_wait, write)
            }
            Backend::Postgres(_) => in_transaction(domain, commit, self.conn()?.conn(), write),
        }
    }
}

fn in_transaction<T>(
    domain: WriteDomain,
    commit: Commit,
    conn: &mut dyn sql::Conn,
    write: impl FnOnce(&mut dyn sql::Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if let Err(e) = conn.begin_write(domain, commit) {
        // PostgreSQL's BEGIN has already opened the transaction when the lock wait that
        // follows it fails; left open, it would poison the pooled connection.
        let _ = conn.batch("ROLLBACK");
        return Err(e);
    }
    // A failed commit is rolled back too: the writing connection outlives the call.
    match write(conn).and_then(|value| conn.batch("COMMIT").map(|()| value)) {
        Ok(value) => Ok(value),
        Err(e) => {
            // The original error matters more than a failed rollback.
            let _ = conn.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// SQLite: one queue per file, each owning the one connection this process writes that
/// file through (opened on first use, outside the readers' pool).
///
/// A connection's page cache is only valid while no other connection has written the
/// file: SQLite drops all of it at the start of the next transaction otherwise. With
/// writes spread over the pool, the writer found a cold cache nearly every time and read
/// its index pages back from the kernel (copying pages out of the OS cache was the
/// writer's largest cost after SQLite itself); one writing connection per file keeps its
/// cache warm.
pub(crate) struct WriteGates {
    files: SqliteManager,
    customers: parking_lot::Mutex<Option<Writer>>,
    decisions: parking_lot::Mutex<Option<Writer>>,
}

/// A file's writing connection, with the size its page cache has for now.
pub(crate) struct Writer {
    conn: rusqlite::Connection,
    /// The file's size in pages past which the cache takes its large size (SQLite's
    /// lock-byte page, at 1 GiB); `None` once it has.
    grows_at_pages: Option<i64>,
}

/// Page cache of each file's writing connection, in KiB, while the file is under 1 GiB
/// and once it is past.
///
/// Under 1 GiB, B-tree balancing parks a page under the page number of SQLite's lock
/// byte (1 GiB), which is past the end of the file, and the commit then drops cached pages
/// past the end with a walk over the cache's hash table (`balance_nonroot` and
/// `pcache1TruncateUnsafe` in sqlite3.c): the larger the cache, the longer every commit's
/// walk. With 64 MiB of 1 KiB pages that walk was 9% of the server's time on the decider's
/// writer at 10,000 events/s, and 6% on the ingest writer at 300,000 profiles; with
/// 256 MiB it was 13% (BENCHMARKS.md, "Audiences"). Past 1 GiB the walk is gone, and
/// at a million profiles a 256 MiB cache for the ingest writer saved the copies of index
/// and profile pages from the OS cache that the 64 MiB of other connections made on most
/// lookups (about 6% of the server's time), for about 200 MiB more memory.
fn writer_cache_kib(domain: WriteDomain) -> (i64, i64) {
    match domain {
        WriteDomain::Customers => (64 << 10, 256 << 10),
        WriteDomain::Decisions => (8 << 10, 8 << 10),
    }
}

impl Writer {
    fn open(files: &SqliteManager, domain: WriteDomain) -> Result<Writer, StoreError> {
        let conn = r2d2::ManageConnection::connect(files)?;
        let (small, large) = writer_cache_kib(domain);
        let schema = domain.schema();
        conn.pragma_update(Some(schema), "cache_size", -small)?;
        let grows_at_pages = if large > small {
            let page_size: i64 =
                conn.pragma_query_value(Some(schema), "page_size", |r| r.get(0))?;
            Some((1 << 30) / page_size.max(512) + 1)
        } else {
            None
        };
        let mut writer = Writer {
            conn,
            grows_at_pages,
        };
        writer.fit_cache(domain)?;
        Ok(writer)
    }

    /// Gives the cache its large size once the file is past 1 GiB.
    fn fit_cache(&mut self, domain: WriteDomain) -> Result<(), StoreError> {
        let Some(at) = self.grows_at_pages else {
            return Ok(());
        };
        let schema = domain.schema();
        let pages: i64 = self
            .conn
            .pragma_query_value(Some(schema), "page_count", |r| r.get(0))?;
        if pages >= at {
            let (_, large) = writer_cache_kib(domain);
            self.conn
                .pragma_update(Some(schema), "cache_size", -large)?;
            self.grows_at_pages = None;
        }
        Ok(())
    }
}

impl WriteGates {
    fn new(files: SqliteManager) -> WriteGates {
        WriteGates {
            files,
            customers: parking_lot::Mutex::new(None),
            decisions: parking_lot::Mutex::new(None),
        }
    }

    /// `write` in a transaction on the file's writing connection (opened on first use),
    /// once this process's earlier writers of that file are done; gives up after `wait`.
    pub(crate) fn transaction<T>(
        &self,
        domain: WriteDomain,
        commit: Commit,
        wait: Duration,
        write: impl FnOnce(&mut dyn sql::Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut turn = self.of(domain).try_lock_for(wait).ok_or_else(|| {
            StoreError::Unavailable(format!(
                "another write of this process held the store for over {} s",
                wait.as_secs_f64()
            ))
        })?;
        let writer = match &mut *turn {
            Some(writer) => writer,
            empty => empty.insert(Writer::open(&self.files, domain)?),
        };
        let written = in_transaction(domain, commit, &mut writer.conn, write)?;
        if let Err(e) = writer.fit_cache(domain) {
            // Only the cache's size is at stake; the write is committed.
            tracing::warn!(error = %e, "cannot size the writer's page cache");
        }
        Ok(written)
    }

    pub(crate) fn of(&self, domain: WriteDomain) -> &parking_lot::Mutex<Option<Writer>> {
        match domain {
            WriteDomain::Customers => &self.customers,
            WriteDomain::Decisions => &self.decisions,
        }
    }
}

#[cfg(test)]
mod writer_cache_tests {
    use super::*;

    /// The ingest writer's cache is small while the customer file is under 1 GiB (where a
    /// large one makes every commit walk it) and large once past; the decider's stays small.
    #[test]
    fn the_ingest_writers_cache_grows_once_its_file_is_past_the_lock_byte() {
        let fixture = testsuite::Fixture::sqlite();
        let store = &fixture.store;
        let Backend::Sqlite { write_gates, .. } = &store.backend else {
            panic!("an embedded store");
        };
        let cache = |domain| -> i64 {
            let writer = write_gates.of(domain).lock();
            let writer = writer.as_ref().expect("opened by a write");
            writer
                .conn
                .pragma_query_value(Some(domain.schema()), "cache_size", |r| r.get(0))
                .expect("cache size")
        };
        let touch = |domain| {
            store
                .write_transaction(domain, |conn| conn.batch("SELECT 1"))
                .expect("a write");
        };
        for domain in WriteDomain::ALL {
            touch(domain);
        }
        assert_eq!(cache(WriteDomain::Customers), -(64 << 10), "a small file");
        assert_eq!(cache(WriteDomain::Decisions), -(8 << 10));

        // As if the file had just grown past 1 GiB (its first page is past "the lock byte").
        if let Some(writer) = write_gates.of(WriteDomain::Customers).lock().as_mut() {
            writer.grows_at_pages = Some(1);
        }
        for domain in WriteDomain::ALL {
            touch(domain);
        }
        assert_eq!(cache(WriteDomain::Customers), -(256 << 10), "past 1 GiB");
        assert_eq!(cache(WriteDomain::Decisions), -(8 << 10));
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;
    use crate::sql::Val;

    /// A store written before memberships became a log (V5: intervals, and a
    /// `Segment Entered`/`Exited` event per change from the platform's own source) and
    /// before the decisions file opens with the same memberships, history, timeline and
    /// decider position, all moved to the decisions file, even after a move interrupted
    /// between its copy and its drop.
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
        conn.execute_batch(
            "INSERT INTO settings (key, value) VALUES ('decide.event_seq', '1'), ('decide.log_id', '0');",
        )
        .expect("the decider's position");
        drop(conn);
        // An earlier open copied the decisions but stopped before dropping the originals.
        let mut decisions =
            sql::open_decisions(&dir.path().join(DECISIONS_FILE), Duration::from_secs(5))
                .expect("open the decisions file");
        migrations::sqlite_decisions::migrations::runner()
            .run(&mut decisions)
            .expect("decisions schema");
        decisions
            .execute_batch(
                "INSERT INTO segments (id, slug, name, description, definition, created_at, updated_at)
                     VALUES (3, 'vip', 'VIP', '', 'count(any event) >= 1', 0, 0);
                 INSERT INTO membership_changes (id, segment_id, profile_id, entered, at, first_fill)
                     VALUES (1, 3, 7, 1, 0, 1);",
            )
            .expect("a partial copy");
        drop(decisions);

        let store = Store::open(
            &Location::DataDir(dir.path().to_owned()),
            IdentityConfig::default(),
        )
        .expect("migrates");
        let rows =
            |sql: &str| -> Vec<Vec<Val>> { store.read(|conn| conn.query(sql, &[])).expect("read") };
        // Intervals became entries and exits in the order they happened; the first entry
        // (which had no timeline event) is a first member's.
        assert_eq!(
            rows(
                "SELECT segment_id, profile_id, entered, at, first_fill FROM decisions.membership_changes ORDER BY id"
            ),
            [(1, t + 60_000, 1), (0, t + 120_000, 0), (1, t + 180_000, 0)].map(
                |(entered, at, first_fill)| vec![
                    Val::Int(3),
                    Val::Int(7),
                    Val::Int(entered),
                    Val::Int(at),
                    Val::Int(first_fill)
                ]
            )
        );
        let timeline = store
            .timeline(
                &ProfileKey::Id(7),
                &EventQuery {
                    limit: 10,
                    ..EventQuery::default()
                },
                &[],
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
            ["Viewed"],
            "the platform's own events left the event log (they come from the changes)"
        );
        assert_eq!(
            rows("SELECT event_seq, log_id FROM decisions.decide_position"),
            [vec![Val::Int(1), Val::Int(0)]]
        );
        assert_eq!(
            rows("SELECT slug FROM decisions.segments"),
            [vec![Val::from("vip")]]
        );
        let left_behind = store
            .conn()
            .unwrap()
            .conn()
            .query(
                "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name IN
                 ('segments', 'membership_changes', 'segment_sizes', 'destinations', 'deliveries', 'delivery_attempts')
                 UNION ALL SELECT key FROM main.settings WHERE key LIKE 'decide.%'",
                &[],
            )
            .unwrap();
        assert!(left_behind.is_empty(), "{left_behind:?}");
        let page_sizes = store
            .conn()
            .unwrap()
            .conn()
            .query(
                "SELECT main.page_size, decisions.page_size FROM pragma_page_size('main') AS main, pragma_page_size('decisions') AS decisions",
                &[],
            )
            .unwrap();
        assert_eq!(
            page_sizes,
            [vec![
                Val::Int(4096),
                Val::Int(i64::from(sql::DECISIONS_PAGE_SIZE))
            ]]
        );
    }
}
