//! Global pooling over the time axis of channels-last sequences (Keras'
//! `GlobalAveragePooling1D`, `GlobalMaxPooling1D`): `x [N, T, F] -> [N, F]`.
//!
//! Dimension letters: `N` batch, `T` steps, `F` features. Average: `y[n, f] = mean_t
//! x[n, t, f]`, backward `dx[n, t, f] = dy[n, f] / T`. Max: the first largest step is
//! recorded in the forward and receives the whole gradient. No separate fast path: the
//! loops already run along contiguous feature rows. With a mask (`[N, T]`, 1 = real
//! step) the average is over the real steps only (`global_masked_avg_pool1d`).

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

fn dims(shape: &[usize], op: &str) -> Result<(usize, usize, usize)> {
    match *shape {
        [n, t, f] if t > 0 => Ok((n, t, f)),
        _ => Err(Error::shape(format!(
            "{op}: expected a sequence [N, T, F] with T >= 1, got {shape:?}"
        ))),
    }
}

/// `[N, T, F] -> [N, F]`, the mean over `T`.
pub fn global_avg_pool1d(x: &Var) -> Result<Var> {
    let (n, t, f) = dims(&x.shape(), "global_avg_pool1d")?;
    let mut out = vec![0.0f32; n * f]; // [N, F]
    for (seq, o) in x
        .value()
        .contiguous_f32()
        .data()
        .chunks_exact(t * f)
        .zip(out.chunks_exact_mut(f))
    {
        for row in seq.chunks_exact(f) {
            o.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
        o.iter_mut().for_each(|a| *a /= t as f32);
    }
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, f]),
        "global_avg_pool1d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; n * t * f];
            for (seq, g) in dx.chunks_exact_mut(t * f).zip(dy.data().chunks_exact(f)) {
                for row in seq.chunks_exact_mut(f) {
                    row.iter_mut().zip(g).for_each(|(d, &g)| *d = g / t as f32);
                }
            }
            vec![Some(Tensor::from_vec(dx, &[n, t, f]))]
        },
    ))
}

/// `[N, T, F] -> [N, F]`, the mean over the real steps of each sequence: `mask` is
/// `[N, T]`, nonzero for a real step (Keras' `GlobalAveragePooling1D` with a mask).
/// `y[n, f] = sum_t m[n, t] x[n, t, f] / sum_t m[n, t]`, backward `dx[n, t, f] =
/// m[n, t] dy[n, f] / sum_t m[n, t]`. A sequence with no real step gives zeros and a
/// zero gradient (Keras divides 0 by 0 there and returns NaN, which would poison the
/// whole batch's loss).
pub fn global_masked_avg_pool1d(x: &Var, mask: &Tensor) -> Result<Var> {
    let (n, t, f) = dims(&x.shape(), "global_masked_avg_pool1d")?;
    super::mask::check_mask("global_masked_avg_pool1d", mask, &[n, t, f])?;
    // Per step 0 or 1/count: the forward and the backward both weight by it.
    let m = mask.contiguous_f32();
    let mut weight = vec![0.0f32; n * t]; // [N, T]
    for (w, m) in weight.chunks_exact_mut(t).zip(m.data().chunks_exact(t)) {
        let count = m.iter().filter(|&&v| v != 0.0).count();
        if count > 0 {
            for (w, &m) in w.iter_mut().zip(m) {
                *w = if m != 0.0 { 1.0 / count as f32 } else { 0.0 };
            }
        }
    }
    drop(m);
    let mut out = vec![0.0f32; n * f]; // [N, F]
    let xv = x.value().contiguous_f32();
    for ((seq, o), w) in (xv.data().chunks_exact(t * f))
        .zip(out.chunks_exact_mut(f))
        .zip(weight.chunks_exact(t))
    {
        for (row, &w) in seq.chunks_exact(f).zip(w) {
            // Skipped, not multiplied by 0: a padded step holding inf or NaN must not
            // leak into the mean.
            if w != 0.0 {
                o.iter_mut().zip(row).for_each(|(a, &v)| *a += w * v);
            }
        }
    }
    drop(xv);
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, f]),
        "global_masked_avg_pool1d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; n * t * f];
            for ((seq, g), w) in (dx.chunks_exact_mut(t * f))
                .zip(dy.data().chunks_exact(f))
                .zip(weight.chunks_exact(t))
            {
                for (row, &w) in seq.chunks_exact_mut(f).zip(w) {
                    row.iter_mut().zip(g).for_each(|(d, &g)| *d = w * g);
                }
            }
            vec![Some(Tensor::from_vec(dx, &[n, t, f]))]
        },
    ))
}

