//! `Tensor`: an n-dimensional array = shared typed storage + a layout + a device.
//!
//! - Storage (`storage.rs`) is one `Arc`-shared flat buffer of one element type (f32,
//!   f16, bf16, i8, u8, i64). Clone is free; writing through `data_mut` copies only if
//!   the buffer is shared or the tensor is a view (copy-on-write).
//! - The layout (`layout.rs`: shape, strides, offset) makes `reshape` (of a contiguous
//!   tensor), `narrow`, `permute`/`transpose`, `expand`/`broadcast_to` and
//!   `squeeze`/`unsqueeze` free views of the same storage.
//! - Kernels take plain contiguous f32 slices. Every op calls `contiguous_f32()` on each
//!   input at its entry (the one (dtype, device) dispatch point: free for a contiguous
//!   f32 tensor, one copy otherwise), then `data()`. `data()` panics on a strided view
//!   or another element type, so a view can never reach a kernel by accident.
//! - Code outside the kernels, `formats/` and `data/` reads values with `to_f32_vec()`
//!   (an explicit copy, like PyTorch's `.numpy()`) or `item()`, and builds tensors with
//!   the constructors (a test in `tests/no_f32_slices.rs` keeps it so).
//!
//! Images are NCHW: `[batch, channels, height, width]`. Only the `Cpu` device exists; a
//! GPU backend adds a `Device` variant and storage kind, and ops dispatch on them at the
//! same entry point.

use super::convert;
pub use super::layout::Layout;
pub use super::storage::{DType, Element, Storage};
use crate::error::{Error, Result};
use half::{bf16, f16};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Where a tensor's buffer lives. Only `Cpu` is implemented; the seam for a GPU backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
}

