//! The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV",
//! JMR 42(4); brucehardie.com note 025): a customer's purchase values are Gamma(p, ν) with
//! ν ~ Gamma(q, γ) across customers (γ is `v` here, as in `lifetimes`), independent of the
//! purchase process. Only customers with repeat purchases (x > 0) and positive mean repeat
//! spend carry information on it.

use serde::{Deserialize, Serialize};

use super::{Fit, FitOptions, Likelihood, maximize_likelihood, sum_rows};
use crate::special::{digamma, ln_gamma};
use crate::{AnalyticsError, CustomerSummary};

/// Gamma-Gamma parameters (names as in `lifetimes.GammaGammaFitter`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// One distinct (x, mean spend) with its weight.
#[derive(Debug, Clone, Copy)]
struct SpendRow {
    frequency: f64,
    /// x·m̄, the customer's total repeat spend.
    total: f64,
    weight: f64,
}

/// The rows' sums that do not depend on the parameters, per distinct x.
#[derive(Debug, Clone, Copy)]
struct FrequencyGroup {
    frequency: f64,
    weight: f64,
    /// Σ w ln(x m̄) and Σ w ln m̄.
    weighted_ln_total: f64,
    weighted_ln_mean: f64,
}

/// Repeat customers' (x, m̄) ready for fitting the Gamma-Gamma model.
#[derive(Debug, Clone)]
pub struct SpendData {
    rows: Vec<SpendRow>,
    groups: Vec<FrequencyGroup>,
    total_weight: f64,
}

impl SpendData {
    /// The customers with x > 0 and monetary_value > 0 (`lifetimes` refuses spend ≤ 0;
    /// in CDNOW a repeat buyer of only $0 orders has it, and is left out here).
    pub fn from_summaries(summaries: &[CustomerSummary]) -> Result<Self, AnalyticsError> {
        Self::from_weighted(
            summaries
                .iter()
                .filter(|s| s.frequency > 0.0 && s.monetary_value > 0.0)
                .map(|s| (s.frequency, s.monetary_value, 1.0)),
        )
    }

    /// (frequency x > 0, mean repeat spend m̄ > 0, weight > 0) triples.
    pub fn from_weighted(
        customers: impl IntoIterator<Item = (f64, f64, f64)>,
    ) -> Result<Self, AnalyticsError> {
        let mut keyed = Vec::new();
        for (frequency, monetary_value, weight) in customers {
            let valid = frequency > 0.0
                && frequency.is_finite()
                && monetary_value > 0.0
                && monetary_value.is_finite()
                && weight > 0.0
                && weight.is_finite();
            if !valid {
                return Err(AnalyticsError::InvalidInput(format!(
                    "Gamma-Gamma needs frequency > 0, monetary value > 0 and weight > 0, got \
                     ({frequency}, {monetary_value}, {weight})"
                )));
            }
            keyed.push(((frequency.to_bits(), monetary_value.to_bits()), weight));
        }
        if keyed.is_empty() {
            return Err(AnalyticsError::NotEnoughData(
                "no repeat customers with positive spend".to_string(),
            ));
        }
        // Positive floats order like their bits; stable, so weight sums are deterministic.
        keyed.sort_by_key(|&(key, _)| key);
        let mut rows: Vec<SpendRow> = Vec::new();
        let mut groups: Vec<FrequencyGroup> = Vec::new();
        let mut previous_key = None;
        for (key, weight) in keyed {
            let (frequency, monetary_value) = (f64::from_bits(key.0), f64::from_bits(key.1));
            if previous_key == Some(key) {
                if let Some(row) = rows.last_mut() {
                    row.weight += weight;
                }
            } else {
                rows.push(SpendRow {
                    frequency,
                    total: frequency * monetary_value,
                    weight,
                });
            }
            previous_key = Some(key);
            match groups.last_mut() {
                Some(group) if group.frequency == frequency => {
                    group.weight += weight;
                    group.weighted_ln_total += weight * (frequency * monetary_value).ln();
                    group.weighted_ln_mean += weight * monetary_value.ln();
                }
                _ => groups.push(FrequencyGroup {
                    frequency,
                    weight,
                    weighted_ln_total: weight * (frequency * monetary_value).ln(),
                    weighted_ln_mean: weight * monetary_value.ln(),
                }),
            }
        }
        let total_weight = groups.iter().map(|g| g.weight).sum();
        Ok(SpendData {
            rows,
            groups,
            total_weight,
        })
    }

