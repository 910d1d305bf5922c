//! Instances in the store: who is where in which version of a journey, their timers, the
//! steps they took (the audit trail and the counts per step) and what they sent. The
//! writes take the caller's write transaction of the decisions domain, so that what an
//! input caused (a position, its steps, its sends) commits whole or not at all.

use std::collections::BTreeMap;

use prossimo_identity::ProfileId;
use prossimo_messages::{NewSend, Origin, owe};
use prossimo_store::sql::{Conn, Row, Val};
use prossimo_store::{Store, StoreError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::check::Journey;
use crate::entry::{EarlierInstance, EntryRefusal, may_enter};
use crate::machine::{Action, ExitReason, Instance, Position};
use crate::stored::SCHEMA;

/// An instance as stored: its row, its journey and version, whose it is, and the
/// machine's view of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInstance {
    pub row: i64,
    pub journey_id: i64,
    pub version: i64,
    pub profile_id: ProfileId,
    pub instance: Instance,
    /// What started it (the event's type, name, channel and properties): messages render
    /// over it (`{{ event.properties.… }}`).
    pub trigger: Value,
}

/// One step an instance took, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub outcome: String,
    pub at: i64,
}

const COLUMNS: &str = "id, journey_id, version, profile_id, instance_key, entered_at, state, step, due, exit_reason, ended_at, trigger_event";

fn instance_from(row: &Row) -> Result<StoredInstance, StoreError> {
    let corrupt = || StoreError::Corrupt("journey instance row".into());
    let id = row[0].int().ok_or_else(corrupt)?;
    let step = row[7].text().map(str::to_owned);
    let position = match row[6].text().ok_or_else(corrupt)? {
        "entering" => Position::Entering,
        "waiting" => Position::Waiting {
            step: step.ok_or_else(corrupt)?,
            due: row[8].int().ok_or_else(corrupt)?,
        },
        "ended" => Position::Ended {
            reason: exit_reason(row[9].text().ok_or_else(corrupt)?).ok_or_else(corrupt)?,
            step,
            at: row[10].int().ok_or_else(corrupt)?,
        },
        _ => return Err(corrupt()),
    };
    Ok(StoredInstance {
        row: id,
        journey_id: row[1].int().ok_or_else(corrupt)?,
        version: row[2].int().ok_or_else(corrupt)?,
        profile_id: row[3].int().ok_or_else(corrupt)?,
        trigger: row[11]
            .text()
            .map(serde_json::from_str)
            .transpose()?
            .unwrap_or(Value::Null),
        instance: Instance {
            id: instance_id(id),
            key: row[4].text().map(str::to_owned),
            entered_at: row[5].int().ok_or_else(corrupt)?,
            position,
        },
    })
}

/// The machine's id of the instance in row `row`: the split's draw and the sends'
/// idempotency keys derive from it.
fn instance_id(row: i64) -> String {
    format!("i{row}")
}

fn exit_reason(text: &str) -> Option<ExitReason> {
    [
        ExitReason::Completed,
        ExitReason::Goal,
        ExitReason::ExitCriterion,
        ExitReason::Holdout,
        ExitReason::Archived,
    ]
    .into_iter()
    .find(|r| r.as_str() == text)
}

/// The events of an instance on the customer's timeline.
pub const JOURNEY_ENTERED: &str = "Journey Entered";
pub const JOURNEY_STEP_COMPLETED: &str = "Journey Step Completed";
pub const JOURNEY_EXITED: &str = "Journey Exited";

/// Records what happened to an instance (once per instance, event and step).
fn log(
    conn: &mut dyn Conn,
    stored: &StoredInstance,
    at: i64,
    event: &str,
    step: &str,
    outcome: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO journey_events (instance_id, journey_id, profile_id, at, event, step, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (instance_id, event, step) DO NOTHING",
        &[
            Val::Int(stored.row),
            Val::Int(stored.journey_id),
            Val::Int(stored.profile_id),
            Val::Int(at),
            Val::from(event),
            Val::from(step),
            Val::from(outcome),
        ],
    )?;
    Ok(())
}

/// Who enters which version of a journey, as which instance, and what triggered it.
#[derive(Debug, Clone, Copy)]
pub struct Entrant<'a> {
    pub journey_id: i64,
    pub version: i64,
    pub profile_id: ProfileId,
    /// The instance key (one instance per value).
    pub key: Option<&'a str>,
    /// What started it (the event's type, name, channel and properties).
    pub trigger: &'a Value,
}

