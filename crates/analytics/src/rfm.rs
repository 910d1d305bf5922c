//! RFM scoring and the usual eleven named segments.
//!
//! # Dimensions
//!
//! From one [`CustomerSummary`] per customer and an analysis date `as_of_ms`:
//!
//! - **Recency** = whole days since the last purchase, `floor((as_of_ms − last_ms) / DAY_MS)`
//!   (what pandas' `(as_of − last).dt.days` gives).
//! - **Frequency** = purchase days (`purchase_days`, first one included): several orders on
//!   the same day count once, as in the buy-till-you-die summary.
//! - **Monetary** = total value of all purchases (`total_value`), so that M ranks how much a
//!   customer is worth to date. The mean value per purchase day is reported alongside
//!   ([`CustomerRfm::mean_purchase_value`]) for analysts who prefer average spend.
//!
//! # Quintile scores
//!
//! Each dimension is scored 1–5 the way the common pandas recipe does,
//! `pd.qcut(x.rank(method="first"), 5, labels=...)`: customers are ranked 1..=n by the value,
//! ties broken by customer id ascending, then input position should an id repeat (pandas
//! breaks them by row order; we fix the order so that the result does not depend on how the
//! input was sorted), and rank `x` falls into quintile
//! `q = max(1, ceil(5·(x − 1) / (n − 1)))`, the bin of `qcut`'s edges `1 + (n − 1)·i/5`
//! (right-closed, lowest included). Quintiles are therefore equal-sized (±1) even when many
//! customers share a value, e.g. the many one-time buyers.
//!
//! - F and M score = `q` (more = 5).
//! - R score = `6 − q` where ranks order recency ascending (fewest days = 5).
//!
//! At least two customers are needed (with one, `qcut` has no distinct edges).
//!
//! # Segments
//!
//! The segment comes from the recency score R and the frequency-monetary score
//! `FM = ceil((F + M) / 2)`, on the widely used R × FM grid (as published by Putler). That
//! table gives ranges as edges on a 0–5 axis; a score `s` covers `(s − 1, s]`, which is why the
//! average is rounded up (FM 4.5 lies in `(4, 5]`). Read that way, any two of the table's
//! rectangles are either disjoint or nested, and where one lies inside another (Champions in
//! Loyal, Can't lose in At risk, Hibernating in Lost) the inner one wins, so each of the 25
//! cells has exactly one segment:
//!
//! | segment            | published R | published FM | R scores | FM scores          |
//! |--------------------|-------------|--------------|----------|--------------------|
//! | Champions          | 4–5         | 4–5          | 5        | 5                  |
//! | Loyal              | 2–5         | 3–5          | 3–5      | 4–5 (not R5·FM5)   |
//! | Potential loyalist | 3–5         | 1–3          | 4–5      | 2–3                |
//! | New                | 4–5         | 0–1          | 5        | 1                  |
//! | Promising          | 3–4         | 0–1          | 4        | 1                  |
//! | Need attention     | 2–3         | 2–3          | 3        | 3                  |
//! | About to sleep     | 2–3         | 0–2          | 3        | 1–2                |
//! | At risk            | 0–2         | 2–5          | 1–2      | 3–5 (not R1·FM5)   |
//! | Can't lose         | 0–1         | 4–5          | 1        | 5                  |
//! | Hibernating        | 1–2         | 1–2          | 2        | 2                  |
//! | Lost               | 0–2         | 0–2          | 1–2      | 1–2 (not R2·FM2)   |
//!
//! The same grid, R across and FM down:
//!
//! | FM \ R | 1          | 2           | 3              | 4                  | 5                  |
//! |--------|------------|-------------|----------------|--------------------|--------------------|
//! | 5      | Can't lose | At risk     | Loyal          | Loyal              | Champions          |
//! | 4      | At risk    | At risk     | Loyal          | Loyal              | Loyal              |
//! | 3      | At risk    | At risk     | Need attention | Potential loyalist | Potential loyalist |
//! | 2      | Lost       | Hibernating | About to sleep | Potential loyalist | Potential loyalist |
//! | 1      | Lost       | Lost        | About to sleep | Promising          | New                |

use rayon::prelude::*;
use serde::{Serialize, Serializer};

