//! Per-customer predictions: P(alive), expected purchases, expected spend and CLV.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{CountModel, GammaGamma, PurchaseHistory};
use crate::{CustomerSummary, Period};

/// Model periods per month in CLV, as `lifetimes`' `customer_lifetime_value` has them:
/// 4.345 for weeks (`freq="W"`), otherwise 30 days a month (30 for days, 720 for hours,
/// 1 for 30-day months).
pub fn periods_per_month(period: Period) -> f64 {
    if period == Period::WEEK {
        4.345
    } else {
        30.0 / period.days
    }
}

/// The CLV horizon and discounting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvOptions {
    pub months: u32,
    pub monthly_discount_rate: f64,
    pub periods_per_month: f64,
}

impl ClvOptions {
    /// `lifetimes`' defaults: 12 months at 1% a month.
    pub fn lifetimes_default(period: Period) -> Self {
        ClvOptions {
            months: 12,
            monthly_discount_rate: 0.01,
            periods_per_month: periods_per_month(period),
        }
    }
}

/// Discounted expected spend over the horizon (`lifetimes`' `customer_lifetime_value`):
/// Σₖ₌₁..months E[spend] · (E[Y(k·P)] − E[Y((k−1)·P)]) / (1+d)ᵏ with P periods a month,
/// E[spend] the Gamma-Gamma conditional expected average spend (the population mean for
/// x = 0) and E[Y] the count model's conditional expected purchases.
pub fn customer_lifetime_value<M: CountModel>(
    model: &M,
    spend: &GammaGamma,
    history: &PurchaseHistory,
    monetary_value: f64,
    options: &ClvOptions,
) -> f64 {
    let spend_per_purchase =
        spend.conditional_expected_average_spend(history.frequency, monetary_value);
    let step = options.periods_per_month;
    let mut previous = model.conditional_expected_purchases(0.0, history);
    let mut discount = 1.0;
    let mut value = 0.0;
    for month in 1..=options.months {
        let expected = model.conditional_expected_purchases(f64::from(month) * step, history);
        discount /= 1.0 + options.monthly_discount_rate;
        value += spend_per_purchase * (expected - previous) * discount;
        previous = expected;
    }
    value
}

/// What to predict for every customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreOptions {
    /// Horizon of `expected_purchases`, in model periods.
    pub horizon: f64,
    /// CLV settings, used when a spend model is given.
    pub clv: ClvOptions,
}

/// One customer's predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerScore {
    pub customer: i64,
    pub probability_alive: f64,
    /// Expected purchases in the next `horizon` periods.
    pub expected_purchases: f64,
    /// Gamma-Gamma expected spend per purchase and CLV, when a spend model is given.
    pub expected_average_spend: Option<f64>,
    pub clv: Option<f64>,
}

/// Score every customer, in parallel, in input order. Summaries are taken as they come
/// (from [`crate::summary::summarize`]); an invalid history gives NaN scores.
pub fn score_customers<M: CountModel>(
    model: &M,
    spend: Option<&GammaGamma>,
    summaries: &[CustomerSummary],
    options: &ScoreOptions,
) -> Vec<CustomerScore> {
    summaries
        .par_iter()
        .map(|summary| {
            let history = PurchaseHistory::from(summary);
            CustomerScore {
                customer: summary.customer,
                probability_alive: model.probability_alive(&history),
                expected_purchases: model.conditional_expected_purchases(options.horizon, &history),
                expected_average_spend: spend.map(|gg| {
                    gg.conditional_expected_average_spend(summary.frequency, summary.monetary_value)
                }),
                clv: spend.map(|gg| {
                    customer_lifetime_value(
                        model,
                        gg,
                        &history,
                        summary.monetary_value,
                        &options.clv,
                    )
                }),
            }
        })
        .collect()
}
