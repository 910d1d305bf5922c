//! Sign-in: argon2id password hashes, session cookies (HttpOnly, SameSite, Secure where the
//! browser reaches us over HTTPS or on this machine), a CSRF token on every form, and a
//! limit on failed sign-ins per account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use axum::http::header;
use prossimo_store::{Role, SessionRecord};

/// The session cookie.
pub const SESSION_COOKIE: &str = "prossimo_session";
/// The login form's own CSRF token (double-submitted: cookie and hidden field), since a
/// person signing in has no session yet.
pub const LOGIN_CSRF_COOKIE: &str = "prossimo_login_csrf";
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Failed sign-ins per account within [`FAILURE_WINDOW`] before it is locked for the rest
/// of the window.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {0} characters")]
    TooShort(usize),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Shortest password the console accepts.
pub const MIN_PASSWORD: usize = 10;

/// An argon2id PHC string for `password` (fresh random salt, the crate's default cost).
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(PasswordError::TooShort(MIN_PASSWORD));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the stored PHC string; false for any malformed hash.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A hash to verify against when the account does not exist, so that an unknown e-mail
/// takes as long as a wrong password and does not reveal which accounts exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy-password-never-used").unwrap_or_default())
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether cookies should carry `Secure`: when the request came over HTTPS (directly or
/// through a proxy that says so) or to this machine, where browsers treat plain HTTP as
/// secure. A plain-HTTP request to another host would never send a `Secure` cookie back,
/// so there it is left off (and the operator should put TLS in front).
pub fn secure_context(headers: &HeaderMap) -> bool {
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let local =
        host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    forwarded_https || local
}

/// A `Set-Cookie` value with the console's attributes.
pub fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    match max_age {
        Some(age) => c.push_str(&format!("; Max-Age={}", age.as_secs())),
        None => c.push_str("; Max-Age=0"),
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A random token for forms and cookies.
pub fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed-in person behind a request.
#[derive(Debug, Clone)]
pub struct Signed {
    pub session: SessionRecord,
}

impl Signed {
    pub fn role(&self) -> Role {
        self.session.user.role
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    pub fn email(&self) -> &str {
        &self.session.user.email
    }

    /// True when the form's token is this session's.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        same_secret(submitted, &self.session.csrf)
    }
}

/// Failed sign-ins per account, in memory: a node restart forgets them, which at worst
/// gives an attacker a few more tries per restart.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    /// When the account is locked, how long until it may try again.
    pub fn locked_for(&self, email: &str, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().ok()?;
        let list = failures.get_mut(&email.trim().to_lowercase())?;
        list.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        (list.len() >= MAX_FAILURES)
            .then(|| {
                list.first()
                    .map(|first| FAILURE_WINDOW - now.duration_since(*first))
            })
            .flatten()
    }

    pub fn failed(&self, email: &str, now: Instant) {
        if let Ok(mut failures) = self.failures.lock() {
            // Bound the map: forget accounts whose failures have all aged out.
            if failures.len() > 10_000 {
                failures.retain(|_, list| {
                    list.last()
                        .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
                });
            }
            failures
                .entry(email.trim().to_lowercase())
                .or_default()
                .push(now);
        }
    }

    pub fn succeeded(&self, email: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&email.trim().to_lowercase());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterY", &phc));
        assert!(!verify_password("anything", "not a hash"));
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort(MIN_PASSWORD))
        ));
        assert_ne!(
            phc,
            hash_password("correct horse battery").unwrap(),
            "salted"
        );
    }

    #[test]
    fn five_failures_lock_an_account_for_the_rest_of_the_window() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(limiter.locked_for("Anna@x.it", start), None, "after {i}");
            limiter.failed("anna@x.it ", start);
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(
            limiter.locked_for("anna@x.it", later),
            Some(FAILURE_WINDOW - Duration::from_secs(60))
        );
        assert_eq!(limiter.locked_for("bruno@x.it", later), None, "per account");
        assert_eq!(
            limiter.locked_for("anna@x.it", start + FAILURE_WINDOW),
            None
        );
        limiter.failed("carla@x.it", start);
        limiter.succeeded("carla@x.it");
        assert_eq!(limiter.failures.lock().unwrap().get("carla@x.it"), None);
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; prossimo_session=ps_x"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("prossimo_lang=it"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("ps_x"));
        assert_eq!(cookie(&headers, "prossimo_lang"), Some("it"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn secure_cookies_on_https_and_on_this_machine() {
        let with = |name: &'static str, value: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static(value));
            h
        };
        assert!(secure_context(&with("host", "127.0.0.1:8080")));
        assert!(secure_context(&with("host", "localhost:8080")));
        assert!(!secure_context(&with("host", "crm.example.it")));
        assert!(secure_context(&with("x-forwarded-proto", "https")));
        assert!(
            set_cookie("a", "b", Some(SESSION_TTL), true)
                .contains("HttpOnly; SameSite=Lax; Max-Age=43200; Secure")
        );
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
