//! Customer-base dynamics per period: how many customers are new, active, retained,
//! lapsed; acquisition cohorts; channel mix.
//!
//! # Periods
//!
//! [`Granularity::Week`] is the ISO week (Monday to Sunday, UTC, labelled `2025-W01`; the
//! first week of a year may start in December). [`Granularity::Month`] is the calendar month
//! in UTC (`2025-01`). A report covers every period from the one holding the earliest
//! interaction to the one holding the latest, empty periods included, so "the previous
//! period" is always the calendar one.
//!
//! # Definitions
//!
//! A **purchase** is an interaction whose revenue is present and ≥ 0 (a free order counts; a
//! negative revenue is a refund: it is summed into revenue but does not make anyone active).
//! A **customer** is someone with at least one purchase; other interactions only count in the
//! channel mix. For a customer `c` and period `p`, write `A(c, p)` for "c purchased in p" and
//! `first(c)` for the period of c's first purchase. Then per period `p`:
//!
//! | field             | formula                                                          |
//! |-------------------|------------------------------------------------------------------|
//! | `customers_total` | #{c : first(c) ≤ p}                                              |
//! | `new`             | #{c : first(c) = p}                                              |
//! | `active`          | #{c : A(c, p)}                                                   |
//! | `repeat`          | `active − new` = #{c : A(c, p), first(c) < p}                    |
//! | `retained`        | #{c : A(c, p) ∧ A(c, p−1)}                                       |
//! | `reactivated`     | `repeat − retained`: back after at least one period without purchase |
//! | `lapsed`          | #{c : A(c, p−1) ∧ ¬A(c, p)} = `active(p−1) − retained`            |
//! | `churned`         | #{c : A(c, p−N) ∧ no purchase in p−N+1 ..= p}, N = `churn_after_periods` |
//! | `growth_rate`     | `customers_total(p) / customers_total(p−1) − 1`                  |
//! | `retention_rate`  | `retained / active(p−1)`                                         |
//! | `churn_rate`      | `1 − retention_rate` = `lapsed / active(p−1)`                    |
//! | `repeat_rate`     | `repeat / active` (share of this period's buyers who bought before) |
//! | `purchases`       | purchase interactions in p                                       |
//! | `revenue`         | sum of all revenue in p, refunds included                        |
//!
//! So `active = new + retained + reactivated`, and `churned` with N = 1 equals `lapsed`:
//! `churned` counts a customer once, in the N-th consecutive period without a purchase
//! (a "no purchase for N months" rule), and again only after a later purchase. Rates are
//! `None` when their denominator is 0 (and in the first period, which has no previous one).
//!
//! **Acquisition cohorts**: a customer's cohort is `first(c)`; cell `k` of a cohort's row
//! counts its customers active in period `first + k` (cell 0 is the cohort size), and the
//! share divides by the cohort size.
//!
//! All three reports sort their input internally (O(n log n)) and do not need it ordered.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate};
use prossimo_model::Channel;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{AnalyticsError, DAY_MS, Interaction};

/// More periods than this means a wrong timestamp (e.g. a year-1970 default) rather than
/// real history, and would make the cohort matrix quadratic in size.
pub const MAX_PERIODS: i64 = 5_000;

/// Each segment gets a full series; more names than this means the map holds something
/// else (an id, an email) and would need memory per customer.
pub const MAX_SEGMENTS: usize = 1_000;

/// The length of a reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// ISO week, Monday start, UTC.
    Week,
    /// Calendar month, UTC.
    Month,
}

/// Options of [`base_dynamics`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DynamicsOptions {
    pub granularity: Granularity,
    /// N in the `churned` definition: periods without purchase after which a customer
    /// counts as churned (≥ 1; 1 makes `churned` equal `lapsed`).
    pub churn_after_periods: u32,
}

