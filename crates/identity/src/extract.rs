use std::fmt;

use prossimo_model::{Message, MessageType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::IdentityConfig;

/// Identifier kinds with built-in meaning. Any other kind (from `context.externalIds` or a
/// configured trait) is an external identifier.
pub mod kinds {
    pub const USER_ID: &str = "user_id";
    pub const ANONYMOUS_ID: &str = "anonymous_id";
    pub const EMAIL: &str = "email";
    pub const PHONE: &str = "phone";
    pub const GROUP: &str = "group";
}

/// One normalised identifier, e.g. `email:anna@example.it`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    pub kind: String,
    pub value: String,
}

impl Identifier {
    pub fn new(kind: impl Into<String>, value: impl Into<String>) -> Self {
        Identifier {
            kind: kind.into(),
            value: value.into(),
        }
    }

    /// Which identifier decides the profile an event belongs to when a merge is refused:
    /// the most specific one the message carries.
    pub fn priority(&self) -> u8 {
        match self.kind.as_str() {
            kinds::USER_ID => 0,
            kinds::EMAIL => 1,
            kinds::PHONE => 2,
            kinds::ANONYMOUS_ID => 4,
            _ => 3,
        }
    }

    /// Parses `kind:value` (the form used in URLs and the CLI), normalising the value.
    pub fn parse_key(key: &str, config: &IdentityConfig) -> Option<Identifier> {
        let (kind, value) = key.split_once(':')?;
        let kind = kind.trim().to_ascii_lowercase();
        if kind.is_empty() {
            return None;
        }
        let value = normalise(&kind, value, config)?;
        Some(Identifier { kind, value })
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// The identifiers of one message, normalised, with junk separated out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    /// Identifiers that link profiles.
    pub ids: Vec<Identifier>,
    /// An alias call's `previousId`: a known `user_id`, otherwise an `anonymous_id`.
    pub previous_id: Option<String>,
    /// Groups (accounts) the person belongs to; they never merge people.
    pub groups: Vec<String>,
    /// Values refused as identifiers, with the reason.
    pub ignored: Vec<(Identifier, String)>,
}

impl Extracted {
    /// Every identifier whose current owner the store must load before resolving.
    pub fn lookup_keys(&self) -> impl Iterator<Item = Identifier> + '_ {
        let previous = self.previous_id.iter().flat_map(|p| {
            [
                Identifier::new(kinds::USER_ID, p.clone()),
                Identifier::new(kinds::ANONYMOUS_ID, p.clone()),
            ]
        });
        self.ids.iter().cloned().chain(previous)
    }

    /// True when nothing in the message can identify a person.
    pub fn is_anonymous(&self) -> bool {
        self.ids.is_empty() && self.previous_id.is_none()
    }

    /// Why nothing identifies the person, when nothing does: the reasons every value was
    /// refused, joined. `None` when the message has a usable identifier.
    pub fn unusable_reason(&self) -> Option<String> {
        self.is_anonymous().then(|| {
            let reasons: Vec<&str> = self.ignored.iter().map(|(_, why)| why.as_str()).collect();
            reasons.join("; ")
        })
    }
}

/// Normalises a raw value for its kind. `None` when the value cannot be an identifier of
/// that kind at all (an e-mail without `@`).
pub fn normalise(kind: &str, raw: &str, config: &IdentityConfig) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return None;
    }
    match kind {
        kinds::EMAIL => {
            let lowered = trimmed.to_lowercase();
            let (local, domain) = lowered.split_once('@')?;
            (!local.is_empty() && domain.contains('.') && !domain.starts_with('.'))
                .then_some(lowered)
        }
        kinds::PHONE => normalise_phone(trimmed, config),
        _ => Some(trimmed.to_owned()),
    }
}

