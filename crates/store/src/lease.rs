//! Exclusive roles across every process sharing a store. Some work must run once per store,
//! not once per node: the decider (its memberships and outbox rows) and the webhook
//! dispatcher (its deliveries). The first process to take a role's lease does the work; the
//! others wait on standby and take over when it goes away, since the lease dies with its
//! holder: an exclusive file lock for the embedded store, a session advisory lock on a
//! dedicated connection for PostgreSQL.

use std::fs::{File, OpenOptions, TryLockError};
use std::str::FromStr;
use std::time::Duration;

use crate::{Location, Store, StoreError};

/// Held while the role is this process's; dropping it hands the role on.
pub struct Lease {
    _holder: Holder,
}

/// Kept only to be dropped: closing the file or the connection releases the lock.
enum Holder {
    File { _file: File },
    Postgres { _client: Box<postgres::Client> },
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lease")
    }
}

/// FNV-1a, so every node derives the same advisory-lock key from a role name.
fn lock_key(text: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

impl Store {
    /// Takes the lease of `role` if no other process holds it.
    pub fn try_lease(&self, role: &str) -> Result<Option<Lease>, StoreError> {
        match &self.location {
            Location::DataDir(dir) => {
                let path = dir.join(format!("{role}.lock"));
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|source| StoreError::DataDir {
                        path: path.clone(),
                        source,
                    })?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(Lease {
                        _holder: Holder::File { _file: file },
                    })),
                    Err(TryLockError::WouldBlock) => Ok(None),
                    Err(TryLockError::Error(source)) => Err(StoreError::DataDir { path, source }),
                }
            }
            Location::Postgres { url, schema } => {
                let mut config = postgres::Config::from_str(url)?;
                config.connect_timeout(Duration::from_secs(10));
                let mut client = config.connect(postgres::NoTls)?;
                // Advisory locks are per database: the schema keeps stores apart.
                let key = lock_key(&format!("{}/{role}", schema.as_deref().unwrap_or("public")));
                let taken: bool = client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
                    .get(0);
                Ok(taken.then_some(Lease {
                    _holder: Holder::Postgres {
                        _client: Box::new(client),
                    },
                }))
            }
        }
    }
}
