//! RFM scoring: hand-computed quintiles and ties, the segment grid cell by cell, and a
//! cross-check against pandas on the CDNOW sample.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use prossimo_analytics::rfm::{CustomerRfm, RfmSegment, score_rfm, summarize_segments};
use prossimo_analytics::{AnalyticsError, CustomerSummary, DAY_MS};

const AS_OF_MS: i64 = 1_000 * DAY_MS;

fn summary(customer: i64, last_ms: i64, purchase_days: u32, total_value: f64) -> CustomerSummary {
    CustomerSummary {
        customer,
        frequency: f64::from(purchase_days) - 1.0,
        recency: 0.0,
        t: 0.0,
        monetary_value: 0.0,
        total_value,
        purchase_days,
        first_ms: 0,
        last_ms,
    }
}

fn by_customer(scores: &[CustomerRfm], customer: i64) -> CustomerRfm {
    *scores
        .iter()
        .find(|s| s.customer == customer)
        .expect("customer scored")
}

/// Ten customers, ids 10..=100, given out of order. With n = 10 each quintile holds two
/// ranks: rank (0-based) r goes to max(1, ceil(5r / 9)) = 1,1,2,2,3,3,4,4,5,5.
fn ten_customers() -> Vec<CustomerSummary> {
    // (id, days before as_of, purchase days, total value)
    let rows = [
        (100, 0, 8, 500.0),
        (30, 400, 1, 20.0),
        (10, 10, 1, 20.0),
        (90, 20, 3, 90.0),
        (20, 10, 1, 35.0),
        (80, 300, 3, 20.0),
        (40, 500, 1, 15.0),
        (60, 30, 1, 60.0),
        (50, 200, 1, 40.0),
        (70, 100, 2, 75.0),
    ];
    rows.iter()
        .map(|&(id, days, f, m)| summary(id, AS_OF_MS - days * DAY_MS, f, m))
        .collect()
}

#[test]
fn quintiles_by_hand_with_ties_broken_by_customer_id() {
    let scores = score_rfm(&ten_customers(), AS_OF_MS).unwrap();
    // Output follows input order.
    let ids: Vec<i64> = scores.iter().map(|s| s.customer).collect();
    assert_eq!(ids, [100, 30, 10, 90, 20, 80, 40, 60, 50, 70]);

    // Recency ascending, ties by id: 100(0) 10(10) 20(10) 90(20) 60(30) 70(100) 50(200)
    // 80(300) 30(400) 40(500) → quintiles 1 1 2 2 3 3 4 4 5 5 → R = 6 − q.
    // Frequency: 10 20 30 40 50 60 (all 1) 70(2) 80 90 (3) 100(8) → 1 1 2 2 3 3 4 4 5 5:
    // equal frequencies get different scores, as rank(method="first") gives them.
    // Monetary: 40(15) 10(20) 30(20) 80(20) 20(35) 50(40) 60(60) 70(75) 90(90) 100(500).
    let expected = [
        // id, R, F, M
        (10, 5, 1, 1),
        (20, 4, 1, 3),
        (30, 1, 2, 2),
        (40, 1, 2, 1),
        (50, 2, 3, 3),
        (60, 3, 3, 4),
        (70, 3, 4, 4),
        (80, 2, 4, 2),
        (90, 4, 5, 5),
        (100, 5, 5, 5),
    ];
    for (id, r, f, m) in expected {
        let s = by_customer(&scores, id);
        assert_eq!(
            (s.recency_score, s.frequency_score, s.monetary_score),
            (r, f, m),
            "customer {id}"
        );
        assert_eq!(s.rfm_score.to_string(), format!("{r}{f}{m}"));
        assert_eq!(s.rfm_sum, r + f + m);
        assert_eq!(s.fm_score, (f + m).div_ceil(2));
        assert_eq!(s.segment, RfmSegment::from_scores(r, s.fm_score));
    }
    let c100 = by_customer(&scores, 100);
    assert_eq!(c100.segment, RfmSegment::Champions);
    assert_eq!(c100.mean_purchase_value, 500.0 / 8.0);
    // R1, FM ceil(3/2) = 2 → Lost.
    assert_eq!(by_customer(&scores, 40).segment, RfmSegment::Lost);
    // R5, F1, M1 → New.
    assert_eq!(by_customer(&scores, 10).segment, RfmSegment::New);
    // R2, FM ceil(6/2)=3 → At risk.
    assert_eq!(by_customer(&scores, 50).segment, RfmSegment::AtRisk);
}

