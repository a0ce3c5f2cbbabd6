//! Loss ops. Each returns a scalar (the mean over the batch) and has a hand-written
//! backward; the softmax + cross-entropy pair is fused so that its gradient is the
//! stable `(softmax(z) - t) / N` rather than a division by tiny probabilities.
//!
//! Targets: for the cross-entropies, `[N]` holds class indices (sparse) and `[N, C]`
//! holds one-hot rows or probabilities (categorical).
//!
//! Sample weights (Keras' `sample_weight`, `class_weight`): each loss has a `_weighted`
//! form taking one weight `w_i >= 0` per row of the batch. The loss is then Keras'
//! `sum_over_batch_size` reduction, `sum_i w_i * loss_i / N`: the mean over the batch
//! of the weighted per-sample losses (divided by the batch size, not by the sum of the
//! weights), and each row's gradient is scaled by its `w_i`. A per-sample loss of an
//! element-wise loss is the mean over its elements, so the weighted loss is
//! `sum_ij w_i l_ij / numel`. Without weights (`None`) every row weighs 1, and since
//! `x * 1.0 == x` exactly in IEEE arithmetic, the value and the gradient are bit for bit
//! those of the unweighted op.

use super::activation::{sigmoid_scalar, softmax_rows};
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// Added inside logarithms of probabilities, as the book does.
pub const LOG_EPS: f32 = 1e-7;

/// Turns a target tensor into dense `[N, C]` rows: one-hot from class indices, or checked
/// as given when already `[N, C]`.
pub fn dense_targets(target: &Tensor, n: usize, c: usize) -> Result<Tensor> {
    match target.shape() {
        [m] if *m == n => {
            let mut t = vec![0.0f32; n * c];
            for (i, &v) in target.contiguous_f32().data().iter().enumerate() {
                if v < 0.0 || v.fract() != 0.0 || v as usize >= c {
                    return Err(Error::invalid(format!(
                        "label {v} at row {i} is not a class index in 0..{c}"
                    )));
                }
                t[i * c + v as usize] = 1.0;
            }
            Ok(Tensor::from_vec(t, &[n, c]))
        }
        [m, k] if *m == n && *k == c => Ok(target.contiguous_f32()),
        other => Err(Error::shape(format!(
            "labels of shape {other:?} do not match predictions [{n}, {c}]: give class \
             indices [{n}] or one-hot rows [{n}, {c}] (see to_categorical)"
        ))),
    }
}

/// Label smoothing: the dense targets mixed with the uniform distribution,
/// `t (1 - eps) + eps / c` (each row still sums to 1 if it did).
pub fn smooth_labels(target: &Tensor, n: usize, c: usize, eps: f32) -> Result<Tensor> {
    let uniform = eps / c as f32;
    Ok(dense_targets(target, n, c)?.map(|t| t * (1.0 - eps) + uniform))
}

/// One weight per row of a batch (see the module docs); `None` weighs every row 1.
#[derive(Clone, Debug)]
pub struct RowWeights(Option<Vec<f32>>);

impl RowWeights {
    /// Checks that `weights` holds one weight per row of a batch of `n` rows (shape
    /// `[n]` or `[n, 1]`); `what` names the loss in the error.
    pub fn new(weights: Option<&Tensor>, n: usize, what: &str) -> Result<RowWeights> {
        let Some(w) = weights else {
            return Ok(RowWeights(None));
        };
        let s = w.shape();
        if !(s == [n] || s == [n, 1]) {
            return Err(Error::shape(format!(
                "{what}: sample weights of shape {s:?} do not match a batch of {n} rows \
                 (one weight per row: [{n}])"
            )));
        }
        Ok(RowWeights(Some(w.to_f32_vec())))
    }

    /// The weight of row `i` (1 without weights).
    #[inline]
    pub fn row(&self, i: usize) -> f32 {
        match &self.0 {
            None => 1.0,
            Some(w) => w[i],
        }
    }
}

/// The rows of a prediction tensor (its first axis; 1 for a scalar).
fn batch_rows(p: &Tensor) -> usize {
    p.shape().first().copied().unwrap_or(1).max(1)
}

fn rows_cols(x: &Var, what: &str) -> Result<(usize, usize)> {
    match x.shape().as_slice() {
        [n, c] => Ok((*n, *c)),
        s => Err(Error::shape(format!(
            "{what}: expected predictions [batch, classes], got {s:?}"
        ))),
    }
}

