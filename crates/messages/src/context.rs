//! What a template is rendered over, as Liquid sees it. Liquid as marketers write it
//! (Shopify, Braze, Customer.io) reads a missing value as nil: `{{ profile.first_name |
//! default: "cliente" }}` falls back, `{{ event.coupon }}` prints nothing. The `liquid`
//! crate refuses a missing key instead ("Unknown index"), so the context is a tree of
//! its own whose objects answer nil for any key they lack.

use std::collections::BTreeMap;
use std::fmt;

use liquid::model::{
    ArrayView, DisplayCow, KString, KStringCow, ScalarCow, State, Value as LiquidValue,
};
use liquid::{ObjectView, ValueView};
use serde_json::Value;

/// A JSON value as Liquid reads it, missing keys being nil.
#[derive(Debug, Clone, PartialEq)]
pub enum Context {
    /// What is not there: nil, and nil again at any key below it.
    Missing,
    Scalar(LiquidValue),
    Array(Vec<Context>),
    Object(BTreeMap<KString, Context>),
}

static MISSING: Context = Context::Missing;

impl Context {
    /// The JSON `value` (an object at the top: `profile`, `event`, …).
    pub fn from_json(value: &Value) -> Context {
        match value {
            Value::Array(items) => Context::Array(items.iter().map(Context::from_json).collect()),
            Value::Object(fields) => Context::Object(
                fields
                    .iter()
                    .map(|(k, v)| (KString::from_ref(k), Context::from_json(v)))
                    .collect(),
            ),
            scalar => Context::Scalar(liquid::model::to_value(scalar).unwrap_or(LiquidValue::Nil)),
        }
    }

    /// The value at `path` (`["event", "properties", "products"]`) as JSON: null when
    /// missing.
    pub fn json_at(&self, path: &[String]) -> Value {
        let mut at = self;
        for key in path {
            at = match at {
                Context::Object(fields) => fields.get(key.as_str()).unwrap_or(&MISSING),
                Context::Array(_) => key
                    .parse::<i64>()
                    .ok()
                    .and_then(|i| at.item(i))
                    .unwrap_or(&MISSING),
                _ => &MISSING,
            };
        }
        at.to_json()
    }

    fn to_json(&self) -> Value {
        match self {
            Context::Missing => Value::Null,
            Context::Scalar(v) => serde_json::to_value(v).unwrap_or(Value::Null),
            Context::Array(items) => Value::Array(items.iter().map(Context::to_json).collect()),
            Context::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    fn to_liquid(&self) -> LiquidValue {
        match self {
            Context::Missing => LiquidValue::Nil,
            Context::Scalar(v) => v.clone(),
            Context::Array(items) => {
                LiquidValue::Array(items.iter().map(Context::to_liquid).collect())
            }
            Context::Object(fields) => LiquidValue::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_liquid()))
                    .collect(),
            ),
        }
    }
}

/// A composite rendered through its plain Liquid value.
struct Rendered(LiquidValue, bool);

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 {
            write!(f, "{}", self.0.source())
        } else {
            write!(f, "{}", self.0.render())
        }
    }
}

impl ValueView for Context {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> DisplayCow<'_> {
        match self {
            Context::Missing => DisplayCow::Borrowed(&""),
            Context::Scalar(v) => v.render(),
            _ => DisplayCow::Owned(Box::new(Rendered(self.to_liquid(), false))),
        }
    }

    fn source(&self) -> DisplayCow<'_> {
        match self {
            Context::Missing => DisplayCow::Borrowed(&"nil"),
            Context::Scalar(v) => v.source(),
            _ => DisplayCow::Owned(Box::new(Rendered(self.to_liquid(), true))),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Context::Missing => "nil",
            Context::Scalar(v) => v.type_name(),
            Context::Array(_) => "array",
            Context::Object(_) => "object",
        }
    }

    fn query_state(&self, state: State) -> bool {
        match self {
            Context::Missing => !matches!(state, State::Truthy),
            Context::Scalar(v) => v.query_state(state),
            Context::Array(items) => match state {
                State::Truthy => true,
                State::DefaultValue | State::Empty | State::Blank => items.is_empty(),
            },
            Context::Object(fields) => match state {
                State::Truthy => true,
                State::DefaultValue | State::Empty | State::Blank => fields.is_empty(),
            },
        }
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        match self {
            Context::Missing => KStringCow::from_static(""),
            Context::Scalar(v) => v.to_kstr(),
            _ => KStringCow::from_string(self.to_liquid().to_kstr().as_str().to_owned()),
        }
    }

    fn to_value(&self) -> LiquidValue {
        self.to_liquid()
    }

    fn as_scalar(&self) -> Option<ScalarCow<'_>> {
        match self {
            Context::Scalar(v) => v.as_scalar(),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&dyn ArrayView> {
        match self {
            Context::Array(_) => Some(self),
            _ => None,
        }
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        match self {
            Context::Object(_) | Context::Missing => Some(self),
            _ => None,
        }
    }

    fn as_state(&self) -> Option<State> {
        None
    }

    fn is_nil(&self) -> bool {
        match self {
            Context::Missing => true,
            Context::Scalar(v) => v.is_nil(),
            _ => false,
        }
    }
}

impl ArrayView for Context {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        match self {
            Context::Array(items) => items.len() as i64,
            _ => 0,
        }
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Context::Array(items) => Box::new(items.iter().map(|v| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn contains_key(&self, index: i64) -> bool {
        self.item(index).is_some()
    }

    fn get(&self, index: i64) -> Option<&dyn ValueView> {
        self.item(index).map(|v| v as &dyn ValueView)
    }
}

impl Context {
    /// An array's item; a negative index counts from the end, as in Liquid.
    fn item(&self, index: i64) -> Option<&Context> {
        let Context::Array(items) = self else {
            return None;
        };
        let at = if index < 0 {
            items.len().checked_sub(index.unsigned_abs() as usize)?
        } else {
            usize::try_from(index).ok()?
        };
        <[Context]>::get(items, at)
    }
}

impl ObjectView for Context {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        match self {
            Context::Object(fields) => fields.len() as i64,
            _ => 0,
        }
    }

    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        match self {
            Context::Object(fields) => Box::new(fields.keys().map(|k| k.as_ref().into())),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        match self {
            Context::Object(fields) => Box::new(fields.values().map(|v| v as &dyn ValueView)),
            _ => Box::new(std::iter::empty()),
        }
    }

    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        match self {
            Context::Object(fields) => Box::new(
                fields
                    .iter()
                    .map(|(k, v)| (k.as_ref().into(), v as &dyn ValueView)),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }

    /// Every key is there: a missing one is nil.
    fn contains_key(&self, _index: &str) -> bool {
        true
    }

    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        match self {
            Context::Object(fields) => Some(fields.get(index).unwrap_or(&MISSING)),
            Context::Missing => Some(&MISSING),
            _ => None,
        }
    }
}
