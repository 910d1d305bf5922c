use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Channel;

/// The Segment e-commerce event whose revenue counts as an order.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
}

impl MessageType {
    pub const ALL: [MessageType; 6] = [
        MessageType::Identify,
        MessageType::Track,
        MessageType::Page,
        MessageType::Screen,
        MessageType::Group,
        MessageType::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Identify => "identify",
            MessageType::Track => "track",
            MessageType::Page => "page",
            MessageType::Screen => "screen",
            MessageType::Group => "group",
            MessageType::Alias => "alias",
        }
    }

    pub fn parse(s: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A validated, normalised message: every field an SDK may send, plus what the server adds
/// (`receivedAt`, the skew-corrected `timestamp`, the `channel`). Serialises with the Segment
/// field names, so what is stored and returned is what a Segment user expects to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: MessageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    /// Event time after clock-skew correction.
    #[serde(with = "crate::time::serde_millis")]
    pub timestamp: DateTime<Utc>,
    /// The device's own clock reading, as sent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::serde_millis_opt"
    )]
    pub original_timestamp: Option<DateTime<Utc>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::time::serde_millis_opt"
    )]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::time::serde_millis")]
    pub received_at: DateTime<Utc>,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub context: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub integrations: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub traits: Map<String, Value>,
}

impl Message {
    /// Traits that describe the person: `traits` of an identify call and `context.traits` of
    /// any call. (A group call's `traits` describe the group, not the person.)
    pub fn person_traits(&self) -> impl Iterator<Item = (&String, &Value)> {
        let own = match self.kind {
            MessageType::Identify => Some(&self.traits),
            _ => None,
        };
        let context = self.context.get("traits").and_then(Value::as_object);
        own.into_iter().chain(context).flat_map(|m| m.iter())
    }
}

/// Numbers arrive as JSON numbers or as numeric strings (CSV exports, some SDK wrappers).
pub(crate) fn number_like(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}
