//! The catalog: references, cycles, shared terms, the event index and change propagation.

use prossimo_segments::{Catalog, CatalogError, Change, EventFacts, Schema, TermKey};
use serde_json::json;

use crate::{Ev, T0};

fn catalog(defs: &[(&str, &str)]) -> Catalog {
    Catalog::new(defs.iter().copied(), &Schema::product_default()).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(defs: &[(&str, &str)]) -> CatalogError {
    Catalog::new(defs.iter().copied(), &Schema::product_default()).unwrap_err()
}

#[test]
fn cycles_are_refused_with_the_cycle_named() {
    let err = refused(&[
        ("a", "segment \"b\" and p_alive < 0.5"),
        ("b", "segment \"a\""),
    ]);
    assert_eq!(
        err,
        CatalogError::Cycle {
            path: vec!["a".into(), "b".into(), "a".into()]
        }
    );
    assert_eq!(
        err.to_string(),
        "membership cycle: segment \"a\" -> \"b\" -> \"a\""
    );
    let err = refused(&[
        ("vip", "traits.vip"),
        ("x", "segment \"y\" or segment \"vip\""),
        ("y", "segment \"z\""),
        ("z", "not segment \"x\""),
    ]);
    assert_eq!(
        err.to_string(),
        "membership cycle: segment \"x\" -> \"y\" -> \"z\" -> \"x\""
    );
    let err = refused(&[("self", "segment \"self\"")]);
    assert_eq!(
        err.to_string(),
        "membership cycle: segment \"self\" -> \"self\""
    );
}

#[test]
fn unknown_references_and_bad_definitions_name_the_segment() {
    let err = refused(&[
        ("vip", "traits.vip"),
        ("x", "p_alive < 0.4\n  and segment \"vpi\""),
    ]);
    assert_eq!(
        err.to_string(),
        "segment \"x\": unknown segment \"vpi\"; did you mean \"vip\"? at line 2, column 15\n    and segment \"vpi\"\n                ^"
    );
    let err = refused(&[("x", "segment \"nothing-like-it\"")]);
    assert_eq!(
        err.to_string(),
        "segment \"x\": unknown segment \"nothing-like-it\" at line 1, column 9\n  segment \"nothing-like-it\"\n          ^"
    );
    let err = refused(&[("x", "p_alive = 1")]);
    let CatalogError::Definition { slug, error } = err else {
        panic!("expected a definition error")
    };
    assert_eq!(slug, "x");
    assert_eq!((error.line(), error.column()), (1, 9));
    assert_eq!(
        refused(&[("a", "true"), ("a", "false")]),
        CatalogError::DuplicateSlug("a".into())
    );
    assert_eq!(
        refused(&[("a b", "true")]).to_string(),
        "segment slug \"a b\" is invalid (1 to 64 lowercase letters, digits, - and _, starting with a letter or digit; not new or check)"
    );
    assert!(matches!(
        refused(&[("", "true")]),
        CatalogError::InvalidSlug(_)
    ));
}

#[test]
fn terms_are_shared_by_canonical_text_under_a_stable_key() {
    let c = catalog(&[
        ("a", "count(event \"Email Sent\" within 7d) == 0"),
        (
            "b",
            "count(event   \"Email Sent\"\n within 7d) > 3 and p_alive < 0.5",
        ),
        ("c", "count(event \"Email Sent\" within 168h) > 3"),
    ]);
    let texts: Vec<_> = c.terms().iter().map(|t| t.text()).collect();
    assert_eq!(
        texts,
        [
            "count(event \"Email Sent\" within 7d)",
            "count(event \"Email Sent\" within 168h)"
        ]
    );
    // FNV-1a 64 of the canonical text: the same in every process and every catalog.
    let key = TermKey::of("count(event \"Email Sent\" within 7d)");
    assert_eq!(key, TermKey(0xa922_b6f8_c866_033b));
    assert_eq!(key.to_string(), "a922b6f8c866033b");
    assert_eq!(c.terms()[0].key(), key);
    assert_eq!(
        c.term(key).map(|t| t.window_ms()),
        Some(Some(7 * crate::DAY))
    );
    let other = catalog(&[("z", "count(event \"Email Sent\" within 7d) >= 1")]);
    assert_eq!(other.terms()[0].key(), key);
}

#[test]
fn events_are_matched_through_the_index_and_the_filter() {
    let c = catalog(&[
        (
            "a",
            "count(event \"Order Completed\" where channel == \"store\") > 0",
        ),
        (
            "b",
            "sum(event \"Order Completed\", properties.revenue) > 0",
        ),
        (
            "c",
            "count(channel \"store\" where properties.category in [\"scarpe\", \"borse\"]) > 0",
        ),
        ("d", "count(any event where type == \"page\") > 0"),
        ("e", "count(event \"Email Sent\") > 0"),
    ]);
    let matching = |e: &Ev| -> Vec<String> {
        let facts = e.facts();
        let mut texts: Vec<String> = c
            .matching_terms(&facts)
            .map(|k| c.term(k).unwrap().text().to_owned())
            .collect();
        texts.sort();
        texts
    };
    let store_order = Ev::track(
        "Order Completed",
        "store",
        T0,
        json!({"category": "scarpe"}),
    );
    assert_eq!(
        matching(&store_order),
        [
            "count(channel \"store\" where properties.category in [\"scarpe\", \"borse\"])",
            "count(event \"Order Completed\" where channel == \"store\")",
            "sum(event \"Order Completed\", properties.revenue)",
        ]
    );
    let web_order = Ev::track("Order Completed", "web", T0, json!({"category": "scarpe"}));
    assert_eq!(
        matching(&web_order),
        ["sum(event \"Order Completed\", properties.revenue)"]
    );
    let page = Ev {
        kind: "page",
        name: None,
        channel: "store",
        ts: T0,
        props: json!({"category": "cinture"}),
    };
    assert_eq!(matching(&page), ["count(any event where type == \"page\")"]);
    let facts = EventFacts {
        kind: "track",
        event: Some("Unknown"),
        channel: "app",
        ts_ms: T0,
        properties: &json!(null),
        platform: false,
    };
    assert_eq!(c.matching_terms(&facts).count(), 0);
}

#[test]
fn the_platforms_own_events_count_only_where_a_term_names_them() {
    let c = catalog(&[
        (
            "entered",
            r#"count(event "Segment Entered" within 30d) >= 1"#,
        ),
        ("active", "count(any event within 30d) >= 1"),
        ("other", r#"count(channel "other" within 30d) >= 1"#),
    ]);
    let properties = json!({"segment": "vip"});
    let own = EventFacts {
        kind: "track",
        event: Some("Segment Entered"),
        channel: "other",
        ts_ms: T0,
        properties: &properties,
        platform: true,
    };
    let named: Vec<String> = c
        .matching_terms(&own)
        .map(|k| c.term(k).unwrap().text().to_owned())
        .collect();
    assert_eq!(named, [r#"count(event "Segment Entered" within 30d)"#]);
    let customers = EventFacts {
        platform: false,
        ..own
    };
    assert_eq!(c.matching_terms(&customers).count(), 3);
}

#[test]
fn changes_reach_the_segments_that_read_them_and_their_dependents() {
    let c = catalog(&[
        ("italians", "traits.address.country == \"IT\""),
        ("at-risk", "p_alive < 0.4"),
        ("newcomers", "first_seen after 30d"),
        ("buyers", "count(event \"Order Completed\") > 0"),
        (
            "italian-buyers",
            "segment \"italians\" and segment \"buyers\"",
        ),
        (
            "vip-italians",
            "segment \"italian-buyers\" and clv_12m > 500",
        ),
    ]);
    let affected = |change: Change| -> Vec<String> {
        let set = c.affected(&change);
        c.slugs(&set).map(str::to_owned).collect()
    };
    assert_eq!(
        affected(Change {
            traits: vec!["address".into()],
            ..Change::default()
        }),
        ["italians", "italian-buyers", "vip-italians"]
    );
    assert_eq!(
        affected(Change {
            traits: vec!["country".into()],
            ..Change::default()
        }),
        Vec::<&str>::new()
    );
    assert_eq!(
        affected(Change {
            computed: vec!["p_alive".into(), "clv_12m".into()],
            ..Change::default()
        }),
        ["at-risk", "vip-italians"]
    );
    assert_eq!(
        affected(Change {
            seen: true,
            ..Change::default()
        }),
        ["newcomers"]
    );
    let order = Ev::track("Order Completed", "web", T0, json!({}));
    let facts = order.facts();
    assert_eq!(
        affected(Change {
            terms: c.matching_terms(&facts).collect(),
            ..Change::default()
        }),
        ["buyers", "italian-buyers", "vip-italians"]
    );
    assert_eq!(
        affected(Change {
            segments: vec!["italian-buyers".into()],
            ..Change::default()
        }),
        ["vip-italians"]
    );
    assert!(c.affected(&Change::default()).is_empty());
}

#[test]
fn the_catalog_keeps_sources_and_definitions() {
    let c = catalog(&[("vip", "clv_12m   > 500 # top spenders")]);
    let id = c.id("vip").unwrap();
    assert_eq!(c.len(), 1);
    assert!(!c.is_empty());
    assert_eq!(c.source(id), Some("clv_12m   > 500 # top spenders"));
    assert_eq!(
        c.definition(id).map(prossimo_segments::format).as_deref(),
        Some("clv_12m > 500")
    );
    assert_eq!(c.id("nope"), None);
    let mut set = c.set_of(["vip", "nope"]);
    assert_eq!(set.len(), 1);
    set.remove(id);
    assert!(set.is_empty());
    assert_eq!(set, prossimo_segments::SegmentSet::new());
}
