//! More of Keras' losses: Huber, log-cosh, Kullback-Leibler divergence, hinge, squared
//! hinge and categorical hinge. Each returns the batch mean as a scalar and records a
//! hand-written backward. With `e = p - y`:
//!
//! | loss | per element (or per row) | d/dp |
//! |---|---|---|
//! | huber(δ) | `e²/2` if `|e| <= δ`, else `δ(|e| - δ/2)` | `e`, else `δ sign(e)` |
//! | log_cosh | `log cosh e = |e| + log1p(exp(-2|e|)) - log 2` | `tanh e` |
//! | kl_divergence (row) | `Σ y' log(y' / p')`, `y', p'` clipped to [1e-7, 1] | `-y' / p'` (0 where p is clipped) |
//! | hinge | `max(1 - y p, 0)` | `-y` where `1 - y p > 0` |
//! | squared_hinge | `max(1 - y p, 0)²` | `-2 y max(1 - y p, 0)` |
//! | categorical_hinge (row) | `max(max_j (1-y_j) p_j - Σ y_j p_j + 1, 0)` | `+1` at the argmax j, `-y` |
//!
//! Hinge labels are -1/1; labels given as 0/1 are mapped to -1/1 first, as Keras does.
//! Element-wise losses average over every element (Keras' mean over the last axis, then
//! over the batch); row losses sum over a row and average over the rows.
//!
//! Each has a `_weighted` form taking one weight per row (Keras' `sample_weight`): the
//! loss is `sum_i w_i loss_i / N` and row `i`'s gradient is scaled by `w_i`, as in
//! `ops::loss` (see its module docs); without weights it is bit for bit the plain op.

use super::loss::RowWeights;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// Clip of probabilities inside the KL divergence's logarithm (Keras' epsilon).
pub const KL_EPS: f32 = 1e-7;

fn check(pred: &Var, target: &Tensor, what: &str) -> Result<(Tensor, Tensor)> {
    let p = pred.value().contiguous_f32();
    let ps = p.shape();
    let ts = target.shape();
    let ok = ps == ts || (ps.len() == 2 && ps[1] == 1 && ts == [ps[0]]);
    if !ok {
        return Err(Error::shape(format!(
            "{what}: labels of shape {ts:?} do not match predictions {ps:?}"
        )));
    }
    let t = target.contiguous_f32().reshape(ps)?;
    Ok((p, t))
}

/// A loss that is the sum of `f(p, y).0` (times the row's weight) over the elements
/// divided by `denominator`, with the derivative `f(p, y).1` (times the row's weight).
fn elementwise(
    pred: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
    name: &'static str,
    rows_only: bool,
    f: impl Fn(f32, f32) -> (f64, f32) + 'static,
) -> Result<Var> {
    let (p, t) = check(pred, target, name)?;
    let rows = p.shape().first().copied().unwrap_or(1).max(1);
    let denominator = if rows_only {
        rows as f32
    } else {
        p.numel().max(1) as f32
    };
    let w = RowWeights::new(weights, rows, name)?;
    let per = (p.numel() / rows).max(1);
    let loss: f64 = p
        .to_f32_vec()
        .iter()
        .zip(t.to_f32_vec())
        .enumerate()
        .map(|(k, (&a, b))| f(a, b).0 * w.row(k / per) as f64)
        .sum::<f64>()
        / denominator as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        name,
        &[pred],
        move |dy| {
            let scale = dy.item() / denominator;
            let g: Vec<f32> = p
                .to_f32_vec()
                .iter()
                .zip(t.to_f32_vec())
                .enumerate()
                .map(|(k, (&a, b))| f(a, b).1 * (scale * w.row(k / per)))
                .collect();
            vec![Some(Tensor::from_vec(g, p.shape()))]
        },
    ))
}

pub fn huber(pred: &Var, target: &Tensor, delta: f32) -> Result<Var> {
    huber_weighted(pred, target, delta, None)
}

/// `huber` with one weight per row (module docs).
pub fn huber_weighted(
    pred: &Var,
    target: &Tensor,
    delta: f32,
    weights: Option<&Tensor>,
) -> Result<Var> {
    if !(delta.is_finite() && delta > 0.0) {
        return Err(Error::invalid(format!(
            "huber: delta must be > 0, got {delta}"
        )));
    }
    elementwise(pred, target, weights, "huber", false, move |p, y| {
        let e = p - y;
        if e.abs() <= delta {
            (0.5 * (e as f64).powi(2), e)
        } else {
            (
                delta as f64 * (e.abs() as f64 - 0.5 * delta as f64),
                delta * e.signum(),
            )
        }
    })
}

