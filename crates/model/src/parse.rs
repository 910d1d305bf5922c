use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::message::number_like;
use crate::strict_json::{self, DUPLICATE_KEY, Strict};
use crate::{BatchError, Channel, ErrorCode, FieldError, Message, MessageType, parse_timestamp};

/// Size and time limits of the tracking API. The size defaults are Segment's own (32 KB per
/// message, 500 KB per batch) raised slightly, so anything an official SDK produces fits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_batch_bytes: usize,
    pub max_batch_messages: usize,
    /// How far after `receivedAt` an event time may lie (a device clock running ahead, with
    /// no `sentAt` to correct it). A later time is corrected to `receivedAt`; the device's
    /// reading stays in `originalTimestamp`.
    pub max_clock_skew: TimeDelta,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 32 * 1024,
            max_batch_bytes: 1024 * 1024,
            max_batch_messages: 2_500,
            max_clock_skew: TimeDelta::hours(24),
        }
    }
}

/// The longest identifier (`userId`, `anonymousId`, `messageId`, `groupId`, `previousId`,
/// e-mail, phone, external ids), in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 256;
/// The longest event name (`event`), in bytes.
pub const MAX_EVENT_NAME_BYTES: usize = 256;
/// The longest page or screen `name` and `category`, in bytes.
pub const MAX_NAME_BYTES: usize = 1024;

/// No event, send or device time lies before this: an earlier one is a zeroed or broken
/// clock (year 0000 from a default date), and would make cohorts start in antiquity.
pub fn earliest_event_time() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(EARLIEST_EVENT_SECONDS, 0).unwrap_or_default()
}

/// 1900-01-01T00:00:00Z.
const EARLIEST_EVENT_SECONDS: i64 = -2_208_988_800;

/// Parses one JSON document the way message bodies are parsed: a key repeated inside one
/// object is an error naming its path (`properties.revenue`), never "the last one wins".
pub fn parse_json(text: &str) -> Result<Value, String> {
    strict_json::from_str(text).map_err(|e| e.to_string())
}

/// What a request body turned into: the messages, and the write key if the body carried one.
#[derive(Debug)]
pub struct Payload {
    pub write_key: Option<String>,
    pub messages: Vec<Message>,
}

/// At most this many field errors are reported per request; the rest are counted.
const MAX_REPORTED_ERRORS: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow)]
    batch: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    context: Option<Strict>,
    #[serde(default)]
    integrations: Option<Strict>,
    #[serde(default)]
    sent_at: Option<Value>,
    #[serde(default)]
    write_key: Option<Value>,
}

/// Envelope values that apply to every message of a batch.
#[derive(Default)]
struct Shared {
    context: Map<String, Value>,
    integrations: Map<String, Value>,
    sent_at: Option<DateTime<Utc>>,
}

/// Parses a `/v1/batch` (or `/v1/import`) body. Either every message is valid and returned,
/// or the error lists every invalid field and nothing is to be stored.
pub fn parse_batch(
    body: &[u8],
    received_at: DateTime<Utc>,
    limits: &Limits,
) -> Result<Payload, BatchError> {
    check_body_size(body, limits)?;
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| match duplicate_key(&e) {
        Some(path) => BatchError::field(
            ErrorCode::InvalidJson,
            None,
            &path,
            "this key appears twice in one object",
        ),
        None => BatchError::new(
            ErrorCode::InvalidJson,
            format!("request body is not a JSON batch: {e}"),
        ),
    })?;
    let Some(batch) = envelope.batch else {
        return Err(BatchError::field(
            ErrorCode::ValidationFailed,
            None,
            "batch",
            "required: an array of messages",
        ));
    };
    if batch.len() > limits.max_batch_messages {
        return Err(BatchError::field(
            ErrorCode::PayloadTooLarge,
            None,
            "batch",
            format!(
                "{} messages; at most {} per batch",
                batch.len(),
                limits.max_batch_messages
            ),
        ));
    }
    let mut errors = Vec::new();
    let shared = Shared {
        context: object_field(envelope.context.map(|s| s.0), None, "context", &mut errors),
        integrations: object_field(
            envelope.integrations.map(|s| s.0),
            None,
            "integrations",
            &mut errors,
        ),
        sent_at: timestamp_field(envelope.sent_at.as_ref(), None, "sentAt", &mut errors),
    };
    let write_key = string_field(envelope.write_key.as_ref(), None, "writeKey", &mut errors);
    let mut messages = Vec::with_capacity(batch.len());
    for (index, raw) in batch.into_iter().enumerate() {
        if let Some(m) = parse_raw(raw, index, None, &shared, received_at, limits, &mut errors) {
            messages.push(m);
        }
    }
    finish(write_key, messages, errors)
}

