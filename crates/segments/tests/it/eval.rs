//! Evaluation semantics, operator by operator, and the incremental state.

use prossimo_segments::{
    AggValue, Catalog, Change, ProfileAggregates, ProfileView, Schema, SegmentSet,
};
use serde_json::{Map, Value, json};

use crate::{DAY, Ev, HOUR, MINUTE, T0};

/// A profile for one test.
#[derive(Default)]
struct Profile {
    traits: Map<String, Value>,
    computed: Map<String, Value>,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    first_channel: Option<&'static str>,
    events: Vec<Ev>,
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

impl Profile {
    fn traits(v: Value) -> Profile {
        Profile {
            traits: map(v),
            ..Profile::default()
        }
    }

    fn events(events: Vec<Ev>) -> Profile {
        Profile {
            events,
            ..Profile::default()
        }
    }

    /// Whether the profile is in the segment `src` at `now`, every event having arrived at
    /// `now`.
    fn holds(&self, src: &str, now: i64) -> bool {
        let catalog = Catalog::new([("s", src)], &Schema::product_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut aggregates = ProfileAggregates::new();
        for e in &self.events {
            aggregates.observe(&catalog, &e.facts(), now);
        }
        let memberships = SegmentSet::new();
        let view = self.view(&aggregates, &memberships);
        let id = catalog.id("s").unwrap();
        catalog.evaluate(&view, now, None).members.contains(id)
    }

    fn view<'a>(
        &'a self,
        aggregates: &'a ProfileAggregates,
        memberships: &'a SegmentSet,
    ) -> ProfileView<'a> {
        ProfileView {
            traits: &self.traits,
            computed: &self.computed,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            first_channel: self.first_channel,
            aggregates,
            memberships,
        }
    }
}

fn check_all(profile: &Profile, now: i64, cases: &[(&str, bool)]) {
    for (src, expected) in cases {
        assert_eq!(profile.holds(src, now), *expected, "{src}");
    }
}

#[test]
fn equality_and_order_on_traits() {
    let p = Profile::traits(json!({
        "country": "IT", "age": 42, "score": 4.5, "vip": true,
        "address": {"city": "Bologna", "zip": "40121"},
        "signup": "2025-12-31T10:00:00Z", "birthday": "1990-05-01",
        "tags": ["vip", "newsletter", 7], "empty": null,
    }));
    check_all(
        &p,
        T0,
        &[
            ("traits.country == \"IT\"", true),
            ("traits.country != \"IT\"", false),
            ("traits.country != \"FR\"", true),
            ("traits.country == \"it\"", false),
            ("traits.age == 42", true),
            ("traits.age == 42.0", true),
            ("traits.age > 41.5 and traits.age <= 42", true),
            ("traits.age < 42 or traits.age >= 43", false),
            ("traits.score > traits.age", false),
            ("traits.age > traits.score", true),
            ("traits.address.city == \"Bologna\"", true),
            ("traits.address.zip == \"40121\"", true),
            ("traits.tags.0 == \"vip\"", true),
            ("traits.tags.2 == 7", true),
            ("traits.tags.3 exists", false),
            ("traits.vip", true),
            ("traits.vip == true", true),
            ("not traits.vip", false),
            ("traits.country", false),
            ("traits.signup < 2026-01-01", true),
            ("traits.signup == 2025-12-31T10:00:00Z", true),
            ("traits.birthday == 1990-05-01", true),
            ("traits.signup > traits.birthday", true),
            ("traits.signup before 1d", false),
            ("traits.signup after 1d", true),
            ("traits.birthday before 2026-01-01", true),
        ],
    );
}

