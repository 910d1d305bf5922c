//! Homogeneous groups of customers: k-means on standardised features, k chosen by silhouette.
//!
//! # Method
//!
//! 1. **Validation.** Every value must be finite (a NaN or infinite value is an error naming
//!    the customer and the feature). A constant column (min = max) carries no information
//!    and cannot be standardised: it is dropped and listed in
//!    [`Clustering::dropped_constant_features`]; if every column is constant there is
//!    nothing to cluster and the call fails.
//! 2. **Standardisation.** Each column becomes a z-score with the population standard
//!    deviation (as scikit-learn's `StandardScaler`), so no feature dominates by its units.
//! 3. **k-means.** For each candidate k: k-means++ seeding (first centre uniform, each next
//!    one drawn with probability ∝ squared distance to the nearest chosen centre), then Lloyd
//!    iterations until the centres move less than `tolerance` (sum of squared shifts, in z
//!    units) or `max_iterations`; `restarts` seeds, the lowest inertia kept. An emptied
//!    cluster is restarted at the point farthest from its centre.
//! 4. **Choice of k** (unless given): the highest mean silhouette (ties: the smaller k).
//!    The silhouette costs O(m²), so it is computed on a seeded sample of at most
//!    `silhouette_sample_size` points (5,000 by default), the same sample for every k, as
//!    `sklearn.metrics.silhouette_score(..., sample_size=...)` does.
//! 5. **Large inputs.** Restarts and the choice of k run on a seeded sample of at most
//!    `fit_sample_size` points; the chosen solution is then refined with Lloyd iterations on
//!    all points, so a million customers cost a few passes over the data instead of
//!    restarts × candidates. With `fit_sample_size ≥ n` everything runs on all points.
//!
//! Everything is deterministic for a given input and seed: random draws come from ChaCha8
//! streams derived from the seed, and parallel sums are added in a fixed chunk order.
//! Clusters are numbered by size, largest first.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::RangeInclusive;

use rand::RngExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::AnalyticsError;

/// Rows per parallel work item; fixed so that partial sums always add up in the same order.
const CHUNK_ROWS: usize = 4_096;

/// A feature matrix: one row per customer, one column per named feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Features {
    /// Column names, e.g. `recency`, `frequency`, `monetary`, `clv`, `p_alive`.
    pub names: Vec<String>,
    /// The customer of each row.
    pub customers: Vec<i64>,
    /// Row-major values: row `i` is `values[i * names.len()..(i + 1) * names.len()]`.
    pub values: Vec<f64>,
}

impl Features {
    /// Builds the flat matrix from one `Vec` per customer.
    pub fn from_rows(
        names: Vec<String>,
        customers: Vec<i64>,
        rows: &[Vec<f64>],
    ) -> Result<Features, AnalyticsError> {
        if let Some((i, row)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != names.len())
        {
            return Err(AnalyticsError::InvalidInput(format!(
                "row {i} has {} values for {} features",
                row.len(),
                names.len()
            )));
        }
        Ok(Features {
            names,
            customers,
            values: rows.concat(),
        })
    }
}

/// Settings of [`cluster_customers`]; [`Default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOptions {
    /// A fixed number of clusters (≥ 2), or `None` to choose it by silhouette.
    pub k: Option<usize>,
    /// The k tried when `k` is `None` (default 2..=8).
    pub k_candidates: RangeInclusive<usize>,
    pub seed: u64,
    /// k-means++ restarts per k (at least 1), the lowest inertia kept (default 4).
    pub restarts: usize,
    /// Lloyd iterations per run at most (default 300, as scikit-learn).
    pub max_iterations: usize,
    /// Stop when the centres' squared shifts sum to at most this, in z units (default 1e-4).
    pub tolerance: f64,
    /// Restarts and the choice of k use at most this many points (default 100,000).
    pub fit_sample_size: usize,
    /// The silhouette uses at most this many points (default 5,000).
    pub silhouette_sample_size: usize,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            k: None,
            k_candidates: 2..=8,
            seed: 0,
            restarts: 4,
            max_iterations: 300,
            tolerance: 1e-4,
            fit_sample_size: 100_000,
            silhouette_sample_size: 5_000,
        }
    }
}

