//! DKIM signing (RFC 6376: `rsa-sha256`, relaxed/relaxed). Written here rather than
//! taken from a crate: lettre's and mail-auth's signers bring the older RustCrypto
//! generation (rsa 0.9, sha2 0.10, rand_core 0.6) beside the one the workspace uses, which
//! `deny.toml` forbids; the RSA signature itself is ring's (already here through rustls),
//! and what is hand-written is the canonicalisation, checked by an independent verifier
//! (`dkimpy`, in `tests/sdk/email.sh`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// The headers signed, when the message has them: what a receiver shows or acts on.
const SIGNED_HEADERS: [&str; 11] = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "mime-version",
    "content-type",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("the DKIM key is not PEM: {0}")]
    Pem(String),
    #[error("the DKIM key is not an RSA private key of at least 2048 bits (PKCS#8 or PKCS#1): {0}")]
    Key(String),
    #[error("cannot sign: {0}")]
    Sign(String),
    #[error("the message has no header block")]
    Message,
}

/// Signs messages for one domain and selector.
pub struct DkimSigner {
    domain: String,
    selector: String,
    key: RsaKeyPair,
    random: SystemRandom,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// A signer with the RSA key in `pem` (`BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(domain: &str, selector: &str, pem: &str) -> Result<DkimSigner, DkimError> {
        let (label, der) = pem_body(pem)?;
        let key = if label == "RSA PRIVATE KEY" {
            RsaKeyPair::from_der(&der)
        } else {
            RsaKeyPair::from_pkcs8(&der)
        }
        .map_err(|e| DkimError::Key(e.to_string()))?;
        Ok(DkimSigner {
            domain: domain.to_owned(),
            selector: selector.to_owned(),
            key,
            random: SystemRandom::new(),
        })
    }

    /// `message` (CRLF line ends) with a `DKIM-Signature` header in front, signed at
    /// `timestamp` (seconds).
    pub fn sign(&self, message: &[u8], timestamp: i64) -> Result<Vec<u8>, DkimError> {
        let split = find(message, b"\r\n\r\n").ok_or(DkimError::Message)?;
        let (head, body) = (&message[..split + 2], &message[split + 4..]);
        let fields = header_fields(head);
        let body_hash = STANDARD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            &relaxed_body(body),
        ));
        // The last instance of each signed header, as verifiers take them bottom-up.
        let signed: Vec<(&str, &[u8])> = SIGNED_HEADERS
            .iter()
            .filter_map(|name| {
                fields
                    .iter()
                    .rev()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, field)| (*name, *field))
            })
            .collect();
        let names: Vec<&str> = signed.iter().map(|(n, _)| *n).collect();
        let unsigned = format!(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={}; s={};\r\n\tt={timestamp}; h={};\r\n\tbh={body_hash};\r\n\tb=",
            self.domain,
            self.selector,
            names.join(":"),
        );
        let mut data = Vec::new();
        for (_, field) in &signed {
            data.extend(relaxed_header(field));
            data.extend(b"\r\n");
        }
        data.extend(relaxed_header(unsigned.as_bytes()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.random, &data, &mut signature)
            .map_err(|e| DkimError::Sign(e.to_string()))?;
        let encoded = STANDARD.encode(&signature);
        let folded: Vec<&str> = encoded
            .as_bytes()
            .chunks(72)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        let mut out = Vec::with_capacity(message.len() + unsigned.len() + encoded.len() + 64);
        out.extend(unsigned.as_bytes());
        out.extend(folded.join("\r\n\t ").as_bytes());
        out.extend(b"\r\n");
        out.extend(message);
        Ok(out)
    }
}

fn pem_body(pem: &str) -> Result<(String, Vec<u8>), DkimError> {
    let begin = pem
        .lines()
        .find_map(|l| l.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or_else(|| DkimError::Pem("no -----BEGIN line".into()))?
        .to_owned();
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = STANDARD
        .decode(body)
        .map_err(|e| DkimError::Pem(e.to_string()))?;
    Ok((begin, der))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The header block's fields, each with its name and its whole text (continuation lines
/// included, without the final CRLF).
fn header_fields(head: &[u8]) -> Vec<(&str, &[u8])> {
    let mut fields: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    while start < head.len() {
        let end = find(&head[start..], b"\r\n").map_or(head.len(), |i| start + i);
        let continues = matches!(head.get(start), Some(b' ' | b'\t'));
        match fields.last_mut() {
            Some(last) if continues => last.1 = end,
            _ => fields.push((start, end)),
        }
        start = end + 2;
    }
    fields
        .into_iter()
        .filter_map(|(s, e)| {
            let field = &head[s..e];
            let colon = field.iter().position(|&b| b == b':')?;
            let name = std::str::from_utf8(&field[..colon]).ok()?.trim();
            Some((name, field))
        })
        .collect()
}

/// Relaxed header canonicalisation (RFC 6376 §3.4.2): the name lowercased, the value
/// unfolded, runs of whitespace made one space, none around the colon or at the end.
fn relaxed_header(field: &[u8]) -> Vec<u8> {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let name = String::from_utf8_lossy(&field[..colon])
        .trim()
        .to_ascii_lowercase();
    let value = field.get(colon + 1..).unwrap_or_default();
    let mut out = name.into_bytes();
    out.push(b':');
    let mut space = false;
    let mut started = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = started,
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b);
                started = true;
            }
        }
    }
    out
}

/// Relaxed body canonicalisation (RFC 6376 §3.4.4): whitespace at line ends removed,
/// runs of it made one space, empty lines at the end removed, CRLF after the last line.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let text = body.strip_suffix(b"\r\n").unwrap_or(body);
    if !body.is_empty() {
        for line in text.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut out = Vec::with_capacity(line.len());
            let mut space = false;
            for &b in line {
                if b == b' ' || b == b'\t' {
                    space = true;
                } else {
                    if space {
                        out.push(b' ');
                        space = false;
                    }
                    out.push(b);
                }
            }
            lines.push(out);
        }
    }
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::new();
    for line in lines {
        out.extend(line);
        out.extend(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6376 §3.4.5's example.
    #[test]
    fn canonicalises_as_the_rfc_example() {
        assert_eq!(relaxed_header(b"A: X"), b"a:X");
        assert_eq!(relaxed_header(b"B : Y\t\r\n\tZ  "), b"b:Y Z");
        assert_eq!(relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n"), b" C\r\nD E\r\n");
        assert_eq!(relaxed_body(b""), b"");
        assert_eq!(relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(relaxed_body(b"x"), b"x\r\n");
    }

    #[test]
    fn header_fields_keep_their_continuations() {
        let fields = header_fields(b"From: a@b\r\nSubject: one\r\n two\r\nTo: c@d\r\n");
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["From", "Subject", "To"]);
        assert_eq!(fields[1].1, b"Subject: one\r\n two");
    }

    #[test]
    fn a_key_that_is_not_pem_or_not_rsa_is_refused() {
        assert!(matches!(
            DkimSigner::from_pem("d", "s", "nope"),
            Err(DkimError::Pem(_))
        ));
        let not_a_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            DkimSigner::from_pem("d", "s", not_a_key),
            Err(DkimError::Key(_))
        ));
    }
}
