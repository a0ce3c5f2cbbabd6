//! Permutation of axes (a copy) and its special case, transpose. The backward permutes
//! `dy` by the inverse permutation.
//!
//! Fast path (`permute_forward`): when the last axis stays last, whole rows are copied
//! (`copy_from_slice`); otherwise one strided walk over the output (`axes::walk`).
//! `permute_naive` decodes each output index by division (the reference).

use super::axes::{check_axis, strides, walk};
use crate::engine::tensor::numel;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

fn permuted(shape: &[usize], perm: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let st = strides(shape);
    (
        perm.iter().map(|&p| shape[p]).collect(),
        perm.iter().map(|&p| st[p]).collect(),
    )
}

/// `out` (shape `shape` permuted) from `x`: `out[i_0, .., i_r] = x[..]` with output axis
/// `d` being input axis `perm[d]`.
pub fn permute_forward(out: &mut [f32], x: &[f32], shape: &[usize], perm: &[usize]) {
    let rank = shape.len();
    let (oshape, src) = permuted(shape, perm);
    if rank >= 1 && perm[rank - 1] == rank - 1 {
        let row = shape[rank - 1];
        if row == 0 {
            return;
        }
        let n_rows = numel(&oshape[..rank - 1]);
        let mut r = 0;
        walk(&oshape[..rank - 1], &src[..rank - 1], |_, j| {
            out[r * row..(r + 1) * row].copy_from_slice(&x[j..j + row]);
            r += 1;
        });
        debug_assert_eq!(r, n_rows);
        return;
    }
    walk(&oshape, &src, |i, j| out[i] = x[j]);
}

/// The reference.
pub fn permute_naive(x: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let (oshape, src) = permuted(shape, perm);
    (0..x.len())
        .map(|i| {
            let (mut rest, mut j) = (i, 0);
            for d in (0..oshape.len()).rev() {
                j += (rest % oshape[d]) * src[d];
                rest /= oshape[d];
            }
            x[j]
        })
        .collect()
}

/// Reorders the axes: output axis `d` is input axis `perm[d]` (PyTorch's `permute`).
pub fn permute(x: &Var, perm: &[usize]) -> Result<Var> {
    let shape = x.shape();
    let mut seen = vec![false; shape.len()];
    let valid = perm.len() == shape.len()
        && perm
            .iter()
            .all(|&p| p < shape.len() && !std::mem::replace(&mut seen[p], true));
    if !valid {
        return Err(Error::shape(format!(
            "permute: {perm:?} is not a permutation of the axes of {shape:?}"
        )));
    }
    let xv = x.value().contiguous_f32();
    let (oshape, _) = permuted(&shape, perm);
    let mut out = vec![0.0f32; xv.numel()];
    permute_forward(&mut out, xv.data(), &shape, perm);
    let mut inverse = vec![0usize; perm.len()];
    for (d, &p) in perm.iter().enumerate() {
        inverse[p] = d;
    }
    Ok(Var::from_op(
        Tensor::from_vec(out, &oshape),
        "permute",
        &[x],
        move |dy| {
            let dy = dy.contiguous_f32();
            let mut dx = vec![0.0f32; dy.numel()];
            permute_forward(&mut dx, dy.data(), &oshape, &inverse);
            vec![Some(Tensor::from_vec(dx, &shape))]
        },
    ))
}

/// Swaps axes `a` and `b`.
pub fn transpose(x: &Var, a: usize, b: usize) -> Result<Var> {
    let shape = x.shape();
    check_axis("transpose", &shape, a)?;
    check_axis("transpose", &shape, b)?;
    let mut perm: Vec<usize> = (0..shape.len()).collect();
    perm.swap(a, b);
    permute(x, &perm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    #[test]
    fn both_paths_match_the_naive_permutation() {
        let shape = [2, 3, 4, 5];
        let x: Vec<f32> = (0..120).map(|i| i as f32).collect();
        for perm in [
            [0, 1, 2, 3],
            [1, 0, 2, 3],
            [2, 0, 1, 3],
            [0, 1, 3, 2],
            [3, 2, 1, 0],
            [1, 3, 0, 2],
        ] {
            let mut out = vec![0.0f32; 120];
            permute_forward(&mut out, &x, &shape, &perm);
            assert_eq!(out, permute_naive(&x, &shape, &perm), "{perm:?}");
        }
    }

    #[test]
    fn transpose_values_errors_and_gradcheck() {
        let x = Var::constant(Tensor::from_vec(vec![1., 2., 3., 4., 5., 6.], &[2, 3]));
        let t = transpose(&x, 0, 1).unwrap();
        assert_eq!(t.shape(), vec![3, 2]);
        assert_eq!(t.value().data(), &[1., 4., 2., 5., 3., 6.]);
        let e = permute(&x, &[0, 0]).unwrap_err().to_string();
        assert!(e.contains("[0, 0]") && e.contains("[2, 3]"), "{e}");
        assert!(transpose(&x, 0, 2).is_err());
        let mut rng = Rng::new(1);
        let a = gradcheck::random_away_from_zero(&[2, 3, 4], &mut rng, 0.1);
        for perm in [[2, 0, 1], [1, 0, 2], [0, 2, 1]] {
            let r = gradcheck::check(
                |v| permute(&v[0], &perm).unwrap(),
                std::slice::from_ref(&a),
                1e-2,
                1,
            );
            assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{perm:?}: {r:?}");
        }
    }
}
