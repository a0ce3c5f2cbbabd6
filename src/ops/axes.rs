//! Axis arithmetic shared by the general ops (index, reduce, permute, broadcast): axis
//! validation with errors naming the op and the shape, row-major strides, the
//! `[outer, axis, inner]` split of a shape, and reading index tensors.
//!
//! Index tensors: until the tensor gains an integer storage (I64, issue 11 item 1),
//! indices travel as f32 tensors holding whole numbers (exact up to 2^24 = 16,777,216,
//! far above any axis length a lookup table here has). `indices` rejects fractions,
//! negatives and out-of-range values with an error naming the op.

use crate::engine::Tensor;
use crate::error::{Error, Result};

/// Row-major strides of `shape` (in elements).
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// `(outer, len, inner)`: the shape seen as `[outer, shape[axis], inner]`.
pub fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// Checks `axis < shape.len()`.
pub fn check_axis(op: &str, shape: &[usize], axis: usize) -> Result<()> {
    if axis >= shape.len() {
        return Err(Error::shape(format!(
            "{op}: axis {axis} out of range for shape {shape:?} ({} axes)",
            shape.len()
        )));
    }
    Ok(())
}

/// Checks a set of axes (non-empty, each in range, no repeats) and returns them sorted.
pub fn check_axes(op: &str, shape: &[usize], axes: &[usize]) -> Result<Vec<usize>> {
    if axes.is_empty() {
        return Err(Error::invalid(format!(
            "{op}: no axes given for shape {shape:?}"
        )));
    }
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    for (i, &a) in sorted.iter().enumerate() {
        check_axis(op, shape, a)?;
        if i > 0 && sorted[i - 1] == a {
            return Err(Error::invalid(format!(
                "{op}: axis {a} given twice in {axes:?} for shape {shape:?}"
            )));
        }
    }
    Ok(sorted)
}

/// The values of an index tensor as `usize`, each checked to be a whole number in
/// `0..bound` (see the module doc for why indices are f32 for now).
pub fn indices(op: &str, idx: &Tensor, bound: usize, of_shape: &[usize]) -> Result<Vec<usize>> {
    let idx = idx.contiguous_f32();
    idx.data()
        .iter()
        .map(|&v| {
            if v.fract() == 0.0 && v >= 0.0 && (v as usize) < bound {
                Ok(v as usize)
            } else {
                Err(Error::invalid(format!(
                    "{op}: index {v} (in indices of shape {:?}) is not a whole number in \
                     0..{bound} for input of shape {of_shape:?}",
                    idx.shape()
                )))
            }
        })
        .collect()
}

/// Calls `f(i, j)` for every element `i` (row-major) of a tensor of shape `out`, with `j`
/// the offset `sum(index[d] * src_strides[d])` into another buffer: the one walk behind
/// broadcasting (stride 0 on broadcast axes), permutation (permuted strides) and
/// reductions (stride 0 on reduced axes). Increments instead of divisions.
pub fn walk(out: &[usize], src_strides: &[usize], mut f: impl FnMut(usize, usize)) {
    debug_assert_eq!(out.len(), src_strides.len());
    let n: usize = out.iter().product();
    if n == 0 {
        return;
    }
    let rank = out.len();
    if rank == 0 {
        f(0, 0);
        return;
    }
    // The last axis is the inner loop: no odometer step per element.
    let (last, last_stride) = (out[rank - 1], src_strides[rank - 1]);
    let mut idx = vec![0usize; rank];
    let mut j = 0usize;
    let mut i = 0usize;
    while i < n {
        for k in 0..last {
            f(i + k, j + k * last_stride);
        }
        i += last;
        // Carry into the outer axes.
        let mut d = rank - 1;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            j += src_strides[d];
            if idx[d] < out[d] {
                break;
            }
            j -= src_strides[d] * out[d];
            idx[d] = 0;
        }
    }
}

/// As `walk`, with two source buffers: `f(i, ja, jb)` (binary broadcasting).
pub fn walk2(out: &[usize], sa: &[usize], sb: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    debug_assert!(out.len() == sa.len() && out.len() == sb.len());
    let n: usize = out.iter().product();
    if n == 0 {
        return;
    }
    let rank = out.len();
    if rank == 0 {
        f(0, 0, 0);
        return;
    }
    let (last, la, lb) = (out[rank - 1], sa[rank - 1], sb[rank - 1]);
    let mut idx = vec![0usize; rank];
    let (mut ja, mut jb, mut i) = (0usize, 0usize, 0usize);
    while i < n {
        for k in 0..last {
            f(i + k, ja + k * la, jb + k * lb);
        }
        i += last;
        let mut d = rank - 1;
        while d > 0 {
            d -= 1;
            idx[d] += 1;
            ja += sa[d];
            jb += sb[d];
            if idx[d] < out[d] {
                break;
            }
            ja -= sa[d] * out[d];
            jb -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_split_and_walk() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
        assert_eq!(split_at_axis(&[2, 3, 4], 1), (2, 3, 4));
        // Transposed walk of a [2, 3] buffer read as [3, 2].
        let mut got = Vec::new();
        walk(&[3, 2], &[1, 3], |i, j| got.push((i, j)));
        assert_eq!(got, vec![(0, 0), (1, 3), (2, 1), (3, 4), (4, 2), (5, 5)]);
        let mut n = 0;
        walk(&[], &[], |_, _| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn bad_axes_and_indices_are_errors() {
        assert!(check_axis("op", &[2, 3], 2).is_err());
        assert!(check_axes("op", &[2, 3], &[1, 1]).is_err());
        assert!(check_axes("op", &[2, 3], &[]).is_err());
        assert_eq!(check_axes("op", &[2, 3], &[1, 0]).unwrap(), vec![0, 1]);
        let t = Tensor::from_vec(vec![0.0, 2.0, 1.5], &[3]);
        let e = indices("gather", &t, 3, &[3, 4]).unwrap_err().to_string();
        assert!(e.contains("1.5") && e.contains("[3, 4]"), "{e}");
        let t = Tensor::from_vec(vec![0.0, 2.0, 3.0], &[3]);
        assert!(indices("gather", &t, 3, &[3]).is_err());
        let t = Tensor::from_vec(vec![0.0, 2.0, -1.0], &[3]);
        assert!(indices("gather", &t, 3, &[3]).is_err());
        let t = Tensor::from_vec(vec![0.0, 2.0, 1.0], &[3]);
        assert_eq!(indices("gather", &t, 3, &[3]).unwrap(), vec![0, 2, 1]);
    }
}
