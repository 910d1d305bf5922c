//! Links in messages, signed so that nobody can forge one: the one-click unsubscribe link
//! of a send (RFC 8058) names the send and carries an HMAC-SHA256 of it under a secret the
//! store keeps; the link reveals nothing of the person.

use prossimo_store::sql::Val;
use prossimo_store::{Store, StoreError, WriteDomain};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::stored::SCHEMA;

/// Signs and checks links with the store's secret.
pub struct Links {
    key: hmac::Key,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Links")
    }
}

impl Links {
    /// Links signed with `secret`.
    pub fn with_secret(secret: &[u8]) -> Links {
        Links {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// Links signed with the store's secret, made on first use.
    pub fn of(store: &Store) -> Result<Links, StoreError> {
        store.migrate(&SCHEMA)?;
        let read = |store: &Store| -> Result<Option<String>, StoreError> {
            Ok(store
                .read(|conn| {
                    conn.query_one(
                        "SELECT secret FROM message_secrets WHERE name = 'links'",
                        &[],
                    )
                })?
                .and_then(|row| row[0].text().map(str::to_owned)))
        };
        let secret = match read(store)? {
            Some(secret) => secret,
            None => {
                let mut bytes = [0u8; 32];
                SystemRandom::new().fill(&mut bytes).map_err(|_| {
                    StoreError::Invalid("no randomness for the links' secret".into())
                })?;
                let now = store.now_ms();
                store.write_transaction(WriteDomain::Decisions, |conn| {
                    conn.execute(
                        "INSERT INTO message_secrets (name, secret, created_at) VALUES ('links', $1, $2)
                         ON CONFLICT (name) DO NOTHING",
                        &[Val::from(hex::encode(bytes).as_str()), Val::Int(now)],
                    )
                })?;
                // Another process may have made it first: its secret wins.
                read(store)?
                    .ok_or_else(|| StoreError::Corrupt("the links' secret vanished".into()))?
            }
        };
        Ok(Links::with_secret(secret.as_bytes()))
    }

    /// The token of send `send_id`'s unsubscribe link.
    pub fn unsubscribe_token(&self, send_id: i64) -> String {
        let tag = hmac::sign(&self.key, format!("unsubscribe:{send_id}").as_bytes());
        format!("{send_id}.{}", hex::encode(tag.as_ref()))
    }

    /// The unsubscribe link of `send_id` under `base` (`https://crm.negozio.it`).
    pub fn unsubscribe_url(&self, base: &str, send_id: i64) -> String {
        format!(
            "{}/u/{}",
            base.trim_end_matches('/'),
            self.unsubscribe_token(send_id)
        )
    }

    /// The send a token names, if its signature holds.
    pub fn verify_unsubscribe(&self, token: &str) -> Option<i64> {
        self.verify(token, |id| format!("unsubscribe:{id}"))
    }

    /// The open pixel of send `send_id` under `base`.
    pub fn open_url(&self, base: &str, send_id: i64) -> String {
        let tag = hmac::sign(&self.key, format!("open:{send_id}").as_bytes());
        format!(
            "{}/o/{send_id}.{}",
            base.trim_end_matches('/'),
            hex::encode(tag.as_ref())
        )
    }

    /// The send an open pixel's token names, if its signature holds.
    pub fn verify_open(&self, token: &str) -> Option<i64> {
        self.verify(token, |id| format!("open:{id}"))
    }

    /// Where the SMS provider reports the delivery of send `send_id` under `base`.
    pub fn sms_status_url(&self, base: &str, send_id: i64) -> String {
        let tag = hmac::sign(&self.key, format!("sms-status:{send_id}").as_bytes());
        format!(
            "{}/hooks/sms/{send_id}.{}",
            base.trim_end_matches('/'),
            hex::encode(tag.as_ref())
        )
    }

    /// The send an SMS status callback's token names, if its signature holds.
    pub fn verify_sms_status(&self, token: &str) -> Option<i64> {
        self.verify(token, |id| format!("sms-status:{id}"))
    }

    /// A link of send `send_id` to `target`, through this server (which records the click
    /// and redirects): only a target signed here is ever redirected to.
    pub fn click_url(&self, base: &str, send_id: i64, target: &str) -> String {
        let tag = hmac::sign(&self.key, format!("click:{send_id}:{target}").as_bytes());
        format!(
            "{}/c/{send_id}.{}?u={}",
            base.trim_end_matches('/'),
            hex::encode(tag.as_ref()),
            url_encode(target)
        )
    }

    /// The send a click's token names, if its signature over `target` holds.
    pub fn verify_click(&self, token: &str, target: &str) -> Option<i64> {
        self.verify(token, |id| format!("click:{id}:{target}"))
    }

    fn verify(&self, token: &str, signed: impl Fn(i64) -> String) -> Option<i64> {
        let (id, tag) = token.split_once('.')?;
        let send_id: i64 = id.parse().ok()?;
        let tag = hex::decode(tag).ok()?;
        hmac::verify(&self.key, signed(send_id).as_bytes(), &tag).ok()?;
        Some(send_id)
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An HTML body with its links (`<a href>`) going through this server (`wrap`) and an
/// open pixel before `</body>`; `mailto:`, anchors, the unsubscribe link (`keep`) and other
/// `href`s (a stylesheet's) are left alone.
pub fn track_html(html: &str, keep: &str, wrap: impl Fn(&str) -> String, pixel: &str) -> String {
    let mut out = String::with_capacity(html.len() + 512);
    let mut rest = html;
    while let Some(at) = find_anchor(rest) {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |i| at + i);
        let (before, tag_and_after) = rest.split_at(at);
        let (tag, after) = tag_and_after.split_at(tag_end - at);
        out.push_str(before);
        out.push_str(&track_anchor(tag, keep, &wrap));
        rest = after;
    }
    out.push_str(rest);
    let image = format!(
        "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">",
        pixel.replace('&', "&amp;")
    );
    match find_ignore_case(&out, "</body>") {
        Some(at) => out.insert_str(at, &image),
        None => out.push_str(&image),
    }
    out
}

/// Where the next `<a` tag starts (`<a ` or `<a\t`, `<a\n`; not `<abbr`).
fn find_anchor(html: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let mut from = 0;
    while let Some(i) = find_ignore_case(&html[from..], "<a") {
        let at = from + i;
        if bytes.get(at + 2).is_some_and(u8::is_ascii_whitespace) {
            return Some(at);
        }
        from = at + 2;
    }
    None
}

/// An `<a …` tag (up to its `>`) with its `href` wrapped when it leads to a web page.
fn track_anchor(tag: &str, keep: &str, wrap: &impl Fn(&str) -> String) -> String {
    let Some(at) = find_ignore_case(tag, "href=\"") else {
        return tag.to_owned();
    };
    let start = at + "href=\"".len();
    let end = tag[start..].find('"').map_or(tag.len(), |i| start + i);
    let target = tag[start..end].replace("&amp;", "&");
    if !(target.starts_with("http://") || target.starts_with("https://")) || target == keep {
        return tag.to_owned();
    }
    format!(
        "{}{}{}",
        &tag[..start],
        wrap(&target).replace('&', "&amp;"),
        &tag[end..]
    )
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_go_through_the_server_and_a_pixel_is_added() {
        let links = Links::with_secret(b"secret");
        let base = "https://crm.example";
        let html = r#"<html><head><link href="https://fonts.example/css" rel="stylesheet"></head><body><abbr title="x">A</abbr><a href="https://shop.example/cart?x=1&amp;y=2">Cart</a> <a href="mailto:help@shop.example">Help</a> <A class="u" HREF="https://crm.example/u/9.ab">Leave</A></body></html>"#;
        let out = track_html(
            html,
            "https://crm.example/u/9.ab",
            |target| links.click_url(base, 9, target),
            &links.open_url(base, 9),
        );
        assert!(out.contains("mailto:help@shop.example"), "{out}");
        assert!(
            out.contains(r#"<link href="https://fonts.example/css""#),
            "a stylesheet is no link: {out}"
        );
        assert!(out.contains(r#"<abbr title="x">"#), "{out}");
        assert!(
            out.contains(r#"HREF="https://crm.example/u/9.ab""#),
            "the unsubscribe link is kept: {out}"
        );
        assert!(!out.contains("https://shop.example/cart?x=1"), "{out}");
        let click = links.click_url(base, 9, "https://shop.example/cart?x=1&y=2");
        assert!(out.contains(&click.replace('&', "&amp;")), "{out}");
        assert!(
            out.contains(&format!("<img src=\"{}\"", links.open_url(base, 9))),
            "{out}"
        );
        assert!(out.find("<img").unwrap() < out.find("</body>").unwrap());
        let token = click
            .strip_prefix("https://crm.example/c/")
            .unwrap()
            .split('?')
            .next()
            .unwrap();
        assert_eq!(
            links.verify_click(token, "https://shop.example/cart?x=1&y=2"),
            Some(9)
        );
        assert_eq!(
            links.verify_click(token, "https://evil.example/"),
            None,
            "no open redirect"
        );
        let open = links.open_url(base, 9);
        assert_eq!(
            links.verify_open(open.strip_prefix("https://crm.example/o/").unwrap()),
            Some(9)
        );
        assert_eq!(
            links.verify_unsubscribe(open.strip_prefix("https://crm.example/o/").unwrap()),
            None,
            "an open token is not an unsubscribe token"
        );
    }

    #[test]
    fn a_link_verifies_and_a_forged_one_does_not() {
        let links = Links::with_secret(b"secret");
        let url = links.unsubscribe_url("https://crm.negozio.it/", 42);
        let token = url
            .strip_prefix("https://crm.negozio.it/u/")
            .expect("under the base");
        assert_eq!(links.verify_unsubscribe(token), Some(42));
        let forged = token.replacen("42.", "43.", 1);
        assert_eq!(links.verify_unsubscribe(&forged), None);
        assert_eq!(Links::with_secret(b"other").verify_unsubscribe(token), None);
        for junk in ["", "42", "42.", "x.00", "42.zz"] {
            assert_eq!(links.verify_unsubscribe(junk), None, "{junk}");
        }
    }
}