/// One reporting period: a label and its bounds in unix milliseconds, `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportPeriod {
    /// `2025-W01` for weeks, `2025-01` for months.
    pub label: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The base's movement in one period (see the module docs for the formulas).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodDynamics {
    pub period: ReportPeriod,
    pub customers_total: u64,
    pub new: u64,
    pub active: u64,
    pub repeat: u64,
    pub retained: u64,
    pub reactivated: u64,
    pub lapsed: u64,
    pub churned: u64,
    pub growth_rate: Option<f64>,
    pub retention_rate: Option<f64>,
    pub churn_rate: Option<f64>,
    pub repeat_rate: Option<f64>,
    pub purchases: u64,
    pub revenue: f64,
}

/// The same series restricted to the customers assigned to one segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentDynamics {
    pub segment: String,
    pub periods: Vec<PeriodDynamics>,
}

/// What [`base_dynamics`] returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DynamicsReport {
    pub granularity: Granularity,
    pub churn_after_periods: u32,
    /// The whole base.
    pub periods: Vec<PeriodDynamics>,
    /// One entry per segment name, sorted by name; customers without an assignment count
    /// in `periods` only.
    pub segments: Vec<SegmentDynamics>,
}

/// The base's dynamics per period, overall and, when `segments` maps customers to segment
/// names, per segment.
pub fn base_dynamics(
    interactions: &[Interaction],
    segments: Option<&HashMap<i64, String>>,
    options: &DynamicsOptions,
) -> Result<DynamicsReport, AnalyticsError> {
    if options.churn_after_periods == 0 {
        return Err(AnalyticsError::InvalidInput(
            "churn_after_periods must be at least 1".into(),
        ));
    }
    let timeline = Timeline::new(interactions, options.granularity)?;

    let mut segment_names: Vec<&str> = segments
        .map(|m| m.values().map(String::as_str).collect())
        .unwrap_or_default();
    segment_names.sort_unstable();
    segment_names.dedup();
    if segment_names.len() > MAX_SEGMENTS {
        return Err(AnalyticsError::InvalidInput(format!(
            "{} distinct segment names (at most {MAX_SEGMENTS}): is this a segment assignment?",
            segment_names.len()
        )));
    }
    // Group 0 is the whole base, group g ≥ 1 the segment `segment_names[g − 1]`.
    let segment_group: HashMap<&str, usize> = segment_names
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, i + 1))
        .collect();
    let customer_group: HashMap<i64, usize> = segments
        .map(|m| {
            m.iter()
                .filter_map(|(c, name)| segment_group.get(name.as_str()).map(|g| (*c, *g)))
                .collect()
        })
        .unwrap_or_default();
    let groups_of =
        |customer: i64| std::iter::once(0).chain(customer_group.get(&customer).copied());

    let periods = timeline.len();
    let mut counts = vec![vec![PeriodCounts::default(); periods]; segment_names.len() + 1];

    for (interaction, &p) in timeline.interactions.iter().zip(&timeline.period_of) {
        if let Some(revenue) = interaction.revenue {
            for g in groups_of(interaction.customer) {
                counts[g][p].revenue += revenue;
                counts[g][p].purchases += u64::from(revenue >= 0.0);
            }
        }
    }

    let churn_after = options.churn_after_periods as usize;
    let purchases = timeline.purchase_periods();
    for run in purchases.chunk_by(|a, b| a.0 == b.0) {
        for g in groups_of(run[0].0) {
            let series = &mut counts[g];
            series[run[0].1].new += 1;
            for (j, &(_, p)) in run.iter().enumerate() {
                series[p].active += 1;
                if j > 0 && run[j - 1].1 + 1 == p {
                    series[p].retained += 1;
                }
                let next = run.get(j + 1).map(|&(_, n)| n);
                let churn_period = p + churn_after;
                if churn_period < periods && next.is_none_or(|n| n > churn_period) {
                    series[churn_period].churned += 1;
                }
            }
        }
    }

    let mut series = counts
        .iter()
        .map(|c| timeline.dynamics_rows(c))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let overall = series.next().unwrap_or_default();
    Ok(DynamicsReport {
        granularity: options.granularity,
        churn_after_periods: options.churn_after_periods,
        periods: overall,
        segments: segment_names
            .iter()
            .zip(series)
            .map(|(name, periods)| SegmentDynamics {
                segment: (*name).to_string(),
                periods,
            })
            .collect(),
    })
}