/// Parses the body of a single-message endpoint (`/v1/track` and friends), whose type is
/// implied by the path.
pub fn parse_single(
    body: &[u8],
    implied: MessageType,
    received_at: DateTime<Utc>,
    limits: &Limits,
) -> Result<Payload, BatchError> {
    check_body_size(body, limits)?;
    let raw: &RawValue = serde_json::from_slice(body).map_err(|e| {
        BatchError::new(
            ErrorCode::InvalidJson,
            format!("request body is not JSON: {e}"),
        )
    })?;
    let mut errors = Vec::new();
    let write_key = serde_json::from_str::<Map<String, Value>>(raw.get())
        .ok()
        .and_then(|m| string_field(m.get("writeKey"), Some(0), "writeKey", &mut errors));
    let message = parse_raw(
        raw,
        0,
        Some(implied),
        &Shared::default(),
        received_at,
        limits,
        &mut errors,
    );
    finish(write_key, message.into_iter().collect(), errors)
}

/// Validates one message given as a JSON value (the bulk importer's path). Field errors
/// carry index 0.
pub fn parse_value(
    value: Value,
    received_at: DateTime<Utc>,
    limits: &Limits,
) -> Result<Message, BatchError> {
    let mut errors = Vec::new();
    let size = value.to_string().len();
    let message = match value {
        _ if size > limits.max_message_bytes => {
            push(
                &mut errors,
                0,
                "message",
                format!(
                    "{size} bytes; at most {} bytes per message",
                    limits.max_message_bytes
                ),
            );
            None
        }
        Value::Object(obj) => build(
            obj,
            0,
            None,
            &Shared::default(),
            received_at,
            limits,
            &mut errors,
        ),
        other => {
            push(
                &mut errors,
                0,
                "message",
                format!("expected a JSON object, found {}", kind_of(&other)),
            );
            None
        }
    };
    match message {
        Some(m) if errors.is_empty() => Ok(m),
        _ => Err(BatchError::validation(errors)),
    }
}

fn check_body_size(body: &[u8], limits: &Limits) -> Result<(), BatchError> {
    if body.len() > limits.max_batch_bytes {
        return Err(BatchError::field(
            ErrorCode::PayloadTooLarge,
            None,
            "body",
            format!(
                "{} bytes; at most {} bytes per request",
                body.len(),
                limits.max_batch_bytes
            ),
        ));
    }
    Ok(())
}

fn finish(
    write_key: Option<String>,
    messages: Vec<Message>,
    mut errors: Vec<FieldError>,
) -> Result<Payload, BatchError> {
    if errors.is_empty() {
        return Ok(Payload {
            write_key,
            messages,
        });
    }
    if errors.len() > MAX_REPORTED_ERRORS {
        let more = errors.len() - MAX_REPORTED_ERRORS;
        errors.truncate(MAX_REPORTED_ERRORS);
        errors.push(FieldError {
            index: None,
            field: "batch".into(),
            reason: format!("{more} more errors not shown"),
        });
    }
    let mut err = BatchError::validation(errors);
    if err
        .details
        .iter()
        .any(|d| d.reason.contains("bytes; at most"))
    {
        err.code = ErrorCode::PayloadTooLarge;
    }
    Err(err)
}

