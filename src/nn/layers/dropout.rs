//! `Dropout(rate)`: inverted dropout while training (survivors scaled by 1/(1-rate)),
//! the identity at inference, as in Keras.
//!
//! Masks: passed through unchanged, not read (as in Keras).

use super::dims::Dim;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::Result;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub rate: f32,
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const DROPOUT: LayerType = LayerType::of::<DropoutConfig>("Dropout");

impl LayerKind for DropoutConfig {
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn base_name(&self) -> &'static str {
        "dropout"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        // Rate 1 would divide the survivors by 0; above it or below 0 means nothing.
        if !(0.0..1.0).contains(&self.rate) {
            return Err(crate::error::Error::invalid(format!(
                "layer '{name}' (Dropout): rate must be in [0, 1), got {}",
                self.rate
            )));
        }
        Ok(inputs[0].to_vec())
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Dropout {
            name,
            rate: self.rate,
        }))
    }
}

pub struct Dropout {
    pub name: String,
    pub rate: f32,
}

impl Layer for Dropout {
    /// Keras: the mask passes through unchanged (see `Layer`).
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.cloned())
    }
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
        DropoutConfig {
            name: Some(self.name.clone()),
            rate: self.rate,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_outside_0_to_1_are_refused_naming_the_layer() {
        for rate in [2.0, 1.0, -0.1, f32::NAN] {
            let mut m = crate::nn::Graph::with_seed(&[4], 0);
            let e = m
                .add(DropoutConfig { name: None, rate })
                .map(|_| ())
                .expect_err("refused")
                .to_string();
            assert!(
                e.contains("layer 'dropout' (Dropout): rate must be in [0, 1)"),
                "{e}"
            );
        }
        let mut m = crate::nn::Graph::with_seed(&[4], 0);
        assert!(m
            .add(DropoutConfig {
                name: None,
                rate: 0.5
            })
            .is_ok());
    }
}
