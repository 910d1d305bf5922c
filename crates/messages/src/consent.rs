//! Consent: whether a person may get messages of a channel and topic. Stored as it stands
//! and with its history (who or what changed it, when); decided here, the same way for
//! every send.

use prossimo_identity::ProfileId;
use prossimo_store::sql::{Conn, Row, Val};
use prossimo_store::{Store, StoreError, WriteDomain};
use serde::{Deserialize, Serialize};

use crate::stored::SCHEMA;
use crate::template::Channel;

/// The topic that stands for every topic of a channel ("unsubscribe from all").
pub const ALL_TOPICS: &str = "*";

/// The longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    OptedIn,
    OptedOut,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentState::OptedIn => "opted_in",
            ConsentState::OptedOut => "opted_out",
        }
    }

    pub fn parse(text: &str) -> Option<ConsentState> {
        [ConsentState::OptedIn, ConsentState::OptedOut]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A person's consent for a channel and topic, or a change of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentRecord {
    pub channel: Channel,
    pub topic: String,
    pub state: ConsentState,
    /// Who or what set it: `unsubscribe_link`, `api`, `console`, `hard_bounce`, …
    pub source: String,
    pub detail: Option<String>,
    pub at: i64,
}

/// Why consent does not allow a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The person opted out of the topic or of the whole channel.
    Unsubscribed,
    /// Opt-in is required and the person never opted in.
    NoConsent,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unsubscribed => "unsubscribed",
            Refusal::NoConsent => "no_consent",
        }
    }
}

/// Whether a send of `channel` and `topic` may go to a person whose consent is `records`.
/// A transactional send (a receipt, a password reset) always may. Otherwise the latest of
/// the person's choices for the topic and for the whole channel decides (an opt-out of
/// everything, then an opt-in to the newsletter, allows the newsletter); with no choice,
/// the send may go unless `require_opt_in`.
pub fn allows(
    records: &[ConsentRecord],
    channel: Channel,
    topic: Option<&str>,
    transactional: bool,
    require_opt_in: bool,
) -> Result<(), Refusal> {
    if transactional {
        return Ok(());
    }
    let latest = records
        .iter()
        .filter(|r| r.channel == channel)
        .filter(|r| r.topic == ALL_TOPICS || Some(r.topic.as_str()) == topic)
        .max_by_key(|r| (r.at, r.topic != ALL_TOPICS));
    match latest.map(|r| r.state) {
        Some(ConsentState::OptedOut) => Err(Refusal::Unsubscribed),
        Some(ConsentState::OptedIn) => Ok(()),
        None if require_opt_in => Err(Refusal::NoConsent),
        None => Ok(()),
    }
}

/// A topic: 1 to 64 lowercase letters, digits, `-` and `_` (`offers`, `newsletter`), or
/// `*` for every topic.
pub fn check_topic(topic: &str) -> Result<(), String> {
    let valid = topic == ALL_TOPICS
        || (!topic.is_empty()
            && topic.len() <= MAX_TOPIC_BYTES
            && topic
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "topic {topic:?}: use 1 to {MAX_TOPIC_BYTES} lowercase letters, digits, '-' or '_', or \"*\" for every topic"
        ))
    }
}

fn record_from(row: &Row) -> Result<ConsentRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("consent row".into());
    Ok(ConsentRecord {
        channel: row[0].text().and_then(Channel::parse).ok_or_else(corrupt)?,
        topic: row[1].text().ok_or_else(corrupt)?.to_owned(),
        state: row[2]
            .text()
            .and_then(ConsentState::parse)
            .ok_or_else(corrupt)?,
        source: row[3].text().ok_or_else(corrupt)?.to_owned(),
        detail: row[4].text().map(str::to_owned),
        at: row[5].int().ok_or_else(corrupt)?,
    })
}