fn parse_raw(
    raw: &RawValue,
    index: usize,
    implied: Option<MessageType>,
    shared: &Shared,
    received_at: DateTime<Utc>,
    limits: &Limits,
    errors: &mut Vec<FieldError>,
) -> Option<Message> {
    let len = raw.get().len();
    if len > limits.max_message_bytes {
        push(
            errors,
            index,
            "message",
            format!(
                "{len} bytes; at most {} bytes per message",
                limits.max_message_bytes
            ),
        );
        return None;
    }
    match strict_json::from_str(raw.get()) {
        Ok(Value::Object(obj)) => build(obj, index, implied, shared, received_at, limits, errors),
        Ok(other) => {
            push(
                errors,
                index,
                "message",
                format!("expected a JSON object, found {}", kind_of(&other)),
            );
            None
        }
        Err(e) => {
            match duplicate_key(&e) {
                Some(path) => push(errors, index, &path, "this key appears twice in one object"),
                None => push(errors, index, "message", format!("invalid JSON: {e}")),
            }
            None
        }
    }
}

/// The path of a repeated key, when that is what `e` reports (serde_json appends the
/// position to the message).
fn duplicate_key(e: &serde_json::Error) -> Option<String> {
    let text = e.to_string();
    let rest = text.split(" at line ").next().unwrap_or(&text);
    if let Some(path) = rest.strip_prefix(DUPLICATE_KEY) {
        return Some(path.to_owned());
    }
    // A field of the batch envelope itself, which serde's derive checks.
    let field = rest.strip_prefix("duplicate field `")?.strip_suffix('`')?;
    Some(field.to_owned())
}

