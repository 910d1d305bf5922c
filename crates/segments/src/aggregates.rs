//! Per-profile state of the aggregate terms, updated one event at a time.
//!
//! A term with a window keeps the matching events inside it, sorted by event time, and
//! forgets them once they have left. A term without a window keeps a running accumulator
//! (count, sum, min, max, first, last); only events dated in the future wait in the sorted
//! list until their time comes. An event always goes where its own time puts it, so the
//! order events arrive in never matters.

use serde::{Deserialize, Serialize};

use crate::ast::AggFunc;
use crate::catalog::Catalog;
use crate::lowered::{AggValue, earliest, lookup};
use crate::terms::{EventFacts, Term, TermKey};

/// The aggregate state of one profile: per term, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProfileAggregates {
    #[serde(rename = "t")]
    terms: Vec<(TermKey, State)>,
}

/// The accumulator of the events folded in for good.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Acc {
    #[serde(rename = "c")]
    Count(u64),
    #[serde(rename = "f")]
    First(Option<i64>),
    #[serde(rename = "l")]
    Last(Option<i64>),
    #[serde(rename = "s")]
    Sum(f64),
    #[serde(rename = "a")]
    Avg(f64, u64),
    #[serde(rename = "n")]
    Min(Option<f64>),
    #[serde(rename = "x")]
    Max(Option<f64>),
}

impl Acc {
    fn new(func: &AggFunc) -> Acc {
        match func {
            AggFunc::Count => Acc::Count(0),
            AggFunc::First => Acc::First(None),
            AggFunc::Last => Acc::Last(None),
            AggFunc::Sum(_) => Acc::Sum(0.0),
            AggFunc::Avg(_) => Acc::Avg(0.0, 0),
            AggFunc::Min(_) => Acc::Min(None),
            AggFunc::Max(_) => Acc::Max(None),
        }
    }

    fn add(&mut self, ts: i64, x: f64) {
        match self {
            Acc::Count(n) => *n += 1,
            Acc::First(t) => *t = Some(t.map_or(ts, |t| t.min(ts))),
            Acc::Last(t) => *t = Some(t.map_or(ts, |t| t.max(ts))),
            Acc::Sum(s) => *s += x,
            Acc::Avg(s, n) => {
                *s += x;
                *n += 1;
            }
            Acc::Min(m) => *m = Some(m.map_or(x, |m| m.min(x))),
            Acc::Max(m) => *m = Some(m.map_or(x, |m| m.max(x))),
        }
    }

    fn value(self) -> Option<AggValue> {
        match self {
            Acc::Count(n) => Some(AggValue::Number(n as f64)),
            Acc::Sum(s) => Some(AggValue::Number(s)),
            Acc::Avg(s, n) => (n > 0).then(|| AggValue::Number(s / n as f64)),
            Acc::Min(m) | Acc::Max(m) => m.map(AggValue::Number),
            Acc::First(t) | Acc::Last(t) => t.map(AggValue::Date),
        }
    }

    /// Holds nothing that an empty state would not give.
    fn is_empty(self) -> bool {
        matches!(
            self,
            Acc::Count(0)
                | Acc::First(None)
                | Acc::Last(None)
                | Acc::Avg(_, 0)
                | Acc::Min(None)
                | Acc::Max(None)
        ) || self == Acc::Sum(0.0)
    }
}

/// An event time, with the measured value for the terms that have one.
trait Stamped: Copy {
    fn ts(self) -> i64;
    fn x(self) -> f64;
    fn make(ts: i64, x: f64) -> Self;
}

impl Stamped for i64 {
    fn ts(self) -> i64 {
        self
    }
    fn x(self) -> f64 {
        0.0
    }
    fn make(ts: i64, _: f64) -> Self {
        ts
    }
}

impl Stamped for (i64, f64) {
    fn ts(self) -> i64 {
        self.0
    }
    fn x(self) -> f64 {
        self.1
    }
    fn make(ts: i64, x: f64) -> Self {
        (ts, x)
    }
}

