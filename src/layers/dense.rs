//! `Dense`: `activation(x @ kernel + bias)`.
//!
//! # Shapes
//! input `[N, in]`, kernel `[in, units]` (Keras' layout), bias `[units]`, output `[N, units]`.

use super::{Activation, ForwardCtx, Initializer, Layer, LayerConfig, Param, Regularizer};
use crate::engine::{Rng, Var};
use crate::error::{Error, Result};
use crate::ops::matmul::linear;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseConfig {
    #[serde(default)]
    pub name: Option<String>,
    pub units: usize,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default = "yes")]
    pub use_bias: bool,
    #[serde(default)]
    pub kernel_initializer: Initializer,
    #[serde(default = "Initializer::zeros")]
    pub bias_initializer: Initializer,
    #[serde(default)]
    pub kernel_regularizer: Option<Regularizer>,
}

pub(super) fn yes() -> bool {
    true
}

impl DenseConfig {
    pub fn new(units: usize) -> DenseConfig {
        DenseConfig {
            name: None,
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
        }
    }
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    pub fn use_bias(mut self, b: bool) -> Self {
        self.use_bias = b;
        self
    }
    pub fn kernel_initializer(mut self, i: Initializer) -> Self {
        self.kernel_initializer = i;
        self
    }
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Self {
        self.kernel_regularizer = Some(r);
        self
    }
    pub fn name(mut self, n: &str) -> Self {
        self.name = Some(n.to_string());
        self
    }
}

pub struct Dense {
    pub name: String,
    pub cfg: DenseConfig,
    pub kernel: Var,       // [in, units]
    pub bias: Option<Var>, // [units]
}

pub(super) fn output_shape(c: &DenseConfig, name: &str, input: &[usize]) -> Result<Vec<usize>> {
    if input.len() != 1 {
        return Err(Error::shape(format!(
            "layer '{name}' (Dense) expects flat inputs [batch, features], got [batch, {}]; \
             add a Flatten layer before it",
            input
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if c.units == 0 {
        return Err(Error::invalid(format!(
            "layer '{name}' (Dense) has 0 units"
        )));
    }
    Ok(vec![c.units])
}

pub(super) fn build(c: &DenseConfig, name: String, input: &[usize], rng: &mut Rng) -> Dense {
    let kernel = Var::parameter(c.kernel_initializer.init(&[input[0], c.units], rng));
    let bias = c
        .use_bias
        .then(|| Var::parameter(c.bias_initializer.init(&[c.units], rng)));
    Dense {
        name,
        cfg: c.clone(),
        kernel,
        bias,
    }
}

impl Layer for Dense {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        let z = linear(x, &self.kernel, self.bias.as_ref())?; // [N, units]
        Ok(self.cfg.activation.apply_in(&z, ctx))
    }
    fn params(&self) -> Vec<Param> {
        super::kernel_and_bias(&self.name, &self.kernel, self.bias.as_ref())
    }
    fn config(&self) -> LayerConfig {
        let mut c = self.cfg.clone();
        c.name = Some(self.name.clone());
        LayerConfig::Dense(c)
    }
    fn output_activation(&self) -> Option<Activation> {
        Some(self.cfg.activation)
    }
    fn regularization(&self) -> Option<Var> {
        self.cfg.kernel_regularizer.map(|r| r.penalty(&self.kernel))
    }
}
