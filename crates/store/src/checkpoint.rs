//! SQLite: WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the WAL's size limit:
//! that commit copies the WAL's pages into the database file and syncs it before it
//! returns. On the ingest writer that was 13% of its time (BENCHMARKS.md, "Audiences"),
//! spent while a group of HTTP requests waited for their acknowledgement, and on the
//! decider's writer it delayed webhooks the same way. Writers commit with automatic
//! checkpoints turned off (`sql::configure`) and this thread checkpoints both files
//! every `every`, in PASSIVE mode: it copies what no reader still needs and never blocks
//! a writer or a reader.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::StoreError;
use crate::sql::SqliteManager;

/// How often the WAL files are checkpointed.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The running checkpoint thread; stopped (after a last checkpoint) when dropped.
pub(crate) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(crate) fn start(
        files: &SqliteManager,
        every: Duration,
    ) -> Result<Checkpointer, StoreError> {
        let conn = r2d2::ManageConnection::connect(files)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("prossimo-checkpoint".into())
            .spawn(move || {
                loop {
                    let last =
                        !matches!(stopped.recv_timeout(every), Err(RecvTimeoutError::Timeout));
                    for schema in ["main", "decisions"] {
                        let done = conn.query_row(
                            &format!("PRAGMA {schema}.wal_checkpoint(PASSIVE)"),
                            [],
                            |_| Ok(()),
                        );
                        if let Err(e) = done {
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
    use crate::{DATABASE_FILE, DECISIONS_FILE, DecidePosition, DecideWrite, Location, Store};

    /// Rows in the database file itself, ignoring its WAL (`immutable=1` reads no WAL).
    fn in_file(path: &std::path::Path, sql: &str) -> i64 {
        let conn = rusqlite::Connection::open_with_flags(
            format!("file:{}?immutable=1", path.display()),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .expect("open read-only");
        conn.query_row(sql, [], |row| row.get(0)).expect("count")
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
        store
            .write_decisions(&DecideWrite {
                position: Some(DecidePosition {
                    event_seq: 1,
                    log_id: 0,
                }),
                ..DecideWrite::default()
            })
            .unwrap();
        let (customers, decisions) = (
            dir.path().join(DATABASE_FILE),
            dir.path().join(DECISIONS_FILE),
        );
        let started = Instant::now();
        while in_file(&customers, "SELECT COUNT(*) FROM events") == 0
            || in_file(&decisions, "SELECT COUNT(*) FROM decide_position") == 0
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "the WAL was not checkpointed"
            );
            std::thread::sleep(super::CHECKPOINT_EVERY / 4);
        }
    }
}