/// How many entries have `ts <= t`.
fn through<T: Stamped>(v: &[T], t: i64) -> usize {
    v.partition_point(|e| e.ts() <= t)
}

/// Events not folded into the accumulator, sorted by event time (ties in arrival order).
/// `count`, `first` and `last` need only the times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Entries {
    #[serde(rename = "t")]
    Times(Vec<i64>),
    #[serde(rename = "v")]
    Values(Vec<(i64, f64)>),
}

/// Runs `$body` with `$v` bound to whichever vector the entries hold.
macro_rules! each {
    ($entries:expr, $v:ident => $body:expr) => {
        match $entries {
            Entries::Times($v) => $body,
            Entries::Values($v) => $body,
        }
    };
}

impl Entries {
    fn insert(&mut self, ts: i64, x: f64) {
        fn go<T: Stamped>(v: &mut Vec<T>, ts: i64, x: f64) {
            let at = through(v, ts);
            v.insert(at, T::make(ts, x));
        }
        each!(self, v => go(v, ts, x))
    }

    /// Forgets the entries at or before `t`.
    fn drop_through(&mut self, t: i64) {
        each!(self, v => {
            let n = through(v, t);
            v.drain(..n);
        })
    }

    /// Moves the entries at or before `t` into `acc`.
    fn settle_through(&mut self, t: i64, acc: &mut Acc) {
        fn go<T: Stamped>(v: &mut Vec<T>, t: i64, acc: &mut Acc) {
            let n = through(v, t);
            for e in v.drain(..n) {
                acc.add(e.ts(), e.x());
            }
        }
        each!(self, v => go(v, t, acc))
    }

    /// `acc` with the entries in `(after, upto]` added.
    fn fold(&self, mut acc: Acc, after: Option<i64>, upto: i64) -> Acc {
        fn go<T: Stamped>(v: &[T], acc: &mut Acc, after: Option<i64>, upto: i64) {
            let start = after.map_or(0, |a| through(v, a));
            let end = through(v, upto);
            for e in v.get(start..end).unwrap_or(&[]) {
                acc.add(e.ts(), e.x());
            }
        }
        each!(self, v => go(v, &mut acc, after, upto));
        acc
    }

    /// The earliest entry time after `t`.
    fn first_after(&self, t: i64) -> Option<i64> {
        each!(self, v => v.get(through(v, t)).map(|e| e.ts()))
    }

    fn is_empty(&self) -> bool {
        each!(self, v => v.is_empty())
    }
}

/// One term's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    #[serde(rename = "a")]
    acc: Acc,
    #[serde(rename = "e")]
    entries: Entries,
}

impl State {
    fn new(func: &AggFunc) -> State {
        let entries = if func.property().is_some() {
            Entries::Values(Vec::new())
        } else {
            Entries::Times(Vec::new())
        };
        State {
            acc: Acc::new(func),
            entries,
        }
    }

    fn add(&mut self, ts: i64, x: f64, window: Option<i64>, now: i64) {
        if window.is_none() && ts <= now {
            self.acc.add(ts, x);
        } else {
            self.entries.insert(ts, x);
        }
        self.settle(window, now);
    }

    /// Drops what left the window, or folds in what is no longer in the future.
    fn settle(&mut self, window: Option<i64>, now: i64) {
        match window {
            Some(w) => self.entries.drop_through(now.saturating_sub(w)),
            None => self.entries.settle_through(now, &mut self.acc),
        }
    }

    /// Inside `within W` at `now` iff `now - W < ts <= now`.
    fn value(&self, window: Option<i64>, now: i64) -> Option<AggValue> {
        let after = window.map(|w| now.saturating_sub(w));
        self.entries.fold(self.acc, after, now).value()
    }

