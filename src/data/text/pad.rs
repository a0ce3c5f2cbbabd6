//! `pad_sequences`, as Keras' `keras.utils.pad_sequences`: sequences of different
//! lengths to one `[N, maxlen]` array.
//!
//! - `maxlen`: `None` = the longest sequence's length.
//! - `truncating`: a longer sequence loses its values at the start (`Pre`, the default)
//!   or the end (`Post`).
//! - `padding`: a shorter one gets `value` before (`Pre`, the default) or after
//!   (`Post`) its values.
//! - An empty sequence becomes a row of `value` (Keras skips it the same way).
//! - `maxlen = Some(0)` gives rows of length 0 (Keras, through `s[-0:]`, would try to
//!   fit the whole sequence into no room and fail).

use crate::engine::Tensor;

/// Where padding or truncation happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    /// At the start of the sequence (Keras' default for both).
    #[default]
    Pre,
    /// At the end.
    Post,
}

/// The sequences padded or truncated to one length, one `Vec` per sequence.
pub fn pad_sequences<T: Copy, S: AsRef<[T]>>(
    seqs: &[S],
    maxlen: Option<usize>,
    padding: Side,
    truncating: Side,
    value: T,
) -> Vec<Vec<T>> {
    let maxlen = maxlen.unwrap_or_else(|| seqs.iter().map(|s| s.as_ref().len()).max().unwrap_or(0));
    seqs.iter()
        .map(|s| {
            let s = s.as_ref();
            let kept = if s.len() <= maxlen {
                s
            } else {
                match truncating {
                    Side::Pre => &s[s.len() - maxlen..],
                    Side::Post => &s[..maxlen],
                }
            };
            let fill = std::iter::repeat_n(value, maxlen - kept.len());
            match padding {
                Side::Pre => fill.chain(kept.iter().copied()).collect(),
                Side::Post => kept.iter().copied().chain(fill).collect(),
            }
        })
        .collect()
}

/// [`pad_sequences`] of f32 values as a `[N, maxlen]` tensor (ids for an embedding are
/// whole numbers in f32, as `ops::index::embedding` reads them).
pub fn pad_sequences_tensor<S: AsRef<[f32]>>(
    seqs: &[S],
    maxlen: Option<usize>,
    padding: Side,
    truncating: Side,
    value: f32,
) -> Tensor {
    let rows = pad_sequences(seqs, maxlen, padding, truncating, value);
    let width = rows.first().map_or(maxlen.unwrap_or(0), Vec::len);
    Tensor::from_vec(rows.concat(), &[seqs.len(), width])
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::{Post, Pre};

    #[test]
    fn keras_documented_examples() {
        // keras.utils.pad_sequences([[1], [2, 3], [4, 5, 6]]) (the Keras docstring).
        let seqs = vec![vec![1], vec![2, 3], vec![4, 5, 6]];
        assert_eq!(
            pad_sequences(&seqs, None, Pre, Pre, 0),
            [[0, 0, 1], [0, 2, 3], [4, 5, 6]]
        );
        // value=-1
        assert_eq!(
            pad_sequences(&seqs, None, Pre, Pre, -1),
            [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]]
        );
        // padding='post'
        assert_eq!(
            pad_sequences(&seqs, None, Post, Pre, 0),
            [[1, 0, 0], [2, 3, 0], [4, 5, 6]]
        );
        // maxlen=2
        assert_eq!(
            pad_sequences(&seqs, Some(2), Pre, Pre, 0),
            [[0, 1], [2, 3], [5, 6]]
        );
    }

    #[test]
    fn truncating_post_empty_and_zero() {
        let seqs: Vec<Vec<i32>> = vec![vec![1, 2, 3], vec![], vec![4]];
        // Checked against keras 3.15: [[1, 2], [-1, -1], [4, -1]].
        assert_eq!(
            pad_sequences(&seqs, Some(2), Post, Post, -1),
            [[1, 2], [-1, -1], [4, -1]]
        );
        assert_eq!(
            pad_sequences(&seqs, Some(0), Pre, Pre, 0),
            vec![Vec::<i32>::new(); 3]
        );
        let none: Vec<Vec<i32>> = Vec::new();
        assert!(pad_sequences(&none, None, Pre, Pre, 0).is_empty());
        let t = pad_sequences_tensor(&[vec![1.0f32, 2.0], vec![3.0]], Some(3), Post, Pre, 0.0);
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.to_f32_vec(), [1.0, 2.0, 0.0, 3.0, 0.0, 0.0]);
        let empty = pad_sequences_tensor::<Vec<f32>>(&[], Some(4), Pre, Pre, 0.0);
        assert_eq!(empty.shape(), &[0, 4]);
    }
}
