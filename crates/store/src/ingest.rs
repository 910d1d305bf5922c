//! One group commit: de-duplicate, resolve identities, write profiles, identifiers, the
//! identity log and the events, all in one transaction. When `ingest` returns `Ok`, every
//! message is durable (SQLite fsyncs the WAL at commit; PostgreSQL's commit is synchronous).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use prossimo_identity::{
    Changeset, Extracted, Graph, Identifier, IdentityConfig, ProfileId, ProfileState, extract,
};
use prossimo_model::{AmountProblem, Message, Money, MoneyError, OrderEventKind};

use crate::events::{EventLog, NewEvent};
use crate::sql::{Conn, ROWS_PER_STATEMENT, Val, placeholders};
use crate::{Store, StoreError, WriteDomain};

/// Values per `IN (…)` list.
const CHUNK: usize = ROWS_PER_STATEMENT;

/// A validated message on its way into the store, with the work that does not need the
/// store (serialisation, identifier extraction) already done by the caller's thread.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub source_id: i64,
    pub message: Message,
    pub body: String,
    pub extracted: Extracted,
    /// The order event this message is, valued in the reporting currency; the error when
    /// its currency has no configured rate.
    pub order: Result<Option<OrderLine>, MoneyError>,
    /// An amount the message may not carry (infinite, beyond the bound, a negative order).
    pub amounts: Result<(), AmountProblem>,
}

/// An order event ready for the `order_events` table.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderLine {
    pub kind: OrderEventKind,
    /// `properties.order_id`, or the messageId when the event names no order.
    pub order_id: String,
    /// In the reporting currency; `None` on a refund or cancellation means the whole order.
    pub value: Option<f64>,
    pub amount: Option<f64>,
    pub currency: Option<String>,
}

impl Incoming {
    pub fn new(
        source_id: i64,
        message: Message,
        identity: &IdentityConfig,
        money: &Money,
    ) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_string(&message)?;
        let extracted = extract(&message, identity);
        let amounts = money.check_amounts(&message);
        let order = message
            .order_event()
            .map(|o| {
                let value = o
                    .amount
                    .map(|a| money.to_reporting(a, o.currency.as_deref()))
                    .transpose()?;
                Ok(OrderLine {
                    kind: o.kind,
                    order_id: o.order_id.unwrap_or_else(|| message.message_id.clone()),
                    value,
                    amount: o.amount,
                    currency: o.currency,
                })
            })
            .transpose();
        Ok(Incoming {
            source_id,
            message,
            body,
            extracted,
            order,
            amounts,
        })
    }

    /// Why this message cannot be stored, as (field, reason): nothing identifies the
    /// person, or its order is in a currency without a rate. The HTTP edge answers 400 and
    /// the importer rejects the row; nothing of such a batch is written.
    pub fn refusal(&self) -> Option<(String, String)> {
        if let Some(why) = self.extracted.unusable_reason() {
            let field = if self.message.user_id.is_some() {
                "userId"
            } else {
                "anonymousId"
            };
            return Some((field.into(), format!("no usable identifier: {why}")));
        }
        if let Err(problem) = &self.amounts {
            return Some((problem.field.clone(), problem.reason.clone()));
        }
        match &self.order {
            Err(e) => Some(("properties.currency".into(), e.to_string())),
            Ok(_) => None,
        }
    }
}

/// What one group commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestReport {
    /// Messages written.
    pub stored: usize,
    /// Messages already stored before (SDK retries), or repeated within the commit.
    pub duplicates: usize,
    pub profiles_created: usize,
    pub merges: usize,
}

impl IngestReport {
    pub fn add(&mut self, other: IngestReport) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.profiles_created += other.profiles_created;
        self.merges += other.merges;
    }
}

impl Store {
    /// Writes a group of messages durably, exactly once per `(source, messageId)`.
    pub fn ingest(&self, batch: &[Incoming]) -> Result<IngestReport, StoreError> {
        if batch.is_empty() {
            return Ok(IngestReport::default());
        }
        let report = self.write_transaction(WriteDomain::Customers, |conn| {
            write_batch(
                conn,
                self.events.as_ref(),
                &self.identity,
                batch,
                self.now_ms(),
            )
        })?;
        if let Some(schedule) = &self.statistics
            && schedule.due(report.stored)
        {
            self.conn()?.conn().batch(REFRESH_STATISTICS)?;
        }
        Ok(report)
    }
}

