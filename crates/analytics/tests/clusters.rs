//! Clusters: blobs recovered with the right k and memberships, determinism, centroids in
//! original units, errors, and scikit-learn's silhouette and k-means inertia as references.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use prossimo_analytics::AnalyticsError;
use prossimo_analytics::clusters::{
    ClusterOptions, Clustering, Features, cluster_customers, silhouette_score,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller.
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Blobs around `centres` with a per-feature spread, `sizes[b]` points each, shuffled;
/// returns the features and each row's true blob.
fn blobs(
    centres: &[[f64; 3]],
    spread: [f64; 3],
    sizes: &[usize],
    seed: u64,
) -> (Features, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<(usize, [f64; 3])> = Vec::new();
    for (b, (centre, &size)) in centres.iter().zip(sizes).enumerate() {
        for _ in 0..size {
            let mut row = *centre;
            for (x, s) in row.iter_mut().zip(spread) {
                *x += s * standard_normal(&mut rng);
            }
            rows.push((b, row));
        }
    }
    // Interleave the blobs so that input order carries no hint.
    for i in (1..rows.len()).rev() {
        let j = rng.random_range(0..=i);
        rows.swap(i, j);
    }
    let features = Features {
        names: vec!["recency".into(), "frequency".into(), "monetary".into()],
        customers: (0..rows.len() as i64).map(|c| 1000 + c).collect(),
        values: rows.iter().flat_map(|(_, r)| *r).collect(),
    };
    (features, rows.iter().map(|(b, _)| *b).collect())
}

/// Days since purchase, purchase count, spend: three groups far apart in every unit.
const CENTRES: [[f64; 3]; 3] = [[20.0, 12.0, 900.0], [200.0, 2.0, 80.0], [60.0, 5.0, 300.0]];
const SPREAD: [f64; 3] = [6.0, 0.8, 40.0];

fn assert_recovers(clustering: &Clustering, truth: &[usize], sizes: &[usize]) {
    assert_eq!(clustering.k, sizes.len());
    // Clusters are numbered largest first, and blob sizes differ, so cluster c is the blob
    // with the c-th largest size.
    let mut by_size: Vec<usize> = (0..sizes.len()).collect();
    by_size.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]));
    for (assignment, &blob) in clustering.assignments.iter().zip(truth) {
        assert_eq!(
            by_size[assignment.cluster], blob,
            "customer {}",
            assignment.customer
        );
    }
    for (c, profile) in clustering.clusters.iter().enumerate() {
        assert_eq!(profile.cluster, c);
        assert_eq!(profile.size, sizes[by_size[c]] as u64);
    }
}

#[test]
fn well_separated_blobs_give_k_three_and_their_memberships() {
    let sizes = [150, 100, 50];
    let (features, truth) = blobs(&CENTRES, SPREAD, &sizes, 11);
    let clustering = cluster_customers(&features, &ClusterOptions::default()).unwrap();
    assert_recovers(&clustering, &truth, &sizes);

    let ks: Vec<usize> = clustering.candidates.iter().map(|c| c.k).collect();
    assert_eq!(ks, [2, 3, 4, 5, 6, 7, 8]);
    let best = clustering
        .candidates
        .iter()
        .max_by(|a, b| a.silhouette.partial_cmp(&b.silhouette).unwrap())
        .unwrap();
    assert_eq!(best.k, 3);
    assert!(best.silhouette.unwrap() > 0.7, "{best:?}");
    assert_eq!(clustering.fit_points, 300);
    assert_eq!(clustering.silhouette_points, 300);
    let shares: f64 = clustering.clusters.iter().map(|c| c.share).sum();
    assert!((shares - 1.0).abs() < 1e-12);
    assert_eq!(clustering.clusters[0].share, 0.5);
}

