//! The outbox: every send owed, once per idempotency key, and what became of it. A
//! journey owes a send inside its own write transaction ([`owe`]); the sender claims due
//! sends, hands them to their channel and records each outcome; an outcome becomes an
//! event on the customer's timeline once (`logged`).

use prossimo_identity::ProfileId;
use prossimo_store::sql::{Conn, Row, Val, placeholders};
use prossimo_store::{Store, StoreError, WriteDomain};
use serde::Serialize;
use serde_json::Value;

use crate::stored::SCHEMA;
use crate::template::Channel;

/// Why a send exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A journey's send step.
    Journey { journey_id: i64, step: String },
    /// A test send from the console or the API.
    Test,
    /// A broadcast to an audience.
    Broadcast { broadcast_id: i64 },
}

/// What a send that falls in quiet hours does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InQuietHours {
    /// Wait for the next allowed time.
    #[default]
    Wait,
    /// Be skipped (`quiet_hours`): a message that is stale by morning.
    Skip,
}

impl InQuietHours {
    pub fn is_wait(&self) -> bool {
        *self == InQuietHours::Wait
    }
}

/// A send to owe.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSend {
    pub idempotency_key: String,
    pub profile_id: ProfileId,
    pub origin: Origin,
    pub channel: Channel,
    /// The message's slug.
    pub template: String,
    pub topic: Option<String>,
    pub transactional: bool,
    pub in_quiet_hours: InQuietHours,
    /// What the message is rendered over beside the customer (`event`: what triggered it).
    pub context: Value,
}

/// Where a send stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    Owed,
    Sending,
    Sent,
    Skipped,
    Failed,
    /// The process stopped while the send was being handed to its channel: it may or may
    /// not have gone, and is not sent again (never twice).
    Uncertain,
}

impl SendStatus {
    const ALL: [SendStatus; 6] = [
        SendStatus::Owed,
        SendStatus::Sending,
        SendStatus::Sent,
        SendStatus::Skipped,
        SendStatus::Failed,
        SendStatus::Uncertain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Owed => "owed",
            SendStatus::Sending => "sending",
            SendStatus::Sent => "sent",
            SendStatus::Skipped => "skipped",
            SendStatus::Failed => "failed",
            SendStatus::Uncertain => "uncertain",
        }
    }

    pub fn parse(text: &str) -> Option<SendStatus> {
        SendStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A send as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendRecord {
    pub id: i64,
    pub idempotency_key: String,
    pub profile_id: ProfileId,
    pub origin: Origin,
    pub channel: Channel,
    pub template: String,
    pub topic: Option<String>,
    pub transactional: bool,
    pub in_quiet_hours: InQuietHours,
    pub context: Value,
    pub status: SendStatus,
    pub attempts: u32,
    pub due: i64,
    pub recipient: Option<String>,
    pub message_id: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What became of a send handed to its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the channel (an SMTP server's 250, a folder's file).
    Sent {
        recipient: String,
        message_id: String,
        detail: String,
    },
    /// Not sent, on purpose (`reason`: `no_address`, `channel_not_configured`, …).
    Skipped { reason: String, detail: String },
    /// Refused for good (a 5xx reply, a template that cannot render for this person).
    Failed { reason: String, detail: String },
    /// Refused for now (a 4xx reply, a connection that failed): tried again at `at`.
    Retry { at: i64, detail: String },
    /// Held by the policy (quiet hours) until `at`: not an attempt.
    Deferred {
        at: i64,
        reason: String,
        detail: String,
    },
}

/// Owes `send` in the caller's write transaction of the decisions domain, unless a send
/// with its idempotency key is owed already. Whether it was newly owed.
pub fn owe(conn: &mut dyn Conn, send: &NewSend, now: i64) -> Result<bool, StoreError> {
    let (journey_id, step, broadcast_id, origin) = match &send.origin {
        Origin::Journey { journey_id, step } => {
            (Some(*journey_id), Some(step.as_str()), None, "journey")
        }
        Origin::Test => (None, None, None, "test"),
        Origin::Broadcast { broadcast_id } => (None, None, Some(*broadcast_id), "broadcast"),
    };
    let inserted = conn.execute(
        "INSERT INTO message_sends (idempotency_key, profile_id, origin, journey_id, step, channel, template, topic, transactional, context, status, due, created_at, updated_at, skip_in_quiet_hours, broadcast_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'owed', $11, $11, $11, $12, $13)
         ON CONFLICT (idempotency_key) DO NOTHING",
        &[
            Val::from(send.idempotency_key.as_str()),
            Val::Int(send.profile_id),
            Val::from(origin),
            journey_id.map_or(Val::Null, Val::Int),
            Val::from(step),
            Val::from(send.channel.as_str()),
            Val::from(send.template.as_str()),
            Val::from(send.topic.as_deref()),
            Val::Int(i64::from(send.transactional)),
            Val::from(send.context.to_string().as_str()),
            Val::Int(now),
            Val::Int(i64::from(send.in_quiet_hours == InQuietHours::Skip)),
            broadcast_id.map_or(Val::Null, Val::Int),
        ],
    )?;
    Ok(inserted > 0)
}

const COLUMNS: &str = "id, idempotency_key, profile_id, origin, journey_id, step, channel, template, topic, transactional, context, status, attempts, due, recipient, message_id, reason, detail, created_at, updated_at, skip_in_quiet_hours, broadcast_id";

fn send_from(row: &Row) -> Result<SendRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("message send row".into());
    let text = |i: usize| row[i].text().map(str::to_owned);
    let origin = match row[3].text() {
        Some("journey") => Origin::Journey {
            journey_id: row[4].int().ok_or_else(corrupt)?,
            step: text(5).ok_or_else(corrupt)?,
        },
        Some("test") => Origin::Test,
        Some("broadcast") => Origin::Broadcast {
            broadcast_id: row[21].int().ok_or_else(corrupt)?,
        },
        _ => return Err(corrupt()),
    };
    Ok(SendRecord {
        id: row[0].int().ok_or_else(corrupt)?,
        idempotency_key: text(1).ok_or_else(corrupt)?,
        profile_id: row[2].int().ok_or_else(corrupt)?,
        origin,
        channel: row[6].text().and_then(Channel::parse).ok_or_else(corrupt)?,
        template: text(7).ok_or_else(corrupt)?,
        topic: text(8),
        transactional: row[9].int().ok_or_else(corrupt)? != 0,
        in_quiet_hours: if row[20].int().ok_or_else(corrupt)? != 0 {
            InQuietHours::Skip
        } else {
            InQuietHours::Wait
        },
        context: serde_json::from_str(row[10].text().ok_or_else(corrupt)?)?,
        status: row[11]
            .text()
            .and_then(SendStatus::parse)
            .ok_or_else(corrupt)?,
        attempts: u32::try_from(row[12].int().ok_or_else(corrupt)?).unwrap_or(u32::MAX),
        due: row[13].int().ok_or_else(corrupt)?,
        recipient: text(14),
        message_id: text(15),
        reason: text(16),
        detail: text(17),
        created_at: row[18].int().ok_or_else(corrupt)?,
        updated_at: row[19].int().ok_or_else(corrupt)?,
    })
}