#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
    device: Device,
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    fn from_parts(storage: Storage, shape: &[usize]) -> Tensor {
        debug_assert_eq!(storage.len(), numel(shape));
        Tensor {
            storage: Arc::new(storage),
            layout: Layout::row_major(shape),
            device: Device::Cpu,
        }
    }

    /// A view of the same storage with another layout.
    fn with_layout(&self, layout: Layout) -> Tensor {
        debug_assert!(layout.storage_end() <= self.storage.len());
        Tensor {
            storage: self.storage.clone(),
            layout,
            device: self.device,
        }
    }

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
        Tensor::from_parts(Storage::F32(data), shape)
    }

    pub fn try_from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_typed(data, shape)
    }

    /// A tensor of any element type: `Tensor::from_typed(vec![1i64, 2], &[2])`,
    /// `Tensor::from_typed(halfs, &[3, 4])`. Errors if the sizes differ.
    pub fn from_typed<T: Element>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_storage(T::into_storage(data), shape)
    }

    /// A tensor over a whole typed buffer (as read from a file).
    pub fn from_storage(storage: Storage, shape: &[usize]) -> Result<Tensor> {
        if storage.len() != numel(shape) {
            return Err(Error::shape(format!(
                "{} values cannot fill a tensor of shape {:?} ({} values)",
                storage.len(),
                shape,
                numel(shape)
            )));
        }
        Ok(Tensor::from_parts(storage, shape))
    }

    pub fn from_f16_vec(data: Vec<f16>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_typed(data, shape)
    }

    pub fn from_bf16_vec(data: Vec<bf16>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_typed(data, shape)
    }

    pub fn from_i64_vec(data: Vec<i64>, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_typed(data, shape)
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
        self.layout.shape()
    }

    /// Strides in elements (0 on broadcast axes).
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn ndim(&self) -> usize {
        self.layout.shape().len()
    }

    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Bytes the elements take in this tensor's element type (a view counts its own
    /// elements, not the whole shared buffer).
    pub fn size_in_bytes(&self) -> usize {
        self.numel() * self.dtype().size_in_bytes()
    }

    /// Row-major without gaps (possibly starting at an offset into a larger buffer).
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The f32 elements of a contiguous f32 tensor, borrowed: for kernels (after
    /// `contiguous_f32()` at the op's entry), `formats/` and `data/`. Panics on a strided
    /// view or another element type, naming what to call instead.
    #[inline]
    pub fn data(&self) -> &[f32] {
        match &*self.storage {
            Storage::F32(v) if self.layout.is_contiguous() => {
                let start = self.layout.offset();
                &v[start..start + self.layout.numel()]
            }
            _ => self.not_plain_f32("data"),
        }
    }

    #[cold]
    #[inline(never)]
    fn not_plain_f32(&self, what: &str) -> ! {
        panic!(
            "Tensor::{what}() needs a contiguous f32 tensor, got {} of shape {:?} \
             (contiguous: {}): call contiguous_f32() first (at the op's entry), or \
             to_f32_vec() to copy the values out",
            self.dtype(),
            self.shape(),
            self.is_contiguous()
        )
    }

    /// Mutable f32 elements; copies the buffer first if another tensor shares it or this
    /// tensor is a view (copy-on-write). Panics on another element type.
    pub fn data_mut(&mut self) -> &mut [f32] {
        if self.dtype() != DType::F32 {
            self.not_plain_f32("data_mut");
        }
        let whole =
            self.is_contiguous() && self.layout.offset() == 0 && self.storage.len() == self.numel();
        if !whole {
            *self = Tensor::from_vec(self.to_f32_vec(), self.shape());
        }
        match Arc::make_mut(&mut self.storage) {
            Storage::F32(v) => v.as_mut_slice(),
            _ => unreachable!("checked f32 above"),
        }
    }

    /// The f32 elements in row-major order, moved out when this tensor owns its whole
    /// buffer, else copied. Panics on another element type (use `to_f32_vec`).
    pub fn into_vec(self) -> Vec<f32> {
        if self.dtype() != DType::F32 {
            self.not_plain_f32("into_vec");
        }
        let whole =
            self.is_contiguous() && self.layout.offset() == 0 && self.storage.len() == self.numel();
        if !whole {
            return self.to_f32_vec();
        }
        match Arc::try_unwrap(self.storage) {
            Ok(Storage::F32(v)) => v,
            Ok(_) => unreachable!("checked f32 above"),
            Err(arc) => match &*arc {
                Storage::F32(v) => v.clone(),
                _ => unreachable!("checked f32 above"),
            },
        }
    }

    /// The elements converted to f32, in row-major order: an explicit copy for code that
    /// needs values (metrics, reports, the CLI), like PyTorch's `.numpy()`. Any element
    /// type, any layout.
    pub fn to_f32_vec(&self) -> Vec<f32> {
        let c = self.contiguous();
        let (start, n) = (c.layout.offset(), c.numel());
        let mut out = vec![0.0f32; n];
        match &*c.storage {
            Storage::F32(v) => out.copy_from_slice(&v[start..start + n]),
            Storage::F16(v) => convert::f16_to_f32(&mut out, &v[start..start + n]),
            Storage::BF16(v) => convert::bf16_to_f32(&mut out, &v[start..start + n]),
            Storage::I8(v) => convert::i8_to_f32(&mut out, &v[start..start + n]),
            Storage::U8(v) => convert::u8_to_f32(&mut out, &v[start..start + n]),
            Storage::I64(v) => convert::i64_to_f32(&mut out, &v[start..start + n]),
        }
        out
    }

    /// The elements of a contiguous tensor of element type `T`, borrowed. Errors name
    /// the type and layout found.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        match T::slice(&self.storage) {
            Some(v) if self.is_contiguous() => {
                let start = self.layout.offset();
                Ok(&v[start..start + self.numel()])
            }
            _ => Err(Error::invalid(format!(
                "expected a contiguous {} tensor, got {} of shape {:?} (contiguous: {})",
                T::DTYPE,
                self.dtype(),
                self.shape(),
                self.is_contiguous()
            ))),
        }
    }

    /// The f32 values: borrowed when already contiguous f32, else converted.
    fn f32_values(&self) -> Cow<'_, [f32]> {
        match &*self.storage {
            Storage::F32(_) if self.is_contiguous() => Cow::Borrowed(self.data()),
            _ => Cow::Owned(self.to_f32_vec()),
        }
    }

    /// The single value of a tensor with one element, as f32.
    pub fn item(&self) -> f32 {
        assert_eq!(
            self.numel(),
            1,
            "item() on a tensor of shape {:?}",
            self.shape()
        );
        self.f32_values()[0]
    }

    /// A copy in element type `dtype` (contiguous), or this tensor when it already has
    /// that type. Rounding rules: `convert.rs` (to nearest even; integers saturate).
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let c = self.contiguous();
        let (start, n) = (c.layout.offset(), c.numel());
        let storage = match (&*c.storage, dtype) {
            (Storage::F32(v), _) => from_f32(&v[start..start + n], dtype),
            (_, DType::F32) => Storage::F32(c.to_f32_vec()),
            // Between two non-f32 types, through f32: exact for every pair except i64
            // values beyond 2^24, which round once to f32 first.
            _ => from_f32(&c.to_f32_vec(), dtype),
        };
        Tensor::from_parts(storage, self.shape())
    }

    /// This tensor with a contiguous row-major layout: itself (free) when already so,
    /// else a copy made by the one generic stride walk (`Layout::copy_strided`). Keeps
    /// the element type.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        self.copy_out()
    }

    /// A row-major copy owning exactly its elements, made by the one generic stride walk.
    fn copy_out(&self) -> Tensor {
        let l = &self.layout;
        let storage = match &*self.storage {
            Storage::F32(v) => Storage::F32(l.copy_strided(v)),
            Storage::F16(v) => Storage::F16(l.copy_strided(v)),
            Storage::BF16(v) => Storage::BF16(l.copy_strided(v)),
            Storage::I8(v) => Storage::I8(l.copy_strided(v)),
            Storage::U8(v) => Storage::U8(l.copy_strided(v)),
            Storage::I64(v) => Storage::I64(l.copy_strided(v)),
        };
        Tensor::from_parts(storage, self.shape())
    }

    /// What a CPU kernel reads: this tensor as contiguous f32, free when it already is,
    /// else one copy (stride walk and/or conversion). Every op calls it on each input
    /// at its entry: the op's one (element type, device) dispatch point.
    #[inline]
    pub fn contiguous_f32(&self) -> Tensor {
        if self.dtype() == DType::F32 {
            self.contiguous()
        } else {
            self.to_dtype(DType::F32)
        }
    }

    /// Whether two tensors share one buffer (used by tests of view semantics).
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    // ---- views ----------------------------------------------------------------------

    /// Another shape over the same elements: a free view when contiguous, else a copy.
    /// One dimension may be `usize::MAX` to be inferred, like `-1` in NumPy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let mut shape = shape.to_vec();
        if let Some(pos) = shape.iter().position(|&d| d == usize::MAX) {
            let known: usize = shape.iter().filter(|&&d| d != usize::MAX).product();
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::shape(format!(
                    "cannot reshape {:?} into {:?}",
                    self.shape(),
                    shape
                )));
            }
            shape[pos] = self.numel() / known;
        }
        if numel(&shape) != self.numel() {
            return Err(Error::shape(format!(
                "cannot reshape {:?} ({} values) into {:?}",
                self.shape(),
                self.numel(),
                shape
            )));
        }
        let c = self.contiguous();
        let layout = Layout::new(
            shape.clone(),
            super::layout::row_major_strides(&shape),
            c.layout.offset(),
        );
        Ok(c.with_layout(layout))
    }

    fn check_axis(&self, axis: usize, what: &str) -> Result<()> {
        if axis >= self.ndim() {
            return Err(Error::shape(format!(
                "{what}: axis {axis} is out of range for shape {:?}",
                self.shape()
            )));
        }
        Ok(())
    }

    /// Elements `start..start + len` along `axis` (a view).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        self.check_axis(axis, "narrow")?;
        if start + len > self.shape()[axis] {
            return Err(Error::shape(format!(
                "narrow: {start}..{} is beyond axis {axis} of shape {:?}",
                start + len,
                self.shape()
            )));
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        let offset = if len == 0 {
            self.layout.offset()
        } else {
            self.layout.offset() + start * self.strides()[axis]
        };
        Ok(self.with_layout(Layout::new(shape, self.strides().to_vec(), offset)))
    }

    /// The axes reordered: output axis `i` is input axis `axes[i]` (a view).
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.ndim()];
        let valid = axes.len() == self.ndim()
            && axes
                .iter()
                .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(Error::shape(format!(
                "permute: {axes:?} is not a permutation of the axes of shape {:?}",
                self.shape()
            )));
        }
        let shape = axes.iter().map(|&a| self.shape()[a]).collect();
        let strides = axes.iter().map(|&a| self.strides()[a]).collect();
        Ok(self.with_layout(Layout::new(shape, strides, self.layout.offset())))
    }

    /// Axes `a` and `b` swapped (a view).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        self.check_axis(a, "transpose")?;
        self.check_axis(b, "transpose")?;
        let mut axes: Vec<usize> = (0..self.ndim()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// This tensor broadcast to `shape` (NumPy's rule: axes aligned from the right, each
    /// of size 1 or equal; new leading axes allowed). A view: broadcast axes get stride
    /// 0, so no element is copied.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let (n, m) = (self.ndim(), shape.len());
        let fail = || {
            Error::shape(format!(
                "cannot broadcast {:?} to {:?}",
                self.shape(),
                shape
            ))
        };
        if m < n {
            return Err(fail());
        }
        let mut strides = vec![0usize; m];
        for i in 0..n {
            let (have, want) = (self.shape()[i], shape[m - n + i]);
            if have == want {
                strides[m - n + i] = self.strides()[i];
            } else if have != 1 {
                return Err(fail());
            }
        }
        Ok(self.with_layout(Layout::new(shape.to_vec(), strides, self.layout.offset())))
    }

    /// PyTorch's name for `broadcast_to`.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        self.broadcast_to(shape)
    }

    /// `axis` removed; it must have size 1 (a view).
    pub fn squeeze(&self, axis: usize) -> Result<Tensor> {
        self.check_axis(axis, "squeeze")?;
        if self.shape()[axis] != 1 {
            return Err(Error::shape(format!(
                "squeeze: axis {axis} of shape {:?} is not 1",
                self.shape()
            )));
        }
        let (mut shape, mut strides) = (self.shape().to_vec(), self.strides().to_vec());
        shape.remove(axis);
        strides.remove(axis);
        Ok(self.with_layout(Layout::new(shape, strides, self.layout.offset())))
    }

    /// A new axis of size 1 inserted before `axis` (`axis == ndim` appends; a view).
    pub fn unsqueeze(&self, axis: usize) -> Result<Tensor> {
        if axis > self.ndim() {
            return Err(Error::shape(format!(
                "unsqueeze: axis {axis} is out of range for shape {:?}",
                self.shape()
            )));
        }
        let (mut shape, mut strides) = (self.shape().to_vec(), self.strides().to_vec());
        shape.insert(axis, 1);
        strides.insert(axis, 0);
        Ok(self.with_layout(Layout::new(shape, strides, self.layout.offset())))
    }

    // ---- f32 helpers (any layout or element type in, f32 out) -------------------------

    pub fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor::from_vec(
            self.f32_values().iter().map(|&x| f(x)).collect(),
            self.shape(),
        )
    }

    pub fn zip_map(&self, other: &Tensor, f: impl Fn(f32, f32) -> f32) -> Tensor {
        assert_eq!(self.shape(), other.shape(), "zip_map shape mismatch");
        let (a, b) = (self.f32_values(), other.f32_values());
        Tensor::from_vec(
            a.iter().zip(b.iter()).map(|(&a, &b)| f(a, b)).collect(),
            self.shape(),
        )
    }

    /// `self += other`, elementwise (gradient accumulation).
    pub fn add_assign(&mut self, other: &Tensor) {
        assert_eq!(self.shape(), other.shape(), "add_assign shape mismatch");
        let b = other.f32_values();
        for (a, &b) in self.data_mut().iter_mut().zip(b.iter()) {
            *a += b;
        }
    }

    pub fn sum(&self) -> f32 {
        // Summed in f64 so long reductions (losses, metrics) do not drift.
        self.f32_values().iter().map(|&x| x as f64).sum::<f64>() as f32
    }

    pub fn mean(&self) -> f32 {
        self.sum() / self.numel().max(1) as f32
    }

    /// Index of the largest value in each row of a `[rows, cols]` tensor.
    pub fn argmax_rows(&self) -> Vec<usize> {
        let cols = *self.shape().last().unwrap_or(&1);
        self.f32_values()
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

    /// Rows `[start, end)` along the first axis, copied into a new tensor (same element
    /// type).
    pub fn slice_rows(&self, start: usize, end: usize) -> Tensor {
        self.narrow(0, start, end - start)
            .expect("slice_rows: rows in range")
            .copy_out()
    }

    /// The rows named by `indices` along the first axis, gathered into a new tensor
    /// (same element type).
    pub fn gather_rows(&self, indices: &[usize]) -> Tensor {
        let c = self.contiguous();
        let row: usize = self.shape()[1..].iter().product();
        let start = c.layout.offset();
        fn gather<T: Copy>(v: &[T], start: usize, row: usize, indices: &[usize]) -> Vec<T> {
            let mut out = Vec::with_capacity(indices.len() * row);
            for &i in indices {
                let at = start + i * row;
                out.extend_from_slice(&v[at..at + row]);
            }
            out
        }
        let storage = match &*c.storage {
            Storage::F32(v) => Storage::F32(gather(v, start, row, indices)),
            Storage::F16(v) => Storage::F16(gather(v, start, row, indices)),
            Storage::BF16(v) => Storage::BF16(gather(v, start, row, indices)),
            Storage::I8(v) => Storage::I8(gather(v, start, row, indices)),
            Storage::U8(v) => Storage::U8(gather(v, start, row, indices)),
            Storage::I64(v) => Storage::I64(gather(v, start, row, indices)),
        };
        let mut shape = self.shape().to_vec();
        shape[0] = indices.len();
        Tensor::from_parts(storage, &shape)
    }

    pub fn all_finite(&self) -> bool {
        self.f32_values().iter().all(|x| x.is_finite())
    }
}

