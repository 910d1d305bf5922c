//! Base dynamics: hand-built logs with known answers across ISO-week and month boundaries,
//! the cohort matrix, the channel mix, and invariants on random logs.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::collections::HashMap;

use chrono::NaiveDate;
use proptest::prelude::*;
use prossimo_analytics::dynamics::{
    DynamicsOptions, Granularity, PeriodDynamics, acquisition_cohorts, base_dynamics, channel_mix,
};
use prossimo_analytics::{AnalyticsError, Interaction};
use prossimo_model::Channel;

fn ms(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32, milli: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|date| date.and_hms_milli_opt(h, min, s, milli))
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn day(y: i32, m: u32, d: u32) -> i64 {
    ms(y, m, d, 12, 0, 0, 0)
}

fn buy(customer: i64, at_ms: i64, channel: Channel, revenue: f64) -> Interaction {
    Interaction {
        customer,
        at_ms,
        channel,
        revenue: Some(revenue),
    }
}

fn visit(customer: i64, at_ms: i64, channel: Channel) -> Interaction {
    Interaction {
        customer,
        at_ms,
        channel,
        revenue: None,
    }
}

const A: i64 = 1;
const B: i64 = 2;
const C: i64 = 3;
const D: i64 = 4;

/// Four ISO weeks around new year 2025: 2024-W52 (from Mon 23 Dec), 2025-W01 (from Mon 30 Dec
/// 2024: ISO week 1 starts in December), 2025-W02, 2025-W03.
fn new_year_log() -> Vec<Interaction> {
    vec![
        buy(A, day(2024, 12, 23), Channel::Web, 10.0),
        buy(C, day(2024, 12, 24), Channel::Store, 20.0),
        buy(A, day(2024, 12, 31), Channel::Store, 15.0),
        // Last millisecond of 2025-W01, then the first of 2025-W02.
        buy(B, ms(2025, 1, 5, 23, 59, 59, 999), Channel::App, 5.0),
        buy(B, ms(2025, 1, 6, 0, 0, 0, 0), Channel::Web, 7.0),
        // A refund: revenue, but not a purchase, so A is not active in W02.
        buy(A, day(2025, 1, 8), Channel::Web, -10.0),
        visit(D, day(2025, 1, 7), Channel::Web),
        visit(D, day(2025, 1, 9), Channel::Email),
        buy(A, day(2025, 1, 13), Channel::Web, 12.0),
        visit(C, day(2025, 1, 14), Channel::Web),
    ]
}

fn weekly(churn_after_periods: u32) -> DynamicsOptions {
    DynamicsOptions {
        granularity: Granularity::Week,
        churn_after_periods,
    }
}

fn column(rows: &[PeriodDynamics], f: impl Fn(&PeriodDynamics) -> u64) -> Vec<u64> {
    rows.iter().map(f).collect()
}

#[test]
fn weekly_dynamics_across_new_year() {
    let report = base_dynamics(&new_year_log(), None, &weekly(2)).unwrap();
    let rows = &report.periods;
    let labels: Vec<&str> = rows.iter().map(|r| r.period.label.as_str()).collect();
    assert_eq!(labels, ["2024-W52", "2025-W01", "2025-W02", "2025-W03"]);
    assert_eq!(rows[1].period.start_ms, ms(2024, 12, 30, 0, 0, 0, 0));
    assert_eq!(rows[1].period.end_ms, ms(2025, 1, 6, 0, 0, 0, 0));

    // W52: A and C new. W01: A retained, B new, C lapsed. W02: B retained, A lapsed (its
    // refund is no purchase). W03: A reactivated, B lapsed. D never purchases.
    assert_eq!(column(rows, |r| r.customers_total), [2, 3, 3, 3]);
    assert_eq!(column(rows, |r| r.new), [2, 1, 0, 0]);
    assert_eq!(column(rows, |r| r.active), [2, 2, 1, 1]);
    assert_eq!(column(rows, |r| r.repeat), [0, 1, 1, 1]);
    assert_eq!(column(rows, |r| r.retained), [0, 1, 1, 0]);
    assert_eq!(column(rows, |r| r.reactivated), [0, 0, 0, 1]);
    assert_eq!(column(rows, |r| r.lapsed), [0, 1, 1, 1]);
    // Two weeks without purchase: only C (last bought in W52) by W02; A came back in W03
    // before its second empty week.
    assert_eq!(column(rows, |r| r.churned), [0, 0, 1, 0]);
    assert_eq!(column(rows, |r| r.purchases), [2, 2, 1, 1]);

    let growth: Vec<Option<f64>> = rows.iter().map(|r| r.growth_rate).collect();
    assert_eq!(growth, [None, Some(0.5), Some(0.0), Some(0.0)]);
    let retention: Vec<Option<f64>> = rows.iter().map(|r| r.retention_rate).collect();
    assert_eq!(retention, [None, Some(0.5), Some(0.5), Some(0.0)]);
    let churn: Vec<Option<f64>> = rows.iter().map(|r| r.churn_rate).collect();
    assert_eq!(churn, [None, Some(0.5), Some(0.5), Some(1.0)]);
    let repeat: Vec<Option<f64>> = rows.iter().map(|r| r.repeat_rate).collect();
    assert_eq!(repeat, [Some(0.0), Some(0.5), Some(1.0), Some(1.0)]);
    let revenue: Vec<f64> = rows.iter().map(|r| r.revenue).collect();
    assert_eq!(revenue, [30.0, 20.0, -3.0, 12.0]);
}