/// The result of [`cluster_customers`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clustering {
    pub k: usize,
    /// The features used, in input order (constant ones removed).
    pub features: Vec<String>,
    pub dropped_constant_features: Vec<String>,
    /// One entry per input row, in input order.
    pub assignments: Vec<CustomerCluster>,
    /// Indexed by cluster number, largest cluster first.
    pub clusters: Vec<ClusterProfile>,
    /// Sum of squared distances of all points to their centre, in z units.
    pub inertia: f64,
    /// Every k tried, ascending.
    pub candidates: Vec<KCandidate>,
    /// Points the restarts and the choice of k ran on.
    pub fit_points: usize,
    /// Points the silhouettes were computed on.
    pub silhouette_points: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CustomerCluster {
    pub customer: i64,
    pub cluster: usize,
}

/// The quality of the best k-means solution for one k, on the fitted points.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KCandidate {
    pub k: usize,
    /// Mean silhouette on the silhouette sample; `None` when the sample shows fewer than
    /// two clusters or as many clusters as points.
    pub silhouette: Option<f64>,
    pub inertia: f64,
}

/// One cluster: its size and centre, and what sets it apart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterProfile {
    pub cluster: usize,
    pub size: u64,
    /// Share of all customers, 0–1.
    pub share: f64,
    /// Mean of the members in original units, aligned with [`Clustering::features`].
    pub centroid: Vec<f64>,
    /// The same centre in z units: distance from the overall mean in standard deviations.
    pub centroid_z: Vec<f64>,
    /// Every feature, the farthest from the overall mean first.
    pub distinctive_features: Vec<FeatureDeviation>,
    /// E.g. `high monetary (+1.8 sd), low recency (−0.9 sd)`: the up to three features at
    /// least half a standard deviation from the mean.
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureDeviation {
    pub feature: String,
    /// (centre − overall mean) / standard deviation.
    pub z: f64,
}