fn build(
    mut obj: Map<String, Value>,
    index: usize,
    implied: Option<MessageType>,
    shared: &Shared,
    received_at: DateTime<Utc>,
    limits: &Limits,
    errors: &mut Vec<FieldError>,
) -> Option<Message> {
    let before = errors.len();
    let i = Some(index);

    let kind = match (obj.get("type"), implied) {
        (None | Some(Value::Null), Some(t)) => Some(t),
        (None | Some(Value::Null), None) => {
            push(
                errors,
                index,
                "type",
                "required: one of identify, track, page, screen, group, alias",
            );
            None
        }
        (Some(Value::String(s)), implied) => match (MessageType::parse(s), implied) {
            (Some(t), Some(expected)) if t != expected => {
                push(
                    errors,
                    index,
                    "type",
                    format!("{s:?} sent to the /v1/{} endpoint", expected.as_str()),
                );
                None
            }
            (Some(t), _) => Some(t),
            (None, _) => {
                push(
                    errors,
                    index,
                    "type",
                    format!(
                        "unknown type {s:?}: expected one of identify, track, page, screen, group, alias"
                    ),
                );
                None
            }
        },
        (Some(other), _) => {
            push(
                errors,
                index,
                "type",
                format!("expected a string, found {}", kind_of(other)),
            );
            None
        }
    };

    let user_id = id_field(obj.get("userId"), i, "userId", errors);
    let anonymous_id = id_field(obj.get("anonymousId"), i, "anonymousId", errors);
    if user_id.is_none()
        && anonymous_id.is_none()
        && !errors[before..].iter().any(|e| e.field.ends_with("Id"))
    {
        push(errors, index, "userId", "userId or anonymousId is required");
    }

    let message_id = match obj.get("messageId") {
        None | Some(Value::Null) => Some(uuid::Uuid::new_v4().to_string()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            push(errors, index, "messageId", "must not be empty");
            None
        }
        Some(Value::String(s)) if s.len() > MAX_IDENTIFIER_BYTES => {
            push(
                errors,
                index,
                "messageId",
                too_long(s.len(), MAX_IDENTIFIER_BYTES),
            );
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            push(
                errors,
                index,
                "messageId",
                format!("expected a string, found {}", kind_of(other)),
            );
            None
        }
    };

    let explicit_timestamp = timestamp_field(obj.get("timestamp"), i, "timestamp", errors);
    let original_timestamp =
        timestamp_field(obj.get("originalTimestamp"), i, "originalTimestamp", errors)
            .or(explicit_timestamp);
    let sent_at = timestamp_field(obj.get("sentAt"), i, "sentAt", errors).or(shared.sent_at);

    let event = bounded_string_field(obj.get("event"), i, "event", MAX_EVENT_NAME_BYTES, errors);
    let name = bounded_string_field(obj.get("name"), i, "name", MAX_NAME_BYTES, errors);
    let category = bounded_string_field(obj.get("category"), i, "category", MAX_NAME_BYTES, errors);
    let group_id = id_field(obj.get("groupId"), i, "groupId", errors);
    let previous_id = id_field(obj.get("previousId"), i, "previousId", errors);
    match kind {
        Some(MessageType::Track)
            if event.as_deref().is_none_or(|e| e.trim().is_empty())
                && !errors[before..].iter().any(|e| e.field == "event") =>
        {
            push(errors, index, "event", "required for track calls")
        }
        Some(MessageType::Group) if group_id.is_none() => {
            push(errors, index, "groupId", "required for group calls")
        }
        Some(MessageType::Alias) if previous_id.is_none() => {
            push(errors, index, "previousId", "required for alias calls")
        }
        Some(MessageType::Alias) if user_id.is_none() => {
            push(errors, index, "userId", "required for alias calls")
        }
        _ => {}
    }

    let mut context = shared.context.clone();
    context.extend(object_field(obj.remove("context"), i, "context", errors));
    let mut integrations = shared.integrations.clone();
    integrations.extend(object_field(
        obj.remove("integrations"),
        i,
        "integrations",
        errors,
    ));
    let properties = object_field(obj.remove("properties"), i, "properties", errors);
    let traits = object_field(obj.remove("traits"), i, "traits", errors);

    let channel = channel_of(&context, &properties, index, errors);
    check_nested_identifiers(&context, &traits, index, errors);

    if let Some(revenue) = properties.get("revenue").filter(|v| !v.is_null())
        && number_like(revenue).is_none()
    {
        push(
            errors,
            index,
            "properties.revenue",
            format!("expected a number, found {}", kind_of(revenue)),
        );
    }

    if errors.len() > before {
        return None;
    }
    // Clock-skew correction (Segment's rule): the device clock may be wrong, but the gap
    // between the event and the send is right, and `receivedAt` is our clock.
    let corrected = match (original_timestamp, sent_at) {
        (Some(original), Some(sent)) => received_at.checked_sub_signed(sent - original),
        (Some(original), None) => Some(original),
        (None, _) => Some(received_at),
    };
    let timestamp = match corrected {
        Some(t) if t >= earliest_event_time() => t,
        _ => {
            push(
                errors,
                index,
                "sentAt",
                "with this sentAt the event would have happened before 1900",
            );
            return None;
        }
    };
    // Still in the future once corrected (no sentAt, a clock far ahead): it happened now,
    // as far as anyone can tell (PostHog's rule too). Within the allowed skew the time is
    // kept; profiles never take a "last seen" later than `receivedAt` from it.
    let timestamp = if timestamp - received_at > limits.max_clock_skew {
        received_at
    } else {
        timestamp
    };
    Some(Message {
        message_id: message_id?,
        kind: kind?,
        user_id,
        anonymous_id,
        event,
        name,
        category,
        group_id,
        previous_id,
        timestamp,
        original_timestamp,
        sent_at,
        received_at,
        channel,
        context,
        integrations,
        properties,
        traits,
    })
}

fn channel_of(
    context: &Map<String, Value>,
    properties: &Map<String, Value>,
    index: usize,
    errors: &mut Vec<FieldError>,
) -> Channel {
    for (source, field) in [
        (context, "context.channel"),
        (properties, "properties.channel"),
    ] {
        match source.get("channel") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => match s.parse::<Channel>() {
                Ok(c) => return c,
                Err(reason) => push(errors, index, field, reason),
            },
            Some(other) => push(
                errors,
                index,
                field,
                format!("expected a string, found {}", kind_of(other)),
            ),
        }
    }
    context
        .get("library")
        .and_then(|l| l.get("name"))
        .and_then(Value::as_str)
        .map_or(Channel::Other, Channel::from_library)
}