use crate::{AnalyticsError, CustomerSummary, DAY_MS};

/// One customer's RFM values, scores and segment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CustomerRfm {
    pub customer: i64,
    /// Whole days since the last purchase.
    pub recency_days: i64,
    /// Purchase days.
    pub frequency: u32,
    /// Total value of all purchases.
    pub monetary: f64,
    /// `monetary / frequency`: mean value per purchase day.
    pub mean_purchase_value: f64,
    /// 1–5, 5 = most recent.
    pub recency_score: u8,
    /// 1–5, 5 = most purchase days.
    pub frequency_score: u8,
    /// 1–5, 5 = highest total value.
    pub monetary_score: u8,
    /// `ceil((F + M) / 2)`, the grid's vertical axis.
    pub fm_score: u8,
    /// The three scores as one code, e.g. `"545"`.
    pub rfm_score: RfmCode,
    /// R + F + M, 3–15.
    pub rfm_sum: u8,
    pub segment: RfmSegment,
}

/// The R, F and M scores written together (`"545"`), the form CRM tools export.
///
/// Kept as three digits rather than a `String` so that scoring a million customers does
/// not allocate a million strings; it serialises and displays as the string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RfmCode([u8; 3]);

impl std::fmt::Display for RfmCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, frequency, m] = self.0;
        write!(f, "{r}{frequency}{m}")
    }
}

impl Serialize for RfmCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The eleven named RFM segments of the R × FM grid (see the module docs for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmSegment {
    Champions,
    Loyal,
    PotentialLoyalist,
    New,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLose,
    Hibernating,
    Lost,
}

impl RfmSegment {
    /// Every segment, best first: the order of [`summarize_segments`].
    pub const ALL: [RfmSegment; 11] = [
        RfmSegment::Champions,
        RfmSegment::Loyal,
        RfmSegment::PotentialLoyalist,
        RfmSegment::New,
        RfmSegment::Promising,
        RfmSegment::NeedAttention,
        RfmSegment::AboutToSleep,
        RfmSegment::AtRisk,
        RfmSegment::CantLose,
        RfmSegment::Hibernating,
        RfmSegment::Lost,
    ];

    /// The segment of a cell of the grid. Scores outside 1–5 count as the nearest end
    /// (0 as 1, 6 as 5), so every pair of scores has exactly one segment.
    pub fn from_scores(recency_score: u8, fm_score: u8) -> RfmSegment {
        use RfmSegment::*;
        // One arm per column R of the grid, FM from bottom to top.
        match recency_score {
            ..=1 => match fm_score {
                ..=2 => Lost,
                3..=4 => AtRisk,
                _ => CantLose,
            },
            2 => match fm_score {
                ..=1 => Lost,
                2 => Hibernating,
                _ => AtRisk,
            },
            3 => match fm_score {
                ..=2 => AboutToSleep,
                3 => NeedAttention,
                _ => Loyal,
            },
            4 => match fm_score {
                ..=1 => Promising,
                2..=3 => PotentialLoyalist,
                _ => Loyal,
            },
            _ => match fm_score {
                ..=1 => New,
                2..=3 => PotentialLoyalist,
                4 => Loyal,
                _ => Champions,
            },
        }
    }

    /// The snake_case name used in JSON and in stored profile traits.
    pub fn as_str(self) -> &'static str {
        match self {
            RfmSegment::Champions => "champions",
            RfmSegment::Loyal => "loyal",
            RfmSegment::PotentialLoyalist => "potential_loyalist",
            RfmSegment::New => "new",
            RfmSegment::Promising => "promising",
            RfmSegment::NeedAttention => "need_attention",
            RfmSegment::AboutToSleep => "about_to_sleep",
            RfmSegment::AtRisk => "at_risk",
            RfmSegment::CantLose => "cant_lose",
            RfmSegment::Hibernating => "hibernating",
            RfmSegment::Lost => "lost",
        }
    }

    /// The English display name.
    pub fn label(self) -> &'static str {
        match self {
            RfmSegment::Champions => "Champions",
            RfmSegment::Loyal => "Loyal",
            RfmSegment::PotentialLoyalist => "Potential loyalist",
            RfmSegment::New => "New",
            RfmSegment::Promising => "Promising",
            RfmSegment::NeedAttention => "Need attention",
            RfmSegment::AboutToSleep => "About to sleep",
            RfmSegment::AtRisk => "At risk",
            RfmSegment::CantLose => "Can't lose",
            RfmSegment::Hibernating => "Hibernating",
            RfmSegment::Lost => "Lost",
        }
    }
}