/// Converts f32 values to a new buffer of `dtype`.
fn from_f32(src: &[f32], dtype: DType) -> Storage {
    fn run<T: Clone>(src: &[f32], zero: T, f: fn(&mut [T], &[f32])) -> Vec<T> {
        let mut out = vec![zero; src.len()];
        f(&mut out, src);
        out
    }
    match dtype {
        DType::F32 => Storage::F32(src.to_vec()),
        DType::F16 => Storage::F16(run(src, f16::ZERO, convert::f32_to_f16)),
        DType::BF16 => Storage::BF16(run(src, bf16::ZERO, convert::f32_to_bf16)),
        DType::I8 => Storage::I8(run(src, 0, convert::f32_to_i8)),
        DType::U8 => Storage::U8(run(src, 0, convert::f32_to_u8)),
        DType::I64 => Storage::I64(run(src, 0, convert::f32_to_i64)),
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.numel().min(8);
        let head = match self
            .reshape(&[self.numel()])
            .and_then(|t| t.narrow(0, 0, n))
        {
            Ok(t) => t.to_f32_vec(),
            Err(_) => vec![],
        };
        write!(f, "Tensor(shape={:?}, ", self.shape())?;
        if self.dtype() != DType::F32 {
            write!(f, "dtype={}, ", self.dtype())?;
        }
        write!(
            f,
            "data={:?}{})",
            head,
            if self.numel() > n { ", ..." } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Tensor {
        Tensor::from_vec((0..numel(shape)).map(|x| x as f32).collect(), shape)
    }

    #[test]
    fn reshape_is_a_free_view() {
        let t = iota(&[3, 4]);
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
        let mut own = Tensor::zeros(&[4]);
        let before = own.data().as_ptr();
        own.data_mut()[1] = 2.0;
        assert_eq!(
            own.data().as_ptr(),
            before,
            "an unshared buffer is written in place"
        );
    }

    #[test]
    fn gather_and_argmax() {
        let t = Tensor::from_vec(vec![0., 2., 1., 5., 4., 3.], &[3, 2]);
        assert_eq!(t.argmax_rows(), vec![1, 1, 0]);
        assert_eq!(t.gather_rows(&[2, 0]).data(), &[4., 3., 0., 2.]);
        assert_eq!(t.slice_rows(1, 3).data(), &[1., 5., 4., 3.]);
        let i = Tensor::from_i64_vec(vec![7, 8, 9], &[3]).unwrap();
        assert_eq!(i.gather_rows(&[2]).as_slice::<i64>().unwrap(), &[9]);
    }

    #[test]
    fn views_share_storage_and_read_the_right_elements() {
        let t = iota(&[2, 3, 4]);
        // transpose: out[i, j, k] = t[i, k, j]
        let p = t.transpose(1, 2).unwrap();
        assert!(p.shares_storage(&t) && !p.is_contiguous());
        assert_eq!(p.shape(), &[2, 4, 3]);
        let pv = p.to_f32_vec();
        for i in 0..2 {
            for j in 0..4 {
                for k in 0..3 {
                    assert_eq!(pv[i * 12 + j * 3 + k], (i * 12 + k * 4 + j) as f32);
                }
            }
        }
        let n = t.narrow(2, 1, 2).unwrap();
        assert_eq!(n.shape(), &[2, 3, 2]);
        assert!(n.shares_storage(&t));
        assert_eq!(&n.to_f32_vec()[..4], &[1., 2., 5., 6.]);
        // narrow on the first axis stays contiguous: data() borrows the window.
        let rows = t.narrow(0, 1, 1).unwrap();
        assert!(rows.is_contiguous());
        assert_eq!(rows.data()[0], 12.0);
        let b = iota(&[3, 1]).broadcast_to(&[2, 3, 4]).unwrap();
        assert_eq!(b.strides(), &[0, 1, 0]);
        assert_eq!(&b.to_f32_vec()[..8], &[0., 0., 0., 0., 1., 1., 1., 1.]);
        assert!(iota(&[3, 2]).expand(&[3, 4]).is_err());
        let u = t.unsqueeze(1).unwrap();
        assert_eq!(u.shape(), &[2, 1, 3, 4]);
        assert!(u.is_contiguous());
        assert_eq!(u.squeeze(1).unwrap().shape(), t.shape());
        assert!(t.squeeze(0).is_err());
        assert!(t.permute(&[0, 0, 1]).is_err());
        assert!(t.narrow(1, 2, 2).is_err());
    }

    #[test]
    fn contiguous_copies_only_views() {
        let t = iota(&[3, 4]);
        assert!(t.contiguous().shares_storage(&t));
        let p = t.transpose(0, 1).unwrap();
        let c = p.contiguous();
        assert!(!c.shares_storage(&t) && c.is_contiguous());
        assert_eq!(c.data(), p.to_f32_vec().as_slice());
        // Reshaping a view copies; reshaping the copy is free again.
        let r = p.reshape(&[12]).unwrap();
        assert!(!r.shares_storage(&t));
        assert_eq!(r.data(), c.data());
        // Writing through a view's data_mut never touches the original.
        let mut w = t.narrow(1, 1, 2).unwrap();
        w.data_mut()[0] = -1.0;
        assert_eq!(t.data()[1], 1.0);
        assert_eq!(w.to_f32_vec()[..2], [-1.0, 2.0]);
        assert_eq!(w.into_vec().len(), 6);
    }

    #[test]
    #[should_panic(expected = "contiguous_f32")]
    fn data_on_a_view_panics_with_the_fix() {
        let _ = iota(&[2, 3]).transpose(0, 1).unwrap().data();
    }

    #[test]
    #[should_panic(expected = "got f16")]
    fn data_on_half_panics() {
        let _ = iota(&[2]).to_dtype(DType::F16).data();
    }

    #[test]
    fn dtype_round_trips_and_helpers_read_any_type() {
        let t = Tensor::from_vec(vec![0.5, -1.25, 3.0, 100.0], &[2, 2]);
        for d in DType::ALL {
            let c = t.to_dtype(d);
            assert_eq!(c.dtype(), d);
            assert_eq!(c.shape(), t.shape());
            assert_eq!(c.size_in_bytes(), 4 * d.size_in_bytes());
            let back = c.to_dtype(DType::F32);
            if d.is_float() {
                assert_eq!(back.data(), t.data(), "{d}");
            } else {
                // Round half to even, saturating for u8.
                let want: &[f32] = if d == DType::U8 {
                    &[0., 0., 3., 100.]
                } else {
                    &[0., -1., 3., 100.]
                };
                assert_eq!(back.data(), want, "{d}");
            }
        }
        let h = t.to_dtype(DType::BF16);
        assert_eq!(h.contiguous_f32().data(), t.data());
        assert_eq!(h.sum(), t.sum());
        assert_eq!(h.argmax_rows(), vec![0, 1]);
        assert_eq!(h.map(|x| x * 2.0).data(), &[1.0, -2.5, 6.0, 200.0]);
        // A strided view converts in logical order.
        let ht = h.transpose(0, 1).unwrap().to_dtype(DType::F32);
        assert_eq!(ht.data(), &[0.5, 3.0, -1.25, 100.0]);
        assert_eq!(h.as_slice::<bf16>().unwrap().len(), 4);
        assert!(h.as_slice::<f16>().is_err());
        assert!(format!("{h:?}").contains("dtype=bf16"));
    }
}
