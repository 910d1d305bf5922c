//! BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam et al. 2007).
//!
//! Both: while alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); they
//! drop out with probability p ~ Beta(a, b) after each repeat purchase (BG/NBD) or after
//! each purchase including the first (MBG/NBD, so a customer with x = 0 may be gone).
//! The two share every formula up to a shift of b by one, written `shift` below
//! (0 for BG/NBD, 1 for MBG/NBD): the likelihood is
//!
//! L = B(a, b+x+k)/B(a, b) · Γ(r+x)αʳ/Γ(r) · [(α+T)^−(r+x) + g·a/(b+x+k−1)·(α+tₓ)^−(r+x)]
//!
//! with k the shift and g = 1 for MBG/NBD, g = [x > 0] for BG/NBD (FHL 2005 eq. 6;
//! Batislam et al. 2007 eq. 3).

use serde::{Deserialize, Serialize};

use super::{
    CountData, CountModel, Fit, FitOptions, Likelihood, PurchaseHistory, maximize_likelihood,
    sum_rows,
};
use crate::AnalyticsError;
use crate::special::{digamma, hyp2f1, ln_beta, ln_gamma, logistic, softplus_and_logistic};

/// BG/NBD parameters (names as in `lifetimes.BetaGeoFitter`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// MBG/NBD parameters (names as in `lifetimes.ModifiedBetaGeoFitter`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModifiedBgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// The formulas shared by both models.
#[derive(Debug, Clone, Copy)]
struct BetaGeometric {
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    /// 0 for BG/NBD, 1 for MBG/NBD.
    shift: f64,
    /// Whether a customer with x = 0 can have dropped out (MBG/NBD).
    dropout_before_repeat: bool,
}

impl BetaGeometric {
    fn can_be_dead(&self, frequency: f64) -> bool {
        self.dropout_before_repeat || frequency > 0.0
    }

    /// ln of the odds that the customer is dead rather than alive at T:
    /// ln[a/(b+x+k−1)] + (r+x)·ln((α+T)/(α+tₓ)).
    fn log_odds_dead(&self, history: &PurchaseHistory) -> f64 {
        let PurchaseHistory {
            frequency: x,
            recency,
            t,
        } = *history;
        (self.a / (self.b + x + self.shift - 1.0)).ln()
            + (self.r + x) * ((self.alpha + t) / (self.alpha + recency)).ln()
    }

    /// P(alive | x, tₓ, T) (FHL note 021 for BG/NBD; Batislam et al. 2007 appendix eq. 5).
    fn probability_alive(&self, history: &PurchaseHistory) -> f64 {
        if self.can_be_dead(history.frequency) {
            logistic(-self.log_odds_dead(history))
        } else {
            1.0
        }
    }

    /// E[Y(t) | x, tₓ, T] (FHL 2005 eq. 10; Wagner & Hoppe 2008 for MBG/NBD):
    /// P(alive) · (a+b+x+k−1)/(a−1) · [1 − ₂F₁(r+x, b+x+k; a+b+x+k−1; z)·(1−z)^(r+x)],
    /// z = t/(α+T+t). The ₂F₁ is taken through Euler's transformation (A&S 15.3.3),
    /// ₂F₁(r+x, b+x+k; c; z)(1−z)^(r+x) = (1−z)^(a−1) ₂F₁(a+b+k−1−r, a−1; c; z), whose
    /// upper parameters do not grow with x, so its series stays short for heavy buyers.
    fn conditional_expected_purchases(&self, t: f64, history: &PurchaseHistory) -> f64 {
        let Self {
            r,
            alpha,
            a,
            b,
            shift,
            ..
        } = *self;
        let x = history.frequency;
        let c = a + b + x + shift - 1.0;
        let z = t / (alpha + history.t + t);
        let survival = (a - 1.0) * (-z).ln_1p();
        let remaining = survival.exp() * hyp2f1(a + b + shift - 1.0 - r, a - 1.0, c, z);
        self.probability_alive(history) * c / (a - 1.0) * (1.0 - remaining)
    }

    /// E[X(t)] of a new customer: the conditional expectation at x = tₓ = T = 0
    /// (FHL 2005 eq. 9).
    fn expected_purchases(&self, t: f64) -> f64 {
        let new_customer = PurchaseHistory {
            frequency: 0.0,
            recency: 0.0,
            t: 0.0,
        };
        self.conditional_expected_purchases(t, &new_customer)
    }

    /// P(X(t) = n) for a new customer (FHL 2005 eq. 8; `lifetimes`' MBG/NBD version):
    /// B(a, b+n+k)/B(a,b) · NB(n) + B(a+1, b+n+k−1)/B(a,b) · P(NB ≥ n), the second term
    /// only when the customer can be dead after n purchases, with NB the negative binomial
    /// count of a Gamma(r, α)-Poisson process over t.
    fn probability_of_purchases(&self, t: f64, n: u32) -> f64 {
        let Self {
            r,
            alpha,
            a,
            b,
            shift,
            ..
        } = *self;
        if t <= 0.0 {
            return if n == 0 { 1.0 } else { 0.0 };
        }
        let n_f = f64::from(n);
        let buy_share = t / (alpha + t);
        // NB(j) = Γ(r+j)/(Γ(r) j!) (α/(α+t))ʳ (t/(α+t))ʲ, by its recurrence in j.
        let mut negative_binomial = (r * (alpha / (alpha + t)).ln()).exp();
        let mut below_n = 0.0;
        for j in 0..n {
            below_n += negative_binomial;
            negative_binomial *= (r + f64::from(j)) / f64::from(j + 1) * buy_share;
        }
        let ln_beta_ab = ln_beta(a, b);
        let alive = (ln_beta(a, b + n_f + shift) - ln_beta_ab).exp() * negative_binomial;
        if !self.can_be_dead(n_f) {
            return alive;
        }
        let dead = (ln_beta(a + 1.0, b + n_f + shift - 1.0) - ln_beta_ab).exp() * (1.0 - below_n);
        alive + dead
    }

