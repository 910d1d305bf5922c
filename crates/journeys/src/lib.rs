//! Journeys: what happens to a customer after a trigger, step by step (wait, branch, split,
//! send, set a trait), until a goal, an exit criterion or the last step ends it.
//!
//! The crate is pure: no I/O, no clock, no threads. The product stores definitions and
//! instances, hears events and timers on the bus, and hands each instance's inputs to
//! [`advance`], which answers what to do ([`Action`]s) and where the instance now stands.
//! `docs/journeys.md` is the reference for the JSON. The modules, in the order a journey
//! goes through them:
//!
//! - `definition`: the JSON a person writes ([`Definition`], [`Trigger`], [`Step`], …).
//! - `check`: [`check`] turns a definition into a [`Journey`], or lists every [`Problem`]
//!   with the step and field it is in; conditions are the segment language's, checked by
//!   its checker with its errors.
//! - `entry`: whether a person may enter again ([`may_enter`]) and the instance a trigger
//!   belongs to ([`instance_key`]).
//! - `machine`: [`advance`], one instance's state machine.
//! - [`next_allowed`] (from prossimo-messages, which also keeps its quiet hours): the next
//!   instant inside a local time window, in the customer's time zone, across
//!   daylight-saving changes.
//! - `dates`: when a date in a trait comes round ([`occurrence_between`]), in the
//!   person's zone.
//! - `graph`: a journey laid out to draw ([`layout`]: layers, slots, arrows named by the
//!   outcome that takes them).
//! - `dry_run`: what a draft would do to an audience's members entering now
//!   ([`dry_run`]), through the same machine, writing nothing.
//! - `lifecycle`: a journey's states (draft, published, paused, archived) and what may be
//!   done in each ([`transition`]).
//!
//! Beside the pure core, the part that touches the store: `stored` ([`Journeys`]: the
//! tables, their migrations in `migrations/`), `instances` ([`Instances`], [`enter`] and
//! [`record`]: who is where, their timers, the steps they took and what they sent, once
//! per instance and step) and `service` (save, check, publish, pause, resume, archive;
//! what the API, the console and the CLI call), and `runner` ([`JourneyRunner`]: the
//! service that runs instances on the bus).

mod check;
mod dates;
mod definition;
mod dry_run;
mod entry;
mod graph;
mod instances;
mod lifecycle;
mod machine;
mod runner;
mod service;
mod stored;
mod timeline;

pub use check::{CheckContext, Journey, Problem, check};
pub use dates::{DEFAULT_AT_MINUTE, occurrence_between, trait_date};
pub use definition::{
    Arm, Branch, Channel, DateTrigger, Definition, Delay, Entry, EventMatch, Reentry, Step,
    StepKind, Trigger, Until, Window,
};
pub use dry_run::{DRY_RUN_LIMIT, DryRun, SendForecast, dry_run};
pub use entry::{EarlierInstance, EntryRefusal, instance_key, may_enter};
pub use graph::{Graph, GraphEdge, GraphNode, layout, outcome_of};
pub use instances::{Entrant, Instances, JourneyTotals, StepRecord, StoredInstance, enter, record};
pub use instances::{JOURNEY_ENTERED, JOURNEY_EXITED, JOURNEY_STEP_COMPLETED};
pub use lifecycle::{JourneyState, LifecycleAction, LifecycleError, transition};
pub use machine::{Action, EventSeen, ExitReason, Facts, Input, Instance, Position, advance};
pub use prossimo_messages::{LocalWindow, next_allowed};
pub use runner::{DEFAULT_ZONE, JOURNEY_TRIGGERED, JourneyRunner, RunnerConfig, RunnerStatus};
pub use service::{
    JourneyError, change_journey_state, check_definition, parse_definition, publish_journey,
    save_journey,
};
pub use stored::{
    ChangeRecord, JourneyInput, JourneyRecord, Journeys, MAX_JOURNEY_BYTES, SCHEMA, VersionRecord,
};
pub use timeline::log_journey_events;
