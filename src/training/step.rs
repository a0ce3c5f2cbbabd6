//! One training step, written once: `Model::train_step` (Keras' `train_step`) is what
//! `fit`, the profiler (`profile_training`) and so `nabla bench` run for every batch:
//!
//! forward (training mode, logits where the loss fuses the output activation) ->
//! objective (weighted losses + weight penalties) -> [`minimize`]: NaN/inf check ->
//! zero the trainable gradients -> backward -> optimizer step.
//!
//! A user replaces it in `fit` with `FitArgs::train_step`, or writes their own loop
//! around [`minimize`] with as many models, losses and optimizers as they need (a GAN:
//! a generator and a discriminator, each with its optimizer), as in PyTorch.
//!
//! ```
//! use nabla::layers::{Activation, DenseConfig};
//! use nabla::training::step::minimize;
//! use nabla::{KerasLoss, Loss, Optimizer, Sequential, Tensor, Var};
//! let mut m = Sequential::with_seed(&[2], 0);
//! m.add(DenseConfig::new(1).activation(Activation::Linear)).unwrap();
//! let mut opt = Optimizer::sgd(0.1);
//! let x = Var::constant(Tensor::from_vec(vec![1.0, 2.0], &[1, 2]));
//! let y = Tensor::from_vec(vec![3.0], &[1, 1]).into();
//! let trainable: Vec<_> = m.params().into_iter().filter(|p| p.trainable).collect();
//! let mut last = f32::INFINITY;
//! for _ in 0..20 {
//!     let loss = KerasLoss::MeanSquaredError.compute(&m.forward(&x, true).unwrap(), &y, false).unwrap();
//!     last = minimize(loss, &trainable, &mut opt).unwrap().loss;
//! }
//! assert!(last < 1e-3);
//! ```

use super::model::Model;
use crate::engine::autograd::set_scope;
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::losses::Target;
use crate::nn::layers::Param;
use crate::optimizers::Optimizer;
use std::time::{Duration, Instant};

/// Where a step's time went (the profiler reports these).
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTimes {
    pub forward: Duration,
    /// The objective: losses and weight penalties.
    pub loss: Duration,
    /// Zeroing the gradients and the backward pass.
    pub backward: Duration,
    pub optimizer: Duration,
    /// Data-parallel training: exchanging the gradients with the other ranks.
    pub communication: Duration,
}

/// What a data-parallel step does between the backward pass and the optimizer step:
/// given the parameters (gradients filled) and the local loss, replace each gradient by
/// the average over the ranks and return the loss over the whole batch.
pub type GradientExchange<'a> = &'a mut dyn FnMut(&[Param], f32) -> Result<f32>;

/// What a training step reports to `fit` (for the logs and the metrics).
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// The objective minimized, logged as `loss`.
    pub loss: f32,
    /// Each output's own (unweighted) loss, logged as `OUTPUT_loss` with several outputs.
    pub output_losses: Vec<f32>,
    /// The model's outputs for the batch (logits where fused), for the metrics; a custom
    /// step may leave this empty (then no metric is counted for its batches).
    pub outputs: Vec<Tensor>,
    pub times: StepTimes,
}

/// What `minimize` did: the loss value and the time of its two phases.
#[derive(Debug, Clone, Copy)]
pub struct Minimized {
    pub loss: f32,
    pub backward: Duration,
    pub optimizer: Duration,
    /// The gradient exchange's time (zero in one process).
    pub communication: Duration,
}

/// One gradient update of `params` on `loss` (TF's `optimizer.minimize(loss, var_list)`):
/// checks that the loss is finite (an error saying what to try if not), zeroes the
/// parameters' gradients, runs the backward pass, and lets `optimizer` update them.
/// Other leaves the loss depends on receive gradients too but are not updated: zero them
/// before their own `minimize` (it does so), as in a GAN's discriminator step.
pub fn minimize(loss: Var, params: &[Param], optimizer: &mut Optimizer) -> Result<Minimized> {
    minimize_with(loss, params, optimizer, None)
}

