//! `Flatten`: `[N, d1, d2, ...] -> [N, d1*d2*...]`, a free view.

use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::engine::Var;
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FlattenConfig {
    #[serde(default)]
    pub name: Option<String>,
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
        LayerConfig::Flatten(FlattenConfig {
            name: Some(self.name.clone()),
        })
    }
}