/// Enters `entrant` into its version of `journey` at `now`, if its re-entry policy
/// allows: the new instance (about to run its first step), or why not.
pub fn enter(
    conn: &mut dyn Conn,
    journey: &Journey,
    entrant: &Entrant<'_>,
    now: i64,
) -> Result<Result<StoredInstance, EntryRefusal>, StoreError> {
    let Entrant {
        journey_id,
        version,
        profile_id,
        key,
        trigger,
    } = *entrant;
    let earlier: Vec<EarlierInstance> = conn
        .query(
            "SELECT instance_key, entered_at, state FROM journey_instances WHERE journey_id = $1 AND profile_id = $2",
            &[Val::Int(journey_id), Val::Int(profile_id)],
        )?
        .iter()
        .map(|row| EarlierInstance {
            key: row[0].text().map(str::to_owned),
            entered_at: row[1].int().unwrap_or(0),
            active: row[2].text() != Some("ended"),
        })
        .collect();
    if let Err(refusal) = may_enter(journey, key, &earlier, now) {
        return Ok(Err(refusal));
    }
    let row = conn
        .query_one(
            "INSERT INTO journey_instances (journey_id, version, profile_id, instance_key, entered_at, state, trigger_event)
             VALUES ($1, $2, $3, $4, $5, 'entering', $6) RETURNING id",
            &[
                Val::Int(journey_id),
                Val::Int(version),
                Val::Int(profile_id),
                Val::from(key),
                Val::Int(now),
                Val::Text(trigger.to_string()),
            ],
        )?
        .and_then(|row| row[0].int())
        .ok_or_else(|| StoreError::Corrupt("no id for a new journey instance".into()))?;
    let stored = StoredInstance {
        row,
        journey_id,
        version,
        profile_id,
        trigger: trigger.clone(),
        instance: Instance {
            id: instance_id(row),
            key: key.map(str::to_owned),
            entered_at: now,
            position: Position::Entering,
        },
    };
    log(conn, &stored, now, JOURNEY_ENTERED, "", key.unwrap_or(""))?;
    Ok(Ok(stored))
}

/// Writes what [`advance`](crate::advance) did to `stored` (whose `instance` it moved)
/// and the `actions` it answered: the new position, the steps taken, and the sends owed
/// (to the messages' outbox, in the same transaction). Recording the same actions again
/// changes nothing: a step is recorded once per instance, and a send whose idempotency
/// key is owed already is not owed again. How many sends were newly owed.
pub fn record(
    conn: &mut dyn Conn,
    stored: &StoredInstance,
    actions: &[Action],
    now: i64,
) -> Result<usize, StoreError> {
    let (state, step, due, reason, ended_at) = match &stored.instance.position {
        Position::Entering => ("entering", None, None, None, None),
        Position::Waiting { step, due } => ("waiting", Some(step.as_str()), Some(*due), None, None),
        Position::Ended { reason, step, at } => (
            "ended",
            step.as_deref(),
            None,
            Some(reason.as_str()),
            Some(*at),
        ),
    };
    conn.execute(
        "UPDATE journey_instances SET state = $1, step = $2, due = $3, exit_reason = $4, ended_at = $5 WHERE id = $6",
        &[
            Val::from(state),
            Val::from(step),
            due.map_or(Val::Null, Val::Int),
            Val::from(reason),
            ended_at.map_or(Val::Null, Val::Int),
            Val::Int(stored.row),
        ],
    )?;
    let mut owed = 0;
    for action in actions {
        match action {
            Action::StepCompleted { step, outcome } => {
                log(conn, stored, now, JOURNEY_STEP_COMPLETED, step, outcome)?;
            }
            Action::Ended { reason, step } => {
                log(
                    conn,
                    stored,
                    now,
                    JOURNEY_EXITED,
                    step.as_deref().unwrap_or(""),
                    reason.as_str(),
                )?;
            }
            Action::Send {
                step,
                channel,
                message,
                topic,
                transactional,
                in_quiet_hours,
                idempotency_key,
            } => {
                let slug = conn
                    .query_one(
                        "SELECT slug FROM journeys WHERE id = $1",
                        &[Val::Int(stored.journey_id)],
                    )?
                    .and_then(|row| row[0].text().map(str::to_owned));
                let send = NewSend {
                    idempotency_key: idempotency_key.clone(),
                    profile_id: stored.profile_id,
                    origin: Origin::Journey {
                        journey_id: stored.journey_id,
                        step: step.clone(),
                    },
                    channel: *channel,
                    template: message.clone(),
                    topic: topic.clone(),
                    transactional: *transactional,
                    in_quiet_hours: *in_quiet_hours,
                    context: json!({
                        "event": stored.trigger,
                        "journey": {"slug": slug, "step": step},
                    }),
                };
                if owe(conn, &send, now)? {
                    owed += 1;
                }
            }
            Action::SetTrait { .. } | Action::Schedule { .. } => {}
        }
    }
    Ok(owed)
}

