//! The one seam between the backends: a connection that runs SQL with `$n` placeholders and
//! returns rows of plain values. Everything above it (ingest, reads, keys) is written once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::types::{IsNull, ToSql as PgToSql, Type, to_sql_checked};
use r2d2::{ManageConnection, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::StoreError;

/// A SQL value as both backends see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Val {
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Real(r) => Some(*r as i64),
            _ => None,
        }
    }

    pub fn real(&self) -> Option<f64> {
        match self {
            Val::Real(r) => Some(*r),
            Val::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn into_text(self) -> Option<String> {
        match self {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::Real(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

pub type Row = Vec<Val>;

/// Rows per multi-row statement; well inside both backends' parameter limits.
pub const ROWS_PER_STATEMENT: usize = 400;

/// Which SQL dialect a connection speaks, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection of either backend.
pub trait Conn {
    fn dialect(&self) -> Dialect;
    /// Streams the result rows into `each`, one at a time: analyses read millions of rows
    /// and must not hold them all as `Val`s.
    fn for_each_row(
        &mut self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        self.for_each_row(sql, params, &mut |row| {
            out.push(row);
            Ok(())
        })?;
        Ok(out)
    }

    fn query_one(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// `INSERT … VALUES (…), (…) tail` for `values.len() / width` rows. PostgreSQL gets
    /// multi-row statements (one round trip per 400 rows).
    fn insert_rows(
        &mut self,
        head: &str,
        width: usize,
        values: &[Val],
        tail: &str,
    ) -> Result<(), StoreError> {
        for chunk in values.chunks(width * ROWS_PER_STATEMENT) {
            let sql = format!(
                "{head} VALUES {} {tail}",
                value_tuples(chunk.len() / width, width, 1)
            );
            self.execute(&sql, chunk)?;
        }
        Ok(())
    }

    /// Starts a write transaction that holds `domain`'s write lock until commit.
    ///
    /// SQLite: `BEGIN` and a write to that domain's file that changes nothing, which takes
    /// that file's write lock (waiting as `BEGIN IMMEDIATE` would) and no other: `BEGIN
    /// IMMEDIATE` would lock every attached file. PostgreSQL: a transaction-scoped advisory
    /// lock per domain, so that several `prossimo` nodes sharing one database resolve
    /// identities one batch at a time.
    ///
    /// `commit` is set for every transaction (SQLite's `synchronous` is a setting of the
    /// connection, which outlives the transaction): a deferred one never leaves the next
    /// transaction on the same connection deferred too.
    fn begin_write(&mut self, domain: WriteDomain, commit: Commit) -> Result<(), StoreError> {
        let sqlite_sync = match commit {
            Commit::Durable => "FULL",
            Commit::Deferred => "NORMAL",
        };
        match self.dialect() {
            Dialect::Sqlite => {
                // A table of the store's own in the domain's file.
                let table = match domain {
                    WriteDomain::Customers => "settings",
                    WriteDomain::Decisions => "write_gate",
                };
                let schema = domain.schema();
                self.batch(&format!(
                    "PRAGMA {schema}.synchronous = {sqlite_sync};
                     BEGIN; DELETE FROM {schema}.{table} WHERE 0"
                ))
            }
            Dialect::Postgres => {
                let lock = match domain {
                    WriteDomain::Customers => 1886547821,
                    WriteDomain::Decisions => 1886547822,
                };
                let deferred = match commit {
                    Commit::Durable => "",
                    Commit::Deferred => "SET LOCAL synchronous_commit = off;",
                };
                self.batch(&format!(
                    "BEGIN; {deferred} SELECT pg_advisory_xact_lock({lock})"
                ))
            }
        }
    }
}

/// Whether a write transaction's commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Synced to disk before the commit returns: anything acknowledged, configured or owed
    /// to someone outside.
    Durable,
    /// Written to the log but not synced (SQLite's `synchronous = NORMAL` in WAL mode,
    /// PostgreSQL's `synchronous_commit = off`). An application crash loses nothing; a
    /// power or OS failure may take back the last such commits, whole and in order, never
    /// one of them in part. The next durable commit of the same file or server syncs the
    /// log up to itself, so these are then durable too. Only for what can be derived
    /// again from durable data: the decider's membership changes, which `Engine::open`
    /// reconciles with the events on start.
    Deferred,
}

/// The two halves of the store that are written independently, each under its own lock.
///
/// On SQLite they are two files: what customers did and who they are (`prossimo.db`:
/// events, profiles, identifiers, traits, keys, users), and what the platform decided
/// about them (`decisions.db`: segments, membership changes, sizes, destinations and
/// their outbox, the decider's read position). The ingest writer and the decider then
/// commit side by side instead of taking turns on one lock (BENCHMARKS.md, "Audiences").
/// A write transaction stays inside one domain: SQLite commits attached files one after
/// the other, so a transaction spanning both would not be atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteDomain {
    Customers,
    Decisions,
}

impl WriteDomain {
    pub const ALL: [WriteDomain; 2] = [WriteDomain::Customers, WriteDomain::Decisions];

    /// The SQLite schema name of the domain's file on every connection.
    pub fn schema(self) -> &'static str {
        match self {
            WriteDomain::Customers => "main",
            WriteDomain::Decisions => "decisions",
        }
    }
}

// ---------------------------------------------------------------- SQLite

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Val::Real(r) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// SQLite reads `$1` as a named parameter; `?1` is positional, which is what we mean.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Conn for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(i) => Val::Int(i),
                    ValueRef::Real(r) => Val::Real(r),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Val::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            each(values)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let mut stmt = self.prepare_cached(&sqlite_sql(sql))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.execute_batch(sql)?)
    }

    /// One cached single-row statement per row: in-process calls are cheap, and a
    /// single-row insert needs no statement journal (a multi-row one does, and copying
    /// pages into it cost a measured 6% of the writer thread).
    fn insert_rows(
        &mut self,
        head: &str,
        width: usize,
        values: &[Val],
        tail: &str,
    ) -> Result<(), StoreError> {
        let sql = sqlite_sql(&format!(
            "{head} VALUES {} {tail}",
            value_tuples(1, width, 1)
        ));
        let mut stmt = self.prepare_cached(&sql)?;
        for row in values.chunks(width) {
            stmt.execute(rusqlite::params_from_iter(row))?;
        }
        Ok(())
    }
}

