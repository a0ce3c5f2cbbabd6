//! `NdArray`: a numeric array read from a NumPy or MATLAB file, as f32 in C (row-major)
//! order, with the element type it was stored in.
//!
//! Every reader converts to f32 because that is what the engine computes in: integers up
//! to 2^24 (all 8- and 16-bit types, and the usual labels) are exact; larger 32/64-bit
//! integers and f64 values are rounded to the nearest f32.

use crate::engine::Tensor;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// Dimension sizes, outermost first (NumPy's `shape`).
    pub shape: Vec<usize>,
    /// The elements in C order; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
    /// The stored element type in NumPy's spelling: `uint8`, `float64`, `bool`, ...
    pub dtype: &'static str,
}

impl NdArray {
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    pub fn to_tensor(&self) -> Result<Tensor> {
        Tensor::try_from_vec(self.data.clone(), &self.shape)
    }

    /// Moves the last axis to the front: `(28, 28, N)` -> `(N, 28, 28)`, the notMNIST
    /// practice's `images.transpose(2, 0, 1)`.
    pub fn last_axis_first(&self) -> NdArray {
        let Some(&last) = self.shape.last() else {
            return self.clone();
        };
        let inner = self.data.len().checked_div(last).unwrap_or(0);
        let mut data = Vec::with_capacity(self.data.len());
        for n in 0..last {
            data.extend((0..inner).map(|i| self.data[i * last + n]));
        }
        let mut shape = vec![last];
        shape.extend_from_slice(&self.shape[..self.shape.len() - 1]);
        NdArray {
            shape,
            data,
            dtype: self.dtype,
        }
    }
}

/// The number of elements of `shape`, or an error if the product overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            Error::invalid(format!(
                "shape {shape:?} has more elements than fit in memory"
            ))
        })
}

/// Elements stored in Fortran (column-major) order, the first index fastest, reordered
/// to C order, the last index fastest. `data.len()` must be the product of `shape`.
pub fn fortran_to_c(data: &[f32], shape: &[usize]) -> Vec<f32> {
    if shape.len() < 2 || data.is_empty() {
        return data.to_vec();
    }
    // Fortran strides: 1, d0, d0*d1, ...; walk the C-order index with an odometer.
    let mut fstride = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        fstride[k] = fstride[k - 1] * shape[k - 1];
    }
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; shape.len()];
    let mut pos = 0usize; // Fortran offset of `idx`
    for _ in 0..data.len() {
        out.push(data[pos]);
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            pos += fstride[k];
            if idx[k] < shape[k] {
                break;
            }
            pos -= fstride[k] * shape[k];
            idx[k] = 0;
        }
    }
    out
}

/// An error from a byte parser, re-labelled with the file it came from.
pub fn in_file(path: &std::path::Path, e: Error) -> Error {
    match e {
        Error::Invalid(m) | Error::Shape(m) => Error::format(path, m),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fortran_order_matches_a_naive_index() {
        let shape = [2usize, 3, 4];
        let f: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let c = fortran_to_c(&f, &shape);
        for i in 0..2 {
            for j in 0..3 {
                for k in 0..4 {
                    assert_eq!(c[(i * 3 + j) * 4 + k], f[i + 2 * j + 6 * k]);
                }
            }
        }
    }

    #[test]
    fn last_axis_first_is_a_transpose() {
        let a = NdArray {
            shape: vec![2, 3],
            data: vec![0., 1., 2., 3., 4., 5.],
            dtype: "float32",
        };
        let t = a.last_axis_first();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, vec![0., 3., 1., 4., 2., 5.]);
        assert!(checked_numel(&[usize::MAX, 2]).is_err());
    }
}
