//! The lowered form: a checked condition as the evaluator runs it ([`Node`]: aggregates are
//! term indices, segment references are segment indices), run-time values and their
//! comparison rules, and the next instant at which time alone can change an answer.
//! Checking produces it; terms' filters and profile evaluation run it.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::ast::{CmpOp, TextOp, TimeOp, TimeRef};
use crate::dates;

/// The value of a term: a number (`count`, `sum`, `avg`, `min`, `max`) or a date (`first`,
/// `last`, in milliseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggValue {
    Number(f64),
    Date(i64),
}

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

    pub(crate) fn from_agg(value: Option<AggValue>) -> Val<'a> {
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
pub(crate) fn time_flips<E: Env>(node: &Node, env: &E, now: i64, next: &mut Option<i64>) {
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