#[test]
fn scores_do_not_depend_on_input_order() {
    let forward = score_rfm(&ten_customers(), AS_OF_MS).unwrap();
    let mut reversed_input = ten_customers();
    reversed_input.reverse();
    let reversed = score_rfm(&reversed_input, AS_OF_MS).unwrap();
    for s in &forward {
        assert_eq!(*s, by_customer(&reversed, s.customer));
    }
}

#[test]
fn quintiles_are_equal_sized_when_every_value_ties() {
    let all_equal: Vec<CustomerSummary> = (0..25)
        .map(|id| summary(id, AS_OF_MS - 5 * DAY_MS, 1, 10.0))
        .collect();
    let scores = score_rfm(&all_equal, AS_OF_MS).unwrap();
    for score in 1..=5u8 {
        let f_count = scores.iter().filter(|s| s.frequency_score == score).count();
        let r_count = scores.iter().filter(|s| s.recency_score == score).count();
        assert_eq!((f_count, r_count), (5, 5), "score {score}");
    }
    // Lowest ids get the lowest rank: F = 1 and, recency being ranked the same way, R = 5.
    assert_eq!(scores[0].frequency_score, 1);
    assert_eq!(scores[0].recency_score, 5);
    assert_eq!(scores[24].frequency_score, 5);
}

#[test]
fn two_customers_score_one_and_five() {
    let scores = score_rfm(
        &[
            summary(1, AS_OF_MS - DAY_MS, 2, 50.0),
            summary(2, AS_OF_MS - 9 * DAY_MS, 1, 10.0),
        ],
        AS_OF_MS,
    )
    .unwrap();
    assert_eq!(scores[0].rfm_score.to_string(), "555");
    assert_eq!(scores[1].rfm_score.to_string(), "111");
}

#[test]
fn recency_is_whole_days_rounded_down() {
    let scores = score_rfm(
        &[
            summary(1, AS_OF_MS - DAY_MS + 1, 1, 1.0),
            summary(2, AS_OF_MS - 3 * DAY_MS - 1, 1, 1.0),
            summary(3, AS_OF_MS, 1, 1.0),
        ],
        AS_OF_MS,
    )
    .unwrap();
    let days: Vec<i64> = scores.iter().map(|s| s.recency_days).collect();
    assert_eq!(days, [0, 3, 0]);
}

#[test]
fn invalid_summaries_are_rejected() {
    let ok = summary(1, AS_OF_MS - DAY_MS, 1, 1.0);
    assert!(matches!(
        score_rfm(&[ok], AS_OF_MS),
        Err(AnalyticsError::NotEnoughData(_))
    ));
    assert!(matches!(
        score_rfm(&[], AS_OF_MS),
        Err(AnalyticsError::NotEnoughData(_))
    ));
    let after = summary(2, AS_OF_MS + 1, 1, 1.0);
    let err = score_rfm(&[ok, after], AS_OF_MS).unwrap_err();
    assert!(matches!(&err, AnalyticsError::InvalidInput(m) if m.contains("customer 2")));
    let nan = summary(3, AS_OF_MS, 1, f64::NAN);
    assert!(matches!(
        score_rfm(&[ok, nan], AS_OF_MS),
        Err(AnalyticsError::InvalidInput(_))
    ));
    let no_days = summary(4, AS_OF_MS, 0, 1.0);
    assert!(matches!(
        score_rfm(&[ok, no_days], AS_OF_MS),
        Err(AnalyticsError::InvalidInput(_))
    ));
}

/// A range of the published table: (lower, upper] on the 0–5 axis.
type Edges = (u8, u8);