#[test]
fn centroids_are_member_means_in_original_units() {
    let sizes = [150, 100, 50];
    let (features, truth) = blobs(&CENTRES, SPREAD, &sizes, 12);
    let clustering = cluster_customers(&features, &ClusterOptions::default()).unwrap();
    for profile in &clustering.clusters {
        let members: Vec<usize> = clustering
            .assignments
            .iter()
            .enumerate()
            .filter(|(_, a)| a.cluster == profile.cluster)
            .map(|(row, _)| row)
            .collect();
        for (d, &centre) in profile.centroid.iter().enumerate() {
            let mean = members
                .iter()
                .map(|&row| features.values[row * 3 + d])
                .sum::<f64>()
                / members.len() as f64;
            assert!(
                (centre - mean).abs() < 1e-9 * mean.abs().max(1.0),
                "{centre} vs {mean}"
            );
        }
        // And close to the true centre of its blob (the mean of ≥ 50 draws).
        let blob = truth[members[0]];
        for (d, &centre) in profile.centroid.iter().enumerate() {
            assert!(
                (centre - CENTRES[blob][d]).abs() < 4.0 * SPREAD[d] / 50f64.sqrt(),
                "cluster {} feature {d}: {centre} vs {}",
                profile.cluster,
                CENTRES[blob][d]
            );
        }
    }
    // The high spenders are the most distinctive on monetary, above the mean.
    let spenders = clustering
        .clusters
        .iter()
        .find(|c| c.centroid[2] > 600.0)
        .unwrap();
    assert_eq!(
        spenders.description,
        "high monetary (+1.0 sd), high frequency (+1.0 sd), low recency (-0.8 sd)"
    );
    // z = (centre − overall mean) / population standard deviation, most distinctive first.
    let n = truth.len() as f64;
    for (d, name) in features.names.iter().enumerate() {
        let column: Vec<f64> = features.values.iter().skip(d).step_by(3).copied().collect();
        let mean = column.iter().sum::<f64>() / n;
        let std = (column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let z = (spenders.centroid[d] - mean) / std;
        assert!((spenders.centroid_z[d] - z).abs() < 1e-9, "{name}");
        let listed = spenders
            .distinctive_features
            .iter()
            .find(|f| f.feature == *name)
            .unwrap();
        assert!((listed.z - z).abs() < 1e-9);
    }
    assert!(
        spenders
            .distinctive_features
            .windows(2)
            .all(|w| w[0].z.abs() >= w[1].z.abs())
    );
    assert!(
        spenders.description.contains("high monetary"),
        "{}",
        spenders.description
    );
    assert!(
        spenders.description.contains("low recency"),
        "{}",
        spenders.description
    );
}

#[test]
fn same_seed_same_result_and_fixed_k() {
    let sizes = [120, 80, 40];
    let (features, _) = blobs(&CENTRES, SPREAD, &sizes, 13);
    let options = ClusterOptions {
        seed: 99,
        ..ClusterOptions::default()
    };
    let first = cluster_customers(&features, &options).unwrap();
    let second = cluster_customers(&features, &options).unwrap();
    assert_eq!(first, second);

    let fixed = cluster_customers(
        &features,
        &ClusterOptions {
            k: Some(5),
            ..options.clone()
        },
    )
    .unwrap();
    assert_eq!(fixed.k, 5);
    assert_eq!(fixed.clusters.len(), 5);
    assert_eq!(fixed.candidates.len(), 1);
    // Sizes are non-increasing with the cluster number.
    assert!(fixed.clusters.windows(2).all(|w| w[0].size >= w[1].size));
    // A fixed k's fit is the one the search computed for that k (own random stream).
    let k5 = first.candidates.iter().find(|c| c.k == 5).unwrap();
    assert_eq!(fixed.candidates[0], *k5);
}

#[test]
fn large_inputs_fit_on_a_sample_then_refine_on_all_points() {
    let sizes = [700, 450, 250];
    let (features, truth) = blobs(&CENTRES, SPREAD, &sizes, 14);
    let options = ClusterOptions {
        fit_sample_size: 300,
        silhouette_sample_size: 120,
        ..ClusterOptions::default()
    };
    let clustering = cluster_customers(&features, &options).unwrap();
    assert_eq!(clustering.fit_points, 300);
    assert_eq!(clustering.silhouette_points, 120);
    assert_eq!(clustering.assignments.len(), 1400);
    assert_recovers(&clustering, &truth, &sizes);
}

#[test]
fn constant_columns_are_dropped_and_named() {
    let sizes = [60, 40, 20];
    let (features, truth) = blobs(&CENTRES, SPREAD, &sizes, 15);
    let mut names = features.names.clone();
    names.insert(1, "p_alive".into());
    let values: Vec<f64> = features
        .values
        .chunks(3)
        .flat_map(|r| [r[0], 1.0, r[1], r[2]])
        .collect();
    let with_constant = Features {
        names,
        customers: features.customers.clone(),
        values,
    };
    let clustering = cluster_customers(&with_constant, &ClusterOptions::default()).unwrap();
    assert_eq!(clustering.dropped_constant_features, ["p_alive"]);
    assert_eq!(clustering.features, ["recency", "frequency", "monetary"]);
    assert_eq!(clustering.clusters[0].centroid.len(), 3);
    assert_recovers(&clustering, &truth, &sizes);
    let without = cluster_customers(&features, &ClusterOptions::default()).unwrap();
    assert_eq!(clustering.assignments, without.assignments);
}

#[test]
fn bad_input_is_rejected_with_clear_errors() {
    let names = vec!["recency".to_string(), "monetary".to_string()];
    let rows = vec![vec![1.0, 2.0], vec![3.0, f64::NAN], vec![5.0, 6.0]];
    let features = Features::from_rows(names.clone(), vec![7, 8, 9], &rows).unwrap();
    let err = cluster_customers(&features, &ClusterOptions::default()).unwrap_err();
    assert!(
        matches!(&err, AnalyticsError::InvalidInput(m)
            if m.contains("customer 8") && m.contains("monetary")),
        "{err}"
    );
    let infinite = Features::from_rows(
        names.clone(),
        vec![7, 8, 9],
        &[vec![1.0, 2.0], vec![3.0, 4.0], vec![f64::INFINITY, 6.0]],
    )
    .unwrap();
    assert!(matches!(
        cluster_customers(&infinite, &ClusterOptions::default()),
        Err(AnalyticsError::InvalidInput(m)) if m.contains("customer 9") && m.contains("recency")
    ));

    let empty = Features::from_rows(names.clone(), vec![], &[]).unwrap();
    assert!(matches!(
        cluster_customers(&empty, &ClusterOptions::default()),
        Err(AnalyticsError::NotEnoughData(_))
    ));
    assert!(matches!(
        Features::from_rows(names.clone(), vec![1], &[vec![1.0]]),
        Err(AnalyticsError::InvalidInput(_))
    ));
    let ragged = Features {
        names: names.clone(),
        customers: vec![1, 2],
        values: vec![1.0, 2.0, 3.0],
    };
    assert!(matches!(
        cluster_customers(&ragged, &ClusterOptions::default()),
        Err(AnalyticsError::InvalidInput(_))
    ));
    let constant = Features::from_rows(
        names.clone(),
        vec![1, 2, 3],
        &[vec![1.0, 2.0], vec![1.0, 2.0], vec![1.0, 2.0]],
    )
    .unwrap();
    assert!(matches!(
        cluster_customers(&constant, &ClusterOptions::default()),
        Err(AnalyticsError::NotEnoughData(m)) if m.contains("constant")
    ));
    let few = Features::from_rows(
        names,
        vec![1, 2, 3],
        &[vec![1.0, 2.0], vec![2.0, 1.0], vec![3.0, 3.0]],
    )
    .unwrap();
    let too_many = ClusterOptions {
        k: Some(4),
        ..ClusterOptions::default()
    };
    assert!(matches!(
        cluster_customers(&few, &too_many),
        Err(AnalyticsError::InvalidInput(_))
    ));
    // Three customers: only k = 2 has a silhouette.
    let chosen = cluster_customers(&few, &ClusterOptions::default()).unwrap();
    assert_eq!(chosen.k, 2);
}

#[test]
fn duplicated_points_leave_too_few_distinct_customers_for_large_k() {
    let features = Features::from_rows(
        vec!["x".into()],
        (0..6).collect(),
        &[
            vec![0.0],
            vec![0.0],
            vec![0.0],
            vec![5.0],
            vec![5.0],
            vec![5.0],
        ],
    )
    .unwrap();
    let clustering = cluster_customers(&features, &ClusterOptions::default()).unwrap();
    // k = 3..5 cannot place distinct centres on two distinct points.
    assert_eq!(clustering.k, 2);
    assert_eq!(clustering.candidates.len(), 1);
    assert_eq!(clustering.inertia, 0.0);
    let three = ClusterOptions {
        k: Some(3),
        ..ClusterOptions::default()
    };
    assert!(matches!(
        cluster_customers(&features, &three),
        Err(AnalyticsError::NotEnoughData(_))
    ));
}

/// The points (row-major, 3 columns), their two labelings, and scikit-learn's results.
struct SklearnFixture {
    points: Vec<f64>,
    blob: Vec<usize>,
    other: Vec<usize>,
    reference: Vec<(String, f64)>,
}

fn sklearn_fixture() -> SklearnFixture {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
    let mut points = Vec::new();
    let mut blob = Vec::new();
    let mut other = Vec::new();
    let mut reader = csv::Reader::from_path(format!("{dir}clusters_points.csv")).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        for i in 0..3 {
            points.push(record[i].parse::<f64>().unwrap());
        }
        blob.push(record[3].parse().unwrap());
        other.push(record[4].parse().unwrap());
    }
    let mut reader = csv::Reader::from_path(format!("{dir}clusters_sklearn.csv")).unwrap();
    let reference = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].parse().unwrap())
        })
        .collect();
    SklearnFixture {
        points,
        blob,
        other,
        reference,
    }
}

