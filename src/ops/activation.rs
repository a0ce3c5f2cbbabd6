//! Activations: relu, leaky_relu, sigmoid, tanh, step, softmax (over the last axis).
//!
//! | op            | forward                  | d out / d x                 |
//! |---------------|--------------------------|-----------------------------|
//! | relu          | max(x, 0)                | 1 if x > 0 else 0           |
//! | leaky_relu(a) | x if x > 0 else a*x      | 1 if x > 0 else a           |
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
    let xv = x.value();
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

pub fn leaky_relu(x: &Var, alpha: f32) -> Var {
    let xv = x.value();
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
    let y = Tensor::from_vec(softmax_rows(x.value_ref().data(), cols), &shape);
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
    fn softmax_is_stable_and_normalized() {
        let y = softmax_rows(&[1000.0, 1001.0, -1000.0, 0.0], 2);
        assert!(y.iter().all(|v| v.is_finite()));
        assert!((y[0] + y[1] - 1.0).abs() < 1e-6);
        assert!((y[2] + y[3] - 1.0).abs() < 1e-6);
    }
}
