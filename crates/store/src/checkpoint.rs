//! SQLite: WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the WAL's size limit:
//! that commit copies the WAL's pages into the database file and syncs it before it
//! returns. On the ingest writer that was 13% of its time (BENCHMARKS.md, "Audiences"),
//! spent while a group of HTTP requests waited for their acknowledgement, and on the
//! decider's writer it delayed webhooks the same way. Writers commit with automatic
//! checkpoints turned off (`sql::configure`) and this thread checkpoints both files
//! every [`CheckpointPolicy::every`] in PASSIVE mode, which copies what no reader still
//! needs and blocks neither writers nor readers.
//!
//! A WAL only starts over from its beginning when a writer begins with every frame
//! copied. Under a steady stream of commits a concurrent checkpoint never catches the
//! last one, and the WAL grew by every byte ever written (14 GiB in one benchmark run).
//! So once a WAL is past [`CheckpointPolicy::restart_after_bytes`], the thread copies the
//! few frames left while holding that file's write queue: the next writer then reuses
//! the WAL from its start. Writers wait only for that short second copy.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use crate::sql::SqliteManager;
use crate::{StoreError, WriteDomain, WriteGates};

/// When the store's thread checkpoints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckpointPolicy {
    /// How often both WAL files are checkpointed.
    pub every: Duration,
    /// WAL size past which the last frames are copied with the writers held back, so that
    /// the WAL starts over.
    pub restart_after_bytes: i64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy {
            every: Duration::from_millis(200),
            restart_after_bytes: 64 << 20,
        }
    }
}