/// Opens SQLite connections to the store's two files (see [`WriteDomain`]): the customer
/// file as `main` with the decisions file attached as `decisions`, so that queries name
/// tables of either without a prefix and may join across them. Both files are in WAL
/// mode with full fsync at commit: an acknowledged write survives a crash or a power cut.
#[derive(Debug, Clone)]
pub struct SqliteManager {
    customers: PathBuf,
    decisions: PathBuf,
    lock_wait: Duration,
}

impl SqliteManager {
    /// `lock_wait`: how long a statement waits for another writer before failing busy.
    pub fn new(customers: &Path, decisions: &Path, lock_wait: Duration) -> Self {
        SqliteManager {
            customers: customers.to_owned(),
            decisions: decisions.to_owned(),
            lock_wait,
        }
    }
}

/// Opens one SQLite file on its own (migrations run on each file alone).
pub fn open_sqlite(
    path: &Path,
    lock_wait: Duration,
) -> Result<rusqlite::Connection, rusqlite::Error> {
    configure(rusqlite::Connection::open(path)?, lock_wait)
}

/// Page size of a new decisions file. Nearly every membership change lands on a random
/// leaf of the log's per-profile index, and a commit writes every page it dirtied to the
/// WAL: with 4 KiB pages a step of a few thousand changes wrote a few thousand 4 KiB
/// pages, and writing them was most of the decider's commit (BENCHMARKS.md,
/// "Audiences"). 1 KiB pages write a quarter of the bytes for the same changes.
pub const DECISIONS_PAGE_SIZE: u32 = 1024;

/// Opens the decisions file on its own, creating it with [`DECISIONS_PAGE_SIZE`] pages if
/// it is new (an existing file keeps the page size it was created with).
pub fn open_decisions(
    path: &Path,
    lock_wait: Duration,
) -> Result<rusqlite::Connection, rusqlite::Error> {
    let conn = rusqlite::Connection::open(path)?;
    // Before WAL mode is set: that writes the header, and the page size with it.
    conn.pragma_update(None, "page_size", DECISIONS_PAGE_SIZE)?;
    configure(conn, lock_wait)
}

