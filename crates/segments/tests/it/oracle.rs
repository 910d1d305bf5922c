//! The incremental machinery against a brute-force oracle.
//!
//! The oracle evaluates each definition's tree directly from the profile's full list of
//! arrived events at a given instant: no state, no windows kept, no boundaries. The
//! incremental side is what the product runs: `ProfileAggregates::observe` fed the same
//! events in a random arrival order (late and future-dated ones included), `evaluate` of
//! the affected segments after each event, and a scheduler that re-evaluates at each
//! `next_boundary`. They must agree at every instant checked.

use chrono::DateTime;
use proptest::prelude::*;
use prossimo_segments::{
    AggFunc, Aggregate, Builtin, Catalog, Change, CmpOp, Expr, Field, Literal, Operand, PathRoot,
    ProfileAggregates, ProfileView, Schema, SegmentSet, Source, TimeOp, TimeRef, parse,
};
use serde_json::{Map, Value, json};

use crate::{DAY, Ev, HOUR, MINUTE, T0};

/// A value as the oracle sees it.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Missing,
    Num(f64),
    Str(String),
    Bool(bool),
    Date(i64),
}

fn from_json(v: Option<&Value>) -> V {
    match v {
        Some(Value::Number(n)) => V::Num(n.as_f64().unwrap()),
        Some(Value::String(s)) => V::Str(s.clone()),
        Some(Value::Bool(b)) => V::Bool(*b),
        _ => V::Missing,
    }
}

fn as_date(v: &V) -> Option<i64> {
    match v {
        V::Date(d) => Some(*d),
        V::Str(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.timestamp_millis()),
        _ => None,
    }
}

/// The documented rule: missing or mismatched values make every comparison false.
fn compare(a: &V, op: CmpOp, b: &V) -> bool {
    let ord = |x: f64, y: f64| match op {
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
    };
    match (a, b) {
        (V::Num(x), V::Num(y)) => ord(*x, *y),
        (V::Date(_), _) | (_, V::Date(_)) => match (as_date(a), as_date(b)) {
            (Some(x), Some(y)) => ord(x as f64, y as f64),
            _ => false,
        },
        (V::Str(x), V::Str(y)) => match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            _ => false,
        },
        (V::Bool(x), V::Bool(y)) => match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            _ => false,
        },
        _ => false,
    }
}

#[derive(Debug)]
struct Profile {
    traits: Map<String, Value>,
    computed: Map<String, Value>,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
}

/// What the oracle evaluates against: a profile at time `t`, or one event.
enum Scope<'a> {
    Profile {
        profile: &'a Profile,
        events: &'a [Ev],
        members: &'a [(String, bool)],
        t: i64,
    },
    Event(&'a Ev),
}

fn literal(l: &Literal) -> V {
    match l {
        Literal::String(s) => V::Str(s.clone()),
        Literal::Number(n) => V::Num(*n),
        Literal::Bool(b) => V::Bool(*b),
        Literal::Date(d) => V::Date(*d),
        other => panic!("oracle: unsupported literal {other:?}"),
    }
}

fn holds(e: &Expr, s: &Scope) -> bool {
    match e {
        Expr::Or(l, r) => holds(l, s) || holds(r, s),
        Expr::And(l, r) => holds(l, s) && holds(r, s),
        Expr::Not(x) => !holds(x, s),
        Expr::Segment(slug) => match s {
            Scope::Profile { members, .. } => members
                .iter()
                .find(|(m, _)| *m == slug.node)
                .map(|(_, on)| *on)
                .unwrap(),
            Scope::Event(_) => panic!("oracle: segment in a filter"),
        },
        Expr::Test(o) => value(&o.node, s) == V::Bool(true),
        Expr::Compare { left, op, right } => {
            compare(&value(&left.node, s), *op, &value(&right.node, s))
        }
        Expr::In {
            left,
            negated,
            list,
        } => {
            let x = value(&left.node, s);
            if *negated {
                list.iter()
                    .all(|l| compare(&x, CmpOp::Ne, &literal(&l.node)))
            } else {
                list.iter()
                    .any(|l| compare(&x, CmpOp::Eq, &literal(&l.node)))
            }
        }
        Expr::Exists { operand, negated } => (value(&operand.node, s) != V::Missing) != *negated,
        Expr::Time { left, op, right } => {
            let Scope::Profile { t, .. } = s else {
                panic!("oracle: relative time in a filter")
            };
            let Some(x) = as_date(&value(&left.node, s)) else {
                return false;
            };
            match (right, op) {
                (TimeRef::Ago(d), TimeOp::Before) => x <= t - d.ms(),
                (TimeRef::Ago(d), TimeOp::After) => x > t - d.ms(),
                (TimeRef::At(a), TimeOp::Before) => x < *a,
                (TimeRef::At(a), TimeOp::After) => x >= *a,
            }
        }
        Expr::Text { .. } => panic!("oracle: text operators are not generated"),
    }
}

