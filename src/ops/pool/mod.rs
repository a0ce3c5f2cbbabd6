//! Max and average pooling on NCHW tensors, and their global forms.
//! TO BE IMPLEMENTED (see the helper task).

use super::Padding2d;
use crate::engine::Var;
use crate::error::Result;

/// Window geometry of a pooling op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dSpec {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: Padding2d,
}

/// `[N, C, H, W] -> [N, C, OH, OW]`, the max of each window (padding never wins).
pub fn max_pool2d(_x: &Var, _spec: &Pool2dSpec) -> Result<Var> {
    todo!("max_pool2d")
}

/// `[N, C, H, W] -> [N, C, OH, OW]`, the mean of each window over its real (unpadded)
/// cells, as Keras/TensorFlow count them.
pub fn avg_pool2d(_x: &Var, _spec: &Pool2dSpec) -> Result<Var> {
    todo!("avg_pool2d")
}

/// `[N, C, H, W] -> [N, C]`.
pub fn global_avg_pool2d(_x: &Var) -> Result<Var> {
    todo!("global_avg_pool2d")
}

/// `[N, C, H, W] -> [N, C]`.
pub fn global_max_pool2d(_x: &Var) -> Result<Var> {
    todo!("global_max_pool2d")
}
