//! One instance's state machine. [`advance`] takes what happened (it entered, its timer came
//! due, the person did something, their conditions may have changed) and runs steps until
//! the instance has to wait or ends, answering what to do on the way. It asks the world
//! only through [`Facts`], so it is the same in tests, in a dry run and in production.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{Journey, Plan, PlannedArm};
use crate::definition::{Channel, EventMatch, InQuietHours, Until};
use prossimo_messages::next_allowed;

/// What the machine asks of the world about the person.
pub trait Facts {
    /// Whether `condition` (segment language, checked) holds for the person now.
    fn holds(&self, condition: &str) -> bool;
    /// Whether `event` passes `filter` (an event match's `where`, checked).
    fn passes(&self, filter: &str, event: &EventSeen) -> bool;
    /// The person's time zone, for windows.
    fn zone(&self) -> Tz;
    /// The instant in a date trait (ms), when the person has one.
    fn date_trait(&self, name: &str) -> Option<i64>;
}

/// An event of the person, as a wait, a goal or an exit criterion sees it.
#[derive(Debug, Clone, Copy)]
pub struct EventSeen<'a> {
    pub name: &'a str,
    /// The value of the journey's instance key in this event, if it has one.
    pub instance_key: Option<&'a str>,
    /// The stored message, for the filter.
    pub message: &'a Value,
}

/// One person's way through one version of a journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Unique and stable: a split's draw and each send's idempotency key derive from it.
    pub id: String,
    pub key: Option<String>,
    pub entered_at: i64,
    pub position: Position,
}

/// Where an instance stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Position {
    /// Triggered; the first step has not run yet.
    Entering,
    /// At a delay or a wait (by step id) until `due` (ms); a wait also ends when its event
    /// comes or its condition holds.
    Waiting { step: String, due: i64 },
    Ended {
        reason: ExitReason,
        /// The step it ended at, if any.
        step: Option<String>,
        at: i64,
    },
}

/// Why an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// Reached an exit step or a step with no next.
    Completed,
    /// The goal was met: converted.
    Goal,
    /// An exit criterion was met.
    ExitCriterion,
    /// Drawn into a split's holdout arm: sent nothing, on purpose.
    Holdout,
    /// Its journey was archived while it ran.
    Archived,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Completed => "completed",
            ExitReason::Goal => "goal",
            ExitReason::ExitCriterion => "exit_criterion",
            ExitReason::Holdout => "holdout",
            ExitReason::Archived => "archived",
        }
    }
}

/// What happened to an instance.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// It was just created: run from the first step.
    Enter,
    /// Its timer came due.
    Due,
    /// The person did something.
    Event(EventSeen<'a>),
    /// The person's traits, computed traits or audiences changed.
    Changed,
}

/// What the world must do for an instance, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A step was done, and which way it went (`elapsed`, `happened`, `timeout`,
    /// `branch 1`, `otherwise`, an arm's name, `sent`, `set`).
    StepCompleted { step: String, outcome: String },
    /// Send a message. The idempotency key is the same however often this instance
    /// reaches this step, so a send is never done twice.
    Send {
        step: String,
        channel: Channel,
        message: String,
        topic: Option<String>,
        transactional: bool,
        in_quiet_hours: InQuietHours,
        idempotency_key: String,
    },
    SetTrait {
        step: String,
        name: String,
        value: Value,
    },
    /// Wake the instance at `due` (ms): a delay's end or a wait's timeout.
    Schedule { due: i64 },
    Ended {
        reason: ExitReason,
        step: Option<String>,
    },
}

/// Moves `instance` on after `input` at `now` (ms) and answers what to do. An instance
/// that has ended stays ended; an input its position does not wait for changes nothing.
pub fn advance(
    journey: &Journey,
    instance: &mut Instance,
    input: Input,
    now: i64,
    facts: &dyn Facts,
) -> Vec<Action> {
    let mut run = Run {
        journey,
        instance,
        now,
        facts,
        actions: Vec::new(),
    };
    run.on(input);
    run.actions
}

struct Run<'a> {
    journey: &'a Journey,
    instance: &'a mut Instance,
    now: i64,
    facts: &'a dyn Facts,
    actions: Vec<Action>,
}