/// A missing value (absent or null) makes every comparison false, `!=` and `not in`
/// included; `not (...)` of such a comparison is true; `not exists` is true.
#[test]
fn missing_values_make_comparisons_false() {
    let p = Profile::traits(json!({"empty": null}));
    for path in [
        "traits.nope",
        "traits.empty",
        "traits.nope.deeper",
        "p_alive",
    ] {
        check_all(
            &p,
            T0,
            &[
                (&format!("{path} == 1"), false),
                (&format!("{path} != 1"), false),
                (&format!("not {path} == 1"), true),
                (&format!("not {path} != 1"), true),
                (&format!("{path} < 1 or {path} >= 1"), false),
                (&format!("{path} in [1, 2]"), false),
                (&format!("{path} not in [1, 2]"), false),
                (&format!("not {path} in [1, 2]"), true),
                (&format!("{path} exists"), false),
                (&format!("{path} not exists"), true),
                (&format!("not {path} exists"), true),
            ],
        );
    }
    for path in ["traits.nope", "traits.empty", "last_seen"] {
        check_all(
            &p,
            T0,
            &[
                (&format!("{path} before 1d or {path} after 1d"), false),
                (
                    &format!("{path} before 2026-01-01 or {path} after 2026-01-01"),
                    false,
                ),
            ],
        );
    }
    check_all(
        &p,
        T0,
        &[
            ("traits.nope contains \"a\"", false),
            (
                "traits.nope starts_with \"a\" or traits.nope ends_with \"a\"",
                false,
            ),
            ("traits.nope", false),
            (
                "first_seen exists or last_seen exists or first_channel exists",
                false,
            ),
            ("first_channel != \"web\"", false),
        ],
    );
}

/// A dynamic value of the wrong type behaves like a missing one in comparisons.
#[test]
fn wrong_dynamic_types_make_comparisons_false() {
    let mut p =
        Profile::traits(json!({"age": "42", "vip": "true", "city": {"name": "Roma"}, "list": [1]}));
    p.computed = map(json!({"p_alive": "0.3", "rfm_segment": 5}));
    check_all(
        &p,
        T0,
        &[
            ("traits.age == 42", false),
            ("traits.age != 42", false),
            ("traits.age > 1", false),
            ("traits.age == \"42\"", true),
            ("traits.vip", false),
            ("traits.city == \"Roma\"", false),
            ("traits.city exists", true),
            ("traits.list == 1", false),
            ("traits.age before 1d", false),
            ("traits.age contains \"4\"", true),
            ("p_alive < 0.4", false),
            ("p_alive != 0.4", false),
            ("p_alive exists", true),
            ("rfm_segment == \"Champions\"", false),
            ("rfm_segment != \"Champions\"", false),
            ("rfm_segment in [\"Champions\"]", false),
            ("rfm_segment not in [\"Champions\"]", false),
            ("traits.age in [42, \"42\"]", true),
            ("traits.age not in [42, \"43\"]", false),
            ("traits.age not in [\"41\", \"43\"]", true),
        ],
    );
}

#[test]
fn computed_traits_and_builtins() {
    let p = Profile {
        computed: map(json!({
            "p_alive": 0.35, "rfm_segment": "At risk", "rfm_score": "545",
            "cluster": 2, "clv_12m": 120.5, "expected_purchases_90d": 0.8
        })),
        first_seen: Some(T0 - 100 * DAY),
        last_seen: Some(T0 - 40 * DAY),
        first_channel: Some("store"),
        ..Profile::default()
    };
    check_all(
        &p,
        T0,
        &[
            (
                "p_alive < 0.4 and rfm_segment in [\"At risk\", \"Can't lose\"]",
                true,
            ),
            (
                "rfm_score starts_with \"5\" and rfm_score ends_with \"45\"",
                true,
            ),
            ("rfm_score contains \"4\"", true),
            (
                "cluster == 2 and clv_12m > 100 and expected_purchases_90d < 1",
                true,
            ),
            ("first_channel == \"store\"", true),
            ("first_seen before 99d and first_seen after 101d", true),
            ("first_seen before 100d", true),
            ("first_seen after 100d", false),
            ("last_seen before 40d", true),
            ("last_seen before 41d", false),
            ("last_seen after 40d", false),
            ("last_seen after 2025-11-22", true),
            ("last_seen after 2025-11-23", false),
            ("last_seen before 2025-11-22", false),
            ("last_seen before 2025-11-22T00:00:00.001Z", true),
            ("first_seen < last_seen", true),
        ],
    );
}

