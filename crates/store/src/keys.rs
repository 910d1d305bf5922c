//! Sources with their write keys, and admin tokens (kept only as SHA-256 hashes).

use rand::RngExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{MAX_NAME_BYTES, bounded};
use crate::sql::{Conn, Val};
use crate::{Store, StoreError, WriteDomain};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub id: i64,
    pub name: String,
    pub write_key: String,
    pub created_at: i64,
    pub revoked: bool,
    /// The web pages (origins) that may send with this write key from a browser; `None`
    /// lets any page send (the write key is public in every page anyway).
    pub allowed_origins: Option<Vec<String>>,
}

impl Source {
    /// Whether a browser request from `origin` (its `Origin` header) may use this source.
    pub fn allows_origin(&self, origin: &str) -> bool {
        match &self.allowed_origins {
            None => true,
            Some(allowed) => normalise_origin(origin).is_ok_and(|o| allowed.contains(&o)),
        }
    }
}

/// The longest write key or admin token a person may choose, in bytes.
const MAX_KEY_BYTES: usize = 256;

/// The longest origin accepted in a source's list, in bytes.
const MAX_ORIGIN_BYTES: usize = 256;

/// An origin as browsers send it in `Origin`: `scheme://host[:port]`, lower-case, no path
/// (a trailing slash is forgiven); or `null`, which pages opened from a file send.
pub fn normalise_origin(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed == "null" {
        return Ok(trimmed.to_owned());
    }
    let lower = trimmed.to_ascii_lowercase();
    let bad = || {
        format!(
            "{raw:?} is not an origin like https://shop.example.it (scheme, host and port only)"
        )
    };
    if lower.len() > MAX_ORIGIN_BYTES {
        return Err(format!("an origin is at most {MAX_ORIGIN_BYTES} bytes"));
    }
    let (scheme, rest) = lower.split_once("://").ok_or_else(bad)?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return Err(bad());
    }
    let host_ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(bad());
    }
    Ok(lower)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    /// The first characters of the token, to tell tokens apart without revealing them.
    pub prefix: String,
    pub created_at: i64,
    pub revoked: bool,
}

/// What first start created (or found), so it can be shown once to the person starting.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub source: Source,
    /// The plaintext admin token, when this call created it.
    pub new_admin_token: Option<String>,
}

/// Name of the source created on first start.
pub const DEFAULT_SOURCE: &str = "default";

/// A random secret of 40 hex digits after `prefix`: write keys, tokens, session cookies.
pub fn random_key(prefix: &str) -> String {
    let bytes: [u8; 20] = rand::rng().random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// How secrets are kept: their SHA-256, never the secret itself.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn source_from(row: Vec<Val>) -> Result<Source, StoreError> {
    match row.as_slice() {
        [
            Val::Int(id),
            Val::Text(name),
            Val::Text(key),
            created,
            revoked,
            origins,
        ] => Ok(Source {
            id: *id,
            name: name.clone(),
            write_key: key.clone(),
            created_at: created.int().unwrap_or(0),
            revoked: !matches!(revoked, Val::Null),
            allowed_origins: origins
                .text()
                .map(|list| list.lines().map(str::to_owned).collect()),
        }),
        _ => Err(StoreError::Corrupt("malformed source row".into())),
    }
}

const SOURCE_COLUMNS: &str = "id, name, write_key, created_at, revoked_at, allowed_origins";

/// The two ways a source is looked up, each unique.
#[derive(Clone, Copy)]
enum SourceBy {
    Name,
    WriteKey,
}

fn source_where(
    conn: &mut dyn Conn,
    by: SourceBy,
    value: &str,
) -> Result<Option<Source>, StoreError> {
    let column = match by {
        SourceBy::Name => "name",
        SourceBy::WriteKey => "write_key",
    };
    let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE {column} = $1");
    conn.query_one(&sql, &[value.into()])?
        .map(source_from)
        .transpose()
}

impl Store {
    /// Makes sure a source and an admin token exist. Given keys are added when missing, so
    /// scripts can choose them (`PROSSIMO_WRITE_KEY`, `PROSSIMO_ADMIN_TOKEN`).
    pub fn bootstrap(
        &self,
        write_key: Option<&str>,
        admin_token: Option<&str>,
    ) -> Result<Bootstrap, StoreError> {
        let source = match write_key {
            Some(key) => match self.source_by_write_key(key)? {
                Some(s) => s,
                None => {
                    let name = match self.source_by_name(DEFAULT_SOURCE)? {
                        Some(_) => format!("env-{}", &hash_token(key)[..8]),
                        None => DEFAULT_SOURCE.to_owned(),
                    };
                    self.create_source(&name, Some(key))?
                }
            },
            None => match self.sources()?.into_iter().find(|s| !s.revoked) {
                Some(s) => s,
                None => self.create_source(DEFAULT_SOURCE, None)?,
            },
        };
        let new_admin_token = match admin_token {
            Some(token) if self.verify_admin_token(token)? => None,
            Some(token) => {
                self.create_admin_token("env", Some(token))?;
                None
            }
            None if self.admin_tokens()?.iter().all(|t| t.revoked) => {
                Some(self.create_admin_token("initial", None)?)
            }
            None => None,
        };
        Ok(Bootstrap {
            source,
            new_admin_token,
        })
    }