/// Mean cross-entropy of `softmax(logits)` against `target` (fused).
pub fn softmax_cross_entropy(logits: &Var, target: &Tensor) -> Result<Var> {
    softmax_cross_entropy_weighted(logits, target, None)
}

/// `softmax_cross_entropy` with one weight per row: `sum_i w_i CE_i / N` (module docs).
pub fn softmax_cross_entropy_weighted(
    logits: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    let (n, c) = rows_cols(logits, "softmax cross-entropy")?;
    let t = dense_targets(target, n, c)?;
    let w = RowWeights::new(weights, n, "softmax cross-entropy")?;
    let z = logits.value().contiguous_f32();
    let mut loss = 0.0f64;
    for (i, (row, trow)) in z
        .data()
        .chunks_exact(c)
        .zip(t.data().chunks_exact(c))
        .enumerate()
    {
        let wi = w.row(i) as f64;
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let lse = max as f64
            + row
                .iter()
                .map(|&v| ((v - max) as f64).exp())
                .sum::<f64>()
                .ln();
        for (&zi, &ti) in row.iter().zip(trow) {
            if ti != 0.0 {
                loss -= ti as f64 * wi * (zi as f64 - lse);
            }
        }
    }
    let loss = (loss / n as f64) as f32;
    Ok(Var::from_op(
        Tensor::scalar(loss),
        "softmax_cross_entropy",
        &[logits],
        move |dy| {
            let scale = dy.item() / n as f32;
            let p = softmax_rows(z.data(), c);
            let g: Vec<f32> = p
                .iter()
                .zip(t.data())
                .enumerate()
                .map(|(k, (&pi, &ti))| (pi - ti) * (scale * w.row(k / c)))
                .collect();
            vec![Some(Tensor::from_vec(g, &[n, c]))]
        },
    ))
}

/// Mean cross-entropy of probabilities `probs` against `target`: -sum t log(p + 1e-7) / N.
pub fn cross_entropy(probs: &Var, target: &Tensor) -> Result<Var> {
    cross_entropy_weighted(probs, target, None)
}

/// `cross_entropy` with one weight per row: `sum_i w_i CE_i / N` (module docs).
pub fn cross_entropy_weighted(
    probs: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    let (n, c) = rows_cols(probs, "cross-entropy")?;
    let t = dense_targets(target, n, c)?;
    let w = RowWeights::new(weights, n, "cross-entropy")?;
    let p = probs.value().contiguous_f32();
    let loss: f64 = p
        .data()
        .iter()
        .zip(t.data())
        .enumerate()
        .map(|(k, (&pi, &ti))| -(ti as f64 * w.row(k / c) as f64) * ((pi + LOG_EPS) as f64).ln())
        .sum::<f64>()
        / n as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "cross_entropy",
        &[probs],
        move |dy| {
            let scale = dy.item() / n as f32;
            let g: Vec<f32> = p
                .data()
                .iter()
                .zip(t.data())
                .enumerate()
                .map(|(k, (&pi, &ti))| -ti / (pi + LOG_EPS) * (scale * w.row(k / c)))
                .collect();
            vec![Some(Tensor::from_vec(g, &[n, c]))]
        },
    ))
}

fn same_shape(pred: &Var, target: &Tensor, what: &str) -> Result<()> {
    let ps = pred.shape();
    let ts = target.shape();
    // A column of predictions [N, 1] against labels [N] is the common binary case.
    let ok = ps == ts || (ps.len() == 2 && ps[1] == 1 && ts == [ps[0]]);
    if ok {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "{what}: labels of shape {ts:?} do not match predictions {ps:?}"
        )))
    }
}

/// Mean binary cross-entropy of probabilities (clipped to [1e-7, 1 - 1e-7] as Keras does).
pub fn binary_cross_entropy(probs: &Var, target: &Tensor) -> Result<Var> {
    binary_cross_entropy_weighted(probs, target, None)
}

/// The weight of element `k` of a tensor with `per` elements per row.
#[inline]
fn element_weight(w: &RowWeights, k: usize, per: usize) -> f32 {
    w.row(k / per)
}