/// Ends every running instance of `journey_id` (its journey archived) at `now`, each with
/// its `Journey Exited` (`archived`) on the customer's timeline; their owed sends are left
/// to the outbox. How many ended.
pub fn end_all(conn: &mut dyn Conn, journey_id: i64, now: i64) -> Result<u64, StoreError> {
    let running: Vec<StoredInstance> = conn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM journey_instances WHERE journey_id = $1 AND state <> 'ended'"
            ),
            &[Val::Int(journey_id)],
        )?
        .iter()
        .map(instance_from)
        .collect::<Result<_, _>>()?;
    for stored in &running {
        let step = match &stored.instance.position {
            Position::Waiting { step, .. } => Some(step.clone()),
            _ => None,
        };
        let mut ended = stored.clone();
        ended.instance.position = Position::Ended {
            reason: ExitReason::Archived,
            step: step.clone(),
            at: now,
        };
        record(
            conn,
            &ended,
            &[Action::Ended {
                reason: ExitReason::Archived,
                step,
            }],
            now,
        )?;
    }
    Ok(running.len() as u64)
}

/// The instances still running for `profile_id` (in every journey), oldest first, as
/// `conn` sees them: inside a write transaction, with what it wrote already.
pub fn running(
    conn: &mut dyn Conn,
    profile_id: ProfileId,
) -> Result<Vec<StoredInstance>, StoreError> {
    conn.query(
        &format!(
            "SELECT {COLUMNS} FROM journey_instances WHERE profile_id = $1 AND state <> 'ended' ORDER BY id"
        ),
        &[Val::Int(profile_id)],
    )?
    .iter()
    .map(instance_from)
    .collect()
}

/// A journey's instances in sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JourneyTotals {
    pub entered: u64,
    /// Not ended yet.
    pub active: u64,
    /// Ended, by reason (`completed`, `goal`: converted, `exit_criterion`, `holdout`, …).
    pub exits: BTreeMap<String, u64>,
}

impl JourneyTotals {
    /// Ended on the goal.
    pub fn converted(&self) -> u64 {
        self.exits.get("goal").copied().unwrap_or(0)
    }
}

/// Reads of the instances of a store.
pub struct Instances<'a> {
    store: &'a Store,
}

