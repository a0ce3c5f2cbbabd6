//! Activations: relu, leaky_relu, elu, gelu, swish, sigmoid, tanh, step, softmax (over
//! the last axis).
//!
//! | op            | forward                  | d out / d x                 |
//! |---------------|--------------------------|-----------------------------|
//! | relu          | max(x, 0)                | 1 if x > 0 else 0           |
//! | relu_general(m, a, t) | m if x >= m; x if t <= x < m; a(x - t) below t | 0; 1; a |
//! | leaky_relu(a) | x if x > 0 else a*x      | 1 if x > 0 else a           |
//! | elu(a)        | x if x > 0 else a(e^x-1) | 1 if x > 0 else y + a       |
//! | gelu (exact)  | x Phi(x) = x/2 (1 + erf(x/sqrt 2)) | Phi(x) + x phi(x) (phi the normal pdf) |
//! | swish / silu  | x sigmoid(x) = x s       | s (1 + x (1 - s))           |
//! | sigmoid       | 1 / (1 + e^-x)           | y (1 - y)                   |
//! | tanh          | tanh x                   | 1 - y^2                     |
//! | step          | 1 if x > 0 else 0        | 0 (the perceptron's rule does not use it) |
//! | softmax       | e^x_i / sum_j e^x_j      | y_i (g_i - sum_j g_j y_j)   |

use crate::engine::{Tensor, Var};

/// Under `engine::kinks` record/replay: the positive-side mask to use for `x`.
fn frozen_mask(x: &Tensor) -> Option<Vec<u32>> {
    if !crate::engine::kinks::active() {
        return None;
    }
    let mask = x.data().iter().map(|&v| u32::from(v > 0.0)).collect();
    Some(crate::engine::kinks::choose(mask).0)
}

pub fn relu(x: &Var) -> Var {
    let xv = x.value().contiguous_f32();
    let y = match frozen_mask(&xv) {
        Some(mask) => Tensor::from_vec(
            xv.data()
                .iter()
                .zip(&mask)
                .map(|(&v, &m)| if m == 1 { v } else { 0.0 })
                .collect(),
            xv.shape(),
        ),
        None => xv.map(|v| v.max(0.0)),
    };
    let yk = y.clone();
    Var::from_op(y, "relu", &[x], move |dy| {
        vec![Some(dy.zip_map(&yk, |g, y| if y > 0.0 { g } else { 0.0 }))]
    })
}

/// Which piece of `relu_general` an input falls on: below the threshold, on the
/// identity, or clipped at `max_value`. Also the choice `engine::kinks` records.
const BELOW: u32 = 0;
const IDENTITY: u32 = 1;
const CLIPPED: u32 = 2;

fn relu_piece(v: f32, max_value: Option<f32>, threshold: f32) -> u32 {
    match max_value {
        Some(m) if v >= m => CLIPPED,
        _ if v >= threshold => IDENTITY,
        _ => BELOW,
    }
}

/// Keras' `relu(x, negative_slope, max_value, threshold)` (the `ReLU` layer), as its
/// documentation defines it: `max_value` where `x >= max_value`, `x` where
/// `threshold <= x < max_value`, and `negative_slope * (x - threshold)` below the
/// threshold. The plain cases go to `relu` and `leaky_relu` (same values, and `relu`
/// keeps its smaller backward); the rest records each element's piece, so the backward
/// is a lookup (slope 0 where clipped) and kinks can be frozen for gradient checks.
pub fn relu_general(x: &Var, max_value: Option<f32>, negative_slope: f32, threshold: f32) -> Var {
    if max_value.is_none() && threshold == 0.0 {
        return if negative_slope == 0.0 {
            relu(x)
        } else {
            leaky_relu(x, negative_slope)
        };
    }
    let xv = x.value().contiguous_f32();
    let mut pieces: Vec<u32> = xv
        .data()
        .iter()
        .map(|&v| relu_piece(v, max_value, threshold))
        .collect();
    if crate::engine::kinks::active() {
        pieces = crate::engine::kinks::choose(pieces).0;
    }
    let y = Tensor::from_vec(
        xv.data()
            .iter()
            .zip(&pieces)
            .map(|(&v, &p)| match p {
                CLIPPED => max_value.unwrap_or(v),
                IDENTITY => v,
                _ => negative_slope * (v - threshold),
            })
            .collect(),
        xv.shape(),
    );
    Var::from_op(y, "relu_general", &[x], move |dy| {
        let dx = dy
            .data()
            .iter()
            .zip(&pieces)
            .map(|(&g, &p)| match p {
                CLIPPED => 0.0,
                IDENTITY => g,
                _ => negative_slope * g,
            })
            .collect();
        vec![Some(Tensor::from_vec(dx, dy.shape()))]
    })
}