fn value(o: &Operand, s: &Scope) -> V {
    match (o, s) {
        (Operand::Literal(l), _) => literal(l),
        (Operand::Path(p), Scope::Profile { profile, .. }) if p.root == PathRoot::Traits => {
            from_json(profile.traits.get(&p.keys[0]))
        }
        (Operand::Path(p), Scope::Event(e)) if p.root == PathRoot::Properties => {
            from_json(e.props.get(&p.keys[0]))
        }
        (Operand::Name(n), Scope::Profile { profile, .. }) => from_json(profile.computed.get(n)),
        (Operand::Builtin(b), Scope::Profile { profile, .. }) => {
            let d = match b {
                Builtin::FirstSeen => profile.first_seen,
                Builtin::LastSeen => profile.last_seen,
                Builtin::FirstChannel => panic!("oracle: first_channel is not generated"),
            };
            d.map_or(V::Missing, V::Date)
        }
        (Operand::Field(f), Scope::Event(e)) => match f {
            Field::Channel => V::Str(e.channel.into()),
            Field::Event => e.name.map_or(V::Missing, |n| V::Str(n.into())),
            Field::Type => V::Str(e.kind.into()),
        },
        (Operand::Aggregate(a), Scope::Profile { events, t, .. }) => aggregate(a, events, *t),
        (o, _) => panic!("oracle: {o:?} out of place"),
    }
}

/// Straight from the definition: every arrived event of the source, at or before `t`,
/// inside the window, accepted by the filter.
fn aggregate(a: &Aggregate, events: &[Ev], t: i64) -> V {
    let mut selected: Vec<&Ev> = events
        .iter()
        .filter(|e| match &a.source {
            Source::Event(n) => e.name == Some(n.as_str()),
            Source::Channel(c) => e.channel == c,
            Source::AnyEvent => true,
        })
        .filter(|e| e.ts <= t && a.within.is_none_or(|w| e.ts > t - w.ms()))
        .filter(|e| a.filter.as_ref().is_none_or(|f| holds(f, &Scope::Event(e))))
        .collect();
    selected.sort_by_key(|e| e.ts);
    let values = |p: &prossimo_segments::Spanned<prossimo_segments::Path>| -> Vec<f64> {
        selected
            .iter()
            .filter_map(|e| e.props.get(&p.node.keys[0]).and_then(Value::as_f64))
            .collect()
    };
    match &a.func {
        AggFunc::Count => V::Num(selected.len() as f64),
        AggFunc::First => selected.first().map_or(V::Missing, |e| V::Date(e.ts)),
        AggFunc::Last => selected.last().map_or(V::Missing, |e| V::Date(e.ts)),
        AggFunc::Sum(p) => V::Num(values(p).iter().sum()),
        AggFunc::Avg(p) => {
            let v = values(p);
            if v.is_empty() {
                V::Missing
            } else {
                V::Num(v.iter().sum::<f64>() / v.len() as f64)
            }
        }
        AggFunc::Min(p) => values(p)
            .into_iter()
            .reduce(f64::min)
            .map_or(V::Missing, V::Num),
        AggFunc::Max(p) => values(p)
            .into_iter()
            .reduce(f64::max)
            .map_or(V::Missing, V::Num),
    }
}