impl<'a> Instances<'a> {
    /// The instances of `store`, their tables brought up to date first.
    pub fn of(store: &'a Store) -> Result<Instances<'a>, StoreError> {
        store.migrate(&prossimo_messages::SCHEMA)?;
        store.migrate(&SCHEMA)?;
        Ok(Instances { store })
    }

    /// The instances still running for `profile_id` (in every journey), oldest first.
    pub fn running_for(&self, profile_id: ProfileId) -> Result<Vec<StoredInstance>, StoreError> {
        self.store.read(|conn| running(conn, profile_id))
    }

    /// The (journey, version) pairs some instance still runs on.
    pub fn running_versions(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(self
            .store
            .read(|conn| {
                conn.query(
                    "SELECT DISTINCT journey_id, version FROM journey_instances WHERE state <> 'ended'",
                    &[],
                )
            })?
            .iter()
            .filter_map(|row| Some((row[0].int()?, row[1].int()?)))
            .collect())
    }

    /// Every instance of `profile_id`, newest first (the customer's 360).
    pub fn of_profile(&self, profile_id: ProfileId) -> Result<Vec<StoredInstance>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM journey_instances WHERE profile_id = $1 ORDER BY id DESC"
            ),
            &[Val::Int(profile_id)],
        )
    }

    /// Waiting instances whose timer is due at `now`, earliest first, at most `limit`.
    pub fn due(&self, now: i64, limit: usize) -> Result<Vec<StoredInstance>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM journey_instances WHERE state = 'waiting' AND due <= $1 ORDER BY due, id LIMIT $2"
            ),
            &[Val::Int(now), Val::Int(i64::try_from(limit).unwrap_or(i64::MAX))],
        )
    }

    /// [`Instances::due`] of published journeys only: a paused journey's instances wait
    /// where they are, their timers held, until it is resumed.
    ///
    /// `+journey_id` keeps SQLite's planner on the `due` index: through the journey's
    /// index it would read and sort every waiting instance of the journey on each call
    /// (measured: 3,600 timers/s at a million waiting instead of the index's rate).
    pub fn due_live(&self, now: i64, limit: usize) -> Result<Vec<StoredInstance>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM journey_instances
                 WHERE state = 'waiting' AND due <= $1
                   AND +journey_id IN (SELECT id FROM journeys WHERE state = 'published')
                 ORDER BY due, id LIMIT $2"
            ),
            &[
                Val::Int(now),
                Val::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
        )
    }

    /// When the next timer of a published journey is due.
    pub fn next_due_live(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .read(|conn| {
                conn.query_one(
                    "SELECT MIN(due) FROM journey_instances
                     WHERE state = 'waiting'
                       AND +journey_id IN (SELECT id FROM journeys WHERE state = 'published')",
                    &[],
                )
            })?
            .and_then(|row| row[0].int()))
    }

    /// When the next timer is due, if any instance waits.
    pub fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .read(|conn| {
                conn.query_one(
                    "SELECT MIN(due) FROM journey_instances WHERE state = 'waiting'",
                    &[],
                )
            })?
            .and_then(|row| row[0].int()))
    }

    /// The steps an instance took, in order.
    pub fn steps(&self, row: i64) -> Result<Vec<StepRecord>, StoreError> {
        self.store
            .read(|conn| {
                conn.query(
                    "SELECT step, outcome, at FROM journey_events WHERE instance_id = $1 AND event = $2 ORDER BY id",
                    &[Val::Int(row), Val::from(JOURNEY_STEP_COMPLETED)],
                )
            })?
            .iter()
            .map(|r| {
                let corrupt = || StoreError::Corrupt("journey step row".into());
                Ok(StepRecord {
                    step: r[0].text().ok_or_else(corrupt)?.to_owned(),
                    outcome: r[1].text().ok_or_else(corrupt)?.to_owned(),
                    at: r[2].int().ok_or_else(corrupt)?,
                })
            })
            .collect()
    }

    /// How many instances of a journey took each step each way: step → outcome → count.
    pub fn step_counts(
        &self,
        journey_id: i64,
    ) -> Result<BTreeMap<String, BTreeMap<String, u64>>, StoreError> {
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for row in self.store.read(|conn| {
            conn.query(
                "SELECT step, outcome, COUNT(*) FROM journey_events WHERE journey_id = $1 AND event = $2 GROUP BY step, outcome",
                &[Val::Int(journey_id), Val::from(JOURNEY_STEP_COMPLETED)],
            )
        })? {
            if let (Some(step), Some(outcome), Some(n)) = (row[0].text(), row[1].text(), row[2].int()) {
                counts
                    .entry(step.to_owned())
                    .or_default()
                    .insert(outcome.to_owned(), u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// Every journey's instances in sum: how many entered, are under way, and how the
    /// others ended.
    pub fn totals(&self) -> Result<BTreeMap<i64, JourneyTotals>, StoreError> {
        let mut totals: BTreeMap<i64, JourneyTotals> = BTreeMap::new();
        for row in self.store.read(|conn| {
            conn.query(
                "SELECT journey_id, exit_reason, COUNT(*) FROM journey_instances GROUP BY journey_id, exit_reason",
                &[],
            )
        })? {
            let (Some(journey), Some(n)) = (row[0].int(), row[2].int()) else {
                continue;
            };
            let n = u64::try_from(n).unwrap_or(0);
            let entry = totals.entry(journey).or_default();
            entry.entered += n;
            match row[1].text() {
                None => entry.active += n,
                Some(reason) => {
                    *entry.exits.entry(reason.to_owned()).or_default() += n;
                }
            }
        }
        Ok(totals)
    }

    /// Where a journey's instances under way are now: step → how many wait there.
    pub fn waiting_by_step(&self, journey_id: i64) -> Result<BTreeMap<String, u64>, StoreError> {
        Ok(self
            .store
            .read(|conn| {
                conn.query(
                    "SELECT step, COUNT(*) FROM journey_instances WHERE journey_id = $1 AND exit_reason IS NULL AND step IS NOT NULL GROUP BY step",
                    &[Val::Int(journey_id)],
                )
            })?
            .iter()
            .filter_map(|r| Some((r[0].text()?.to_owned(), u64::try_from(r[1].int()?).ok()?)))
            .collect())
    }

    fn rows(&self, sql: &str, params: &[Val]) -> Result<Vec<StoredInstance>, StoreError> {
        self.store
            .read(|conn| conn.query(sql, params))?
            .iter()
            .map(instance_from)
            .collect()
    }
}
