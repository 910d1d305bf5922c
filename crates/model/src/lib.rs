//! Segment-spec messages: the wire format Prossimo accepts, validated and normalised.
//!
//! This crate is pure: it turns request bodies into [`Message`]s or into a [`BatchError`] that
//! names every offending message and field. Nothing here touches the store or the network, so
//! the HTTP API, the bulk importer and the demo generator share exactly one validation path.

mod channel;
pub mod clock;
mod error;
mod message;
mod order;
mod parse;
mod strict_json;
mod time;

pub use channel::Channel;
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BatchError, ErrorBody, ErrorCode, FieldError};
pub use message::{Message, MessageType};
pub use order::{
    AmountProblem, DEFAULT_MAX_AMOUNT, Money, MoneyError, NetOrder, ORDER_CANCELLED,
    ORDER_COMPLETED, ORDER_REFUNDED, OrderBook, OrderEvent, OrderEventKind, OrderRecord,
    fold_orders,
};
pub use parse::{
    Limits, MAX_EVENT_NAME_BYTES, MAX_IDENTIFIER_BYTES, MAX_NAME_BYTES, Payload,
    earliest_event_time, parse_batch, parse_json, parse_single, parse_value,
};
pub use time::{format_millis, format_timestamp, parse_timestamp};
