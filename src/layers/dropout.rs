//! `Dropout(rate)`: inverted dropout while training (survivors scaled by 1/(1-rate)),
//! the identity at inference, as in Keras.

use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::engine::Var;
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub rate: f32,
}

pub struct Dropout {
    pub name: String,
    pub rate: f32,
}

impl Layer for Dropout {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        if !ctx.training {
            return Ok(x.clone());
        }
        Ok(crate::ops::dropout::dropout(x, self.rate, ctx.rng))
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        LayerConfig::Dropout(DropoutConfig {
            name: Some(self.name.clone()),
            rate: self.rate,
        })
    }
}
