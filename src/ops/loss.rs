//! Loss ops. Each returns a scalar (the mean over the batch) and has a hand-written
//! backward; the softmax + cross-entropy pair is fused so that its gradient is the
//! stable `(softmax(z) - t) / N` rather than a division by tiny probabilities.
//!
//! Targets: for the cross-entropies, `[N]` holds class indices (sparse) and `[N, C]`
//! holds one-hot rows or probabilities (categorical).

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
    let (n, c) = rows_cols(logits, "softmax cross-entropy")?;
    let t = dense_targets(target, n, c)?;
    let z = logits.value().contiguous_f32();
    let mut loss = 0.0f64;
    for (row, trow) in z.data().chunks_exact(c).zip(t.data().chunks_exact(c)) {
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let lse = max as f64
            + row
                .iter()
                .map(|&v| ((v - max) as f64).exp())
                .sum::<f64>()
                .ln();
        for (&zi, &ti) in row.iter().zip(trow) {
            if ti != 0.0 {
                loss -= ti as f64 * (zi as f64 - lse);
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
                .map(|(&pi, &ti)| (pi - ti) * scale)
                .collect();
            vec![Some(Tensor::from_vec(g, &[n, c]))]
        },
    ))
}

/// Mean cross-entropy of probabilities `probs` against `target`: -sum t log(p + 1e-7) / N.
pub fn cross_entropy(probs: &Var, target: &Tensor) -> Result<Var> {
    let (n, c) = rows_cols(probs, "cross-entropy")?;
    let t = dense_targets(target, n, c)?;
    let p = probs.value().contiguous_f32();
    let loss: f64 = p
        .data()
        .iter()
        .zip(t.data())
        .map(|(&pi, &ti)| -(ti as f64) * ((pi + LOG_EPS) as f64).ln())
        .sum::<f64>()
        / n as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "cross_entropy",
        &[probs],
        move |dy| {
            let scale = dy.item() / n as f32;
            vec![Some(p.zip_map(&t, |pi, ti| -ti / (pi + LOG_EPS) * scale))]
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
    same_shape(probs, target, "binary cross-entropy")?;
    let p = probs.value().contiguous_f32();
    let t = target.contiguous_f32().reshape(p.shape())?;
    let numel = p.numel() as f32;
    let clip = |v: f32| v.clamp(LOG_EPS, 1.0 - LOG_EPS);
    let loss = p
        .data()
        .iter()
        .zip(t.data())
        .map(|(&pi, &ti)| {
            let pc = clip(pi) as f64;
            -(ti as f64 * pc.ln() + (1.0 - ti as f64) * (1.0 - pc).ln())
        })
        .sum::<f64>()
        / numel as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "binary_cross_entropy",
        &[probs],
        move |dy| {
            let scale = dy.item() / numel;
            vec![Some(p.zip_map(&t, |pi, ti| {
                if pi <= LOG_EPS || pi >= 1.0 - LOG_EPS {
                    0.0 // clipped: flat
                } else {
                    (pi - ti) / (pi * (1.0 - pi)) * scale
                }
            }))]
        },
    ))
}

/// Mean binary cross-entropy of `sigmoid(logits)` (fused, stable).
pub fn sigmoid_binary_cross_entropy(logits: &Var, target: &Tensor) -> Result<Var> {
    same_shape(logits, target, "binary cross-entropy")?;
    let z = logits.value().contiguous_f32();
    let t = target.contiguous_f32().reshape(z.shape())?;
    let numel = z.numel() as f32;
    let loss = z
        .data()
        .iter()
        .zip(t.data())
        .map(|(&x, &y)| {
            let x = x as f64;
            x.max(0.0) - x * y as f64 + (1.0 + (-x.abs()).exp()).ln()
        })
        .sum::<f64>()
        / numel as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "sigmoid_binary_cross_entropy",
        &[logits],
        move |dy| {
            let scale = dy.item() / numel;
            vec![Some(z.zip_map(&t, |x, y| (sigmoid_scalar(x) - y) * scale))]
        },
    ))
}

/// Mean squared error over all elements.
pub fn mean_squared_error(pred: &Var, target: &Tensor) -> Result<Var> {
    same_shape(pred, target, "mean squared error")?;
    let p = pred.value().contiguous_f32();
    let t = target.contiguous_f32().reshape(p.shape())?;
    let numel = p.numel() as f32;
    let loss = p
        .data()
        .iter()
        .zip(t.data())
        .map(|(&a, &b)| ((a - b) as f64).powi(2))
        .sum::<f64>()
        / numel as f64;
    Ok(Var::from_op(
        Tensor::scalar(loss as f32),
        "mean_squared_error",
        &[pred],
        move |dy| {
            let scale = 2.0 * dy.item() / numel;
            vec![Some(p.zip_map(&t, |a, b| (a - b) * scale))]
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