    /// Log-likelihood and gradient in (r, α, a, b). Per distinct x it evaluates the ln Γ
    /// and ψ terms once, per distinct time ln(α+t) and 1/(α+t) once; per row only the
    /// softplus of the dead/alive log-odds remains.
    fn log_likelihood_and_gradient(&self, data: &CountData) -> (f64, [f64; 4]) {
        let Self {
            r,
            alpha,
            a,
            b,
            shift,
            ..
        } = *self;
        let by_frequency: Vec<FrequencyTerms> = data
            .frequencies
            .iter()
            .map(|&x| {
                let x = f64::from(x);
                let (bx, abx) = (b + x + shift, a + b + x + shift);
                FrequencyTerms {
                    constant: ln_gamma(r + x) - ln_gamma(r)
                        + r * alpha.ln()
                        + ln_gamma(a + b)
                        + ln_gamma(bx)
                        - ln_gamma(b)
                        - ln_gamma(abx),
                    d_r: digamma(r + x) - digamma(r) + alpha.ln(),
                    d_a: digamma(a + b) - digamma(abx),
                    d_b: digamma(a + b) + digamma(bx) - digamma(b) - digamma(abx),
                    ln_dropout: (a / (bx - 1.0)).ln(),
                    inverse_b_term: 1.0 / (bx - 1.0),
                    gated: self.can_be_dead(x),
                }
            })
            .collect();
        let ln_times: Vec<(f64, f64)> = data
            .times
            .iter()
            .map(|&t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect();
        let [ll, d_r, d_alpha, d_a, d_b] = sum_rows(&data.rows, |row| {
            let terms = &by_frequency[row.frequency_index as usize];
            let (ln_age, inverse_age) = ln_times[row.age_index as usize];
            let (ln_recency, inverse_recency) = ln_times[row.recency_index as usize];
            let r_x = r + f64::from(row.frequency);
            let w = row.weight;
            let mut ll = terms.constant - r_x * ln_age;
            let mut d_r = terms.d_r - ln_age;
            let mut d_alpha = r / alpha - r_x * inverse_age;
            let mut d_a = terms.d_a;
            let mut d_b = terms.d_b;
            if terms.gated {
                // ln[(α+T)^−(r+x) + a/(b+x+k−1)(α+tₓ)^−(r+x)] = −(r+x)ln(α+T) + softplus(δ).
                let log_odds = terms.ln_dropout + r_x * (ln_age - ln_recency);
                let (softplus, dead) = softplus_and_logistic(log_odds);
                ll += softplus;
                d_r += dead * (ln_age - ln_recency);
                d_alpha += dead * r_x * (inverse_age - inverse_recency);
                d_a += dead / a;
                d_b -= dead * terms.inverse_b_term;
            }
            [w * ll, w * d_r, w * d_alpha, w * d_a, w * d_b]
        });
        (ll, [d_r, d_alpha, d_a, d_b])
    }
}

/// The parts of the likelihood that depend on the row only through x.
struct FrequencyTerms {
    /// ln Γ(r+x) − ln Γ(r) + r ln α + ln B(a, b+x+k) − ln B(a, b).
    constant: f64,
    /// Their derivatives in r, a, b.
    d_r: f64,
    d_a: f64,
    d_b: f64,
    /// ln[a/(b+x+k−1)] and 1/(b+x+k−1).
    ln_dropout: f64,
    inverse_b_term: f64,
    gated: bool,
}

macro_rules! beta_geometric_model {
    ($model:ident, $name:literal, $shift:literal, $dropout_before_repeat:literal) => {
        impl $model {
            fn formulas(&self) -> BetaGeometric {
                BetaGeometric {
                    r: self.r,
                    alpha: self.alpha,
                    a: self.a,
                    b: self.b,
                    shift: $shift,
                    dropout_before_repeat: $dropout_before_repeat,
                }
            }

            /// Total log-likelihood and its gradient in (r, α, a, b).
            pub fn log_likelihood_gradient(&self, data: &CountData) -> (f64, [f64; 4]) {
                self.formulas().log_likelihood_and_gradient(data)
            }

            /// P(X(t) = n): probability that a new customer makes n repeat purchases in
            /// (0, t] (`lifetimes`' `probability_of_n_purchases_up_to_time`).
            pub fn probability_of_purchases(&self, t: f64, n: u32) -> f64 {
                self.formulas().probability_of_purchases(t, n)
            }
        }

        impl Likelihood<4> for $model {
            type Data = CountData;
            fn from_parameters([r, alpha, a, b]: [f64; 4]) -> Self {
                $model { r, alpha, a, b }
            }
            fn is_time_scale(index: usize) -> bool {
                index == 1
            }
            fn log_likelihood_and_gradient(&self, data: &CountData) -> (f64, [f64; 4]) {
                self.log_likelihood_gradient(data)
            }
        }

        impl CountModel for $model {
            const NAME: &'static str = $name;

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
            fn expected_purchases(&self, t: f64) -> f64 {
                self.formulas().expected_purchases(t)
            }
            fn conditional_expected_purchases(&self, t: f64, history: &PurchaseHistory) -> f64 {
                self.formulas().conditional_expected_purchases(t, history)
            }
            fn probability_alive(&self, history: &PurchaseHistory) -> f64 {
                self.formulas().probability_alive(history)
            }
        }
    };
}

beta_geometric_model!(BgNbd, "bgnbd", 0.0, false);
beta_geometric_model!(ModifiedBgNbd, "mbgnbd", 1.0, true);