/// One acquisition cohort's row of the retention matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// The period of the cohort's first purchases.
    pub cohort: ReportPeriod,
    pub size: u64,
    /// `active[k]`: the cohort's customers who purchased `k` periods after acquisition,
    /// up to the report's last period; `active[0] == size`.
    pub active: Vec<u64>,
    /// `active[k] / size`.
    pub share: Vec<f64>,
}

/// Cohort × periods-since-acquisition retention matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortMatrix {
    pub granularity: Granularity,
    /// Cohorts with at least one customer, oldest first.
    pub cohorts: Vec<CohortRow>,
}

/// Acquisition cohorts and their activity in each later period.
pub fn acquisition_cohorts(
    interactions: &[Interaction],
    granularity: Granularity,
) -> Result<CohortMatrix, AnalyticsError> {
    let timeline = Timeline::new(interactions, granularity)?;
    let periods = timeline.len();
    // Row per acquisition period, allocated only for periods that acquire someone.
    let mut rows: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let purchases = timeline.purchase_periods();
    for run in purchases.chunk_by(|a, b| a.0 == b.0) {
        let cohort = run[0].1;
        let row = rows
            .entry(cohort)
            .or_insert_with(|| vec![0; periods - cohort]);
        for &(_, p) in run {
            row[p - cohort] += 1;
        }
    }
    let cohorts = rows
        .into_iter()
        .map(|(cohort, active)| {
            let size = active[0];
            Ok(CohortRow {
                cohort: timeline.report_period(cohort)?,
                size,
                share: active.iter().map(|&a| a as f64 / size as f64).collect(),
                active,
            })
        })
        .collect::<Result<_, AnalyticsError>>()?;
    Ok(CohortMatrix {
        granularity,
        cohorts,
    })
}

/// One channel's interactions and revenue in a period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChannelActivity {
    pub channel: Channel,
    pub interactions: u64,
    /// Interactions with revenue ≥ 0.
    pub purchases: u64,
    pub revenue: f64,
}

/// The channel mix of one period. Online means every channel that is not
/// [`Channel::is_offline`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelMixPeriod {
    pub period: ReportPeriod,
    /// Channels with at least one interaction, in [`Channel::ALL`] order.
    pub channels: Vec<ChannelActivity>,
    pub online_interactions: u64,
    pub offline_interactions: u64,
    pub online_revenue: f64,
    pub offline_revenue: f64,
    /// `offline / (online + offline)` interactions; `None` for an empty period.
    pub offline_interaction_share: Option<f64>,
    /// `offline / (online + offline)` revenue; `None` when the total is not positive. Within
    /// 0–1 unless refunds make one side negative.
    pub offline_revenue_share: Option<f64>,
}

