//! `Dense`: `activation(x @ kernel + bias)` over the last axis, as in Keras.
//!
//! # Shapes
//! input `[N, in]` or a sequence `[N, T, in]` (channels-last, as Keras keeps sequences;
//! every step gets the same weights), kernel `[in, units]` (Keras' layout), bias
//! `[units]`, output `[N, units]` or `[N, T, units]`. `T` may be unknown (`None`); `in`
//! must be known. Images (`[N, C, H, W]`, channels-first) need a Flatten first: their last
//! axis is the width, not Keras' channels.
//!
//! Masks: passed through unchanged (Keras' `Dense` supports masking), not read.

use super::dims::Dim;
use super::registry::needs_known;
use super::{Activation, ForwardCtx, Initializer, Layer, LayerConfig, LayerKind, LayerType};
use super::{Param, Regularizer};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::matmul::linear;
use crate::ops::shape::reshape;
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

/// The registry line (see `layers::LAYER_TYPES`).
pub const DENSE: LayerType = LayerType::of::<DenseConfig>("Dense");

impl LayerKind for DenseConfig {
    fn class_name(&self) -> &'static str {
        "Dense"
    }
    fn base_name(&self) -> &'static str {
        "dense"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let input = inputs[0];
        // Images are channels-first here, so their last axis is the width, not Keras'
        // channels: a Dense there is almost surely a missing Flatten.
        if input.is_empty() || input.len() > 2 {
            return Err(Error::shape(format!(
                "layer '{name}' (Dense) expects flat inputs [batch, features] or sequences \
                 [batch, steps, features], got {}; add a Flatten layer before it",
                super::dims::batch_shape_str(input)
            )));
        }
        let (&features, rest) = input.split_last().expect("not empty");
        needs_known(
            name,
            "Dense",
            "number of input features (last axis)",
            features,
            input,
        )?;
        if self.units == 0 {
            return Err(Error::invalid(format!(
                "layer '{name}' (Dense) has 0 units"
            )));
        }
        let mut out = rest.to_vec();
        out.push(Dim::known(self.units));
        Ok(out)
    }
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let features = inputs[0].last().and_then(|d| d.get()).expect("checked");
        super::limits::check_weights(&name, "Dense", &[features, self.units])?;
        let kernel = Var::parameter(self.kernel_initializer.init(&[features, self.units], rng));
        let bias = self
            .use_bias
            .then(|| Var::parameter(self.bias_initializer.init(&[self.units], rng)));
        Ok(Box::new(Dense {
            name,
            cfg: self.clone(),
            kernel,
            bias,
        }))
    }
    fn flops(&self, inputs: &[&[usize]], _output: &[usize]) -> f64 {
        let input = inputs[0];
        let inner = *input.last().unwrap_or(&1);
        let rows: usize = input[..input.len().saturating_sub(1)].iter().product();
        2.0 * (rows * inner * self.units) as f64
    }
}

impl Layer for Dense {
    /// Keras: the mask passes through unchanged (see `Layer`).
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.cloned())
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        let shape = x.shape(); // [N, ..., in]
        let z = if shape.len() == 2 {
            linear(x, &self.kernel, self.bias.as_ref())? // [N, units]
        } else {
            // The leading axes as rows of one matrix (a free view each way).
            let features = *shape.last().expect("rank checked by the model");
            let rows: usize = shape[..shape.len() - 1].iter().product();
            let flat = reshape(x, &[rows, features])?;
            let z = linear(&flat, &self.kernel, self.bias.as_ref())?; // [rows, units]
            let mut out = shape[..shape.len() - 1].to_vec();
            out.push(self.cfg.units);
            reshape(&z, &out)? // [N, ..., units]
        };
        Ok(self.cfg.activation.apply_in(&z, ctx))
    }
    fn params(&self) -> Vec<Param> {
        super::kernel_and_bias(&self.name, &self.kernel, self.bias.as_ref())
    }
    fn config(&self) -> LayerConfig {
        let mut c = self.cfg.clone();
        c.name = Some(self.name.clone());
        c.into()
    }
    fn output_activation(&self) -> Option<Activation> {
        Some(self.cfg.activation)
    }
    fn regularization(&self) -> Option<Var> {
        self.cfg.kernel_regularizer.map(|r| r.penalty(&self.kernel))
    }
}