/// Sets a person's consent in the caller's write transaction of the decisions domain,
/// with its history. Whether it changed (the same state again is not a change).
pub fn set_consent(
    conn: &mut dyn Conn,
    profile_id: ProfileId,
    change: &ConsentRecord,
) -> Result<bool, StoreError> {
    let current = conn
        .query_one(
            "SELECT state FROM consents WHERE profile_id = $1 AND channel = $2 AND topic = $3",
            &[
                Val::Int(profile_id),
                Val::from(change.channel.as_str()),
                Val::from(change.topic.as_str()),
            ],
        )?
        .and_then(|row| row[0].text().and_then(ConsentState::parse));
    if current == Some(change.state) {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO consents (profile_id, channel, topic, state, source, at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (profile_id, channel, topic) DO UPDATE SET state = $4, source = $5, at = $6",
        &[
            Val::Int(profile_id),
            Val::from(change.channel.as_str()),
            Val::from(change.topic.as_str()),
            Val::from(change.state.as_str()),
            Val::from(change.source.as_str()),
            Val::Int(change.at),
        ],
    )?;
    conn.execute(
        "INSERT INTO consent_changes (profile_id, channel, topic, state, source, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Val::Int(profile_id),
            Val::from(change.channel.as_str()),
            Val::from(change.topic.as_str()),
            Val::from(change.state.as_str()),
            Val::from(change.source.as_str()),
            Val::from(change.detail.as_deref()),
            Val::Int(change.at),
        ],
    )?;
    Ok(true)
}

/// Consent in a store.
pub struct Consents<'a> {
    store: &'a Store,
}

impl<'a> Consents<'a> {
    pub fn of(store: &'a Store) -> Result<Consents<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Consents { store })
    }

    /// The consent of these profiles (a person and the profiles merged into them), as it
    /// stands.
    pub fn of_profiles(&self, ids: &[ProfileId]) -> Result<Vec<ConsentRecord>, StoreError> {
        let mut all = Vec::new();
        for &id in ids {
            all.extend(
                self.store
                    .read(|conn| {
                        conn.query(
                            "SELECT channel, topic, state, source, NULL, at FROM consents WHERE profile_id = $1 ORDER BY channel, topic",
                            &[Val::Int(id)],
                        )
                    })?
                    .iter()
                    .map(record_from)
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(all)
    }

    /// The consent of many profiles as it stands, by profile (one query per chunk: what a
    /// round of sends reads).
    pub fn of_many(
        &self,
        ids: &[ProfileId],
    ) -> Result<std::collections::HashMap<ProfileId, Vec<ConsentRecord>>, StoreError> {
        let mut by_profile: std::collections::HashMap<ProfileId, Vec<ConsentRecord>> =
            std::collections::HashMap::new();
        let unique: std::collections::BTreeSet<ProfileId> = ids.iter().copied().collect();
        let unique: Vec<ProfileId> = unique.into_iter().collect();
        for chunk in unique.chunks(prossimo_store::sql::ROWS_PER_STATEMENT) {
            let params: Vec<Val> = chunk.iter().map(|&id| Val::Int(id)).collect();
            let rows = self.store.read(|conn| {
                conn.query(
                    &format!(
                        "SELECT channel, topic, state, source, NULL, at, profile_id FROM consents WHERE profile_id IN ({})",
                        prossimo_store::sql::placeholders(chunk.len(), 1)
                    ),
                    &params,
                )
            })?;
            for row in &rows {
                let profile = row[6]
                    .int()
                    .ok_or_else(|| StoreError::Corrupt("consent row".into()))?;
                by_profile
                    .entry(profile)
                    .or_default()
                    .push(record_from(row)?);
            }
        }
        Ok(by_profile)
    }

    /// Every change of a person's consent, newest first.
    pub fn history(&self, profile_id: ProfileId) -> Result<Vec<ConsentRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    "SELECT channel, topic, state, source, detail, at FROM consent_changes WHERE profile_id = $1 ORDER BY id DESC",
                    &[Val::Int(profile_id)],
                )
            })?
            .iter()
            .map(record_from)
            .collect()
    }

    /// Sets a person's consent; whether it changed.
    pub fn set(&self, profile_id: ProfileId, change: &ConsentRecord) -> Result<bool, StoreError> {
        check_topic(&change.topic).map_err(StoreError::Invalid)?;
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                set_consent(conn, profile_id, change)
            })
    }
}

/// What an unsubscribe link did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsubscribed {
    pub channel: Channel,
    /// The topic left (`*`: every topic of the channel, when the message had none).
    pub topic: String,
    /// False when the person had already left it.
    pub changed: bool,
}

