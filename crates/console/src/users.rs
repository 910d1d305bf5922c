//! Console users and their sign-in sessions: the console's own tables (`users`,
//! `console_sessions`, created by `migrations/`). Passwords are hashed before they get here
//! (argon2id, see `auth`) and only the PHC string is kept. Session tokens are kept only as
//! SHA-256 hashes, like admin tokens.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use prossimo_store::sql::{Conn, Val};
use prossimo_store::{Store, StoreError, WriteDomain, hash_token, random_key};

prossimo_store::feature_schema! {
    /// The console's tables, in the customer file (SQLite).
    pub const SCHEMA = ("console", WriteDomain::Customers);
}

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, changes nothing.
    Viewer,
    /// Also writes audiences (and later journeys).
    Marketer,
    /// Also manages keys, users and settings.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Marketer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Marketer => "marketer",
            Role::Admin => "admin",
        }
    }

    /// True when this role includes everything `needed` may do.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Role, StoreError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                StoreError::Invalid(format!("unknown role {s:?}: use admin, marketer or viewer"))
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
    pub disabled: bool,
}

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: UserRecord,
    /// The token every form of this session carries.
    pub csrf: String,
    pub expires_at: i64,
}

/// A new session: the cookie value (shown only now) and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

const USER_COLUMNS: &str = "id, email, name, role, password_hash, created_at, disabled_at";

fn user_from(row: &[Val]) -> Result<UserRecord, StoreError> {
    match row {
        [
            Val::Int(id),
            Val::Text(email),
            name,
            Val::Text(role),
            Val::Text(hash),
            created,
            disabled,
        ] => Ok(UserRecord {
            id: *id,
            email: email.clone(),
            name: name.text().map(str::to_owned),
            role: role.parse()?,
            password_hash: hash.clone(),
            created_at: created.int().unwrap_or(0),
            disabled: !matches!(disabled, Val::Null),
        }),
        _ => Err(StoreError::Corrupt("malformed user row".into())),
    }
}

/// The user with this (normalised) e-mail.
fn user_where_email(conn: &mut dyn Conn, email: &str) -> Result<Option<UserRecord>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    conn.query_one(&sql, &[email.into()])?
        .map(|r| user_from(&r))
        .transpose()
}

/// E-mails are compared trimmed and lowercased, as identity resolution does; at most 254
/// bytes (RFC 5321's path limit).
pub fn normalise_email(email: &str) -> Result<String, StoreError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(StoreError::Invalid(format!(
            "{:?} is not an e-mail address",
            email.chars().take(80).collect::<String>()
        )))
    }
}

/// The console's users and sessions in a store.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    store: &'a Store,
}

impl<'a> Users<'a> {
    /// The users of `store`, their tables brought up to date first.
    pub fn of(store: &'a Store) -> Result<Users<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Users { store })
    }

    /// Every user, by e-mail.
    pub fn list(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
        self.store
            .read(|conn| conn.query(&sql, &[]))?
            .iter()
            .map(|r| user_from(r))
            .collect()
    }

    pub fn by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let Ok(email) = normalise_email(email) else {
            return Ok(None);
        };
        self.store.read(|conn| user_where_email(conn, &email))
    }

    /// Adds a user; the e-mail must be free.
    pub fn create(
        &self,
        email: &str,
        name: Option<&str>,
        role: Role,
        password_hash: &str,
    ) -> Result<UserRecord, StoreError> {
        let email = normalise_email(email)?;
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        self.store.write_transaction(WriteDomain::Customers, |conn| {
            if user_where_email(conn, &email)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "a user with e-mail {email} already exists"
                )));
            }
            conn.execute(
                "INSERT INTO users (email, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[
                    email.as_str().into(),
                    name.into(),
                    role.as_str().into(),
                    password_hash.into(),
                    Val::Int(self.store.now_ms()),
                ],
            )?;
            user_where_email(conn, &email)?
                .ok_or_else(|| StoreError::NotFound(format!("user {email}")))
        })
    }

    /// Changes what a user may do, or their password (which signs them out everywhere);
    /// `disabled` stops them signing in and ends their sessions.
    pub fn update(
        &self,
        email: &str,
        role: Option<Role>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<UserRecord, StoreError> {
        let user = self
            .by_email(email)?
            .ok_or_else(|| StoreError::NotFound(format!("user {email:?}")))?;
        self.store
            .write_transaction(WriteDomain::Customers, |conn| {
                if let Some(role) = role {
                    conn.execute(
                        "UPDATE users SET role = $1 WHERE id = $2",
                        &[role.as_str().into(), Val::Int(user.id)],
                    )?;
                }
                if let Some(hash) = password_hash {
                    conn.execute(
                        "UPDATE users SET password_hash = $1 WHERE id = $2",
                        &[hash.into(), Val::Int(user.id)],
                    )?;
                }
                if let Some(disabled) = disabled {
                    let at = if disabled {
                        Val::Int(self.store.now_ms())
                    } else {
                        Val::Null
                    };
                    conn.execute(
                        "UPDATE users SET disabled_at = $1 WHERE id = $2",
                        &[at, Val::Int(user.id)],
                    )?;
                }
                if password_hash.is_some() || disabled == Some(true) {
                    conn.execute(
                        "DELETE FROM console_sessions WHERE user_id = $1",
                        &[Val::Int(user.id)],
                    )?;
                }
                Ok(())
            })?;
        self.by_email(&user.email)?
            .ok_or_else(|| StoreError::NotFound(format!("user {email:?}")))
    }

    /// Starts a session for a user that lasts `ttl_ms`.
    pub fn create_session(&self, user_id: i64, ttl_ms: i64) -> Result<NewSession, StoreError> {
        let session = NewSession {
            token: random_key("ps_"),
            csrf: random_key(""),
        };
        let now = self.store.now_ms();
        self.store.write_transaction(WriteDomain::Customers, |conn| {
            // Sign-ins leave expired sessions behind; each new one sweeps them.
            conn.execute(
                "DELETE FROM console_sessions WHERE expires_at <= $1",
                &[Val::Int(now)],
            )?;
            conn.execute(
                "INSERT INTO console_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[
                    hash_token(&session.token).into(),
                    Val::Int(user_id),
                    session.csrf.as_str().into(),
                    Val::Int(now),
                    Val::Int(now.saturating_add(ttl_ms)),
                ],
            )
        })?;
        Ok(session)
    }

    /// The live session a cookie token belongs to: not expired, its user not disabled.
    pub fn session(&self, token: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT s.csrf, s.expires_at, {} FROM console_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let Some(row) = self.store.read(|conn| {
            conn.query_one(
                &sql,
                &[hash_token(token).into(), Val::Int(self.store.now_ms())],
            )
        })?
        else {
            return Ok(None);
        };
        let (Some(csrf), Some(expires_at)) = (row[0].text(), row[1].int()) else {
            return Err(StoreError::Corrupt("malformed session row".into()));
        };
        Ok(Some(SessionRecord {
            csrf: csrf.to_owned(),
            expires_at,
            user: user_from(&row[2..])?,
        }))
    }

    /// Ends a session (sign-out). Unknown tokens are fine: the result is the same.
    pub fn end_session(&self, token: &str) -> Result<(), StoreError> {
        self.store
            .write_transaction(WriteDomain::Customers, |conn| {
                conn.execute(
                    "DELETE FROM console_sessions WHERE token_hash = $1",
                    &[hash_token(token).into()],
                )
            })?;
        Ok(())
    }
}
