//! Decide: audiences kept exact as events arrive.
//!
//! The [`Engine`] tails the store's event log and identity log in commit order (so it sees
//! what every writer wrote: this server's pipeline, another node, `prossimo import`),
//! keeps per-profile aggregates of the saved segments' terms in memory
//! (`prossimo-segments`), re-evaluates only the segments an event can change, and wakes
//! profiles at the instant time alone flips a condition. Each step's membership changes
//! (appended to the store's change log, which the timeline shows as `Segment Entered` /
//! `Segment Exited` events) and the webhook outbox rows are written in one transaction
//! together with the read position.
//!
//! Nothing here is the source of truth: on start (and when segments change) the engine
//! rebuilds its state from the stored events and reconciles the stored memberships, so a
//! crash loses nothing and a full recompute equals the incremental state.

pub mod audiences;
mod engine;
mod preview;
mod routing;
mod runner;

pub use audiences::{AudienceError, delete_audience, save_audience};
pub use engine::{Engine, PendingWrite, StepReport, TermScan, facts};
pub use preview::{Conditions, DRAFT_SLUG, Preview, check_catalog, check_draft, preview};
pub use routing::{EventFilter, check_event_filter};
pub use runner::{Decider, DeciderConfig, DeciderStatus};

use prossimo_segments::Schema;

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Store(#[from] prossimo_store::StoreError),
    #[error(transparent)]
    Catalog(#[from] prossimo_segments::CatalogError),
    #[error("{0}")]
    Filter(String),
}

impl DecideError {
    /// The parse or type error of the definition under `slug` (saved or drafted), when
    /// that, and not another segment or the store, is what went wrong.
    pub fn definition_error(&self, slug: &str) -> Option<&prossimo_segments::Error> {
        match self {
            DecideError::Catalog(prossimo_segments::CatalogError::Definition {
                slug: at,
                error,
            }) if at == slug => Some(error),
            _ => None,
        }
    }
}

/// The computed traits segments may name: the ones the analyses write.
pub fn schema() -> Schema {
    Schema::product_default()
}
