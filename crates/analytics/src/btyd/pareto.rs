//! Pareto/NBD (Schmittlein, Morrison & Colombo 1987): while alive a customer buys as a
//! Poisson process with rate λ ~ Gamma(r, α); their lifetime is exponential with rate
//! μ ~ Gamma(s, β). Likelihood from Fader & Hardie (2005), "A note on deriving the
//! Pareto/NBD model and related expressions" (brucehardie.com note 009), eq. 18–20:
//!
//! L = Γ(r+x)αʳβˢ/Γ(r) · [(α+T)^−(r+x)(β+T)^−s + s·∫_{tₓ}^{T} (α+τ)^−(r+x)(β+τ)^−(s+1) dτ]
//!
//! and the integral is F(tₓ) − F(T) with F(y) = ∫_y^∞ … dτ = (m+y)^−(r+s+x)·₂F₁(r+s+x, b';
//! r+s+x+1; |α−β|/(m+y))/(r+s+x), m = max(α, β), b' = s+1 if α ≥ β else r+x.

use serde::{Deserialize, Serialize};

use super::{
    CountData, CountModel, Fit, FitOptions, Likelihood, PurchaseHistory, maximize_likelihood,
    sum_rows,
};
use crate::AnalyticsError;
use crate::special::{digamma, hyp2f1_shifted_c, ln_add_exp, ln_gamma, logistic};

/// Pareto/NBD parameters (names as in `lifetimes.ParetoNBDFitter`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbd {
    pub r: f64,
    pub alpha: f64,
    pub s: f64,
    pub beta: f64,
}

/// ln F(y) and its gradient in (r, α, s, β).
struct TailIntegral {
    ln_value: f64,
    gradient: [f64; 4],
}

/// One customer's log-likelihood split into its parts.
struct Likelihoods {
    /// ln[Γ(r+x)αʳβˢ/Γ(r)] and its gradient.
    ln_constant: f64,
    d_constant: [f64; 4],
    /// ln[(α+T)^−(r+x)(β+T)^−s]: alive at T.
    ln_alive: f64,
    d_alive: [f64; 4],
    /// ln[s(F(tₓ) − F(T))]: died in (tₓ, T]; −∞ when tₓ = T.
    ln_died: f64,
    d_died: [f64; 4],
}

impl Likelihoods {
    fn log_likelihood(&self) -> f64 {
        self.ln_constant + ln_add_exp(self.ln_alive, self.ln_died)
    }
    fn probability_alive(&self) -> f64 {
        logistic(self.ln_alive - self.ln_died)
    }
}

impl ParetoNbd {
    /// F(y) = ∫_y^∞ (α+τ)^−(r+x)(β+τ)^−(s+1) dτ in logs, with its gradient.
    fn tail_integral(&self, x: f64, y: f64) -> TailIntegral {
        let Self { r, alpha, s, beta } = *self;
        let a = r + s + x;
        let alpha_is_larger = alpha >= beta;
        let (larger, smaller, upper) = if alpha_is_larger {
            (alpha, beta, s + 1.0)
        } else {
            (beta, alpha, r + x)
        };
        let base = larger + y;
        let z = (larger - smaller) / base;
        let hyp = hyp2f1_shifted_c(a, upper, z);
        // ln F = −a ln(m+y) + ln ₂F₁ − ln a.
        let ln_value = -a * base.ln() + hyp.value.ln() - a.ln();
        let d_ln_a = -base.ln() + hyp.d_a / hyp.value - 1.0 / a;
        let d_ln_upper = hyp.d_b / hyp.value;
        let d_ln_z = hyp.d_z / hyp.value;
        // ∂z/∂(larger) = (smaller + y)/base², ∂z/∂(smaller) = −1/base.
        let d_larger = -a / base + d_ln_z * (smaller + y) / (base * base);
        let d_smaller = -d_ln_z / base;
        let gradient = if alpha_is_larger {
            [d_ln_a, d_larger, d_ln_a + d_ln_upper, d_smaller]
        } else {
            [d_ln_a + d_ln_upper, d_smaller, d_ln_a, d_larger]
        };
        TailIntegral { ln_value, gradient }
    }

