//! Broadcasts: one message to an audience's members, once each, through the same outbox
//! and send-time policy as a journey's sends. Creating one only records it (`owing`); the
//! sender owes its members in chunks as it goes ([`Broadcasts::owe_next_chunk`]), each
//! chunk in one transaction with the broadcast's cursor (the membership log position of
//! the last member owed), so a million recipients never sit in one transaction, sending
//! starts with the first chunk, and a stop part-way carries on where it was. The members
//! are the audience's as the broadcast goes through it: someone who left before their
//! turn gets nothing, someone who entered since is included.

use std::collections::BTreeMap;

use prossimo_decide::audiences::Audiences;
use prossimo_segments::{Language, SlugKind, check_slug_of};
use prossimo_store::sql::{Conn, Row, Val};
use prossimo_store::{MAX_NAME_BYTES, Store, StoreError, WriteDomain, bounded};
use serde::Serialize;
use serde_json::json;

use crate::outbox::{InQuietHours, NewSend, Origin, owe};
use crate::stored::{MessageError, Messages, SCHEMA};
use crate::template::{Channel, Problem, Template};

/// Members owed per transaction.
pub const BROADCAST_CHUNK: usize = 5_000;

/// A broadcast as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastInput {
    pub name: String,
    /// The audience's slug.
    pub audience: String,
    /// The message's slug.
    pub message: String,
    pub topic: Option<String>,
    pub transactional: bool,
    pub in_quiet_hours: InQuietHours,
    /// Who asked (`api`, a console user's e-mail).
    pub created_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastState {
    /// Its members are still being owed.
    Owing,
    /// Every member is owed: the outbox has the rest.
    Owed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BroadcastRecord {
    pub id: i64,
    pub name: String,
    pub audience: String,
    pub message: String,
    pub channel: Channel,
    pub topic: Option<String>,
    pub transactional: bool,
    pub in_quiet_hours: InQuietHours,
    pub state: BroadcastState,
    /// Members owed so far.
    pub owed: u64,
    pub created_by: String,
    pub created_at: i64,
    pub owed_at: Option<i64>,
}

const COLUMNS: &str = "id, name, audience, message, channel, topic, transactional, skip_in_quiet_hours, state, owed, created_by, created_at, owed_at, segment_id, cursor";

fn broadcast_from(row: &Row) -> Result<BroadcastRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("broadcast row".into());
    let text = |i: usize| row[i].text().map(str::to_owned).ok_or_else(corrupt);
    Ok(BroadcastRecord {
        id: row[0].int().ok_or_else(corrupt)?,
        name: text(1)?,
        audience: text(2)?,
        message: text(3)?,
        channel: row[4].text().and_then(Channel::parse).ok_or_else(corrupt)?,
        topic: row[5].text().map(str::to_owned),
        transactional: row[6].int().ok_or_else(corrupt)? != 0,
        in_quiet_hours: if row[7].int().ok_or_else(corrupt)? != 0 {
            InQuietHours::Skip
        } else {
            InQuietHours::Wait
        },
        state: match row[8].text() {
            Some("owing") => BroadcastState::Owing,
            Some("owed") => BroadcastState::Owed,
            _ => return Err(corrupt()),
        },
        owed: u64::try_from(row[9].int().ok_or_else(corrupt)?).unwrap_or(0),
        created_by: text(10)?,
        created_at: row[11].int().ok_or_else(corrupt)?,
        owed_at: row[12].int(),
    })
}

fn problem(field: &str, reason: impl Into<String>) -> MessageError {
    MessageError::Problems(vec![Problem {
        field: field.into(),
        reason: reason.into(),
        line: None,
        column: None,
    }])
}

/// A store's broadcasts.
pub struct Broadcasts<'a> {
    store: &'a Store,
}

impl<'a> Broadcasts<'a> {
    pub fn of(store: &'a Store) -> Result<Broadcasts<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Broadcasts { store })
    }