#[test]
fn churned_after_one_period_equals_lapsed() {
    let report = base_dynamics(&new_year_log(), None, &weekly(1)).unwrap();
    assert_eq!(column(&report.periods, |r| r.churned), [0, 1, 1, 1]);
    assert_eq!(
        column(&report.periods, |r| r.churned),
        column(&report.periods, |r| r.lapsed)
    );
}

#[test]
fn input_order_does_not_matter() {
    let mut shuffled = new_year_log();
    shuffled.reverse();
    shuffled.swap(1, 7);
    let options = weekly(2);
    assert_eq!(
        base_dynamics(&shuffled, None, &options).unwrap(),
        base_dynamics(&new_year_log(), None, &options).unwrap()
    );
    assert_eq!(
        acquisition_cohorts(&shuffled, Granularity::Week).unwrap(),
        acquisition_cohorts(&new_year_log(), Granularity::Week).unwrap()
    );
    assert_eq!(
        channel_mix(&shuffled, Granularity::Week).unwrap(),
        channel_mix(&new_year_log(), Granularity::Week).unwrap()
    );
}

#[test]
fn per_segment_series() {
    let segments: HashMap<i64, String> = [(A, "vip"), (B, "vip"), (C, "base"), (D, "base")]
        .into_iter()
        .map(|(c, s)| (c, s.to_string()))
        .collect();
    let report = base_dynamics(&new_year_log(), Some(&segments), &weekly(2)).unwrap();
    let names: Vec<&str> = report.segments.iter().map(|s| s.segment.as_str()).collect();
    assert_eq!(names, ["base", "vip"]);
    let base = &report.segments[0].periods;
    let vip = &report.segments[1].periods;
    assert_eq!(column(base, |r| r.active), [1, 0, 0, 0]);
    assert_eq!(column(base, |r| r.lapsed), [0, 1, 0, 0]);
    assert_eq!(column(vip, |r| r.active), [1, 2, 1, 1]);
    assert_eq!(column(vip, |r| r.customers_total), [1, 2, 2, 2]);
    assert_eq!(vip[1].retention_rate, Some(1.0));
    // Everyone is assigned, so the segments add up to the whole base.
    for (p, overall) in report.periods.iter().enumerate() {
        assert_eq!(overall.active, base[p].active + vip[p].active);
        assert_eq!(overall.new, base[p].new + vip[p].new);
        assert_eq!(overall.revenue, base[p].revenue + vip[p].revenue);
    }
    assert_eq!(base[0].period, report.periods[0].period);
}

