//! One configuration from three layers: `prossimo.toml`, then `PROSSIMO_*` environment
//! variables, then `--set key=value` flags (and the named flags such as `--listen`), each
//! overriding the one before, into the one [`Settings`](crate::config::Settings) struct.
//!
//! Every setting has a dotted key (`ingest.max_batch_bytes`); its environment variable is
//! the key upper-cased with `__` between the levels (`PROSSIMO_INGEST__MAX_BATCH_BYTES`).
//! The keys are read off the struct itself (a deserializer that records what the struct
//! asks for), so a new field is at once a key, a variable and a flag, and the test of the
//! example file sees it.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};

/// What a setting's value is, so a text from a variable or a flag is read as the struct
/// expects (`PROSSIMO_DATA_DIR=2024` is a directory name, not a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
    Bool,
    /// Lists and tables: given as TOML (`["IT"]`, `{ USD = 0.92 }`).
    Structured,
}

/// Every setting's dotted key and kind, as the struct `T` asks for them.
pub fn keys<'de, T: serde::Deserialize<'de>>() -> BTreeMap<String, Kind> {
    let mut out = BTreeMap::new();
    // The probe answers every request with an empty or zero value; only what it records
    // matters.
    let _ = T::deserialize(Probe {
        path: String::new(),
        out: &mut out,
    });
    out
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
pub enum Source {
    Environment(String),
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment(name) => write!(f, "environment variable {name}"),
            Source::Flag(text) => write!(f, "--set {text}"),
        }
    }
}

/// Writes `raw` at `key` into `table`, read as `kind` says.
pub fn set(
    table: &mut toml::Table,
    key: &str,
    kind: Kind,
    raw: &str,
    source: &Source,
) -> Result<(), String> {
    let value = match kind {
        Kind::Text => toml::Value::String(raw.to_owned()),
        Kind::Number | Kind::Bool | Kind::Structured => {
            let parsed: toml::Table = toml::from_str(&format!("v = {raw}"))
                .map_err(|_| format!("{source}: {raw:?} is not a valid value for {key}"))?;
            parsed
                .get("v")
                .cloned()
                .ok_or_else(|| format!("{source}: no value for {key}"))?
        }
    };
    let mut levels: Vec<&str> = key.split('.').collect();
    let leaf = levels.pop().unwrap_or(key);
    let mut node = table;
    for level in levels {
        let entry = node
            .entry(level.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("{source}: {level} is not a section")),
        };
    }
    node.insert(leaf.to_owned(), value);
    Ok(())
}

/// The setting a `PROSSIMO_*` variable names, if it names one.
pub fn key_of_variable<'k>(name: &str, keys: &'k BTreeMap<String, Kind>) -> Option<&'k str> {
    let rest = name.strip_prefix("PROSSIMO_")?;
    let key = rest.to_ascii_lowercase().replace("__", ".");
    keys.get_key_value(&key).map(|(k, _)| k.as_str())
}

struct Probe<'a> {
    path: String,
    out: &'a mut BTreeMap<String, Kind>,
}

impl Probe<'_> {
    fn leaf(self, kind: Kind) {
        self.out.insert(self.path, kind);
    }
}

#[derive(Debug)]
struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probing")
    }
}

impl std::error::Error for Never {}

impl de::Error for Never {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Never
    }
}

macro_rules! leaf {
    ($($method:ident => $kind:expr, $visit:ident($($value:expr)?);)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Never> {
            self.leaf($kind);
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Never;

    leaf! {
        deserialize_bool => Kind::Bool, visit_bool(false);
        deserialize_i8 => Kind::Number, visit_i64(0);
        deserialize_i16 => Kind::Number, visit_i64(0);
        deserialize_i32 => Kind::Number, visit_i64(0);
        deserialize_i64 => Kind::Number, visit_i64(0);
        deserialize_u8 => Kind::Number, visit_u64(0);
        deserialize_u16 => Kind::Number, visit_u64(0);
        deserialize_u32 => Kind::Number, visit_u64(0);
        deserialize_u64 => Kind::Number, visit_u64(0);
        deserialize_f32 => Kind::Number, visit_f64(0.0);
        deserialize_f64 => Kind::Number, visit_f64(0.0);
        deserialize_char => Kind::Text, visit_char(' ');
        deserialize_str => Kind::Text, visit_str("");
        deserialize_string => Kind::Text, visit_str("");
        deserialize_bytes => Kind::Text, visit_bytes(&[]);
        deserialize_byte_buf => Kind::Text, visit_bytes(&[]);
        deserialize_unit => Kind::Structured, visit_unit();
        deserialize_any => Kind::Structured, visit_unit();
        deserialize_ignored_any => Kind::Structured, visit_unit();
        deserialize_identifier => Kind::Text, visit_str("");
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Never> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Never> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Never> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Never> {
        self.leaf(Kind::Structured);
        visitor.visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<()>()))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Never> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Never> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Never> {
        self.leaf(Kind::Structured);
        visitor.visit_map(de::value::MapDeserializer::new(
            std::iter::empty::<((), ())>(),
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Never> {
        visitor.visit_map(Fields {
            prefix: self.path,
            fields: fields.iter(),
            current: None,
            out: self.out,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Never> {
        self.leaf(Kind::Text);
        Err(Never)
    }
}

struct Fields<'a> {
    prefix: String,
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<&'static str>,
    out: &'a mut BTreeMap<String, Kind>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Never;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Never> {
        match self.fields.next() {
            None => Ok(None),
            Some(field) => {
                self.current = Some(field);
                seed.deserialize(field.into_deserializer()).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Never> {
        let field = self.current.take().unwrap_or_default();
        let path = if self.prefix.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.prefix)
        };
        seed.deserialize(Probe {
            path,
            out: self.out,
        })
    }
}