/// Settings of every connection. Commits never checkpoint the WAL themselves: the store's
/// checkpoint thread does (`checkpoint.rs`).
fn configure(
    conn: rusqlite::Connection,
    lock_wait: Duration,
) -> Result<rusqlite::Connection, rusqlite::Error> {
    conn.busy_timeout(lock_wait)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 0;",
    )?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

impl ManageConnection for SqliteManager {
    type Connection = rusqlite::Connection;
    type Error = rusqlite::Error;

    /// The customer file with the decisions file attached.
    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let conn = open_sqlite(&self.customers, self.lock_wait)?;
        conn.execute(
            "ATTACH DATABASE ?1 AS decisions",
            [self.decisions.to_string_lossy()],
        )?;
        // Journal mode, durability and cache size are per file; the rest is per connection.
        conn.execute_batch(
            "PRAGMA decisions.journal_mode = WAL;
             PRAGMA decisions.synchronous = FULL;
             PRAGMA decisions.cache_size = -65536;",
        )?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        conn.execute_batch("SELECT 1")
    }

    fn has_broken(&self, _: &mut Self::Connection) -> bool {
        false
    }
}

// ---------------------------------------------------------------- PostgreSQL

impl PgToSql for Val {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (Val::Null, _) => Ok(IsNull::Yes),
            (Val::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Val::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Val::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Val::Int(i), _) => i.to_sql(ty, out),
            (Val::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Val::Real(r), _) => r.to_sql(ty, out),
            (Val::Text(s), _) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
                | Type::UNKNOWN
        )
    }

    to_sql_checked!();
}

pub type PgManager = PostgresConnectionManager<postgres::NoTls>;

impl Conn for postgres::Client {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn for_each_row(
        &mut self,
        sql: &str,
        params: &[Val],
        each: &mut dyn FnMut(Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let refs = params.iter().map(|p| p as &(dyn PgToSql + Sync));
        use postgres::fallible_iterator::FallibleIterator;
        let mut rows = postgres::Client::query_raw(self, sql, refs)?;
        while let Some(row) = rows.next()? {
            each(pg_row(&row)?)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let refs: Vec<&(dyn PgToSql + Sync)> =
            params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect();
        Ok(postgres::Client::execute(self, sql, &refs)?)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.batch_execute(sql)?)
    }
}

fn pg_row(row: &postgres::Row) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let v = match *column.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.into(),
            Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(i64::from).into(),
            Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(i64::from).into(),
            Type::BOOL => row.try_get::<_, Option<bool>>(i)?.map(i64::from).into(),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.into(),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(f64::from).into(),
            Type::NUMERIC => {
                return Err(StoreError::Corrupt(format!(
                    "column {} is NUMERIC; cast it to float8",
                    column.name()
                )));
            }
            Type::VOID => Val::Null,
            _ => row.try_get::<_, Option<String>>(i)?.into(),
        };
        out.push(v);
    }
    Ok(out)
}

/// A pooled connection of either backend.
pub enum Pooled {
    Sqlite(PooledConnection<SqliteManager>),
    Postgres(PooledConnection<PgManager>),
}

impl Pooled {
    pub fn conn(&mut self) -> &mut dyn Conn {
        match self {
            Pooled::Sqlite(c) => &mut **c,
            Pooled::Postgres(c) => &mut **c,
        }
    }
}

/// Builds `($1,$2),($3,$4),…` for `rows` rows of `width` values, starting at `$start`.
pub fn value_tuples(rows: usize, width: usize, start: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    let mut n = start;
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push(',');
            }
            out.push('$');
            out.push_str(&n.to_string());
            n += 1;
        }
        out.push(')');
    }
    out
}

/// Builds `$start,…` for an `IN (…)` list of `n` values.
pub fn placeholders(n: usize, start: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_builders() {
        assert_eq!(value_tuples(2, 3, 1), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(placeholders(3, 2), "$2,$3,$4");
        assert_eq!(sqlite_sql("a = $1 AND b = $12"), "a = ?1 AND b = ?12");
    }
}