pub fn log_cosh(pred: &Var, target: &Tensor) -> Result<Var> {
    log_cosh_weighted(pred, target, None)
}

/// `log_cosh` with one weight per row (module docs).
pub fn log_cosh_weighted(pred: &Var, target: &Tensor, weights: Option<&Tensor>) -> Result<Var> {
    elementwise(pred, target, weights, "log_cosh", false, |p, y| {
        let e = (p - y) as f64;
        // Stable for large |e|: cosh overflows f64 past ~710.
        let v = e.abs() + (-2.0 * e.abs()).exp().ln_1p() - std::f64::consts::LN_2;
        (v, e.tanh() as f32)
    })
}

pub fn kl_divergence(pred: &Var, target: &Tensor) -> Result<Var> {
    kl_divergence_weighted(pred, target, None)
}

/// `kl_divergence` with one weight per row (module docs).
pub fn kl_divergence_weighted(
    pred: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    elementwise(pred, target, weights, "kl_divergence", true, |p, y| {
        let yc = y.clamp(KL_EPS, 1.0) as f64;
        let pc = p.clamp(KL_EPS, 1.0) as f64;
        let d = if (KL_EPS..=1.0).contains(&p) {
            -(yc / pc) as f32
        } else {
            0.0
        };
        (yc * (yc / pc).ln(), d)
    })
}

/// Labels in {0, 1} become {-1, 1}; other labels are used as they are.
fn signed_labels(target: &Tensor) -> Tensor {
    let v = target.to_f32_vec();
    if v.iter().all(|&y| y == 0.0 || y == 1.0) {
        Tensor::from_vec(v.iter().map(|&y| 2.0 * y - 1.0).collect(), target.shape())
    } else {
        target.contiguous_f32()
    }
}

pub fn hinge(pred: &Var, target: &Tensor) -> Result<Var> {
    hinge_weighted(pred, target, None)
}

/// `hinge` with one weight per row (module docs).
pub fn hinge_weighted(pred: &Var, target: &Tensor, weights: Option<&Tensor>) -> Result<Var> {
    let signed = signed_labels(target);
    elementwise(pred, &signed, weights, "hinge", false, |p, y| {
        let m = 1.0 - y * p;
        if m > 0.0 {
            (m as f64, -y)
        } else {
            (0.0, 0.0)
        }
    })
}

pub fn squared_hinge(pred: &Var, target: &Tensor) -> Result<Var> {
    squared_hinge_weighted(pred, target, None)
}

/// `squared_hinge` with one weight per row (module docs).
pub fn squared_hinge_weighted(
    pred: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    elementwise(
        pred,
        &signed_labels(target),
        weights,
        "squared_hinge",
        false,
        |p, y| {
            let m = (1.0 - y * p).max(0.0);
            ((m as f64).powi(2), -2.0 * y * m)
        },
    )
}

/// Rows of predictions `[N, C]` against one-hot labels `[N, C]`.
pub fn categorical_hinge(pred: &Var, target: &Tensor) -> Result<Var> {
    categorical_hinge_weighted(pred, target, None)
}