fn push(errors: &mut Vec<FieldError>, index: usize, field: &str, reason: impl Into<String>) {
    errors.push(FieldError {
        index: Some(index),
        field: field.to_owned(),
        reason: reason.into(),
    });
}

fn push_at(errors: &mut Vec<FieldError>, index: Option<usize>, field: &str, reason: String) {
    errors.push(FieldError {
        index,
        field: field.to_owned(),
        reason,
    });
}

fn wrong_type(
    errors: &mut Vec<FieldError>,
    index: Option<usize>,
    field: &str,
    expected: &str,
    found: &Value,
) {
    push_at(
        errors,
        index,
        field,
        format!("expected {expected}, found {}", kind_of(found)),
    );
}

/// Identifiers are strings; SDKs in loosely typed languages send numbers too.
fn id_field(
    v: Option<&Value>,
    index: Option<usize>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) if s.len() > MAX_IDENTIFIER_BYTES => {
            push_at(
                errors,
                index,
                field,
                too_long(s.len(), MAX_IDENTIFIER_BYTES),
            );
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            wrong_type(errors, index, field, "a string or a number", other);
            None
        }
    }
}

fn too_long(bytes: usize, max: usize) -> String {
    format!("{bytes} bytes long, at most {max} allowed")
}

fn bounded_string_field(
    v: Option<&Value>,
    index: Option<usize>,
    field: &str,
    max_bytes: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let s = string_field(v, index, field, errors)?;
    if s.len() > max_bytes {
        push_at(errors, index, field, too_long(s.len(), max_bytes));
        return None;
    }
    Some(s)
}

/// Identifiers that sit inside `context` and `traits`: e-mail and phone traits (of the
/// person, or of the context) and `context.externalIds[].id`. Configured identifying
/// traits are checked where identifiers are extracted.
fn check_nested_identifiers(
    context: &Map<String, Value>,
    traits: &Map<String, Value>,
    index: usize,
    errors: &mut Vec<FieldError>,
) {
    let mut check = |field: String, value: Option<&Value>| {
        let len = match value {
            Some(Value::String(s)) => s.len(),
            Some(Value::Number(n)) => n.to_string().len(),
            _ => return,
        };
        if len > MAX_IDENTIFIER_BYTES {
            push(errors, index, &field, too_long(len, MAX_IDENTIFIER_BYTES));
        }
    };
    let context_traits = context.get("traits").and_then(Value::as_object);
    for key in ["email", "phone"] {
        check(format!("traits.{key}"), traits.get(key));
        check(
            format!("context.traits.{key}"),
            context_traits.and_then(|t| t.get(key)),
        );
    }
    if let Some(external) = context.get("externalIds").and_then(Value::as_array) {
        for (i, entry) in external.iter().enumerate() {
            check(format!("context.externalIds[{i}].id"), entry.get("id"));
        }
    }
}

fn string_field(
    v: Option<&Value>,
    index: Option<usize>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            wrong_type(errors, index, field, "a string", other);
            None
        }
    }
}

fn timestamp_field(
    v: Option<&Value>,
    index: Option<usize>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match parse_timestamp(s) {
            Ok(t) if t < earliest_event_time() => {
                push_at(
                    errors,
                    index,
                    field,
                    format!("{s:?} is before 1900: not a real event time"),
                );
                None
            }
            Ok(t) => Some(t),
            Err(reason) => {
                push_at(errors, index, field, reason);
                None
            }
        },
        Some(other) => {
            wrong_type(errors, index, field, "an ISO-8601 string", other);
            None
        }
    }
}

fn object_field(
    v: Option<Value>,
    index: Option<usize>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Map<String, Value> {
    match v {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => {
            wrong_type(errors, index, field, "an object", &other);
            Map::new()
        }
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