fn expected(values: &[(String, f64)], name: &str) -> f64 {
    values.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn silhouette_matches_scikit_learn() {
    // See fixtures/make_clusters_fixture.py.
    let SklearnFixture {
        points,
        blob,
        other,
        reference,
    } = sklearn_fixture();
    let s = silhouette_score(&points, 3, &blob).unwrap();
    assert!(
        (s - expected(&reference, "silhouette_blob")).abs() < 1e-12,
        "{s}"
    );
    // Includes a one-point cluster (s = 0 there) and a poor labelling (negative score).
    let s = silhouette_score(&points, 3, &other).unwrap();
    assert!(
        (s - expected(&reference, "silhouette_other")).abs() < 1e-12,
        "{s}"
    );

    assert!(silhouette_score(&points, 3, &vec![0; 90]).is_err());
    assert!(silhouette_score(&points, 3, &(0..90).collect::<Vec<_>>()).is_err());
    assert!(silhouette_score(&points, 4, &blob).is_err());
}

#[test]
fn kmeans_inertia_matches_scikit_learn() {
    let SklearnFixture {
        points, reference, ..
    } = sklearn_fixture();
    let features = Features {
        names: vec!["x".into(), "y".into(), "z".into()],
        customers: (0..90).collect(),
        values: points,
    };
    let options = ClusterOptions {
        k: Some(3),
        ..ClusterOptions::default()
    };
    let clustering = cluster_customers(&features, &options).unwrap();
    let sklearn = expected(&reference, "kmeans3_standardised_inertia");
    assert!(
        (clustering.inertia - sklearn).abs() < 1e-9 * sklearn,
        "{} vs {sklearn}",
        clustering.inertia
    );
}

#[test]
fn clustering_serialises_to_json() {
    let (features, _) = blobs(&CENTRES, SPREAD, &[30, 20, 10], 16);
    let clustering = cluster_customers(&features, &ClusterOptions::default()).unwrap();
    let json = serde_json::to_value(&clustering).unwrap();
    assert_eq!(json["k"], 3);
    assert_eq!(json["assignments"][0]["customer"], 1000);
    assert!(json["clusters"][0]["description"].is_string());
    assert!(json["candidates"][0]["silhouette"].is_number());
}

/// Timing, not a benchmark:
/// `cargo test --release -p prossimo-analytics --test clusters -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_one_million_customers() {
    let n = 1_000_000;
    let sizes = [n / 2, n / 3, n - n / 2 - n / 3];
    let (features, truth) = blobs(&CENTRES, [30.0, 3.0, 150.0], &sizes, 17);
    let start = std::time::Instant::now();
    let clustering = cluster_customers(&features, &ClusterOptions::default()).unwrap();
    eprintln!(
        "cluster_customers on {n} customers × 3 features, k searched in 2..=8: {:?} (k = {})",
        start.elapsed(),
        clustering.k
    );
    assert_eq!(clustering.assignments.len(), truth.len());
}