    fn next_change(&self, window: Option<i64>, now: i64) -> Option<i64> {
        // A future-dated event enters at its time …
        let mut next = self.entries.first_after(now);
        // … and an event inside the window leaves at ts + W.
        if let Some(w) = window {
            let leaving = self
                .entries
                .first_after(now.saturating_sub(w))
                .filter(|ts| *ts <= now)
                .and_then(|ts| ts.checked_add(w));
            earliest(&mut next, leaving);
        }
        next
    }

    fn is_empty(&self) -> bool {
        self.acc.is_empty() && self.entries.is_empty()
    }
}

impl ProfileAggregates {
    pub fn new() -> Self {
        ProfileAggregates::default()
    }

    /// The number of terms with state.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Adds one event to every term it matches, at `now_ms` (the time it is processed,
    /// which must not go backwards between calls). Returns whether any state changed. An
    /// event already out of a term's window is ignored; an event in the past goes where its
    /// time puts it.
    pub fn observe(&mut self, catalog: &Catalog, event: &EventFacts, now_ms: i64) -> bool {
        let mut changed = false;
        for term in catalog.matching(event) {
            changed |= self.add(term, event, now_ms);
        }
        changed
    }

    /// Builds the state of `terms` (new in the catalog) from a profile's whole history,
    /// replacing any state they had. Other terms are left alone.
    pub fn backfill<'e>(
        &mut self,
        catalog: &Catalog,
        terms: &[TermKey],
        history: impl IntoIterator<Item = EventFacts<'e>>,
        now_ms: i64,
    ) {
        self.terms.retain(|(key, _)| !terms.contains(key));
        for event in history {
            for term in catalog.matching(&event) {
                if terms.contains(&term.key()) {
                    self.add(term, &event, now_ms);
                }
            }
        }
    }

    fn add(&mut self, term: &Term, event: &EventFacts, now: i64) -> bool {
        let x = match term.aggregate().func.property() {
            // sum/avg/min/max skip events whose property is not a number.
            Some(path) => {
                match lookup(event.properties, &path.node.keys).and_then(|v| v.as_f64()) {
                    Some(x) => x,
                    None => return false,
                }
            }
            None => 0.0,
        };
        let window = term.window_ms();
        if window.is_some_and(|w| event.ts_ms <= now.saturating_sub(w)) {
            return false;
        }
        let index = match self.terms.binary_search_by_key(&term.key(), |(k, _)| *k) {
            Ok(i) => i,
            Err(i) => {
                self.terms
                    .insert(i, (term.key(), State::new(&term.aggregate().func)));
                i
            }
        };
        if let Some((_, state)) = self.terms.get_mut(index) {
            state.add(event.ts_ms, x, window, now);
        }
        true
    }

    /// Settles every term at `now_ms` and drops the state of terms that are empty or no
    /// longer in the catalog: call before storing.
    pub fn prune(&mut self, catalog: &Catalog, now_ms: i64) {
        self.terms
            .retain_mut(|(key, state)| match catalog.term(*key) {
                Some(term) => {
                    state.settle(term.window_ms(), now_ms);
                    !state.is_empty()
                }
                None => false,
            });
    }

    /// The term's value at `now_ms` (not before the last `observe`/`prune` time): `count` and
    /// `sum` of nothing are 0; the others of nothing are `None`.
    pub fn value(&self, term: &Term, now_ms: i64) -> Option<AggValue> {
        match self.terms.binary_search_by_key(&term.key(), |(k, _)| *k) {
            Ok(i) => self
                .terms
                .get(i)
                .and_then(|(_, s)| s.value(term.window_ms(), now_ms)),
            Err(_) => Acc::new(&term.aggregate().func).value(),
        }
    }

    /// The earliest instant after `now` at which a term's value changes by time alone.
    pub(crate) fn next_change(&self, catalog: &Catalog, now: i64) -> Option<i64> {
        let mut next = None;
        for (key, state) in &self.terms {
            if let Some(term) = catalog.term(*key) {
                earliest(&mut next, state.next_change(term.window_ms(), now));
            }
        }
        next
    }
}
