//! `BatchNormalization` over the channel axis (features of `[N, F]`, channels of NCHW).
//!
//! Training: normalizes with the batch's mean and variance and updates the moving
//! statistics, `moving = momentum * moving + (1 - momentum) * batch` (Keras: momentum
//! 0.99, epsilon 1e-3). Inference: normalizes with the moving statistics.
//! gamma and beta are trainable; the moving mean and variance are saved weights that
//! optimizers leave alone (Keras' "non-trainable params").
//!
//! Frozen (`Graph::set_trainable(.., false)`, Keras 2.x+ semantics): the layer runs in
//! inference mode even while the model trains, so it uses and does not update its
//! moving statistics (fine-tuning a base with batch statistics of a few small batches
//! would wreck the statistics it was trained with).
//!
//! Masks: passed through unchanged. Keras 3 also leaves masked steps out of the batch
//! statistics in training; nabla does not (its BatchNormalization normalizes channels
//! of `[N, F]` and images, not sequences).

use super::dims::{batch_shape_str, Dim};
use super::registry::needs_known;
use super::{ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::batchnorm::{
    batch_norm_inference_post, batch_norm_train_post, inference_affine, Post,
};
use crate::ops::update::moving_average;
use serde::{Deserialize, Serialize};

fn default_momentum() -> f32 {
    0.99
}
fn default_epsilon() -> f32 {
    1e-3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormalizationConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_momentum")]
    pub momentum: f32,
    #[serde(default = "default_epsilon")]
    pub epsilon: f32,
}

impl Default for BatchNormalizationConfig {
    fn default() -> Self {
        BatchNormalizationConfig {
            name: None,
            momentum: default_momentum(),
            epsilon: default_epsilon(),
        }
    }
}

pub struct BatchNormalization {
    pub name: String,
    pub cfg: BatchNormalizationConfig,
    pub gamma: Var,           // [C]
    pub beta: Var,            // [C]
    pub moving_mean: Var,     // [C], non-trainable
    pub moving_variance: Var, // [C], non-trainable
    /// Frozen: inference mode even in training (see the module docs).
    pub frozen: bool,
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const BATCH_NORMALIZATION: LayerType =
    LayerType::of::<BatchNormalizationConfig>("BatchNormalization");

impl LayerKind for BatchNormalizationConfig {
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }
    fn base_name(&self) -> &'static str {
        "batch_normalization"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        let input = inputs[0];
        if input.len() != 1 && input.len() != 3 {
            return Err(Error::shape(format!(
                "layer '{name}' (BatchNormalization) expects [batch, features] or [batch, C, H, \
                 W], got {}",
                batch_shape_str(input)
            )));
        }
        needs_known(
            name,
            "BatchNormalization",
            "number of channels",
            input[0],
            input,
        )?;
        Ok(input.to_vec())
    }
    fn build(&self, name: String, inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        let ch = inputs[0][0].get().expect("checked");
        Ok(Box::new(BatchNormalization {
            name,
            cfg: self.clone(),
            gamma: Var::parameter(Tensor::ones(&[ch])),
            beta: Var::parameter(Tensor::zeros(&[ch])),
            // Constants: no gradient flows into them; the layer writes them in place.
            moving_mean: Var::constant(Tensor::zeros(&[ch])),
            moving_variance: Var::constant(Tensor::ones(&[ch])),
            frozen: false,
        }))
    }
}

impl BatchNormalization {
    /// The forward with `post` (a fused ReLU) applied in the kernel's own passes.
    fn forward_post(&mut self, x: &Var, ctx: &mut ForwardCtx, post: Post) -> Result<Var> {
        if ctx.training && !self.frozen {
            let (y, mean, var) =
                batch_norm_train_post(x, &self.gamma, &self.beta, self.cfg.epsilon, post)?;
            let m = self.cfg.momentum;
            moving_average(&self.moving_mean, &mean, m)?;
            moving_average(&self.moving_variance, &var, m)?;
            Ok(y)
        } else {
            batch_norm_inference_post(
                x,
                &self.gamma,
                &self.beta,
                &self.moving_mean.value(),
                &self.moving_variance.value(),
                self.cfg.epsilon,
                post,
            )
        }
    }
}

impl Layer for BatchNormalization {
    /// Keras: the mask passes through unchanged (see `Layer`).
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.cloned())
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_post(x, ctx, Post::None)
    }
    fn fuses_relu(&self) -> bool {
        true
    }
    fn inference_affine(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        Some(inference_affine(
            &self.gamma.value().to_f32_vec(),
            &self.beta.value().to_f32_vec(),
            &self.moving_mean.value().to_f32_vec(),
            &self.moving_variance.value().to_f32_vec(),
            self.cfg.epsilon,
        ))
    }
    fn forward_relu(&mut self, xs: &[Var], ctx: &mut ForwardCtx) -> Result<Var> {
        match xs {
            [x] => self.forward_post(x, ctx, Post::Relu),
            _ => Ok(crate::ops::activation::relu(&self.forward_many(xs, ctx)?)),
        }
    }
    fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }
    fn params(&self) -> Vec<Param> {
        let p = |n: &str, v: &Var, trainable| Param {
            name: format!("{}/{}", self.name, n),
            var: v.clone(),
            trainable,
            buffer: !trainable,
        };
        vec![
            p("gamma", &self.gamma, true),
            p("beta", &self.beta, true),
            p("moving_mean", &self.moving_mean, false),
            p("moving_variance", &self.moving_variance, false),
        ]
    }
    fn config(&self) -> LayerConfig {
        let mut c = self.cfg.clone();
        c.name = Some(self.name.clone());
        c.into()
    }
}