/// PostgreSQL plans the writer's probes (`kind = $1 AND value IN (…)`) from table
/// statistics. Without them (a young table, or autovacuum turned off, as on this project's
/// development machines) it scanned the whole `kind` prefix and filtered: 160–290 ms per
/// 400-value probe at 150k rows instead of 7–12 ms. So the store refreshes the statistics
/// of the tables it grows, on autovacuum's rule, whatever the server's settings.
const REFRESH_STATISTICS: &str = "ANALYZE profiles, identifiers, events, order_events";

/// When the tables the writer grows need fresh statistics: after `50 + 10%` of the rows
/// counted at the previous refresh have been added (autovacuum's default analyze rule).
#[derive(Debug, Default)]
pub(crate) struct StatisticsSchedule {
    /// Rows at the last refresh, rows added since.
    rows: std::sync::Mutex<(u64, u64)>,
}

impl StatisticsSchedule {
    /// Starts from the events the server's statistics already know of (0 when never
    /// analysed, so a young database gets statistics soon).
    pub(crate) fn starting_at(conn: &mut dyn Conn) -> Result<StatisticsSchedule, StoreError> {
        let known = conn
            .query_one(
                "SELECT GREATEST(reltuples, 0)::BIGINT FROM pg_class WHERE oid = 'events'::regclass",
                &[],
            )?
            .and_then(|r| r[0].int())
            .unwrap_or(0);
        Ok(StatisticsSchedule {
            rows: std::sync::Mutex::new((known.max(0) as u64, 0)),
        })
    }

    /// Records `added` rows; true when a refresh is due now. Only PostgreSQL stores keep
    /// a schedule (SQLite's planner does well here without statistics).
    fn due(&self, added: usize) -> bool {
        let Ok(mut rows) = self.rows.lock() else {
            return false;
        };
        let (at_last_refresh, since) = &mut *rows;
        *since += added as u64;
        if *since > 50 + *at_last_refresh / 10 {
            *at_last_refresh += *since;
            *since = 0;
            true
        } else {
            false
        }
    }
}

fn write_batch(
    conn: &mut dyn Conn,
    events: &dyn EventLog,
    identity: &IdentityConfig,
    batch: &[Incoming],
    now: i64,
) -> Result<IngestReport, StoreError> {
    let fresh = new_messages(conn, events, batch)?;
    let mut report = IngestReport {
        duplicates: batch.len() - fresh.len(),
        stored: fresh.len(),
        ..IngestReport::default()
    };
    if fresh.is_empty() {
        return Ok(report);
    }

    let keys: BTreeSet<Identifier> = fresh
        .iter()
        .flat_map(|m| m.extracted.lookup_keys())
        .collect();
    let owners = load_owners(conn, &keys)?;
    let roots: BTreeSet<ProfileId> = owners.values().copied().collect();
    let states = load_states(conn, &roots)?;
    let next_id = conn
        .query_one("SELECT COALESCE(MAX(id), 0) + 1 FROM profiles", &[])?
        .and_then(|r| r.first().and_then(Val::int))
        .unwrap_or(1);

    let mut graph = Graph::new(identity, owners, states, next_id);
    let assigned: Vec<ProfileId> = fresh
        .iter()
        .map(|m| graph.apply(&m.message, &m.extracted))
        .collect();
    let changes = graph.finish();
    report.profiles_created = changes.created.len();
    report.merges = changes.merged.len();

    write_profiles(conn, &changes, now)?;
    write_identifiers(conn, &changes, now)?;
    write_log(conn, &changes, now)?;
    write_events(conn, events, &fresh, &assigned, &changes)?;
    write_order_events(conn, &fresh, &assigned, &changes)?;
    Ok(report)
}

