//! Act: delivering what Prossimo decided to the outside world.
//!
//! Today: webhook destinations. The decide stage writes what each destination is owed into
//! the store's outbox in the same transaction as the change itself; the [`Dispatcher`]
//! delivers it, signed per Standard Webhooks ([`webhook`]), at least once, with
//! exponential backoff and a dead-letter list. Each destination has its own task, so a
//! slow or failing endpoint never holds up another; within a destination a profile's
//! messages go out in order while different profiles' go out concurrently.

pub mod destinations;
mod dispatcher;
pub mod targets;
pub mod webhook;

pub use destinations::{
    AttemptRecord, DeliveryOutcome, DeliveryRecord, DeliveryStatus, DestinationInput,
    DestinationKind, DestinationRecord, Destinations, NewDelivery, enqueue,
};
pub use dispatcher::{DispatchConfig, Dispatcher, RetryPolicy};
pub use targets::TargetPolicy;

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("webhook secret: {0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] prossimo_store::StoreError),
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
}