impl Run<'_> {
    fn on(&mut self, input: Input) {
        let waiting_at = match &self.instance.position {
            Position::Ended { .. } => return,
            Position::Entering => None,
            Position::Waiting { step, due } => {
                self.journey.step_index(step).map(|index| (index, *due))
            }
        };
        if let Some(reason) = self.criterion_met(&input) {
            let step = waiting_at.map(|(index, _)| index);
            self.end(reason, step);
            return;
        }
        match (waiting_at, input) {
            (None, Input::Enter) => self.run_from(Some(0), None),
            (None, _) => {}
            (Some((index, due)), input) => self.resume(index, due, input),
        }
    }

    /// A goal or exit criterion that `input` meets, the goal first.
    fn criterion_met(&self, input: &Input) -> Option<ExitReason> {
        let definition = &self.journey.definition;
        [
            (&definition.goal, ExitReason::Goal),
            (&definition.exit_when, ExitReason::ExitCriterion),
        ]
        .into_iter()
        .find_map(|(until, reason)| {
            let until = until.as_ref()?;
            let met = match (until, input) {
                (Until::Condition(condition), _) => self.facts.holds(condition),
                (Until::Event(wanted), Input::Event(event)) => self.matches(wanted, event),
                (Until::Event(_), _) => false,
            };
            met.then_some(reason)
        })
    }

    fn matches(&self, wanted: &EventMatch, event: &EventSeen) -> bool {
        wanted.name == event.name
            && (!wanted.same_instance
                || (self.instance.key.is_some()
                    && event.instance_key == self.instance.key.as_deref()))
            && wanted
                .filter
                .as_ref()
                .is_none_or(|filter| self.facts.passes(filter, event))
    }

    /// An instance waiting at step `index` until `due` hears `input`.
    fn resume(&mut self, index: usize, due: i64, input: Input) {
        let Some(plan) = self.journey.plans.get(index) else {
            return;
        };
        match (plan, input) {
            (Plan::Delay { next, .. }, Input::Due) if self.now >= due => {
                let next = *next;
                self.completed(index, "elapsed");
                self.run_from(next, Some(index));
            }
            (
                Plan::Wait {
                    on_timeout: next, ..
                },
                Input::Due,
            ) if self.now >= due => {
                let next = *next;
                self.completed(index, "timeout");
                self.run_from(next, Some(index));
            }
            (
                Plan::Wait {
                    until: Until::Event(wanted),
                    next,
                    ..
                },
                Input::Event(event),
            ) if self.matches(wanted, &event) => {
                let next = *next;
                self.completed(index, "happened");
                self.run_from(next, Some(index));
            }
            (
                Plan::Wait {
                    until: Until::Condition(condition),
                    next,
                    ..
                },
                Input::Changed | Input::Due,
            ) if self.facts.holds(condition) => {
                let next = *next;
                self.completed(index, "happened");
                self.run_from(next, Some(index));
            }
            _ => {}
        }
    }

    /// Runs steps from `start` (after step `after`, if one led here) until one waits or
    /// the instance ends; an instance that ends for want of a next step ends at the last
    /// step it took. The graph has no loops (checked), so this takes at most one pass over
    /// the steps.
    fn run_from(&mut self, start: Option<usize>, after: Option<usize>) {
        let mut current = start;
        let mut last = after;
        for _ in 0..=self.journey.plans.len() {
            let Some(index) = current else {
                self.end(ExitReason::Completed, last);
                return;
            };
            let Some(plan) = self.journey.plans.get(index) else {
                self.end(ExitReason::Completed, last);
                return;
            };
            last = Some(index);
            current = match plan {
                Plan::Delay {
                    ms,
                    until_trait,
                    window,
                    next,
                } => {
                    let from = match (ms, until_trait) {
                        (Some(ms), _) => self.now.saturating_add(*ms),
                        (None, Some(name)) => self
                            .facts
                            .date_trait(name)
                            .map_or(self.now, |at| at.max(self.now)),
                        (None, None) => self.now,
                    };
                    let due = match window {
                        Some(window) => next_allowed(from, self.facts.zone(), window),
                        None => from,
                    };
                    if due > self.now {
                        self.wait(index, due);
                        return;
                    }
                    self.completed(index, "elapsed");
                    *next
                }
                Plan::Wait {
                    until,
                    timeout_ms,
                    next,
                    ..
                } => {
                    if let Until::Condition(condition) = until
                        && self.facts.holds(condition)
                    {
                        self.completed(index, "happened");
                        *next
                    } else {
                        self.wait(index, self.now.saturating_add(*timeout_ms));
                        return;
                    }
                }
                Plan::Branch {
                    branches,
                    otherwise,
                } => match branches
                    .iter()
                    .position(|(condition, _)| self.facts.holds(condition))
                {
                    Some(i) => {
                        let next = branches[i].1;
                        self.completed(index, &format!("branch {}", i + 1));
                        next
                    }
                    None => {
                        let next = *otherwise;
                        self.completed(index, "otherwise");
                        next
                    }
                },
                Plan::Split { arms, seed } => {
                    let arm = draw(arms, &self.instance.id, self.journey.step_id(index), *seed);
                    let Some(arm) = arm else {
                        self.end(ExitReason::Completed, Some(index));
                        return;
                    };
                    let (name, holdout, next) = (arm.name.clone(), arm.holdout, arm.next);
                    self.completed(index, &name);
                    if holdout {
                        self.end(ExitReason::Holdout, Some(index));
                        return;
                    }
                    next
                }
                Plan::Send {
                    channel,
                    message,
                    topic,
                    transactional,
                    in_quiet_hours,
                    next,
                } => {
                    let step = self.journey.step_id(index).to_owned();
                    self.actions.push(Action::Send {
                        idempotency_key: format!("{}/{step}", self.instance.id),
                        step,
                        channel: *channel,
                        message: message.clone(),
                        topic: topic.clone(),
                        transactional: *transactional,
                        in_quiet_hours: *in_quiet_hours,
                    });
                    self.completed(index, "sent");
                    *next
                }
                Plan::SetTrait {
                    trait_name,
                    value,
                    next,
                } => {
                    self.actions.push(Action::SetTrait {
                        step: self.journey.step_id(index).to_owned(),
                        name: trait_name.clone(),
                        value: value.clone(),
                    });
                    self.completed(index, "set");
                    *next
                }
                Plan::Exit => {
                    self.completed(index, "exit");
                    self.end(ExitReason::Completed, Some(index));
                    return;
                }
            };
        }
    }

    fn completed(&mut self, index: usize, outcome: &str) {
        self.actions.push(Action::StepCompleted {
            step: self.journey.step_id(index).to_owned(),
            outcome: outcome.to_owned(),
        });
    }

    fn wait(&mut self, index: usize, due: i64) {
        self.instance.position = Position::Waiting {
            step: self.journey.step_id(index).to_owned(),
            due,
        };
        self.actions.push(Action::Schedule { due });
    }

    fn end(&mut self, reason: ExitReason, step: Option<usize>) {
        let step = step.map(|index| self.journey.step_id(index).to_owned());
        self.instance.position = Position::Ended {
            reason,
            step: step.clone(),
            at: self.now,
        };
        self.actions.push(Action::Ended { reason, step });
    }
}

/// The arm an instance draws at a split: FNV-1a (64 bits) of the instance id, the step id
/// and the seed, modulo the total weight. Written out rather than taken from `std`, whose
/// hasher may change between Rust releases: an instance must draw the same arm on every
/// version of Prossimo, or a replay would put it in another arm.
fn draw<'a>(
    arms: &'a [PlannedArm],
    instance: &str,
    step: &str,
    seed: u64,
) -> Option<&'a PlannedArm> {
    let total: u64 = arms.iter().map(|a| u64::from(a.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = instance
        .bytes()
        .chain([0])
        .chain(step.bytes())
        .chain([0])
        .chain(seed.to_le_bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut point = hash % total;
    arms.iter().find(|arm| {
        let weight = u64::from(arm.weight);
        if point < weight {
            true
        } else {
            point -= weight;
            false
        }
    })
}
