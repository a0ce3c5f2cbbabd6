//! Batched matrix multiply: `a [.., M, K] @ b [.., K, N] -> [.., M, N]`, the batch axes
//! broadcasting by NumPy's rules (`[B, M, K] @ [K, N]` shares one `b`).
//!
//! Fast path: one GEMM per batch entry (`matmul::sgemm`), the entries in parallel when
//! there are several (each GEMM then single-threaded), a lone GEMM using the pool. The
//! gradient of an operand broadcast over batch entries is accumulated serially in
//! batch order (GEMM with accumulate), so it is the same every run. `bmm_naive` is the
//! triple loop (the reference).

use super::axes::walk2;
use super::broadcast::{broadcast_shape, broadcast_strides};
use super::matmul::sgemm;
use crate::engine::tensor::numel;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// For each output batch entry, the batch entry of `a` and of `b` it reads.
fn batch_pairs(out: &[usize], a: &[usize], b: &[usize]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::with_capacity(numel(out));
    walk2(
        out,
        &broadcast_strides(a, out),
        &broadcast_strides(b, out),
        |_, ia, ib| pairs.push((ia, ib)),
    );
    pairs
}

/// The reference: `out[p] = a[ia] @ b[ib]` for each batch pair, by triple loops.
pub fn bmm_naive(
    a: &[f32],
    b: &[f32],
    pairs: &[(usize, usize)],
    m: usize,
    k: usize,
    n: usize,
) -> Vec<f32> {
    let mut out = vec![0.0f32; pairs.len() * m * n];
    for (p, &(ia, ib)) in pairs.iter().enumerate() {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for t in 0..k {
                    s += a[ia * m * k + i * k + t] * b[ib * k * n + t * n + j];
                }
                out[p * m * n + i * n + j] = s;
            }
        }
    }
    out
}

/// `c[p] = op(x[ix]) @ op(y[iy])` for each pair `p`, `c` entries of `rows x cols`:
/// independent outputs, so in parallel when there are several.
fn gemm_batches(
    c: &mut [f32],
    x: &[f32],
    y: &[f32],
    pairs: &[(usize, usize)],
    (rows, inner, cols): (usize, usize, usize),
    (tx, ty): (bool, bool),
) {
    let (xs, ys, cs) = (rows * inner, inner * cols, rows * cols);
    if cs == 0 {
        return;
    }
    let lone = pairs.len() == 1;
    let run = |(p, cp): (usize, &mut [f32])| {
        let (ix, iy) = pairs[p];
        sgemm(
            rows,
            inner,
            cols,
            &x[ix * xs..],
            tx,
            &y[iy * ys..],
            ty,
            cp,
            false,
            lone,
        );
    };
    if lone {
        c.chunks_mut(cs).enumerate().for_each(run);
    } else {
        c.par_chunks_mut(cs).enumerate().for_each(run);
    }
}