/// Groups customers into homogeneous clusters (see the module docs for the method).
pub fn cluster_customers(
    features: &Features,
    options: &ClusterOptions,
) -> Result<Clustering, AnalyticsError> {
    let dims_in = features.names.len();
    let n = features.customers.len();
    validate(features, options)?;

    let columns = column_stats(&features.values, dims_in);
    let (kept, dropped): (Vec<usize>, Vec<usize>) =
        (0..dims_in).partition(|&c| columns[c].min < columns[c].max);
    if kept.is_empty() {
        return Err(AnalyticsError::NotEnoughData(
            "every feature is constant: nothing tells customers apart".into(),
        ));
    }
    let dims = kept.len();
    let stats = &columns;
    let standardised: Vec<f64> = features
        .values
        .par_chunks(dims_in)
        .flat_map_iter(|row| {
            kept.iter()
                .map(move |&c| (row[c] - stats[c].mean) / stats[c].std)
        })
        .collect();

    let candidates: Vec<usize> = match options.k {
        Some(k) => vec![k],
        None => options
            .k_candidates
            .clone()
            .filter(|&k| k >= 2 && k < n)
            .collect(),
    };
    if candidates.is_empty() {
        return Err(AnalyticsError::NotEnoughData(format!(
            "{n} customers leave no k in {:?} to try (need 2 ≤ k < n)",
            options.k_candidates
        )));
    }

    let fit_rows = (n > options.fit_sample_size)
        .then(|| sample_indices(n, options.fit_sample_size, rng(options.seed, 0)));
    let fit_points: Cow<[f64]> = match &fit_rows {
        Some(rows) => Cow::Owned(gather_rows(&standardised, dims, rows)),
        None => Cow::Borrowed(&standardised),
    };
    let fit_n = fit_points.len() / dims;
    let silhouette_rows = sample_indices(
        fit_n,
        options.silhouette_sample_size.min(fit_n),
        rng(options.seed, 1),
    );
    let silhouette_points = gather_rows(&fit_points, dims, &silhouette_rows);

    let mut tried = Vec::with_capacity(candidates.len());
    let mut best: Option<(KCandidate, KMeansFit)> = None;
    for &k in &candidates {
        let mut k_rng = rng(options.seed, 100 + k as u64);
        let Some(fit) = (0..options.restarts.max(1))
            .filter_map(|_| kmeans(&fit_points, dims, k, &mut k_rng, options))
            .min_by(|a, b| a.inertia.total_cmp(&b.inertia))
        else {
            // Fewer distinct points than k: this k cannot be fitted.
            continue;
        };
        let sample_labels: Vec<usize> = silhouette_rows.iter().map(|&i| fit.labels[i]).collect();
        let candidate = KCandidate {
            k,
            silhouette: silhouette_score(&silhouette_points, dims, &sample_labels).ok(),
            inertia: fit.inertia,
        };
        tried.push(candidate);
        let better = match &best {
            None => true,
            Some((chosen, _)) => options.k.is_none() && silhouette_beats(&candidate, chosen),
        };
        if better {
            best = Some((candidate, fit));
        }
    }
    let Some((chosen, fit)) = best else {
        return Err(AnalyticsError::NotEnoughData(format!(
            "fewer distinct customers than clusters for every k in {candidates:?}"
        )));
    };
    if options.k.is_none() && chosen.silhouette.is_none() {
        return Err(AnalyticsError::NotEnoughData(
            "no k gives a silhouette: too few distinct customers".into(),
        ));
    }

    let final_fit = match fit_rows {
        Some(_) => lloyd(&standardised, dims, fit.centroids, options),
        None => fit,
    };

    let names: Vec<String> = kept.iter().map(|&c| features.names[c].clone()).collect();
    let profiles = profiles(&standardised, dims, &final_fit.labels, chosen.k);
    // Largest first; ties broken by the centre so the numbering never depends on the run.
    let mut order: Vec<usize> = (0..chosen.k).collect();
    order.sort_by(|&a, &b| {
        profiles[b]
            .0
            .cmp(&profiles[a].0)
            .then_with(|| compare_vectors(&profiles[a].1, &profiles[b].1))
    });
    let mut renumber = vec![0; chosen.k];
    for (new, &old) in order.iter().enumerate() {
        renumber[old] = new;
    }

    let clusters = order
        .iter()
        .enumerate()
        .map(|(new, &old)| {
            let (size, centroid_z) = &profiles[old];
            describe(new, *size, n, centroid_z, &names, &kept, &columns)
        })
        .collect();
    Ok(Clustering {
        k: chosen.k,
        features: names,
        dropped_constant_features: dropped.iter().map(|&c| features.names[c].clone()).collect(),
        assignments: features
            .customers
            .iter()
            .zip(&final_fit.labels)
            .map(|(&customer, &label)| CustomerCluster {
                customer,
                cluster: renumber[label],
            })
            .collect(),
        clusters,
        inertia: final_fit.inertia,
        candidates: tried,
        fit_points: fit_n,
        silhouette_points: silhouette_rows.len(),
    })
}

