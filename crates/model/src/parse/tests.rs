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
        {"type": "track", "userId": "u", "event": "E", "messageId": "x".repeat(101)},
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