/// The running checkpoint thread; stopped (after a last checkpoint) when dropped.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn start(
        files: &SqliteManager,
        gates: Arc<WriteGates>,
        policy: CheckpointPolicy,
    ) -> Result<Checkpointer, StoreError> {
        let conn = r2d2::ManageConnection::connect(files)?;
        let mut restart_after_frames = [0_i64; 2];
        for (frames, domain) in restart_after_frames.iter_mut().zip(WriteDomain::ALL) {
            let schema = domain.schema();
            let page_size: i64 =
                conn.query_row(&format!("PRAGMA {schema}.page_size"), [], |r| r.get(0))?;
            *frames = policy.restart_after_bytes / page_size;
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("prossimo-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(policy.every),
                        Err(RecvTimeoutError::Timeout)
                    );
                    for (domain, restart_after) in
                        WriteDomain::ALL.into_iter().zip(restart_after_frames)
                    {
                        let schema = domain.schema();
                        let writers = gates.of(domain);
                        if let Err(e) =
                            checkpoint(&conn, schema, writers, restart_after, policy.every)
                        {
                            tracing::warn!(%schema, error = %e, "WAL checkpoint failed; retrying");
                        }
                    }
                    if last {
                        break;
                    }
                }
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// One PASSIVE checkpoint of `schema`, and a second one holding its `writers` back (for
/// at most `wait`) when the WAL is longer than `restart_after` frames.
fn checkpoint(
    conn: &Connection,
    schema: &str,
    writers: &parking_lot::Mutex<Option<crate::Writer>>,
    restart_after: i64,
    wait: Duration,
) -> Result<(), StoreError> {
    let passive = || -> Result<i64, StoreError> {
        // Columns: busy (another checkpoint ran), frames in the WAL, frames copied.
        Ok(conn.query_row(
            &format!("PRAGMA {schema}.wal_checkpoint(PASSIVE)"),
            [],
            |row| row.get(1),
        )?)
    };
    if passive()? > restart_after {
        // Waits its turn like any writer; a busy moment just means the next tick.
        if let Some(_writers_held) = writers.try_lock_for(wait) {
            passive()?;
        }
    }
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use prossimo_identity::IdentityConfig;
    use serde_json::json;

    use crate::testsuite::incoming;
    use crate::{DATABASE_FILE, DECISIONS_FILE, Location, Store, WriteDomain};

    /// Rows in the database file itself, ignoring its WAL (`immutable=1` reads no WAL).
    fn in_file(path: &std::path::Path, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open_with_flags(
            format!("file:{}?immutable=1", path.display()),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .expect("open read-only");
        conn.query_row(sql, [], |row| row.get(0)).expect("count")
    }

    /// Under a steady stream of commits, with a reader about, each WAL starts over from
    /// time to time instead of growing by everything ever written.
    #[test]
    fn the_wal_starts_over_under_a_steady_stream_of_commits() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        use crate::WriteGates;
        use crate::sql::{SqliteManager, Val};

        let dir = tempfile::tempdir().expect("temporary directory");
        let files = SqliteManager::new(
            &dir.path().join("customers.db"),
            &dir.path().join("decisions.db"),
            std::time::Duration::from_secs(5),
        );
        r2d2::ManageConnection::connect(&files)
            .expect("open")
            .execute_batch(
                "CREATE TABLE main.settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE main.rows (body BLOB NOT NULL);
                 CREATE TABLE decisions.write_gate (id INTEGER PRIMARY KEY);",
            )
            .expect("schema");
        let gates = Arc::new(WriteGates::new(files.clone()));
        let policy = super::CheckpointPolicy {
            every: std::time::Duration::from_millis(20),
            restart_after_bytes: 256 << 10,
        };
        let _checkpointer =
            super::Checkpointer::start(&files, Arc::clone(&gates), policy).expect("start");

        // A reader that keeps reading, as the API and the decider do.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (stop, files) = (Arc::clone(&stop), files.clone());
            std::thread::spawn(move || {
                let conn = r2d2::ManageConnection::connect(&files).expect("reader");
                while !stop.load(Ordering::Relaxed) {
                    conn.query_row(
                        "SELECT COUNT(*) FROM (SELECT rowid FROM rows ORDER BY rowid DESC LIMIT 10)",
                        [],
                        |row| row.get::<_, i64>(0),
                    )
                    .expect("read");
                }
            })
        };
        let mut written = 0_i64;
        let started = Instant::now();
        while started.elapsed() < std::time::Duration::from_millis(1500) {
            gates
                .transaction(
                    WriteDomain::Customers,
                    crate::Commit::Durable,
                    std::time::Duration::from_secs(5),
                    |conn| {
                        conn.execute(
                            "INSERT INTO rows (body) VALUES (randomblob($1))",
                            &[Val::Int(16 << 10)],
                        )
                    },
                )
                .expect("commit");
            written += 16 << 10;
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().expect("reader thread");
        let wal = std::fs::metadata(dir.path().join("customers.db-wal"))
            .expect("the WAL")
            .len() as i64;
        assert!(
            written > 16 * policy.restart_after_bytes,
            "too little written to tell: {written} bytes"
        );
        // Without the restart the WAL holds every byte written.
        assert!(
            wal < written / 8,
            "the WAL grew to {wal} bytes after {written} bytes written"
        );
    }

    /// Commits leave checkpointing to the store's thread, which copies both files' WAL
    /// into them without any further write.
    #[test]
    fn writes_reach_both_database_files_in_the_background() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::open(
            &Location::DataDir(dir.path().to_owned()),
            IdentityConfig::default(),
        )
        .expect("open");
        let source = store.bootstrap(None, None).unwrap().source;
        store
            .ingest(&incoming(
                &store,
                source.id,
                vec![json!({"type": "track", "userId": "u", "messageId": "m1", "event": "Viewed"})],
            ))
            .unwrap();
        // A row in the decisions file (in the store's own table there).
        store
            .write_transaction(WriteDomain::Decisions, |conn| {
                conn.execute("INSERT INTO write_gate (id) VALUES (1)", &[])
            })
            .unwrap();
        let (customers, decisions) = (
            dir.path().join(DATABASE_FILE),
            dir.path().join(DECISIONS_FILE),
        );
        let started = Instant::now();
        while in_file(&customers, "SELECT COUNT(*) FROM events") == 0
            || in_file(&decisions, "SELECT COUNT(*) FROM write_gate") == 0
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "the WAL was not checkpointed"
            );
            #[allow(clippy::disallowed_methods)] // a test's own thread waits
            std::thread::sleep(super::CheckpointPolicy::default().every / 4);
        }
    }
}