/// Mean silhouette coefficient of a labelled point set (Euclidean distance), the value of
/// `sklearn.metrics.silhouette_score`: for each point, `a` = mean distance to the other
/// members of its cluster, `b` = the lowest mean distance to another cluster's members,
/// `s = (b − a) / max(a, b)`, and `s = 0` for a point alone in its cluster.
///
/// `points` is row-major with `dims` columns; labels are any numbers, at least 2 distinct
/// and fewer than the number of points.
pub fn silhouette_score(
    points: &[f64],
    dims: usize,
    labels: &[usize],
) -> Result<f64, AnalyticsError> {
    if dims == 0 || points.len() != labels.len() * dims {
        return Err(AnalyticsError::InvalidInput(format!(
            "{} values do not make {} points of {dims} dimensions",
            points.len(),
            labels.len()
        )));
    }
    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let n = labels.len();
    if distinct.len() < 2 || distinct.len() >= n {
        return Err(AnalyticsError::InvalidInput(format!(
            "{} clusters in {n} points: a silhouette needs 2 to n − 1",
            distinct.len()
        )));
    }
    // Dense cluster numbers; every label is in `distinct`, so the search always succeeds.
    let cluster: Vec<usize> = labels
        .iter()
        .map(|l| distinct.binary_search(l).unwrap_or(0))
        .collect();
    let mut sizes = vec![0usize; distinct.len()];
    for &c in &cluster {
        sizes[c] += 1;
    }

    let per_point: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let own = cluster[i];
            if sizes[own] == 1 {
                return 0.0;
            }
            let row = &points[i * dims..(i + 1) * dims];
            let mut distance_sums = vec![0.0; sizes.len()];
            for (j, other) in points.chunks_exact(dims).enumerate() {
                distance_sums[cluster[j]] += squared_distance(row, other).sqrt();
            }
            let a = distance_sums[own] / (sizes[own] - 1) as f64;
            let b = distance_sums
                .iter()
                .zip(&sizes)
                .enumerate()
                .filter(|&(c, _)| c != own)
                .map(|(_, (sum, &size))| sum / size as f64)
                .fold(f64::INFINITY, f64::min);
            let scale = a.max(b);
            if scale > 0.0 { (b - a) / scale } else { 0.0 }
        })
        .collect();
    Ok(per_point.iter().sum::<f64>() / n as f64)
}

fn validate(features: &Features, options: &ClusterOptions) -> Result<(), AnalyticsError> {
    let dims = features.names.len();
    let n = features.customers.len();
    if dims == 0 {
        return Err(AnalyticsError::InvalidInput("no features".into()));
    }
    if n == 0 {
        return Err(AnalyticsError::NotEnoughData("no customers".into()));
    }
    if n.checked_mul(dims) != Some(features.values.len()) {
        return Err(AnalyticsError::InvalidInput(format!(
            "{} values do not make {n} rows of {dims} features",
            features.values.len()
        )));
    }
    if let Some(position) = features
        .values
        .par_iter()
        .position_first(|v| !v.is_finite())
    {
        let (row, column) = (position / dims, position % dims);
        return Err(AnalyticsError::InvalidInput(format!(
            "customer {}: feature {} is {}, not a finite number",
            features.customers[row], features.names[column], features.values[position]
        )));
    }
    if let Some(k) = options.k
        && !(2..=n).contains(&k)
    {
        return Err(AnalyticsError::InvalidInput(format!(
            "k = {k} clusters for {n} customers: need 2 ≤ k ≤ n"
        )));
    }
    if options.tolerance.is_nan() || options.tolerance < 0.0 {
        return Err(AnalyticsError::InvalidInput(format!(
            "tolerance {} must be ≥ 0",
            options.tolerance
        )));
    }
    if options.fit_sample_size == 0 || options.silhouette_sample_size == 0 {
        return Err(AnalyticsError::InvalidInput(
            "sample sizes must be at least 1".into(),
        ));
    }
    Ok(())
}

struct ColumnStats {
    mean: f64,
    /// Population standard deviation.
    std: f64,
    min: f64,
    max: f64,
}

fn column_stats(values: &[f64], dims: usize) -> Vec<ColumnStats> {
    let n = (values.len() / dims) as f64;
    (0..dims)
        .map(|c| {
            let column = || values.iter().skip(c).step_by(dims);
            let mean = column().sum::<f64>() / n;
            let variance = column().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            let (min, max) = column().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
            ColumnStats {
                mean,
                std: variance.sqrt(),
                min,
                max,
            }
        })
        .collect()
}

/// A ChaCha8 stream of its own for each use of the seed, so that, e.g., the fit for k = 4
/// does not depend on which other k were tried.
fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// `size` distinct indices below `n`, in ascending order (partial Fisher–Yates).
fn sample_indices(n: usize, size: usize, mut rng: ChaCha8Rng) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    let size = size.min(n);
    for i in 0..size {
        let j = rng.random_range(i..n);
        indices.swap(i, j);
    }
    indices.truncate(size);
    indices.sort_unstable();
    indices
}

