//! Pooling layers: `MaxPooling2D`, `AveragePooling2D` (any pool size and stride,
//! overlapping windows too) and their global forms.
//!
//! # Shapes
//! `[N, C, H, W] -> [N, C, OH, OW]`; global: `[N, C, H, W] -> [N, C]`.
//! Keras' default stride is the pool size.

use super::conv2d::{pair, PaddingMode};
use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::engine::Var;
use crate::error::{Error, Result};
use crate::ops::pool::{self, Pool2dSpec};
use crate::ops::{window_out_len, Padding2d};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool2dConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(with = "pair")]
    pub pool_size: (usize, usize),
    /// Defaults to `pool_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strides: Option<[usize; 2]>,
    #[serde(default)]
    pub padding: PaddingMode,
}

impl Pool2dConfig {
    pub fn new(pool_size: usize) -> Pool2dConfig {
        Pool2dConfig {
            name: None,
            pool_size: (pool_size, pool_size),
            strides: None,
            padding: PaddingMode::Valid,
        }
    }
    pub fn strides(mut self, s: usize) -> Self {
        self.strides = Some([s, s]);
        self
    }
    pub fn padding(mut self, p: PaddingMode) -> Self {
        self.padding = p;
        self
    }
    fn stride(&self) -> (usize, usize) {
        self.strides.map(|[a, b]| (a, b)).unwrap_or(self.pool_size)
    }
    pub fn spec(&self, hw: (usize, usize)) -> Pool2dSpec {
        let stride = self.stride();
        let padding = match self.padding {
            PaddingMode::Valid => Padding2d::default(),
            PaddingMode::Same => Padding2d::same(hw, self.pool_size, stride, (1, 1)),
        };
        Pool2dSpec {
            kernel: self.pool_size,
            stride,
            padding,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GlobalPoolConfig {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Average,
}

pub struct Pooling2D {
    pub name: String,
    pub kind: PoolKind,
    /// `None` for the global forms.
    pub cfg: Option<Pool2dConfig>,
    pub spec: Option<Pool2dSpec>,
}

fn image_dims<'a>(name: &str, class: &str, input: &'a [usize]) -> Result<&'a [usize]> {
    if input.len() != 3 {
        return Err(Error::shape(format!(
            "layer '{name}' ({class}) expects images [batch, channels, height, width], got \
             {} dims after the batch",
            input.len()
        )));
    }
    Ok(input)
}

pub(super) fn output_shape(c: &Pool2dConfig, name: &str, input: &[usize]) -> Result<Vec<usize>> {
    let d = image_dims(name, "pooling", input)?;
    let (sh, sw) = c.stride();
    if c.pool_size.0 == 0 || c.pool_size.1 == 0 || sh == 0 || sw == 0 {
        return Err(Error::invalid(format!(
            "layer '{name}': pool_size and strides must be positive"
        )));
    }
    let spec = c.spec((d[1], d[2]));
    let p = spec.padding;
    match (
        window_out_len(d[1], p.top, p.bottom, c.pool_size.0, sh, 1),
        window_out_len(d[2], p.left, p.right, c.pool_size.1, sw, 1),
    ) {
        (Some(oh), Some(ow)) => Ok(vec![d[0], oh, ow]),
        _ => Err(Error::shape(format!(
            "layer '{name}': pool {:?} does not fit a {}x{} input",
            c.pool_size, d[1], d[2]
        ))),
    }
}

pub(super) fn global_output_shape(name: &str, input: &[usize]) -> Result<Vec<usize>> {
    let d = image_dims(name, "global pooling", input)?;
    Ok(vec![d[0]])
}

pub(super) fn build(c: &Pool2dConfig, kind: PoolKind, name: String, input: &[usize]) -> Pooling2D {
    Pooling2D {
        name,
        kind,
        spec: Some(c.spec((input[1], input[2]))),
        cfg: Some(c.clone()),
    }
}

pub(super) fn build_global(kind: PoolKind, name: String) -> Pooling2D {
    Pooling2D {
        name,
        kind,
        cfg: None,
        spec: None,
    }
}

impl Layer for Pooling2D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        match (self.kind, &self.spec) {
            (PoolKind::Max, Some(s)) => pool::max_pool2d(x, s),
            (PoolKind::Average, Some(s)) => pool::avg_pool2d(x, s),
            (PoolKind::Max, None) => pool::global_max_pool2d(x),
            (PoolKind::Average, None) => pool::global_avg_pool2d(x),
        }
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        let name = Some(self.name.clone());
        match (self.kind, &self.cfg) {
            (PoolKind::Max, Some(c)) => {
                LayerConfig::MaxPooling2D(Pool2dConfig { name, ..c.clone() })
            }
            (PoolKind::Average, Some(c)) => {
                LayerConfig::AveragePooling2D(Pool2dConfig { name, ..c.clone() })
            }
            (PoolKind::Max, None) => LayerConfig::GlobalMaxPooling2D(GlobalPoolConfig { name }),
            (PoolKind::Average, None) => {
                LayerConfig::GlobalAveragePooling2D(GlobalPoolConfig { name })
            }
        }
    }
}
