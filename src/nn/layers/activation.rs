//! The `Activation` enum (used by `Dense`, `Conv2D` and the `Activation` layer) and the
//! `Activation` layer itself.
//!
//! Masks: the layer passes its input's mask through unchanged (as in Keras).

use super::dims::Dim;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::Result;
use crate::ops::activation as act;
use serde::{Deserialize, Serialize};

/// In JSON configs an activation is its Keras name (`"relu"`); an unknown name is an
/// error that lists the known ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
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
    /// `x` if `x > 0` else `e^x - 1` (Keras' `"elu"`, alpha 1.0).
    Elu,
    /// `x Phi(x)`, the exact erf form (Keras' `"gelu"`, `approximate=False`).
    Gelu,
    /// `x sigmoid(x)` (Keras' `"swish"`; `"silu"` is accepted as an alias).
    Swish,
}

impl Activation {
    pub const ALL: [Activation; 10] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::LeakyRelu,
        Activation::Step,
        Activation::Elu,
        Activation::Gelu,
        Activation::Swish,
    ];

    /// Other names accepted in configs, with the activation each stands for.
    pub const ALIASES: [(&'static str, Activation); 1] = [("silu", Activation::Swish)];

    /// The activation with Keras' name `name` (`"relu"`, `"leaky_relu"`, ...).
    pub fn from_name(name: &str) -> Option<Activation> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .or_else(|| {
                Activation::ALIASES
                    .into_iter()
                    .find(|(alias, _)| *alias == name)
                    .map(|(_, a)| a)
            })
    }

    pub fn apply(&self, x: &Var) -> Var {
        match self {
            Activation::Linear => x.clone(),
            Activation::Relu => act::relu(x),
            Activation::Sigmoid => act::sigmoid(x),
            Activation::Tanh => act::tanh(x),
            Activation::Softmax => act::softmax(x),
            Activation::LeakyRelu => act::leaky_relu(x, 0.2),
            Activation::Step => act::step(x),
            Activation::Elu => act::elu(x, 1.0),
            Activation::Gelu => act::gelu(x),
            Activation::Swish => act::swish(x),
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
            Activation::Elu => "elu",
            Activation::Gelu => "gelu",
            Activation::Swish => "swish",
        }
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Activation::from_name(&name).ok_or_else(|| {
            let known: Vec<&str> = Activation::ALL
                .iter()
                .map(|a| a.name())
                .chain(Activation::ALIASES.iter().map(|(alias, _)| *alias))
                .collect();
            serde::de::Error::custom(format!(
                "unknown activation \"{name}\"; known: {}",
                known.join(", ")
            ))
        })
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

/// The registry line (see `layers::LAYER_TYPES`).
pub const ACTIVATION: LayerType = LayerType::of::<ActivationConfig>("Activation");

impl LayerKind for ActivationConfig {
    fn class_name(&self) -> &'static str {
        "Activation"
    }
    fn base_name(&self) -> &'static str {
        "activation"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, _name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Ok(inputs[0].to_vec())
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(ActivationLayer {
            name,
            activation: self.activation,
        }))
    }
}

impl Layer for ActivationLayer {
    /// Keras: the mask passes through unchanged (see `Layer`).
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.cloned())
    }
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
        ActivationConfig {
            name: Some(self.name.clone()),
            activation: self.activation,
        }
        .into()
    }
    fn output_activation(&self) -> Option<Activation> {
        Some(self.activation)
    }
    fn is_plain_relu(&self) -> bool {
        self.activation == Activation::Relu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_listed() {
        for a in Activation::ALL {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.name()));
            assert_eq!(serde_json::from_str::<Activation>(&json).unwrap(), a);
        }
        let msg = serde_json::from_str::<Activation>("\"relux\"")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unknown activation \"relux\""), "{msg}");
        assert!(msg.contains("relu, sigmoid"), "{msg}");
        assert!(msg.contains("elu, gelu, swish, silu"), "{msg}");
    }

    #[test]
    fn new_activations_parse_and_silu_is_swish() {
        for (name, a) in [
            ("elu", Activation::Elu),
            ("gelu", Activation::Gelu),
            ("swish", Activation::Swish),
            ("silu", Activation::Swish),
        ] {
            let parsed: Activation = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(parsed, a, "{name}");
        }
        // The alias is written back under the canonical name.
        assert_eq!(
            serde_json::to_string(&Activation::Swish).unwrap(),
            "\"swish\""
        );
        let cfg: ActivationConfig = serde_json::from_str(r#"{"activation": "silu"}"#).unwrap();
        assert_eq!(cfg.activation, Activation::Swish);
    }
}