/// The outbox of a store.
pub struct Outbox<'a> {
    store: &'a Store,
}

impl<'a> Outbox<'a> {
    /// The outbox of `store`, its tables brought up to date first.
    pub fn of(store: &'a Store) -> Result<Outbox<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Outbox { store })
    }

    /// Marks sends left `sending` by a process that stopped as `uncertain`. Only the
    /// holder of the sender's lease may call it (no other process is sending then).
    pub fn settle_interrupted(&self, now: i64) -> Result<u64, StoreError> {
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            conn.execute(
                "UPDATE message_sends SET status = 'uncertain', reason = 'interrupted',
                        detail = 'the process stopped while handing it to its channel; not sent again so as never to send it twice',
                        updated_at = $1
                 WHERE status = 'sending'",
                &[Val::Int(now)],
            )
        })
    }

    /// Takes up to `limit` sends due at `now`, earliest first, marking them `sending`
    /// (one more attempt) in the same transaction.
    pub fn claim(&self, now: i64, limit: usize) -> Result<Vec<SendRecord>, StoreError> {
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            let due: Vec<SendRecord> = conn
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM message_sends WHERE status = 'owed' AND due <= $1 ORDER BY due, id LIMIT $2"
                    ),
                    &[Val::Int(now), Val::Int(i64::try_from(limit).unwrap_or(i64::MAX))],
                )?
                .iter()
                .map(send_from)
                .collect::<Result<_, _>>()?;
            for chunk in due.chunks(prossimo_store::sql::ROWS_PER_STATEMENT) {
                let mut params = vec![Val::Int(now)];
                params.extend(chunk.iter().map(|s| Val::Int(s.id)));
                conn.execute(
                    &format!(
                        "UPDATE message_sends SET status = 'sending', attempts = attempts + 1, updated_at = $1 WHERE id IN ({})",
                        placeholders(chunk.len(), 2)
                    ),
                    &params,
                )?;
            }
            Ok(due
                .into_iter()
                .map(|mut s| {
                    s.status = SendStatus::Sending;
                    s.attempts += 1;
                    s.updated_at = now;
                    s
                })
                .collect())
        })
    }

    /// Records what became of claimed sends, in one transaction.
    pub fn record(&self, outcomes: &[(i64, Outcome)], now: i64) -> Result<(), StoreError> {
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            for (id, outcome) in outcomes {
                let not_an_attempt = matches!(outcome, Outcome::Deferred { .. });
                let (status, due, recipient, message_id, reason, detail) = match outcome {
                    Outcome::Sent { recipient, message_id, detail } => {
                        ("sent", None, Some(recipient.as_str()), Some(message_id.as_str()), None, detail.as_str())
                    }
                    Outcome::Skipped { reason, detail } => ("skipped", None, None, None, Some(reason.as_str()), detail.as_str()),
                    Outcome::Failed { reason, detail } => ("failed", None, None, None, Some(reason.as_str()), detail.as_str()),
                    Outcome::Retry { at, detail } => ("owed", Some(*at), None, None, None, detail.as_str()),
                    Outcome::Deferred { at, reason, detail } => {
                        ("owed", Some(*at), None, None, Some(reason.as_str()), detail.as_str())
                    }
                };
                conn.execute(
                    "UPDATE message_sends SET status = $1, due = COALESCE($2, due), recipient = COALESCE($3, recipient),
                            message_id = COALESCE($4, message_id), reason = $5, detail = $6, updated_at = $7,
                            attempts = attempts - $9
                     WHERE id = $8",
                    &[
                        Val::from(status),
                        due.map_or(Val::Null, Val::Int),
                        Val::from(recipient),
                        Val::from(message_id),
                        Val::from(reason),
                        Val::from(detail),
                        Val::Int(now),
                        Val::Int(*id),
                        Val::Int(i64::from(not_an_attempt)),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Up to `limit` sends with a final outcome not yet on the timeline, oldest first.
    pub fn unlogged(&self, limit: usize) -> Result<Vec<SendRecord>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM message_sends WHERE logged = 0 AND status NOT IN ('owed', 'sending') ORDER BY id LIMIT $1"
            ),
            &[Val::Int(i64::try_from(limit).unwrap_or(i64::MAX))],
        )
    }

    /// Marks sends' outcomes as on the timeline.
    pub fn mark_logged(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                for chunk in ids.chunks(prossimo_store::sql::ROWS_PER_STATEMENT) {
                    let params: Vec<Val> = chunk.iter().map(|&id| Val::Int(id)).collect();
                    conn.execute(
                        &format!(
                            "UPDATE message_sends SET logged = 1 WHERE id IN ({})",
                            placeholders(chunk.len(), 1)
                        ),
                        &params,
                    )?;
                }
                Ok(())
            })
    }

    /// The marketing messages that went to `profiles` since `since`: (profile, channel,
    /// when), for the frequency caps.
    pub fn marketing_sent(
        &self,
        profiles: &[ProfileId],
        since: i64,
    ) -> Result<Vec<(ProfileId, Channel, i64)>, StoreError> {
        let mut sent = Vec::new();
        let unique: std::collections::BTreeSet<ProfileId> = profiles.iter().copied().collect();
        let unique: Vec<ProfileId> = unique.into_iter().collect();
        for chunk in unique.chunks(prossimo_store::sql::ROWS_PER_STATEMENT) {
            let mut params = vec![Val::Int(since)];
            params.extend(chunk.iter().map(|&p| Val::Int(p)));
            let rows = self.store.read(|conn| {
                conn.query(
                    &format!(
                        "SELECT profile_id, channel, updated_at FROM message_sends
                         WHERE status = 'sent' AND transactional = 0 AND updated_at > $1 AND profile_id IN ({})",
                        placeholders(chunk.len(), 2)
                    ),
                    &params,
                )
            })?;
            sent.extend(rows.iter().filter_map(|row| {
                Some((
                    row[0].int()?,
                    row[1].text().and_then(Channel::parse)?,
                    row[2].int()?,
                ))
            }));
        }
        Ok(sent)
    }

    /// When the next owed send is due.
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .read(|conn| {
                conn.query_one(
                    "SELECT MIN(due) FROM message_sends WHERE status = 'owed'",
                    &[],
                )
            })?
            .and_then(|row| row[0].int()))
    }

    /// The sends to `profile_id`, newest first (the customer's 360 and the audit trail).
    pub fn of_profile(&self, profile_id: ProfileId) -> Result<Vec<SendRecord>, StoreError> {
        self.rows(
            &format!("SELECT {COLUMNS} FROM message_sends WHERE profile_id = $1 ORDER BY id DESC"),
            &[Val::Int(profile_id)],
        )
    }

    /// The send with row id `id`.
    pub fn by_id(&self, id: i64) -> Result<Option<SendRecord>, StoreError> {
        Ok(self
            .rows(
                &format!("SELECT {COLUMNS} FROM message_sends WHERE id = $1"),
                &[Val::Int(id)],
            )?
            .pop())
    }

    /// The send with `key`.
    pub fn by_key(&self, key: &str) -> Result<Option<SendRecord>, StoreError> {
        Ok(self
            .rows(
                &format!("SELECT {COLUMNS} FROM message_sends WHERE idempotency_key = $1"),
                &[Val::from(key)],
            )?
            .pop())
    }

    /// The send whose channel gave it `message_id` (an e-mail's `Message-ID`, with or
    /// without its `<>`; an SMS provider's sid).
    pub fn by_message_id(&self, message_id: &str) -> Result<Option<SendRecord>, StoreError> {
        let bare = message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        Ok(self
            .rows(
                &format!(
                    "SELECT {COLUMNS} FROM message_sends WHERE message_id IN ($1, $2) ORDER BY id LIMIT 1"
                ),
                &[Val::from(bare), Val::Text(format!("<{bare}>"))],
            )?
            .pop())
    }

    fn rows(&self, sql: &str, params: &[Val]) -> Result<Vec<SendRecord>, StoreError> {
        self.store
            .read(|conn| conn.query(sql, params))?
            .iter()
            .map(send_from)
            .collect()
    }
}
