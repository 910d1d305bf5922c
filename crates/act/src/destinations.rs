//! Webhook destinations and their outbox (this crate's tables, created by `migrations/`):
//! what is owed to each endpoint, every attempt made, and the dead-letter list that can be
//! replayed. The decider writes what is owed ([`enqueue`]) in the transaction of the change
//! it reports; the [`Dispatcher`](crate::Dispatcher) delivers it.

use base64::Engine;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use prossimo_identity::ProfileId;
use prossimo_store::sql::{Conn, Row, Val};
use prossimo_store::{
    MAX_DEFINITION_BYTES, MAX_NAME_BYTES, MAX_URL_BYTES, Store, StoreError, WriteDomain, bounded,
};

prossimo_store::feature_schema! {
    /// Destinations and the outbox; in the decisions file on SQLite, with the audiences
    /// whose changes the outbox reports.
    pub const SCHEMA = ("destinations", WriteDomain::Decisions);
}

/// A message owed to a destination (the outbox row), written with the change it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub destination_id: i64,
    pub profile_id: ProfileId,
    pub webhook_id: String,
    pub payload: Value,
}

/// Writes what is owed into the outbox, due at `now`, inside the caller's write
/// transaction of the decisions domain: the one that writes the change it reports, so
/// that nothing decided is ever left unsent.
pub fn enqueue(conn: &mut dyn Conn, owed: &[NewDelivery], now: i64) -> Result<(), StoreError> {
    for d in owed {
        conn.execute(
            "INSERT INTO deliveries (destination_id, profile_id, webhook_id, payload, status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
            &[
                Val::Int(d.destination_id),
                Val::Int(d.profile_id),
                Val::from(d.webhook_id.as_str()),
                Val::Text(serde_json::to_string(&d.payload)?),
                Val::Int(now),
            ],
        )?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    /// Segment entries and exits (optionally of some segments only).
    Segments,
    /// The raw event stream, through a filter.
    Events,
    /// Only the webhook messages journeys send to it (see `prossimo-messages`).
    Messages,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationKind::Segments => "segments",
            DestinationKind::Events => "events",
            DestinationKind::Messages => "messages",
        }
    }

    fn parse(raw: &str) -> Option<DestinationKind> {
        match raw {
            "segments" => Some(DestinationKind::Segments),
            "events" => Some(DestinationKind::Events),
            "messages" => Some(DestinationKind::Messages),
            _ => None,
        }
    }
}

/// What a user saves. `filter` is, for segment destinations, a comma-separated list of
/// segment slugs (none = all); for event destinations, a filter expression of the segment
/// language (`event == "Order Completed" and channel == "store"`; none = every event).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DestinationInput {
    pub name: String,
    pub kind: DestinationKind,
    pub url: String,
    #[serde(default)]
    pub filter: Option<String>,
    /// A Standard Webhooks secret (`whsec_` + base64); generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationRecord {
    pub id: i64,
    pub name: String,
    pub kind: DestinationKind,
    pub url: String,
    pub filter: Option<String>,
    pub secret: String,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Gave up after the last retry: on the dead-letter list until replayed.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> Option<DeliveryStatus> {
        match raw {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub destination_id: i64,
    pub profile_id: i64,
    pub webhook_id: String,
    pub payload: Value,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What became of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    RetryAt(i64),
    Dead,
}

const DESTINATION_COLUMNS: &str = "id, name, kind, url, filter, secret, enabled, created_at";
const DELIVERY_COLUMNS: &str = "d.id, d.destination_id, d.profile_id, d.webhook_id, d.payload, d.status, d.attempts, d.next_attempt_at, d.created_at, d.finished_at, d.last_error";

fn destination_from(r: &[Val]) -> Result<DestinationRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("destination row".into());
    Ok(DestinationRecord {
        id: r[0].int().ok_or_else(corrupt)?,
        name: r[1].text().ok_or_else(corrupt)?.to_owned(),
        kind: r[2]
            .text()
            .and_then(DestinationKind::parse)
            .ok_or_else(corrupt)?,
        url: r[3].text().ok_or_else(corrupt)?.to_owned(),
        filter: r[4].text().map(str::to_owned),
        secret: r[5].text().ok_or_else(corrupt)?.to_owned(),
        enabled: r[6].int().ok_or_else(corrupt)? != 0,
        created_at: r[7].int().ok_or_else(corrupt)?,
    })
}