/// The published table (Putler's R × FM grid) as rectangles on the 0–5 axes; a score s is
/// the cell (s − 1, s]. Transcribed independently of the implementation's match.
const PUBLISHED: [(RfmSegment, Edges, Edges); 11] = [
    (RfmSegment::Champions, (4, 5), (4, 5)),
    (RfmSegment::Loyal, (2, 5), (3, 5)),
    (RfmSegment::PotentialLoyalist, (3, 5), (1, 3)),
    (RfmSegment::New, (4, 5), (0, 1)),
    (RfmSegment::Promising, (3, 4), (0, 1)),
    (RfmSegment::NeedAttention, (2, 3), (2, 3)),
    (RfmSegment::AboutToSleep, (2, 3), (0, 2)),
    (RfmSegment::AtRisk, (0, 2), (2, 5)),
    (RfmSegment::CantLose, (0, 1), (4, 5)),
    (RfmSegment::Hibernating, (1, 2), (1, 2)),
    (RfmSegment::Lost, (0, 2), (0, 2)),
];

#[test]
fn every_grid_cell_has_exactly_one_segment_the_published_one() {
    let contains = |(lo, hi): Edges, score: u8| lo < score && score <= hi;
    let area = |(r, fm): (Edges, Edges)| (r.1 - r.0) * (fm.1 - fm.0);
    let mut cells_per_segment = std::collections::BTreeMap::new();
    for r in 1..=5u8 {
        for fm in 1..=5u8 {
            let covering: Vec<_> = PUBLISHED
                .iter()
                .filter(|(_, rr, ff)| contains(*rr, r) && contains(*ff, fm))
                .collect();
            assert!(!covering.is_empty(), "cell R{r} FM{fm} has no segment");
            // Overlapping rectangles must nest, so the innermost one is unambiguous.
            let inner = covering
                .iter()
                .min_by_key(|(_, rr, ff)| area((*rr, *ff)))
                .unwrap();
            for (segment, rr, ff) in &covering {
                let nested = rr.0 <= inner.1.0
                    && inner.1.1 <= rr.1
                    && ff.0 <= inner.2.0
                    && inner.2.1 <= ff.1;
                assert!(nested, "R{r} FM{fm}: {segment:?} overlaps {:?}", inner.0);
                if *segment != inner.0 {
                    assert!(area((*rr, *ff)) > area((inner.1, inner.2)));
                }
            }
            assert_eq!(RfmSegment::from_scores(r, fm), inner.0, "R{r} FM{fm}");
            *cells_per_segment.entry(inner.0).or_insert(0) += 1;
        }
    }
    assert_eq!(cells_per_segment.len(), 11, "every segment is reachable");
    let counts: Vec<u32> = RfmSegment::ALL
        .iter()
        .map(|s| cells_per_segment[s])
        .collect();
    assert_eq!(counts, [1, 5, 4, 1, 1, 1, 2, 5, 1, 1, 3]);
}

#[test]
fn out_of_range_scores_count_as_the_nearest_end() {
    assert_eq!(RfmSegment::from_scores(0, 9), RfmSegment::CantLose);
    assert_eq!(RfmSegment::from_scores(9, 0), RfmSegment::New);
    assert_eq!(RfmSegment::from_scores(7, 7), RfmSegment::Champions);
}

#[test]
fn segments_serialise_as_snake_case_with_english_labels() {
    let names: Vec<String> = RfmSegment::ALL
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "\"champions\"",
            "\"loyal\"",
            "\"potential_loyalist\"",
            "\"new\"",
            "\"promising\"",
            "\"need_attention\"",
            "\"about_to_sleep\"",
            "\"at_risk\"",
            "\"cant_lose\"",
            "\"hibernating\"",
            "\"lost\"",
        ]
    );
    for s in RfmSegment::ALL {
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            format!("\"{}\"", s.as_str())
        );
    }
    assert_eq!(RfmSegment::CantLose.label(), "Can't lose");
    assert_eq!(
        RfmSegment::PotentialLoyalist.to_string(),
        "Potential loyalist"
    );

    let scores = score_rfm(&ten_customers(), AS_OF_MS).unwrap();
    let json = serde_json::to_value(by_customer(&scores, 100)).unwrap();
    assert_eq!(json["rfm_score"], "555");
    assert_eq!(json["segment"], "champions");
    assert_eq!(json["recency_days"], 0);
}

