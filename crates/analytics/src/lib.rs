//! Understanding customers: pure, fast numeric code with no I/O and no async.
//!
//! The store hands this crate plain slices (purchases, interactions); it returns plain
//! values (summaries, fitted models, scores, reports) that the caller writes back onto
//! profiles. Everything here is deterministic for a given input (and seed, where one is
//! taken), so it is tested directly against published tables and reference implementations.
//!
//! Time is unix milliseconds (UTC) on input; models work in a chosen period unit
//! ([`Period`]), as `lifetimes` does with `freq` and `freq_multiplier`.

pub mod btyd;
pub mod clusters;
pub mod dynamics;
pub mod error;
pub mod rfm;
pub mod special;
pub mod summary;

pub use error::AnalyticsError;

use prossimo_model::{Channel, NetOrder};
use serde::{Deserialize, Serialize};

/// Milliseconds in one day.
pub const DAY_MS: i64 = 86_400_000;

/// One purchase (an order net of refunds) in the reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    /// The buyer's profile id.
    pub customer: i64,
    /// When it happened, unix milliseconds UTC.
    pub at_ms: i64,
    /// Value in the reporting currency (may be 0; negative only after refunds).
    pub amount: f64,
}

/// A net order (after refunds) is a purchase of its net value by its root profile.
impl From<&NetOrder> for Purchase {
    fn from(order: &NetOrder) -> Self {
        Purchase {
            customer: order.profile_id,
            at_ms: order.ts,
            amount: order.value,
        }
    }
}

/// One touchpoint of any kind, for base dynamics and channel mix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub customer: i64,
    pub at_ms: i64,
    pub channel: Channel,
    /// Revenue in the reporting currency when the interaction is a purchase.
    pub revenue: Option<f64>,
}

/// The time unit models work in: purchases are bucketed per calendar day (UTC), as
/// `lifetimes.utils.summary_data_from_transaction_data(freq="D")` does, and durations are
/// then expressed in units of `days` days (`freq_multiplier`): 1 for days, 7 for weeks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Period {
    pub days: f64,
}

impl Period {
    pub const DAY: Period = Period { days: 1.0 };
    pub const WEEK: Period = Period { days: 7.0 };
}

/// One customer's buy-till-you-die summary, with the definitions of `lifetimes`:
/// `frequency` = purchase days − 1, `recency` = age at the last purchase day, `t` = age at
/// the end of observation, both in [`Period`] units; `monetary_value` = mean spend of the
/// repeat purchase days (first day excluded; 0 when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary {
    pub customer: i64,
    pub frequency: f64,
    pub recency: f64,
    pub t: f64,
    pub monetary_value: f64,
    /// All purchases' value, first one included (RFM's monetary dimension).
    pub total_value: f64,
    /// Purchase days, first one included (RFM's frequency dimension).
    pub purchase_days: u32,
    /// First and last purchase, unix milliseconds UTC.
    pub first_ms: i64,
    pub last_ms: i64,
}
