//! Sequence masks (Keras' `_keras_mask`): a `[N, T]` f32 tensor beside a `[N, T, ...]`
//! value, 1 for a real step and 0 for padding. Masks are data, not differentiable: these
//! are plain functions over tensors that the layers call to make, check, combine and
//! reverse them (see `nn::layers::Layer` for how a model carries them).
//!
//! Dimension letters: `N` batch, `T` steps.

use crate::engine::Tensor;
use crate::error::{Error, Result};

/// `Embedding(mask_zero=True)`'s mask: 1 where the id is not 0. `ids` is `[N, T]`.
pub fn nonzero_mask(ids: &Tensor) -> Tensor {
    let ids = ids.contiguous_f32();
    let m: Vec<f32> = ids.data().iter().map(|&v| f32::from(v != 0.0)).collect();
    Tensor::from_vec(m, ids.shape())
}

/// Errors unless `mask` is `[N, T]` for a value `x` of shape `[N, T, ...]`.
pub fn check_mask(what: &str, mask: &Tensor, x: &[usize]) -> Result<()> {
    match (mask.shape(), x) {
        ([n, t], [xn, xt, ..]) if n == xn && t == xt => Ok(()),
        (m, _) => Err(Error::shape(format!(
            "{what}: a mask must be [batch, steps] of its input {x:?}, got {m:?}"
        ))),
    }
}

/// The elementwise OR of two masks of one shape (Keras' merge layers).
pub fn or_masks(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(Error::shape(format!(
            "or_masks: masks of different shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    let (a, b) = (a.contiguous_f32(), b.contiguous_f32());
    let m: Vec<f32> = (a.data().iter().zip(b.data()))
        .map(|(&x, &y)| f32::from(x != 0.0 || y != 0.0))
        .collect();
    Ok(Tensor::from_vec(m, a.shape()))
}

/// A `[N, T]` mask with its steps in reverse order, as `Bidirectional` reverses its
/// input for the backward copy.
pub fn reverse_steps(mask: &Tensor) -> Result<Tensor> {
    let [n, t] = *mask.shape() else {
        return Err(Error::shape(format!(
            "reverse_steps: a mask must be [batch, steps], got {:?}",
            mask.shape()
        )));
    };
    let m = mask.contiguous_f32();
    let mut out = Vec::with_capacity(n * t);
    for row in m.data().chunks_exact(t.max(1)).take(n) {
        out.extend(row.iter().rev());
    }
    Ok(Tensor::from_vec(out, &[n, t]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_combine_reverse() {
        let ids = Tensor::from_vec(vec![3., 0., 5., 0., 0., 1.], &[2, 3]);
        let m = nonzero_mask(&ids);
        assert_eq!(m.data(), [1., 0., 1., 0., 0., 1.]);
        assert_eq!(reverse_steps(&m).unwrap().data(), [1., 0., 1., 1., 0., 0.]);
        let o = Tensor::from_vec(vec![0., 1., 0., 0., 0., 0.], &[2, 3]);
        assert_eq!(or_masks(&m, &o).unwrap().data(), [1., 1., 1., 0., 0., 1.]);
        assert!(or_masks(&m, &Tensor::zeros(&[3, 2])).is_err());
        assert!(check_mask("x", &m, &[2, 3, 4]).is_ok());
        let e = check_mask("layer 'd'", &m, &[2, 4, 4]).unwrap_err();
        assert!(e.to_string().contains("[2, 3]"), "{e}");
    }
}