#[test]
fn contains_on_strings_and_lists() {
    let p = Profile::traits(json!({
        "email": "mario.rossi@gmail.com", "name": "Test Utente",
        "tags": ["vip", 3, true, "2026-01-01"], "brand": "Caffè Nero"
    }));
    check_all(
        &p,
        T0,
        &[
            (
                "traits.email exists and traits.email contains \"@gmail.\" and not traits.name starts_with \"Test\"",
                false,
            ),
            ("traits.email contains \"@gmail.\"", true),
            ("traits.email contains \"@GMAIL.\"", false),
            ("traits.email ends_with \".com\"", true),
            ("traits.name starts_with \"Test\"", true),
            ("traits.brand contains \"è\"", true),
            ("traits.tags contains \"vip\"", true),
            ("traits.tags contains \"vi\"", false),
            ("traits.tags contains 3", true),
            ("traits.tags contains true", true),
            ("traits.tags contains 2026-01-01", true),
            ("traits.tags contains 4", false),
            ("traits.tags starts_with \"vip\"", false),
        ],
    );
}

#[test]
fn aggregates_of_nothing() {
    let p = Profile::default();
    check_all(
        &p,
        T0,
        &[
            ("count(any event) == 0", true),
            ("sum(any event, properties.revenue) == 0", true),
            ("avg(any event, properties.revenue) exists", false),
            (
                "min(any event, properties.revenue) exists or max(any event, properties.revenue) exists",
                false,
            ),
            ("first(any event) exists or last(any event) exists", false),
            ("not avg(any event, properties.revenue) > 3", true),
            ("avg(any event, properties.revenue) <= 3", false),
            ("last(any event) before 60d", false),
            ("not last(any event) after 60d", true),
        ],
    );
}

#[test]
fn aggregates_over_events() {
    let p = Profile::events(vec![
        Ev::track(
            "Order Completed",
            "store",
            T0 - 10 * DAY,
            json!({"revenue": 100, "category": "scarpe"}),
        ),
        Ev::track(
            "Order Completed",
            "web",
            T0 - 5 * DAY,
            json!({"revenue": 50.5, "category": "borse"}),
        ),
        Ev::track(
            "Order Completed",
            "store",
            T0 - 100 * DAY,
            json!({"revenue": 300, "category": "scarpe"}),
        ),
        Ev::track(
            "Order Completed",
            "store",
            T0 - DAY,
            json!({"revenue": "n/a", "category": "scarpe"}),
        ),
        Ev::track("Email Sent", "server", T0 - 3 * DAY, json!({})),
        Ev {
            kind: "page",
            name: None,
            channel: "web",
            ts: T0 - 2 * DAY,
            props: json!({"path": "/scarpe"}),
        },
    ]);
    check_all(
        &p,
        T0,
        &[
            ("count(event \"Order Completed\") == 4", true),
            ("count(event \"Order Completed\" within 90d) == 3", true),
            (
                "count(event \"Order Completed\" where properties.category == \"scarpe\" within 90d) >= 2",
                true,
            ),
            (
                "count(event \"Order Completed\" where channel == \"store\" within 90d) == 2",
                true,
            ),
            ("count(channel \"store\" within 30d) == 2", true),
            ("count(channel \"web\") == 2", true),
            ("count(any event) == 6", true),
            ("count(any event where type == \"page\") == 1", true),
            ("count(any event where event == \"Email Sent\") == 1", true),
            ("count(any event where event != \"Email Sent\") == 4", true),
            ("count(event \"Email Sent\" within 7d) == 0", false),
            ("count(event \"Email Sent\" within 2d) == 0", true),
            (
                "sum(event \"Order Completed\", properties.revenue) == 450.5",
                true,
            ),
            (
                "sum(event \"Order Completed\", properties.revenue within 30d) == 150.5",
                true,
            ),
            (
                "avg(event \"Order Completed\", properties.revenue) > 150.16",
                true,
            ),
            (
                "avg(event \"Order Completed\", properties.revenue) < 150.17",
                true,
            ),
            (
                "avg(event \"Order Completed\", properties.revenue within 30d) == 75.25",
                true,
            ),
            (
                "min(event \"Order Completed\", properties.revenue) == 50.5",
                true,
            ),
            (
                "max(event \"Order Completed\", properties.revenue within 30d) == 100",
                true,
            ),
            (
                "max(event \"Order Completed\", properties.revenue) == 300",
                true,
            ),
            ("first(event \"Order Completed\") before 99d", true),
            (
                "first(event \"Order Completed\" within 90d) == 2025-12-22",
                true,
            ),
            ("last(event \"Order Completed\") == 2025-12-31", true),
            (
                "last(event \"Order Completed\" where channel == \"web\") before 5d",
                true,
            ),
            (
                "last(event \"Order Completed\" where channel == \"web\") before 6d",
                false,
            ),
            ("first(event \"Order Completed\") after 30d", false),
            ("count(event \"Refund\") == 0", true),
        ],
    );
}

