//! The static type rules and the exact text of every type error.

use prossimo_segments::{ErrorKind, Schema, Type, check, compile, parse};

use crate::error;

#[test]
fn type_errors_name_both_sides() {
    let cases = [
        (
            "p_alive < \"x\"",
            "expected a number to compare with p_alive, found a string (\"x\") at line 1, column 11",
        ),
        (
            "count(event \"X\") >= \"a\"",
            "expected a number to compare with count(...), found a string (\"a\") at line 1, column 21",
        ),
        (
            "rfm_segment > 3",
            "expected a string to compare with rfm_segment, found a number (3) at line 1, column 15",
        ),
        (
            "rfm_segment > \"a\"",
            "expected a number or a date on both sides of >, found a string (rfm_segment) at line 1, column 1",
        ),
        (
            "traits.vip <= true",
            "expected a number or a date on both sides of <=, found a true/false value (true) at line 1, column 15",
        ),
        (
            "sum(event \"X\", traits.revenue) > 1",
            "expected a property path (properties.<path>) in sum(...), found traits.revenue at line 1, column 16",
        ),
        (
            "last(event \"X\") > 5",
            "expected a date to compare with last(...), found a number (5) at line 1, column 19",
        ),
        (
            "first_seen == \"2026-01-01\"",
            "expected a date to compare with first_seen, found a string (\"2026-01-01\") at line 1, column 15",
        ),
        (
            "p_alive < 60d",
            "expected a number to compare with p_alive, found a duration (60d); durations follow within, before or after at line 1, column 11",
        ),
        (
            "60d == 1",
            "expected a value (a number, a string, true/false or a date), found a duration (60d); durations follow within, before or after at line 1, column 1",
        ),
        (
            "rfm_segment == [\"a\"]",
            "expected a string to compare with rfm_segment, found a list ([\"a\"]); to test membership write <value> in [...] at line 1, column 16",
        ),
        (
            "p_alive and segment \"x\"",
            "expected a condition (a comparison, or a true/false value), found a number (p_alive) at line 1, column 1",
        ),
        (
            "segment \"x\" or rfm_segment",
            "expected a condition (a comparison, or a true/false value), found a string (rfm_segment) at line 1, column 16",
        ),
        (
            "not count(event \"X\")",
            "expected a condition (a comparison, or a true/false value), found a number (count(...)) at line 1, column 5",
        ),
        (
            "p_alve < 0.4",
            "unknown name \"p_alve\"; did you mean p_alive? at line 1, column 1",
        ),
        (
            "last_sen before 3d",
            "unknown name \"last_sen\"; did you mean last_seen? at line 1, column 1",
        ),
        (
            "country == \"IT\"",
            "unknown name \"country\" (a profile trait is written traits.country; computed traits: cluster, clv_12m, expected_purchases_90d, p_alive, rfm_score, rfm_segment; built-ins: first_seen, last_seen, first_channel) at line 1, column 1",
        ),
        (
            "properties.a == 1",
            "properties.a can only be used inside where or as the property of sum, avg, min or max at line 1, column 1",
        ),
        (
            "channel == \"store\"",
            "channel can only be used inside where (count(event \"...\" where channel == ...)); the profile's first channel is first_channel at line 1, column 1",
        ),
        (
            "type == \"page\"",
            "type can only be used inside where (count(event \"...\" where type == ...)) at line 1, column 1",
        ),
        (
            "count(event \"X\" where traits.a == 1) > 0",
            "traits.a cannot be used inside where: a filter sees only the event (properties.<path>, channel, event, type) at line 1, column 23",
        ),
        (
            "count(event \"X\" where p_alive > 1) > 0",
            "p_alive cannot be used inside where: a filter sees only the event (properties.<path>, channel, event, type) at line 1, column 23",
        ),
        (
            "count(event \"X\" where last_seen > 2026-01-01) > 0",
            "last_seen cannot be used inside where: a filter sees only the event (properties.<path>, channel, event, type) at line 1, column 23",
        ),
        (
            "count(event \"X\" where count(event \"Y\") > 1) > 0",
            "an aggregate (count(...)) cannot be used inside where: a filter sees only the event (properties.<path>, channel, event, type) at line 1, column 23",
        ),
        (
            "count(event \"X\" where segment \"a\") > 0",
            "segment \"a\" cannot be used inside where: a filter sees only the event (properties.<path>, channel, event, type) at line 1, column 31",
        ),
        (
            "count(event \"X\" where properties.d before 30d) > 0",
            "inside where, before needs a date such as 2026-01-01 (use within for a time window) at line 1, column 23",
        ),
        (
            "count(event \"X\" where properties.n == \"1\" and properties.n > \"0\") > 0",
            "expected a number or a date on both sides of >, found a string (\"0\") at line 1, column 62",
        ),
        (
            "rfm_segment in [\"a\", 3]",
            "expected a string in the list for rfm_segment, found a number (3) at line 1, column 22",
        ),
        (
            "p_alive in [7d]",
            "expected a number in the list for p_alive, found a duration (7d) at line 1, column 13",
        ),
        (
            "traits.x in [7d]",
            "expected a value (a number, a string, true/false or a date), found a duration (7d) at line 1, column 14",
        ),
        (
            "p_alive contains \"a\"",
            "expected a string or a list on the left of contains, found a number (p_alive) at line 1, column 1",
        ),
        (
            "first_seen starts_with \"2026\"",
            "expected a string on the left of starts_with, found a date (first_seen) at line 1, column 1",
        ),
        (
            "rfm_segment contains 3",
            "expected a string after contains, found a number (3) at line 1, column 22",
        ),
        (
            "rfm_segment starts_with 3",
            "expected a string after starts_with, found a number (3) at line 1, column 25",
        ),
        (
            "traits.tags ends_with true",
            "expected a string after ends_with, found a true/false value (true) at line 1, column 23",
        ),
        (
            "p_alive before 30d",
            "expected a date on the left of before, found a number (p_alive) at line 1, column 1",
        ),
        (
            "count(any event) after 2026-01-01",
            "expected a date on the left of after, found a number (count(...)) at line 1, column 1",
        ),
    ];
    for (src, expected) in cases {
        assert_eq!(error(src), expected, "{src:?}");
        let err = compile(src, &Schema::product_default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Type, "{src:?}");
    }
}