#[test]
fn weekly_cohort_matrix() {
    let matrix = acquisition_cohorts(&new_year_log(), Granularity::Week).unwrap();
    assert_eq!(matrix.cohorts.len(), 2);
    let w52 = &matrix.cohorts[0];
    assert_eq!(w52.cohort.label, "2024-W52");
    assert_eq!(w52.size, 2);
    assert_eq!(w52.active, [2, 1, 0, 1]);
    assert_eq!(w52.share, [1.0, 0.5, 0.0, 0.5]);
    let w01 = &matrix.cohorts[1];
    assert_eq!(w01.cohort.label, "2025-W01");
    assert_eq!(w01.active, [1, 1, 0]);
    assert_eq!(w01.share, [1.0, 1.0, 0.0]);
}

#[test]
fn weekly_channel_mix() {
    let mix = channel_mix(&new_year_log(), Granularity::Week).unwrap();
    assert_eq!(mix.len(), 4);
    // W52: web purchase 10, store purchase 20.
    assert_eq!(mix[0].online_interactions, 1);
    assert_eq!(mix[0].offline_interactions, 1);
    assert_eq!(mix[0].offline_interaction_share, Some(0.5));
    assert_eq!(mix[0].offline_revenue_share, Some(20.0 / 30.0));
    // W01: store 15, app 5.
    assert_eq!(mix[1].offline_revenue_share, Some(0.75));
    let channels: Vec<Channel> = mix[1].channels.iter().map(|c| c.channel).collect();
    assert_eq!(channels, [Channel::App, Channel::Store]);
    // W02: web purchase 7, web refund −10, a web visit and an email: all online.
    let web = mix[2].channels[0];
    assert_eq!(web.channel, Channel::Web);
    assert_eq!((web.interactions, web.purchases, web.revenue), (3, 1, -3.0));
    assert_eq!(mix[2].channels[1].channel, Channel::Email);
    assert_eq!(mix[2].offline_interaction_share, Some(0.0));
    // Revenue −3 in total: no meaningful share.
    assert_eq!(mix[2].offline_revenue_share, None);
    assert_eq!(mix[2].online_revenue, -3.0);
}

#[test]
fn monthly_boundaries_and_an_empty_month() {
    let log = vec![
        buy(A, ms(2025, 1, 31, 23, 59, 59, 999), Channel::Web, 10.0),
        buy(B, ms(2025, 2, 1, 0, 0, 0, 0), Channel::Store, 20.0),
        buy(B, ms(2025, 2, 28, 23, 0, 0, 0), Channel::Store, 5.0),
        buy(A, day(2025, 4, 1), Channel::Web, 30.0),
    ];
    let options = DynamicsOptions {
        granularity: Granularity::Month,
        churn_after_periods: 1,
    };
    let report = base_dynamics(&log, None, &options).unwrap();
    let rows = &report.periods;
    let labels: Vec<&str> = rows.iter().map(|r| r.period.label.as_str()).collect();
    assert_eq!(labels, ["2025-01", "2025-02", "2025-03", "2025-04"]);
    assert_eq!(rows[1].period.start_ms, ms(2025, 2, 1, 0, 0, 0, 0));
    assert_eq!(rows[1].period.end_ms, ms(2025, 3, 1, 0, 0, 0, 0));
    assert_eq!(column(rows, |r| r.new), [1, 1, 0, 0]);
    assert_eq!(column(rows, |r| r.active), [1, 1, 0, 1]);
    assert_eq!(column(rows, |r| r.purchases), [1, 2, 0, 1]);
    assert_eq!(column(rows, |r| r.lapsed), [0, 1, 1, 0]);
    assert_eq!(column(rows, |r| r.reactivated), [0, 0, 0, 1]);
    // March has no buyers: no repeat rate; April follows an empty month: no retention rate.
    assert_eq!(rows[2].repeat_rate, None);
    assert_eq!(rows[3].retention_rate, None);
    assert_eq!(rows[2].retention_rate, Some(0.0));

    let cohorts = acquisition_cohorts(&log, Granularity::Month).unwrap();
    assert_eq!(cohorts.cohorts[0].active, [1, 0, 0, 1]);
    assert_eq!(cohorts.cohorts[1].cohort.label, "2025-02");
    assert_eq!(cohorts.cohorts[1].active, [1, 0, 0]);
}

