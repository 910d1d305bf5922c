//! Identity resolution: which person is behind a message.
//!
//! Identifiers (`user_id`, `anonymous_id`, `email`, `phone`, external ids, configured custom
//! traits) are normalised, junk values are refused, and the identifiers a message carries are
//! linked into one profile through a union-find. Per-kind limits stop one shared device or a
//! placeholder e-mail from gluing strangers together; every merge and every refusal is logged.
//!
//! The crate is pure. A store loads the part of the identity graph a batch of messages can
//! touch into a [`Graph`], the graph applies the messages in memory, and [`Graph::finish`]
//! returns the [`Changeset`] the store writes in the same transaction as the events.

mod config;
mod extract;
mod graph;
mod profile;

pub use config::{ConfigError, IdentityConfig};
pub use extract::{Extracted, Identifier, extract, kinds};
pub use graph::{Changeset, Graph, LogEntry, LogKind};
pub use profile::{ProfileId, ProfileState, Seen, TraitEntry};
