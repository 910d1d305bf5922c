//! A full analysis run over the store.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use prossimo_analytics::btyd::{
    BgNbd, ClvOptions, CountData, CountModel, CustomerScore, Fit, FitOptions, FitReport,
    GammaGamma, HoldoutReport, ModifiedBgNbd, ParetoNbd, ScoreOptions, SpendData, holdout_report,
    score_customers,
};
use prossimo_analytics::clusters::{ClusterOptions, Clustering, Features, cluster_customers};
use prossimo_analytics::dynamics::{
    ChannelMixPeriod, CohortMatrix, DynamicsOptions, DynamicsReport, Granularity,
    acquisition_cohorts, base_dynamics, channel_mix,
};
use prossimo_analytics::rfm::{CustomerRfm, RfmSegmentSummary, score_rfm, summarize_segments};
use prossimo_analytics::summary::{calibration_and_holdout, summarize};
use prossimo_analytics::{CustomerSummary, Interaction, Period, Purchase};
use prossimo_identity::ProfileId;
use prossimo_model::{Money, NetOrder, earliest_event_time};
use prossimo_store::Store;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::reports::Reports;
use crate::{Analysis, EXPECTED_PURCHASES_DAYS, Options, UnderstandError, analytics_error};

/// Calibration frequencies 0..7 get a bucket each, 7+ the last (as in the papers' tables).
const HOLDOUT_LAST_BUCKET: u32 = 7;

/// What a run computed. Each present section was also stored under its analysis name.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Outcome {
    pub rfm: Option<RfmReport>,
    pub clv: Option<ClvReport>,
    pub cohorts: Option<CohortMatrix>,
    pub dynamics: Option<DynamicsSection>,
    pub clusters: Option<ClustersReport>,
    /// Profiles whose computed traits were written.
    pub profiles_updated: usize,
    /// Seconds per stage, in order.
    pub timings: Vec<(String, f64)>,
    /// Analyses that could not be computed, and why; the others still were.
    pub problems: Vec<Problem>,
}

/// Something a run could not compute or had to leave out; the rest was computed. Stored
/// with the run's summary as `{"kind": …, "message": …, …}`: `message` in English for the
/// API and the logs, the fields for the console to say it in its reader's language.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// Orders whose value or time cannot be counted, left out of every analysis; one of
    /// them as an example.
    OrdersSkipped {
        count: usize,
        profile_id: i64,
        order_id: String,
        value: f64,
        time: String,
        message: String,
    },
    /// Events dated before 1900, left out of cohorts and dynamics.
    TouchpointsTooEarly { count: usize, message: String },
    /// BG/NBD or Gamma-Gamma did not converge: predictions were not updated.
    ClvNotConverged { message: String },
    /// One analysis failed; the others were computed.
    AnalysisFailed {
        analysis: String,
        error: String,
        message: String,
    },
}

