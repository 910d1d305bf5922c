//! Whether a triggered person enters, and which instance a trigger belongs to.

use serde::Serialize;
use serde_json::Value;

use crate::check::Journey;

/// The most parts an instance key's path may have.
const MAX_KEY_DEPTH: usize = 8;

/// `properties.cart_id` → `["properties", "cart_id"]`; `None` when it is not a path into
/// an event (empty parts, too deep).
pub(crate) fn key_path(path: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = path.split('.').collect();
    let valid = !parts.is_empty()
        && parts.len() <= MAX_KEY_DEPTH
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.contains(char::is_whitespace));
    valid.then_some(parts)
}

/// The instance a triggering event belongs to: the text of the value at `path`
/// (`properties.cart_id`), a number written as JSON writes it; `None` when the event has
/// no such text or number.
pub fn instance_key(path: &str, event: &Value) -> Option<String> {
    let value = key_path(path)?
        .iter()
        .try_fold(event, |value, part| value.get(part))?;
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// An instance the person had in the journey before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierInstance {
    pub key: Option<String>,
    pub entered_at: i64,
    /// Still running (waiting somewhere).
    pub active: bool,
}

/// Why a triggered person does not enter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum EntryRefusal {
    /// An instance with the same key (or, without keys, of the person) is still running.
    AlreadyIn,
    /// The journey is entered once, and was.
    EnteredBefore,
    /// The re-entry cooldown has not passed; it does at `until` (ms).
    CoolingDown { until: i64 },
}

/// Whether someone whose instances in the journey were `earlier` may enter now with `key`.
/// Only instances with the same key count (one instance per order, per cart).
pub fn may_enter(
    journey: &Journey,
    key: Option<&str>,
    earlier: &[EarlierInstance],
    now: i64,
) -> Result<(), EntryRefusal> {
    let same: Vec<&EarlierInstance> = earlier.iter().filter(|e| e.key.as_deref() == key).collect();
    if same.iter().any(|e| e.active) {
        return Err(EntryRefusal::AlreadyIn);
    }
    let Some(last) = same.iter().map(|e| e.entered_at).max() else {
        return Ok(());
    };
    match journey.reentry_after_ms {
        None => Err(EntryRefusal::EnteredBefore),
        Some(after) if last.saturating_add(after) > now => Err(EntryRefusal::CoolingDown {
            until: last.saturating_add(after),
        }),
        Some(_) => Ok(()),
    }
}
