//! A journey as a person writes it (JSON). Every object refuses fields it does not know, so
//! a misspelt key is an error, not a silent default.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A journey: what starts it, who may enter, what ends it early, and its steps. An instance
/// starts at the first step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub trigger: Trigger,
    #[serde(default)]
    pub entry: Entry,
    /// Ends an instance at once, wherever it is, counted as converted (a purchase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Until>,
    /// Ends an instance at once, wherever it is, not converted (an unsubscribe, a refund).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_when: Option<Until>,
    pub steps: Vec<Step>,
}

/// What starts an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// An event of the person (`{"event": {"name": "Checkout Started", "where": …}}`).
    Event(EventMatch),
    /// The person enters an audience (its slug).
    AudienceEntered(String),
    /// The person leaves an audience (its slug).
    AudienceExited(String),
    /// A date in a trait comes round (a renewal, a birthday).
    Date(DateTrigger),
    /// `POST /v1/journeys/{slug}/trigger`, for transactional sends.
    Api,
}

/// An event by name, optionally filtered in the segment language (`where`, as in an
/// aggregate's filter: `properties.total > 50 and channel == "web"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    pub name: String,
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Only an event of the same instance (its instance key has the instance's value): the
    /// order that completes this cart, not another.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub same_instance: bool,
}

/// A date trait's day, `days_before` or `days_after` it, every year when `yearly`
/// (birthdays), at `at` local time (`"09:00"` unless set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateTrigger {
    #[serde(rename = "trait")]
    pub trait_name: String,
    #[serde(default)]
    pub days_before: u32,
    #[serde(default)]
    pub days_after: u32,
    #[serde(default)]
    pub yearly: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Who may enter, how often, and what makes two instances one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Must hold for the person when triggered (segment language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default)]
    pub reentry: Reentry,
    /// A field of the triggering event (`properties.cart_id`) whose value names the
    /// instance: one instance per value, and waits with `same_instance` match it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_key: Option<String>,
}

/// Whether a person (or, with an instance key, the same key) may enter again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reentry {
    /// Never again.
    #[default]
    Once,
    /// Once the previous instance has ended, whenever triggered.
    Always,
    /// Once the previous instance has ended and this long after it entered (`"30d"`).
    After(String),
}

/// One step: an id other steps point at, and what it does (`{"id": …, "type": …, …}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: String,
    #[serde(flatten)]
    pub kind: StepKind,
}

/// By hand: serde cannot refuse unknown fields through `flatten`, and a misspelt field of
/// a step must be an error.
impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Step, D::Error> {
        use serde::de::Error;
        let mut fields = serde_json::Map::deserialize(deserializer)?;
        let id = match fields.remove("id") {
            Some(Value::String(id)) => id,
            Some(_) => return Err(D::Error::custom("id: must be a string")),
            None => return Err(D::Error::missing_field("id")),
        };
        let kind = StepKind::deserialize(Value::Object(fields)).map_err(D::Error::custom)?;
        Ok(Step { id, kind })
    }
}

/// What a step does. `next` names the step after it; none ends the instance there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepKind {
    Delay(Delay),
    /// Waits until an event or a condition, at most `timeout`: then `next`, else
    /// `on_timeout`.
    Wait {
        until: Until,
        timeout: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_timeout: Option<String>,
    },
    /// The first branch whose condition holds, else `otherwise`.
    Branch {
        branches: Vec<Branch>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        otherwise: Option<String>,
    },
    /// Each instance draws one arm, by weight; the draw is fixed by the instance and the
    /// `seed`, so a replay draws the same.
    Split {
        arms: Vec<Arm>,
        #[serde(default)]
        seed: u64,
    },
    Send {
        channel: Channel,
        /// The message (template) to send, by slug.
        message: String,
        /// The subscription topic it belongs to (`offers`, `newsletter`); consent is
        /// checked for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// A receipt or a password reset: exempt from frequency caps and topics' consent.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        transactional: bool,
        /// What a send that falls in quiet hours does: `wait` for the next allowed time
        /// (the default) or `skip` (a flash sale that is over by morning).
        #[serde(default, skip_serializing_if = "InQuietHours::is_wait")]
        in_quiet_hours: InQuietHours,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    SetTrait {
        #[serde(rename = "trait")]
        trait_name: String,
        value: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    /// Ends the instance here.
    Exit {},
}

/// A delay: `for` a duration, then (with `window`) until the next allowed local time; or
/// until the date in a trait (`until_trait`), then the window if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_trait: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Allowed local times: on `days` (`mon` … `sun`; every day when empty) from `from` to
/// `to` (`"09:00"`, `"20:00"`), in the customer's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

/// What a wait, a goal or an exit criterion waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Until {
    Event(EventMatch),
    /// A condition on the person in the segment language (`p_alive < 0.3`,
    /// `segment "vip"`).
    Condition(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub condition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// An arm of a split. A `holdout` arm sends nothing: the instance ends there, recorded, so
/// what the others did can be measured against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arm {
    pub name: String,
    pub weight: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holdout: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Where a send goes: the messages' channels.
pub use prossimo_messages::Channel;
/// What a send in quiet hours does: the messages' choice.
pub use prossimo_messages::InQuietHours;

impl StepKind {
    /// The steps this one may lead to, with the field that names each.
    pub fn successors(&self) -> Vec<(String, &str)> {
        fn one<'a>(field: &str, next: &'a Option<String>) -> Vec<(String, &'a str)> {
            next.iter()
                .map(|n| (field.to_owned(), n.as_str()))
                .collect()
        }
        match self {
            StepKind::Delay(delay) => one("next", &delay.next),
            StepKind::Wait {
                next, on_timeout, ..
            } => {
                let mut all = one("next", next);
                all.extend(one("on_timeout", on_timeout));
                all
            }
            StepKind::Branch {
                branches,
                otherwise,
            } => {
                let mut all: Vec<(String, &str)> = branches
                    .iter()
                    .enumerate()
                    .flat_map(|(i, b)| one(&format!("branches[{i}].next"), &b.next))
                    .collect();
                all.extend(one("otherwise", otherwise));
                all
            }
            StepKind::Split { arms, .. } => arms
                .iter()
                .enumerate()
                .flat_map(|(i, a)| one(&format!("arms[{i}].next"), &a.next))
                .collect(),
            StepKind::Send { next, .. } | StepKind::SetTrait { next, .. } => one("next", next),
            StepKind::Exit {} => Vec::new(),
        }
    }
}
