//! Losses with Keras' names. The math (forward and backward) lives in `ops::loss`; this
//! module picks the op, and fuses the model's output activation when it can:
//! a softmax output trained with a cross-entropy uses the fused softmax-cross-entropy on
//! the logits, a sigmoid output with binary cross-entropy uses the fused sigmoid form.
//! The value is the same as computing from probabilities; the gradient is stabler.

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::layers::Activation;
use crate::ops::loss as ops;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Labels one-hot (or probabilities) `[N, C]`.
    CategoricalCrossentropy {
        from_logits: bool,
    },
    /// Labels as class indices `[N]`.
    SparseCategoricalCrossentropy {
        from_logits: bool,
    },
    BinaryCrossentropy {
        from_logits: bool,
    },
    MeanSquaredError,
}

impl Loss {
    pub const NAMES: [&'static str; 4] = [
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "binary_crossentropy",
        "mse",
    ];

    /// Keras' string names (`"sparse_categorical_crossentropy"`, `"mse"`, ...).
    pub fn from_name(name: &str) -> Result<Loss> {
        Ok(match name {
            "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits: false },
            "sparse_categorical_crossentropy" => {
                Loss::SparseCategoricalCrossentropy { from_logits: false }
            }
            "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits: false },
            "mse" | "mean_squared_error" => Loss::MeanSquaredError,
            other => {
                return Err(Error::invalid(format!(
                    "unknown loss '{other}'; known: {}",
                    Loss::NAMES.join(", ")
                )))
            }
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
        }
    }

    /// The output activation this loss can fuse, if the model ends with it.
    pub fn fusable_activation(&self) -> Option<Activation> {
        match self {
            Loss::CategoricalCrossentropy { from_logits: false }
            | Loss::SparseCategoricalCrossentropy { from_logits: false } => {
                Some(Activation::Softmax)
            }
            Loss::BinaryCrossentropy { from_logits: false } => Some(Activation::Sigmoid),
            _ => None,
        }
    }

    /// Checks the label shape against the loss kind before training starts, so that a
    /// one-hot/sparse mix-up is reported once, clearly.
    pub fn check_labels(&self, labels: &Tensor, outputs: &[usize]) -> Result<()> {
        let ls = labels.shape();
        let n = ls.first().copied().unwrap_or(0);
        match self {
            Loss::SparseCategoricalCrossentropy { .. } if ls.len() != 1 => {
                Err(Error::shape(format!(
                    "sparse_categorical_crossentropy expects class indices of shape [{n}], got \
                     labels {ls:?}; for one-hot labels use categorical_crossentropy"
                )))
            }
            Loss::CategoricalCrossentropy { .. } if ls.len() != 2 || ls[1..] != outputs[..] => {
                Err(Error::shape(format!(
                    "categorical_crossentropy expects one-hot labels [{n}, {}], got {ls:?}; \
                     for class indices use sparse_categorical_crossentropy or to_categorical",
                    outputs.iter().product::<usize>()
                )))
            }
            _ => Ok(()),
        }
    }

    /// The mean loss of a batch. `output_is_logits` says that the model returned the
    /// pre-activation of its fusable output activation.
    pub fn compute(&self, output: &Var, labels: &Tensor, output_is_logits: bool) -> Result<Var> {
        match *self {
            Loss::CategoricalCrossentropy { from_logits }
            | Loss::SparseCategoricalCrossentropy { from_logits } => {
                if from_logits || output_is_logits {
                    ops::softmax_cross_entropy(output, labels)
                } else {
                    ops::cross_entropy(output, labels)
                }
            }
            Loss::BinaryCrossentropy { from_logits } => {
                if from_logits || output_is_logits {
                    ops::sigmoid_binary_cross_entropy(output, labels)
                } else {
                    ops::binary_cross_entropy(output, labels)
                }
            }
            Loss::MeanSquaredError => ops::mean_squared_error(output, labels),
        }
    }
}
