//! Global pooling over the time axis of channels-last sequences (Keras'
//! `GlobalAveragePooling1D`, `GlobalMaxPooling1D`): `x [N, T, F] -> [N, F]`.
//!
//! Dimension letters: `N` batch, `T` steps, `F` features. Average: `y[n, f] = mean_t
//! x[n, t, f]`, backward `dx[n, t, f] = dy[n, f] / T`. Max: the first largest step is
//! recorded in the forward and receives the whole gradient. No separate fast path: the
//! loops already run along contiguous feature rows.

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
}
