//! Evaluation: the checked tree in the evaluator's form ([`Node`]), run-time values and their
//! comparison rules, profile evaluation in dependency order, and the next instant at which
//! time alone can change an answer.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::aggregates::{AggValue, EventFacts, ProfileAggregates};
use crate::ast::{CmpOp, TextOp, TimeOp, TimeRef};
use crate::catalog::{Catalog, SegmentId, SegmentSet};
use crate::dates;

/// A checked condition. Aggregates are term indices and segment references are segment
/// indices of the catalog, so evaluation allocates nothing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Member(usize),
    Test(Op),
    Compare(Op, CmpOp, Op),
    /// The operand, the list, and whether it is `not in`.
    In(Op, Vec<Lit>, bool),
    /// The operand and whether it is `not exists`.
    Exists(Op, bool),
    Text(Op, TextOp, Op),
    Time(Op, TimeOp, TimeRef),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Lit(Lit),
    Trait(Vec<String>),
    Property(Vec<String>),
    Computed(String),
    FirstSeen,
    LastSeen,
    FirstChannel,
    Channel,
    Event,
    Type,
    Term(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Date(i64),
}

/// A value at run time. JSON `null` and absent keys are both `Missing`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Missing,
    Num(f64),
    Str(&'a str),
    Bool(bool),
    Date(i64),
    List(&'a [Value]),
    Object,
}

impl<'a> Val<'a> {
    pub(crate) fn from_json(value: Option<&'a Value>) -> Val<'a> {
        match value {
            None | Some(Value::Null) => Val::Missing,
            Some(Value::Bool(b)) => Val::Bool(*b),
            Some(Value::Number(n)) => n.as_f64().map_or(Val::Missing, Val::Num),
            Some(Value::String(s)) => Val::Str(s),
            Some(Value::Array(items)) => Val::List(items),
            Some(Value::Object(_)) => Val::Object,
        }
    }

    fn of(lit: &'a Lit) -> Val<'a> {
        match lit {
            Lit::Str(s) => Val::Str(s),
            Lit::Num(n) => Val::Num(*n),
            Lit::Bool(b) => Val::Bool(*b),
            Lit::Date(ms) => Val::Date(*ms),
        }
    }

    fn from_agg(value: Option<AggValue>) -> Val<'a> {
        match value {
            None => Val::Missing,
            Some(AggValue::Number(n)) => Val::Num(n),
            Some(AggValue::Date(ms)) => Val::Date(ms),
        }
    }

    /// A date, or a trait/property string that reads as one.
    fn as_date(self) -> Option<i64> {
        match self {
            Val::Date(ms) => Some(ms),
            Val::Str(s) => dates::parse(s),
            _ => None,
        }
    }
}

/// One step of a path: an object key, or an array index.
fn step<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

pub(crate) fn lookup_in<'v>(map: &'v Map<String, Value>, keys: &[String]) -> Option<&'v Value> {
    let (first, rest) = keys.split_first()?;
    rest.iter().try_fold(map.get(first)?, |v, k| step(v, k))
}

pub(crate) fn lookup<'v>(value: &'v Value, keys: &[String]) -> Option<&'v Value> {
    keys.iter().try_fold(value, |v, k| step(v, k))
}

/// Where operands get their values.
pub(crate) trait Env {
    /// The value of a non-literal operand.
    fn value(&self, op: &Op) -> Val<'_>;
    fn member(&self, segment: usize) -> bool;
    fn now(&self) -> i64;
}

fn val<'s, E: Env>(env: &'s E, op: &'s Op) -> Val<'s> {
    match op {
        Op::Lit(l) => Val::of(l),
        _ => env.value(op),
    }
}

