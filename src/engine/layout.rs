//! `Layout`: how a tensor's logical elements sit in its storage (shape, strides, offset).
//!
//! Element `[i0, i1, ...]` lives at `offset + i0*strides[0] + i1*strides[1] + ...`.
//! Strides are in elements, never negative; a stride of 0 repeats one element along an
//! axis (broadcast). Views (narrow, permute, expand, reshape of a contiguous tensor) are
//! new layouts over the same storage; the only code that walks strides is
//! `copy_strided`, which `Tensor::contiguous` calls, so kernels never see them.

/// Shape, strides and offset; `contiguous` and `numel` are derived once at construction
/// so `Tensor::data` checks one flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
    numel: usize,
    contiguous: bool,
}

/// Row-major (C order) strides of `shape`.
pub fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

impl Layout {
    /// The row-major layout of `shape` from offset 0.
    pub fn row_major(shape: &[usize]) -> Layout {
        Layout::new(shape.to_vec(), row_major_strides(shape), 0)
    }

    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Layout {
        assert_eq!(shape.len(), strides.len(), "one stride per axis");
        let numel = shape.iter().product();
        // Axes of size 1 may carry any stride: they never move the index.
        let contiguous = numel == 0
            || shape
                .iter()
                .zip(&strides)
                .zip(row_major_strides(&shape))
                .all(|((&n, &s), want)| n == 1 || s == want);
        Layout {
            shape,
            strides,
            offset,
            numel,
            contiguous,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Row-major with no gaps: the elements are `storage[offset..offset + numel]`.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.contiguous
    }

    /// One past the largest storage index this layout reads (0 when empty).
    pub fn storage_end(&self) -> usize {
        if self.numel == 0 {
            return 0;
        }
        self.offset
            + self
                .shape
                .iter()
                .zip(&self.strides)
                .map(|(&n, &s)| (n - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// The elements in logical (row-major) order, copied out of `src`: the one generic
    /// stride walk. The innermost axis is copied as a run when its stride is 1.
    pub fn copy_strided<T: Copy>(&self, src: &[T]) -> Vec<T> {
        let mut out = Vec::with_capacity(self.numel);
        if self.numel == 0 {
            return out;
        }
        if self.contiguous {
            out.extend_from_slice(&src[self.offset..self.offset + self.numel]);
            return out;
        }
        let nd = self.shape.len();
        let (inner, inner_stride) = (self.shape[nd - 1], self.strides[nd - 1]);
        let mut index = vec![0usize; nd - 1];
        let mut base = self.offset;
        loop {
            if inner_stride == 1 {
                out.extend_from_slice(&src[base..base + inner]);
            } else {
                out.extend((0..inner).map(|k| src[base + k * inner_stride]));
            }
            // Odometer step over the outer axes, last fastest.
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return out;
                }
                d -= 1;
                index[d] += 1;
                base += self.strides[d];
                if index[d] < self.shape[d] {
                    break;
                }
                base -= self.strides[d] * self.shape[d];
                index[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec of `copy_strided`: compute each element's storage index from scratch.
    fn naive_copy(l: &Layout, src: &[i32]) -> Vec<i32> {
        let mut out = Vec::new();
        for flat in 0..l.numel() {
            let (mut rem, mut at) = (flat, l.offset());
            for d in (0..l.shape().len()).rev() {
                at += (rem % l.shape()[d]) * l.strides()[d];
                rem /= l.shape()[d];
            }
            out.push(src[at]);
        }
        out
    }

    #[test]
    fn strided_copy_matches_the_index_formula() {
        let src: Vec<i32> = (0..200).collect();
        let cases = [
            Layout::new(vec![3, 4], vec![1, 3], 0),       // transposed
            Layout::new(vec![2, 3, 2], vec![0, 5, 2], 7), // broadcast + gaps
            Layout::new(vec![4], vec![0], 3),             // one element repeated
            Layout::new(vec![2, 1, 3], vec![30, 99, 1], 1),
            Layout::new(vec![], vec![], 42), // a scalar
            Layout::new(vec![0, 3], vec![3, 1], 0),
        ];
        for l in cases {
            assert_eq!(l.copy_strided(&src), naive_copy(&l, &src), "{l:?}");
            assert!(l.storage_end() <= src.len());
        }
    }

    #[test]
    fn contiguity_ignores_axes_of_size_one() {
        assert!(Layout::row_major(&[2, 3]).is_contiguous());
        assert!(Layout::new(vec![2, 1, 3], vec![3, 7, 1], 5).is_contiguous());
        assert!(!Layout::new(vec![3, 2], vec![1, 3], 0).is_contiguous());
        assert!(!Layout::new(vec![2, 3], vec![0, 1], 0).is_contiguous());
    }
}