/// The audience: bought at least twice in 90 days in a store, p_alive < 0.4, not
/// contacted in 7 days.
#[test]
fn the_target_audience() {
    let src = "count(event \"Order Completed\" where channel == \"store\" within 90d) >= 2 and p_alive < 0.4 and count(event \"Email Sent\" within 7d) == 0";
    let mut p = Profile::events(vec![
        Ev::track("Order Completed", "store", T0 - 80 * DAY, json!({})),
        Ev::track("Order Completed", "store", T0 - 20 * DAY, json!({})),
        Ev::track("Email Sent", "server", T0 - 8 * DAY, json!({})),
    ]);
    p.computed = map(json!({"p_alive": 0.3}));
    assert!(p.holds(src, T0));
    // Ten days later the first order has left the 90-day window.
    assert!(!p.holds(src, T0 + 10 * DAY));
    p.events
        .push(Ev::track("Email Sent", "server", T0 - DAY, json!({})));
    assert!(!p.holds(src, T0));
    p.events.pop();
    p.computed = map(json!({"p_alive": 0.5}));
    assert!(!p.holds(src, T0));
}

/// `within W` at `now` holds `now - W < ts <= now`.
#[test]
fn window_edges_are_exact() {
    let ts = T0;
    let p = Profile::events(vec![Ev::track("X", "web", ts, json!({}))]);
    let src = "count(event \"X\" within 1d) == 1";
    assert!(!p.holds(src, ts - 1), "a future event does not count yet");
    assert!(p.holds(src, ts));
    assert!(p.holds(src, ts + DAY - 1));
    assert!(!p.holds(src, ts + DAY));
    let all_time = "count(event \"X\") == 1";
    assert!(!p.holds(all_time, ts - 1));
    assert!(p.holds(all_time, ts));
    // before/after a duration split at exactly now - D.
    assert!(p.holds("last(event \"X\") before 1h", ts + HOUR));
    assert!(!p.holds("last(event \"X\") before 1h", ts + HOUR - 1));
    assert!(!p.holds("last(event \"X\") after 1h", ts + HOUR));
    assert!(p.holds("last(event \"X\") after 1h", ts + HOUR - 1));
    assert!(p.holds("last(event \"X\") after 30m", ts + 30 * MINUTE - 1));
}

fn observe_all(catalog: &Catalog, events: &[Ev], now: i64) -> ProfileAggregates {
    let mut a = ProfileAggregates::new();
    for e in events {
        a.observe(catalog, &e.facts(), now);
    }
    a
}

