//! The (x, tₓ, T) data of the count models, compressed for fast likelihoods.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::{AnalyticsError, CustomerSummary};

/// One customer's repeat-purchase history in model time units: `frequency` x (repeat
/// purchase periods), `recency` tₓ (age at the last purchase), `t` (age now, T).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PurchaseHistory {
    pub frequency: f64,
    pub recency: f64,
    pub t: f64,
}

impl From<&CustomerSummary> for PurchaseHistory {
    fn from(summary: &CustomerSummary) -> Self {
        PurchaseHistory {
            frequency: summary.frequency,
            recency: summary.recency,
            t: summary.t,
        }
    }
}

impl PurchaseHistory {
    /// `lifetimes`' input checks: integer x ≥ 0, 0 ≤ tₓ ≤ T, tₓ = 0 when x = 0.
    pub(crate) fn validate(&self) -> Result<(), AnalyticsError> {
        let PurchaseHistory {
            frequency,
            recency,
            t,
        } = *self;
        let problem = if !(frequency >= 0.0
            && frequency.fract() == 0.0
            && frequency <= f64::from(u32::MAX))
        {
            "frequency must be a non-negative integer"
        } else if !(recency >= 0.0 && t.is_finite() && recency <= t) {
            "recency must be within [0, T]"
        } else if frequency == 0.0 && recency != 0.0 {
            "recency must be 0 when frequency is 0"
        } else {
            return Ok(());
        };
        Err(AnalyticsError::InvalidInput(format!(
            "{problem}: frequency {frequency}, recency {recency}, T {t}"
        )))
    }
}

/// One distinct (x, tₓ, T) with the number (weight) of customers who share it, and indices
/// into the tables of distinct frequencies and times, so a likelihood evaluates ln Γ per
/// distinct x and ln(α + t) per distinct time once instead of per customer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CountRow {
    pub frequency: u32,
    pub recency: f64,
    pub age: f64,
    pub frequency_index: u32,
    pub recency_index: u32,
    pub age_index: u32,
    pub weight: f64,
}

/// Histories ready for fitting: unique rows with weights (Fader & Hardie condense the data
/// the same way; `lifetimes` takes such weights too).
#[derive(Debug, Clone)]
pub struct CountData {
    pub(crate) rows: Vec<CountRow>,
    /// Distinct frequencies, indexed by `CountRow::frequency_index`.
    pub(crate) frequencies: Vec<u32>,
    /// Distinct recency and age values, indexed by `recency_index` and `age_index`.
    pub(crate) times: Vec<f64>,
    total_weight: f64,
    max_age: f64,
}

/// A fast hasher for the small, non-adversarial tables here: each word is mixed in with
/// the 64-bit finaliser of MurmurHash3, so keys differing only in high bits (f64 bit
/// patterns of round numbers) still spread over the table.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }
    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }
    fn write_u64(&mut self, value: u64) {
        let mut h = self.0 ^ value;
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        self.0 = h ^ (h >> 33);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// Assigns dense indices to distinct values in order of first appearance.
struct Interner<K> {
    index: MixMap<K, u32>,
}

impl<K: std::hash::Hash + Eq + Copy> Interner<K> {
    fn new() -> Self {
        Interner {
            index: MixMap::default(),
        }
    }
    fn intern(&mut self, key: K) -> u32 {
        let next = self.index.len() as u32;
        *self.index.entry(key).or_insert(next)
    }
    fn into_values(self) -> Vec<K> {
        let mut values: Vec<(K, u32)> = self.index.into_iter().collect();
        values.sort_unstable_by_key(|&(_, index)| index);
        values.into_iter().map(|(key, _)| key).collect()
    }
}

impl CountData {
    /// One row per customer summary.
    pub fn from_summaries(summaries: &[CustomerSummary]) -> Result<Self, AnalyticsError> {
        Self::from_weighted(summaries.iter().map(|s| (PurchaseHistory::from(s), 1.0)))
    }

    /// One row per history.
    pub fn from_histories(
        histories: impl IntoIterator<Item = PurchaseHistory>,
    ) -> Result<Self, AnalyticsError> {
        Self::from_weighted(histories.into_iter().map(|h| (h, 1.0)))
    }

    /// Histories with weights (the number of customers each stands for).
    pub fn from_weighted(
        histories: impl IntoIterator<Item = (PurchaseHistory, f64)>,
    ) -> Result<Self, AnalyticsError> {
        let mut frequencies = Interner::new();
        let mut times = Interner::new();
        let mut row_of: MixMap<(u32, u32, u32), usize> = MixMap::default();
        let mut rows: Vec<CountRow> = Vec::new();
        for (history, weight) in histories {
            history.validate()?;
            if !(weight > 0.0 && weight.is_finite()) {
                return Err(AnalyticsError::InvalidInput(format!(
                    "weights must be positive and finite, got {weight}"
                )));
            }
            // Adding 0.0 turns −0.0 into 0.0, so equal times share one bit pattern.
            let (recency, age) = (history.recency + 0.0, history.t + 0.0);
            let frequency = history.frequency as u32;
            let key = (
                frequencies.intern(frequency),
                times.intern(recency.to_bits()),
                times.intern(age.to_bits()),
            );
            // Rows stay in order of first appearance; weights add up in input order.
            match row_of.entry(key) {
                Entry::Occupied(row) => rows[*row.get()].weight += weight,
                Entry::Vacant(slot) => {
                    slot.insert(rows.len());
                    rows.push(CountRow {
                        frequency,
                        recency,
                        age,
                        frequency_index: key.0,
                        recency_index: key.1,
                        age_index: key.2,
                        weight,
                    });
                }
            }
        }
        if rows.is_empty() {
            return Err(AnalyticsError::NotEnoughData(
                "no customers to fit".to_string(),
            ));
        }
        let frequencies = frequencies.into_values();
        let times: Vec<f64> = times
            .into_values()
            .into_iter()
            .map(f64::from_bits)
            .collect();
        let total_weight = rows.iter().map(|row| row.weight).sum();
        let max_age = rows.iter().map(|row| row.age).fold(0.0, f64::max);
        Ok(CountData {
            rows,
            frequencies,
            times,
            total_weight,
            max_age,
        })
    }

    /// Customers represented (sum of weights).
    pub fn customers(&self) -> f64 {
        self.total_weight
    }

    /// Distinct (x, tₓ, T) rows.
    pub fn unique_rows(&self) -> usize {
        self.rows.len()
    }

    /// The oldest customer's age T.
    pub fn max_age(&self) -> f64 {
        self.max_age
    }

    /// The scale `lifetimes` applies to time before fitting (1/max T; 1 if every T is 0).
    pub(crate) fn time_scale(&self) -> f64 {
        if self.max_age > 0.0 {
            1.0 / self.max_age
        } else {
            1.0
        }
    }
}
