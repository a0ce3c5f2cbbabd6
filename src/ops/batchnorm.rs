//! Batch normalization over the channel axis (axis 1 of `[N, C]` or `[N, C, H, W]`).
//! TO BE IMPLEMENTED (see the helper task).

use crate::engine::{Tensor, Var};
use crate::error::Result;

/// Training mode: normalizes with the batch's own mean and (biased) variance per channel.
/// Returns the output and the batch mean and variance (for the running statistics).
pub fn batch_norm_train(
    _x: &Var,
    _gamma: &Var,
    _beta: &Var,
    _eps: f32,
) -> Result<(Var, Tensor, Tensor)> {
    todo!("batch_norm_train")
}

/// Inference mode: normalizes with the given running mean and variance.
pub fn batch_norm_inference(
    _x: &Var,
    _gamma: &Var,
    _beta: &Var,
    _mean: &Tensor,
    _var: &Tensor,
    _eps: f32,
) -> Result<Var> {
    todo!("batch_norm_inference")
}