pub fn leaky_relu(x: &Var, alpha: f32) -> Var {
    let xv = x.value().contiguous_f32();
    let y = match frozen_mask(&xv) {
        Some(mask) => Tensor::from_vec(
            xv.data()
                .iter()
                .zip(&mask)
                .map(|(&v, &m)| if m == 1 { v } else { alpha * v })
                .collect(),
            xv.shape(),
        ),
        None => xv.map(|v| if v > 0.0 { v } else { alpha * v }),
    };
    Var::from_op(y, "leaky_relu", &[x], move |dy| {
        vec![Some(
            dy.zip_map(&xv, |g, x| if x > 0.0 { g } else { alpha * g }),
        )]
    })
}

/// Keras' `elu`: `x` for `x > 0`, else `alpha (e^x - 1)` (Keras' default alpha is 1.0).
pub fn elu(x: &Var, alpha: f32) -> Var {
    let xv = x.value().contiguous_f32();
    let neg = move |v: f32| alpha * v.exp_m1();
    let mask =
        frozen_mask(&xv).unwrap_or_else(|| xv.data().iter().map(|&v| u32::from(v > 0.0)).collect());
    let y = Tensor::from_vec(
        xv.data()
            .iter()
            .zip(&mask)
            .map(|(&v, &m)| if m == 1 { v } else { neg(v) })
            .collect(),
        xv.shape(),
    );
    Var::from_op(y, "elu", &[x], move |dy| {
        let dx = dy
            .data()
            .iter()
            .zip(xv.data())
            .zip(&mask)
            .map(|((&g, &v), &m)| if m == 1 { g } else { g * (neg(v) + alpha) })
            .collect();
        vec![Some(Tensor::from_vec(dx, dy.shape()))]
    })
}

/// The complementary error function, in f64: Numerical Recipes' `erfcc` (Chebyshev
/// fit), fractional error below 1.2e-7 everywhere, so also accurate in the tails.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The error function (see [`erfc`] for its accuracy).
pub fn erf(x: f64) -> f64 {
    1.0 - erfc(x)
}

/// The standard normal CDF `Phi(x)` and pdf `phi(x)`.
fn normal_cdf_pdf(x: f32) -> (f64, f64) {
    let x = f64::from(x);
    let cdf = 0.5 * erfc(-x / std::f64::consts::SQRT_2);
    let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (cdf, pdf)
}

pub fn gelu_scalar(v: f32) -> f32 {
    (f64::from(v) * normal_cdf_pdf(v).0) as f32
}

/// Keras' `gelu` with its default `approximate=False`: `x Phi(x)`, the erf form.
pub fn gelu(x: &Var) -> Var {
    let xv = x.value().contiguous_f32();
    let y = xv.map(gelu_scalar);
    Var::from_op(y, "gelu", &[x], move |dy| {
        vec![Some(dy.zip_map(&xv, |g, x| {
            let (cdf, pdf) = normal_cdf_pdf(x);
            g * (cdf + f64::from(x) * pdf) as f32
        }))]
    })
}

/// Keras' `swish` (also called `silu`): `x sigmoid(x)`.
pub fn swish(x: &Var) -> Var {
    let xv = x.value().contiguous_f32();
    let y = xv.map(|v| v * sigmoid_scalar(v));
    Var::from_op(y, "swish", &[x], move |dy| {
        vec![Some(dy.zip_map(&xv, |g, x| {
            let s = sigmoid_scalar(x);
            g * s * (1.0 + x * (1.0 - s))
        }))]
    })
}