/// The oracle's memberships of every segment, by slug, in definition order.
fn oracle(
    defs: &[(String, Expr)],
    profile: &Profile,
    events: &[Ev],
    t: i64,
) -> Vec<(String, bool)> {
    let mut members: Vec<(String, bool)> = Vec::new();
    for (slug, expr) in defs {
        let on = holds(
            expr,
            &Scope::Profile {
                profile,
                events,
                members: &members,
                t,
            },
        );
        members.push((slug.clone(), on));
    }
    members
}

fn oracle_set(catalog: &Catalog, members: &[(String, bool)]) -> SegmentSet {
    catalog.set_of(
        members
            .iter()
            .filter(|(_, on)| *on)
            .map(|(s, _)| s.as_str()),
    )
}

// --- generated scenarios ---------------------------------------------------------------

const NAMES: [Option<&str>; 3] = [Some("Order Completed"), Some("Email Sent"), None];
const CHANNELS: [&str; 3] = ["web", "store", "app"];
const CATEGORIES: [&str; 3] = ["scarpe", "borse", "cinture"];

fn duration() -> impl Strategy<Value = (u32, char)> {
    (1..=6u32, prop_oneof![Just('h'), Just('d')])
}

/// Every duration the generator can write, for the oracle's list of candidate instants.
fn all_durations() -> Vec<i64> {
    (1..=6).flat_map(|n| [n * HOUR, n * DAY]).collect()
}

fn aggregate_atom() -> impl Strategy<Value = String> {
    let source = prop_oneof![
        Just("event \"Order Completed\""),
        Just("event \"Email Sent\""),
        Just("channel \"store\""),
        Just("any event"),
    ];
    let filter = prop::option::of(prop_oneof![
        Just("channel == \"store\""),
        Just("properties.category == \"scarpe\""),
        Just("properties.category in [\"scarpe\", \"borse\"]"),
        Just("type == \"track\""),
        Just("properties.revenue > 50"),
        Just("not channel == \"web\""),
        Just("properties.category != \"borse\" or channel == \"app\""),
        Just("properties.category not in [\"cinture\"]"),
    ]);
    let window = prop::option::of(duration());
    let op = prop_oneof![
        Just("=="),
        Just("!="),
        Just("<"),
        Just("<="),
        Just(">"),
        Just(">=")
    ];
    (source, filter, window, 0..8u32, op, duration(), 0..4u32).prop_map(
        |(source, filter, window, kind, op, (n, u), k)| {
            let mut inner = source.to_owned();
            if let Some(f) = filter {
                inner.push_str(&format!(" where {f}"));
            }
            if let Some((w, wu)) = window {
                inner.push_str(&format!(" within {w}{wu}"));
            }
            let rev = inner.replacen(source, &format!("{source}, properties.revenue"), 1);
            match kind {
                0 => format!("count({inner}) {op} {k}"),
                1 => format!("sum({rev}) {op} {}", k * 75),
                2 => format!("avg({rev}) {op} {}", k * 50),
                3 => format!("min({rev}) {op} {}", k * 40),
                4 => format!("max({rev}) {op} {}", k * 60),
                5 => format!(
                    "{}({inner}) {} {n}{u}",
                    if k % 2 == 0 { "first" } else { "last" },
                    if op.contains('<') { "before" } else { "after" }
                ),
                6 => {
                    let (f, args) = match k {
                        0 => ("avg", &rev),
                        1 => ("first", &inner),
                        2 => ("last", &inner),
                        _ => ("max", &rev),
                    };
                    let exists = if op.contains('=') {
                        "exists"
                    } else {
                        "not exists"
                    };
                    format!("{f}({args}) {exists}")
                }
                _ => format!("last({inner}) {op} 2026-01-0{}", k + 3),
            }
        },
    )
}

fn profile_atom() -> impl Strategy<Value = String> {
    (0..7u32, duration()).prop_map(|(kind, (n, u))| match kind {
        0 => format!("last_seen before {n}{u}"),
        1 => format!("first_seen after {n}{u}"),
        2 => format!("traits.signup before {n}{u}"),
        3 => "traits.signup after 2026-01-05".to_owned(),
        4 => "p_alive < 0.5".to_owned(),
        5 => "traits.plan == \"gold\"".to_owned(),
        _ => "traits.plan != \"gold\"".to_owned(),
    })
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![3 => aggregate_atom(), 1 => profile_atom()].prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) and ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn definitions() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        (condition(), prop::option::of((any::<bool>(), 0..4usize))),
        1..=4,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(k, (cond, reference))| match reference {
                Some((negate, j)) if k > 0 => format!(
                    "({cond}) {} segment \"s{}\"",
                    if negate { "and not" } else { "or" },
                    j % k
                ),
                _ => cond,
            })
            .collect()
    })
}

