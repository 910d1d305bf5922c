use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn batch(v: serde_json::Value) -> Result<Payload, BatchError> {
    parse_batch(v.to_string().as_bytes(), now(), &Limits::default())
}

#[test]
fn batch_with_every_type_parses_and_envelope_context_merges() {
    let p = batch(json!({
        "writeKey": "wk",
        "context": {"library": {"name": "analytics-python"}, "ip": "1.2.3.4"},
        "integrations": {"All": true},
        "batch": [
            {"type": "identify", "userId": "u1", "traits": {"email": "A@x.it"}, "context": {"ip": "5.6.7.8"}},
            {"type": "track", "anonymousId": "a1", "event": "Order Completed", "properties": {"revenue": "12.5"}},
            {"type": "page", "userId": 42, "name": "Home"},
            {"type": "screen", "userId": "u1", "name": "Cart"},
            {"type": "group", "userId": "u1", "groupId": "acme"},
            {"type": "alias", "userId": "u1", "previousId": "a1"}
        ]
    }))
    .unwrap();
    assert_eq!(p.write_key.as_deref(), Some("wk"));
    assert_eq!(p.messages.len(), 6);
    let first = &p.messages[0];
    assert_eq!(
        first.context["ip"], "5.6.7.8",
        "message context wins over batch context"
    );
    assert_eq!(first.context["library"]["name"], "analytics-python");
    assert_eq!(first.integrations["All"], true);
    assert_eq!(first.channel, Channel::Server);
    assert_eq!(p.messages[2].user_id.as_deref(), Some("42"));
    assert_eq!(
        p.messages[1].order_event().and_then(|o| o.amount),
        Some(12.5)
    );
    assert!(p.messages.iter().all(|m| !m.message_id.is_empty()));
}

#[test]
fn clock_skew_is_corrected_from_sent_at() {
    // Device clock is 1 hour fast: it claims the event at 12:59:50 and sending at 13:00:00.
    let p = batch(json!({
        "sentAt": "2026-11-22T13:00:00Z",
        "batch": [{"type": "track", "userId": "u", "event": "E", "timestamp": "2026-11-22T12:59:50Z"}]
    }))
    .unwrap();
    let m = &p.messages[0];
    assert_eq!(
        m.timestamp,
        Utc.with_ymd_and_hms(2026, 11, 22, 11, 59, 50).unwrap()
    );
    assert_eq!(
        m.original_timestamp,
        Some(Utc.with_ymd_and_hms(2026, 11, 22, 12, 59, 50).unwrap())
    );
    assert_eq!(m.received_at, now());
}

#[test]
fn without_sent_at_the_timestamp_is_trusted_and_without_any_time_received_at_is_used() {
    let p = batch(json!({"batch": [
        {"type": "track", "userId": "u", "event": "E", "timestamp": "2026-01-01T00:00:00+01:00"},
        {"type": "track", "userId": "u", "event": "E"}
    ]}))
    .unwrap();
    assert_eq!(
        p.messages[0].timestamp,
        Utc.with_ymd_and_hms(2025, 12, 31, 23, 0, 0).unwrap()
    );
    assert_eq!(p.messages[1].timestamp, now());
}

#[test]
fn every_invalid_field_is_reported_with_its_index() {
    let err = batch(json!({"batch": [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "userId": "u"},
        {"type": "bogus", "userId": "u"},
        {"type": "identify"},
        {"type": "page", "userId": "u", "timestamp": "yesterday"},
        {"type": "track", "userId": "u", "event": "E", "messageId": "x".repeat(257)},
        {"type": "track", "userId": "u", "event": "E", "context": {"channel": "fax"}},
        {"type": "group", "userId": "u"},
        {"type": "alias", "userId": "u"},
        {"type": "track", "userId": ["u"], "event": "E"},
        "not an object"
    ]}))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ValidationFailed);
    let found: Vec<(usize, &str)> = err
        .details
        .iter()
        .map(|d| (d.index.unwrap(), d.field.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (1, "event"),
            (2, "type"),
            (3, "userId"),
            (4, "timestamp"),
            (5, "messageId"),
            (6, "context.channel"),
            (7, "groupId"),
            (8, "previousId"),
            (9, "userId"),
            (10, "message"),
        ]
    );
}

