//! Calibration/holdout validation: predicted against actual holdout purchases by
//! calibration frequency, as in Fader, Hardie & Lee (2005) figure 4.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{CountModel, PurchaseHistory};
use crate::summary::CalibrationHoldout;

/// Customers who made `calibration_frequency` repeat purchases in calibration (or at least
/// that many, for the open-ended last bucket).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HoldoutBucket {
    pub calibration_frequency: u32,
    /// This bucket is "calibration_frequency or more".
    pub open_ended: bool,
    pub customers: usize,
    /// Mean holdout purchases: observed, and the model's conditional expectation.
    pub actual_mean: f64,
    pub predicted_mean: f64,
}

/// The calibration/holdout comparison for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutReport {
    pub model: String,
    /// Non-empty buckets 0, 1, …, `last_bucket`+ in order.
    pub buckets: Vec<HoldoutBucket>,
    pub customers: usize,
    pub actual_total: f64,
    pub predicted_total: f64,
}

/// Compare each customer's holdout purchases with the model's E[Y(holdout duration) |
/// calibration history], grouped by calibration frequency 0, 1, …, `last_bucket`+.
pub fn holdout_report<M: CountModel>(
    model: &M,
    rows: &[CalibrationHoldout],
    last_bucket: u32,
) -> HoldoutReport {
    let predictions: Vec<f64> = rows
        .par_iter()
        .map(|row| {
            model.conditional_expected_purchases(
                row.holdout_duration,
                &PurchaseHistory::from(&row.calibration),
            )
        })
        .collect();
    let bucket_count = last_bucket as usize + 1;
    let mut customers = vec![0usize; bucket_count];
    let mut actual = vec![0.0; bucket_count];
    let mut predicted = vec![0.0; bucket_count];
    for (row, prediction) in rows.iter().zip(&predictions) {
        // Frequencies are whole numbers; the cast saturates, and the last bucket is open.
        let bucket = (row.calibration.frequency as usize).min(last_bucket as usize);
        customers[bucket] += 1;
        actual[bucket] += row.holdout_frequency;
        predicted[bucket] += prediction;
    }
    let buckets = (0..bucket_count)
        .filter(|&bucket| customers[bucket] > 0)
        .map(|bucket| HoldoutBucket {
            calibration_frequency: bucket as u32,
            open_ended: bucket == last_bucket as usize,
            customers: customers[bucket],
            actual_mean: actual[bucket] / customers[bucket] as f64,
            predicted_mean: predicted[bucket] / customers[bucket] as f64,
        })
        .collect();
    HoldoutReport {
        model: M::NAME.to_string(),
        buckets,
        customers: rows.len(),
        actual_total: actual.iter().sum(),
        predicted_total: predicted.iter().sum(),
    }
}
