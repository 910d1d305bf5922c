//! Terms: the aggregates (`count(event "Email Sent" within 7d)`) segments share, keyed by
//! their canonical text, and what a term knows about an event.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ast::Aggregate;
use crate::lowered::{Env, Node, Op, Val, eval, lookup};

/// Identifies an aggregate term: the 64-bit FNV-1a hash of its canonical text, so it is the
/// same in every process and every catalog that has the term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TermKey(pub u64);

impl TermKey {
    /// The key of a term with this canonical text.
    pub fn of(canonical: &str) -> TermKey {
        // FNV-1a: tiny and fixed, unlike std's randomly seeded hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in canonical.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        TermKey(hash)
    }
}

impl fmt::Display for TermKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One aggregate (`count(event "Email Sent" within 7d)`), shared by every segment that
/// uses it.
#[derive(Debug, Clone)]
pub struct Term {
    pub(crate) key: TermKey,
    pub(crate) text: String,
    pub(crate) aggregate: Aggregate,
    pub(crate) filter: Option<Node>,
}

impl Term {
    pub fn key(&self) -> TermKey {
        self.key
    }

    /// The canonical text the key is the hash of.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn aggregate(&self) -> &Aggregate {
        &self.aggregate
    }

    /// The `within` window in milliseconds; `None` for all of history.
    pub fn window_ms(&self) -> Option<i64> {
        self.aggregate.within.map(|d| d.ms())
    }

    /// Whether the filter accepts an event (the source was matched by the index).
    pub(crate) fn accepts(&self, event: &EventFacts) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| eval(f, &EventEnv(event)))
    }
}

/// What a term needs to know about an event.
#[derive(Debug, Clone, Copy)]
pub struct EventFacts<'a> {
    /// The message type: `track`, `page`, `screen`, `identify`, …
    pub kind: &'a str,
    /// The event name (`Order Completed`), for the messages that have one.
    pub event: Option<&'a str>,
    pub channel: &'a str,
    /// Event time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub properties: &'a serde_json::Value,
    /// The platform's own event (`Segment Entered` / `Segment Exited`): only a term that
    /// names it counts it, never `any event` or a `channel`, so an audience cannot feed on
    /// membership changes it did not ask about.
    pub platform: bool,
}

/// The event an aggregate filter looks at.
pub(crate) struct EventEnv<'a, 'e>(pub &'a EventFacts<'e>);

impl Env for EventEnv<'_, '_> {
    fn value(&self, op: &Op) -> Val<'_> {
        let e = self.0;
        match op {
            Op::Property(keys) => Val::from_json(lookup(e.properties, keys)),
            Op::Channel => Val::Str(e.channel),
            Op::Event => e.event.map_or(Val::Missing, Val::Str),
            Op::Type => Val::Str(e.kind),
            // The checker keeps profile operands out of filters.
            _ => Val::Missing,
        }
    }

    fn member(&self, _: usize) -> bool {
        false
    }

    fn now(&self) -> i64 {
        self.0.ts_ms
    }
}
