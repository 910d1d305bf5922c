//! The segment language through its public API: syntax, types, canonical form, catalog,
//! evaluation, and the incremental state against a brute-force oracle.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod catalog;
mod eval;
mod italian;
mod oracle;
mod roundtrip;
mod syntax;
mod types;

use prossimo_segments::{Schema, compile};

/// The first line of the error for `src`: the message and the position.
pub fn error(src: &str) -> String {
    match compile(src, &Schema::product_default()) {
        Ok(e) => panic!("{src:?} should be refused, parsed as {e:?}"),
        Err(e) => e.summary(),
    }
}

/// Milliseconds of 2026-01-01T00:00:00Z, the tests' reference instant.
pub const T0: i64 = 1_767_225_600_000;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 86_400_000;

/// An event as the tests write it.
#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: &'static str,
    pub name: Option<&'static str>,
    pub channel: &'static str,
    pub ts: i64,
    pub props: serde_json::Value,
}

impl Ev {
    pub fn track(
        name: &'static str,
        channel: &'static str,
        ts: i64,
        props: serde_json::Value,
    ) -> Ev {
        Ev {
            kind: "track",
            name: Some(name),
            channel,
            ts,
            props,
        }
    }

    pub fn facts(&self) -> prossimo_segments::EventFacts<'_> {
        prossimo_segments::EventFacts {
            kind: self.kind,
            event: self.name,
            channel: self.channel,
            ts_ms: self.ts,
            properties: &self.props,
            platform: false,
        }
    }
}