/// `categorical_hinge` with one weight per row (module docs).
pub fn categorical_hinge_weighted(
    pred: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    let (p, t) = check(pred, target, "categorical_hinge")?;
    let (n, c) = match p.shape() {
        [n, c] => (*n, *c),
        s => {
            return Err(Error::shape(format!(
                "categorical_hinge: expected predictions [batch, classes], got {s:?}"
            )))
        }
    };
    let w = RowWeights::new(weights, n, "categorical_hinge")?;
    let (pv, tv) = (p.to_f32_vec(), t.to_f32_vec());
    let mut loss = 0f64;
    let mut grad = vec![0f32; n * c];
    for i in 0..n {
        let (pr, tr) = (&pv[i * c..(i + 1) * c], &tv[i * c..(i + 1) * c]);
        let pos: f32 = pr.iter().zip(tr).map(|(a, b)| a * b).sum();
        let (j, neg) = pr
            .iter()
            .zip(tr)
            .map(|(a, b)| (1.0 - b) * a)
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |m, (k, v)| if v > m.1 { (k, v) } else { m },
            );
        let m = neg - pos + 1.0;
        if m > 0.0 {
            let wi = w.row(i);
            loss += m as f64 * wi as f64;
            for k in 0..c {
                grad[i * c + k] -= tr[k] * wi;
            }
            grad[i * c + j] += (1.0 - tr[j]) * wi;
        }
    }
    let shape = p.shape().to_vec();
    Ok(Var::from_op(
        Tensor::scalar((loss / n.max(1) as f64) as f32),
        "categorical_hinge",
        &[pred],
        move |dy| {
            let scale = dy.item() / n.max(1) as f32;
            vec![Some(Tensor::from_vec(
                grad.iter().map(|g| g * scale).collect(),
                &shape,
            ))]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    fn check_grad(name: &str, f: impl Fn(&[Var]) -> Var, x: Tensor) {
        let r = gradcheck::check(f, &[x], gradcheck::DEFAULT_STEP, 4);
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{name}: {r:?}");
        assert!(r.grad_scale[0] > 0.0, "{name}: zero gradient");
    }

    #[test]
    fn gradchecks() {
        let mut rng = Rng::new(3);
        let x = gradcheck::random_away_from_zero(&[4, 3], &mut rng, 0.1);
        // Targets chosen so that no element sits on a kink (|e| = delta, margin 0).
        let y = Tensor::from_vec(
            vec![
                0.3, -1.7, 2.2, 0.0, 1.1, -0.4, 0.9, 0.05, -2.5, 1.6, 0.2, -0.8,
            ],
            &[4, 3],
        );
        let y2 = y.clone();
        check_grad("huber", move |v| huber(&v[0], &y2, 1.0).unwrap(), x.clone());
        let y2 = y.clone();
        check_grad(
            "log_cosh",
            move |v| log_cosh(&v[0], &y2).unwrap(),
            x.clone(),
        );
        let probs = Tensor::from_vec(
            vec![0.2, 0.5, 0.3, 0.1, 0.1, 0.8, 0.6, 0.3, 0.1, 0.25, 0.25, 0.5],
            &[4, 3],
        );
        let q = Tensor::from_vec(
            vec![0.3, 0.3, 0.4, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1, 0.3, 0.3, 0.4],
            &[4, 3],
        );
        check_grad("kl", move |v| kl_divergence(&v[0], &probs).unwrap(), q);
        let signs = Tensor::from_vec(
            vec![1., -1., 1., -1., 1., 1., -1., -1., 1., 1., -1., 1.],
            &[4, 3],
        );
        let small = x.map(|v| v * 0.3);
        let s2 = signs.clone();
        check_grad("hinge", move |v| hinge(&v[0], &s2).unwrap(), small.clone());
        check_grad(
            "squared_hinge",
            move |v| squared_hinge(&v[0], &signs).unwrap(),
            small.clone(),
        );
        let onehot = Tensor::from_vec(
            vec![0., 1., 0., 1., 0., 0., 0., 0., 1., 0., 1., 0.],
            &[4, 3],
        );
        check_grad(
            "categorical_hinge",
            move |v| categorical_hinge(&v[0], &onehot).unwrap(),
            small,
        );
    }

    type LossFn<'a> = Box<dyn Fn(&Var) -> Var + 'a>;

    #[test]
    fn weighted_gradchecks() {
        // The same cases as `gradchecks`, each row weighted differently (row 1 by 0).
        let mut rng = Rng::new(3);
        let x = gradcheck::random_away_from_zero(&[4, 3], &mut rng, 0.1);
        let w = Tensor::from_vec(vec![1.5, 0.0, 0.7, 2.0], &[4]);
        let y = Tensor::from_vec(
            vec![
                0.3, -1.7, 2.2, 0.0, 1.1, -0.4, 0.9, 0.05, -2.5, 1.6, 0.2, -0.8,
            ],
            &[4, 3],
        );
        let probs = Tensor::from_vec(
            vec![0.2, 0.5, 0.3, 0.1, 0.1, 0.8, 0.6, 0.3, 0.1, 0.25, 0.25, 0.5],
            &[4, 3],
        );
        let q = Tensor::from_vec(
            vec![0.3, 0.3, 0.4, 0.2, 0.2, 0.6, 0.5, 0.4, 0.1, 0.3, 0.3, 0.4],
            &[4, 3],
        );
        let signs = Tensor::from_vec(
            vec![1., -1., 1., -1., 1., 1., -1., -1., 1., 1., -1., 1.],
            &[4, 3],
        );
        let onehot = Tensor::from_vec(
            vec![0., 1., 0., 1., 0., 0., 0., 0., 1., 0., 1., 0.],
            &[4, 3],
        );
        let small = x.map(|v| v * 0.3);
        let cases: Vec<(&str, LossFn, Tensor)> = vec![
            (
                "huber",
                Box::new(|v| huber_weighted(v, &y, 1.0, Some(&w)).unwrap()),
                x.clone(),
            ),
            (
                "log_cosh",
                Box::new(|v| log_cosh_weighted(v, &y, Some(&w)).unwrap()),
                x.clone(),
            ),
            (
                "kl",
                Box::new(|v| kl_divergence_weighted(v, &probs, Some(&w)).unwrap()),
                q,
            ),
            (
                "hinge",
                Box::new(|v| hinge_weighted(v, &signs, Some(&w)).unwrap()),
                small.clone(),
            ),
            (
                "squared_hinge",
                Box::new(|v| squared_hinge_weighted(v, &signs, Some(&w)).unwrap()),
                small.clone(),
            ),
            (
                "categorical_hinge",
                Box::new(|v| categorical_hinge_weighted(v, &onehot, Some(&w)).unwrap()),
                small,
            ),
        ];
        for (name, f, input) in cases {
            check_grad(name, |v| f(&v[0]), input.clone());
            let v = Var::parameter(input.clone());
            f(&v).backward();
            let g = v.grad().unwrap().to_f32_vec();
            assert!(g[3..6].iter().all(|&g| g == 0.0), "{name}: {g:?}");
            // Ones change nothing, bit for bit.
            let plain = Var::parameter(input.clone());
            let ones = Var::parameter(input);
            let (a, b) = match name {
                "huber" => (
                    huber(&plain, &y, 1.0),
                    huber_weighted(&ones, &y, 1.0, Some(&Tensor::ones(&[4]))),
                ),
                "hinge" => (
                    hinge(&plain, &signs),
                    hinge_weighted(&ones, &signs, Some(&Tensor::ones(&[4]))),
                ),
                _ => continue,
            };
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(
                a.value().item().to_bits(),
                b.value().item().to_bits(),
                "{name}"
            );
            a.backward();
            b.backward();
            assert_eq!(
                plain.grad().unwrap().to_f32_vec(),
                ones.grad().unwrap().to_f32_vec()
            );
        }
    }

    #[test]
    fn hand_values() {
        let p = Var::constant(Tensor::from_vec(vec![0.5, 3.0], &[2, 1]));
        let y = Tensor::from_vec(vec![0.0, 0.0], &[2]);
        // huber: 0.125 and 1 * (3 - 0.5) = 2.5; mean 1.3125.
        assert!((huber(&p, &y, 1.0).unwrap().value().item() - 1.3125).abs() < 1e-6);
        let lc = ((0.5f64.cosh().ln() + 3f64.cosh().ln()) / 2.0) as f32;
        assert!((log_cosh(&p, &y).unwrap().value().item() - lc).abs() < 1e-6);
        // hinge with 0/1 labels: y = 0 -> -1: max(1 + 0.5, 0), max(1 + 3, 0); mean 2.75.
        assert!((hinge(&p, &y).unwrap().value().item() - 2.75).abs() < 1e-6);
        assert!((squared_hinge(&p, &y).unwrap().value().item() - (2.25 + 16.0) / 2.0).abs() < 1e-5);
        assert!(huber(&p, &y, 0.0).is_err());
        // Weighted: (2 * 0.125 + 0.5 * 2.5) / 2 = 0.75; categorical hinge per row.
        let w = Tensor::from_vec(vec![2.0, 0.5], &[2]);
        assert!(
            (huber_weighted(&p, &y, 1.0, Some(&w))
                .unwrap()
                .value()
                .item()
                - 0.75)
                .abs()
                < 1e-6
        );
        let rows = Var::constant(Tensor::from_vec(vec![0.2, 0.9, 0.6, 0.1], &[2, 2]));
        let oh = Tensor::from_vec(vec![1., 0., 1., 0.], &[2, 2]);
        // Row 0: max(0.9 - 0.2 + 1, 0) = 1.7; row 1: max(0.1 - 0.6 + 1, 0) = 0.5.
        let ch = categorical_hinge_weighted(&rows, &oh, Some(&w))
            .unwrap()
            .value()
            .item();
        assert!((ch - (2.0 * 1.7 + 0.5 * 0.5) / 2.0).abs() < 1e-6, "{ch}");
        assert!(hinge(&p, &Tensor::zeros(&[3])).is_err());
    }
}