fn value(catalog: &Catalog, a: &ProfileAggregates, text: &str, now: i64) -> Option<AggValue> {
    let term = catalog
        .terms()
        .iter()
        .find(|t| t.text() == text)
        .unwrap_or_else(|| panic!("no term {text}"));
    a.value(term, now)
}

#[test]
fn late_events_go_where_their_time_puts_them() {
    let catalog = Catalog::new(
        [(
            "s",
            "count(event \"X\" within 2d) > 0 and first(event \"X\" within 10d) exists and last(event \"X\") exists and sum(event \"X\", properties.v within 10d) > 0",
        )],
        &Schema::product_default(),
    )
    .unwrap();
    let events: Vec<Ev> = [5, 1, 3, 9, 2]
        .iter()
        .map(|d| Ev::track("X", "web", T0 - d * DAY, json!({"v": *d})))
        .collect();
    let mut in_order = events.clone();
    in_order.sort_by_key(|e| e.ts);
    let late = observe_all(&catalog, &events, T0);
    let ordered = observe_all(&catalog, &in_order, T0);
    for text in [
        "count(event \"X\" within 2d)",
        "first(event \"X\" within 10d)",
        "last(event \"X\")",
        "sum(event \"X\", properties.v within 10d)",
    ] {
        for now in [T0, T0 + DAY, T0 + 3 * DAY, T0 + 9 * DAY] {
            assert_eq!(
                value(&catalog, &late, text, now),
                value(&catalog, &ordered, text, now),
                "{text} at {now}"
            );
        }
    }
    assert_eq!(
        value(&catalog, &late, "first(event \"X\" within 10d)", T0),
        Some(AggValue::Date(T0 - 9 * DAY))
    );
    assert_eq!(
        value(
            &catalog,
            &late,
            "first(event \"X\" within 10d)",
            T0 + 2 * DAY
        ),
        Some(AggValue::Date(T0 - 5 * DAY))
    );
    assert_eq!(
        value(&catalog, &late, "count(event \"X\" within 2d)", T0),
        Some(AggValue::Number(1.0))
    );
    assert_eq!(
        value(
            &catalog,
            &late,
            "sum(event \"X\", properties.v within 10d)",
            T0
        ),
        Some(AggValue::Number(20.0))
    );
    assert_eq!(
        value(&catalog, &late, "last(event \"X\")", T0),
        Some(AggValue::Date(T0 - DAY))
    );
}

#[test]
fn events_already_out_of_the_window_are_ignored() {
    let catalog = Catalog::new(
        [("s", "count(event \"X\" within 7d) > 0")],
        &Schema::product_default(),
    )
    .unwrap();
    let mut a = ProfileAggregates::new();
    let old = Ev::track("X", "web", T0 - 7 * DAY, json!({}));
    assert!(!a.observe(&catalog, &old.facts(), T0));
    assert!(a.is_empty());
    let recent = Ev::track("X", "web", T0 - 7 * DAY + 1, json!({}));
    assert!(a.observe(&catalog, &recent.facts(), T0));
    assert_eq!(a.len(), 1);
    let other = Ev::track("Y", "web", T0, json!({}));
    assert!(!a.observe(&catalog, &other.facts(), T0));
    // Once the event has left, pruning forgets the term.
    a.prune(&catalog, T0 + DAY);
    assert!(a.is_empty());
}