pub(crate) fn eval<E: Env>(node: &Node, env: &E) -> bool {
    match node {
        Node::Or(l, r) => eval(l, env) || eval(r, env),
        Node::And(l, r) => eval(l, env) && eval(r, env),
        Node::Not(inner) => !eval(inner, env),
        Node::Member(i) => env.member(*i),
        Node::Test(op) => matches!(val(env, op), Val::Bool(true)),
        Node::Compare(l, op, r) => compare(val(env, l), *op, val(env, r)),
        Node::In(l, list, negated) => {
            let x = val(env, l);
            // `x not in [a, b]` is `x != a and x != b`: false when x is missing.
            if *negated {
                list.iter().all(|e| equal(x, Val::of(e)) == Some(false))
            } else {
                list.iter().any(|e| equal(x, Val::of(e)) == Some(true))
            }
        }
        Node::Exists(op, negated) => matches!(val(env, op), Val::Missing) == *negated,
        Node::Text(l, op, r) => text(val(env, l), *op, val(env, r)),
        Node::Time(l, op, r) => time(val(env, l), *op, *r, env.now()),
    }
}

/// `None` when the two cannot be compared (missing, or different types).
fn equal(a: Val, b: Val) -> Option<bool> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => Some(x == y),
        (Val::Str(x), Val::Str(y)) => Some(x == y),
        (Val::Bool(x), Val::Bool(y)) => Some(x == y),
        (Val::Date(x), other) | (other, Val::Date(x)) => other.as_date().map(|y| x == y),
        _ => None,
    }
}

fn order(a: Val, b: Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(&y),
        (Val::Date(x), other) => other.as_date().map(|y| x.cmp(&y)),
        (other, Val::Date(y)) => other.as_date().map(|x| x.cmp(&y)),
        // Two traits: only dates order as text.
        (Val::Str(x), Val::Str(y)) => Some(dates::parse(x)?.cmp(&dates::parse(y)?)),
        _ => None,
    }
}

fn compare(a: Val, op: CmpOp, b: Val) -> bool {
    match op {
        CmpOp::Eq => equal(a, b) == Some(true),
        CmpOp::Ne => equal(a, b) == Some(false),
        CmpOp::Lt => order(a, b) == Some(Ordering::Less),
        CmpOp::Le => matches!(order(a, b), Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => order(a, b) == Some(Ordering::Greater),
        CmpOp::Ge => matches!(order(a, b), Some(Ordering::Greater | Ordering::Equal)),
    }
}

fn text(a: Val, op: TextOp, b: Val) -> bool {
    match (op, a, b) {
        (TextOp::Contains, Val::Str(x), Val::Str(y)) => x.contains(y),
        (TextOp::Contains, Val::List(items), y) => items
            .iter()
            .any(|item| equal(Val::from_json(Some(item)), y) == Some(true)),
        (TextOp::StartsWith, Val::Str(x), Val::Str(y)) => x.starts_with(y),
        (TextOp::EndsWith, Val::Str(x), Val::Str(y)) => x.ends_with(y),
        _ => false,
    }
}

/// `X before D` iff `X <= now - D`, `X after D` iff `X > now - D`; against a date,
/// `before T` iff `X < T` and `after T` iff `X >= T`.
fn time(a: Val, op: TimeOp, r: TimeRef, now: i64) -> bool {
    let Some(x) = a.as_date() else {
        return false;
    };
    match (r, op) {
        (TimeRef::Ago(d), TimeOp::Before) => x <= now.saturating_sub(d.ms()),
        (TimeRef::Ago(d), TimeOp::After) => x > now.saturating_sub(d.ms()),
        (TimeRef::At(t), TimeOp::Before) => x < t,
        (TimeRef::At(t), TimeOp::After) => x >= t,
    }
}

/// Lowers `next` to `at` when `at` is earlier.
pub(crate) fn earliest(next: &mut Option<i64>, at: Option<i64>) {
    if let Some(at) = at {
        *next = Some(next.map_or(at, |n| n.min(at)));
    }
}

/// The instants after `now` at which a `before/after <duration>` of `node` flips, given
/// the values its operands have now.
fn time_flips<E: Env>(node: &Node, env: &E, now: i64, next: &mut Option<i64>) {
    match node {
        Node::Or(l, r) | Node::And(l, r) => {
            time_flips(l, env, now, next);
            time_flips(r, env, now, next);
        }
        Node::Not(inner) => time_flips(inner, env, now, next),
        Node::Time(l, _, TimeRef::Ago(d)) => {
            // Both flip when now - D reaches X, i.e. at X + D.
            let flip = val(env, l).as_date().and_then(|x| x.checked_add(d.ms()));
            earliest(next, flip.filter(|at| *at > now));
        }
        _ => {}
    }
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

/// What evaluation reads about one profile.
#[derive(Debug, Clone, Copy)]
pub struct ProfileView<'a> {
    pub traits: &'a Map<String, Value>,
    /// Computed traits (`p_alive`, `rfm_segment`, …) by name.
    pub computed: &'a Map<String, Value>,
    /// Milliseconds since the Unix epoch.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub first_channel: Option<&'a str>,
    pub aggregates: &'a ProfileAggregates,
    /// The profile's current memberships, read by `segment "..."` for segments that are
    /// not evaluated in this call.
    pub memberships: &'a SegmentSet,
}

struct ProfileEnv<'a> {
    view: &'a ProfileView<'a>,
    catalog: &'a Catalog,
    members: &'a SegmentSet,
    now: i64,
}