    /// Every part of one history's likelihood; `ln_gamma_ratio` = ln Γ(r+x) − ln Γ(r) and
    /// `digamma_difference` = ψ(r+x) − ψ(r), shared by all customers with the same x.
    fn likelihoods(
        &self,
        history: &PurchaseHistory,
        ln_gamma_ratio: f64,
        digamma_difference: f64,
    ) -> Likelihoods {
        let Self { r, alpha, s, beta } = *self;
        let PurchaseHistory {
            frequency: x,
            recency,
            t,
        } = *history;
        let ln_constant = ln_gamma_ratio + r * alpha.ln() + s * beta.ln();
        let d_constant = [
            digamma_difference + alpha.ln(),
            r / alpha,
            beta.ln(),
            s / beta,
        ];
        let ln_alive = -(r + x) * (alpha + t).ln() - s * (beta + t).ln();
        let d_alive = [
            -(alpha + t).ln(),
            -(r + x) / (alpha + t),
            -(beta + t).ln(),
            -s / (beta + t),
        ];
        let (ln_died, d_died) = if recency < t {
            let from_recency = self.tail_integral(x, recency);
            let from_age = self.tail_integral(x, t);
            // ln[F(tₓ) − F(T)] = ln F(tₓ) + ln(1 − ρ), ρ = F(T)/F(tₓ) < 1.
            let ratio = (from_age.ln_value - from_recency.ln_value).exp();
            let ln_died = s.ln() + from_recency.ln_value + (-ratio).ln_1p();
            let mut d_died: [f64; 4] = std::array::from_fn(|i| {
                (from_recency.gradient[i] - ratio * from_age.gradient[i]) / (1.0 - ratio)
            });
            d_died[2] += 1.0 / s;
            (ln_died, d_died)
        } else {
            (f64::NEG_INFINITY, [0.0; 4])
        };
        Likelihoods {
            ln_constant,
            d_constant,
            ln_alive,
            d_alive,
            ln_died,
            d_died,
        }
    }

    fn likelihoods_of(&self, history: &PurchaseHistory) -> Likelihoods {
        let r = self.r;
        let x = history.frequency;
        self.likelihoods(
            history,
            ln_gamma(r + x) - ln_gamma(r),
            digamma(r + x) - digamma(r),
        )
    }

    /// Total log-likelihood and its gradient in (r, α, s, β).
    pub fn log_likelihood_gradient(&self, data: &CountData) -> (f64, [f64; 4]) {
        let r = self.r;
        let by_frequency: Vec<(f64, f64)> = data
            .frequencies
            .iter()
            .map(|&x| {
                let x = f64::from(x);
                (ln_gamma(r + x) - ln_gamma(r), digamma(r + x) - digamma(r))
            })
            .collect();
        let [ll, d_r, d_alpha, d_s, d_beta] = sum_rows(&data.rows, |row| {
            let (ln_gamma_ratio, digamma_difference) = by_frequency[row.frequency_index as usize];
            let history = PurchaseHistory {
                frequency: f64::from(row.frequency),
                recency: row.recency,
                t: row.age,
            };
            let parts = self.likelihoods(&history, ln_gamma_ratio, digamma_difference);
            let alive = parts.probability_alive();
            let w = row.weight;
            let d = |i: usize| {
                let died = if alive < 1.0 {
                    (1.0 - alive) * parts.d_died[i]
                } else {
                    0.0
                };
                w * (parts.d_constant[i] + alive * parts.d_alive[i] + died)
            };
            [w * parts.log_likelihood(), d(0), d(1), d(2), d(3)]
        });
        (ll, [d_r, d_alpha, d_s, d_beta])
    }
}

/// [1 − (base/(base+t))^(s−1)]/(s−1), continuous at s = 1 (where it is ln(1 + t/base)).
fn lifetime_integral(s: f64, base: f64, t: f64) -> f64 {
    let log_growth = (t / base).ln_1p();
    if s == 1.0 {
        log_growth
    } else {
        -(-(s - 1.0) * log_growth).exp_m1() / (s - 1.0)
    }
}

impl Likelihood<4> for ParetoNbd {
    type Data = CountData;
    fn from_parameters([r, alpha, s, beta]: [f64; 4]) -> Self {
        ParetoNbd { r, alpha, s, beta }
    }
    fn is_time_scale(index: usize) -> bool {
        index == 1 || index == 3
    }
    fn log_likelihood_and_gradient(&self, data: &CountData) -> (f64, [f64; 4]) {
        self.log_likelihood_gradient(data)
    }
}

impl CountModel for ParetoNbd {
    const NAME: &'static str = "pareto_nbd";

    fn fit(data: &CountData, options: &FitOptions) -> Result<Fit<Self>, AnalyticsError> {
        maximize_likelihood(
            data,
            data.customers(),
            data.unique_rows(),
            data.time_scale(),
            options,
        )
    }

    fn log_likelihood(&self, data: &CountData) -> f64 {
        self.log_likelihood_gradient(data).0
    }

    /// Note 009 eq. 27: rβ/(α(s−1)) · [1 − (β/(β+t))^(s−1)].
    fn expected_purchases(&self, t: f64) -> f64 {
        self.r * self.beta / self.alpha * lifetime_integral(self.s, self.beta, t)
    }

    /// Note 009 eq. 41: P(alive) · (r+x)(β+T)/((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)].
    fn conditional_expected_purchases(&self, t: f64, history: &PurchaseHistory) -> f64 {
        let Self { r, alpha, beta, s } = *self;
        let age = history.t;
        self.probability_alive(history) * (r + history.frequency) * (beta + age) / (alpha + age)
            * lifetime_integral(s, beta + age, t)
    }

    /// Note 009 eq. 36–37: the share of the likelihood from being alive at T (1 when tₓ = T).
    fn probability_alive(&self, history: &PurchaseHistory) -> f64 {
        self.likelihoods_of(history).probability_alive()
    }
}