fn gather_rows(points: &[f64], dims: usize, rows: &[usize]) -> Vec<f64> {
    rows.iter()
        .flat_map(|&r| &points[r * dims..(r + 1) * dims])
        .copied()
        .collect()
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A k-means solution: centres, each point's cluster, and the inertia.
struct KMeansFit {
    centroids: Vec<f64>,
    labels: Vec<usize>,
    inertia: f64,
}

/// One k-means++ seeded Lloyd run; `None` when there are fewer than k distinct points.
fn kmeans(
    points: &[f64],
    dims: usize,
    k: usize,
    rng: &mut ChaCha8Rng,
    options: &ClusterOptions,
) -> Option<KMeansFit> {
    let centroids = kmeans_plus_plus(points, dims, k, rng)?;
    Some(lloyd(points, dims, centroids, options))
}

fn kmeans_plus_plus(
    points: &[f64],
    dims: usize,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<f64>> {
    let n = points.len() / dims;
    let first = rng.random_range(0..n);
    let mut centroids = points[first * dims..(first + 1) * dims].to_vec();
    let mut nearest: Vec<f64> = points
        .par_chunks(dims)
        .map(|p| squared_distance(p, &centroids))
        .collect();
    while centroids.len() < k * dims {
        let total = chunked_sum(&nearest);
        if total <= 0.0 {
            return None;
        }
        let target = rng.random::<f64>() * total;
        let mut cumulative = 0.0;
        // Falls back to the last point with weight if rounding leaves the target unreached.
        let mut chosen = nearest.iter().rposition(|&d| d > 0.0)?;
        for (i, &d) in nearest.iter().enumerate() {
            cumulative += d;
            if cumulative > target && d > 0.0 {
                chosen = i;
                break;
            }
        }
        let centre = &points[chosen * dims..(chosen + 1) * dims];
        nearest
            .par_iter_mut()
            .zip(points.par_chunks(dims))
            .for_each(|(d, p)| *d = d.min(squared_distance(p, centre)));
        centroids.extend_from_slice(centre);
    }
    Some(centroids)
}

/// Lloyd iterations from the given centres to convergence, then a final assignment.
fn lloyd(
    points: &[f64],
    dims: usize,
    mut centroids: Vec<f64>,
    options: &ClusterOptions,
) -> KMeansFit {
    let k = centroids.len() / dims;
    for _ in 0..options.max_iterations {
        let (labels, distances) = assign(points, dims, &centroids);
        let (sums, counts) = cluster_sums(points, dims, k, &labels);
        let mut next = centroids.clone();
        for c in 0..k {
            if counts[c] > 0 {
                for d in 0..dims {
                    next[c * dims + d] = sums[c * dims + d] / counts[c] as f64;
                }
            }
        }
        reseed_empty_clusters(points, dims, &counts, &distances, &mut next);
        let shift = squared_distance(&centroids, &next);
        centroids = next;
        if shift <= options.tolerance {
            break;
        }
    }
    let (labels, distances) = assign(points, dims, &centroids);
    KMeansFit {
        centroids,
        labels,
        inertia: chunked_sum(&distances),
    }
}

/// Each point's nearest centre (the lower index on a tie) and squared distance to it.
fn assign(points: &[f64], dims: usize, centroids: &[f64]) -> (Vec<usize>, Vec<f64>) {
    points
        .par_chunks(dims)
        .map(|p| {
            centroids
                .chunks_exact(dims)
                .map(|c| squared_distance(p, c))
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |best, (c, d)| if d < best.1 { (c, d) } else { best },
                )
        })
        .unzip()
}

/// Per-cluster coordinate sums and member counts, added chunk by chunk in a fixed order.
fn cluster_sums(points: &[f64], dims: usize, k: usize, labels: &[usize]) -> (Vec<f64>, Vec<u64>) {
    let partials: Vec<(Vec<f64>, Vec<u64>)> = points
        .par_chunks(CHUNK_ROWS * dims)
        .zip(labels.par_chunks(CHUNK_ROWS))
        .map(|(rows, labels)| {
            let mut sums = vec![0.0; k * dims];
            let mut counts = vec![0u64; k];
            for (row, &c) in rows.chunks_exact(dims).zip(labels) {
                counts[c] += 1;
                for (s, v) in sums[c * dims..(c + 1) * dims].iter_mut().zip(row) {
                    *s += v;
                }
            }
            (sums, counts)
        })
        .collect();
    let mut sums = vec![0.0; k * dims];
    let mut counts = vec![0u64; k];
    for (partial_sums, partial_counts) in partials {
        sums.iter_mut().zip(partial_sums).for_each(|(s, p)| *s += p);
        counts
            .iter_mut()
            .zip(partial_counts)
            .for_each(|(c, p)| *c += p);
    }
    (sums, counts)
}

/// Moves each empty cluster's centre to the point farthest from its own centre (a distinct
/// point per empty cluster), as scikit-learn does, so k clusters survive.
fn reseed_empty_clusters(
    points: &[f64],
    dims: usize,
    counts: &[u64],
    distances: &[f64],
    centroids: &mut [f64],
) {
    let empty: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let mut farthest: Vec<usize> = (0..distances.len()).collect();
    farthest.sort_by(|&a, &b| distances[b].total_cmp(&distances[a]).then(a.cmp(&b)));
    for (&cluster, &point) in empty.iter().zip(&farthest) {
        centroids[cluster * dims..(cluster + 1) * dims]
            .copy_from_slice(&points[point * dims..(point + 1) * dims]);
    }
}

fn chunked_sum(values: &[f64]) -> f64 {
    let partials: Vec<f64> = values
        .par_chunks(CHUNK_ROWS)
        .map(|chunk| chunk.iter().sum::<f64>())
        .collect();
    partials.iter().sum()
}

/// Size and mean (z units) of each cluster.
fn profiles(points: &[f64], dims: usize, labels: &[usize], k: usize) -> Vec<(u64, Vec<f64>)> {
    let (sums, counts) = cluster_sums(points, dims, k, labels);
    (0..k)
        .map(|c| {
            let size = counts[c];
            let mean = sums[c * dims..(c + 1) * dims]
                .iter()
                .map(|s| if size > 0 { s / size as f64 } else { 0.0 })
                .collect();
            (size, mean)
        })
        .collect()
}

fn describe(
    cluster: usize,
    size: u64,
    n: usize,
    centroid_z: &[f64],
    names: &[String],
    kept: &[usize],
    columns: &[ColumnStats],
) -> ClusterProfile {
    let mut distinctive: Vec<FeatureDeviation> = names
        .iter()
        .zip(centroid_z)
        .map(|(feature, &z)| FeatureDeviation {
            feature: feature.clone(),
            z,
        })
        .collect();
    distinctive.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
    let notable: Vec<String> = distinctive
        .iter()
        .filter(|d| d.z.abs() >= 0.5)
        .take(3)
        .map(|d| {
            let level = if d.z > 0.0 { "high" } else { "low" };
            format!("{level} {} ({:+.1} sd)", d.feature, d.z)
        })
        .collect();
    ClusterProfile {
        cluster,
        size,
        share: size as f64 / n as f64,
        centroid: kept
            .iter()
            .zip(centroid_z)
            .map(|(&c, z)| columns[c].mean + z * columns[c].std)
            .collect(),
        centroid_z: centroid_z.to_vec(),
        distinctive_features: distinctive,
        description: if notable.is_empty() {
            "close to the average on every feature".into()
        } else {
            notable.join(", ")
        },
    }
}

/// Higher silhouette wins; a candidate without one never does; ties keep the smaller k.
fn silhouette_beats(candidate: &KCandidate, chosen: &KCandidate) -> bool {
    match (candidate.silhouette, chosen.silhouette) {
        (Some(s), Some(best)) => s > best,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn compare_vectors(a: &[f64], b: &[f64]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.total_cmp(y))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}
