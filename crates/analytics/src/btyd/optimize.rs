//! Small unconstrained minimisers for the model fits: L-BFGS with a line search on the
//! approximate Wolfe conditions, and Nelder–Mead as the fallback when L-BFGS cannot make
//! progress. The fits run them on log-parameters, so every point is feasible.
//!
//! References: Nocedal & Wright, *Numerical Optimization* (2006), Alg. 7.4 (two-loop
//! recursion); Hager & Zhang (2005), "A new conjugate gradient method with guaranteed
//! descent and an efficient line search", SIAM J. Optim. 16(1) (approximate Wolfe
//! conditions, which still hold where f is flat to rounding); Lagarias et al. (1998),
//! "Convergence properties of the Nelder–Mead simplex method in low dimensions".

use serde::{Deserialize, Serialize};

/// Which minimiser produced the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimizer {
    Lbfgs,
    /// L-BFGS stalled; Nelder–Mead continued from its best point.
    NelderMead,
}

/// Stopping rules for [`minimize`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tolerances {
    /// Converged when the largest gradient component is at most this.
    pub gradient: f64,
    pub max_iterations: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Minimum<const N: usize> {
    pub x: [f64; N],
    pub value: f64,
    pub gradient: [f64; N],
    pub iterations: usize,
    pub evaluations: usize,
    pub converged: bool,
    pub optimizer: Optimizer,
}

/// Pairs (s, y) kept by L-BFGS.
const MEMORY: usize = 8;
/// Sufficient decrease (Armijo) constant and curvature constant.
const ARMIJO: f64 = 1e-4;
const CURVATURE: f64 = 0.9;
/// Approximate Wolfe: f may rise by this relative amount (rounding) if the slope is right.
const FLAT_RELATIVE: f64 = 1e-12;
/// Largest move of any log-parameter in one step (e⁵ ≈ 150× a parameter).
const MAX_STEP: f64 = 5.0;
const MAX_LINE_SEARCH_STEPS: usize = 40;

/// Minimise `objective` (value and gradient) from `start`: L-BFGS, then Nelder–Mead from
/// the best point if L-BFGS stops without meeting the gradient tolerance.
pub(crate) fn minimize<const N: usize>(
    objective: impl Fn(&[f64; N]) -> (f64, [f64; N]),
    start: [f64; N],
    tolerances: Tolerances,
) -> Minimum<N> {
    let lbfgs = minimize_lbfgs(&objective, start, tolerances);
    if lbfgs.converged {
        return lbfgs;
    }
    let simplex = nelder_mead(
        &|x: &[f64; N]| objective(x).0,
        lbfgs.x,
        tolerances.max_iterations * 20,
    );
    if simplex.value >= lbfgs.value || simplex.value.is_nan() {
        return lbfgs;
    }
    let (value, gradient) = objective(&simplex.x);
    Minimum {
        x: simplex.x,
        value,
        gradient,
        iterations: lbfgs.iterations + simplex.iterations,
        evaluations: lbfgs.evaluations + simplex.evaluations + 1,
        converged: max_abs(&gradient) <= tolerances.gradient,
        optimizer: Optimizer::NelderMead,
    }
}