fn delivery_from(r: &[Val]) -> Result<DeliveryRecord, StoreError> {
    let corrupt = || StoreError::Corrupt("delivery row".into());
    Ok(DeliveryRecord {
        id: r[0].int().ok_or_else(corrupt)?,
        destination_id: r[1].int().ok_or_else(corrupt)?,
        profile_id: r[2].int().ok_or_else(corrupt)?,
        webhook_id: r[3].text().ok_or_else(corrupt)?.to_owned(),
        payload: serde_json::from_str(r[4].text().ok_or_else(corrupt)?)?,
        status: r[5]
            .text()
            .and_then(DeliveryStatus::parse)
            .ok_or_else(corrupt)?,
        attempts: r[6].int().ok_or_else(corrupt)?,
        next_attempt_at: r[7].int().ok_or_else(corrupt)?,
        created_at: r[8].int().ok_or_else(corrupt)?,
        finished_at: r[9].int(),
        last_error: r[10].text().map(str::to_owned),
    })
}

fn new_secret() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Checks what a user may save: a name, an http(s) URL, a decodable secret.
fn check_input(input: &DestinationInput) -> Result<(), StoreError> {
    if input.name.trim().is_empty() {
        return Err(StoreError::Invalid("a destination needs a name".into()));
    }
    bounded("name", &input.name, MAX_NAME_BYTES)?;
    bounded("url", &input.url, MAX_URL_BYTES)?;
    if let Some(filter) = &input.filter {
        bounded("filter", filter, MAX_DEFINITION_BYTES)?;
    }
    if !(input.url.starts_with("http://") || input.url.starts_with("https://")) {
        return Err(StoreError::Invalid(format!(
            "destination url {:?} must start with http:// or https://",
            input.url
        )));
    }
    if let Some(secret) = &input.secret {
        let key = secret.strip_prefix("whsec_").unwrap_or(secret);
        match base64::engine::general_purpose::STANDARD.decode(key) {
            Ok(bytes) if bytes.len() >= 24 => {}
            _ => {
                return Err(StoreError::Invalid(
                    "secret must be whsec_ followed by at least 24 bytes in base64".into(),
                ));
            }
        }
    }
    Ok(())
}

fn destination_by_name(
    conn: &mut dyn Conn,
    name: &str,
) -> Result<Option<DestinationRecord>, StoreError> {
    conn.query_one(
        &format!("SELECT {DESTINATION_COLUMNS} FROM destinations WHERE name = $1"),
        &[Val::from(name)],
    )?
    .map(|r| destination_from(&r))
    .transpose()
}

/// The destinations of a store and what is owed to them.
#[derive(Clone, Copy)]
pub struct Destinations<'a> {
    store: &'a Store,
}