/// An event and the time it arrives (up to a day before its own time, up to 3 days late).
fn arriving_event() -> impl Strategy<Value = (Ev, i64)> {
    let revenue = prop_oneof![
        Just(None),
        (0..800u32).prop_map(|k| Some(json!(f64::from(k) * 0.25))),
        Just(Some(json!("12"))),
    ];
    (
        0..3usize,
        0..3usize,
        0..240i64,
        -24..=72i64,
        0..60i64,
        revenue,
        prop::option::of(0..3usize),
    )
        .prop_map(|(name, channel, hour, delay, minute, revenue, category)| {
            let mut props = Map::new();
            if let Some(r) = revenue {
                props.insert("revenue".into(), r);
            }
            if let Some(c) = category {
                props.insert("category".into(), json!(CATEGORIES[c]));
            }
            let ts = T0 + hour * HOUR;
            let ev = Ev {
                kind: if name == 2 { "page" } else { "track" },
                name: NAMES[name],
                channel: CHANNELS[channel],
                ts,
                props: Value::Object(props),
            };
            (ev, ts + delay * HOUR + minute * MINUTE)
        })
}

fn profile() -> impl Strategy<Value = Profile> {
    let hour = || prop::option::of((-48..240i64).prop_map(|h| T0 + h * HOUR));
    (
        hour(),
        hour(),
        hour(),
        prop::option::of(any::<bool>()),
        prop::option::of(0..3usize),
    )
        .prop_map(|(first_seen, last_seen, signup, gold, p_alive)| {
            let mut traits = Map::new();
            if let Some(s) = signup {
                let text = DateTime::from_timestamp_millis(s).unwrap().to_rfc3339();
                traits.insert("signup".into(), json!(text));
            }
            if let Some(g) = gold {
                traits.insert("plan".into(), json!(if g { "gold" } else { "silver" }));
            }
            let mut computed = Map::new();
            if let Some(p) = p_alive {
                computed.insert(
                    "p_alive".into(),
                    [json!(0.3), json!(0.7), json!("0.3")][p].clone(),
                );
            }
            Profile {
                traits,
                computed,
                first_seen,
                last_seen,
            }
        })
}

fn view<'a>(
    p: &'a Profile,
    aggregates: &'a ProfileAggregates,
    memberships: &'a SegmentSet,
) -> ProfileView<'a> {
    ProfileView {
        traits: &p.traits,
        computed: &p.computed,
        first_seen: p.first_seen,
        last_seen: p.last_seen,
        first_channel: None,
        aggregates,
        memberships,
    }
}

