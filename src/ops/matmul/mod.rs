//! Matrix multiply and the affine (dense) op, forward and backward.
//!
//! Dims: `N` batch rows, `K` input features, `M` output features.
//! Fast path: one GEMM from a well-kept crate (`gemm.rs`); `naive.rs` is the reference.

pub mod gemm;
pub mod naive;

pub use gemm::sgemm;

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// Row sums of a `[rows, cols]` buffer: `db[j] = sum_i dy[i, j]` (bias gradient).
pub fn sum_rows(dy: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut db = vec![0.0f32; cols];
    for row in dy.chunks_exact(cols).take(rows) {
        for (d, &g) in db.iter_mut().zip(row) {
            *d += g;
        }
    }
    db
}

fn dims2(t: &[usize], what: &str) -> Result<(usize, usize)> {
    match t {
        [r, c] => Ok((*r, *c)),
        _ => Err(Error::shape(format!(
            "{what}: expected a 2-D tensor, got {t:?}"
        ))),
    }
}

/// `a[N,K] @ b[K,M] -> [N,M]`.
pub fn matmul(a: &Var, b: &Var) -> Result<Var> {
    let (n, k) = dims2(&a.shape(), "matmul lhs")?;
    let (k2, m) = dims2(&b.shape(), "matmul rhs")?;
    if k != k2 {
        return Err(Error::shape(format!(
            "matmul: {:?} @ {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let av = a.value().contiguous_f32();
    let bv = b.value().contiguous_f32();
    let mut out = vec![0.0f32; n * m];
    sgemm(
        n,
        k,
        m,
        av.data(),
        false,
        bv.data(),
        false,
        &mut out,
        false,
        true,
    );
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, m]),
        "matmul",
        &[a, b],
        move |dy| {
            // da = dy @ b^T ; db = a^T @ dy
            let mut da = vec![0.0f32; n * k];
            sgemm(
                n,
                m,
                k,
                dy.data(),
                false,
                bv.data(),
                true,
                &mut da,
                false,
                true,
            );
            let mut db = vec![0.0f32; k * m];
            sgemm(
                k,
                n,
                m,
                av.data(),
                true,
                dy.data(),
                false,
                &mut db,
                false,
                true,
            );
            vec![
                Some(Tensor::from_vec(da, &[n, k])),
                Some(Tensor::from_vec(db, &[k, m])),
            ]
        },
    ))
}

/// Dense layer op: `x[N,K] @ w[K,M] + b[M]` (Keras kernel layout `[in, out]`).
pub fn linear(x: &Var, w: &Var, b: Option<&Var>) -> Result<Var> {
    let (n, k) = dims2(&x.shape(), "dense input")?;
    let (k2, m) = dims2(&w.shape(), "dense kernel")?;
    if k != k2 {
        return Err(Error::shape(format!(
            "dense: input {:?} does not fit kernel {:?} (expected {} features, got {})",
            x.shape(),
            w.shape(),
            k2,
            k
        )));
    }
    if let Some(b) = b {
        if b.shape() != [m] {
            return Err(Error::shape(format!(
                "dense: bias {:?} for {} units",
                b.shape(),
                m
            )));
        }
    }
    let xv = x.value().contiguous_f32();
    let wv = w.value().contiguous_f32();
    let mut out = vec![0.0f32; n * m];
    if let Some(b) = b {
        let bv = b.value().contiguous_f32();
        for row in out.chunks_exact_mut(m) {
            row.copy_from_slice(bv.data());
        }
    }
    sgemm(
        n,
        k,
        m,
        xv.data(),
        false,
        wv.data(),
        false,
        &mut out,
        b.is_some(),
        true,
    );
    let has_bias = b.is_some();
    let mut parents = vec![x, w];
    if let Some(b) = b {
        parents.push(b);
    }
    Ok(Var::from_op(
        Tensor::from_vec(out, &[n, m]),
        "linear",
        &parents,
        move |dy| {
            let mut dx = vec![0.0f32; n * k];
            sgemm(
                n,
                m,
                k,
                dy.data(),
                false,
                wv.data(),
                true,
                &mut dx,
                false,
                true,
            );
            let mut dw = vec![0.0f32; k * m];
            sgemm(
                k,
                n,
                m,
                xv.data(),
                true,
                dy.data(),
                false,
                &mut dw,
                false,
                true,
            );
            let mut grads = vec![
                Some(Tensor::from_vec(dx, &[n, k])),
                Some(Tensor::from_vec(dw, &[k, m])),
            ];
            if has_bias {
                grads.push(Some(Tensor::from_vec(sum_rows(dy.data(), n, m), &[m])));
            }
            grads
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn linear_gradcheck() {
        let mut rng = Rng::new(1);
        let x = gradcheck::random_away_from_zero(&[4, 5], &mut rng, 0.1);
        let w = gradcheck::random_away_from_zero(&[5, 3], &mut rng, 0.1);
        let b = gradcheck::random_away_from_zero(&[3], &mut rng, 0.1);
        let r = gradcheck::check(
            |v| linear(&v[0], &v[1], Some(&v[2])).unwrap(),
            &[x, w, b],
            gradcheck::DEFAULT_STEP,
            3,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{r:?}");
    }

    #[test]
    fn matmul_gradcheck_and_shape_error() {
        let mut rng = Rng::new(2);
        let a = gradcheck::random_away_from_zero(&[3, 4], &mut rng, 0.1);
        let b = gradcheck::random_away_from_zero(&[4, 2], &mut rng, 0.1);
        let r = gradcheck::check(
            |v| matmul(&v[0], &v[1]).unwrap(),
            &[a.clone(), b],
            gradcheck::DEFAULT_STEP,
            3,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{r:?}");
        let e = matmul(&Var::constant(a.clone()), &Var::constant(a)).unwrap_err();
        assert!(e.to_string().contains("[3, 4] @ [3, 4]"), "{e}");
    }
}
