//! Checks a definition whole and lists every problem with the step and field it is in, so a
//! person fixes them in one pass. Conditions and event filters are the segment language's,
//! checked by its checker, with its line and column.

use std::collections::{BTreeSet, HashMap};

use prossimo_segments::{Schema, compile, parse_duration};
use serde::Serialize;

use crate::definition::{
    Channel, Definition, Delay, EventMatch, InQuietHours, Reentry, StepKind, Trigger, Until, Window,
};
use prossimo_messages::LocalWindow;

/// What a definition is checked against.
pub struct CheckContext<'a> {
    /// The computed traits conditions may name.
    pub schema: &'a Schema,
    /// The audiences that exist (slugs): triggers and `segment "…"` must name one of them.
    pub audiences: &'a BTreeSet<String>,
}

/// One thing wrong with a definition: where (`step` when it is inside one, and the field's
/// path within it or within the journey) and why; `line` and `column` inside a condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub field: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.step {
            Some(step) => write!(f, "step {step:?}, {}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

/// A definition that passed [`check`], with what the state machine needs worked out:
/// steps by position, durations in milliseconds, windows parsed.
#[derive(Debug, Clone)]
pub struct Journey {
    pub definition: Definition,
    pub(crate) plans: Vec<Plan>,
    /// How long after an instance entered the same person (or key) may enter again;
    /// `None`: never (`once`); `Some(0)`: as soon as it ended (`always`).
    pub reentry_after_ms: Option<i64>,
}

/// A step ready to run.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    Delay {
        ms: Option<i64>,
        until_trait: Option<String>,
        window: Option<LocalWindow>,
        next: Option<usize>,
    },
    Wait {
        until: Until,
        timeout_ms: i64,
        next: Option<usize>,
        on_timeout: Option<usize>,
    },
    Branch {
        branches: Vec<(String, Option<usize>)>,
        otherwise: Option<usize>,
    },
    Split {
        arms: Vec<PlannedArm>,
        seed: u64,
    },
    Send {
        channel: Channel,
        message: String,
        topic: Option<String>,
        transactional: bool,
        in_quiet_hours: InQuietHours,
        next: Option<usize>,
    },
    SetTrait {
        trait_name: String,
        value: serde_json::Value,
        next: Option<usize>,
    },
    Exit,
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedArm {
    pub name: String,
    pub weight: u32,
    pub holdout: bool,
    pub next: Option<usize>,
}

/// The longest a step id, a message slug or a trait name may be (bytes).
const MAX_NAME_BYTES: usize = 100;
/// The most steps a journey may have.
pub const MAX_STEPS: usize = 200;

/// Checks `definition` whole: every problem, or the journey ready to run.
pub fn check(definition: &Definition, context: &CheckContext) -> Result<Journey, Vec<Problem>> {
    let mut checker = Checker {
        context,
        problems: Vec::new(),
    };
    let index = checker.step_ids(definition);
    checker.trigger(&definition.trigger);
    checker.entry(definition);
    if let Some(goal) = &definition.goal {
        checker.until(None, "goal", goal, definition.entry.instance_key.is_some());
    }
    if let Some(exit) = &definition.exit_when {
        checker.until(
            None,
            "exit_when",
            exit,
            definition.entry.instance_key.is_some(),
        );
    }
    let plans: Vec<Plan> = definition
        .steps
        .iter()
        .map(|step| checker.step(&step.id, &step.kind, &index, definition))
        .collect();
    checker.graph(definition, &index);
    if !checker.problems.is_empty() {
        return Err(checker.problems);
    }
    let reentry_after_ms = match &definition.entry.reentry {
        Reentry::Once => None,
        Reentry::Always => Some(0),
        Reentry::After(text) => Some(parse_duration(text).map(|d| d.ms()).unwrap_or(0)),
    };
    Ok(Journey {
        definition: definition.clone(),
        plans,
        reentry_after_ms,
    })
}