impl std::fmt::Display for RfmSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Scores every customer, in input order. Errors on fewer than two customers, a last
/// purchase after `as_of_ms`, no purchase day, or a non-finite total value.
pub fn score_rfm(
    summaries: &[CustomerSummary],
    as_of_ms: i64,
) -> Result<Vec<CustomerRfm>, AnalyticsError> {
    if summaries.len() < 2 {
        return Err(AnalyticsError::NotEnoughData(format!(
            "RFM quintiles need at least 2 customers, got {}",
            summaries.len()
        )));
    }
    if summaries.len() > u32::MAX as usize {
        return Err(AnalyticsError::InvalidInput(
            "more than 4,294,967,295 customers".into(),
        ));
    }
    summaries
        .par_iter()
        .try_for_each(|s| validate(s, as_of_ms))?;

    // Saturating: a timestamp near i64::MIN must not overflow (it stays the oldest).
    let recency_days = |s: &CustomerSummary| as_of_ms.saturating_sub(s.last_ms).div_euclid(DAY_MS);
    let ((recency_q, frequency_q), monetary_q) = rayon::join(
        || {
            rayon::join(
                // Days since the last purchase are ≥ 0, so their u64 order is their order.
                || quintiles(summaries, |s| recency_days(s) as u64),
                || quintiles(summaries, |s| u64::from(s.purchase_days)),
            )
        },
        || quintiles(summaries, |s| ordered_bits(s.total_value)),
    );

    Ok(summaries
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let r = 6 - recency_q[i];
            let f = frequency_q[i];
            let m = monetary_q[i];
            let fm = (f + m).div_ceil(2);
            CustomerRfm {
                customer: s.customer,
                recency_days: recency_days(s),
                frequency: s.purchase_days,
                monetary: s.total_value,
                mean_purchase_value: s.total_value / f64::from(s.purchase_days),
                recency_score: r,
                frequency_score: f,
                monetary_score: m,
                fm_score: fm,
                rfm_score: RfmCode([r, f, m]),
                rfm_sum: r + f + m,
                segment: RfmSegment::from_scores(r, fm),
            }
        })
        .collect())
}

fn validate(s: &CustomerSummary, as_of_ms: i64) -> Result<(), AnalyticsError> {
    if s.last_ms > as_of_ms {
        return Err(AnalyticsError::InvalidInput(format!(
            "customer {}: last purchase at {} ms is after the analysis date {} ms",
            s.customer, s.last_ms, as_of_ms
        )));
    }
    if s.purchase_days == 0 {
        return Err(AnalyticsError::InvalidInput(format!(
            "customer {}: a summary needs at least one purchase day",
            s.customer
        )));
    }
    if !s.total_value.is_finite() {
        return Err(AnalyticsError::InvalidInput(format!(
            "customer {}: total value {} is not a finite number",
            s.customer, s.total_value
        )));
    }
    Ok(())
}

/// Each customer's quintile (1–5) of `key`, ranking by (key, customer id, input position):
/// `rank(method="first")` on rows sorted by id, then `qcut`. No full sort: selecting the
/// first rank of quintiles 2–5 in turn leaves the ranking partitioned into the five
/// quintiles, in O(n).
fn quintiles(
    summaries: &[CustomerSummary],
    key: impl Fn(&CustomerSummary) -> u64 + Sync,
) -> Vec<u8> {
    // `score_rfm` checked that every position fits in u32.
    let mut order: Vec<(u64, i64, u32)> = summaries
        .par_iter()
        .enumerate()
        .map(|(i, s)| (key(s), s.customer, i as u32))
        .collect();
    let n = summaries.len();
    // Ranks bounds[q − 1]..bounds[q] form quintile q.
    let mut bounds = [0, 0, 0, 0, 0, n];
    for q in 2..=5 {
        bounds[q - 1] = first_rank_of_quintile(q as u64, n as u64) as usize;
        let previous = bounds[q - 2];
        // Everything from the previous quintile's start on ranks after it: the search narrows.
        order[previous..].select_nth_unstable(bounds[q - 1] - previous);
    }
    let mut quintile = vec![0u8; n];
    for (q, ranks) in (1..).zip(bounds.windows(2)) {
        for &(_, _, i) in &order[ranks[0]..ranks[1]] {
            quintile[i as usize] = q;
        }
    }
    quintile
}

