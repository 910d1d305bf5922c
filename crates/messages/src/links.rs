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
        let (id, tag) = token.split_once('.')?;
        let send_id: i64 = id.parse().ok()?;
        let tag = hex::decode(tag).ok()?;
        hmac::verify(&self.key, format!("unsubscribe:{send_id}").as_bytes(), &tag).ok()?;
        Some(send_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