impl Env for ProfileEnv<'_> {
    fn value(&self, op: &Op) -> Val<'_> {
        let v = self.view;
        match op {
            Op::Trait(keys) => Val::from_json(lookup_in(v.traits, keys)),
            Op::Computed(name) => Val::from_json(v.computed.get(name)),
            Op::FirstSeen => v.first_seen.map_or(Val::Missing, Val::Date),
            Op::LastSeen => v.last_seen.map_or(Val::Missing, Val::Date),
            Op::FirstChannel => v.first_channel.map_or(Val::Missing, Val::Str),
            Op::Term(i) => self.catalog.terms.get(*i).map_or(Val::Missing, |t| {
                Val::from_agg(v.aggregates.value(t, self.now))
            }),
            // The checker keeps event operands inside aggregate filters.
            _ => Val::Missing,
        }
    }

    fn member(&self, segment: usize) -> bool {
        self.members.contains(SegmentId(segment))
    }

    fn now(&self) -> i64 {
        self.now
    }
}

/// The result of [`Catalog::evaluate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memberships {
    /// Every segment the profile is in: fresh results for the evaluated segments, the
    /// view's memberships for the others.
    pub members: SegmentSet,
    /// The segments evaluated in this call.
    pub evaluated: SegmentSet,
}

impl Catalog {
    /// Evaluates every segment (or those in `only`) for one profile at `now_ms`, in
    /// dependency order, so `segment "x"` reads the result computed in the same call.
    pub fn evaluate(
        &self,
        view: &ProfileView,
        now_ms: i64,
        only: Option<&SegmentSet>,
    ) -> Memberships {
        let mut members = view.memberships.clone();
        let mut evaluated = SegmentSet::new();
        for &i in &self.order {
            let id = SegmentId(i);
            if only.is_some_and(|set| !set.contains(id)) {
                continue;
            }
            let Some(segment) = self.segments.get(i) else {
                continue;
            };
            let env = ProfileEnv {
                view,
                catalog: self,
                members: &members,
                now: now_ms,
            };
            let on = eval(&segment.node, &env);
            members.set(id, on);
            evaluated.insert(id);
        }
        Memberships { members, evaluated }
    }
}

impl ProfileView<'_> {
    /// The earliest instant after `now_ms` at which time alone could change any segment of
    /// this profile: a windowed event leaving its window (at `ts + window`), a future-dated
    /// event entering (at `ts`), a `before/after <duration>` flipping (at `X + duration`).
    /// `None`: nothing changes until something else happens.
    pub fn next_boundary(&self, catalog: &Catalog, now_ms: i64) -> Option<i64> {
        let mut next = self.aggregates.next_change(catalog, now_ms);
        let env = ProfileEnv {
            view: self,
            catalog,
            members: self.memberships,
            now: now_ms,
        };
        for segment in &catalog.segments {
            time_flips(&segment.node, &env, now_ms, &mut next);
        }
        next
    }
}