pub fn sigmoid_scalar(v: f32) -> f32 {
    // Split by sign so exp never overflows.
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

pub fn sigmoid(x: &Var) -> Var {
    let y = x.value().map(sigmoid_scalar);
    let yk = y.clone();
    Var::from_op(y, "sigmoid", &[x], move |dy| {
        vec![Some(dy.zip_map(&yk, |g, y| g * y * (1.0 - y)))]
    })
}

pub fn tanh(x: &Var) -> Var {
    let y = x.value().map(f32::tanh);
    let yk = y.clone();
    Var::from_op(y, "tanh", &[x], move |dy| {
        vec![Some(dy.zip_map(&yk, |g, y| g * (1.0 - y * y)))]
    })
}

/// Heaviside step, the perceptron's activation. Its derivative is zero almost everywhere,
/// so gradient descent cannot train through it (which is the point of the XOR lesson).
pub fn step(x: &Var) -> Var {
    let shape = x.shape();
    let y = x.value().map(|v| if v > 0.0 { 1.0 } else { 0.0 });
    Var::from_op(y, "step", &[x], move |_| vec![Some(Tensor::zeros(&shape))])
}

/// Row-wise softmax of a `[rows, cols]` buffer, stable (max subtracted).
pub fn softmax_rows(x: &[f32], cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for (row, o) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0f32;
        for (oi, &xi) in o.iter_mut().zip(row) {
            *oi = (xi - max).exp();
            s += *oi;
        }
        let inv = 1.0 / s;
        o.iter_mut().for_each(|v| *v *= inv);
    }
    out
}

