//! Losses: the open [`Loss`] trait, what a loss compares the model's output with
//! ([`Target`]), Keras' built-in losses ([`KerasLoss`]) and the ways to bring your own
//! ([`from_fn`], a struct implementing [`Loss`], [`register`] for saved models).
//!
//! A loss maps a model output and its target to a scalar `Var` (the batch mean), built
//! from ops so that autodiff differentiates it. The target is whatever the loss needs: a
//! tensor of labels for the Keras losses (the easy default: `Target::from(tensor)`), or
//! any other value (boxes with a variable count per image, masks, a sequence length per
//! row) that the loss downcasts (`Target::new(value)`, `target.downcast_ref::<T>()`).
//!
//! Fusing: a loss may name the output activation it can take the pre-activation of
//! (`fusable_activation`: softmax for the cross-entropies, sigmoid for binary
//! cross-entropy). When the model's output layer ends in that activation and nothing
//! else reads it, the training forward returns the logits and `compute` is told so.
//!
//! Sample weights (`FitArgs::sample_weight`, `class_weight`): `compute_weighted` takes
//! one weight per sample and returns `sum_i w_i loss_i / N`, the mean over the batch of
//! the weighted per-sample losses (Keras' `sum_over_batch_size`; not divided by the sum
//! of the weights). Keras' losses implement it; a loss of your own that does not
//! (the default, and `from_fn`'s closures) makes `fit` fail with a clear error before
//! training rather than ignore the weights: a mean over the batch cannot be re-weighted
//! from outside.
//!
//! Saving: a Keras loss is saved in `model.json` by its config (`KerasLoss`); any other
//! loss is saved as `{"custom": NAME}` and a model holding one loads only after the
//! program has registered a loss under that name (`register`), as Keras' `load_model`
//! needs `custom_objects`: the error says so, naming the loss.
//!
//! ```
//! use nabla::losses::{self, KerasLoss, Loss, Target};
//! use nabla::{ops, Tensor, Var};
//! // A closure: half the mean squared error, on tensor targets.
//! let half_mse = losses::from_fn("half_mse", |pred: &Var, target: &Target| {
//!     let mse = ops::loss::mean_squared_error(pred, target.tensor_for("half_mse")?)?;
//!     Ok(ops::elementwise::scale(&mse, 0.5))
//! });
//! let pred = Var::constant(Tensor::from_vec(vec![1.0, 3.0], &[2, 1]));
//! let y = Target::from(Tensor::from_vec(vec![0.0, 1.0], &[2, 1]));
//! assert_eq!(half_mse.compute(&pred, &y, false).unwrap().value().item(), 1.25);
//! let sparse = KerasLoss::from_name("sparse_categorical_crossentropy").unwrap();
//! assert_eq!(sparse.name(), "sparse_categorical_crossentropy");
//! ```

mod custom;
mod keras;
mod target;

pub use custom::{from_fn, lookup_registered, register, FnLoss, LossConfig};
pub use keras::KerasLoss;
pub use target::Target;

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::nn::layers::Activation;
use std::sync::Arc;

/// A loss: the output of a model (or of any computation) and its target in, the mean
/// loss of the batch out, as a scalar `Var` to differentiate. See the module docs.
pub trait Loss {
    /// Keras' name for the built-in losses (`"sparse_categorical_crossentropy"`), the
    /// user's for others: logged, and the key a custom loss is saved and loaded under.
    fn name(&self) -> &str;

    /// The mean loss of a batch. `output_is_logits`: the model returned the
    /// pre-activation of this loss's `fusable_activation` (never set for a loss that
    /// names none).
    fn compute(&self, output: &Var, target: &Target, output_is_logits: bool) -> Result<Var>;

    /// Whether `compute_weighted` is implemented (`fit` checks it before training when
    /// sample or class weights are given). Default: no.
    fn supports_sample_weights(&self) -> bool {
        false
    }

    /// The loss of a batch with one weight per sample (`weights`: `[N]`, finite, >= 0):
    /// `sum_i w_i loss_i / N`, see the module docs. Default: an error naming the loss.
    fn compute_weighted(
        &self,
        _output: &Var,
        _target: &Target,
        _output_is_logits: bool,
        _weights: &Tensor,
    ) -> Result<Var> {
        Err(unweighted_loss(self.name()))
    }

    /// The output activation whose pre-activation this loss can take (fusing them into
    /// one stable op); `None` (the default) for a loss that takes the output as is.
    fn fusable_activation(&self) -> Option<Activation> {
        None
    }

    /// Checks a target against the model's output shape (without the batch axis) before
    /// training or evaluation starts, so that a mismatch is reported once, clearly.
    /// Default: accept anything (`compute` reports what it cannot use).
    fn check_target(&self, _target: &Target, _output_shape: &[usize]) -> Result<()> {
        Ok(())
    }

    /// The loss as a Keras config, if it is one of Keras' losses (then it is saved by
    /// that config); `None` for other losses (saved by name, see `register`).
    fn keras(&self) -> Option<KerasLoss> {
        None
    }
}

impl<L: Loss + ?Sized> Loss for Box<L> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn compute(&self, output: &Var, target: &Target, output_is_logits: bool) -> Result<Var> {
        (**self).compute(output, target, output_is_logits)
    }
    fn supports_sample_weights(&self) -> bool {
        (**self).supports_sample_weights()
    }
    fn compute_weighted(
        &self,
        output: &Var,
        target: &Target,
        output_is_logits: bool,
        weights: &Tensor,
    ) -> Result<Var> {
        (**self).compute_weighted(output, target, output_is_logits, weights)
    }
    fn fusable_activation(&self) -> Option<Activation> {
        (**self).fusable_activation()
    }
    fn check_target(&self, target: &Target, output_shape: &[usize]) -> Result<()> {
        (**self).check_target(target, output_shape)
    }
    fn keras(&self) -> Option<KerasLoss> {
        (**self).keras()
    }
}

impl<L: Loss + ?Sized> Loss for Arc<L> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn compute(&self, output: &Var, target: &Target, output_is_logits: bool) -> Result<Var> {
        (**self).compute(output, target, output_is_logits)
    }
    fn supports_sample_weights(&self) -> bool {
        (**self).supports_sample_weights()
    }
    fn compute_weighted(
        &self,
        output: &Var,
        target: &Target,
        output_is_logits: bool,
        weights: &Tensor,
    ) -> Result<Var> {
        (**self).compute_weighted(output, target, output_is_logits, weights)
    }
    fn fusable_activation(&self) -> Option<Activation> {
        (**self).fusable_activation()
    }
    fn check_target(&self, target: &Target, output_shape: &[usize]) -> Result<()> {
        (**self).check_target(target, output_shape)
    }
    fn keras(&self) -> Option<KerasLoss> {
        (**self).keras()
    }
}

/// The error of a loss that cannot weigh its samples.
pub fn unweighted_loss(name: &str) -> Error {
    Error::invalid(format!(
        "loss '{name}' does not support sample weights (class_weight / sample_weight): \
         implement Loss::supports_sample_weights and Loss::compute_weighted for it, or \
         train without weights"
    ))
}

impl std::fmt::Debug for dyn Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.keras() {
            Some(k) => write!(f, "{k:?}"),
            None => write!(f, "Loss({:?})", self.name()),
        }
    }
}