impl Consents<'_> {
    /// Follows an unsubscribe link's `token`: the person who got that send leaves its
    /// topic (or the whole channel when it had none), recorded with its history and as a
    /// `Message Unsubscribed` event on their timeline. `None` when the token is not one
    /// of ours (forged, or for a send that no longer exists).
    pub fn unsubscribe(
        &self,
        links: &crate::links::Links,
        token: &str,
        source: &str,
    ) -> Result<Option<Unsubscribed>, StoreError> {
        let Some(send_id) = links.verify_unsubscribe(token) else {
            return Ok(None);
        };
        let Some(send) = crate::outbox::Outbox::of(self.store)?.by_id(send_id)? else {
            return Ok(None);
        };
        let root = self.store.root_of(send.profile_id)?;
        let topic = send.topic.clone().unwrap_or_else(|| ALL_TOPICS.to_owned());
        let now = self.store.now_ms();
        let change = ConsentRecord {
            channel: send.channel,
            topic: topic.clone(),
            state: ConsentState::OptedOut,
            source: source.to_owned(),
            detail: Some(send.idempotency_key.clone()),
            at: now,
        };
        let changed = self
            .store
            .write_transaction(WriteDomain::Decisions, |conn| {
                set_consent(conn, root, &change)
            })?;
        self.store
            .record_platform_events(&[prossimo_store::PlatformEvent {
                message_id: format!("{}/unsubscribed", send.idempotency_key),
                profile_id: root,
                event: "Message Unsubscribed".into(),
                channel: send.channel.touchpoint(),
                ts: now,
                properties: serde_json::json!({
                    "message": send.template,
                    "channel": send.channel.as_str(),
                    "topic": topic,
                    "send": send.idempotency_key,
                    "source": source,
                }),
            }])?;
        Ok(Some(Unsubscribed {
            channel: send.channel,
            topic,
            changed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, state: ConsentState, at: i64) -> ConsentRecord {
        ConsentRecord {
            channel: Channel::Email,
            topic: topic.into(),
            state,
            source: "api".into(),
            detail: None,
            at,
        }
    }

    #[test]
    fn the_latest_choice_for_the_topic_or_the_channel_decides() {
        use ConsentState::*;
        let out_of_all = [record(ALL_TOPICS, OptedOut, 10)];
        assert_eq!(
            allows(&out_of_all, Channel::Email, Some("offers"), false, false),
            Err(Refusal::Unsubscribed)
        );
        assert_eq!(
            allows(&out_of_all, Channel::Email, None, false, false),
            Err(Refusal::Unsubscribed)
        );
        assert_eq!(
            allows(&out_of_all, Channel::Sms, Some("offers"), false, false),
            Ok(()),
            "another channel"
        );
        assert_eq!(
            allows(&out_of_all, Channel::Email, Some("offers"), true, false),
            Ok(()),
            "a receipt still goes"
        );
        let back_in = [
            record(ALL_TOPICS, OptedOut, 10),
            record("newsletter", OptedIn, 20),
        ];
        assert_eq!(
            allows(&back_in, Channel::Email, Some("newsletter"), false, false),
            Ok(())
        );
        assert_eq!(
            allows(&back_in, Channel::Email, Some("offers"), false, false),
            Err(Refusal::Unsubscribed)
        );
        let out_of_offers = [record("offers", OptedOut, 10)];
        assert_eq!(
            allows(
                &out_of_offers,
                Channel::Email,
                Some("newsletter"),
                false,
                false
            ),
            Ok(())
        );
        assert_eq!(
            allows(&out_of_offers, Channel::Email, Some("offers"), false, false),
            Err(Refusal::Unsubscribed)
        );
        assert_eq!(
            allows(&[], Channel::Email, Some("offers"), false, true),
            Err(Refusal::NoConsent)
        );
        assert_eq!(
            allows(&[], Channel::Email, Some("offers"), false, false),
            Ok(())
        );
        let opted_in = [record("offers", OptedIn, 5)];
        assert_eq!(
            allows(&opted_in, Channel::Email, Some("offers"), false, true),
            Ok(())
        );
    }

    #[test]
    fn topics_are_short_lowercase_words() {
        for good in ["offers", "news_letter-2", "*"] {
            assert_eq!(check_topic(good), Ok(()));
        }
        for bad in ["", "Offers", "a b", "**", &"a".repeat(65)] {
            assert!(check_topic(bad).is_err(), "{bad}");
        }
    }
}