/// `binary_cross_entropy` with one weight per row (module docs).
pub fn binary_cross_entropy_weighted(
    probs: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    same_shape(probs, target, "binary cross-entropy")?;
    let p = probs.value().contiguous_f32();
    let t = target.contiguous_f32().reshape(p.shape())?;
    let numel = p.numel() as f32;
    let rows = batch_rows(&p);
    let w = RowWeights::new(weights, rows, "binary cross-entropy")?;
    let per = (p.numel() / rows).max(1);
    let clip = |v: f32| v.clamp(LOG_EPS, 1.0 - LOG_EPS);
    let loss = p
        .data()
        .iter()
        .zip(t.data())
        .enumerate()
        .map(|(k, (&pi, &ti))| {
            let pc = clip(pi) as f64;
            -(ti as f64 * pc.ln() + (1.0 - ti as f64) * (1.0 - pc).ln())
                * element_weight(&w, k, per) as f64
        })
        .sum::<f64>()
        / numel as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "binary_cross_entropy",
        &[probs],
        move |dy| {
            let scale = dy.item() / numel;
            let g: Vec<f32> = p
                .data()
                .iter()
                .zip(t.data())
                .enumerate()
                .map(|(k, (&pi, &ti))| {
                    if pi <= LOG_EPS || pi >= 1.0 - LOG_EPS {
                        0.0 // clipped: flat
                    } else {
                        (pi - ti) / (pi * (1.0 - pi)) * (scale * element_weight(&w, k, per))
                    }
                })
                .collect();
            vec![Some(Tensor::from_vec(g, p.shape()))]
        },
    ))
}

/// Mean binary cross-entropy of `sigmoid(logits)` (fused, stable).
pub fn sigmoid_binary_cross_entropy(logits: &Var, target: &Tensor) -> Result<Var> {
    sigmoid_binary_cross_entropy_weighted(logits, target, None)
}

/// `sigmoid_binary_cross_entropy` with one weight per row (module docs).
pub fn sigmoid_binary_cross_entropy_weighted(
    logits: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    same_shape(logits, target, "binary cross-entropy")?;
    let z = logits.value().contiguous_f32();
    let t = target.contiguous_f32().reshape(z.shape())?;
    let numel = z.numel() as f32;
    let rows = batch_rows(&z);
    let w = RowWeights::new(weights, rows, "binary cross-entropy")?;
    let per = (z.numel() / rows).max(1);
    let loss = z
        .data()
        .iter()
        .zip(t.data())
        .enumerate()
        .map(|(k, (&x, &y))| {
            let x = x as f64;
            (x.max(0.0) - x * y as f64 + (1.0 + (-x.abs()).exp()).ln())
                * element_weight(&w, k, per) as f64
        })
        .sum::<f64>()
        / numel as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "sigmoid_binary_cross_entropy",
        &[logits],
        move |dy| {
            let scale = dy.item() / numel;
            let g: Vec<f32> = z
                .data()
                .iter()
                .zip(t.data())
                .enumerate()
                .map(|(k, (&x, &y))| (sigmoid_scalar(x) - y) * (scale * element_weight(&w, k, per)))
                .collect();
            vec![Some(Tensor::from_vec(g, z.shape()))]
        },
    ))
}

/// Mean squared error over all elements.
pub fn mean_squared_error(pred: &Var, target: &Tensor) -> Result<Var> {
    mean_squared_error_weighted(pred, target, None)
}