/// Instants at which the oracle's answer can change: an event's time, and every date the
/// profile has (event times, seen dates, the signup trait) plus every duration the
/// generator writes.
fn candidates(p: &Profile, events: &[Ev]) -> Vec<i64> {
    let mut dates: Vec<i64> = events.iter().map(|e| e.ts).collect();
    dates.extend(p.first_seen);
    dates.extend(p.last_seen);
    dates.extend(
        p.traits
            .get("signup")
            .and_then(|s| as_date(&from_json(Some(s)))),
    );
    let mut out = dates.clone();
    for d in all_durations() {
        out.extend(dates.iter().map(|x| x + d));
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn run(
    defs: Vec<String>,
    p: Profile,
    mut arrivals: Vec<(Ev, i64)>,
    offsets: Vec<i64>,
) -> Result<(), TestCaseError> {
    let schema = Schema::product_default();
    let named: Vec<(String, String)> = defs
        .iter()
        .enumerate()
        .map(|(k, d)| (format!("s{k}"), d.clone()))
        .collect();
    let catalog = Catalog::new(named.iter().map(|(s, d)| (s.as_str(), d.as_str())), &schema)
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let trees: Vec<(String, Expr)> = named
        .iter()
        .map(|(s, d)| (s.clone(), parse(d).unwrap()))
        .collect();
    arrivals.sort_by_key(|(_, at)| *at);

    let mut aggregates = ProfileAggregates::new();
    let mut arrived: Vec<Ev> = Vec::new();
    let mut clock = T0 - 3 * DAY;
    let none = SegmentSet::new();
    // What the product stores, kept up to date only by affected-segment evaluation after
    // each event and full evaluation at each boundary the scheduler is given.
    let mut stored = catalog
        .evaluate(&view(&p, &aggregates, &none), clock, None)
        .members;

    for (i, (event, at)) in arrivals.iter().enumerate() {
        // The scheduler: wake at each boundary before the event arrives.
        while let Some(b) = view(&p, &aggregates, &stored).next_boundary(&catalog, clock) {
            prop_assert!(b > clock);
            if b > *at {
                break;
            }
            stored = catalog
                .evaluate(&view(&p, &aggregates, &stored), b, None)
                .members;
            clock = b;
        }
        clock = *at;
        let now = *at;
        let facts = event.facts();
        let change = Change {
            terms: catalog.matching_terms(&facts).collect(),
            ..Change::default()
        };
        aggregates.observe(&catalog, &facts, now);
        arrived.push(event.clone());
        if i % 3 == 0 {
            aggregates.prune(&catalog, now);
        }
        let only = catalog.affected(&change);
        stored = catalog
            .evaluate(&view(&p, &aggregates, &stored), now, Some(&only))
            .members;

        let full = |t: i64| {
            catalog
                .evaluate(&view(&p, &aggregates, &none), t, None)
                .members
        };
        let truth = |t: i64| oracle_set(&catalog, &oracle(&trees, &p, &arrived, t));
        prop_assert_eq!(
            &stored,
            &full(now),
            "incremental vs full after event {} at {}",
            i,
            now
        );

        let boundary = view(&p, &aggregates, &none).next_boundary(&catalog, now);
        let mut times = vec![now];
        times.extend(offsets.iter().map(|o| now + o));
        if let Some(b) = boundary {
            times.extend([b - 1, b, b + 1]);
        }
        for t in times {
            prop_assert_eq!(
                full(t),
                truth(t),
                "at {} (now {}, boundary {:?}, event {})",
                t,
                now,
                boundary,
                i
            );
        }
        // The boundary is never later than the oracle's first change.
        let before = truth(now);
        for c in candidates(&p, &arrived) {
            if c > now && boundary.is_none_or(|b| c < b) {
                prop_assert_eq!(
                    truth(c),
                    before.clone(),
                    "changed at {} before boundary {:?} (now {})",
                    c,
                    boundary,
                    now
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_evaluation_matches_the_oracle(
        defs in definitions(),
        p in profile(),
        arrivals in prop::collection::vec(arriving_event(), 0..18),
        offsets in prop::collection::vec(0..12 * DAY, 3),
    ) {
        run(defs, p, arrivals, offsets)?;
    }
}

/// A hand-written scenario through the same harness, so a regression shows plainly.
#[test]
fn the_harness_runs_a_known_story() {
    let defs = vec![
        "count(event \"Order Completed\" where channel == \"store\" within 3d) >= 2 and p_alive < 0.5".to_owned(),
        "(last(event \"Order Completed\") before 2d) and not segment \"s0\"".to_owned(),
        "count(event \"Email Sent\" within 6h) == 0 or segment \"s1\"".to_owned(),
    ];
    let p = Profile {
        traits: Map::new(),
        computed: serde_json::from_value(json!({"p_alive": 0.3})).unwrap(),
        first_seen: Some(T0),
        last_seen: Some(T0 + 5 * DAY),
    };
    let order = |h: i64, channel: &'static str| {
        Ev::track("Order Completed", channel, T0 + h * HOUR, json!({}))
    };
    let arrivals = vec![
        (order(10, "store"), T0 + 10 * HOUR),
        (order(30, "store"), T0 + 80 * HOUR),
        (
            Ev::track("Email Sent", "server", T0 + 40 * HOUR, json!({})),
            T0 + 39 * HOUR,
        ),
        (order(20, "web"), T0 + 90 * HOUR),
    ];
    run(defs, p, arrivals, vec![HOUR, DAY, 4 * DAY]).unwrap();
}