impl<'a> Destinations<'a> {
    /// The destinations of `store`, their tables brought up to date first.
    pub fn of(store: &'a Store) -> Result<Destinations<'a>, StoreError> {
        store.migrate(&SCHEMA)?;
        Ok(Destinations { store })
    }

    fn query(&self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        self.store.read(|conn| conn.query(sql, params))
    }

    fn query_one(&self, sql: &str, params: &[Val]) -> Result<Option<Row>, StoreError> {
        self.store.read(|conn| conn.query_one(sql, params))
    }

    pub fn list(&self) -> Result<Vec<DestinationRecord>, StoreError> {
        self.query(
            &format!("SELECT {DESTINATION_COLUMNS} FROM destinations ORDER BY name"),
            &[],
        )?
        .iter()
        .map(|r| destination_from(r))
        .collect()
    }

    pub fn by_name(&self, name: &str) -> Result<Option<DestinationRecord>, StoreError> {
        self.store.read(|conn| destination_by_name(conn, name))
    }

    pub fn create(&self, input: &DestinationInput) -> Result<DestinationRecord, StoreError> {
        check_input(input)?;
        let name = input.name.trim();
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                if destination_by_name(conn, name)?.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "a destination named {name:?} already exists"
                    )));
                }
                conn.execute(
                "INSERT INTO destinations (name, kind, url, secret, filter, enabled, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    Val::from(name),
                    Val::from(input.kind.as_str()),
                    Val::from(input.url.as_str()),
                    Val::Text(input.secret.clone().unwrap_or_else(new_secret)),
                    Val::from(input.filter.as_deref()),
                    Val::Int(i64::from(input.enabled)),
                    Val::Int(self.store.now_ms()),
                ],
            )?;
                destination_by_name(conn, name)?
                    .ok_or_else(|| StoreError::NotFound(format!("destination {name:?}")))
            })
    }

    /// Replaces a destination's settings; its secret stays unless a new one is given.
    pub fn update(
        &self,
        name: &str,
        input: &DestinationInput,
    ) -> Result<Option<DestinationRecord>, StoreError> {
        check_input(input)?;
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            let Some(current) = destination_by_name(conn, name)? else {
                return Ok(None);
            };
            conn.execute(
                "UPDATE destinations SET kind = $1, url = $2, secret = $3, filter = $4, enabled = $5 WHERE id = $6",
                &[
                    Val::from(input.kind.as_str()),
                    Val::from(input.url.as_str()),
                    Val::Text(input.secret.clone().unwrap_or(current.secret)),
                    Val::from(input.filter.as_deref()),
                    Val::Int(i64::from(input.enabled)),
                    Val::Int(current.id),
                ],
            )?;
            destination_by_name(conn, name)
        })
    }

    /// Deletes a destination with everything owed to it; false when there was none.
    pub fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            let Some(current) = destination_by_name(conn, name)? else {
                return Ok(false);
            };
            let id = [Val::Int(current.id)];
            conn.execute(
                "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE destination_id = $1)",
                &id,
            )?;
            conn.execute("DELETE FROM deliveries WHERE destination_id = $1", &id)?;
            conn.execute("DELETE FROM destinations WHERE id = $1", &id)?;
            Ok(true)
        })
    }

    /// Pending deliveries of a destination that are due at `now`, oldest first, at most
    /// one per profile and only a profile's oldest pending one: a profile's messages go
    /// out in order, and one profile's failing message never holds up another's.
    pub fn due_deliveries(
        &self,
        destination_id: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d
                     WHERE d.destination_id = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
                       AND NOT EXISTS (SELECT 1 FROM deliveries e
                           WHERE e.destination_id = d.destination_id AND e.status = 'pending'
                             AND e.profile_id = d.profile_id AND e.id < d.id)
                     ORDER BY d.id LIMIT $3"
                ),
                &[
                    Val::Int(destination_id),
                    Val::Int(now),
                    Val::Int(limit as i64),
                ],
            )?
            .iter()
            .map(|r| delivery_from(r))
            .collect()
    }

    /// When the destination's earliest pending delivery is due, if it has one.
    pub fn next_delivery_due(&self, destination_id: i64) -> Result<Option<i64>, StoreError> {
        Ok(self.query_one(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE destination_id = $1 AND status = 'pending'",
                &[Val::Int(destination_id)],
            )?
            .and_then(|r| r[0].int()))
    }

    /// Records attempts and what became of their deliveries, all in one transaction (a
    /// dispatcher round writes once, not once per delivery).
    pub fn record_attempts(
        &self,
        attempts: &[(i64, AttemptRecord, DeliveryOutcome)],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.store
            .write_transaction(WriteDomain::Decisions, |conn| {
                for (delivery_id, attempt, outcome) in attempts {
                    record_attempt(conn, *delivery_id, attempt, *outcome)?;
                }
                Ok(())
            })
    }

    /// How many of a destination's deliveries are in each status.
    pub fn delivery_counts(
        &self,
        destination_id: i64,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        Ok(self
            .query(
                "SELECT status, COUNT(*) FROM deliveries WHERE destination_id = $1 GROUP BY status",
                &[Val::Int(destination_id)],
            )?
            .into_iter()
            .filter_map(|r| Some((r[0].text()?.to_owned(), r[1].int()? as u64)))
            .collect())
    }

    /// A destination's deliveries, newest first, optionally of one status, before `before`.
    pub fn deliveries(
        &self,
        destination_id: i64,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut params = vec![
            Val::Int(destination_id),
            Val::Int(before.unwrap_or(i64::MAX)),
            Val::Int(limit as i64),
        ];
        let status_filter = match status {
            Some(s) => {
                params.push(Val::from(s.as_str()));
                " AND d.status = $4"
            }
            None => "",
        };
        self.query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d
                     WHERE d.destination_id = $1 AND d.id < $2{status_filter} ORDER BY d.id DESC LIMIT $3"
                ),
                &params,
            )?
            .iter()
            .map(|r| delivery_from(r))
            .collect()
    }

    pub fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        self.query_one(
            &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.id = $1"),
            &[Val::Int(id)],
        )?
        .map(|r| delivery_from(&r))
        .transpose()
    }

    /// Every attempt made for a delivery, oldest first.
    pub fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = self.query(
            "SELECT at, status_code, error, duration_ms FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
            &[Val::Int(delivery_id)],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(AttemptRecord {
                    at: r[0].int()?,
                    status_code: r[1].int(),
                    error: r[2].text().map(str::to_owned),
                    duration_ms: r[3].int()?,
                })
            })
            .collect())
    }

    /// Puts dead deliveries (all of the destination's, or just `ids`) back in the queue,
    /// due now with a fresh retry budget. Returns how many.
    pub fn replay_dead(&self, destination_id: i64, ids: Option<&[i64]>) -> Result<u64, StoreError> {
        self.store.write_transaction(WriteDomain::Decisions, |conn| {
            let now = self.store.now_ms();
            let replay = |conn: &mut dyn Conn, extra: &str, params: &[Val]| {
                conn.execute(
                    &format!(
                        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2, finished_at = NULL
                         WHERE destination_id = $1 AND status = 'dead'{extra}"
                    ),
                    params,
                )
            };
            match ids {
                None => replay(conn, "", &[Val::Int(destination_id), Val::Int(now)]),
                Some(ids) => {
                    let mut total = 0;
                    for &id in ids {
                        total += replay(
                            conn,
                            " AND id = $3",
                            &[Val::Int(destination_id), Val::Int(now), Val::Int(id)],
                        )?;
                    }
                    Ok(total)
                }
            }
        })
    }
}

fn record_attempt(
    conn: &mut dyn Conn,
    delivery_id: i64,
    attempt: &AttemptRecord,
    outcome: DeliveryOutcome,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO delivery_attempts (delivery_id, at, status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5)",
        &[
            Val::Int(delivery_id),
            Val::Int(attempt.at),
            attempt.status_code.into(),
            Val::from(attempt.error.as_deref()),
            Val::Int(attempt.duration_ms),
        ],
    )?;
    let (status, next, finished) = match outcome {
        DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, attempt.at, Some(attempt.at)),
        DeliveryOutcome::RetryAt(at) => (DeliveryStatus::Pending, at, None),
        DeliveryOutcome::Dead => (DeliveryStatus::Dead, attempt.at, Some(attempt.at)),
    };
    conn.execute(
        "UPDATE deliveries SET attempts = attempts + 1, status = $1, next_attempt_at = $2, finished_at = $3, last_error = $4
         WHERE id = $5",
        &[
            Val::from(status.as_str()),
            Val::Int(next),
            finished.into(),
            Val::from(attempt.error.as_deref()),
            Val::Int(delivery_id),
        ],
    )?;
    Ok(())
}