/// The messages of the batch not stored before, first occurrence wins within the batch.
fn new_messages<'a>(
    conn: &mut dyn Conn,
    events: &dyn EventLog,
    batch: &'a [Incoming],
) -> Result<Vec<&'a Incoming>, StoreError> {
    let mut by_source: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for m in batch {
        by_source
            .entry(m.source_id)
            .or_default()
            .push(&m.message.message_id);
    }
    let mut known: HashSet<(i64, String)> = HashSet::new();
    for (source, ids) in by_source {
        known.extend(
            events
                .stored(conn, source, &ids)?
                .into_iter()
                .map(|id| (source, id)),
        );
    }
    Ok(batch
        .iter()
        .filter(|m| known.insert((m.source_id, m.message.message_id.clone())))
        .collect())
}

/// Current root owner of every identifier that exists. One `kind = $1 AND value IN (…)`
/// query per kind and chunk: both backends answer it from the primary key (a row-value
/// `(kind, value) IN (VALUES …)` makes SQLite scan the table).
fn load_owners(
    conn: &mut dyn Conn,
    keys: &BTreeSet<Identifier>,
) -> Result<HashMap<Identifier, ProfileId>, StoreError> {
    let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in keys {
        by_kind
            .entry(id.kind.as_str())
            .or_default()
            .push(id.value.as_str());
    }
    let mut owners = HashMap::with_capacity(keys.len());
    for (kind, values) in by_kind {
        for chunk in values.chunks(CHUNK) {
            let sql = format!(
                "SELECT i.value, COALESCE(p.merged_into, i.profile_id)
                 FROM identifiers i LEFT JOIN profiles p ON p.id = i.profile_id
                 WHERE i.kind = $1 AND i.value IN ({})",
                placeholders(chunk.len(), 2)
            );
            let mut params = vec![Val::from(kind)];
            params.extend(chunk.iter().map(|&v| Val::from(v)));
            for row in conn.query(&sql, &params)? {
                if let [Val::Text(value), owner] = row.as_slice()
                    && let Some(owner) = owner.int()
                {
                    owners.insert(Identifier::new(kind, value.clone()), owner);
                }
            }
        }
    }
    Ok(owners)
}

pub(crate) fn load_states(
    conn: &mut dyn Conn,
    ids: &BTreeSet<ProfileId>,
) -> Result<Vec<ProfileState>, StoreError> {
    let ids: Vec<ProfileId> = ids.iter().copied().collect();
    let mut states = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, state FROM profiles WHERE id IN ({})",
            placeholders(chunk.len(), 1)
        );
        let params: Vec<Val> = chunk.iter().map(|&i| Val::Int(i)).collect();
        for row in conn.query(&sql, &params)? {
            let (Some(id), Some(state)) = (row[0].int(), row[1].text()) else {
                return Err(StoreError::Corrupt(
                    "profile row without id or state".into(),
                ));
            };
            let mut state: ProfileState = serde_json::from_str(state)?;
            state.id = id;
            states.push(state);
        }
    }
    Ok(states)
}