    pub fn sources(&self) -> Result<Vec<Source>, StoreError> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources ORDER BY id");
        self.conn()?
            .conn()
            .query(&sql, &[])?
            .into_iter()
            .map(source_from)
            .collect()
    }

    pub fn source_by_write_key(&self, key: &str) -> Result<Option<Source>, StoreError> {
        source_where(self.conn()?.conn(), SourceBy::WriteKey, key)
    }

    pub fn source_by_name(&self, name: &str) -> Result<Option<Source>, StoreError> {
        source_where(self.conn()?.conn(), SourceBy::Name, name)
    }

    /// Creates a source; a write key is generated unless given.
    pub fn create_source(&self, name: &str, write_key: Option<&str>) -> Result<Source, StoreError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Invalid("a source needs a name".into()));
        }
        bounded("name", name, MAX_NAME_BYTES)?;
        let key = match write_key {
            Some(k) if k.trim().len() < 8 => {
                return Err(StoreError::Invalid(
                    "a write key needs at least 8 characters".into(),
                ));
            }
            Some(k) => {
                bounded("write_key", k.trim(), MAX_KEY_BYTES)?;
                k.trim().to_owned()
            }
            None => random_key("wk_"),
        };
        self.write_transaction(WriteDomain::Customers, |conn| {
            if source_where(conn, SourceBy::Name, name)?.is_some() {
                return Err(StoreError::Invalid(format!(
                    "a source named {name:?} already exists"
                )));
            }
            if source_where(conn, SourceBy::WriteKey, &key)?.is_some() {
                return Err(StoreError::Invalid(
                    "that write key is already in use".into(),
                ));
            }
            conn.execute(
                "INSERT INTO sources (name, write_key, created_at) VALUES ($1, $2, $3)",
                &[name.into(), key.as_str().into(), Val::Int(self.now_ms())],
            )?;
            source_where(conn, SourceBy::Name, name)?
                .ok_or_else(|| StoreError::NotFound(format!("source {name:?}")))
        })
    }

    /// Sets the web pages that may send with a source's write key from a browser; `None`
    /// lets any page send. Each origin is checked and normalised (`normalise_origin`).
    pub fn set_source_origins(
        &self,
        name: &str,
        origins: Option<&[String]>,
    ) -> Result<Source, StoreError> {
        let list = match origins {
            None => None,
            Some(origins) => {
                let mut normalised = origins
                    .iter()
                    .map(|o| normalise_origin(o).map_err(StoreError::Invalid))
                    .collect::<Result<Vec<String>, StoreError>>()?;
                normalised.sort();
                normalised.dedup();
                Some(normalised.join("\n"))
            }
        };
        self.write_transaction(WriteDomain::Customers, |conn| {
            let n = conn.execute(
                "UPDATE sources SET allowed_origins = $1 WHERE name = $2",
                &[list.clone().map_or(Val::Null, Val::Text), name.into()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("source {name:?}")));
            }
            source_where(conn, SourceBy::Name, name)?
                .ok_or_else(|| StoreError::NotFound(format!("source {name:?}")))
        })
    }

    /// Stops a source's write key from being accepted.
    pub fn revoke_source(&self, name: &str) -> Result<(), StoreError> {
        let n = self.write_transaction(WriteDomain::Customers, |conn| {
            conn.execute(
                "UPDATE sources SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
                &[Val::Int(self.now_ms()), name.into()],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("active source {name:?}")));
        }
        Ok(())
    }

    /// Creates an admin token and returns it in plaintext (the only time it is visible).
    pub fn create_admin_token(
        &self,
        name: &str,
        token: Option<&str>,
    ) -> Result<String, StoreError> {
        bounded("name", name, MAX_NAME_BYTES)?;
        let token = match token {
            Some(t) if t.trim().len() < 16 => {
                return Err(StoreError::Invalid(
                    "an admin token needs at least 16 characters".into(),
                ));
            }
            Some(t) => {
                bounded("token", t.trim(), MAX_KEY_BYTES)?;
                t.trim().to_owned()
            }
            None => random_key("pat_"),
        };
        let prefix: String = token.chars().take(8).collect();
        self.write_transaction(WriteDomain::Customers, |conn| {
            conn.execute(
                "INSERT INTO admin_tokens (name, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4)",
                &[name.into(), hash_token(&token).into(), prefix.into(), Val::Int(self.now_ms())],
            )
        })?;
        Ok(token)
    }

    pub fn admin_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = self.conn()?.conn().query(
            "SELECT id, name, prefix, created_at, revoked_at FROM admin_tokens ORDER BY id",
            &[],
        )?;
        rows.into_iter()
            .map(|row| match row.as_slice() {
                [
                    Val::Int(id),
                    Val::Text(name),
                    Val::Text(prefix),
                    created,
                    revoked,
                ] => Ok(TokenInfo {
                    id: *id,
                    name: name.clone(),
                    prefix: prefix.clone(),
                    created_at: created.int().unwrap_or(0),
                    revoked: !matches!(revoked, Val::Null),
                }),
                _ => Err(StoreError::Corrupt("malformed admin token row".into())),
            })
            .collect()
    }

    pub fn verify_admin_token(&self, token: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()?
            .conn()
            .query_one(
                "SELECT id FROM admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                &[hash_token(token).into()],
            )?
            .is_some())
    }

    pub fn revoke_admin_token(&self, id: i64) -> Result<(), StoreError> {
        let n = self.write_transaction(WriteDomain::Customers, |conn| {
            conn.execute(
                "UPDATE admin_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &[Val::Int(self.now_ms()), Val::Int(id)],
            )
        })?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("active admin token {id}")));
        }
        Ok(())
    }
}
