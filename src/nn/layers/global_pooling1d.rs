//! `GlobalAveragePooling1D` and `GlobalMaxPooling1D`: pool a sequence over its time axis.
//!
//! # Shapes
//! `[N, T, F] -> [N, F]`, channels-last as in Keras (sequences keep features last, so a
//! Dense layer applies per step). `T` may be unknown (`None`): each batch may have its
//! own length.
//!
//! Masks (Keras 3, checked against it in tests/masking.rs): `GlobalAveragePooling1D`
//! reads its input's mask and averages over the real steps only; a sequence with no
//! real step gives zeros (Keras divides 0 by 0 and returns NaN there, which would make
//! the loss NaN). `GlobalMaxPooling1D` does not support masking in Keras 3 (its `call`
//! takes no mask): the max runs over every step, padded ones included, so an all-padded
//! sequence gives the max of its padding vectors, never -inf or NaN. Both output no
//! mask.

use super::dims::Dim;
use super::registry::rank_is;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param, PoolKind};
use crate::engine::{Rng, Tensor, Var};
use crate::error::Result;
use crate::ops::global_pool1d::{global_avg_pool1d, global_masked_avg_pool1d, global_max_pool1d};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GlobalPool1DConfig {
    /// Max or average: given by the class name, not a JSON field.
    #[serde(skip)]
    pub kind: PoolKind,
    #[serde(default)]
    pub name: Option<String>,
}

/// The registry lines (see `layers::LAYER_TYPES`).
pub const GLOBAL_AVERAGE_POOLING_1D: LayerType = LayerType {
    class_name: "GlobalAveragePooling1D",
    parse: |v| {
        let c: GlobalPool1DConfig = serde_json::from_value(v)?;
        Ok(GlobalPool1DConfig {
            kind: PoolKind::Average,
            ..c
        }
        .into())
    },
};
pub const GLOBAL_MAX_POOLING_1D: LayerType = LayerType {
    class_name: "GlobalMaxPooling1D",
    parse: |v| {
        let c: GlobalPool1DConfig = serde_json::from_value(v)?;
        Ok(GlobalPool1DConfig {
            kind: PoolKind::Max,
            ..c
        }
        .into())
    },
};

impl LayerKind for GlobalPool1DConfig {
    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPooling1D",
            PoolKind::Average => "GlobalAveragePooling1D",
        }
    }
    fn base_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "global_max_pooling1d",
            PoolKind::Average => "global_average_pooling1d",
        }
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let d = rank_is(
            name,
            self.class_name(),
            inputs,
            2,
            "sequences [batch, steps, features]",
        )?;
        Ok(vec![d[1]])
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(GlobalPooling1D {
            name,
            kind: self.kind,
        }))
    }
}

pub struct GlobalPooling1D {
    pub name: String,
    pub kind: PoolKind,
}

impl Layer for GlobalPooling1D {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_masked(x, None, ctx)
    }
    fn forward_masked(
        &mut self,
        x: &Var,
        mask: Option<&Tensor>,
        _ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        // x: [N, T, F], mask: [N, T] -> [N, F]
        match (self.kind, mask) {
            (PoolKind::Average, None) => global_avg_pool1d(x),
            (PoolKind::Average, Some(m)) => global_masked_avg_pool1d(x, m)
                .map_err(|e| e.context(&format!("layer '{}'", self.name))),
            // Keras 3's GlobalMaxPooling1D ignores the mask (see the module docs).
            (PoolKind::Max, _) => global_max_pool1d(x),
        }
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        GlobalPool1DConfig {
            kind: self.kind,
            name: Some(self.name.clone()),
        }
        .into()
    }
}