#[test]
fn december_weeks_and_year_53() {
    // 2020 has 53 ISO weeks; 2021-01-03 (Sunday) is still in 2020-W53.
    let log = vec![
        buy(A, day(2020, 12, 28), Channel::Web, 1.0),
        buy(A, day(2021, 1, 3), Channel::Web, 1.0),
        buy(A, day(2021, 1, 4), Channel::Web, 1.0),
    ];
    let report = base_dynamics(&log, None, &weekly(1)).unwrap();
    let labels: Vec<&str> = report
        .periods
        .iter()
        .map(|r| r.period.label.as_str())
        .collect();
    assert_eq!(labels, ["2020-W53", "2021-W01"]);
    assert_eq!(column(&report.periods, |r| r.purchases), [2, 1]);
}

#[test]
fn invalid_input_is_rejected() {
    assert!(matches!(
        base_dynamics(&[], None, &weekly(1)),
        Err(AnalyticsError::NotEnoughData(_))
    ));
    assert!(matches!(
        base_dynamics(&new_year_log(), None, &weekly(0)),
        Err(AnalyticsError::InvalidInput(_))
    ));
    let nan = [buy(A, day(2025, 1, 1), Channel::Web, f64::NAN)];
    assert!(matches!(
        channel_mix(&nan, Granularity::Month),
        Err(AnalyticsError::InvalidInput(m)) if m.contains("customer 1")
    ));
    // A date centuries off (a typo, a bad default) would make a useless, huge report.
    let span = [
        buy(A, day(2025, 1, 1), Channel::Web, 1.0),
        buy(A, day(2525, 1, 1), Channel::Web, 1.0),
        buy(A, i64::MAX, Channel::Web, 1.0),
    ];
    assert!(matches!(
        acquisition_cohorts(&span, Granularity::Week),
        Err(AnalyticsError::InvalidInput(m)) if m.contains("out of range")
    ));
    assert!(matches!(
        acquisition_cohorts(&span[..2], Granularity::Week),
        Err(AnalyticsError::InvalidInput(m)) if m.contains("periods")
    ));
}

#[test]
fn reports_serialise_to_json() {
    let report = base_dynamics(&new_year_log(), None, &weekly(2)).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["granularity"], "week");
    assert_eq!(json["periods"][1]["period"]["label"], "2025-W01");
    assert_eq!(json["periods"][0]["growth_rate"], serde_json::Value::Null);
    let mix =
        serde_json::to_value(channel_mix(&new_year_log(), Granularity::Week).unwrap()).unwrap();
    assert_eq!(mix[0]["channels"][0]["channel"], "web");
}

fn arbitrary_log() -> impl Strategy<Value = Vec<Interaction>> {
    let start = ms(2023, 11, 20, 0, 0, 0, 0);
    let interaction = (
        0i64..25,
        0i64..(500 * 86_400_000),
        0usize..Channel::ALL.len(),
        prop_oneof![
            Just(None),
            (0u32..10_000).prop_map(|c| Some(f64::from(c) / 100.0)),
        ],
    )
        .prop_map(move |(customer, offset, channel, revenue)| Interaction {
            customer,
            at_ms: start + offset,
            channel: Channel::ALL[channel],
            revenue,
        });
    prop::collection::vec(interaction, 1..120)
}

fn unit(x: Option<f64>) -> bool {
    x.is_none_or(|v| (0.0..=1.0).contains(&v))
}