#[test]
fn future_events_wait_for_their_time() {
    let catalog = Catalog::new(
        [(
            "s",
            "count(event \"X\") >= 1 and max(event \"X\", properties.v) > 5",
        )],
        &Schema::product_default(),
    )
    .unwrap();
    let mut a = ProfileAggregates::new();
    let future = Ev::track("X", "web", T0 + HOUR, json!({"v": 10}));
    a.observe(&catalog, &future.facts(), T0);
    let count = "count(event \"X\")";
    assert_eq!(value(&catalog, &a, count, T0), Some(AggValue::Number(0.0)));
    assert_eq!(
        value(&catalog, &a, count, T0 + HOUR),
        Some(AggValue::Number(1.0))
    );
    let max = "max(event \"X\", properties.v)";
    assert_eq!(value(&catalog, &a, max, T0 + HOUR - 1), None);
    assert_eq!(
        value(&catalog, &a, max, T0 + HOUR),
        Some(AggValue::Number(10.0))
    );
    let (traits, memberships) = (Map::new(), SegmentSet::new());
    let view = ProfileView {
        traits: &traits,
        computed: &traits,
        first_seen: None,
        last_seen: None,
        first_channel: None,
        aggregates: &a,
        memberships: &memberships,
    };
    assert_eq!(view.next_boundary(&catalog, T0), Some(T0 + HOUR));
    // Pruning after its time folds it into the running totals; the value stays.
    a.prune(&catalog, T0 + 2 * HOUR);
    assert_eq!(
        value(&catalog, &a, count, T0 + 2 * HOUR),
        Some(AggValue::Number(1.0))
    );
    assert_eq!(
        value(&catalog, &a, max, T0 + 2 * HOUR),
        Some(AggValue::Number(10.0))
    );
}

#[test]
fn backfill_builds_new_terms_like_observe_and_leaves_others_alone() {
    let schema = Schema::product_default();
    let events: Vec<Ev> = (0..20)
        .map(|i| {
            Ev::track(
                if i % 3 == 0 {
                    "Email Sent"
                } else {
                    "Order Completed"
                },
                if i % 2 == 0 { "store" } else { "web" },
                T0 - i * 5 * DAY,
                json!({"revenue": i * 10}),
            )
        })
        .collect();
    let old = Catalog::new(
        [("a", "count(event \"Email Sent\" within 30d) == 0")],
        &schema,
    )
    .unwrap();
    let mut a = observe_all(&old, &events, T0);
    let new = Catalog::new(
        [
            ("a", "count(event \"Email Sent\" within 30d) == 0"),
            ("b", "sum(event \"Order Completed\", properties.revenue within 60d) > 100 and count(channel \"store\") > 3"),
        ],
        &schema,
    )
    .unwrap();
    let added: Vec<_> = new
        .terms()
        .iter()
        .map(|t| t.key())
        .filter(|k| old.term(*k).is_none())
        .collect();
    assert_eq!(added.len(), 2);
    a.backfill(&new, &added, events.iter().map(Ev::facts), T0);
    let fresh = observe_all(&new, &events, T0);
    for term in new.terms() {
        assert_eq!(a.value(term, T0), fresh.value(term, T0), "{}", term.text());
    }
    assert_eq!(a, fresh);
}

#[test]
fn aggregates_serialize_compactly_and_read_back() {
    let catalog = Catalog::new(
        [(
            "s",
            "count(event \"X\" within 7d) > 0 and avg(event \"X\", properties.v) > 1 and last(any event) exists",
        )],
        &Schema::product_default(),
    )
    .unwrap();
    let events = [
        Ev::track("X", "web", T0 - DAY, json!({"v": 2})),
        Ev::track("X", "web", T0 + DAY, json!({"v": 4.5})),
    ];
    let a = observe_all(&catalog, &events, T0);
    let text = serde_json::to_string(&a).unwrap();
    let back: ProfileAggregates = serde_json::from_str(&text).unwrap();
    assert_eq!(back, a);
    assert!(text.len() < 250, "{text}");
    for term in catalog.terms() {
        assert_eq!(back.value(term, T0 + DAY), a.value(term, T0 + DAY));
    }
}

