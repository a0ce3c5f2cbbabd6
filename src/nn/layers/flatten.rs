//! `Flatten`: `[N, d1, d2, ...] -> [N, d1*d2*...]`, a free view. An unknown (`None`)
//! axis gives an unknown size, which a following Dense layer refuses at build.
//!
//! Masks: dropped (Keras' `Flatten` does not support masking).

use super::dims::{numel, Dim};
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Var};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FlattenConfig {
    #[serde(default)]
    pub name: Option<String>,
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const FLATTEN: LayerType = LayerType::of::<FlattenConfig>("Flatten");

impl LayerKind for FlattenConfig {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn base_name(&self) -> &'static str {
        "flatten"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, _name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Ok(vec![Dim(numel(inputs[0]))])
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Flatten { name }))
    }
}

pub struct Flatten {
    pub name: String,
}

impl Layer for Flatten {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, _ctx: &mut ForwardCtx) -> Result<Var> {
        crate::ops::shape::flatten(x)
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        FlattenConfig {
            name: Some(self.name.clone()),
        }
        .into()
    }
}
