//! Scoring one customer at once after a new order, between full runs: the customer's RFM
//! against the latest run's quintile breakpoints, and P(alive), expected purchases and CLV
//! from the latest fitted BG/NBD and Gamma-Gamma parameters.

use prossimo_analytics::btyd::{BgNbd, GammaGamma, score_customers};
use prossimo_analytics::rfm::RfmSegment;
use prossimo_analytics::summary::summarize;
use prossimo_analytics::{DAY_MS, Period, Purchase};
use prossimo_identity::ProfileId;
use prossimo_store::Store;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::reports::Reports;
use crate::run::{RfmBreakpoints, score_options, score_traits};
use crate::{Analysis, UnderstandError, analytics_error};

/// The parameters of the latest full run, ready to score single customers.
#[derive(Debug, Clone, Default)]
pub struct LiveScorer {
    rfm: Option<RfmBreakpoints>,
    clv: Option<LiveClv>,
}

#[derive(Debug, Clone, Copy)]
struct LiveClv {
    period: Period,
    bgnbd: BgNbd,
    gamma_gamma: GammaGamma,
}

/// The parts of the stored reports live scoring needs.
#[derive(Deserialize)]
struct StoredRfm {
    breakpoints: RfmBreakpoints,
}

#[derive(Deserialize)]
struct StoredClv {
    period_days: f64,
    bgnbd: StoredFit<BgNbd>,
    gamma_gamma: StoredFit<GammaGamma>,
}

/// A stored model: its parameters and whether the fit converged.
#[derive(Deserialize)]
struct StoredFit<M> {
    #[serde(flatten)]
    parameters: M,
    converged: bool,
}

impl LiveScorer {
    /// From the reports of the latest full run; empty (scoring nothing) before the first.
    pub fn load(store: &Store) -> Result<LiveScorer, UnderstandError> {
        let rfm = match Reports::of(store)?.get(Analysis::Rfm.as_str())? {
            Some(stored) => Some(serde_json::from_value::<StoredRfm>(stored.result)?.breakpoints),
            None => None,
        };
        let clv = match Reports::of(store)?.get(Analysis::Clv.as_str())? {
            Some(stored) => {
                let c: StoredClv = serde_json::from_value(stored.result)?;
                // Only converged fits score customers (see `run`).
                (c.bgnbd.converged && c.gamma_gamma.converged).then_some(LiveClv {
                    period: Period {
                        days: c.period_days,
                    },
                    bgnbd: c.bgnbd.parameters,
                    gamma_gamma: c.gamma_gamma.parameters,
                })
            }
            None => None,
        };
        Ok(LiveScorer { rfm, clv })
    }

    pub fn is_empty(&self) -> bool {
        self.rfm.is_none() && self.clv.is_none()
    }

    /// The computed traits of a customer with these purchases, as of `now_ms`.
    pub fn traits(
        &self,
        purchases: &[Purchase],
        now_ms: i64,
    ) -> Result<Map<String, Value>, UnderstandError> {
        let mut traits = Map::new();
        let period = self.clv.map_or(Period::WEEK, |c| c.period);
        let summaries = summarize(purchases, now_ms, period).map_err(analytics_error("live"))?;
        let Some(summary) = summaries.first() else {
            return Ok(traits);
        };
        if let Some(b) = &self.rfm {
            let recency_days = now_ms.saturating_sub(summary.last_ms).div_euclid(DAY_MS);
            let r = 1 + b
                .recency_days
                .iter()
                .filter(|&&d| recency_days <= d)
                .count() as u8;
            let f = 1 + b
                .frequency
                .iter()
                .filter(|&&x| summary.purchase_days >= x)
                .count() as u8;
            let m = 1 + b
                .monetary
                .iter()
                .filter(|&&x| summary.total_value >= x)
                .count() as u8;
            let segment = RfmSegment::from_scores(r, (f + m).div_ceil(2));
            traits.insert("rfm_score".into(), json!(format!("{r}{f}{m}")));
            traits.insert("rfm_segment".into(), json!(segment.as_str()));
        }
        if let Some(c) = &self.clv {
            let scores = score_customers(
                &c.bgnbd,
                Some(&c.gamma_gamma),
                &summaries,
                &score_options(c.period),
            );
            if let Some(s) = scores.first() {
                traits.extend(score_traits(s));
            }
        }
        Ok(traits)
    }

    /// Re-scores these profiles from their orders and writes their computed traits.
    /// Returns how many profiles got traits.
    pub fn rescore(
        &self,
        store: &Store,
        profiles: &[ProfileId],
        now_ms: i64,
    ) -> Result<usize, UnderstandError> {
        if self.is_empty() {
            return Ok(0);
        }
        let mut rows = Vec::with_capacity(profiles.len());
        for &profile in profiles {
            let purchases: Vec<Purchase> = store
                .orders_of(profile)?
                .iter()
                .filter(|o| crate::run::is_countable(o, store.money()))
                .map(Purchase::from)
                .collect();
            // One customer the models cannot score keeps their previous traits; the
            // others are still scored.
            let traits = match self.traits(&purchases, now_ms) {
                Ok(traits) => traits,
                Err(e) => {
                    tracing::warn!(profile, error = %e, "live scoring skipped a customer");
                    continue;
                }
            };
            if !traits.is_empty()
                && let Some(first) = purchases.first()
            {
                rows.push((first.customer, traits));
            }
        }
        store.write_computed_traits(&rows)?;
        Ok(rows.len())
    }
}