#[test]
fn next_boundary_names_the_next_flip() {
    let schema = Schema::product_default();
    let catalog = Catalog::new(
        [
            ("lapsed", "last(event \"Order Completed\") before 60d"),
            ("quiet", "last_seen before 30d"),
            ("recent", "count(event \"Order Completed\" within 90d) >= 1"),
        ],
        &schema,
    )
    .unwrap();
    let order = Ev::track("Order Completed", "web", T0 - 10 * DAY, json!({}));
    let a = observe_all(&catalog, std::slice::from_ref(&order), T0);
    let (traits, memberships) = (Map::new(), SegmentSet::new());
    let mut view = ProfileView {
        traits: &traits,
        computed: &traits,
        first_seen: None,
        last_seen: Some(T0 - 5 * DAY),
        first_channel: None,
        aggregates: &a,
        memberships: &memberships,
    };
    // last_seen + 30d is first, then order + 60d, then order + 90d.
    assert_eq!(view.next_boundary(&catalog, T0), Some(T0 + 25 * DAY));
    assert_eq!(
        view.next_boundary(&catalog, T0 + 25 * DAY),
        Some(T0 + 50 * DAY)
    );
    assert_eq!(
        view.next_boundary(&catalog, T0 + 50 * DAY),
        Some(T0 + 80 * DAY)
    );
    assert_eq!(view.next_boundary(&catalog, T0 + 80 * DAY), None);
    view.last_seen = None;
    assert_eq!(view.next_boundary(&catalog, T0), Some(T0 + 50 * DAY));
    let lapsed = catalog.id("lapsed").unwrap();
    let only = catalog.set_of(["lapsed"]);
    assert!(
        !catalog
            .evaluate(&view, T0 + 50 * DAY - 1, Some(&only))
            .members
            .contains(lapsed)
    );
    assert!(
        catalog
            .evaluate(&view, T0 + 50 * DAY, Some(&only))
            .members
            .contains(lapsed)
    );
}

#[test]
fn segments_read_fresh_memberships_in_dependency_order() {
    let catalog = Catalog::new(
        [
            ("loyal-lapsing", "segment \"loyal\" and p_alive < 0.4"),
            (
                "loyal",
                "count(event \"Order Completed\") >= 2 and not segment \"staff\"",
            ),
            ("staff", "traits.email ends_with \"@prossimo.example\""),
        ],
        &Schema::product_default(),
    )
    .unwrap();
    let order = ["staff", "loyal", "loyal-lapsing"];
    let got: Vec<_> = catalog
        .segments()
        .filter_map(|id| catalog.slug(id))
        .collect();
    assert_eq!(got, order);
    let events = [
        Ev::track("Order Completed", "web", T0 - DAY, json!({})),
        Ev::track("Order Completed", "web", T0 - 2 * DAY, json!({})),
    ];
    let a = observe_all(&catalog, &events, T0);
    let traits = map(json!({"email": "anna@example.it"}));
    let computed = map(json!({"p_alive": 0.2}));
    // Stale memberships say staff, and nothing else.
    let stale = catalog.set_of(["staff"]);
    let view = ProfileView {
        traits: &traits,
        computed: &computed,
        first_seen: None,
        last_seen: None,
        first_channel: None,
        aggregates: &a,
        memberships: &stale,
    };
    let all = catalog.evaluate(&view, T0, None);
    assert_eq!(
        catalog.slugs(&all.members).collect::<Vec<_>>(),
        ["loyal-lapsing", "loyal"]
    );
    assert_eq!(all.evaluated.len(), 3);
    // Evaluating only the dependents reads the stored (stale) staff membership.
    let only = catalog.affected(&Change {
        terms: catalog.terms().iter().map(|t| t.key()).collect(),
        ..Change::default()
    });
    assert_eq!(
        catalog.slugs(&only).collect::<Vec<_>>(),
        ["loyal-lapsing", "loyal"]
    );
    let partial = catalog.evaluate(&view, T0, Some(&only));
    assert_eq!(
        catalog.slugs(&partial.members).collect::<Vec<_>>(),
        ["staff"]
    );
    assert_eq!(partial.evaluated, only);
}
