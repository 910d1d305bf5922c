//! Where SMS go: a provider with Twilio's Messages API (Twilio itself, or any provider
//! that speaks its shape: the base URL is configurable), or, with none configured, a
//! folder of `.txt` files a person can read (`<data dir>/sms`).
//!
//! Twilio's shape: a form `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` (`To`,
//! `From`, `Body`, `StatusCallback`) under basic auth answers `201` with the message's
//! `sid`; errors answer a JSON body with Twilio's error `code`. Delivery is reported later
//! to the `StatusCallback` URL, signed in `X-Twilio-Signature` (HMAC-SHA1 with the auth
//! token over the URL and the sorted form fields), checked by [`verify_signature`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;

use crate::mailer::write_whole;
use ring::hmac;
use serde::Deserialize;

/// A provider's account.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    /// `https://api.twilio.com`, or another provider's base URL.
    pub api_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("api_url", &self.api_url)
            .field("account_sid", &self.account_sid)
            .finish_non_exhaustive()
    }
}

/// What became of a text handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Texted {
    /// Accepted: the provider's id of the message and its status (`queued`, `accepted`).
    Accepted { sid: String, detail: String },
    /// Refused for now (throttled, unavailable, unreachable): try again later.
    Transient(String),
    /// Refused for good, with the provider's error code.
    Permanent { code: Option<i64>, detail: String },
    /// No answer after the request went out: it may have been sent, so it is not sent
    /// again.
    Unknown(String),
}

/// Twilio's error codes that say the number cannot get SMS (not a number, not a
/// mobile, not reachable by SMS).
pub const BAD_NUMBER_CODES: [i64; 3] = [21211, 21614, 21612];
/// Twilio's error code for a recipient who replied STOP: they have left the channel.
pub const UNSUBSCRIBED_CODE: i64 = 21610;

