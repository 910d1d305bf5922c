//! Where e-mails go: an SMTP server (pooled connections, STARTTLS or implicit TLS, auth:
//! lettre's transport, configured by URL), or, with none configured, a folder of `.eml`
//! files a person can open (`<data dir>/mail`), so a new install shows its messages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::email::Composed;

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("invalid SMTP URL (smtp://user:password@host:587?tls=required, smtps://host:465): {0}")]
    Url(String),
    #[error("cannot create the mail folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the channel said of an e-mail handed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handed {
    /// Accepted (the server's reply, or the file written).
    Accepted(String),
    /// Refused for now: a 4xx reply, a connection or TLS failure, a timeout.
    Transient(String),
    /// Refused for good: a 5xx reply.
    Permanent(String),
}

/// An e-mail channel's transport.
#[derive(Debug, Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(PathBuf),
}

impl Mailer {
    /// An SMTP transport for `url` (`smtp://` with `?tls=required|opportunistic`, or
    /// `smtps://`; user and password in the URL), keeping up to `connections` open.
    pub fn smtp(url: &str, connections: u32, timeout: Duration) -> Result<Mailer, MailerError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailerError::Url(e.to_string()))?
            .pool_config(PoolConfig::new().max_size(connections.max(1)))
            .timeout(Some(timeout))
            .build();
        Ok(Mailer::Smtp(transport))
    }

    /// A folder of `.eml` files, created if missing.
    pub fn folder(path: &Path) -> Result<Mailer, MailerError> {
        std::fs::create_dir_all(path).map_err(|source| MailerError::Folder {
            path: path.to_owned(),
            source,
        })?;
        Ok(Mailer::Folder(path.to_owned()))
    }

    /// A short description for logs and `prossimo config`.
    pub fn describe(&self) -> String {
        match self {
            Mailer::Smtp(_) => "SMTP".into(),
            Mailer::Folder(path) => format!("the folder {}", path.display()),
        }
    }

    /// Hands `email` over.
    pub async fn hand(&self, email: &Composed) -> Handed {
        match self {
            Mailer::Smtp(transport) => {
                let envelope = match Envelope::new(Some(email.from.clone()), vec![email.to.clone()])
                {
                    Ok(envelope) => envelope,
                    Err(e) => return Handed::Permanent(e.to_string()),
                };
                match transport.send_raw(&envelope, &email.bytes).await {
                    Ok(response) => Handed::Accepted(format!(
                        "{} {}",
                        response.code(),
                        response.message().collect::<Vec<_>>().join(" ")
                    )),
                    Err(e) if e.is_permanent() => Handed::Permanent(e.to_string()),
                    Err(e) => Handed::Transient(e.to_string()),
                }
            }
            Mailer::Folder(dir) => {
                let (dir, email) = (dir.clone(), email.clone());
                match tokio::task::spawn_blocking(move || write_eml(&dir, &email)).await {
                    Ok(Ok(path)) => Handed::Accepted(format!("written to {}", path.display())),
                    Ok(Err(e)) => Handed::Transient(e.to_string()),
                    Err(e) => Handed::Transient(e.to_string()),
                }
            }
        }
    }
}

/// Writes `email` as `<message id>.eml`: the same send always lands in the same file.
fn write_eml(dir: &Path, email: &Composed) -> std::io::Result<PathBuf> {
    write_whole(
        dir,
        email.message_id.trim_matches(['<', '>']),
        "eml",
        &email.bytes,
    )
}

/// Writes `bytes` to `<dir>/<name>.<extension>` whole or not at all (a temporary file
/// renamed), the name's characters other than letters, digits, `.` and `-` made `_`.
pub(crate) fn write_whole(
    dir: &Path,
    name: &str,
    extension: &str,
    bytes: &[u8],
) -> std::io::Result<PathBuf> {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.{extension}"));
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}