/// `[N, T, F] -> [N, F]`, the max over `T`.
pub fn global_max_pool1d(x: &Var) -> Result<Var> {
    let (n, t, f) = dims(&x.shape(), "global_max_pool1d")?;
    let mut out = vec![f32::NEG_INFINITY; n * f]; // [N, F]
    let mut argmax = vec![0usize; n * f]; // [N, F], the step
    let xv = x.value().contiguous_f32();
    for (i, seq) in xv.data().chunks_exact(t * f).enumerate() {
        for (step, row) in seq.chunks_exact(f).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                if v > out[i * f + j] {
                    out[i * f + j] = v;
                    argmax[i * f + j] = step;
                }
            }
        }
    }
    drop(xv);
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, f]),
        "global_max_pool1d",
        &[x],
        move |dy| {
            let mut dx = vec![0.0f32; n * t * f];
            for (k, (&step, &g)) in argmax.iter().zip(dy.data()).enumerate() {
                let (i, j) = (k / f, k % f);
                dx[(i * t + step) * f + j] = g;
            }
            vec![Some(Tensor::from_vec(dx, &[n, t, f]))]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn values_and_gradients() {
        let x = Var::constant(Tensor::from_vec(vec![1., 5., 3., 2., 2., 7.], &[1, 3, 2]));
        assert_eq!(
            global_avg_pool1d(&x).unwrap().value().data(),
            [2.0, 14.0 / 3.0]
        );
        assert_eq!(global_max_pool1d(&x).unwrap().value().data(), [3.0, 7.0]);
        let mut rng = Rng::new(2);
        let x = gradcheck::random_away_from_zero(&[2, 5, 3], &mut rng, 0.1);
        for op in [global_avg_pool1d, global_max_pool1d] {
            let r = gradcheck::check(|v| op(&v[0]).unwrap(), std::slice::from_ref(&x), 1e-3, 3);
            assert!(r.worst() < 1e-2, "{r:?}");
        }
        let e = global_avg_pool1d(&Var::constant(Tensor::zeros(&[2, 3]))).unwrap_err();
        assert!(e.to_string().contains("[2, 3]"), "{e}");
    }

    #[test]
    fn masked_mean_values_and_gradients() {
        // Row 0: steps 0 and 2 real; row 1: no real step (zeros, not NaN).
        let x = Var::constant(Tensor::from_vec(
            vec![1., 5., f32::NAN, 9., 3., 7., 1., 1., 2., 2., 3., 3.],
            &[2, 3, 2],
        ));
        let mask = Tensor::from_vec(vec![1., 0., 1., 0., 0., 0.], &[2, 3]);
        let y = global_masked_avg_pool1d(&x, &mask).unwrap();
        assert_eq!(y.value().data(), [2.0, 6.0, 0.0, 0.0]);
        // A full mask is the plain mean.
        let mut rng = Rng::new(3);
        let x = gradcheck::random_away_from_zero(&[3, 5, 2], &mut rng, 0.1);
        let ones = Tensor::from_vec(vec![1.0; 15], &[3, 5]);
        let xv = Var::constant(x.clone());
        let (a, b) = (
            global_masked_avg_pool1d(&xv, &ones).unwrap().value(),
            global_avg_pool1d(&xv).unwrap().value(),
        );
        for (a, b) in a.data().iter().zip(b.data()) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        // Post-padded, pre-padded and all-masked rows.
        let mask = Tensor::from_vec(
            vec![1., 1., 1., 0., 0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0.],
            &[3, 5],
        );
        let r = gradcheck::check(
            |v| global_masked_avg_pool1d(&v[0], &mask).unwrap(),
            std::slice::from_ref(&x),
            1e-3,
            3,
        );
        assert!(r.worst() < 1e-2, "{r:?}");
        let e = global_masked_avg_pool1d(&xv, &Tensor::zeros(&[3, 4])).unwrap_err();
        assert!(e.to_string().contains("[3, 4]"), "{e}");
    }
}
