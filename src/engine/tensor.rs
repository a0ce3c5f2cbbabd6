//! `Tensor`: an n-dimensional array of f32 in row-major (C) order.
//!
//! Storage is an `Arc<Vec<f32>>` shared between tensors, so `clone` and `reshape` are free
//! views of the same buffer; writing through `data_mut` copies only if the buffer is shared
//! (copy-on-write). Images are NCHW: `[batch, channels, height, width]`.
//!
//! Seams for later: `DType` and `Device` name the element type and the place the buffer
//! lives. Today every tensor is `F32` on the `Cpu`; a half-precision or GPU tensor adds a
//! variant and a storage kind here, and kernels dispatch on them at the op boundary (never
//! inside a kernel loop). See ARCHITECTURE.md.

use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;

/// Element type of a tensor. Only `F32` is implemented; the enum is the seam for f16/bf16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DType {
    F32,
}

/// Where a tensor's buffer lives. Only `Cpu` is implemented; the seam for a GPU backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
}

#[derive(Clone)]
pub struct Tensor {
    data: Arc<Vec<f32>>,
    shape: Vec<usize>,
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// Wraps `data` with `shape`. Panics if the sizes differ: use `try_from_vec` for
    /// data that comes from outside the program.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Tensor {
        assert_eq!(
            data.len(),
            numel(shape),
            "Tensor::from_vec: {} values for shape {:?}",
            data.len(),
            shape
        );
        Tensor {
            data: Arc::new(data),
            shape: shape.to_vec(),
        }
    }

    pub fn try_from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        if data.len() != numel(shape) {
            return Err(Error::shape(format!(
                "{} values cannot fill a tensor of shape {:?} ({} values)",
                data.len(),
                shape,
                numel(shape)
            )));
        }
        Ok(Tensor::from_vec(data, shape))
    }

    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    pub fn full(shape: &[usize], value: f32) -> Tensor {
        Tensor::from_vec(vec![value; numel(shape)], shape)
    }

    pub fn scalar(value: f32) -> Tensor {
        Tensor::from_vec(vec![value], &[])
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        DType::F32
    }

    pub fn device(&self) -> Device {
        Device::Cpu
    }

    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Mutable access; copies the buffer first if another tensor shares it.
    pub fn data_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.data).as_mut_slice()
    }

    pub fn into_vec(self) -> Vec<f32> {
        Arc::try_unwrap(self.data).unwrap_or_else(|arc| (*arc).clone())
    }

    /// The single value of a tensor with one element.
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.numel(),
            1,
            "item() on a tensor of shape {:?}",
            self.shape
        );
        self.data[0]
    }

    /// A view with another shape over the same buffer (free). One dimension may be
    /// `usize::MAX` to be inferred, like `-1` in NumPy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let mut shape = shape.to_vec();
        if let Some(pos) = shape.iter().position(|&d| d == usize::MAX) {
            let known: usize = shape.iter().filter(|&&d| d != usize::MAX).product();
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::shape(format!(
                    "cannot reshape {:?} into {:?}",
                    self.shape, shape
                )));
            }
            shape[pos] = self.numel() / known;
        }
        if numel(&shape) != self.numel() {
            return Err(Error::shape(format!(
                "cannot reshape {:?} ({} values) into {:?}",
                self.shape,
                self.numel(),
                shape
            )));
        }
        Ok(Tensor {
            data: self.data.clone(),
            shape,
        })
    }

    /// This tensor with a contiguous row-major layout. Every op calls it once at its
    /// entry, so kernels only ever see plain slices (today every tensor is contiguous;
    /// strided views arrive with the Engine 2 layout).
    pub fn contiguous(&self) -> Tensor {
        self.clone()
    }

    /// Whether two tensors share one buffer (used by tests of view semantics).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    pub fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor::from_vec(self.data.iter().map(|&x| f(x)).collect(), &self.shape)
    }

    pub fn zip_map(&self, other: &Tensor, f: impl Fn(f32, f32) -> f32) -> Tensor {
        assert_eq!(self.shape, other.shape, "zip_map shape mismatch");
        Tensor::from_vec(
            self.data
                .iter()
                .zip(other.data.iter())
                .map(|(&a, &b)| f(a, b))
                .collect(),
            &self.shape,
        )
    }

    /// `self += other`, elementwise (gradient accumulation).
    pub fn add_assign(&mut self, other: &Tensor) {
        assert_eq!(self.shape, other.shape, "add_assign shape mismatch");
        for (a, &b) in self.data_mut().iter_mut().zip(other.data.iter()) {
            *a += b;
        }
    }

    pub fn sum(&self) -> f32 {
        // Summed in f64 so long reductions (losses, metrics) do not drift.
        self.data.iter().map(|&x| x as f64).sum::<f64>() as f32
    }

    pub fn mean(&self) -> f32 {
        self.sum() / self.numel().max(1) as f32
    }

    /// Index of the largest value in each row of a `[rows, cols]` tensor.
    pub fn argmax_rows(&self) -> Vec<usize> {
        let cols = *self.shape.last().unwrap_or(&1);
        self.data
            .chunks(cols.max(1))
            .map(|row| {
                let mut best = 0;
                for (i, &v) in row.iter().enumerate() {
                    if v > row[best] {
                        best = i;
                    }
                }
                best
            })
            .collect()
    }

    /// Rows `[start, end)` along the first axis, copied into a new tensor.
    pub fn slice_rows(&self, start: usize, end: usize) -> Tensor {
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Tensor::from_vec(self.data[start * row..end * row].to_vec(), &shape)
    }

    /// The rows named by `indices` along the first axis, gathered into a new tensor.
    pub fn gather_rows(&self, indices: &[usize]) -> Tensor {
        let row: usize = self.shape[1..].iter().product();
        let mut out = Vec::with_capacity(indices.len() * row);
        for &i in indices {
            out.extend_from_slice(&self.data[i * row..(i + 1) * row]);
        }
        let mut shape = self.shape.clone();
        shape[0] = indices.len();
        Tensor::from_vec(out, &shape)
    }

    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|x| x.is_finite())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.numel().min(8);
        write!(
            f,
            "Tensor(shape={:?}, data={:?}{})",
            self.shape,
            &self.data[..n],
            if self.numel() > n { ", ..." } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_is_a_free_view() {
        let t = Tensor::from_vec((0..12).map(|x| x as f32).collect(), &[3, 4]);
        let r = t.reshape(&[2, usize::MAX]).unwrap();
        assert_eq!(r.shape(), &[2, 6]);
        assert!(r.shares_storage(&t));
        assert!(t.reshape(&[5, 2]).is_err());
    }

    #[test]
    fn data_mut_copies_only_when_shared() {
        let t = Tensor::zeros(&[4]);
        let mut u = t.clone();
        u.data_mut()[0] = 1.0;
        assert_eq!(t.data()[0], 0.0);
        assert_eq!(u.data()[0], 1.0);
    }

    #[test]
    fn gather_and_argmax() {
        let t = Tensor::from_vec(vec![0., 2., 1., 5., 4., 3.], &[3, 2]);
        assert_eq!(t.argmax_rows(), vec![1, 1, 0]);
        assert_eq!(t.gather_rows(&[2, 0]).data(), &[4., 3., 0., 2.]);
    }
}
