//! 2-D convolution (cross-correlation, as every framework computes it) on NCHW tensors.
//! TO BE IMPLEMENTED (see the helper task).

use super::Padding2d;
use crate::engine::Var;
use crate::error::Result;

/// Geometry of a convolution besides the tensors' shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub stride: (usize, usize),
    pub padding: Padding2d,
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Conv2dSpec {
            stride: (1, 1),
            padding: Padding2d::default(),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// `x [N, C, H, W]`, `w [OC, C/groups, KH, KW]`, `b [OC]` -> `[N, OC, OH, OW]`.
pub fn conv2d(_x: &Var, _w: &Var, _b: Option<&Var>, _spec: &Conv2dSpec) -> Result<Var> {
    todo!("conv2d")
}