/// `minimize` with the gradients exchanged between the backward pass and the update
/// (data-parallel training, `training/data_parallel.rs`); the loss returned is the one
/// the exchange returns.
pub fn minimize_with(
    loss: Var,
    params: &[Param],
    optimizer: &mut Optimizer,
    exchange: Option<GradientExchange>,
) -> Result<Minimized> {
    let mut value = loss.value().item();
    if !value.is_finite() {
        return Err(Error::Numerical(format!(
            "the loss became {value}; try a lower learning rate (now {:e}) or check the \
             inputs for NaN",
            optimizer.learning_rate()
        )));
    }
    let t_backward = Instant::now();
    for p in params {
        p.var.zero_grad();
    }
    loss.backward();
    // The graph's saved tensors go now, so the update finds the weights unshared.
    drop(loss);
    let t_exchange = Instant::now();
    if let Some(exchange) = exchange {
        value = exchange(params, value)?;
    }
    let t_optimizer = Instant::now();
    optimizer.step(params);
    Ok(Minimized {
        loss: value,
        backward: t_exchange - t_backward,
        optimizer: t_optimizer.elapsed(),
        communication: t_optimizer - t_exchange,
    })
}

impl Model {
    /// One training step of a compiled model on one batch (one tensor per input, one
    /// target per output): see the module docs. `fit`, the profiler and `nabla bench`
    /// run exactly this.
    pub fn train_step(&mut self, xs: &[Tensor], ys: &[Target]) -> Result<StepOutput> {
        self.train_step_weighted(xs, ys, None)
    }

    /// `train_step` with one weight per sample of the batch (`[N]`, what `fit` passes
    /// for `class_weight`/`sample_weight`): each output's loss is
    /// `Loss::compute_weighted`, `sum_i w_i loss_i / N`. `None` is `train_step`.
    pub fn train_step_weighted(
        &mut self,
        xs: &[Tensor],
        ys: &[Target],
        weights: Option<&Tensor>,
    ) -> Result<StepOutput> {
        self.train_step_exchanging(xs, ys, weights, None)
    }

    /// `train_step_weighted` with the gradients passed through `exchange` before the
    /// update (data-parallel training: `fit` with `FitArgs::distributed`).
    pub fn train_step_exchanging(
        &mut self,
        xs: &[Tensor],
        ys: &[Target],
        weights: Option<&Tensor>,
        exchange: Option<GradientExchange>,
    ) -> Result<StepOutput> {
        let t_forward = Instant::now();
        let fused = self.fused_outputs();
        let xs: Vec<Var> = xs.iter().cloned().map(Var::constant).collect();
        let outs = self.run(&xs, true, &fused, None, true, None)?;
        let t_loss = Instant::now();
        // While profiling, the loss's ops get their own scope (after the layers').
        let prev_scope = crate::nn::layer_timing::is_profiling()
            .then(|| set_scope(self.layers().len() as u32 + 1));
        let objective = self.training_objective_weighted(&outs, ys, &fused, weights);
        if let Some(prev) = prev_scope {
            set_scope(prev);
        }
        let (loss, output_losses) = objective?;
        let t_minimize = Instant::now();
        let trainable: Vec<Param> = self.params().into_iter().filter(|p| p.trainable).collect();
        let optimizer = &mut self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::invalid("train_step: the model is not compiled"))?
            .optimizer;
        let done = minimize_with(loss, &trainable, optimizer, exchange)?;
        Ok(StepOutput {
            loss: done.loss,
            output_losses,
            outputs: outs.iter().map(|o| o.value()).collect(),
            times: StepTimes {
                forward: t_loss - t_forward,
                loss: t_minimize - t_loss,
                backward: done.backward,
                optimizer: done.optimizer,
                communication: done.communication,
            },
        })
    }
}