/// `mean_squared_error` with one weight per row (module docs).
pub fn mean_squared_error_weighted(
    pred: &Var,
    target: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Var> {
    same_shape(pred, target, "mean squared error")?;
    let p = pred.value().contiguous_f32();
    let t = target.contiguous_f32().reshape(p.shape())?;
    let numel = p.numel() as f32;
    let rows = batch_rows(&p);
    let w = RowWeights::new(weights, rows, "mean squared error")?;
    let per = (p.numel() / rows).max(1);
    let loss = p
        .data()
        .iter()
        .zip(t.data())
        .enumerate()
        .map(|(k, (&a, &b))| ((a - b) as f64).powi(2) * element_weight(&w, k, per) as f64)
        .sum::<f64>()
        / numel as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "mean_squared_error",
        &[pred],
        move |dy| {
            let scale = 2.0 * dy.item() / numel;
            let g: Vec<f32> = p
                .data()
                .iter()
                .zip(t.data())
                .enumerate()
                .map(|(k, (&a, &b))| (a - b) * (scale * element_weight(&w, k, per)))
                .collect();
            vec![Some(Tensor::from_vec(g, p.shape()))]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    fn check(name: &str, f: impl Fn(&[Var]) -> Var, x: Tensor) {
        let r = gradcheck::check(f, &[x], gradcheck::DEFAULT_STEP, 4);
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{name}: {r:?}");
        assert!(r.grad_scale[0] > 0.0, "{name}: zero gradient");
    }

    #[test]
    fn gradchecks() {
        let mut rng = Rng::new(11);
        let logits = gradcheck::random_away_from_zero(&[4, 3], &mut rng, 0.1);
        let idx = Tensor::from_vec(vec![0., 2., 1., 2.], &[4]);
        let onehot = dense_targets(&idx, 4, 3).unwrap();
        let probs = Tensor::from_vec(softmax_rows(logits.data(), 3), &[4, 3]);
        let bin = Tensor::from_vec(
            vec![1., 0., 1., 1., 0., 0., 1., 0., 1., 0., 0., 1.],
            &[4, 3],
        );
        let p01 = probs.map(|v| v.clamp(0.05, 0.95));
        check(
            "softmax_ce sparse",
            |v| softmax_cross_entropy(&v[0], &idx).unwrap(),
            logits.clone(),
        );
        check(
            "softmax_ce onehot",
            |v| softmax_cross_entropy(&v[0], &onehot).unwrap(),
            logits.clone(),
        );
        let smoothed = smooth_labels(&idx, 4, 3, 0.2).unwrap();
        check(
            "softmax_ce smoothed",
            |v| softmax_cross_entropy(&v[0], &smoothed).unwrap(),
            logits.clone(),
        );
        check(
            "cross_entropy smoothed",
            |v| cross_entropy(&v[0], &smoothed).unwrap(),
            probs.clone(),
        );
        check(
            "cross_entropy",
            |v| cross_entropy(&v[0], &idx).unwrap(),
            probs.clone(),
        );
        check(
            "binary_ce",
            |v| binary_cross_entropy(&v[0], &bin).unwrap(),
            p01,
        );
        check(
            "sigmoid_bce",
            |v| sigmoid_binary_cross_entropy(&v[0], &bin).unwrap(),
            logits.clone(),
        );
        check("mse", |v| mean_squared_error(&v[0], &bin).unwrap(), logits);
    }

    type LossFn<'a> = Box<dyn Fn(&Var) -> Var + 'a>;

    #[test]
    fn weighted_gradchecks() {
        // Every weighted loss against central differences, with weights that differ per
        // row (one of them 0, whose row must then get no gradient).
        let mut rng = Rng::new(12);
        let logits = gradcheck::random_away_from_zero(&[4, 3], &mut rng, 0.1);
        let idx = Tensor::from_vec(vec![0., 2., 1., 2.], &[4]);
        let onehot = dense_targets(&idx, 4, 3).unwrap();
        let probs = Tensor::from_vec(softmax_rows(logits.data(), 3), &[4, 3]);
        let bin = Tensor::from_vec(
            vec![1., 0., 1., 1., 0., 0., 1., 0., 1., 0., 0., 1.],
            &[4, 3],
        );
        let p01 = probs.map(|v| v.clamp(0.05, 0.95));
        let w = Tensor::from_vec(vec![0.5, 2.0, 0.0, 1.3], &[4]);
        let cases: Vec<(&str, LossFn, Tensor)> = vec![
            (
                "softmax_ce sparse",
                Box::new(|v| softmax_cross_entropy_weighted(v, &idx, Some(&w)).unwrap()),
                logits.clone(),
            ),
            (
                "softmax_ce onehot",
                Box::new(|v| softmax_cross_entropy_weighted(v, &onehot, Some(&w)).unwrap()),
                logits.clone(),
            ),
            (
                "cross_entropy",
                Box::new(|v| cross_entropy_weighted(v, &idx, Some(&w)).unwrap()),
                probs.clone(),
            ),
            (
                "binary_ce",
                Box::new(|v| binary_cross_entropy_weighted(v, &bin, Some(&w)).unwrap()),
                p01,
            ),
            (
                "sigmoid_bce",
                Box::new(|v| sigmoid_binary_cross_entropy_weighted(v, &bin, Some(&w)).unwrap()),
                logits.clone(),
            ),
            (
                "mse",
                Box::new(|v| mean_squared_error_weighted(v, &bin, Some(&w)).unwrap()),
                logits.clone(),
            ),
        ];
        for (name, f, x) in cases {
            check(name, |v| f(&v[0]), x.clone());
            // Row 2 weighs 0: no gradient reaches it.
            let v = Var::parameter(x);
            f(&v).backward();
            let g = v.grad().unwrap().to_f32_vec();
            assert!(g[6..9].iter().all(|&g| g == 0.0), "{name}: {g:?}");
        }
    }

    #[test]
    fn weighted_values_match_a_hand_computation_and_ones_change_nothing() {
        // Two rows, MSE of [1, 3] against [0, 1]: per-sample losses 1 and 4; weights
        // 2 and 0.5: (2 * 1 + 0.5 * 4) / 2 = 2 (Keras divides by the batch size).
        let p = Var::constant(Tensor::from_vec(vec![1.0, 3.0], &[2, 1]));
        let y = Tensor::from_vec(vec![0.0, 1.0], &[2]);
        let w = Tensor::from_vec(vec![2.0, 0.5], &[2]);
        let v = mean_squared_error_weighted(&p, &y, Some(&w)).unwrap();
        assert_eq!(v.value().item(), 2.0);
        // Sparse CE of two rows, weights 3 and 0: 3 * CE_0 / 2.
        let z = Var::constant(Tensor::from_vec(
            vec![1.0, 2.0, 0.5, -1.0, 0.0, 3.0],
            &[2, 3],
        ));
        let t = Tensor::from_vec(vec![1., 0.], &[2]);
        let lse0 = (1f64.exp() + 2f64.exp() + 0.5f64.exp()).ln();
        let want = 3.0 * (lse0 - 2.0) / 2.0;
        let w = Tensor::from_vec(vec![3.0, 0.0], &[2]);
        let got = softmax_cross_entropy_weighted(&z, &t, Some(&w)).unwrap();
        assert!((got.value().item() as f64 - want).abs() < 1e-6);
        // Weights of ones: the value and the gradient bit for bit the unweighted op's.
        let mut rng = Rng::new(5);
        let x = gradcheck::random_away_from_zero(&[5, 4], &mut rng, 0.1);
        let labels = Tensor::from_vec(vec![0., 3., 1., 2., 3.], &[5]);
        let ones = Tensor::ones(&[5]);
        let grads = |f: &dyn Fn(&Var) -> Var| {
            let v = Var::parameter(x.clone());
            let l = f(&v);
            let value = l.value().item().to_bits();
            l.backward();
            let g: Vec<u32> = v
                .grad()
                .unwrap()
                .to_f32_vec()
                .iter()
                .map(|g| g.to_bits())
                .collect();
            (value, g)
        };
        assert_eq!(
            grads(&|v| softmax_cross_entropy(v, &labels).unwrap()),
            grads(&|v| softmax_cross_entropy_weighted(v, &labels, Some(&ones)).unwrap())
        );
        let sig = x.map(|v| 1.0 / (1.0 + (-v).exp()));
        let t01 = sig.map(|v| (v > 0.5) as u8 as f32);
        assert_eq!(
            grads(&|v| binary_cross_entropy(&crate::ops::activation::sigmoid(v), &t01).unwrap()),
            grads(&|v| binary_cross_entropy_weighted(
                &crate::ops::activation::sigmoid(v),
                &t01,
                Some(&ones)
            )
            .unwrap())
        );
        // A weight per row is required: a wrong length is an error naming both.
        let e = mean_squared_error_weighted(&p, &y, Some(&Tensor::ones(&[3])))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sample weights of shape [3]") && e.contains("2 rows"),
            "{e}"
        );
    }

    #[test]
    fn fused_matches_unfused() {
        let logits = Var::constant(Tensor::from_vec(
            vec![1.0, 2.0, 0.5, -1.0, 0.0, 3.0],
            &[2, 3],
        ));
        let t = Tensor::from_vec(vec![1., 2.], &[2]);
        let fused = softmax_cross_entropy(&logits, &t).unwrap().value().item();
        let probs = super::super::activation::softmax(&logits);
        let plain = cross_entropy(&probs, &t).unwrap().value().item();
        assert!((fused - plain).abs() < 1e-5, "{fused} vs {plain}");
    }

    #[test]
    fn smoothed_rows_mix_in_the_uniform_distribution() {
        let t = smooth_labels(&Tensor::from_vec(vec![2., 0.], &[2]), 2, 4, 0.2).unwrap();
        assert_eq!(t.data(), &[0.05, 0.05, 0.85, 0.05, 0.85, 0.05, 0.05, 0.05]);
        assert!(smooth_labels(&Tensor::from_vec(vec![4.], &[1]), 1, 4, 0.1).is_err());
    }

    #[test]
    fn bad_labels_get_clear_errors() {
        let p = Var::constant(Tensor::full(&[2, 3], 1.0 / 3.0));
        let e = cross_entropy(&p, &Tensor::zeros(&[3]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[3]") && e.contains("[2, 3]"), "{e}");
        let e = cross_entropy(&p, &Tensor::from_vec(vec![0., 5.], &[2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a class index"), "{e}");
    }
}