#[test]
fn segment_summary_counts_shares_and_means() {
    let scores = score_rfm(&ten_customers(), AS_OF_MS).unwrap();
    let summary = summarize_segments(&scores);
    assert_eq!(summary.len(), 11);
    assert_eq!(
        summary.iter().map(|s| s.segment).collect::<Vec<_>>(),
        RfmSegment::ALL
    );
    assert_eq!(summary.iter().map(|s| s.customers).sum::<u64>(), 10);
    let share_total: f64 = summary.iter().map(|s| s.customer_share).sum();
    assert!((share_total - 1.0).abs() < 1e-12);
    let value_share_total: f64 = summary.iter().filter_map(|s| s.value_share).sum();
    assert!((value_share_total - 1.0).abs() < 1e-12);

    for row in &summary {
        let members: Vec<&CustomerRfm> =
            scores.iter().filter(|s| s.segment == row.segment).collect();
        assert_eq!(row.customers, members.len() as u64);
        assert_eq!(row.label, row.segment.label());
        let total: f64 = members.iter().map(|s| s.monetary).sum();
        assert_eq!(row.total_value, total);
        if members.is_empty() {
            assert_eq!(row.mean_recency_days, None);
            assert_eq!(row.mean_monetary, None);
        } else {
            let n = members.len() as f64;
            let recency = members.iter().map(|s| s.recency_days as f64).sum::<f64>() / n;
            let frequency = members.iter().map(|s| f64::from(s.frequency)).sum::<f64>() / n;
            assert_eq!(row.mean_recency_days, Some(recency));
            assert_eq!(row.mean_frequency, Some(frequency));
            assert_eq!(row.mean_monetary, Some(total / n));
        }
    }
    let champions = &summary[0];
    assert_eq!(champions.customers, 1);
    assert_eq!(champions.total_value, 500.0);
    assert_eq!(champions.customer_share, 0.1);
}

#[test]
fn quintiles_match_pandas_qcut_of_rank_first_on_cdnow() {
    // See fixtures/make_rfm_fixture.py: 2,357 CDNOW customers, analysis date 1998-07-01.
    const CDNOW_AS_OF_MS: i64 = 899_251_200_000;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rfm_cdnow_pandas.csv"
    );
    let mut reader = csv::Reader::from_path(path).unwrap();
    let mut summaries = Vec::new();
    let mut expected = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        let field = |i: usize| record[i].to_string();
        let customer: i64 = field(0).parse().unwrap();
        summaries.push(summary(
            customer,
            field(1).parse().unwrap(),
            field(2).parse().unwrap(),
            field(3).parse().unwrap(),
        ));
        let recency_days: i64 = field(4).parse().unwrap();
        let r: u8 = field(5).parse().unwrap();
        let f: u8 = field(6).parse().unwrap();
        let m: u8 = field(7).parse().unwrap();
        expected.push((customer, recency_days, r, f, m));
    }
    assert_eq!(summaries.len(), 2357);
    // The input order must not matter: score the rows reversed.
    summaries.reverse();
    let scores = score_rfm(&summaries, CDNOW_AS_OF_MS).unwrap();
    let mut mismatches = 0;
    for &(customer, recency_days, r, f, m) in &expected {
        let s = by_customer(&scores, customer);
        assert_eq!(s.recency_days, recency_days, "customer {customer}");
        if (s.recency_score, s.frequency_score, s.monetary_score) != (r, f, m) {
            mismatches += 1;
            eprintln!("customer {customer}: got {}, pandas {r}{f}{m}", s.rfm_score);
        }
    }
    assert_eq!(mismatches, 0);
}

/// Timing, not a benchmark:
/// `cargo test --release -p prossimo-analytics --test rfm -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_one_million_customers() {
    let n = 1_000_000i64;
    let summaries: Vec<CustomerSummary> = (0..n)
        .map(|i| {
            // A cheap deterministic scramble gives varied, tied values.
            let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
            summary(
                n - i,
                AS_OF_MS - (h % 700) as i64 * DAY_MS,
                1 + (h % 13) as u32,
                (h % 100_000) as f64 / 100.0,
            )
        })
        .collect();
    let start = std::time::Instant::now();
    let scores = score_rfm(&summaries, AS_OF_MS).unwrap();
    let scored = start.elapsed();
    let segments = summarize_segments(&scores);
    eprintln!(
        "score_rfm on {n} summaries: {scored:?}; with summarize_segments: {:?}",
        start.elapsed()
    );
    assert_eq!(segments.iter().map(|s| s.customers).sum::<u64>(), n as u64);
}