#[test]
fn limits_are_enforced_with_payload_too_large() {
    let big = "x".repeat(33 * 1024);
    let err = batch(json!({"batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"p": big}}]}))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);
    assert_eq!(err.details[0].field, "message");

    let many: Vec<_> = (0..2_501)
        .map(|_| json!({"type": "track", "userId": "u", "event": "E"}))
        .collect();
    let err = batch(json!({ "batch": many })).unwrap_err();
    assert_eq!(err.code, ErrorCode::PayloadTooLarge);

    let at_limit: Vec<_> = (0..2_500)
        .map(|_| json!({"type": "track", "userId": "u", "event": "E"}))
        .collect();
    assert_eq!(
        batch(json!({ "batch": at_limit })).unwrap().messages.len(),
        2_500
    );
}

#[test]
fn not_json_and_missing_batch_are_distinct_errors() {
    let err = parse_batch(b"{nope", now(), &Limits::default()).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidJson);
    let err = batch(json!({"messages": []})).unwrap_err();
    assert_eq!(err.details[0].field, "batch");
}

#[test]
fn single_endpoint_implies_type_and_rejects_a_contradiction() {
    let body = json!({"userId": "u", "event": "Signed Up", "writeKey": "k"}).to_string();
    let p = parse_single(
        body.as_bytes(),
        MessageType::Track,
        now(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(p.messages[0].kind, MessageType::Track);
    assert_eq!(p.write_key.as_deref(), Some("k"));

    let body = json!({"type": "identify", "userId": "u"}).to_string();
    let err = parse_single(
        body.as_bytes(),
        MessageType::Track,
        now(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.details[0].field, "type");
}

#[test]
fn stored_form_round_trips_with_segment_field_names() {
    let p = batch(
        json!({"batch": [{"type": "track", "userId": "u", "anonymousId": "a", "event": "E",
        "messageId": "m-1", "properties": {"channel": "store"}}]}),
    )
    .unwrap();
    let m = &p.messages[0];
    assert_eq!(m.channel, Channel::Store);
    let json = serde_json::to_value(m).unwrap();
    for field in [
        "messageId",
        "userId",
        "anonymousId",
        "receivedAt",
        "timestamp",
        "type",
        "channel",
    ] {
        assert!(json.get(field).is_some(), "missing {field} in {json}");
    }
    let back: Message = serde_json::from_value(json).unwrap();
    assert_eq!(&back, m);
}

fn single_track(body: &str) -> Result<Payload, BatchError> {
    parse_single(
        body.as_bytes(),
        MessageType::Track,
        now(),
        &Limits::default(),
    )
}

fn fields(err: &BatchError) -> Vec<&str> {
    err.details.iter().map(|d| d.field.as_str()).collect()
}

#[test]
fn a_key_repeated_in_one_object_is_refused_with_its_path() {
    let err = single_track(
        r#"{"userId": "u", "event": "E", "properties": {"revenue": 10, "revenue": 1e9}}"#,
    )
    .expect_err("duplicate key");
    assert_eq!(err.code, ErrorCode::ValidationFailed);
    assert_eq!(fields(&err), ["properties.revenue"]);
    let err = parse_batch(
        br#"{"batch": [{"type": "track", "userId": "u", "event": "E"},
                        {"type": "track", "userId": "u", "userId": "v", "event": "E"}]}"#,
        now(),
        &Limits::default(),
    )
    .expect_err("duplicate key in the second message");
    assert_eq!(err.details[0].index, Some(1));
    assert_eq!(fields(&err), ["userId"]);
    // The envelope's own keys and its shared context are checked too.
    for body in [
        r#"{"batch": [], "batch": []}"#,
        r#"{"context": {"ip": "1", "ip": "2"}, "batch": []}"#,
    ] {
        let err = parse_batch(body.as_bytes(), now(), &Limits::default())
            .expect_err("duplicate key in the envelope");
        assert_eq!(err.code, ErrorCode::InvalidJson, "{body}");
        assert_eq!(err.details.len(), 1, "{body}: {err:?}");
    }
    // Equal keys in different objects are fine.
    assert!(
        single_track(
            r#"{"userId": "u", "event": "E", "properties": {"a": {"k": 1}, "b": {"k": 2}}}"#
        )
        .is_ok()
    );
}

#[test]
fn identifiers_and_names_have_length_limits_in_bytes() {
    let long = "x".repeat(MAX_IDENTIFIER_BYTES + 1);
    let fits = "x".repeat(MAX_IDENTIFIER_BYTES);
    for (field, body) in [
        ("userId", json!({"userId": long, "event": "E"})),
        ("anonymousId", json!({"anonymousId": long, "event": "E"})),
        (
            "messageId",
            json!({"userId": "u", "messageId": long, "event": "E"}),
        ),
        ("event", json!({"userId": "u", "event": long})),
        (
            "traits.email",
            json!({"userId": "u", "event": "E", "traits": {"email": long}}),
        ),
        (
            "context.traits.phone",
            json!({"userId": "u", "event": "E", "context": {"traits": {"phone": long}}}),
        ),
        (
            "context.externalIds[1].id",
            json!({"userId": "u", "event": "E", "context": {"externalIds": [
            {"type": "card", "id": "1"}, {"type": "card", "id": long}]}}),
        ),
    ] {
        let err = single_track(&body.to_string()).expect_err(field);
        assert_eq!(fields(&err), [field], "{err:?}");
        assert!(
            err.details[0].reason.contains("at most 256 allowed"),
            "{err:?}"
        );
    }
    // Multi-byte characters count in bytes: 129 "è" are 258 bytes.
    let accented = "è".repeat(129);
    let err = single_track(&json!({"userId": accented, "event": "E"}).to_string())
        .expect_err("258 bytes");
    assert_eq!(fields(&err), ["userId"]);
    let ok = single_track(&json!({"userId": fits, "messageId": fits, "event": "E"}).to_string())
        .expect("256 bytes fit");
    assert_eq!(ok.messages[0].user_id.as_deref().map(str::len), Some(256));
    let name = "n".repeat(MAX_NAME_BYTES + 1);
    let err = parse_single(
        json!({"userId": "u", "name": name}).to_string().as_bytes(),
        MessageType::Page,
        now(),
        &Limits::default(),
    )
    .expect_err("page name too long");
    assert_eq!(fields(&err), ["name"]);
}

#[test]
fn times_before_1900_are_refused_and_far_future_times_corrected() {
    for (field, body) in [
        (
            "timestamp",
            json!({"userId": "u", "event": "E", "timestamp": "0000-01-01T00:00:00Z"}),
        ),
        (
            "timestamp",
            json!({"userId": "u", "event": "E", "timestamp": "1899-12-31T23:59:59Z"}),
        ),
        (
            "originalTimestamp",
            json!({"userId": "u", "event": "E", "originalTimestamp": "0001-01-01T00:00:00Z"}),
        ),
        (
            "sentAt",
            json!({"userId": "u", "event": "E", "sentAt": "1000-01-01T00:00:00Z"}),
        ),
        // A sentAt far ahead of the event would move it back before 1900.
        (
            "sentAt",
            json!({"userId": "u", "event": "E", "timestamp": "1950-01-01T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"}),
        ),
    ] {
        let err = single_track(&body.to_string()).expect_err(field);
        assert_eq!(fields(&err), [field], "{body}: {err:?}");
    }
    let at = |body: serde_json::Value| {
        single_track(&body.to_string()).expect("valid").messages[0].clone()
    };
    // 1900 itself and old history are fine (imports of the 1990s).
    assert_eq!(
        at(json!({"userId": "u", "event": "E", "timestamp": "1900-01-01T00:00:00Z"})).timestamp,
        earliest_event_time()
    );
    // Year 9999 without sentAt: it happened when it arrived; the device's reading is kept.
    let future = at(json!({"userId": "u", "event": "E", "timestamp": "9999-01-01T00:00:00Z"}));
    assert_eq!(future.timestamp, now());
    assert_eq!(
        future
            .original_timestamp
            .map(|t| t.format("%Y").to_string()),
        Some("9999".into())
    );
    // Within the allowed skew (24 h by default) the time is kept as sent.
    let ahead = now() + chrono::Duration::hours(23);
    let kept =
        at(json!({"userId": "u", "event": "E", "timestamp": crate::format_timestamp(&ahead)}));
    assert_eq!(kept.timestamp, ahead);
    let tight = Limits {
        max_clock_skew: chrono::Duration::hours(1),
        ..Limits::default()
    };
    let body = json!({"userId": "u", "event": "E", "timestamp": crate::format_timestamp(&ahead)});
    let corrected = parse_single(
        body.to_string().as_bytes(),
        MessageType::Track,
        now(),
        &tight,
    )
    .expect("valid");
    assert_eq!(corrected.messages[0].timestamp, now());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever bytes arrive, parsing answers with messages or an error, never a panic.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_batch(&body, now(), &Limits::default());
            let _ = parse_single(&body, MessageType::Track, now(), &Limits::default());
        }

        /// Skew correction keeps the gap between event and send exactly.
        #[test]
        fn skew_correction_preserves_the_client_side_gap(gap_ms in 0i64..86_400_000, skew_ms in -86_400_000i64..86_400_000) {
            let sent = now() + chrono::Duration::milliseconds(skew_ms);
            let original = sent - chrono::Duration::milliseconds(gap_ms);
            let p = batch(json!({"sentAt": crate::format_timestamp(&sent), "batch": [
                {"type": "track", "userId": "u", "event": "E", "timestamp": crate::format_timestamp(&original)}]})).unwrap();
            prop_assert_eq!((now() - p.messages[0].timestamp).num_milliseconds(), gap_ms);
        }
    }
}