impl Problem {
    /// In English.
    pub fn message(&self) -> &str {
        match self {
            Problem::OrdersSkipped { message, .. }
            | Problem::TouchpointsTooEarly { message, .. }
            | Problem::ClvNotConverged { message }
            | Problem::AnalysisFailed { message, .. } => message,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// RFM: the segments and the quintile breakpoints live scoring uses between runs.
#[derive(Debug, Clone, Serialize)]
pub struct RfmReport {
    pub as_of: String,
    pub customers: usize,
    pub segments: Vec<RfmSegmentSummary>,
    pub breakpoints: RfmBreakpoints,
    /// Customers by recency score (rows, 1–5) and frequency score (columns, 1–5): the
    /// classic RFM grid the named segments are cut from.
    pub rf_grid: [[u64; 5]; 5],
}

/// The lowest value that earned each score 2–5 in the latest run (for recency: the most
/// days since the last purchase that still earned it), so one customer can be scored
/// between runs against the same population. A value tied across a boundary gets the
/// higher score here, where the full run splits ties by rank.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct RfmBreakpoints {
    pub recency_days: [i64; 4],
    pub frequency: [u32; 4],
    /// A score no customer earned (a small base) has no breakpoint: infinity, which JSON
    /// writes as null and which reads back as infinity.
    #[serde(deserialize_with = "unreached_is_infinite")]
    pub monetary: [f64; 4],
}

fn unreached_is_infinite<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[f64; 4], D::Error> {
    let stored: [Option<f64>; 4] = serde::Deserialize::deserialize(d)?;
    Ok(stored.map(|b| b.unwrap_or(f64::INFINITY)))
}

/// A count model's fit: parameters named as in `lifetimes`, beside the fit's report.
#[derive(Debug, Clone, Serialize)]
pub struct CountFit<M> {
    #[serde(flatten)]
    pub parameters: M,
    pub log_likelihood: f64,
    #[serde(flatten)]
    pub report: FitReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpendFit {
    #[serde(flatten)]
    pub parameters: GammaGamma,
    pub log_likelihood: f64,
    #[serde(flatten)]
    pub report: FitReport,
}

/// The fitted buy-till-you-die models (`prossimo analyze clv --json`).
#[derive(Debug, Clone, Serialize)]
pub struct ClvReport {
    /// The end of the data the models were fitted on.
    pub fitted_to: String,
    pub period_days: f64,
    pub customers: usize,
    pub repeat_customers: usize,
    pub bgnbd: CountFit<BgNbd>,
    pub mbgnbd: CountFit<ModifiedBgNbd>,
    pub pareto: CountFit<ParetoNbd>,
    pub gamma_gamma: SpendFit,
    /// Calibration/holdout comparison per model, when a calibration end was given.
    pub holdout: Option<Vec<HoldoutReport>>,
    /// Mean of the per-customer predictions written as traits (absent in evaluation runs).
    pub mean_p_alive: Option<f64>,
    pub mean_expected_purchases_90d: Option<f64>,
    pub total_clv_12m: Option<f64>,
    /// How the predictions spread over the customers (absent in evaluation runs).
    pub spread: Option<crate::spread::PredictionSpread>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DynamicsSection {
    pub base: DynamicsReport,
    pub channels: Vec<ChannelMixPeriod>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClustersReport {
    pub customers: usize,
    #[serde(flatten)]
    pub clustering: ClusteringSummary,
}

/// The clustering without its per-customer assignment (that goes onto the profiles).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct ClusteringSummary(Value);

impl ClusteringSummary {
    /// One line per cluster: number, size, share and description.
    pub fn clusters(&self) -> Option<Vec<String>> {
        let clusters = self.0.get("clusters")?.as_array()?;
        Some(
            clusters
                .iter()
                .map(|c| {
                    format!(
                        "cluster {}: {} customers ({:.1}%) {}",
                        c["cluster"],
                        c["size"],
                        100.0 * c["share"].as_f64().unwrap_or(0.0),
                        c["description"].as_str().unwrap_or("")
                    )
                })
                .collect(),
        )
    }
}

struct Stopwatch {
    started: Instant,
    laps: Vec<(String, f64)>,
}

impl Stopwatch {
    fn lap(&mut self, stage: &str) {
        let now = Instant::now();
        self.laps
            .push((stage.to_owned(), (now - self.started).as_secs_f64()));
        self.started = now;
    }
}

/// Runs `which` (all when empty) over the store, stores each result and writes the
/// computed traits.
pub fn run(
    store: &Store,
    which: &[Analysis],
    options: &Options,
) -> Result<Outcome, UnderstandError> {
    let which: BTreeSet<Analysis> = if which.is_empty() {
        Analysis::ALL.into_iter().collect()
    } else {
        which.iter().copied().collect()
    };
    let wants = |a: Analysis| which.contains(&a);
    let mut clock = Stopwatch {
        started: Instant::now(),
        laps: Vec::new(),
    };
    let mut outcome = Outcome::default();

    let mut book = store.order_book()?;
    book.orders = countable_orders(
        std::mem::take(&mut book.orders),
        store.money(),
        &mut outcome.problems,
    );
    let purchases: Vec<Purchase> = book
        .orders
        .iter()
        .filter(|o| o.ts <= options.as_of_ms)
        .map(Purchase::from)
        .collect();
    clock.lap("read orders");

    let needs_summary = wants(Analysis::Rfm) || wants(Analysis::Clv) || wants(Analysis::Clusters);
    let summaries = if needs_summary {
        let s = summarize(&purchases, options.as_of_ms, options.period)
            .map_err(analytics_error("summary"))?;
        clock.lap("summary");
        s
    } else {
        Vec::new()
    };

    let mut traits: HashMap<ProfileId, Map<String, Value>> = HashMap::new();
    let rfm_scores = if (wants(Analysis::Rfm) || wants(Analysis::Clusters)) && summaries.len() >= 2
    {
        let scores = score_rfm(&summaries, options.as_of_ms).map_err(analytics_error("rfm"))?;
        clock.lap("rfm");
        Some(scores)
    } else {
        None
    };
    if wants(Analysis::Rfm)
        && let Some(scores) = &rfm_scores
    {
        for s in scores {
            let t = traits.entry(s.customer).or_default();
            t.insert("rfm_score".into(), json!(s.rfm_score.to_string()));
            t.insert("rfm_segment".into(), json!(s.segment.as_str()));
        }
        outcome.rfm = Some(RfmReport {
            as_of: iso(options.as_of_ms),
            customers: scores.len(),
            segments: summarize_segments(scores),
            breakpoints: breakpoints(scores),
            rf_grid: rf_grid(scores),
        });
    }

    let mut customer_scores: Option<Vec<CustomerScore>> = None;
    if wants(Analysis::Clv) || wants(Analysis::Clusters) {
        let section = (|| -> Result<(), UnderstandError> {
            let evaluation = options.calibration_end_ms.filter(|_| wants(Analysis::Clv));
            let fitted_to = evaluation.unwrap_or(options.as_of_ms);
            let fit_summaries = match evaluation {
                Some(end) => {
                    summarize(&purchases, end, options.period).map_err(analytics_error("clv"))?
                }
                None => summaries.clone(),
            };
            let models = fit_models(&fit_summaries)?;
            clock.lap("clv fit");
            let holdout = match evaluation {
                Some(end) => {
                    let rows =
                        calibration_and_holdout(&purchases, end, options.as_of_ms, options.period)
                            .map_err(analytics_error("clv holdout"))?;
                    Some(vec![
                        holdout_report(&models.bgnbd.model, &rows, HOLDOUT_LAST_BUCKET),
                        holdout_report(&models.mbgnbd.model, &rows, HOLDOUT_LAST_BUCKET),
                        holdout_report(&models.pareto.model, &rows, HOLDOUT_LAST_BUCKET),
                    ])
                }
                None => None,
            };
            let mut report =
                clv_report(&models, &fit_summaries, fitted_to, options.period, holdout);
            let trusted = models.bgnbd.report.converged && models.gamma_gamma.report.converged;
            if evaluation.is_none() && !trusted {
                // Parameters at a boundary (a, b or q running off to infinity) score
                // nothing reliable, and their hypergeometric series cost minutes: the
                // report shows the fits, the profiles keep their previous predictions.
                outcome.problems.push(Problem::ClvNotConverged {
                    message: "clv: BG/NBD or Gamma-Gamma did not converge on this data; predictions not updated"
                        .into(),
                });
            }
            if evaluation.is_none() && trusted {
                let scores = score_customers(
                    &models.bgnbd.model,
                    Some(&models.gamma_gamma.model),
                    &summaries,
                    &score_options(options.period),
                );
                clock.lap("clv scoring");
                let n = scores.len().max(1) as f64;
                report.mean_p_alive =
                    Some(scores.iter().map(|s| s.probability_alive).sum::<f64>() / n);
                report.mean_expected_purchases_90d =
                    Some(scores.iter().map(|s| s.expected_purchases).sum::<f64>() / n);
                report.total_clv_12m = Some(scores.iter().filter_map(|s| s.clv).sum());
                report.spread = Some(crate::spread::prediction_spread(
                    &summaries,
                    &scores,
                    options.as_of_ms,
                ));
                if wants(Analysis::Clv) {
                    for s in &scores {
                        let t = traits.entry(s.customer).or_default();
                        t.extend(score_traits(s));
                    }
                }
                customer_scores = Some(scores);
            }
            if wants(Analysis::Clv) {
                outcome.clv = Some(report);
            }
            Ok(())
        })();
        if let Err(e) = section {
            report_problem(&mut outcome.problems, "clv", e);
        }
    }

    let needs_touchpoints =
        wants(Analysis::Dynamics) || wants(Analysis::Cohorts) || wants(Analysis::Clusters);
    let interactions = if needs_touchpoints {
        let i = interactions(store, &book.orders, options.as_of_ms, &mut outcome.problems)?;
        clock.lap("read touchpoints");
        i
    } else {
        Vec::new()
    };

    if wants(Analysis::Cohorts) && !interactions.is_empty() {
        let section = (|| -> Result<(), UnderstandError> {
            outcome.cohorts = Some(
                acquisition_cohorts(&interactions, options.granularity)
                    .map_err(analytics_error("cohorts"))?,
            );
            clock.lap("cohorts");
            Ok(())
        })();
        if let Err(e) = section {
            report_problem(&mut outcome.problems, "cohorts", e);
        }
    }
    if wants(Analysis::Dynamics) && !interactions.is_empty() {
        let section = (|| -> Result<(), UnderstandError> {
            let segments: Option<HashMap<i64, String>> = rfm_scores.as_ref().map(|scores| {
                scores
                    .iter()
                    .map(|s| (s.customer, s.segment.as_str().to_owned()))
                    .collect()
            });
            let dynamics_options = DynamicsOptions {
                granularity: options.granularity,
                churn_after_periods: churn_after(options.granularity),
            };
            outcome.dynamics = Some(DynamicsSection {
                base: base_dynamics(&interactions, segments.as_ref(), &dynamics_options)
                    .map_err(analytics_error("dynamics"))?,
                channels: channel_mix(&interactions, options.granularity)
                    .map_err(analytics_error("dynamics"))?,
            });
            clock.lap("dynamics");
            Ok(())
        })();
        if let Err(e) = section {
            report_problem(&mut outcome.problems, "dynamics", e);
        }
    }

    if wants(Analysis::Clusters)
        && let (Some(rfm), Some(scores)) = (&rfm_scores, &customer_scores)
        && rfm.len() >= 2
    {
        let section = (|| -> Result<(), UnderstandError> {
            let features = cluster_features(rfm, scores, &interactions)?;
            let clustering = cluster_customers(
                &features,
                &ClusterOptions {
                    k: options.clusters,
                    seed: options.seed,
                    ..ClusterOptions::default()
                },
            )
            .map_err(analytics_error("clusters"))?;
            for (customer, cluster) in assignments(&clustering) {
                traits
                    .entry(customer)
                    .or_default()
                    .insert("cluster".into(), json!(cluster));
            }
            outcome.clusters = Some(ClustersReport {
                customers: features.customers.len(),
                clustering: summary_of(&clustering)?,
            });
            clock.lap("clusters");
            Ok(())
        })();
        if let Err(e) = section {
            report_problem(&mut outcome.problems, "clusters", e);
        }
    }

    let rows: Vec<(ProfileId, Map<String, Value>)> = traits.into_iter().collect();
    store.write_computed_traits(&rows)?;
    outcome.profiles_updated = rows.len();
    clock.lap("write traits");

    save(store, Analysis::Rfm, outcome.rfm.as_ref())?;
    // An evaluation run (calibration/holdout) is kept apart: its parameters are fitted on
    // old data and must not drive live scoring.
    if let Some(clv) = &outcome.clv {
        let name = if clv.holdout.is_some() {
            CLV_EVALUATION
        } else {
            Analysis::Clv.as_str()
        };
        Reports::of(store)?.save(name, &serde_json::to_value(clv)?)?;
    }
    save(store, Analysis::Cohorts, outcome.cohorts.as_ref())?;
    save(store, Analysis::Dynamics, outcome.dynamics.as_ref())?;
    save(store, Analysis::Clusters, outcome.clusters.as_ref())?;
    clock.lap("save reports");
    outcome.timings = clock.laps;
    Ok(outcome)
}

/// A failed analysis does not stop the others: it is logged and reported.
fn report_problem(problems: &mut Vec<Problem>, analysis: &str, e: UnderstandError) {
    tracing::warn!(analysis, error = %e, "analysis failed");
    let error = e.to_string();
    // Most errors already name their analysis ("clv: not enough data …").
    let message = if error.starts_with(&format!("{analysis}:")) {
        error.clone()
    } else {
        format!("{analysis}: {error}")
    };
    problems.push(Problem::AnalysisFailed {
        analysis: analysis.to_owned(),
        error,
        message,
    });
}

/// The fitted models of a run.
pub(crate) struct Models {
    pub bgnbd: Fit<BgNbd>,
    pub mbgnbd: Fit<ModifiedBgNbd>,
    pub pareto: Fit<ParetoNbd>,
    pub gamma_gamma: Fit<GammaGamma>,
    pub count_data: CountData,
    pub spend_data: SpendData,
}

fn fit_models(summaries: &[CustomerSummary]) -> Result<Models, UnderstandError> {
    let count_data = CountData::from_summaries(summaries).map_err(analytics_error("clv"))?;
    let spend_data = SpendData::from_summaries(summaries).map_err(analytics_error("clv"))?;
    // Budgets keep a scheduled run bounded when a model does not fit the data (its
    // parameters run off to a boundary): the fit is then reported as not converged.
    let fit = FitOptions {
        max_iterations: 200,
        ..FitOptions::default()
    };
    // Pareto/NBD evaluations cost a hypergeometric series per customer row, and near a
    // boundary each costs thousands of terms: a smaller budget.
    let pareto_fit = FitOptions {
        max_iterations: 60,
        ..FitOptions::default()
    };
    let bgnbd = logged(BgNbd::fit(&count_data, &fit)).map_err(analytics_error("clv bgnbd"))?;
    let mbgnbd =
        logged(ModifiedBgNbd::fit(&count_data, &fit)).map_err(analytics_error("clv mbgnbd"))?;
    let pareto =
        logged(ParetoNbd::fit(&count_data, &pareto_fit)).map_err(analytics_error("clv pareto"))?;
    let gamma_gamma =
        logged(GammaGamma::fit(&spend_data, &fit)).map_err(analytics_error("clv gamma_gamma"))?;
    Ok(Models {
        bgnbd,
        mbgnbd,
        pareto,
        gamma_gamma,
        count_data,
        spend_data,
    })
}

/// Every fit's quality goes to the log, converged or not.
fn logged<M: std::fmt::Debug>(
    fit: Result<Fit<M>, prossimo_analytics::AnalyticsError>,
) -> Result<Fit<M>, prossimo_analytics::AnalyticsError> {
    if let Ok(f) = &fit {
        let r = &f.report;
        if r.converged {
            tracing::debug!(model = ?f.model, log_likelihood = r.log_likelihood, iterations = r.iterations, optimizer = ?r.optimizer, "fitted");
        } else {
            tracing::warn!(model = ?f.model, log_likelihood = r.log_likelihood, gradient_norm = r.gradient_norm, iterations = r.iterations, "fit did not converge");
        }
    }
    fit
}

fn clv_report(
    models: &Models,
    summaries: &[CustomerSummary],
    fitted_to: i64,
    period: Period,
    holdout: Option<Vec<HoldoutReport>>,
) -> ClvReport {
    fn count<M: CountModel>(fit: &Fit<M>, data: &CountData) -> CountFit<M> {
        CountFit {
            parameters: fit.model,
            log_likelihood: fit.model.log_likelihood(data),
            report: fit.report,
        }
    }
    ClvReport {
        fitted_to: iso(fitted_to),
        period_days: period.days,
        customers: summaries.len(),
        repeat_customers: summaries.iter().filter(|s| s.frequency > 0.0).count(),
        bgnbd: count(&models.bgnbd, &models.count_data),
        mbgnbd: count(&models.mbgnbd, &models.count_data),
        pareto: count(&models.pareto, &models.count_data),
        gamma_gamma: SpendFit {
            parameters: models.gamma_gamma.model,
            log_likelihood: models.gamma_gamma.model.log_likelihood(&models.spend_data),
            report: models.gamma_gamma.report,
        },
        holdout,
        mean_p_alive: None,
        mean_expected_purchases_90d: None,
        total_clv_12m: None,
        spread: None,
    }
}

/// Customers per (recency score, frequency score) cell.
fn rf_grid(scores: &[CustomerRfm]) -> [[u64; 5]; 5] {
    let mut grid = [[0u64; 5]; 5];
    for s in scores {
        let (r, f) = (s.recency_score as usize, s.frequency_score as usize);
        if (1..=5).contains(&r) && (1..=5).contains(&f) {
            grid[r - 1][f - 1] += 1;
        }
    }
    grid
}

pub(crate) fn score_options(period: Period) -> ScoreOptions {
    ScoreOptions {
        horizon: EXPECTED_PURCHASES_DAYS / period.days,
        clv: ClvOptions::lifetimes_default(period),
    }
}

pub(crate) fn score_traits(s: &CustomerScore) -> Map<String, Value> {
    let mut t = Map::new();
    t.insert("p_alive".into(), finite(s.probability_alive));
    t.insert(
        "expected_purchases_90d".into(),
        finite(s.expected_purchases),
    );
    if let Some(clv) = s.clv {
        t.insert("clv_12m".into(), finite(clv));
    }
    t
}

/// JSON has no NaN: a prediction that could not be computed is null.
fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn breakpoints(scores: &[CustomerRfm]) -> RfmBreakpoints {
    let mut b = RfmBreakpoints {
        recency_days: [i64::MIN; 4],
        frequency: [u32::MAX; 4],
        monetary: [f64::INFINITY; 4],
    };
    for s in scores {
        if s.recency_score >= 2 {
            let i = usize::from(s.recency_score - 2);
            b.recency_days[i] = b.recency_days[i].max(s.recency_days);
        }
        if s.frequency_score >= 2 {
            let i = usize::from(s.frequency_score - 2);
            b.frequency[i] = b.frequency[i].min(s.frequency);
        }
        if s.monetary_score >= 2 {
            let i = usize::from(s.monetary_score - 2);
            b.monetary[i] = b.monetary[i].min(s.monetary);
        }
    }
    b
}

/// Periods without a purchase after which a customer counts as churned: a quarter.
fn churn_after(granularity: Granularity) -> u32 {
    match granularity {
        Granularity::Week => 13,
        Granularity::Month => 3,
    }
}

/// The orders an analysis can use: a stored value that is not finite or beyond the
/// configured bound (stores from before the edge refused them took anything), or a time
/// before 1900, would fail a whole run or drag every statistic; such an order is left out
/// and named in the run's problems instead.
fn countable_orders(
    orders: Vec<NetOrder>,
    money: &Money,
    problems: &mut Vec<Problem>,
) -> Vec<NetOrder> {
    let (usable, skipped): (Vec<NetOrder>, Vec<NetOrder>) =
        orders.into_iter().partition(|o| is_countable(o, money));
    if let Some(first) = skipped.first() {
        let time = prossimo_model::format_millis(first.ts).unwrap_or_else(|| first.ts.to_string());
        problems.push(Problem::OrdersSkipped {
            count: skipped.len(),
            profile_id: first.profile_id,
            order_id: first.order_id.clone(),
            value: first.value,
            message: format!(
                "orders: {} left out of every analysis because their value or time cannot be counted \
                 (for example customer {}, order {:?}: value {}, time {time})",
                skipped.len(),
                first.profile_id,
                first.order_id,
                readable_amount(first.value),
            ),
            time,
        });
    }
    usable
}

/// An amount as a person reads it: an absurd one (the reason it was left out) in
/// scientific notation rather than 300 digits.
fn readable_amount(value: f64) -> String {
    if value.is_finite() && value.abs() < 1e15 {
        value.to_string()
    } else {
        format!("{value:e}")
    }
}

/// Whether an analysis can use this order (see [`countable_orders`]).
pub(crate) fn is_countable(order: &NetOrder, money: &Money) -> bool {
    money.is_countable(order.value)
        && money.is_countable(order.refunded)
        && order.ts >= earliest_event_time().timestamp_millis()
}

/// Every touchpoint up to `as_of`, with each net order as a purchase (its revenue) and
/// the raw order events left out so that a purchase counts once.
fn interactions(
    store: &Store,
    orders: &[NetOrder],
    as_of_ms: i64,
    problems: &mut Vec<Problem>,
) -> Result<Vec<Interaction>, UnderstandError> {
    let earliest = earliest_event_time().timestamp_millis();
    let mut too_early = 0usize;
    let mut out: Vec<Interaction> = orders
        .iter()
        .filter(|o| o.ts <= as_of_ms)
        .map(|o| Interaction {
            customer: o.profile_id,
            at_ms: o.ts,
            channel: o.channel,
            revenue: Some(o.value),
        })
        .collect();
    store.for_each_touchpoint(&mut |t| {
        if t.ts < earliest {
            too_early += 1;
        } else if t.ts <= as_of_ms && !t.is_order_event {
            out.push(Interaction {
                customer: t.profile_id,
                at_ms: t.ts,
                channel: t.channel,
                revenue: None,
            });
        }
    })?;
    if too_early > 0 {
        problems.push(Problem::TouchpointsTooEarly {
            count: too_early,
            message: format!(
                "touchpoints: {too_early} events dated before 1900 left out of cohorts and dynamics"
            ),
        });
    }
    Ok(out)
}

const CLUSTER_FEATURES: [&str; 6] = [
    "recency_days",
    "frequency",
    "monetary",
    "clv_12m",
    "p_alive",
    "offline_share",
];

fn cluster_features(
    rfm: &[CustomerRfm],
    scores: &[CustomerScore],
    interactions: &[Interaction],
) -> Result<Features, UnderstandError> {
    let mut channel_counts: HashMap<i64, (u32, u32)> = HashMap::new();
    for i in interactions {
        let c = channel_counts.entry(i.customer).or_default();
        c.0 += 1;
        c.1 += u32::from(i.channel.is_offline());
    }
    let clv: HashMap<i64, &CustomerScore> = scores.iter().map(|s| (s.customer, s)).collect();
    let mut customers = Vec::with_capacity(rfm.len());
    let mut values = Vec::with_capacity(rfm.len() * CLUSTER_FEATURES.len());
    for r in rfm {
        let Some(score) = clv.get(&r.customer) else {
            continue;
        };
        let (Some(clv_12m), p_alive) = (score.clv, score.probability_alive) else {
            continue;
        };
        if !(clv_12m.is_finite() && p_alive.is_finite()) {
            continue;
        }
        let (total, offline) = channel_counts.get(&r.customer).copied().unwrap_or((0, 0));
        customers.push(r.customer);
        values.extend([
            r.recency_days as f64,
            f64::from(r.frequency),
            r.monetary,
            clv_12m,
            p_alive,
            if total == 0 {
                0.0
            } else {
                f64::from(offline) / f64::from(total)
            },
        ]);
    }
    Ok(Features {
        names: CLUSTER_FEATURES.iter().map(|s| (*s).to_owned()).collect(),
        customers,
        values,
    })
}

fn assignments(clustering: &Clustering) -> impl Iterator<Item = (i64, usize)> + '_ {
    clustering
        .assignments
        .iter()
        .map(|a| (a.customer, a.cluster))
}

fn summary_of(clustering: &Clustering) -> Result<ClusteringSummary, UnderstandError> {
    let mut value = serde_json::to_value(clustering)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("assignments");
    }
    Ok(ClusteringSummary(value))
}

/// Where an evaluation run of the CLV models is stored.
pub const CLV_EVALUATION: &str = "clv_evaluation";

fn save<T: Serialize>(
    store: &Store,
    analysis: Analysis,
    result: Option<&T>,
) -> Result<(), UnderstandError> {
    if let Some(result) = result {
        Reports::of(store)?.save(analysis.as_str(), &serde_json::to_value(result)?)?;
    }
    Ok(())
}

fn iso(ms: i64) -> String {
    prossimo_model::format_millis(ms).unwrap_or_default()
}