#[test]
fn dynamic_values_type_check_against_anything_comparable() {
    let schema = Schema::product_default();
    for ok in [
        "traits.age > 30",
        "traits.age > traits.min_age",
        "traits.signup before 30d and traits.signup < 2026-01-01",
        "traits.tags contains 3 and traits.tags contains \"vip\"",
        "traits.plan in [\"gold\", 3, true, 2026-01-01]",
        "traits.vip and not traits.blocked",
        "rfm_score starts_with \"5\" and cluster in [1, 2]",
        "count(any event where properties.total > 10 and event != \"Refund\") > 0",
        "count(any event where properties.at before 2026-01-01) > 0",
        "true or false",
        "avg(event \"X\", properties.v) not exists",
    ] {
        if let Err(e) = compile(ok, &schema) {
            panic!("{ok}\n{e}");
        }
    }
}

#[test]
fn a_schema_can_declare_dates_lists_and_flags() {
    let schema = Schema::new()
        .with("renewal", Type::Date)
        .with("tags", Type::List)
        .with("churned", Type::Bool);
    assert_eq!(schema.get("renewal"), Some(Type::Date));
    assert!(
        compile(
            "renewal after 30d and tags contains \"a\" and not churned",
            &schema
        )
        .is_ok()
    );
    let err = compile("tags == \"a\"", &schema).unwrap_err();
    assert_eq!(
        err.summary(),
        "expected a value (a number, a string, true/false or a date) for ==, found a list (tags) (use contains to look inside a list) at line 1, column 1"
    );
    let err = compile("p_alive > 1", &schema).unwrap_err();
    assert_eq!(
        err.summary(),
        "unknown name \"p_alive\" (a profile trait is written traits.p_alive; computed traits: churned, renewal, tags; built-ins: first_seen, last_seen, first_channel) at line 1, column 1"
    );
}

#[test]
fn check_without_source_has_no_caret() {
    let expr = parse("p_alive < \"x\"").unwrap();
    let err = check(&expr, &Schema::product_default()).unwrap_err();
    assert_eq!(err.to_string(), err.summary());
    assert_eq!(
        err.with_source("p_alive < \"x\"").to_string(),
        "expected a number to compare with p_alive, found a string (\"x\") at line 1, column 11\n  p_alive < \"x\"\n            ^"
    );
}
