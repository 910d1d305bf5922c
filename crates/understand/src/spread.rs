//! How the predictions spread over the customer base, kept with the CLV report so that a
//! chart of a million customers reads a few numbers instead of a million traits.

use prossimo_analytics::CustomerSummary;
use prossimo_analytics::btyd::CustomerScore;
use serde::{Deserialize, Serialize};

/// Lower edges of the 12-month CLV bands, in the reporting currency; the last is open.
const CLV_EDGES: [f64; 10] = [
    0.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];
/// Lower edges of the bands of days since the last purchase; the last is open.
const RECENCY_EDGES: [u32; 7] = [0, 30, 60, 90, 180, 365, 730];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionSpread {
    /// Customers per band of 12-month CLV (`from` inclusive, `to` exclusive, last open).
    pub clv_bands: Vec<ClvBand>,
    /// Customers and their mean P(alive) per band of days since their last purchase.
    pub p_alive_by_recency: Vec<RecencyBand>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClvBand {
    pub from: f64,
    pub to: Option<f64>,
    pub customers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecencyBand {
    pub from_days: u32,
    pub to_days: Option<u32>,
    pub customers: usize,
    /// `None` for an empty band.
    pub mean_p_alive: Option<f64>,
}

/// `scores` are in the order of `summaries` (as `score_customers` returns them).
pub fn prediction_spread(
    summaries: &[CustomerSummary],
    scores: &[CustomerScore],
    as_of_ms: i64,
) -> PredictionSpread {
    let mut clv_counts = [0usize; CLV_EDGES.len()];
    let mut recency = [(0usize, 0.0f64); RECENCY_EDGES.len()];
    for (summary, score) in summaries.iter().zip(scores) {
        if let Some(clv) = score.clv.filter(|v| v.is_finite()) {
            clv_counts[band(&CLV_EDGES, clv.max(0.0))] += 1;
        }
        if score.probability_alive.is_finite() {
            let days = ((as_of_ms - summary.last_ms).max(0) / 86_400_000) as u32;
            let slot = &mut recency[band(&RECENCY_EDGES, days)];
            slot.0 += 1;
            slot.1 += score.probability_alive;
        }
    }
    PredictionSpread {
        clv_bands: CLV_EDGES
            .iter()
            .enumerate()
            .map(|(i, &from)| ClvBand {
                from,
                to: CLV_EDGES.get(i + 1).copied(),
                customers: clv_counts[i],
            })
            .collect(),
        p_alive_by_recency: RECENCY_EDGES
            .iter()
            .enumerate()
            .map(|(i, &from_days)| RecencyBand {
                from_days,
                to_days: RECENCY_EDGES.get(i + 1).copied(),
                customers: recency[i].0,
                mean_p_alive: (recency[i].0 > 0).then(|| recency[i].1 / recency[i].0 as f64),
            })
            .collect(),
    }
}

/// Index of the band whose lower edge is the last one at or below `value`.
fn band<T: PartialOrd + Copy>(edges: &[T], value: T) -> usize {
    edges.iter().rposition(|&e| e <= value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: i64, last_ms: i64) -> CustomerSummary {
        CustomerSummary {
            customer: id,
            frequency: 1.0,
            recency: 1.0,
            t: 2.0,
            monetary_value: 10.0,
            total_value: 20.0,
            purchase_days: 2,
            first_ms: 0,
            last_ms,
        }
    }

    fn score(id: i64, p: f64, clv: Option<f64>) -> CustomerScore {
        CustomerScore {
            customer: id,
            probability_alive: p,
            expected_purchases: 0.1,
            expected_average_spend: None,
            clv,
        }
    }

    #[test]
    fn customers_fall_into_their_bands() {
        let day = 86_400_000;
        let now = 1_000 * day;
        let summaries = [
            customer(1, now - 5 * day),
            customer(2, now - 29 * day),
            customer(3, now - 800 * day),
        ];
        let scores = [
            score(1, 0.9, Some(0.0)),
            score(2, 0.7, Some(9.99)),
            score(3, 0.1, Some(7_000.0)),
        ];
        let spread = prediction_spread(&summaries, &scores, now);
        assert_eq!(
            spread.clv_bands[0].customers, 2,
            "0 and 9.99 are in [0, 10)"
        );
        assert_eq!(
            spread.clv_bands[9],
            ClvBand {
                from: 5000.0,
                to: None,
                customers: 1
            }
        );
        assert_eq!(
            spread.clv_bands.iter().map(|b| b.customers).sum::<usize>(),
            3
        );
        let first = &spread.p_alive_by_recency[0];
        assert_eq!((first.customers, first.to_days), (2, Some(30)));
        assert!((first.mean_p_alive.unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(spread.p_alive_by_recency[1].mean_p_alive, None);
        assert_eq!(spread.p_alive_by_recency[6].customers, 1);
    }
}