proptest! {
    #[test]
    fn dynamics_invariants(
        log in arbitrary_log(),
        monthly in any::<bool>(),
        churn_after in 1u32..4,
    ) {
        let granularity = if monthly { Granularity::Month } else { Granularity::Week };
        let segments: HashMap<i64, String> =
            (0..25).map(|c| (c, format!("s{}", c % 3))).collect();
        let options = DynamicsOptions { granularity, churn_after_periods: churn_after };
        let report = base_dynamics(&log, Some(&segments), &options).unwrap();
        let rows = &report.periods;
        let mut customers: Vec<i64> =
            log.iter().filter(|i| i.revenue.is_some()).map(|i| i.customer).collect();
        customers.sort_unstable();
        customers.dedup();

        for (p, r) in rows.iter().enumerate() {
            prop_assert_eq!(r.new + r.repeat, r.active);
            prop_assert_eq!(r.retained + r.reactivated, r.repeat);
            if p > 0 {
                prop_assert_eq!(r.lapsed + r.retained, rows[p - 1].active);
                prop_assert_eq!(r.customers_total, rows[p - 1].customers_total + r.new);
                prop_assert!(r.period.start_ms == rows[p - 1].period.end_ms);
            }
            if churn_after == 1 {
                prop_assert_eq!(r.churned, r.lapsed);
            }
            prop_assert!(r.active <= r.customers_total);
            prop_assert!(unit(r.retention_rate) && unit(r.churn_rate) && unit(r.repeat_rate));
        }
        prop_assert_eq!(rows.last().map(|r| r.customers_total), Some(customers.len() as u64));
        for (p, overall) in rows.iter().enumerate() {
            let sum = |f: fn(&PeriodDynamics) -> u64| {
                report.segments.iter().map(|s| f(&s.periods[p])).sum::<u64>()
            };
            prop_assert_eq!(sum(|r| r.active), overall.active);
            prop_assert_eq!(sum(|r| r.churned), overall.churned);
            prop_assert_eq!(sum(|r| r.customers_total), overall.customers_total);
        }

        let cohorts = acquisition_cohorts(&log, granularity).unwrap();
        let sizes: u64 = cohorts.cohorts.iter().map(|c| c.size).sum();
        prop_assert_eq!(sizes, customers.len() as u64);
        for c in &cohorts.cohorts {
            prop_assert_eq!(c.active[0], c.size);
            prop_assert!(c.share.iter().all(|s| (0.0..=1.0).contains(s)));
            prop_assert_eq!(
                c.active.len(),
                rows.len() - rows.iter().position(|r| r.period == c.cohort).unwrap()
            );
        }

        let mix = channel_mix(&log, granularity).unwrap();
        prop_assert_eq!(mix.len(), rows.len());
        let interactions: u64 = mix.iter()
            .map(|m| m.online_interactions + m.offline_interactions)
            .sum();
        prop_assert_eq!(interactions, log.len() as u64);
        for m in &mix {
            prop_assert!(unit(m.offline_interaction_share) && unit(m.offline_revenue_share));
            let per_channel: u64 = m.channels.iter().map(|c| c.interactions).sum();
            prop_assert_eq!(per_channel, m.online_interactions + m.offline_interactions);
        }

        let mut reversed = log.clone();
        reversed.reverse();
        prop_assert_eq!(base_dynamics(&reversed, Some(&segments), &options).unwrap(), report);
    }
}

/// Timing, not a benchmark:
/// `cargo test --release -p prossimo-analytics --test dynamics -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_one_million_customers() {
    let customers = 1_000_000u64;
    let start_ms = ms(2023, 1, 1, 0, 0, 0, 0);
    let log: Vec<Interaction> = (0..5 * customers)
        .map(|i| {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            Interaction {
                customer: (h % customers) as i64,
                at_ms: start_ms + ((h >> 20) % (730 * 86_400_000)) as i64,
                channel: Channel::ALL[(h >> 8) as usize % Channel::ALL.len()],
                revenue: (h % 3 == 0).then_some((h >> 40) as f64 / 1e6),
            }
        })
        .collect();
    let segments: HashMap<i64, String> = (0..customers as i64)
        .map(|c| (c, format!("s{}", c % 11)))
        .collect();
    let options = DynamicsOptions {
        granularity: Granularity::Week,
        churn_after_periods: 4,
    };
    let start = std::time::Instant::now();
    let report = base_dynamics(&log, Some(&segments), &options).unwrap();
    let dynamics = start.elapsed();
    let start = std::time::Instant::now();
    let cohorts = acquisition_cohorts(&log, Granularity::Week).unwrap();
    let cohort_time = start.elapsed();
    let start = std::time::Instant::now();
    let mix = channel_mix(&log, Granularity::Week).unwrap();
    eprintln!(
        "{} interactions, {customers} customers, weekly: \
         base_dynamics with 11 segments {dynamics:?}, \
         acquisition_cohorts {cohort_time:?}, channel_mix {:?}",
        log.len(),
        start.elapsed()
    );
    assert_eq!(report.periods.len(), mix.len());
    assert!(!cohorts.cohorts.is_empty());
}
