//! Sign-in: argon2id password hashes, session cookies (HttpOnly, SameSite, Secure where the
//! browser reaches us over HTTPS or on this machine), a CSRF token on every form, and a
//! limit on failed sign-ins per account.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::users::{Role, SessionRecord};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::http::HeaderMap;
use axum::http::header;

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
    // A fresh random salt, from the operating system.
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
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
    use rand::RngExt;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The client's address: the connection's peer; or, when that peer is a proxy the
/// configuration trusts (`[console] trusted_proxies`), the address the proxies say they
/// forwarded for (`X-Forwarded-For`, read from the right, skipping trusted proxies). A
/// header from anyone else is ignored, so nobody can pick the address they are counted as.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<[ipnet::IpNet]>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Each proxy appends the address it heard from; the rightmost entry not added by
        // a proxy we trust is the client (anything left of it could be forged).
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<&str>>();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<ClientAddr, std::convert::Infallible> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let client = match (peer, parts.extensions.get::<TrustedProxies>()) {
            (Some(peer), Some(trusted)) => Some(trusted.client(peer, &parts.headers)),
            (peer, _) => peer,
        };
        Ok(ClientAddr(client))
    }
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

/// Failed sign-ins per account and client address, in memory: a node restart forgets
/// them, which at worst gives an attacker a few more tries per restart. An attempt counts
/// from the moment it starts (not when its slow password check ends), so parallel guesses
/// cannot slip past the limit; keying by client address too means a stranger hammering a
/// known account (like `admin@localhost`) cannot lock its owner out from elsewhere.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    entries: Mutex<HashMap<String, Attempts>>,
}

#[derive(Debug, Default)]
struct Attempts {
    failures: Vec<Instant>,
    in_flight: usize,
}

/// Keys tracked at most; past that the stalest is forgotten.
const MAX_TRACKED: usize = 10_000;

/// A sign-in attempt in progress; it holds its place against the limit until it is
/// settled as failed or succeeded (or dropped, when the request goes away).
#[derive(Debug)]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    key: String,
    settled: bool,
}

impl LoginLimiter {
    /// The limiter's key for an account (already normalised) and a client address.
    pub fn key(email: &str, client: Option<std::net::IpAddr>) -> String {
        match client {
            Some(ip) => format!("{email}|{ip}"),
            None => email.to_owned(),
        }
    }

    /// Starts an attempt, or says how long to wait when failures plus attempts still
    /// running already reach [`MAX_FAILURES`] within [`FAILURE_WINDOW`].
    pub fn begin(&self, key: &str, now: Instant) -> Result<Attempt<'_>, Duration> {
        let Ok(mut entries) = self.entries.lock() else {
            return Err(Duration::from_secs(1));
        };
        if !entries.contains_key(key) && entries.len() >= MAX_TRACKED {
            entries.retain(|_, a| {
                a.in_flight > 0
                    || a.failures
                        .last()
                        .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
            });
            if entries.len() >= MAX_TRACKED
                && let Some(stalest) = entries
                    .iter()
                    .filter(|(_, a)| a.in_flight == 0)
                    .min_by_key(|(_, a)| a.failures.last().copied())
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&stalest);
            }
        }
        let attempts = entries.entry(key.to_owned()).or_default();
        attempts
            .failures
            .retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
        if attempts.failures.len() + attempts.in_flight >= MAX_FAILURES {
            return Err(match attempts.failures.first() {
                Some(first) => FAILURE_WINDOW.saturating_sub(now.duration_since(*first)),
                None => Duration::from_secs(1),
            }
            .max(Duration::from_secs(1)));
        }
        attempts.in_flight += 1;
        Ok(Attempt {
            limiter: self,
            key: key.to_owned(),
            settled: false,
        })
    }

    fn settle(&self, key: &str, failed_at: Option<Instant>) {
        if let Ok(mut entries) = self.entries.lock() {
            match failed_at {
                Some(at) => {
                    if let Some(a) = entries.get_mut(key) {
                        a.in_flight = a.in_flight.saturating_sub(1);
                        a.failures.push(at);
                    }
                }
                None => {
                    entries.remove(key);
                }
            }
        }
    }
}

impl Attempt<'_> {
    pub fn failed(mut self, now: Instant) {
        self.settled = true;
        self.limiter.settle(&self.key, Some(now));
    }

    pub fn succeeded(mut self) {
        self.settled = true;
        self.limiter.settle(&self.key, None);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled
            && let Ok(mut entries) = self.limiter.entries.lock()
            && let Some(a) = entries.get_mut(&self.key)
        {
            a.in_flight = a.in_flight.saturating_sub(1);
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
            let attempt = limiter
                .begin("anna@x.it", start)
                .unwrap_or_else(|_| panic!("attempt {i}"));
            attempt.failed(start);
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(
            limiter.begin("anna@x.it", later).unwrap_err(),
            FAILURE_WINDOW - Duration::from_secs(60)
        );
        assert!(limiter.begin("bruno@x.it", later).is_ok(), "per account");
        assert!(
            limiter.begin("anna@x.it", start + FAILURE_WINDOW).is_ok(),
            "the window passes"
        );
        let carla = limiter.begin("carla@x.it", start).unwrap();
        carla.succeeded();
        assert!(limiter.entries.lock().unwrap().get("carla@x.it").is_none());
    }

    #[test]
    fn parallel_attempts_count_before_their_checks_end() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        let running: Vec<Attempt<'_>> = (0..MAX_FAILURES)
            .map(|_| limiter.begin("admin@localhost", now).unwrap())
            .collect();
        assert!(
            limiter.begin("admin@localhost", now).is_err(),
            "no sixth guess in flight"
        );
        drop(running);
        assert!(
            limiter.begin("admin@localhost", now).is_ok(),
            "abandoned attempts give their place back"
        );
        assert_eq!(
            LoginLimiter::key("admin@localhost", Some("10.0.0.7".parse().unwrap())),
            "admin@localhost|10.0.0.7"
        );
    }

    #[test]
    fn the_limiter_forgets_the_stalest_key_when_full() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..MAX_TRACKED {
            limiter.begin(&format!("u{i}"), now).unwrap().failed(now);
        }
        limiter.begin("one-more", now).unwrap().failed(now);
        assert_eq!(limiter.entries.lock().unwrap().len(), MAX_TRACKED);
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