/// Batched matrix multiply (see the module doc). Both operands need at least 2 axes.
pub fn bmm(a: &Var, b: &Var) -> Result<Var> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() < 2 || sb.len() < 2 || sa[sa.len() - 1] != sb[sb.len() - 2] {
        return Err(Error::shape(format!(
            "bmm: {sa:?} @ {sb:?} (need [.., M, K] @ [.., K, N])"
        )));
    }
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let n = sb[sb.len() - 1];
    let (ba, bb) = (sa[..sa.len() - 2].to_vec(), sb[..sb.len() - 2].to_vec());
    let batch = broadcast_shape("bmm (batch axes)", &ba, &bb)?;
    let pairs = batch_pairs(&batch, &ba, &bb);
    let (av, bv) = (a.value().contiguous_f32(), b.value().contiguous_f32());
    let mut out = vec![0.0f32; pairs.len() * m * n];
    // c[p] = a[ia] @ b[ib]: pairs as given.
    gemm_batches(
        &mut out,
        av.data(),
        bv.data(),
        &pairs,
        (m, k, n),
        (false, false),
    );
    let mut oshape = batch.clone();
    oshape.extend([m, n]);
    let (na, nb) = (numel(&ba), numel(&bb));
    Ok(Var::from_op(
        Tensor::from_vec(out, &oshape),
        "bmm",
        &[a, b],
        move |dy| {
            let dy = dy.contiguous_f32();
            let g = dy.data();
            // da[ia] += dy[p] @ b[ib]^T: pairs (p, ib), destination by the a index.
            let dy_b: Vec<(usize, usize)> = pairs
                .iter()
                .enumerate()
                .map(|(p, &(_, ib))| (p, ib))
                .collect();
            let mut da = vec![0.0f32; na * m * k];
            if na == pairs.len() {
                gemm_batches(&mut da, g, bv.data(), &dy_b, (m, n, k), (false, true));
            } else {
                // Destination = a's batch index: rewrite pairs as (p, ib) written to ia.
                da.fill(0.0);
                for (p, &(ia, ib)) in pairs.iter().enumerate() {
                    sgemm(
                        m,
                        n,
                        k,
                        &g[p * m * n..],
                        false,
                        &bv.data()[ib * k * n..],
                        true,
                        &mut da[ia * m * k..(ia + 1) * m * k],
                        true,
                        true,
                    );
                }
            }
            // db[ib] += a[ia]^T @ dy[p].
            let a_dy: Vec<(usize, usize)> = pairs
                .iter()
                .enumerate()
                .map(|(p, &(ia, _))| (ia, p))
                .collect();
            let mut db = vec![0.0f32; nb * k * n];
            if nb == pairs.len() {
                gemm_batches(&mut db, av.data(), g, &a_dy, (k, m, n), (true, false));
            } else {
                for (p, &(ia, ib)) in pairs.iter().enumerate() {
                    sgemm(
                        k,
                        m,
                        n,
                        &av.data()[ia * m * k..],
                        true,
                        &g[p * m * n..],
                        false,
                        &mut db[ib * k * n..(ib + 1) * k * n],
                        true,
                        true,
                    );
                }
            }
            vec![
                Some(Tensor::from_vec(da, &sa)),
                Some(Tensor::from_vec(db, &sb)),
            ]
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    fn shapes() -> Vec<(Vec<usize>, Vec<usize>)> {
        vec![
            (vec![3, 4], vec![4, 2]),
            (vec![2, 3, 4], vec![2, 4, 5]),
            (vec![2, 3, 4], vec![4, 5]),
            (vec![3, 4], vec![2, 4, 5]),
            (vec![2, 1, 3, 4], vec![3, 4, 2]),
        ]
    }

    #[test]
    fn gemm_path_matches_the_triple_loop() {
        let mut rng = Rng::new(5);
        for (sa, sb) in shapes() {
            let a = gradcheck::random_away_from_zero(&sa, &mut rng, 0.1);
            let b = gradcheck::random_away_from_zero(&sb, &mut rng, 0.1);
            let y = bmm(&Var::constant(a.clone()), &Var::constant(b.clone())).unwrap();
            let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
            let (ba, bb) = (&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
            let batch = broadcast_shape("t", ba, bb).unwrap();
            let want = bmm_naive(a.data(), b.data(), &batch_pairs(&batch, ba, bb), m, k, n);
            for (g, w) in y.value().data().iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{sa:?} {sb:?}");
            }
            assert_eq!(y.value().numel(), want.len());
        }
        let e = bmm(
            &Var::constant(Tensor::zeros(&[2, 3, 4])),
            &Var::constant(Tensor::zeros(&[3, 5, 2])),
        );
        let e = e.unwrap_err().to_string();
        assert!(e.contains("[2, 3, 4]") && e.contains("[3, 5, 2]"), "{e}");
        assert!(bmm(
            &Var::constant(Tensor::zeros(&[2, 3, 4])),
            &Var::constant(Tensor::zeros(&[3, 4, 2]))
        )
        .is_err());
    }

    #[test]
    fn gradchecks_with_and_without_batch_broadcasting() {
        let mut rng = Rng::new(9);
        for (sa, sb) in shapes() {
            let a = gradcheck::random_away_from_zero(&sa, &mut rng, 0.1);
            let b = gradcheck::random_away_from_zero(&sb, &mut rng, 0.1);
            let r = gradcheck::check(|v| bmm(&v[0], &v[1]).unwrap(), &[a, b], 1e-2, 1);
            assert!(
                r.worst() < gradcheck::DEFAULT_TOLERANCE,
                "{sa:?} {sb:?}: {r:?}"
            );
        }
    }
}
