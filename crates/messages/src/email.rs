//! An e-mail as bytes on the wire: headers (with a `Message-ID` derived from the send's
//! idempotency key, and RFC 8058 one-click unsubscribe), a text and an HTML part, and a
//! DKIM signature when a key is configured.

use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use sha2::{Digest, Sha256};

use crate::dkim::DkimSigner;
use crate::template::Rendered;

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("not an e-mail address: {0:?}")]
    Address(String),
    #[error("the sender {0:?} is not a mailbox (`Name <address@domain>` or `address@domain`)")]
    Sender(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error(transparent)]
    Dkim(#[from] crate::dkim::DkimError),
}

/// What is the same for every e-mail a workspace sends.
#[derive(Debug)]
pub struct Sender {
    pub from: Mailbox,
    pub dkim: Option<DkimSigner>,
}

impl Sender {
    pub fn new(from: &str, dkim: Option<DkimSigner>) -> Result<Sender, EmailError> {
        let from = from
            .parse()
            .map_err(|_| EmailError::Sender(from.to_owned()))?;
        Ok(Sender { from, dkim })
    }

    /// The domain of the sender's address (Message-IDs are made under it).
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }
}

/// One e-mail to compose.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub rendered: &'a Rendered,
    /// The send's idempotency key: the same key always gives the same Message-ID.
    pub idempotency_key: &'a str,
    /// The one-click unsubscribe URL (RFC 8058), when the message has a topic.
    pub unsubscribe_url: Option<&'a str>,
    /// Milliseconds since the epoch.
    pub date: i64,
}

/// A composed e-mail: its envelope addresses and its bytes.
#[derive(Debug, Clone)]
pub struct Composed {
    pub from: Address,
    pub to: Address,
    pub message_id: String,
    pub bytes: Vec<u8>,
}

/// The `Message-ID` of the send with `key`, under `domain`.
pub fn message_id(key: &str, domain: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("<{}@{domain}>", hex::encode(&digest[..16]))
}

/// Composes (and signs) `outgoing` from `sender`.
pub fn compose(sender: &Sender, outgoing: &Outgoing<'_>) -> Result<Composed, EmailError> {
    let to: Address = outgoing
        .to
        .trim()
        .parse()
        .map_err(|_| EmailError::Address(outgoing.to.to_owned()))?;
    let message_id = message_id(outgoing.idempotency_key, sender.domain());
    let date = UNIX_EPOCH + Duration::from_millis(u64::try_from(outgoing.date).unwrap_or(0));
    let mut builder = Message::builder()
        .from(sender.from.clone())
        .to(Mailbox::new(None, to.clone()))
        .subject(outgoing.rendered.subject.clone().unwrap_or_default())
        .message_id(Some(message_id.clone()))
        .date(date);
    if let Some(url) = outgoing.unsubscribe_url {
        builder = builder
            .raw_header(header("List-Unsubscribe", format!("<{url}>"))?)
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            )?);
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(outgoing.rendered.text.clone());
    let message = match &outgoing.rendered.html {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => builder.singlepart(text),
    }
    .map_err(|e| EmailError::Build(e.to_string()))?;
    let formatted = message.formatted();
    let bytes = match &sender.dkim {
        Some(signer) => signer.sign(&formatted, outgoing.date / 1000)?,
        None => formatted,
    };
    Ok(Composed {
        from: sender.from.email.clone(),
        to,
        message_id,
        bytes,
    })
}

fn header(name: &str, value: String) -> Result<HeaderValue, EmailError> {
    let name = HeaderName::new_from_ascii(name.to_owned())
        .map_err(|e| EmailError::Build(e.to_string()))?;
    Ok(HeaderValue::new(name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(html: Option<&str>) -> Rendered {
        Rendered {
            subject: Some("Il tuo carrello è ancora qui".into()),
            html: html.map(str::to_owned),
            text: "Ciao Giulia".into(),
            payload: None,
        }
    }

    #[test]
    fn the_same_send_always_has_the_same_message_id() {
        assert_eq!(
            message_id("i7/email-1", "shop.example"),
            message_id("i7/email-1", "shop.example")
        );
        assert_ne!(
            message_id("i7/email-1", "shop.example"),
            message_id("i8/email-1", "shop.example")
        );
        assert!(message_id("k", "shop.example").ends_with("@shop.example>"));
    }

    #[test]
    fn an_email_has_both_parts_and_one_click_unsubscribe() {
        let sender = Sender::new("Negozio <news@shop.example>", None).expect("sender");
        let html = rendered(Some("<p>Ciao Giulia</p>"));
        let composed = compose(
            &sender,
            &Outgoing {
                to: "giulia@example.it",
                rendered: &html,
                idempotency_key: "i1/mail",
                unsubscribe_url: Some("https://p.example/u/abc"),
                date: 1_780_000_000_000,
            },
        )
        .expect("composed");
        let text = String::from_utf8(composed.bytes).expect("utf-8");
        assert!(
            text.contains("List-Unsubscribe: <https://p.example/u/abc>"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains(&format!("Message-ID: {}", composed.message_id)),
            "{text}"
        );
        assert!(
            text.contains("=?utf-8?b?w6g=?="),
            "non-ASCII words are encoded: {text}"
        );
        assert_eq!(composed.to.to_string(), "giulia@example.it");
    }

    #[test]
    fn a_bad_address_or_sender_is_named() {
        let sender = Sender::new("news@shop.example", None).expect("sender");
        let r = rendered(None);
        let err = compose(
            &sender,
            &Outgoing {
                to: "not an address",
                rendered: &r,
                idempotency_key: "k",
                unsubscribe_url: None,
                date: 0,
            },
        )
        .expect_err("refused");
        assert!(err.to_string().contains("not an address"), "{err}");
        assert!(Sender::new("Negozio <nope>", None).is_err());
    }
}