/// E.164 when the number parses (with the configured default region for national numbers);
/// otherwise the digits with any leading `+`, so the same number written two ways still
/// matches.
fn normalise_phone(raw: &str, config: &IdentityConfig) -> Option<String> {
    if let Ok(number) = phonenumber::parse(config.phone_region(), raw)
        && phonenumber::is_valid(&number)
    {
        return Some(number.format().mode(phonenumber::Mode::E164).to_string());
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 5 {
        return None;
    }
    Some(if raw.starts_with('+') {
        format!("+{digits}")
    } else {
        digits
    })
}

/// Reads the identifiers a message carries.
pub fn extract(message: &Message, config: &IdentityConfig) -> Extracted {
    let mut out = Extracted::default();
    let add = |kind: &str, raw: &str, out: &mut Extracted| {
        // Placeholders are recognised as sent, before normalisation can reshape them.
        let reason = config.junk_reason(raw);
        let normalised = if reason.is_none() {
            normalise(kind, raw, config)
        } else {
            None
        };
        match (reason, normalised) {
            (Some(reason), _) => out.ignored.push((Identifier::new(kind, raw), reason)),
            (None, None) => out.ignored.push((
                Identifier::new(kind, raw),
                format!("{raw:?} is not a valid {kind}"),
            )),
            (None, Some(value)) => match config.junk_reason(&value) {
                Some(reason) => out.ignored.push((Identifier::new(kind, value), reason)),
                None => {
                    let id = Identifier::new(kind, value);
                    if !out.ids.contains(&id) {
                        out.ids.push(id);
                    }
                }
            },
        }
    };
    if let Some(u) = &message.user_id {
        add(kinds::USER_ID, u, &mut out);
    }
    if let Some(a) = &message.anonymous_id {
        add(kinds::ANONYMOUS_ID, a, &mut out);
    }
    let traits: Vec<(&String, &Value)> = message.person_traits().collect();
    for (key, value) in &traits {
        let kind = match key.as_str() {
            "email" => kinds::EMAIL,
            "phone" => kinds::PHONE,
            k if config.trait_identifiers().iter().any(|t| t == k) => k,
            _ => continue,
        };
        if let Some(raw) = scalar_string(value) {
            add(kind, &raw, &mut out);
        }
    }
    if let Some(external) = message.context.get("externalIds").and_then(Value::as_array) {
        for entry in external {
            let kind = entry.get("type").and_then(Value::as_str).map(external_kind);
            let raw = entry.get("id").and_then(scalar_string);
            if let (Some(kind), Some(raw)) = (kind, raw)
                && !kind.is_empty()
            {
                add(&kind, &raw, &mut out);
            }
        }
    }
    if message.kind == MessageType::Alias
        && let Some(previous) = &message.previous_id
    {
        match config.junk_reason(previous) {
            None => out.previous_id = Some(previous.trim().to_owned()),
            Some(reason) => out
                .ignored
                .push((Identifier::new("previous_id", previous.clone()), reason)),
        }
    }
    if let Some(group) = &message.group_id {
        out.groups.push(group.trim().to_owned());
    }
    out.ids
        .sort_by(|a, b| (a.priority(), a).cmp(&(b.priority(), b)));
    out
}

/// External id types become identifier kinds: lowercase, with `-`/spaces as `_`.
/// Segment's `userId`/`email` types map onto the built-in kinds.
fn external_kind(raw: &str) -> String {
    let kind = raw.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    match kind.as_str() {
        "userid" => kinds::USER_ID.to_owned(),
        "anonymousid" => kinds::ANONYMOUS_ID.to_owned(),
        _ => kind,
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use prossimo_model::{Limits, parse_batch};
    use serde_json::json;

    use super::*;

    fn message(v: serde_json::Value) -> Message {
        let body = json!({ "batch": [v] }).to_string();
        parse_batch(body.as_bytes(), Utc::now(), &Limits::default())
            .unwrap()
            .messages
            .remove(0)
    }

    #[test]
    fn reads_and_normalises_every_identifier_kind() {
        let config = IdentityConfig::default()
            .with_phone_region("IT")
            .unwrap()
            .with_trait_identifiers(["loyalty_card".to_string()]);
        let m = message(json!({
            "type": "identify", "userId": " 42 ", "anonymousId": "dev-1",
            "traits": {"email": " Anna.Rossi@Example.IT ", "phone": "347 123 4567", "loyalty_card": 998877},
            "context": {"externalIds": [{"id": "abc", "type": "ga4 client id", "collection": "users", "encoding": "none"}]}
        }));
        let got: Vec<String> = extract(&m, &config)
            .ids
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "user_id:42",
                "email:anna.rossi@example.it",
                "phone:+393471234567",
                "ga4_client_id:abc",
                "loyalty_card:998877",
                "anonymous_id:dev-1",
            ]
        );
    }

    #[test]
    fn junk_values_are_ignored_with_a_reason() {
        let config = IdentityConfig::default()
            .with_blocked_patterns(["^noreply@".to_string()])
            .unwrap();
        let m = message(json!({
            "type": "identify", "userId": "undefined", "anonymousId": "a-1",
            "traits": {"email": "noreply@shop.it", "phone": "12"}
        }));
        let e = extract(&m, &config);
        assert_eq!(e.ids, vec![Identifier::new("anonymous_id", "a-1")]);
        let reasons: Vec<&str> = e.ignored.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].contains("placeholder"));
        assert!(reasons.iter().any(|r| r.contains("blocked pattern")));
    }

    #[test]
    fn a_default_placeholder_can_be_allowed_where_it_is_a_real_id() {
        let m = message(json!({"type": "identify", "userId": "0", "anonymousId": "a-1"}));
        let strict = extract(&m, &IdentityConfig::default());
        assert_eq!(strict.ids, vec![Identifier::new("anonymous_id", "a-1")]);
        let allowed = IdentityConfig::default().with_allowed_values([" 0 ".to_string()]);
        let e = extract(&m, &allowed);
        assert!(
            e.ids.contains(&Identifier::new("user_id", "0")),
            "{:?}",
            e.ids
        );
        assert!(e.ignored.is_empty());
        // Only that value: the other placeholders stay refused.
        assert!(allowed.junk_reason("undefined").is_some());
    }

    #[test]
    fn same_phone_written_two_ways_matches() {
        let config = IdentityConfig::default().with_phone_region("IT").unwrap();
        assert_eq!(
            normalise(kinds::PHONE, "+39 347 1234567", &config),
            normalise(kinds::PHONE, "347-1234567", &config)
        );
        let bare = IdentityConfig::default();
        assert_eq!(
            normalise(kinds::PHONE, "+39 347 1234567", &bare).as_deref(),
            Some("+393471234567")
        );
    }

    #[test]
    fn keys_parse_with_normalisation() {
        let config = IdentityConfig::default();
        assert_eq!(
            Identifier::parse_key("email: Anna@Example.it", &config),
            Some(Identifier::new("email", "anna@example.it"))
        );
        assert_eq!(Identifier::parse_key("nocolon", &config), None);
    }
}