fn max_abs<const N: usize>(v: &[f64; N]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn finite_value<const N: usize>(evaluated: (f64, [f64; N])) -> (f64, [f64; N]) {
    let (value, gradient) = evaluated;
    if value.is_finite() && gradient.iter().all(|g| g.is_finite()) {
        (value, gradient)
    } else {
        (f64::INFINITY, gradient)
    }
}

fn minimize_lbfgs<const N: usize>(
    objective: &impl Fn(&[f64; N]) -> (f64, [f64; N]),
    start: [f64; N],
    tolerances: Tolerances,
) -> Minimum<N> {
    let mut x = start;
    let (mut value, mut gradient) = finite_value(objective(&x));
    let mut evaluations = 1;
    let mut history: Vec<([f64; N], [f64; N])> = Vec::with_capacity(MEMORY);
    let mut iterations = 0;
    while value.is_finite() && iterations < tolerances.max_iterations {
        if max_abs(&gradient) <= tolerances.gradient {
            break;
        }
        iterations += 1;
        let mut direction = two_loop_direction(&gradient, &history);
        let mut slope = dot(&gradient, &direction);
        if slope >= 0.0 || slope.is_nan() {
            history.clear();
            direction = gradient.map(|g| -g);
            slope = dot(&gradient, &direction);
        }
        // Without curvature information the first step is scaled to length 1 (as scipy's
        // BFGS does); later ones are capped at MAX_STEP in any coordinate.
        let longest = max_abs(&direction);
        let mut step = if history.is_empty() {
            1.0 / dot(&direction, &direction).sqrt().max(1.0)
        } else if longest > MAX_STEP {
            MAX_STEP / longest
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..MAX_LINE_SEARCH_STEPS {
            let candidate: [f64; N] = std::array::from_fn(|i| x[i] + step * direction[i]);
            let (candidate_value, candidate_gradient) = finite_value(objective(&candidate));
            evaluations += 1;
            let candidate_slope = dot(&candidate_gradient, &direction);
            let armijo = candidate_value <= value + ARMIJO * step * slope;
            let approximate_wolfe = candidate_value <= value + FLAT_RELATIVE * value.abs()
                && candidate_slope <= (2.0 * ARMIJO - 1.0) * slope
                && candidate_slope >= CURVATURE * slope;
            if candidate_value.is_finite() && (armijo || approximate_wolfe) {
                accepted = Some((candidate, candidate_value, candidate_gradient));
                break;
            }
            // Minimum of the quadratic through f(0), f'(0) and f(step), kept in [0.1, 0.5]·step.
            let curvature = candidate_value - value - slope * step;
            let quadratic = if candidate_value.is_finite() && curvature > 0.0 {
                -slope * step * step / (2.0 * curvature)
            } else {
                0.1 * step
            };
            step = quadratic.clamp(0.1 * step, 0.5 * step);
        }
        let Some((next, next_value, next_gradient)) = accepted else {
            if history.is_empty() {
                break;
            }
            // The quasi-Newton direction failed: restart from steepest descent.
            history.clear();
            continue;
        };
        if next == x {
            // The step is below the resolution of x: nothing more to gain.
            break;
        }
        let s: [f64; N] = std::array::from_fn(|i| next[i] - x[i]);
        let y: [f64; N] = std::array::from_fn(|i| next_gradient[i] - gradient[i]);
        if dot(&s, &y) > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if history.len() == MEMORY {
                history.remove(0);
            }
            history.push((s, y));
        }
        x = next;
        value = next_value;
        gradient = next_gradient;
    }
    Minimum {
        x,
        value,
        gradient,
        iterations,
        evaluations,
        converged: value.is_finite() && max_abs(&gradient) <= tolerances.gradient,
        optimizer: Optimizer::Lbfgs,
    }
}

/// −H·g by the L-BFGS two-loop recursion (Nocedal & Wright Alg. 7.4), with the initial
/// Hessian scaled by sᵀy/yᵀy of the newest pair.
fn two_loop_direction<const N: usize>(
    gradient: &[f64; N],
    history: &[([f64; N], [f64; N])],
) -> [f64; N] {
    let mut q = *gradient;
    let mut alphas = [0.0; MEMORY];
    for (k, (s, y)) in history.iter().enumerate().rev() {
        let alpha = dot(s, &q) / dot(y, s);
        alphas[k] = alpha;
        for i in 0..N {
            q[i] -= alpha * y[i];
        }
    }
    let scale = history.last().map_or(1.0, |(s, y)| dot(s, y) / dot(y, y));
    let mut r = q.map(|v| v * scale);
    for (k, (s, y)) in history.iter().enumerate() {
        let beta = dot(y, &r) / dot(y, s);
        for i in 0..N {
            r[i] += s[i] * (alphas[k] - beta);
        }
    }
    r.map(|v| -v)
}

struct SimplexResult<const N: usize> {
    x: [f64; N],
    value: f64,
    iterations: usize,
    evaluations: usize,
}

/// Nelder–Mead with the standard coefficients (reflection 1, expansion 2, contraction ½,
/// shrink ½), initial simplex +0.1 from `start` in each coordinate; stops when the values
/// span at most 1e-13 relative and the simplex is narrower than 1e-9. Whether that is a
/// minimum is judged by the caller from the gradient.
fn nelder_mead<const N: usize>(
    objective: &impl Fn(&[f64; N]) -> f64,
    start: [f64; N],
    max_evaluations: usize,
) -> SimplexResult<N> {
    let evaluate = |x: &[f64; N]| {
        let v = objective(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut vertices: Vec<([f64; N], f64)> = Vec::with_capacity(N + 1);
    vertices.push((start, evaluate(&start)));
    for i in 0..N {
        let mut vertex = start;
        vertex[i] += 0.1;
        vertices.push((vertex, evaluate(&vertex)));
    }
    let mut evaluations = N + 1;
    let mut iterations = 0;
    while evaluations < max_evaluations {
        vertices.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (vertices[0].1, vertices[N].1);
        let width = vertices[1..]
            .iter()
            .flat_map(|(v, _)| v.iter().zip(&vertices[0].0).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if (worst - best).abs() <= 1e-13 * (1.0 + best.abs()) && width <= 1e-9 {
            break;
        }
        iterations += 1;
        let centroid: [f64; N] = std::array::from_fn(|i| {
            vertices[..N].iter().map(|(v, _)| v[i]).sum::<f64>() / N as f64
        });
        let along = |t: f64| -> [f64; N] {
            std::array::from_fn(|i| centroid[i] + t * (vertices[N].0[i] - centroid[i]))
        };
        let reflected = along(-1.0);
        let reflected_value = evaluate(&reflected);
        evaluations += 1;
        if reflected_value < best {
            let expanded = along(-2.0);
            let expanded_value = evaluate(&expanded);
            evaluations += 1;
            vertices[N] = if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            };
            continue;
        }
        if reflected_value < vertices[N - 1].1 {
            vertices[N] = (reflected, reflected_value);
            continue;
        }
        let (contracted, limit) = if reflected_value < worst {
            (along(-0.5), reflected_value)
        } else {
            (along(0.5), worst)
        };
        let contracted_value = evaluate(&contracted);
        evaluations += 1;
        if contracted_value < limit {
            vertices[N] = (contracted, contracted_value);
            continue;
        }
        let best_vertex = vertices[0].0;
        for (vertex, value) in vertices.iter_mut().skip(1) {
            *vertex = std::array::from_fn(|i| best_vertex[i] + 0.5 * (vertex[i] - best_vertex[i]));
            *value = evaluate(vertex);
        }
        evaluations += N;
    }
    vertices.sort_by(|a, b| a.1.total_cmp(&b.1));
    SimplexResult {
        x: vertices[0].0,
        value: vertices[0].1,
        iterations,
        evaluations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64; 2]) -> (f64, [f64; 2]) {
        let (a, b) = (x[0], x[1]);
        let value = (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2);
        let gradient = [
            -2.0 * (1.0 - a) - 400.0 * a * (b - a * a),
            200.0 * (b - a * a),
        ];
        (value, gradient)
    }

    #[test]
    fn lbfgs_finds_the_rosenbrock_minimum() {
        let tolerances = Tolerances {
            gradient: 1e-10,
            max_iterations: 500,
        };
        let minimum = minimize(rosenbrock, [-1.2, 1.0], tolerances);
        assert!(minimum.converged);
        assert_eq!(minimum.optimizer, Optimizer::Lbfgs);
        assert!((minimum.x[0] - 1.0).abs() < 1e-8 && (minimum.x[1] - 1.0).abs() < 1e-8);
    }

    #[test]
    fn nelder_mead_finds_the_rosenbrock_minimum() {
        let simplex = nelder_mead(&|x: &[f64; 2]| rosenbrock(x).0, [-1.2, 1.0], 10_000);
        assert!(simplex.evaluations < 10_000);
        assert!((simplex.x[0] - 1.0).abs() < 1e-6 && (simplex.x[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_gradient_that_lies_falls_back_to_nelder_mead() {
        // The gradient points the wrong way, so no line search step decreases f.
        let liar = |x: &[f64; 2]| {
            let (value, gradient) = rosenbrock(x);
            (value, gradient.map(|g| -g))
        };
        let tolerances = Tolerances {
            gradient: 1e-10,
            max_iterations: 500,
        };
        let minimum = minimize(liar, [-1.2, 1.0], tolerances);
        assert_eq!(minimum.optimizer, Optimizer::NelderMead);
        assert!((minimum.x[0] - 1.0).abs() < 1e-6);
    }
}
