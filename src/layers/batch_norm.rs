//! `BatchNormalization` over the channel axis (features of `[N, F]`, channels of NCHW).
//!
//! Training: normalizes with the batch's mean and variance and updates the moving
//! statistics, `moving = momentum * moving + (1 - momentum) * batch` (Keras: momentum
//! 0.99, epsilon 1e-3). Inference: normalizes with the moving statistics.
//! gamma and beta are trainable; the moving mean and variance are saved weights that
//! optimizers leave alone (Keras' "non-trainable params").

use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::batchnorm::{batch_norm_inference, batch_norm_train};
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
}

pub(super) fn output_shape(name: &str, input: &[usize]) -> Result<Vec<usize>> {
    if input.len() != 1 && input.len() != 3 {
        return Err(Error::shape(format!(
            "layer '{name}' (BatchNormalization) expects [batch, features] or [batch, C, H, W], \
             got {} dims after the batch",
            input.len()
        )));
    }
    Ok(input.to_vec())
}

pub(super) fn build(
    c: &BatchNormalizationConfig,
    name: String,
    input: &[usize],
) -> BatchNormalization {
    let ch = input[0];
    BatchNormalization {
        name,
        cfg: c.clone(),
        gamma: Var::parameter(Tensor::ones(&[ch])),
        beta: Var::parameter(Tensor::zeros(&[ch])),
        // Constants: no gradient flows into them; the layer writes them in place.
        moving_mean: Var::constant(Tensor::zeros(&[ch])),
        moving_variance: Var::constant(Tensor::ones(&[ch])),
    }
}

impl Layer for BatchNormalization {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        if ctx.training {
            let (y, mean, var) = batch_norm_train(x, &self.gamma, &self.beta, self.cfg.epsilon)?;
            let m = self.cfg.momentum;
            moving_average(&self.moving_mean, &mean, m)?;
            moving_average(&self.moving_variance, &var, m)?;
            Ok(y)
        } else {
            batch_norm_inference(
                x,
                &self.gamma,
                &self.beta,
                &self.moving_mean.value(),
                &self.moving_variance.value(),
                self.cfg.epsilon,
            )
        }
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
        LayerConfig::BatchNormalization(c)
    }
}