/// The first 0-based rank in quintile `q` (2–5) of `n ≥ 2` ranks. `qcut`'s edges put rank
/// `r` in quintile `max(1, ceil(5r / (n − 1)))`, which is ≥ q exactly when
/// `r > (q − 1)(n − 1) / 5`; integers, so no edge is lost to rounding.
fn first_rank_of_quintile(q: u64, n: u64) -> u64 {
    (q - 1) * (n - 1) / 5 + 1
}

/// Maps a finite f64 to a u64 with the same order (and −0.0 equal to 0.0).
fn ordered_bits(value: f64) -> u64 {
    let bits = (value + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Size and averages of one segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmSegmentSummary {
    pub segment: RfmSegment,
    /// English display name, for tables.
    pub label: &'static str,
    pub customers: u64,
    /// Share of all scored customers, 0–1.
    pub customer_share: f64,
    /// Means over the segment's customers; `None` when the segment is empty.
    pub mean_recency_days: Option<f64>,
    pub mean_frequency: Option<f64>,
    pub mean_monetary: Option<f64>,
    /// Sum of the customers' total value.
    pub total_value: f64,
    /// Share of the total value of all scored customers; `None` when that total is 0.
    pub value_share: Option<f64>,
}

/// Per-segment counts and averages, one row for each of the eleven segments in
/// [`RfmSegment::ALL`] order (empty segments included, so reports keep their shape).
pub fn summarize_segments(scores: &[CustomerRfm]) -> Vec<RfmSegmentSummary> {
    #[derive(Default, Clone, Copy)]
    struct Totals {
        customers: u64,
        recency_days: f64,
        frequency: f64,
        monetary: f64,
    }
    let mut totals = [Totals::default(); RfmSegment::ALL.len()];
    for s in scores {
        let t = &mut totals[s.segment as usize];
        t.customers += 1;
        t.recency_days += s.recency_days as f64;
        t.frequency += f64::from(s.frequency);
        t.monetary += s.monetary;
    }
    let all_customers = scores.len() as f64;
    let all_value: f64 = totals.iter().map(|t| t.monetary).sum();

    RfmSegment::ALL
        .iter()
        .zip(totals)
        .map(|(&segment, t)| {
            let mean = |sum: f64| (t.customers > 0).then(|| sum / t.customers as f64);
            RfmSegmentSummary {
                segment,
                label: segment.label(),
                customers: t.customers,
                customer_share: if scores.is_empty() {
                    0.0
                } else {
                    t.customers as f64 / all_customers
                },
                mean_recency_days: mean(t.recency_days),
                mean_frequency: mean(t.frequency),
                mean_monetary: mean(t.monetary),
                total_value: t.monetary,
                value_share: (all_value != 0.0).then(|| t.monetary / all_value),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_discriminants_follow_all_order() {
        // summarize_segments indexes by `segment as usize`.
        for (i, s) in RfmSegment::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }

    #[test]
    fn quintile_boundaries_follow_the_qcut_formula() {
        for n in 2..500u64 {
            for rank in 0..n {
                let qcut = (5 * rank).div_ceil(n - 1).max(1);
                let by_boundaries = 1
                    + (2..=5)
                        .filter(|&q| rank >= first_rank_of_quintile(q, n))
                        .count() as u64;
                assert_eq!(by_boundaries, qcut, "rank {rank} of {n}");
            }
        }
    }

    #[test]
    fn ordered_bits_keeps_float_order() {
        let values = [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, 1e300];
        for w in values.windows(2) {
            assert!(ordered_bits(w[0]) <= ordered_bits(w[1]), "{w:?}");
        }
        assert_eq!(ordered_bits(-0.0), ordered_bits(0.0));
    }
}
