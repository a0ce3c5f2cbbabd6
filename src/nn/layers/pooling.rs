//! Pooling layers: `MaxPooling2D`, `AveragePooling2D` (any pool size and stride,
//! overlapping windows too) and their global forms.
//!
//! # Shapes
//! `[N, C, H, W] -> [N, C, OH, OW]`; global: `[N, C, H, W] -> [N, C]`.
//! Keras' default stride is the pool size.
//!
//! Masks: dropped (Keras' pooling layers do not support masking; only
//! `GlobalAveragePooling1D` reads one, see `global_pooling1d.rs`).

use super::conv2d::{pair, window_axis, PaddingMode};
use super::dims::{batch_shape_str, Dim};
use super::registry::rank_is;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use crate::ops::pool::{self, Pool2dSpec};
use crate::ops::Padding2d;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool2dConfig {
    /// Max or average: given by the class name, not a JSON field.
    #[serde(skip)]
    pub kind: PoolKind,
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
    pub fn new(kind: PoolKind, pool_size: usize) -> Pool2dConfig {
        Pool2dConfig {
            kind,
            name: None,
            pool_size: (pool_size, pool_size),
            strides: None,
            padding: PaddingMode::Valid,
        }
    }
    /// `MaxPooling2D(pool_size)`.
    pub fn max(pool_size: usize) -> Pool2dConfig {
        Pool2dConfig::new(PoolKind::Max, pool_size)
    }
    /// `AveragePooling2D(pool_size)`.
    pub fn average(pool_size: usize) -> Pool2dConfig {
        Pool2dConfig::new(PoolKind::Average, pool_size)
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
    /// Max or average: given by the class name, not a JSON field.
    #[serde(skip)]
    pub kind: PoolKind,
    #[serde(default)]
    pub name: Option<String>,
}

impl GlobalPoolConfig {
    pub fn new(kind: PoolKind) -> GlobalPoolConfig {
        GlobalPoolConfig { kind, name: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolKind {
    #[default]
    Max,
    Average,
}

/// The registry lines (see `layers::LAYER_TYPES`): one config type, two classes each.
pub const MAX_POOLING_2D: LayerType = LayerType {
    class_name: "MaxPooling2D",
    parse: |v| {
        let c: Pool2dConfig = serde_json::from_value(v)?;
        Ok(Pool2dConfig {
            kind: PoolKind::Max,
            ..c
        }
        .into())
    },
};
pub const AVERAGE_POOLING_2D: LayerType = LayerType {
    class_name: "AveragePooling2D",
    parse: |v| {
        let c: Pool2dConfig = serde_json::from_value(v)?;
        Ok(Pool2dConfig {
            kind: PoolKind::Average,
            ..c
        }
        .into())
    },
};
pub const GLOBAL_AVERAGE_POOLING_2D: LayerType = LayerType {
    class_name: "GlobalAveragePooling2D",
    parse: |v| {
        let c: GlobalPoolConfig = serde_json::from_value(v)?;
        Ok(GlobalPoolConfig {
            kind: PoolKind::Average,
            ..c
        }
        .into())
    },
};
pub const GLOBAL_MAX_POOLING_2D: LayerType = LayerType {
    class_name: "GlobalMaxPooling2D",
    parse: |v| {
        let c: GlobalPoolConfig = serde_json::from_value(v)?;
        Ok(GlobalPoolConfig {
            kind: PoolKind::Max,
            ..c
        }
        .into())
    },
};

pub struct Pooling2D {
    pub name: String,
    /// `None` for the global forms.
    pub cfg: Option<Pool2dConfig>,
    pub kind: PoolKind,
}

const IMAGES: &str = "images [batch, channels, height, width]";

impl LayerKind for Pool2dConfig {
    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPooling2D",
            PoolKind::Average => "AveragePooling2D",
        }
    }
    fn base_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "max_pooling2d",
            PoolKind::Average => "average_pooling2d",
        }
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let d = rank_is(name, self.class_name(), inputs, 3, IMAGES)?;
        let (sh, sw) = self.stride();
        if self.pool_size.0 == 0 || self.pool_size.1 == 0 || sh == 0 || sw == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}': pool_size and strides must be positive"
            )));
        }
        let same = self.padding == PaddingMode::Same;
        let pad = |k: usize, s: usize| {
            move |n: usize| {
                if same {
                    Padding2d::same_1d(n, k, s, 1)
                } else {
                    (0, 0)
                }
            }
        };
        match (
            window_axis(d[1], pad(self.pool_size.0, sh), self.pool_size.0, sh, 1),
            window_axis(d[2], pad(self.pool_size.1, sw), self.pool_size.1, sw, 1),
        ) {
            (Ok(oh), Ok(ow)) => Ok(vec![d[0], oh, ow]),
            _ => Err(Error::shape(format!(
                "layer '{name}': pool {:?} does not fit a {} input",
                self.pool_size,
                batch_shape_str(d)
            ))),
        }
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Pooling2D {
            name,
            kind: self.kind,
            cfg: Some(self.clone()),
        }))
    }
}

impl LayerKind for GlobalPoolConfig {
    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPooling2D",
            PoolKind::Average => "GlobalAveragePooling2D",
        }
    }
    fn base_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "global_max_pooling2d",
            PoolKind::Average => "global_average_pooling2d",
        }
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let d = rank_is(name, self.class_name(), inputs, 3, IMAGES)?;
        Ok(vec![d[0]])
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Pooling2D {
            name,
            kind: self.kind,
            cfg: None,
        }))
    }
}

impl Layer for Pooling2D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        let Some(cfg) = &self.cfg else {
            return match self.kind {
                PoolKind::Max => pool::global_max_pool2d(x),
                PoolKind::Average => pool::global_avg_pool2d(x),
            };
        };
        // "same" padding from this batch's height and width.
        let shape = x.shape(); // [N, C, H, W]
        let spec = cfg.spec((shape[2], shape[3]));
        match self.kind {
            PoolKind::Max => pool::max_pool2d(x, &spec),
            PoolKind::Average => pool::avg_pool2d(x, &spec),
        }
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        let name = Some(self.name.clone());
        match &self.cfg {
            Some(c) => Pool2dConfig { name, ..c.clone() }.into(),
            None => GlobalPoolConfig {
                kind: self.kind,
                name,
            }
            .into(),
        }
    }
}
