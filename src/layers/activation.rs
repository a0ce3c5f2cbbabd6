//! The `Activation` enum (used by `Dense`, `Conv2D` and the `Activation` layer) and the
//! `Activation` layer itself.

use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::engine::{Rng, Var};
use crate::error::Result;
use crate::ops::activation as act;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    /// max(x, 0.2x): Keras' `"leaky_relu"` string activation uses slope 0.2.
    LeakyRelu,
    /// Heaviside step (the perceptron).
    Step,
}

impl Activation {
    pub fn apply(&self, x: &Var) -> Var {
        match self {
            Activation::Linear => x.clone(),
            Activation::Relu => act::relu(x),
            Activation::Sigmoid => act::sigmoid(x),
            Activation::Tanh => act::tanh(x),
            Activation::Softmax => act::softmax(x),
            Activation::LeakyRelu => act::leaky_relu(x, 0.2),
            Activation::Step => act::step(x),
        }
    }

    /// Applies the activation unless it is the model's output activation that the loss
    /// fuses (softmax or sigmoid) and the caller asked for logits.
    pub fn apply_in(&self, x: &Var, ctx: &ForwardCtx) -> Var {
        if ctx.output_logits && matches!(self, Activation::Softmax | Activation::Sigmoid) {
            x.clone()
        } else {
            self.apply(x)
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Step => "step",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub activation: Activation,
}

/// A layer that applies an activation function.
pub struct ActivationLayer {
    pub name: String,
    pub activation: Activation,
}

impl ActivationLayer {
    /// The config of an activation layer (what `Sequential::add` takes), as Keras'
    /// `Activation("relu")` reads.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(activation: Activation) -> ActivationConfig {
        ActivationConfig {
            name: None,
            activation,
        }
    }
}

impl Layer for ActivationLayer {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        Ok(self.activation.apply_in(x, ctx))
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        LayerConfig::Activation(ActivationConfig {
            name: Some(self.name.clone()),
            activation: self.activation,
        })
    }
    fn output_activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
}

pub(super) fn build(cfg: &ActivationConfig, name: String, _rng: &mut Rng) -> ActivationLayer {
    ActivationLayer {
        name,
        activation: cfg.activation,
    }
}