    /// Records a broadcast, its message and audience checked (every problem names its
    /// field); the sender owes its members from then on.
    pub fn create(&self, input: &BroadcastInput) -> Result<BroadcastRecord, MessageError> {
        bounded("name", &input.name, MAX_NAME_BYTES)?;
        if let Some(topic) = &input.topic {
            crate::consent::check_topic(topic).map_err(|why| problem("topic", why))?;
        }
        check_slug_of(SlugKind::MESSAGE, &input.message)
            .map_err(|e| problem("message", e.get(Language::English)))?;
        let Some(message) = Messages::of(self.store)?.get(&input.message)? else {
            return Err(problem(
                "message",
                format!("there is no message {:?}", input.message),
            ));
        };
        Template::compile(&message.content).map_err(MessageError::Problems)?;
        let Some(segment) = Audiences::of(self.store)?.segment(&input.audience)? else {
            return Err(problem(
                "audience",
                format!("there is no audience {:?}", input.audience),
            ));
        };
        let now = self.store.now_ms();
        let name = if input.name.trim().is_empty() {
            format!("{} → {}", message.slug, segment.slug)
        } else {
            input.name.trim().to_owned()
        };
        let record = self
            .store
            .write_transaction(WriteDomain::Decisions, |conn| {
                let id = conn
                    .query_one(
                        "INSERT INTO message_broadcasts (name, audience, segment_id, message, channel, topic, transactional, skip_in_quiet_hours, state, owed, created_by, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'owing', 0, $9, $10) RETURNING id",
                        &[
                            Val::from(name.as_str()),
                            Val::from(segment.slug.as_str()),
                            Val::Int(segment.id),
                            Val::from(message.slug.as_str()),
                            Val::from(message.content.channel.as_str()),
                            Val::from(input.topic.as_deref()),
                            Val::Int(i64::from(input.transactional)),
                            Val::Int(i64::from(input.in_quiet_hours == InQuietHours::Skip)),
                            Val::from(input.created_by.as_str()),
                            Val::Int(now),
                        ],
                    )?
                    .and_then(|row| row[0].int())
                    .ok_or_else(|| StoreError::Corrupt("no id for a new broadcast".into()))?;
                by_id(conn, id)?.ok_or_else(|| StoreError::Corrupt("the new broadcast vanished".into()))
            })?;
        Ok(record)
    }

    pub fn get(&self, id: i64) -> Result<Option<BroadcastRecord>, StoreError> {
        self.store.read(|conn| by_id(conn, id))
    }

    /// Newest first; of one audience when given.
    pub fn list(
        &self,
        audience: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BroadcastRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    &format!(
                        "SELECT {COLUMNS} FROM message_broadcasts WHERE ($1 = '' OR audience = $1) ORDER BY id DESC LIMIT $2"
                    ),
                    &[
                        Val::from(audience.unwrap_or("")),
                        Val::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
                    ],
                )
            })?
            .iter()
            .map(broadcast_from)
            .collect()
    }

    /// What became of a broadcast's sends: status → count.
    pub fn outcomes(&self, id: i64) -> Result<BTreeMap<String, u64>, StoreError> {
        Ok(self
            .store
            .read(|conn| {
                conn.query(
                    "SELECT status, COUNT(*) FROM message_sends WHERE broadcast_id = $1 GROUP BY status",
                    &[Val::Int(id)],
                )
            })?
            .iter()
            .filter_map(|r| Some((r[0].text()?.to_owned(), u64::try_from(r[1].int()?).ok()?)))
            .collect())
    }

    /// Owes the next chunk of the oldest broadcast still owing, in one transaction with
    /// its cursor; how many sends were newly owed (0 when none is owing).
    pub fn owe_next_chunk(&self, chunk: usize) -> Result<usize, StoreError> {
        let Some(row) = self.store.read(|conn| {
            conn.query_one(
                &format!(
                    "SELECT {COLUMNS} FROM message_broadcasts WHERE state = 'owing' ORDER BY id LIMIT 1"
                ),
                &[],
            )
        })?
        else {
            return Ok(0);
        };
        let broadcast = broadcast_from(&row)?;
        let segment_id = row[13]
            .int()
            .ok_or_else(|| StoreError::Corrupt("broadcast row".into()))?;
        let cursor = row[14].int();
        let members = Audiences::of(self.store)?.segment_members(segment_id, cursor, chunk)?;
        let now = self.store.now_ms();
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                let mut owed = 0;
                for member in &members {
                    let send = NewSend {
                        idempotency_key: format!(
                            "broadcast/{}/{}",
                            broadcast.id, member.profile_id
                        ),
                        profile_id: member.profile_id,
                        origin: Origin::Broadcast {
                            broadcast_id: broadcast.id,
                        },
                        channel: broadcast.channel,
                        template: broadcast.message.clone(),
                        topic: broadcast.topic.clone(),
                        transactional: broadcast.transactional,
                        in_quiet_hours: broadcast.in_quiet_hours,
                        context: json!({"broadcast": {"id": broadcast.id, "name": broadcast.name}}),
                    };
                    owed += usize::from(owe(conn, &send, now)?);
                }
                let done = members.len() < chunk;
                conn.execute(
                    "UPDATE message_broadcasts SET owed = owed + $1, cursor = COALESCE($2, cursor),
                        state = $3, owed_at = $4 WHERE id = $5",
                    &[
                        Val::Int(i64::try_from(owed).unwrap_or(i64::MAX)),
                        members.last().map_or(Val::Null, |m| Val::Int(m.position)),
                        Val::from(if done { "owed" } else { "owing" }),
                        if done { Val::Int(now) } else { Val::Null },
                        Val::Int(broadcast.id),
                    ],
                )?;
                Ok(owed)
            })
    }
}

fn by_id(conn: &mut dyn Conn, id: i64) -> Result<Option<BroadcastRecord>, StoreError> {
    conn.query_one(
        &format!("SELECT {COLUMNS} FROM message_broadcasts WHERE id = $1"),
        &[Val::Int(id)],
    )?
    .map(|row| broadcast_from(&row))
    .transpose()
}
