//! Understanding customers inside the product. This crate reads orders and touchpoints from
//! the store, runs the pure analytics of `prossimo-analytics` on them, keeps each result
//! (the `analyses` table, served by `/v1/analytics/{name}`) and writes computed traits
//! back onto profiles (`rfm_score`, `rfm_segment`, `p_alive`, `expected_purchases_90d`,
//! `clv_12m`, `cluster`) so that segments and journeys can use them.
//!
//! A full run ([`run`]) is what `prossimo analyze` and the server's schedule call; a
//! [`LiveScorer`] re-scores one customer at once after a new order, from the parameters
//! and RFM breakpoints of the latest full run.

mod live;
pub mod reports;
mod run;
mod spread;

/// Where the latest server run's summary is kept, beside the analyses (ok or the error,
/// seconds, problems), so every node and the console see it, after a restart too.
pub const LAST_RUN: &str = "last_run";

pub use live::LiveScorer;
pub use reports::{Reports, StoredAnalysis};
pub use run::{
    CLV_EVALUATION, ClustersReport, ClvReport, CountFit, DynamicsSection, Outcome, Problem,
    RfmBreakpoints, RfmReport, SpendFit, run,
};
pub use spread::{ClvBand, PredictionSpread, RecencyBand, prediction_spread};

use prossimo_analytics::dynamics::Granularity;
use prossimo_analytics::{AnalyticsError, Period};
use prossimo_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum UnderstandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{analysis}: {source}")]
    Analytics {
        analysis: &'static str,
        source: AnalyticsError,
    },
    #[error("cannot encode a result: {0}")]
    Json(#[from] serde_json::Error),
}

/// One analysis `prossimo analyze` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Analysis {
    Rfm,
    Clv,
    Cohorts,
    Clusters,
    Dynamics,
}

impl Analysis {
    pub const ALL: [Analysis; 5] = [
        Analysis::Rfm,
        Analysis::Clv,
        Analysis::Cohorts,
        Analysis::Clusters,
        Analysis::Dynamics,
    ];

    /// The name used on the command line, in `/v1/analytics/{name}` and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Analysis::Rfm => "rfm",
            Analysis::Clv => "clv",
            Analysis::Cohorts => "cohorts",
            Analysis::Clusters => "clusters",
            Analysis::Dynamics => "dynamics",
        }
    }

    pub fn parse(name: &str) -> Option<Analysis> {
        Analysis::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// How to run the analyses.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The analysis date, unix ms: purchases after it are ignored, ages are counted to it.
    pub as_of_ms: i64,
    /// The buy-till-you-die models' time unit (`lifetimes`' `freq="D"` with
    /// `freq_multiplier`): weeks by default, as in the papers.
    pub period: Period,
    /// When set, the CLV models are fitted on purchases up to this date and compared with
    /// what customers did between it and `as_of_ms` (the papers' calibration/holdout
    /// check). Such an evaluation run writes no CLV traits.
    pub calibration_end_ms: Option<i64>,
    /// Reporting period of base dynamics and cohorts.
    pub granularity: Granularity,
    /// Number of clusters; chosen by silhouette over 2..=8 when `None`.
    pub clusters: Option<usize>,
    /// Seed of the clustering (k-means++ and samples), for repeatable groups.
    pub seed: u64,
}

impl Options {
    pub fn new(as_of_ms: i64) -> Options {
        Options {
            as_of_ms,
            period: Period::WEEK,
            calibration_end_ms: None,
            granularity: Granularity::Month,
            clusters: None,
            seed: 20_240_601,
        }
    }
}

/// Days in the horizon of the `expected_purchases_90d` trait.
pub const EXPECTED_PURCHASES_DAYS: f64 = 90.0;

fn analytics_error(analysis: &'static str) -> impl FnOnce(AnalyticsError) -> UnderstandError {
    move |source| UnderstandError::Analytics { analysis, source }
}
