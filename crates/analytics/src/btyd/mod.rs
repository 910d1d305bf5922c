//! Buy-till-you-die models: how many purchases a customer will make and whether they are
//! still "alive", from their repeat-purchase history (frequency x, recency tₓ, age T), plus
//! the Gamma-Gamma model of spend per purchase and the customer lifetime value built on both.
//!
//! - [`BgNbd`]: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
//!   alternative to the Pareto/NBD model", Marketing Science 24(2).
//! - [`ModifiedBgNbd`]: Batislam, Denizel & Filiztekin (2007), "Empirical validation and
//!   comparison of models for customer base analysis", IJRM 24(3) (MBG/NBD).
//! - [`ParetoNbd`]: Schmittlein, Morrison & Colombo (1987), with the likelihood of Fader &
//!   Hardie (2005), "A note on deriving the Pareto/NBD model and related expressions"
//!   (brucehardie.com note 009).
//! - [`GammaGamma`]: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for
//!   customer base analysis", JMR 42(4); brucehardie.com note 025.
//!
//! Every formula and prediction follows `lifetimes` 0.11.3, so results can be checked
//! against it. Log-likelihoods are the papers' (in the data's time unit), not `lifetimes`'
//! rescaled objective. Fits are maximum likelihood by L-BFGS on log-parameters (Nelder–Mead
//! as fallback), on the data compressed to unique (x, tₓ, T) rows with weights; how the
//! fit went is reported in [`FitReport`] and never hidden.

mod beta_geometric;
mod count_data;
mod gamma_gamma;
mod holdout;
mod optimize;
mod pareto;
mod scoring;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AnalyticsError;

pub use beta_geometric::{BgNbd, ModifiedBgNbd};
pub use count_data::{CountData, PurchaseHistory};
pub use gamma_gamma::{GammaGamma, SpendData};
pub use holdout::{HoldoutBucket, HoldoutReport, holdout_report};
pub use optimize::Optimizer;
pub use pareto::ParetoNbd;
pub use scoring::{
    ClvOptions, CustomerScore, ScoreOptions, customer_lifetime_value, periods_per_month,
    score_customers,
};

/// A model of the number of repeat purchases and of dropout (BG/NBD, MBG/NBD, Pareto/NBD),
/// so product code can fit and score with any of them.
pub trait CountModel: Copy + Send + Sync + std::fmt::Debug + Serialize {
    /// Short name: "bgnbd", "mbgnbd" or "pareto_nbd".
    const NAME: &'static str;

    /// Maximum-likelihood fit (penalised if `options.penalizer_coef > 0`).
    fn fit(data: &CountData, options: &FitOptions) -> Result<Fit<Self>, AnalyticsError>;

    /// Total log-likelihood of the data, in the data's time unit (the papers' LL).
    fn log_likelihood(&self, data: &CountData) -> f64;

    /// Expected repeat purchases in (0, t] of a randomly chosen new customer, E[X(t)].
    fn expected_purchases(&self, t: f64) -> f64;

    /// Expected repeat purchases in (T, T+t] given the customer's history, E[Y(t) | x, tₓ, T].
    fn conditional_expected_purchases(&self, t: f64, history: &PurchaseHistory) -> f64;

    /// Probability that the customer is still alive at T given their history.
    fn probability_alive(&self, history: &PurchaseHistory) -> f64;
}

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// L2 penalty with `lifetimes`' semantics: the minimised objective is
    /// −LL/Σweights + `penalizer_coef`·Σθ², where θ are the parameters with time rescaled so
    /// the oldest customer's age is 1 (α and β divided by max T; Gamma-Gamma unscaled).
    /// 0 gives the plain maximum-likelihood estimate. (`lifetimes`' Pareto/NBD instead
    /// penalises −LL itself, not its mean; here all models use the mean.)
    pub penalizer_coef: f64,
    /// Converged when every component of the objective's gradient with respect to the
    /// log-parameters is at most this.
    pub gradient_tolerance: f64,
    pub max_iterations: usize,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer_coef: 0.0,
            gradient_tolerance: 1e-9,
            max_iterations: 500,
        }
    }
}

/// How a fit went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Log-likelihood of the data at the fitted parameters (unpenalised, data time unit).
    pub log_likelihood: f64,
    /// The minimised objective (see [`FitOptions::penalizer_coef`]).
    pub objective: f64,
    /// Largest component of the objective's gradient in log-parameters at the end.
    pub gradient_norm: f64,
    pub converged: bool,
    pub optimizer: Optimizer,
    pub iterations: usize,
    /// Likelihood (with gradient) evaluations.
    pub evaluations: usize,
    /// Customers fitted (sum of weights) and the distinct rows they compress to.
    pub customers: f64,
    pub unique_rows: usize,
    pub penalizer_coef: f64,
}