    /// Customers represented (sum of weights).
    pub fn customers(&self) -> f64 {
        self.total_weight
    }

    pub fn unique_rows(&self) -> usize {
        self.rows.len()
    }
}

impl GammaGamma {
    /// Maximum-likelihood fit (note 025 eq. 1a), penalised as in [`FitOptions`] (no time
    /// rescaling: none of p, q, γ is a time scale).
    pub fn fit(data: &SpendData, options: &FitOptions) -> Result<Fit<Self>, AnalyticsError> {
        maximize_likelihood(data, data.customers(), data.unique_rows(), 1.0, options)
    }

    /// Total log-likelihood of the observed mean spends (note 025 eq. 1a, with the
    /// Jacobian of the mean as `lifetimes` has it).
    pub fn log_likelihood(&self, data: &SpendData) -> f64 {
        self.log_likelihood_gradient(data).0
    }

    /// Total log-likelihood and its gradient in (p, q, v). Per customer:
    /// ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x − (px+q) ln(x m̄ + γ),
    /// where (px−1) ln m̄ + px ln x = px ln(x m̄) − ln m̄; everything but the last term is
    /// summed per distinct x.
    pub fn log_likelihood_gradient(&self, data: &SpendData) -> (f64, [f64; 3]) {
        let GammaGamma { p, q, v } = *self;
        let mut totals = [0.0; 4];
        for group in &data.groups {
            let (x, w) = (group.frequency, group.weight);
            let px = p * x;
            totals[0] += w * (ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * v.ln())
                + px * group.weighted_ln_total
                - group.weighted_ln_mean;
            totals[1] += x * (w * (digamma(px + q) - digamma(px)) + group.weighted_ln_total);
            totals[2] += w * (digamma(px + q) - digamma(q) + v.ln());
            totals[3] += w * q / v;
        }
        let per_row = sum_rows(&data.rows, |row| {
            let shifted = row.total + v;
            let ln_shifted = shifted.ln();
            let shape = p * row.frequency + q;
            let w = row.weight;
            [
                -w * shape * ln_shifted,
                -w * row.frequency * ln_shifted,
                -w * ln_shifted,
                -w * shape / shifted,
            ]
        });
        (
            totals[0] + per_row[0],
            [
                totals[1] + per_row[1],
                totals[2] + per_row[2],
                totals[3] + per_row[3],
            ],
        )
    }

    /// E[spend per purchase] of a new customer: pγ/(q−1) (note 025 eq. 4).
    pub fn population_mean_spend(&self) -> f64 {
        self.p * self.v / (self.q - 1.0)
    }

    /// E[spend per purchase | x, m̄] (note 025 eq. 5, `lifetimes`'
    /// `conditional_expected_average_profit`): a weighted average of the population mean
    /// and the customer's own mean, with weight px/(px+q−1) on the latter. At x = 0 it is
    /// the population mean.
    pub fn conditional_expected_average_spend(&self, frequency: f64, monetary_value: f64) -> f64 {
        let individual_weight = self.p * frequency / (self.p * frequency + self.q - 1.0);
        (1.0 - individual_weight) * self.population_mean_spend()
            + individual_weight * monetary_value
    }
}

impl Likelihood<3> for GammaGamma {
    type Data = SpendData;
    fn from_parameters([p, q, v]: [f64; 3]) -> Self {
        GammaGamma { p, q, v }
    }
    fn is_time_scale(_: usize) -> bool {
        false
    }
    fn log_likelihood_and_gradient(&self, data: &SpendData) -> (f64, [f64; 3]) {
        self.log_likelihood_gradient(data)
    }
}