struct Checker<'a> {
    context: &'a CheckContext<'a>,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, step: Option<&str>, field: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            step: step.map(str::to_owned),
            field: field.to_owned(),
            reason: reason.into(),
            line: None,
            column: None,
        });
    }

    fn name(&mut self, step: Option<&str>, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.problem(step, field, "must not be empty");
        } else if value.len() > MAX_NAME_BYTES {
            self.problem(
                step,
                field,
                format!(
                    "{} bytes long, at most {MAX_NAME_BYTES} allowed",
                    value.len()
                ),
            );
        }
    }

    /// Step ids: present, unique, and where each is.
    fn step_ids(&mut self, definition: &Definition) -> HashMap<String, usize> {
        if definition.steps.is_empty() {
            self.problem(None, "steps", "a journey needs at least one step");
        }
        if definition.steps.len() > MAX_STEPS {
            self.problem(
                None,
                "steps",
                format!(
                    "{} steps, at most {MAX_STEPS} allowed",
                    definition.steps.len()
                ),
            );
        }
        let mut index = HashMap::new();
        for (i, step) in definition.steps.iter().enumerate() {
            let field = format!("steps[{i}].id");
            self.name(None, &field, &step.id);
            if index.insert(step.id.clone(), i).is_some() {
                self.problem(
                    Some(&step.id),
                    &field,
                    "another step has this id; ids must be unique",
                );
            }
        }
        index
    }

    fn trigger(&mut self, trigger: &Trigger) {
        match trigger {
            Trigger::Event(event) => self.event(None, "trigger.event", event, false),
            Trigger::AudienceEntered(slug) => self.audience("trigger.audience_entered", slug),
            Trigger::AudienceExited(slug) => self.audience("trigger.audience_exited", slug),
            Trigger::Date(date) => {
                self.name(None, "trigger.date.trait", &date.trait_name);
                if date.days_before > 0 && date.days_after > 0 {
                    self.problem(
                        None,
                        "trigger.date",
                        "days_before and days_after cannot both be set",
                    );
                }
                if date.days_before > 366 || date.days_after > 366 {
                    self.problem(None, "trigger.date", "at most 366 days before or after");
                }
                if let Some(at) = &date.at
                    && prossimo_messages::minute_of_day(at).is_none()
                {
                    self.problem(
                        None,
                        "trigger.date.at",
                        format!("{at:?} is not a time of day like \"09:00\""),
                    );
                }
            }
            Trigger::Api => {}
        }
    }

    fn audience(&mut self, field: &str, slug: &str) {
        if !self.context.audiences.contains(slug) {
            self.problem(None, field, format!("there is no audience {slug:?}"));
        }
    }

    fn entry(&mut self, definition: &Definition) {
        let entry = &definition.entry;
        if let Some(condition) = &entry.condition {
            self.condition(None, "entry.condition", condition);
        }
        if let Reentry::After(text) = &entry.reentry {
            self.duration(None, "entry.reentry.after", text);
        }
        if let Some(key) = &entry.instance_key {
            if !matches!(definition.trigger, Trigger::Event(_) | Trigger::Api) {
                self.problem(
                    None,
                    "entry.instance_key",
                    "only a journey triggered by an event or the API has instances by key",
                );
            }
            if crate::entry::key_path(key).is_none() {
                self.problem(
                    None,
                    "entry.instance_key",
                    format!(
                        "{key:?} is not a field of the event like \"properties.cart_id\" or \"context.page.url\""
                    ),
                );
            }
        }
    }

    fn step(
        &mut self,
        id: &str,
        kind: &StepKind,
        index: &HashMap<String, usize>,
        definition: &Definition,
    ) -> Plan {
        let step = Some(id);
        let keyed = definition.entry.instance_key.is_some();
        let target = |checker: &mut Checker, field: &str, next: &Option<String>| {
            let name = next.as_ref()?;
            match index.get(name) {
                Some(&i) => Some(i),
                None => {
                    checker.problem(step, field, format!("there is no step {name:?}"));
                    None
                }
            }
        };
        match kind {
            StepKind::Delay(Delay {
                duration,
                until_trait,
                window,
                next,
            }) => {
                let ms = duration
                    .as_ref()
                    .and_then(|d| self.duration(step, "for", d));
                if let Some(name) = until_trait {
                    self.name(step, "until_trait", name);
                }
                let waits_for_something = match (duration, until_trait) {
                    (Some(_), None) | (None, Some(_)) => true,
                    (None, None) => window.is_some(),
                    (Some(_), Some(_)) => false,
                };
                if !waits_for_something {
                    self.problem(
                        step,
                        "for",
                        "a delay waits either `for` a duration or `until_trait`, with or without a `window`",
                    );
                }
                let window = window.as_ref().and_then(|w| self.window(step, w));
                Plan::Delay {
                    ms,
                    until_trait: until_trait.clone(),
                    window,
                    next: target(self, "next", next),
                }
            }
            StepKind::Wait {
                until,
                timeout,
                next,
                on_timeout,
            } => {
                self.until(step, "until", until, keyed);
                let timeout_ms = self.duration(step, "timeout", timeout).unwrap_or(0);
                Plan::Wait {
                    until: until.clone(),
                    timeout_ms,
                    next: target(self, "next", next),
                    on_timeout: target(self, "on_timeout", on_timeout),
                }
            }
            StepKind::Branch {
                branches,
                otherwise,
            } => {
                if branches.is_empty() {
                    self.problem(step, "branches", "a branch needs at least one condition");
                }
                let branches = branches
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        self.condition(step, &format!("branches[{i}].condition"), &b.condition);
                        (
                            b.condition.clone(),
                            target(self, &format!("branches[{i}].next"), &b.next),
                        )
                    })
                    .collect();
                Plan::Branch {
                    branches,
                    otherwise: target(self, "otherwise", otherwise),
                }
            }
            StepKind::Split { arms, seed } => {
                if arms.len() < 2 {
                    self.problem(step, "arms", "a split needs at least two arms");
                }
                if arms.iter().map(|a| u64::from(a.weight)).sum::<u64>() == 0 {
                    self.problem(step, "arms", "the arms' weights add up to nothing");
                }
                let mut names = BTreeSet::new();
                let arms = arms
                    .iter()
                    .enumerate()
                    .map(|(i, arm)| {
                        self.name(step, &format!("arms[{i}].name"), &arm.name);
                        if !names.insert(arm.name.as_str()) {
                            self.problem(
                                step,
                                &format!("arms[{i}].name"),
                                "another arm has this name",
                            );
                        }
                        if arm.holdout && arm.next.is_some() {
                            self.problem(
                                step,
                                &format!("arms[{i}].next"),
                                "a holdout arm ends the instance; it has no next step",
                            );
                        }
                        PlannedArm {
                            name: arm.name.clone(),
                            weight: arm.weight,
                            holdout: arm.holdout,
                            next: target(self, &format!("arms[{i}].next"), &arm.next),
                        }
                    })
                    .collect();
                Plan::Split { arms, seed: *seed }
            }
            StepKind::Send {
                channel,
                message,
                topic,
                transactional,
                in_quiet_hours,
                next,
            } => {
                self.name(step, "message", message);
                if let Some(topic) = topic {
                    if let Err(reason) = prossimo_messages::check_topic(topic).and_then(|()| {
                        if topic == prossimo_messages::ALL_TOPICS {
                            Err("\"*\" stands for every topic; a message belongs to one".into())
                        } else {
                            Ok(())
                        }
                    }) {
                        self.problem(step, "topic", &reason);
                    }
                    if *transactional {
                        self.problem(
                            step,
                            "topic",
                            "a transactional send belongs to no subscription topic",
                        );
                    }
                }
                Plan::Send {
                    channel: *channel,
                    message: message.clone(),
                    topic: topic.clone(),
                    transactional: *transactional,
                    in_quiet_hours: *in_quiet_hours,
                    next: target(self, "next", next),
                }
            }
            StepKind::SetTrait {
                trait_name,
                value,
                next,
            } => {
                self.name(step, "trait", trait_name);
                Plan::SetTrait {
                    trait_name: trait_name.clone(),
                    value: value.clone(),
                    next: target(self, "next", next),
                }
            }
            StepKind::Exit {} => Plan::Exit,
        }
    }

    fn until(&mut self, step: Option<&str>, field: &str, until: &Until, keyed: bool) {
        match until {
            Until::Event(event) => self.event(step, &format!("{field}.event"), event, keyed),
            Until::Condition(condition) => {
                self.condition(step, &format!("{field}.condition"), condition)
            }
        }
    }

    fn event(&mut self, step: Option<&str>, field: &str, event: &EventMatch, keyed: bool) {
        self.name(step, &format!("{field}.name"), &event.name);
        if let Some(filter) = &event.filter {
            // A filter is the `where` of an aggregate; wrapped so that its own lines and
            // columns are one line down.
            let wrapped = format!("count(any event where\n{filter}\n) >= 0");
            if let Err(e) = compile(&wrapped, self.context.schema) {
                self.problems.push(Problem {
                    step: step.map(str::to_owned),
                    field: format!("{field}.where"),
                    reason: e.message().to_owned(),
                    line: Some(e.line().saturating_sub(1).max(1)),
                    column: Some(e.column()),
                });
            }
        }
        if event.same_instance && !keyed {
            self.problem(
                step,
                &format!("{field}.same_instance"),
                "the journey has no entry.instance_key to match the event's instance by",
            );
        }
    }

    fn condition(&mut self, step: Option<&str>, field: &str, condition: &str) {
        match compile(condition, self.context.schema) {
            Err(e) => self.problems.push(Problem {
                step: step.map(str::to_owned),
                field: field.to_owned(),
                reason: e.message().to_owned(),
                line: Some(e.line()),
                column: Some(e.column()),
            }),
            Ok(expr) => {
                for slug in expr.segment_references() {
                    if !self.context.audiences.contains(&slug.node) {
                        self.problems.push(Problem {
                            step: step.map(str::to_owned),
                            field: field.to_owned(),
                            reason: format!("there is no audience {:?}", slug.node),
                            line: Some(slug.span.line),
                            column: Some(slug.span.column),
                        });
                    }
                }
            }
        }
    }

    fn duration(&mut self, step: Option<&str>, field: &str, text: &str) -> Option<i64> {
        match parse_duration(text) {
            Ok(d) => Some(d.ms()),
            Err(e) => {
                self.problem(step, field, e.message());
                None
            }
        }
    }

    fn window(&mut self, step: Option<&str>, window: &Window) -> Option<LocalWindow> {
        match LocalWindow::parse(&window.days, &window.from, &window.to) {
            Ok(w) => Some(w),
            Err((field, reason)) => {
                self.problem(step, &format!("window.{field}"), reason);
                None
            }
        }
    }

    /// Every step reachable from the first, and no way back to a step already taken: an
    /// instance always ends.
    fn graph(&mut self, definition: &Definition, index: &HashMap<String, usize>) {
        let steps = &definition.steps;
        if steps.is_empty() || index.len() != steps.len() {
            return;
        }
        let successors: Vec<Vec<usize>> = steps
            .iter()
            .map(|s| {
                s.kind
                    .successors()
                    .iter()
                    .filter_map(|(_, n)| index.get(*n).copied())
                    .collect()
            })
            .collect();
        // Depth-first from the first step; grey = on the current path.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            White,
            Grey,
            Black,
        }
        let mut marks = vec![Mark::White; steps.len()];
        let mut stack: Vec<(usize, usize)> = vec![(0, 0)];
        marks[0] = Mark::Grey;
        let mut cycle: Option<(usize, usize)> = None;
        while let Some((node, child)) = stack.pop() {
            if let Some(&next) = successors[node].get(child) {
                stack.push((node, child + 1));
                match marks[next] {
                    Mark::White => {
                        marks[next] = Mark::Grey;
                        stack.push((next, 0));
                    }
                    Mark::Grey => {
                        cycle.get_or_insert((node, next));
                    }
                    Mark::Black => {}
                }
            } else {
                marks[node] = Mark::Black;
            }
        }
        if let Some((from, to)) = cycle {
            let field = steps[from]
                .kind
                .successors()
                .into_iter()
                .find(|(_, n)| *n == steps[to].id)
                .map_or_else(|| "next".to_owned(), |(field, _)| field);
            self.problem(
                Some(&steps[from].id),
                &field,
                format!(
                    "leads back to step {:?}, which comes before it: a journey cannot loop",
                    steps[to].id
                ),
            );
        }
        for (i, step) in steps.iter().enumerate() {
            if marks[i] == Mark::White {
                self.problem(
                    Some(&step.id),
                    "id",
                    "no step leads here from the first step",
                );
            }
        }
    }
}

impl Journey {
    /// The step at `index`'s id.
    pub fn step_id(&self, index: usize) -> &str {
        self.definition
            .steps
            .get(index)
            .map_or("", |step| step.id.as_str())
    }

    /// Where the step called `id` is.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.definition.steps.iter().position(|s| s.id == id)
    }
}