/// A fitted model with its report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fit<M> {
    pub model: M,
    pub report: FitReport,
}

impl<M> Fit<M> {
    /// The model if the fit converged, else [`AnalyticsError::NoConvergence`] describing it.
    pub fn converged(self) -> Result<M, AnalyticsError> {
        if self.report.converged {
            Ok(self.model)
        } else {
            Err(AnalyticsError::NoConvergence(format!(
                "{} iterations ({:?}), gradient norm {:.3e}, log-likelihood {}",
                self.report.iterations,
                self.report.optimizer,
                self.report.gradient_norm,
                self.report.log_likelihood
            )))
        }
    }
}

/// A likelihood the generic fitter can maximise: N positive parameters, the total
/// log-likelihood and its gradient with respect to them.
pub(crate) trait Likelihood<const N: usize>: Sized {
    type Data: Sync;
    fn from_parameters(parameters: [f64; N]) -> Self;
    /// Time-scale parameters (α, β) are multiplied by this scale before the penalty.
    fn is_time_scale(index: usize) -> bool;
    fn log_likelihood_and_gradient(&self, data: &Self::Data) -> (f64, [f64; N]);
}

/// Where every fit starts: scaled log-parameters of 0.1, as `lifetimes` does.
const START: f64 = 0.1;

/// Maximise the likelihood on log-parameters (see [`FitOptions`]). `time_scale` converts
/// time-scale parameters to the penalised, rescaled units (1/max T).
pub(crate) fn maximize_likelihood<const N: usize, M: Likelihood<N>>(
    data: &M::Data,
    total_weight: f64,
    unique_rows: usize,
    time_scale: f64,
    options: &FitOptions,
) -> Result<Fit<M>, AnalyticsError> {
    if !(options.penalizer_coef >= 0.0 && options.penalizer_coef.is_finite()) {
        return Err(AnalyticsError::InvalidInput(format!(
            "penalizer_coef must be finite and non-negative, got {}",
            options.penalizer_coef
        )));
    }
    let scales: [f64; N] =
        std::array::from_fn(|i| if M::is_time_scale(i) { time_scale } else { 1.0 });
    let parameters_of =
        |theta: &[f64; N]| -> [f64; N] { std::array::from_fn(|i| theta[i].exp() / scales[i]) };
    let objective = |theta: &[f64; N]| -> (f64, [f64; N]) {
        let parameters = parameters_of(theta);
        let (ll, gradient) = M::from_parameters(parameters).log_likelihood_and_gradient(data);
        let penalty: f64 = theta.iter().map(|t| (2.0 * t).exp()).sum();
        let value = -ll / total_weight + options.penalizer_coef * penalty;
        // d/dθ of a parameter is the parameter itself.
        let d_theta = std::array::from_fn(|i| {
            -gradient[i] * parameters[i] / total_weight
                + 2.0 * options.penalizer_coef * (2.0 * theta[i]).exp()
        });
        (value, d_theta)
    };
    let minimum = optimize::minimize(
        objective,
        [START; N],
        optimize::Tolerances {
            gradient: options.gradient_tolerance,
            max_iterations: options.max_iterations,
        },
    );
    let model = M::from_parameters(parameters_of(&minimum.x));
    let (log_likelihood, _) = model.log_likelihood_and_gradient(data);
    Ok(Fit {
        model,
        report: FitReport {
            log_likelihood,
            objective: minimum.value,
            gradient_norm: minimum.gradient.iter().fold(0.0, |m, g| m.max(g.abs())),
            converged: minimum.converged,
            optimizer: minimum.optimizer,
            iterations: minimum.iterations,
            evaluations: minimum.evaluations,
            customers: total_weight,
            unique_rows,
            penalizer_coef: options.penalizer_coef,
        },
    })
}

/// Rows per parallel task when summing a likelihood (fixed, so sums are deterministic).
const ROWS_PER_TASK: usize = 4096;

/// Σ over rows of `per_row` (value and N gradient terms), in parallel with a fixed split.
pub(crate) fn sum_rows<T: Sync, const K: usize>(
    rows: &[T],
    per_row: impl Fn(&T) -> [f64; K] + Sync,
) -> [f64; K] {
    let partials: Vec<[f64; K]> = rows
        .par_chunks(ROWS_PER_TASK)
        .map(|chunk| {
            let mut sums = [0.0; K];
            for row in chunk {
                for (sum, term) in sums.iter_mut().zip(per_row(row)) {
                    *sum += term;
                }
            }
            sums
        })
        .collect();
    partials.iter().fold([0.0; K], |mut total, partial| {
        for (t, p) in total.iter_mut().zip(partial) {
            *t += p;
        }
        total
    })
}
