//! Ops: the differentiable operations of the engine. Each op is a function over `Var`s
//! that runs a kernel (a plain function over slices) and records its backward.
//! Hot ops (matmul, conv2d, pooling, batch norm, LSTM, GRU) have dedicated backward kernels and a
//! naive reference implementation beside the fast one; cold elementwise ops list their
//! local derivatives in a table at the top of their file.

pub mod activation;
pub mod axes;
pub mod batchnorm;
pub mod batchnorm_sync;
pub mod bmm;
pub mod broadcast;
pub mod channel_scale;
pub mod conv2d;
pub mod conv2d_transpose;
pub mod dropout;
pub mod elementwise;
pub mod fast_math;
pub mod global_pool1d;
pub mod gru;
pub mod index;
pub mod loss;
pub mod loss_more;
pub mod lstm;
pub mod mask;
pub mod matmul;
pub mod parallel;
pub mod permute;
pub mod pool;
pub mod reduce;
pub mod rnn_driver;
pub mod rnn_pack;
pub mod rnn_recurrent;
pub mod select;
pub mod shape;
pub mod simple_rnn;
pub mod unary;
pub mod update;
pub mod upsample;

/// Zero padding of the two spatial axes of an NCHW tensor. "same" padding with an even
/// kernel or a stride > 1 is asymmetric (TensorFlow puts the extra row at the bottom and
/// the extra column at the right), so the four sides are separate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Padding2d {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Padding2d {
    pub fn uniform(p: usize) -> Padding2d {
        Padding2d {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }

    /// TensorFlow's "same" padding for one spatial axis: the output has `ceil(in / stride)`
    /// positions and the total padding is split with the extra cell after.
    pub fn same_1d(input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
        // Saturating, never wrapping or panicking: an absurd size gives a huge padding
        // that `window_out_len`'s checked sums then refuse as "does not fit".
        let eff = kernel
            .saturating_sub(1)
            .saturating_mul(dilation)
            .saturating_add(1);
        let out = input.div_ceil(stride.max(1));
        let total = out
            .saturating_sub(1)
            .saturating_mul(stride)
            .saturating_add(eff)
            .saturating_sub(input);
        (total / 2, total - total / 2)
    }

    /// "same" padding for both spatial axes.
    pub fn same(
        hw: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        dilation: (usize, usize),
    ) -> Padding2d {
        let (top, bottom) = Padding2d::same_1d(hw.0, kernel.0, stride.0, dilation.0);
        let (left, right) = Padding2d::same_1d(hw.1, kernel.1, stride.1, dilation.1);
        Padding2d {
            top,
            bottom,
            left,
            right,
        }
    }
}

/// Output length of a sliding window over one axis, or `None` if the window does not fit.
pub fn window_out_len(
    input: usize,
    pad_before: usize,
    pad_after: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Option<usize> {
    // Checked: an overflow (a dilation of 2^63) is "does not fit", never a wrapped size.
    let eff = kernel
        .checked_sub(1)?
        .checked_mul(dilation)?
        .checked_add(1)?;
    let padded = input.checked_add(pad_before)?.checked_add(pad_after)?;
    if stride == 0 || padded < eff {
        None
    } else {
        Some((padded - eff) / stride + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 28 wide, kernel 3, stride 1: 1 each side.
        assert_eq!(Padding2d::same_1d(28, 3, 1, 1), (1, 1));
        // Even kernel: extra after.
        assert_eq!(Padding2d::same_1d(28, 4, 1, 1), (1, 2));
        // Stride 2 on an even size with kernel 3: out 14, total 1 -> (0, 1).
        assert_eq!(Padding2d::same_1d(28, 3, 2, 1), (0, 1));
        assert_eq!(Padding2d::same_1d(7, 3, 2, 1), (1, 1));
        assert_eq!(window_out_len(28, 0, 1, 3, 2, 1), Some(14));
    }

    #[test]
    fn same_padding_of_absurd_sizes_saturates_and_then_does_not_fit() {
        // An empty axis, a zero stride and a dilation of 2^63 give a padding, not a panic
        // (a zero-sized input once reached here from a fuzzed model.json).
        assert_eq!(Padding2d::same_1d(0, 3, 1, 1), (1, 2));
        let _ = Padding2d::same_1d(5, 3, 0, 1);
        let (a, b) = Padding2d::same_1d(28, 3, 1, 1 << 63);
        assert_eq!(window_out_len(28, a, b, 3, 1, 1 << 63), None);
    }
}