/// Interactions and revenue per channel and period, with the offline share.
pub fn channel_mix(
    interactions: &[Interaction],
    granularity: Granularity,
) -> Result<Vec<ChannelMixPeriod>, AnalyticsError> {
    let timeline = Timeline::new(interactions, granularity)?;
    let mut per_period: Vec<BTreeMap<Channel, ChannelActivity>> =
        vec![BTreeMap::new(); timeline.len()];
    for (interaction, &p) in timeline.interactions.iter().zip(&timeline.period_of) {
        let activity = per_period[p]
            .entry(interaction.channel)
            .or_insert(ChannelActivity {
                channel: interaction.channel,
                interactions: 0,
                purchases: 0,
                revenue: 0.0,
            });
        activity.interactions += 1;
        if let Some(revenue) = interaction.revenue {
            activity.revenue += revenue;
            activity.purchases += u64::from(revenue >= 0.0);
        }
    }
    per_period
        .into_iter()
        .enumerate()
        .map(|(p, channels)| {
            let (offline, online): (Vec<&ChannelActivity>, Vec<&ChannelActivity>) =
                channels.values().partition(|a| a.channel.is_offline());
            let offline_interactions = offline.iter().map(|a| a.interactions).sum();
            let online_interactions = online.iter().map(|a| a.interactions).sum();
            let offline_revenue = offline.iter().map(|a| a.revenue).sum();
            let online_revenue = online.iter().map(|a| a.revenue).sum();
            Ok(ChannelMixPeriod {
                period: timeline.report_period(p)?,
                offline_interaction_share: ratio(
                    offline_interactions,
                    offline_interactions + online_interactions,
                ),
                offline_revenue_share: {
                    let total: f64 = offline_revenue + online_revenue;
                    (total > 0.0).then(|| offline_revenue / total)
                },
                channels: channels.into_values().collect(),
                online_interactions,
                offline_interactions,
                online_revenue,
                offline_revenue,
            })
        })
        .collect()
}

/// Per-period counters of one group, before the derived fields.
#[derive(Debug, Clone, Copy, Default)]
struct PeriodCounts {
    new: u64,
    active: u64,
    retained: u64,
    churned: u64,
    purchases: u64,
    revenue: f64,
}

/// The contiguous run of periods covering the input, and each interaction's place in it.
struct Timeline {
    granularity: Granularity,
    /// Absolute index of period 0 (weeks or months since the unix epoch).
    first_period: i64,
    /// The input in a canonical order (time, customer, channel, revenue), so that sums of
    /// revenue do not depend on how the caller ordered the log, not even in the last bit.
    interactions: Vec<Interaction>,
    /// Per interaction, its period relative to `first_period`.
    period_of: Vec<usize>,
}

