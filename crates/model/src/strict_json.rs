//! JSON values with duplicate object keys refused.
//!
//! `serde_json::Value` keeps the last of two equal keys, so `{"revenue": 10, "revenue": 1e9}`
//! would be stored as whatever the last copy says while a proxy or a log in front of us read
//! the first: a classic way to smuggle a value past a check. Every message body is parsed
//! through [`Strict`], which builds the same `Value` but fails on the second copy of a key
//! and names where it is (`properties.revenue`). The path is a linked list on the stack, so
//! the common case allocates nothing beyond the value itself.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON value in which no object repeats a key.
pub(crate) struct Strict(pub Value);

impl<'de> de::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Seed { at: &Path::Root }
            .deserialize(deserializer)
            .map(Strict)
    }
}

/// Parses `text` as one JSON value, refusing duplicate keys.
pub(crate) fn from_str(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// The prefix of a duplicate-key error, so callers can tell it from a syntax error.
pub(crate) const DUPLICATE_KEY: &str = "duplicate key ";

/// Where in the document a value sits.
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, key) => write!(f, "{key}"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

struct Seed<'a> {
    at: &'a Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        loop {
            let at = Path::Index(self.at, items.len());
            match seq.next_element_seed(Seed { at: &at })? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = Path::Key(self.at, &key);
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_KEY}{at}")));
            }
            let value = map.next_value_seed(Seed { at: &at })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_serde_json_parses_them() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": {"d": 1e300}}"#;
        let strict = from_str(text).expect("valid JSON");
        let loose: Value = serde_json::from_str(text).expect("valid JSON");
        assert_eq!(strict, loose);
    }

    #[test]
    fn a_repeated_key_is_refused_with_its_path() {
        let err = from_str(r#"{"properties": {"items": [{"sku": 1}, {"sku": 2, "sku": 3}]}}"#)
            .expect_err("duplicate key");
        assert!(
            err.to_string()
                .starts_with("duplicate key properties.items[1].sku"),
            "{err}"
        );
        let err = from_str(r#"{"userId": "a", "userId": "b"}"#).expect_err("duplicate key");
        assert!(err.to_string().starts_with("duplicate key userId"), "{err}");
        // The same key in two different objects is fine.
        assert!(from_str(r#"{"a": {"k": 1}, "b": {"k": 2}}"#).is_ok());
    }
}