fn write_profiles(conn: &mut dyn Conn, changes: &Changeset, now: i64) -> Result<(), StoreError> {
    // Surviving profiles: insert new ones, overwrite the state of existing ones.
    let mut params = Vec::with_capacity(changes.profiles.len() * 8);
    for p in &changes.profiles {
        params.extend([
            Val::Int(p.id),
            Val::Null,
            Val::Text(serde_json::to_string(p)?),
            p.display_name().map(|n| crate::read::fold_name(&n)).into(),
            p.first_seen.as_ref().map(|s| s.at).into(),
            p.last_seen.into(),
            Val::Int(now),
            Val::Int(now),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO profiles (id, merged_into, state, name_lc, first_seen, last_seen, created_at, updated_at)",
        8,
        &params,
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, name_lc = excluded.name_lc,
             first_seen = excluded.first_seen, last_seen = excluded.last_seen, updated_at = excluded.updated_at",
    )?;
    // Profiles born and merged away within this batch still get a row, so the identity log
    // can point at them.
    let surviving: HashSet<ProfileId> = changes.profiles.iter().map(|p| p.id).collect();
    for &id in changes.created.iter().filter(|id| !surviving.contains(id)) {
        let state = serde_json::to_string(&ProfileState::new(id))?;
        conn.execute(
            "INSERT INTO profiles (id, merged_into, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
            &[Val::Int(id), Val::Int(changes.root(id)), Val::Text(state), Val::Int(now), Val::Int(now)],
        )?;
    }
    for &(loser, root) in changes
        .merged
        .iter()
        .filter(|(l, _)| !changes.created.contains(l))
    {
        conn.execute(
            "UPDATE profiles SET merged_into = $1, updated_at = $2 WHERE id = $3 OR merged_into = $3",
            &[Val::Int(root), Val::Int(now), Val::Int(loser)],
        )?;
        conn.execute(
            "UPDATE identifiers SET profile_id = $1 WHERE profile_id = $2",
            &[Val::Int(root), Val::Int(loser)],
        )?;
    }
    Ok(())
}

fn write_identifiers(conn: &mut dyn Conn, changes: &Changeset, now: i64) -> Result<(), StoreError> {
    let mut params = Vec::with_capacity(changes.new_identifiers.len() * 4);
    for (id, profile) in &changes.new_identifiers {
        params.extend([
            Val::from(id.kind.as_str()),
            Val::from(id.value.as_str()),
            Val::Int(*profile),
            Val::Int(now),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO identifiers (kind, value, profile_id, created_at)",
        4,
        &params,
        "",
    )
}

fn write_log(conn: &mut dyn Conn, changes: &Changeset, now: i64) -> Result<(), StoreError> {
    let mut params = Vec::with_capacity(changes.log.len() * 7);
    for entry in &changes.log {
        params.extend([
            Val::from(entry.kind.as_str()),
            Val::Int(entry.profile_id),
            entry.other_profile_id.into(),
            Val::from(entry.message_id.as_str()),
            Val::Int(entry.at),
            Val::from(entry.detail.as_str()),
            Val::Int(now),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO identity_log (kind, profile_id, other_profile_id, message_id, at, detail, logged_at)",
        7,
        &params,
        "",
    )
}

fn write_events(
    conn: &mut dyn Conn,
    events: &dyn EventLog,
    fresh: &[&Incoming],
    assigned: &[ProfileId],
    changes: &Changeset,
) -> Result<(), StoreError> {
    // A completed order's amount and currency go beside the event.
    let orders: Vec<_> = fresh
        .iter()
        .map(|m| {
            m.message
                .order_event()
                .filter(|o| o.kind == OrderEventKind::Completed)
        })
        .collect();
    let new: Vec<NewEvent<'_>> = fresh
        .iter()
        .zip(assigned)
        .zip(&orders)
        .map(|((m, &profile), order)| {
            let msg = &m.message;
            NewEvent {
                source_id: m.source_id,
                message_id: &msg.message_id,
                profile_id: changes.root(profile),
                kind: msg.kind.as_str(),
                event: msg.event.as_deref(),
                channel: msg.channel.as_str(),
                ts: msg.timestamp.timestamp_millis(),
                received_at: msg.received_at.timestamp_millis(),
                revenue: order.as_ref().and_then(|o| o.amount),
                currency: order.as_ref().and_then(|o| o.currency.as_deref()),
                body: &m.body,
            }
        })
        .collect();
    events.append(conn, &new)
}

fn write_order_events(
    conn: &mut dyn Conn,
    fresh: &[&Incoming],
    assigned: &[ProfileId],
    changes: &Changeset,
) -> Result<(), StoreError> {
    let mut params = Vec::new();
    for (m, &profile) in fresh.iter().zip(assigned) {
        // A refused order never reaches the writer; the check keeps a caller's mistake loud.
        let Some(order) = m
            .order
            .as_ref()
            .map_err(|e| StoreError::Invalid(e.to_string()))?
        else {
            continue;
        };
        params.extend([
            Val::Int(m.source_id),
            Val::from(m.message.message_id.as_str()),
            Val::Int(changes.root(profile)),
            Val::from(order.order_id.as_str()),
            Val::from(order.kind.as_str()),
            Val::from(m.message.channel.as_str()),
            Val::Int(m.message.timestamp.timestamp_millis()),
            order.value.into(),
            order.amount.into(),
            order.currency.as_deref().into(),
        ]);
    }
    conn.insert_rows(
        "INSERT INTO order_events (source_id, message_id, profile_id, order_id, kind, channel, ts, value, amount, currency)",
        10,
        &params,
        "",
    )
}