impl Timeline {
    fn new(interactions: &[Interaction], granularity: Granularity) -> Result<Self, AnalyticsError> {
        if interactions.is_empty() {
            return Err(AnalyticsError::NotEnoughData("no interactions".into()));
        }
        let mut interactions = interactions.to_vec();
        interactions.par_sort_unstable_by(|a, b| {
            (a.at_ms, a.customer, a.channel)
                .cmp(&(b.at_ms, b.customer, b.channel))
                .then_with(|| match (a.revenue, b.revenue) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                })
        });
        let absolute: Vec<i64> = interactions
            .par_iter()
            .map(|i| {
                if let Some(revenue) = i.revenue
                    && !revenue.is_finite()
                {
                    return Err(AnalyticsError::InvalidInput(format!(
                        "customer {}: revenue {revenue} at {} ms is not a finite number",
                        i.customer, i.at_ms
                    )));
                }
                absolute_period(i.at_ms, granularity)
            })
            .collect::<Result<_, _>>()?;
        let first_period = absolute.par_iter().copied().min().unwrap_or(0);
        let last_period = absolute.par_iter().copied().max().unwrap_or(0);
        if last_period - first_period >= MAX_PERIODS {
            return Err(AnalyticsError::InvalidInput(format!(
                "interactions span {} periods (more than {MAX_PERIODS}): check the timestamps",
                last_period - first_period + 1
            )));
        }
        Ok(Timeline {
            granularity,
            first_period,
            interactions,
            // In range: 0 ≤ difference < MAX_PERIODS.
            period_of: absolute
                .par_iter()
                .map(|&p| (p - first_period) as usize)
                .collect(),
        })
    }

    fn len(&self) -> usize {
        self.period_of
            .iter()
            .copied()
            .max()
            .map_or(0, |last| last + 1)
    }

    /// (customer, period) of every purchase, sorted and without duplicates: each customer's
    /// run holds the distinct periods of their purchases in order.
    fn purchase_periods(&self) -> Vec<(i64, usize)> {
        let mut purchases: Vec<(i64, usize)> = self
            .interactions
            .iter()
            .zip(&self.period_of)
            .filter(|(i, _)| i.revenue.is_some_and(|r| r >= 0.0))
            .map(|(i, &p)| (i.customer, p))
            .collect();
        purchases.par_sort_unstable();
        purchases.dedup();
        purchases
    }

    fn report_period(&self, relative: usize) -> Result<ReportPeriod, AnalyticsError> {
        report_period(self.first_period + relative as i64, self.granularity)
    }

    /// The derived fields of the module docs, from one group's counters.
    fn dynamics_rows(
        &self,
        counts: &[PeriodCounts],
    ) -> Result<Vec<PeriodDynamics>, AnalyticsError> {
        let mut rows = Vec::with_capacity(counts.len());
        let mut customers_total = 0u64;
        let mut previous_active: Option<u64> = None;
        for (p, c) in counts.iter().enumerate() {
            let previous_total = customers_total;
            customers_total += c.new;
            let repeat = c.active - c.new;
            let retention_rate = previous_active.and_then(|a| ratio(c.retained, a));
            rows.push(PeriodDynamics {
                period: self.report_period(p)?,
                customers_total,
                new: c.new,
                active: c.active,
                repeat,
                retained: c.retained,
                reactivated: repeat - c.retained,
                lapsed: previous_active.map_or(0, |a| a - c.retained),
                churned: c.churned,
                growth_rate: previous_active
                    .and_then(|_| ratio(customers_total - previous_total, previous_total)),
                retention_rate,
                churn_rate: retention_rate.map(|r| 1.0 - r),
                repeat_rate: ratio(repeat, c.active),
                purchases: c.purchases,
                revenue: c.revenue,
            });
            previous_active = Some(c.active);
        }
        Ok(rows)
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Weeks since the ISO week holding 1970-01-01, or months since January 1970.
fn absolute_period(at_ms: i64, granularity: Granularity) -> Result<i64, AnalyticsError> {
    let Some(at) = DateTime::from_timestamp_millis(at_ms) else {
        return Err(AnalyticsError::InvalidInput(format!(
            "timestamp {at_ms} ms is out of range"
        )));
    };
    Ok(match granularity {
        // 1970-01-01 was a Thursday, so Monday 1969-12-29 (day −3) starts week 0.
        Granularity::Week => (at_ms.div_euclid(DAY_MS) + 3).div_euclid(7),
        Granularity::Month => i64::from(at.year()) * 12 + i64::from(at.month0()) - 1970 * 12,
    })
}

fn report_period(absolute: i64, granularity: Granularity) -> Result<ReportPeriod, AnalyticsError> {
    let out_of_range =
        || AnalyticsError::InvalidInput(format!("period {absolute} is out of the calendar"));
    let midnight_ms = |date: NaiveDate| {
        date.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis()
    };
    match granularity {
        Granularity::Week => {
            let monday_day = absolute * 7 - 3;
            let monday = i32::try_from(monday_day + UNIX_EPOCH_DAYS_FROM_CE)
                .ok()
                .and_then(NaiveDate::from_num_days_from_ce_opt)
                .ok_or_else(out_of_range)?;
            let week = monday.iso_week();
            Ok(ReportPeriod {
                label: format!("{}-W{:02}", week.year(), week.week()),
                start_ms: monday_day * DAY_MS,
                end_ms: (monday_day + 7) * DAY_MS,
            })
        }
        Granularity::Month => {
            let months = absolute + 1970 * 12;
            let year = i32::try_from(months.div_euclid(12)).map_err(|_| out_of_range())?;
            let month = months.rem_euclid(12) as u32 + 1;
            let start = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(out_of_range)?;
            let end = start
                .checked_add_months(chrono::Months::new(1))
                .ok_or_else(out_of_range)?;
            Ok(ReportPeriod {
                label: format!("{year:04}-{month:02}"),
                start_ms: midnight_ms(start),
                end_ms: midnight_ms(end),
            })
        }
    }
}

/// chrono's day number (`num_days_from_ce`) of 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;