/// An SMS channel's transport.
#[derive(Debug, Clone)]
pub enum Texter {
    Provider(Provider),
    Folder(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Provider {
    client: reqwest::Client,
    config: ProviderConfig,
}

#[derive(Deserialize)]
struct Created {
    sid: String,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct Refused {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

impl Texter {
    pub fn provider(config: ProviderConfig) -> Result<Texter, String> {
        let url = url::Url::parse(&config.api_url)
            .map_err(|e| format!("api_url {:?}: {e}", config.api_url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("api_url {:?}: not http(s)", config.api_url));
        }
        if config.account_sid.trim().is_empty() || config.auth_token.trim().is_empty() {
            return Err("a provider needs account_sid and auth_token".into());
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Texter::Provider(Provider { client, config }))
    }

    /// A folder of `.txt` files, created if missing.
    pub fn folder(path: &Path) -> Result<Texter, String> {
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create the SMS folder {}: {e}", path.display()))?;
        Ok(Texter::Folder(path.to_owned()))
    }

    /// A short description for logs.
    pub fn describe(&self) -> String {
        match self {
            Texter::Provider(p) => format!("the provider at {}", p.config.api_url),
            Texter::Folder(path) => format!("the folder {}", path.display()),
        }
    }

    /// Hands a text over; `key` names it in the folder (the send's idempotency key), and
    /// the provider reports its delivery to `status_callback`.
    pub async fn hand(&self, text: &Text<'_>) -> Texted {
        match self {
            Texter::Provider(provider) => provider.send(text).await,
            Texter::Folder(dir) => {
                let (dir, file) = (dir.clone(), text.file());
                let name = text.key.to_owned();
                let write = move || write_whole(&dir, &name, "txt", file.as_bytes());
                match tokio::task::spawn_blocking(write).await {
                    Ok(Ok(path)) => Texted::Accepted {
                        sid: text.key.to_owned(),
                        detail: format!("written to {}", path.display()),
                    },
                    Ok(Err(e)) => Texted::Transient(e.to_string()),
                    Err(e) => Texted::Transient(e.to_string()),
                }
            }
        }
    }
}

/// One SMS to hand over.
#[derive(Debug, Clone)]
pub struct Text<'a> {
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    pub key: &'a str,
    pub status_callback: Option<&'a str>,
}

impl Text<'_> {
    fn file(&self) -> String {
        let s = crate::sms::segments(self.body);
        format!(
            "To: {}\nFrom: {}\nSegments: {} ({})\n\n{}\n",
            self.to,
            self.from,
            s.count,
            s.encoding.as_str(),
            self.body
        )
    }
}

impl Provider {
    async fn send(&self, text: &Text<'_>) -> Texted {
        let c = &self.config;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            c.api_url.trim_end_matches('/'),
            c.account_sid
        );
        let mut form = vec![("To", text.to), ("From", text.from), ("Body", text.body)];
        if let Some(callback) = text.status_callback {
            form.push(("StatusCallback", callback));
        }
        let response = self
            .client
            .post(&url)
            .basic_auth(&c.account_sid, Some(&c.auth_token))
            .form(&form)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            // Never connected: nothing went out.
            Err(e) if e.is_connect() || e.is_builder() => return Texted::Transient(e.to_string()),
            Err(e) => return Texted::Unknown(e.to_string()),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) if status.is_success() => {
                return Texted::Unknown(format!("{status}, then the answer broke off: {e}"));
            }
            Err(_) => Default::default(),
        };
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(created) => Texted::Accepted {
                    detail: format!(
                        "{} {}",
                        status.as_u16(),
                        created.status.as_deref().unwrap_or("accepted")
                    ),
                    sid: created.sid,
                },
                Err(e) => Texted::Unknown(format!("{status} without a message sid: {e}")),
            };
        }
        let refused: Option<Refused> = serde_json::from_slice(&body).ok();
        let detail = format!(
            "{} {}",
            status.as_u16(),
            refused
                .as_ref()
                .and_then(|r| r.message.clone())
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect())
        );
        match status.as_u16() {
            // Throttled, or not there for now: the message was not created.
            429 | 500 | 503 => Texted::Transient(detail),
            // A gateway lost the answer: the message may exist.
            502 | 504 => Texted::Unknown(detail),
            _ => Texted::Permanent {
                code: refused.and_then(|r| r.code),
                detail,
            },
        }
    }
}

/// Twilio's signature of a form POST to `url`: base64 of HMAC-SHA1, under the auth
/// token, of the URL followed by every field's name and value, sorted by name.
pub fn signature(auth_token: &str, url: &str, fields: &[(String, String)]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    let tag = hmac::sign(&key, &signed_text(url, fields));
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `claimed` (the `X-Twilio-Signature` header) signs this POST; compared in
/// constant time.
pub fn verify_signature(
    auth_token: &str,
    url: &str,
    fields: &[(String, String)],
    claimed: &str,
) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(claimed.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    hmac::verify(&key, &signed_text(url, fields), &tag).is_ok()
}

fn signed_text(url: &str, fields: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let mut text = url.to_owned();
    for (name, value) in sorted {
        text.push_str(name);
        text.push_str(value);
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The expected signature was computed by Twilio's own library (twilio-python 9.13.0,
    /// `RequestValidator("12345").compute_signature(url, fields)`); tests/sdk/sms.sh
    /// checks callbacks signed by it end to end.
    #[test]
    fn the_signature_is_twilios() {
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        let posted = fields(&[
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
        ]);
        let signed = signature("12345", url, &posted);
        assert_eq!(signed, "L/OH5YylLD5NRKLltdqwSvS0BnU=");
        assert!(verify_signature("12345", url, &posted, &signed));
        assert!(!verify_signature("12346", url, &posted, &signed));
        assert!(!verify_signature(
            "12345",
            "https://example.com/other",
            &posted,
            &signed
        ));
        assert!(!verify_signature("12345", url, &posted, "not base64!"));
    }
}
