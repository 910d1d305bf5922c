//! Opens and clicks: the open pixel and the tracked links of a sent e-mail, recorded as
//! `Message Opened` and `Message Clicked` on the customer's timeline. Machines open and
//! click too (Apple Mail Privacy Protection fetches every image through Apple's proxies,
//! security gateways follow links at delivery): such events are recorded with `machine:
//! true` rather than counted as a person's, so journeys and analyses can leave them out.

use prossimo_store::{PlatformEvent, Store, StoreError};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::links::Links;
use crate::outbox::{Outbox, SendRecord};
use crate::sender::send_properties;

/// A fetch within this long of the send is a machine's (a prefetch at delivery).
const PREFETCH_MS: i64 = 5_000;

/// User agents of scanners, proxies that prefetch, and tools, not people (lowercase).
const MACHINE_AGENTS: [&str; 14] = [
    "bot",
    "crawler",
    "spider",
    "scanner",
    "preview",
    "barracuda",
    "proofpoint",
    "mimecast",
    "python",
    "curl",
    "wget",
    "go-http-client",
    "java/",
    "headless",
];

/// Whether a fetch of a message's pixel or link was a machine's: no user agent, Apple's
/// privacy proxy (its user agent is exactly `Mozilla/5.0`), a known scanner or tool, or a
/// fetch within seconds of the send. Gmail's image proxy fetches when the person opens the
/// message, so it counts as a person.
pub fn is_machine(user_agent: Option<&str>, sent_at: Option<i64>, at: i64) -> bool {
    let agent = user_agent.map(str::trim).unwrap_or_default();
    if agent.is_empty() || agent == "Mozilla/5.0" {
        return true;
    }
    let lower = agent.to_ascii_lowercase();
    if MACHINE_AGENTS.iter().any(|m| lower.contains(m)) {
        return true;
    }
    sent_at.is_some_and(|sent| at - sent < PREFETCH_MS)
}

/// Who fetched, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub user_agent: Option<String>,
    pub at: i64,
}

/// Records opens and clicks of a store's sends.
pub struct Tracking<'a> {
    store: &'a Store,
    links: Links,
}

impl<'a> Tracking<'a> {
    pub fn of(store: &'a Store) -> Result<Tracking<'a>, StoreError> {
        Ok(Tracking {
            links: Links::of(store)?,
            store,
        })
    }

    /// Records an open of the send `token` names (its first open by a person and its
    /// first by a machine, each once). False when the token is not ours.
    pub fn open(&self, token: &str, fetch: &Fetch) -> Result<bool, StoreError> {
        let Some(send) = self.send(self.links.verify_open(token))? else {
            return Ok(false);
        };
        let machine = is_machine(fetch.user_agent.as_deref(), sent_at(&send), fetch.at);
        let mut properties = send_properties(&send);
        properties.insert("machine".into(), Value::from(machine));
        self.record(
            &send,
            format!("{}/opened/{}", send.idempotency_key, who(machine)),
            "Message Opened",
            properties,
            fetch.at,
        )?;
        Ok(true)
    }

    /// Records a click of `target` in the send `token` names (once per link, by a person
    /// or by a machine); the target to redirect to, or `None` when the token does not sign
    /// it (never an open redirect).
    pub fn click(
        &self,
        token: &str,
        target: &str,
        fetch: &Fetch,
    ) -> Result<Option<String>, StoreError> {
        let Some(send) = self.send(self.links.verify_click(token, target))? else {
            return Ok(None);
        };
        let machine = is_machine(fetch.user_agent.as_deref(), sent_at(&send), fetch.at);
        let mut properties = send_properties(&send);
        properties.insert("url".into(), Value::from(target));
        properties.insert("machine".into(), Value::from(machine));
        let link = hex::encode(&Sha256::digest(target.as_bytes())[..8]);
        self.record(
            &send,
            format!("{}/clicked/{link}/{}", send.idempotency_key, who(machine)),
            "Message Clicked",
            properties,
            fetch.at,
        )?;
        Ok(Some(target.to_owned()))
    }

    fn send(&self, id: Option<i64>) -> Result<Option<SendRecord>, StoreError> {
        match id {
            Some(id) => Outbox::of(self.store)?.by_id(id),
            None => Ok(None),
        }
    }

    fn record(
        &self,
        send: &SendRecord,
        message_id: String,
        event: &str,
        properties: serde_json::Map<String, Value>,
        at: i64,
    ) -> Result<(), StoreError> {
        self.store.record_platform_events(&[PlatformEvent {
            message_id,
            profile_id: send.profile_id,
            event: event.into(),
            channel: send.channel.touchpoint(),
            ts: at,
            properties: Value::Object(properties),
        }])?;
        Ok(())
    }
}

/// When a send went out (its outcome's time), if it did.
fn sent_at(send: &SendRecord) -> Option<i64> {
    (send.status == crate::outbox::SendStatus::Sent).then_some(send.updated_at)
}

fn who(machine: bool) -> &'static str {
    if machine { "machine" } else { "person" }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAFARI: &str =
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)";

    #[test]
    fn apple_privacy_proxies_scanners_and_prefetches_are_machines() {
        let sent = Some(1_000_000);
        assert!(
            !is_machine(Some(SAFARI), sent, 1_000_000 + 60_000),
            "a person, a minute later"
        );
        assert!(
            is_machine(Some("Mozilla/5.0"), sent, 1_000_000 + 60_000),
            "Apple MPP"
        );
        assert!(is_machine(None, sent, 1_000_000 + 60_000));
        assert!(is_machine(
            Some("Barracuda Sentinel (EE)"),
            sent,
            1_000_000 + 60_000
        ));
        assert!(
            is_machine(Some(SAFARI), sent, 1_000_000 + 1_000),
            "fetched at delivery"
        );
        assert!(
            !is_machine(
                Some(
                    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
                ),
                sent,
                1_000_000 + 60_000
            ),
            "Gmail's proxy fetches when the person opens"
        );
    }
}