/// Softmax over the last axis.
pub fn softmax(x: &Var) -> Var {
    let shape = x.shape();
    let cols = *shape.last().unwrap_or(&1);
    let y = Tensor::from_vec(
        softmax_rows(x.value().contiguous_f32().data(), cols),
        &shape,
    );
    let yk = y.clone();
    Var::from_op(y, "softmax", &[x], move |dy| {
        let mut dx = vec![0.0f32; dy.numel()];
        for ((g, y), d) in dy
            .data()
            .chunks_exact(cols)
            .zip(yk.data().chunks_exact(cols))
            .zip(dx.chunks_exact_mut(cols))
        {
            let dot: f32 = g.iter().zip(y).map(|(a, b)| a * b).sum();
            for i in 0..cols {
                d[i] = y[i] * (g[i] - dot);
            }
        }
        vec![Some(Tensor::from_vec(dx, &shape))]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn gradchecks() {
        let mut rng = Rng::new(9);
        let x = gradcheck::random_away_from_zero(&[3, 4], &mut rng, 0.05);
        type F = fn(&[Var]) -> Var;
        let cases: Vec<(&str, F)> = vec![
            ("relu", |v| relu(&v[0])),
            ("leaky_relu", |v| leaky_relu(&v[0], 0.2)),
            ("elu", |v| elu(&v[0], 1.0)),
            ("elu alpha 0.5", |v| elu(&v[0], 0.5)),
            ("gelu", |v| gelu(&v[0])),
            ("swish", |v| swish(&v[0])),
            ("sigmoid", |v| sigmoid(&v[0])),
            ("tanh", |v| tanh(&v[0])),
            ("softmax", |v| softmax(&v[0])),
        ];
        for (name, f) in cases {
            let r = gradcheck::check(f, std::slice::from_ref(&x), gradcheck::DEFAULT_STEP, 2);
            assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{name}: {r:?}");
            assert!(r.grad_scale[0] > 0.0, "{name} has a zero gradient");
        }
        // step: zero gradient everywhere away from 0, which the numerical estimate agrees with.
        let r = gradcheck::check(|v| step(&v[0]), &[x], 1e-3, 2);
        assert_eq!(r.worst(), 0.0);
    }

    #[test]
    fn new_activation_gradchecks_over_a_wide_range() {
        // Inputs in [-4, 4]: both branches of elu and the tails of gelu and swish.
        let mut rng = Rng::new(21);
        let x = gradcheck::random_away_from_zero(&[4, 5], &mut rng, 0.05).map(|v| 4.0 * v);
        type F = fn(&[Var]) -> Var;
        let cases: Vec<(&str, F)> = vec![
            ("elu", |v| elu(&v[0], 1.0)),
            ("gelu", |v| gelu(&v[0])),
            ("swish", |v| swish(&v[0])),
        ];
        for (name, f) in cases {
            let r = gradcheck::check(f, std::slice::from_ref(&x), gradcheck::DEFAULT_STEP, 3);
            assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{name}: {r:?}");
        }
    }

    #[test]
    fn new_activation_values() {
        let at = |f: fn(&Var) -> Var, v: f32| {
            f(&Var::constant(Tensor::from_vec(vec![v], &[1])))
                .value()
                .data()[0]
        };
        let elu1 = |x: &Var| elu(x, 1.0);
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        // Reference values from Keras / scipy.
        for (got, want) in [
            (at(gelu, 1.0), 0.841_344_7),
            (at(gelu, -1.0), -0.158_655_25),
            (at(gelu, 0.0), 0.0),
            (at(gelu, 3.0), 2.995_950_6),
            (at(gelu, -3.0), -0.004_049_69),
            (at(elu1, -1.0), -0.632_120_56),
            (at(elu1, 2.0), 2.0),
            (at(swish, 1.0), 0.731_058_6),
            (at(swish, -2.0), -0.238_405_84),
            (at(swish, 0.0), 0.0),
        ] {
            assert!(close(got, want), "got {got}, want {want}");
        }
        assert!(close(
            elu(&Var::constant(Tensor::from_vec(vec![-1.0], &[1])), 0.5)
                .value()
                .data()[0],
            -0.316_060_28
        ));
        // erf against known values.
        for (x, want) in [
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + want).abs() < 2e-7);
        }
        // Large inputs stay finite.
        assert!(at(gelu, -80.0).abs() < 1e-6 && at(gelu, 80.0) == 80.0);
        assert!(at(swish, -200.0).is_finite() && at(elu1, -200.0) == -1.0);
    }

    /// Keras' documented piecewise definition, written out per element.
    fn relu_reference(v: f32, max_value: Option<f32>, slope: f32, threshold: f32) -> f32 {
        if max_value.is_some_and(|m| v >= m) {
            max_value.unwrap()
        } else if v >= threshold {
            v
        } else {
            slope * (v - threshold)
        }
    }

    #[test]
    fn relu_general_matches_the_reference_and_its_special_cases() {
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.05).collect();
        let x = Var::constant(Tensor::from_vec(xs.clone(), &[xs.len()]));
        for (m, a, t) in [
            (None, 0.0, 0.0),
            (None, 0.3, 0.0),
            (Some(6.0), 0.0, 0.0),
            (Some(1.0), 0.0, 0.0),
            (None, 0.0, 0.5),
            (Some(1.2), 0.2, 0.5),
            (Some(0.0), 0.0, 0.0),
        ] {
            let y = relu_general(&x, m, a, t).value();
            for (&v, &got) in xs.iter().zip(y.data()) {
                let want = relu_reference(v, m, a, t);
                assert!(
                    (got - want).abs() < 1e-6,
                    "relu({v}, max {m:?}, slope {a}, threshold {t}) = {got}, want {want}"
                );
            }
        }
        // Backward: slope 0 where clipped, 1 on the identity, the negative slope below
        // the threshold (inputs away from the kinks at 0.5 and 1.2).
        let x = Var::parameter(Tensor::from_vec(vec![-1.0, 0.2, 0.8, 2.0], &[4]));
        crate::ops::elementwise::sum(&relu_general(&x, Some(1.2), 0.2, 0.5)).backward();
        assert_eq!(x.grad().unwrap().data(), &[0.2, 0.2, 1.0, 0.0]);
    }

    #[test]
    fn relu_general_gradcheck_on_every_piece() {
        // Inputs on all three pieces, each at least 0.1 from the kinks at 0.3 and 1.0
        // so that no central difference (h = 1e-2) crosses one.
        let x = Tensor::from_vec(
            vec![
                -1.5, -0.4, 0.05, 0.15, 0.45, 0.6, 0.85, 1.2, 2.0, -0.8, 0.7, 1.6,
            ],
            &[3, 4],
        );
        let r = gradcheck::check(
            |v| relu_general(&v[0], Some(1.0), 0.1, 0.3),
            &[x],
            gradcheck::DEFAULT_STEP,
            2,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{r:?}");
        assert!(r.grad_scale[0] > 0.0);
    }

    #[test]
    fn softmax_is_stable_and_normalized() {
        let y = softmax_rows(&[1000.0, 1001.0, -1000.0, 0.0], 2);
        assert!(y.iter().all(|v| v.is_finite()));
        assert!((y[0] + y[1] - 1.0).abs() < 1e-6);
        assert!((y[2] + y[3] - 1.0).abs() < 1e-6);
    }
}
