//! Gradient checking against central differences.
//!
//! For a function `f(inputs) -> output`, the analytic gradient of
//! `L = sum(output * r)` (with a fixed random `r`, so no symmetric cancellation hides a
//! wrong sign) is compared with `(L(x + h) - L(x - h)) / 2h` for every input element.
//! `L` is accumulated in f64 so that only the f32 forward itself adds rounding noise.
//!
//! Error measure: the normwise relative error `max|a - n| / max(max|a|, max|n|)` per
//! input. Tolerance: with f32 (eps = 1.2e-7), a loss of magnitude ~10 and h = 1e-2 the
//! rounding error of a difference is about 1e-7 * 10 / 1e-2 = 1e-4, and the truncation
//! error is O(h^2) = 1e-4 times the third derivative; a wrong backward is off by O(1).
//! So 1e-2 separates the two by two orders of magnitude either way.
//! Near kinks (ReLU at 0, ties in max-pool) the numerical estimate is wrong, not the
//! backward: callers keep inputs away from kinks by more than h.

use super::autograd::Var;
use super::rng::Rng;
use super::tensor::Tensor;

/// The tolerance used by the test suite and `nabla gradcheck` (see the module docs).
pub const DEFAULT_TOLERANCE: f32 = 1e-2;
pub const DEFAULT_STEP: f32 = 1e-2;

#[derive(Debug, Clone)]
pub struct GradCheck {
    /// Normwise relative error for each input.
    pub rel_errors: Vec<f32>,
    /// Largest analytic gradient magnitude for each input (a zero gradient is suspicious).
    pub grad_scale: Vec<f32>,
}

impl GradCheck {
    pub fn worst(&self) -> f32 {
        self.rel_errors.iter().cloned().fold(0.0, f32::max)
    }
}

fn projected_loss(out: &Tensor, r: &Tensor) -> f64 {
    out.data()
        .iter()
        .zip(r.data())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Checks the gradient of `f` with respect to every tensor in `inputs`.
pub fn check(f: impl Fn(&[Var]) -> Var, inputs: &[Tensor], h: f32, seed: u64) -> GradCheck {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::parameter(t.clone())).collect();
    let out = f(&vars);
    let mut rng = Rng::new(seed);
    let r = Tensor::from_vec(
        (0..out.value_ref().numel())
            .map(|_| rng.uniform_range(-1.0, 1.0))
            .collect(),
        &out.shape(),
    );
    out.backward_with(r.clone());
    let mut rel_errors = Vec::new();
    let mut grad_scale = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let analytic = vars[i]
            .grad()
            .unwrap_or_else(|| Tensor::zeros(input.shape()));
        let mut numeric = vec![0.0f32; input.numel()];
        for (j, num) in numeric.iter_mut().enumerate() {
            let eval = |delta: f32| {
                let mut x = input.clone();
                x.data_mut()[j] += delta;
                let probe: Vec<Var> = vars
                    .iter()
                    .enumerate()
                    .map(|(k, v)| Var::constant(if k == i { x.clone() } else { v.value() }))
                    .collect();
                let _g = super::autograd::no_grad();
                projected_loss(&f(&probe).value(), &r)
            };
            *num = ((eval(h) - eval(-h)) / (2.0 * h as f64)) as f32;
        }
        let mut max_diff = 0.0f32;
        let mut max_mag = 0.0f32;
        for (a, n) in analytic.data().iter().zip(&numeric) {
            max_diff = max_diff.max((a - n).abs());
            max_mag = max_mag.max(a.abs()).max(n.abs());
        }
        rel_errors.push(if max_mag == 0.0 {
            0.0
        } else {
            max_diff / max_mag
        });
        grad_scale.push(analytic.data().iter().fold(0.0f32, |m, x| m.max(x.abs())));
    }
    GradCheck {
        rel_errors,
        grad_scale,
    }
}

/// Random input away from zero by at least `margin` (keeps ReLU-like kinks out of the
/// central difference's reach).
pub fn random_away_from_zero(shape: &[usize], rng: &mut Rng, margin: f32) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        (0..n)
            .map(|_| {
                let m = rng.uniform_range(margin, 1.0);
                if rng.uniform() < 0.5 {
                    -m
                } else {
                    m
                }
            })
            .collect(),
        shape,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checker must catch a backward that is only slightly wrong.
    #[test]
    fn a_wrong_backward_fails_the_check() {
        let square = |scale: f32| {
            move |v: &[Var]| {
                let x = v[0].value();
                let xk = x.clone();
                Var::from_op(x.map(|a| a * a), "square", &[&v[0]], move |dy| {
                    vec![Some(dy.zip_map(&xk, |g, a| scale * 2.0 * a * g))]
                })
            }
        };
        let mut rng = Rng::new(1);
        let x = random_away_from_zero(&[3, 4], &mut rng, 0.1);
        let good = check(square(1.0), std::slice::from_ref(&x), DEFAULT_STEP, 1);
        assert!(good.worst() < DEFAULT_TOLERANCE, "{good:?}");
        let bad = check(square(1.05), &[x], DEFAULT_STEP, 1);
        assert!(bad.worst() > DEFAULT_TOLERANCE, "{bad:?}");
    }
}
