//! Keras' built-in losses (`KerasLoss`), by their Keras names and configs. The math (forward and backward) lives in `ops::loss`; this
//! module picks the op, and fuses the model's output activation when it can:
//! a softmax output trained with a cross-entropy uses the fused softmax-cross-entropy on
//! the logits, a sigmoid output with binary cross-entropy uses the fused sigmoid form.
//! The value is the same as computing from probabilities; the gradient is stabler.
//!
//! Label smoothing (the two categorical cross-entropies): the targets become
//! `t (1 - eps) + eps / K` over the K classes before the loss, as in Keras'
//! `CategoricalCrossentropy(label_smoothing=eps)` and PyTorch's
//! `CrossEntropyLoss(label_smoothing=eps)` (which also smooths class indices). Smoothing
//! only changes the target rows, so the fused softmax-cross-entropy stays exact: its
//! gradient is `softmax(z) - t_smoothed`. `evaluate` reports the smoothed loss too, as
//! Keras does (accuracy is unaffected).

use super::{Loss, Target};
use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::nn::layers::Activation;
use crate::ops::loss as ops;
use crate::ops::loss_more as more;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KerasLoss {
    /// Labels one-hot (or probabilities) `[N, C]`.
    CategoricalCrossentropy {
        from_logits: bool,
        /// In [0, 1); 0 = none. Absent in model.json files written before it existed.
        #[serde(default)]
        label_smoothing: f32,
    },
    /// Labels as class indices `[N]`.
    SparseCategoricalCrossentropy {
        from_logits: bool,
        /// In [0, 1); 0 = none.
        #[serde(default)]
        label_smoothing: f32,
    },
    BinaryCrossentropy {
        from_logits: bool,
    },
    MeanSquaredError,
    /// Quadratic within `delta` of the label, linear beyond (Keras' default delta 1).
    Huber {
        delta: f32,
    },
    /// `log(cosh(p - y))`.
    LogCosh,
    /// `Σ y log(y / p)` per row (labels and predictions distributions), mean over rows.
    KlDivergence,
    /// `max(1 - y p, 0)`, labels -1/1 (0/1 mapped to -1/1).
    Hinge,
    /// `max(1 - y p, 0)²`.
    SquaredHinge,
    /// One-hot labels `[N, C]`: `max(max_wrong p - p_true + 1, 0)`.
    CategoricalHinge,
}

impl KerasLoss {
    pub const NAMES: [&'static str; 10] = [
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "binary_crossentropy",
        "mse",
        "huber",
        "log_cosh",
        "kl_divergence",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
    ];

    /// Keras' string names (`"sparse_categorical_crossentropy"`, `"mse"`, ...).
    pub fn from_name(name: &str) -> Result<KerasLoss> {
        Ok(match name {
            "categorical_crossentropy" => KerasLoss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "sparse_categorical_crossentropy" => KerasLoss::SparseCategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "binary_crossentropy" => KerasLoss::BinaryCrossentropy { from_logits: false },
            "mse" | "mean_squared_error" => KerasLoss::MeanSquaredError,
            "huber" | "huber_loss" => KerasLoss::Huber { delta: 1.0 },
            "log_cosh" | "logcosh" => KerasLoss::LogCosh,
            "kl_divergence" | "kld" | "kullback_leibler_divergence" => KerasLoss::KlDivergence,
            "hinge" => KerasLoss::Hinge,
            "squared_hinge" => KerasLoss::SquaredHinge,
            "categorical_hinge" => KerasLoss::CategoricalHinge,
            other => {
                return Err(Error::invalid(format!(
                    "unknown loss '{other}'; known: {}",
                    KerasLoss::NAMES.join(", ")
                )))
            }
        })
    }

    /// The same loss with label smoothing `eps` (the categorical cross-entropies only).
    pub fn with_label_smoothing(self, eps: f32) -> Result<KerasLoss> {
        check_label_smoothing(eps)?;
        match self {
            KerasLoss::CategoricalCrossentropy { from_logits, .. } => {
                Ok(KerasLoss::CategoricalCrossentropy {
                    from_logits,
                    label_smoothing: eps,
                })
            }
            KerasLoss::SparseCategoricalCrossentropy { from_logits, .. } => {
                Ok(KerasLoss::SparseCategoricalCrossentropy {
                    from_logits,
                    label_smoothing: eps,
                })
            }
            other if eps == 0.0 => Ok(other),
            other => Err(Error::invalid(format!(
                "label smoothing applies to categorical_crossentropy and \
                 sparse_categorical_crossentropy, not {}",
                other.name()
            ))),
        }
    }

    /// The label smoothing in use (0 for the losses without it).
    pub fn label_smoothing(&self) -> f32 {
        match *self {
            KerasLoss::CategoricalCrossentropy {
                label_smoothing, ..
            }
            | KerasLoss::SparseCategoricalCrossentropy {
                label_smoothing, ..
            } => label_smoothing,
            _ => 0.0,
        }
    }
}

impl Loss for KerasLoss {
    fn name(&self) -> &str {
        match self {
            KerasLoss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            KerasLoss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            KerasLoss::BinaryCrossentropy { .. } => "binary_crossentropy",
            KerasLoss::MeanSquaredError => "mean_squared_error",
            KerasLoss::Huber { .. } => "huber",
            KerasLoss::LogCosh => "log_cosh",
            KerasLoss::KlDivergence => "kl_divergence",
            KerasLoss::Hinge => "hinge",
            KerasLoss::SquaredHinge => "squared_hinge",
            KerasLoss::CategoricalHinge => "categorical_hinge",
        }
    }

    /// The output activation this loss can fuse, if the model ends with it.
    fn fusable_activation(&self) -> Option<Activation> {
        match self {
            KerasLoss::CategoricalCrossentropy {
                from_logits: false, ..
            }
            | KerasLoss::SparseCategoricalCrossentropy {
                from_logits: false, ..
            } => Some(Activation::Softmax),
            KerasLoss::BinaryCrossentropy { from_logits: false } => Some(Activation::Sigmoid),
            _ => None,
        }
    }

    /// Checks the label shape against the loss kind before training starts, so that a
    /// one-hot/sparse mix-up is reported once, clearly.
    fn check_target(&self, target: &Target, outputs: &[usize]) -> Result<()> {
        let ls = target.tensor_for(self.name())?.shape();
        let n = ls.first().copied().unwrap_or(0);
        check_label_smoothing(self.label_smoothing())?;
        match self {
            KerasLoss::SparseCategoricalCrossentropy { .. } if ls.len() != 1 => {
                Err(Error::shape(format!(
                    "sparse_categorical_crossentropy expects class indices of shape [{n}], got \
                     labels {ls:?}; for one-hot labels use categorical_crossentropy"
                )))
            }
            KerasLoss::CategoricalCrossentropy { .. }
                if ls.len() != 2 || ls[1..] != outputs[..] =>
            {
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
    fn compute(&self, output: &Var, target: &Target, output_is_logits: bool) -> Result<Var> {
        self.compute_with(output, target, output_is_logits, None)
    }

    fn supports_sample_weights(&self) -> bool {
        true
    }

    /// `sum_i w_i loss_i / N` (Keras' `sum_over_batch_size`), through the `_weighted`
    /// form of each loss op.
    fn compute_weighted(
        &self,
        output: &Var,
        target: &Target,
        output_is_logits: bool,
        weights: &Tensor,
    ) -> Result<Var> {
        self.compute_with(output, target, output_is_logits, Some(weights))
    }

    fn keras(&self) -> Option<KerasLoss> {
        Some(*self)
    }
}

impl KerasLoss {
    /// The loss of a batch, each sample weighted by `weights` if given (`None`: the
    /// plain mean, bit for bit).
    fn compute_with(
        &self,
        output: &Var,
        target: &Target,
        output_is_logits: bool,
        weights: Option<&Tensor>,
    ) -> Result<Var> {
        let labels = target.tensor_for(self.name())?;
        match *self {
            KerasLoss::CategoricalCrossentropy {
                from_logits,
                label_smoothing,
            }
            | KerasLoss::SparseCategoricalCrossentropy {
                from_logits,
                label_smoothing,
            } => {
                let smoothed;
                let targets = if label_smoothing == 0.0 {
                    labels
                } else {
                    check_label_smoothing(label_smoothing)?;
                    let (n, c) = match output.shape().as_slice() {
                        [n, c] => (*n, *c),
                        s => {
                            return Err(Error::shape(format!(
                                "{}: expected predictions [batch, classes], got {s:?}",
                                self.name()
                            )))
                        }
                    };
                    smoothed = ops::smooth_labels(labels, n, c, label_smoothing)?;
                    &smoothed
                };
                if from_logits || output_is_logits {
                    ops::softmax_cross_entropy_weighted(output, targets, weights)
                } else {
                    ops::cross_entropy_weighted(output, targets, weights)
                }
            }
            KerasLoss::BinaryCrossentropy { from_logits } => {
                if from_logits || output_is_logits {
                    ops::sigmoid_binary_cross_entropy_weighted(output, labels, weights)
                } else {
                    ops::binary_cross_entropy_weighted(output, labels, weights)
                }
            }
            KerasLoss::MeanSquaredError => {
                ops::mean_squared_error_weighted(output, labels, weights)
            }
            KerasLoss::Huber { delta } => more::huber_weighted(output, labels, delta, weights),
            KerasLoss::LogCosh => more::log_cosh_weighted(output, labels, weights),
            KerasLoss::KlDivergence => more::kl_divergence_weighted(output, labels, weights),
            KerasLoss::Hinge => more::hinge_weighted(output, labels, weights),
            KerasLoss::SquaredHinge => more::squared_hinge_weighted(output, labels, weights),
            KerasLoss::CategoricalHinge => {
                more::categorical_hinge_weighted(output, labels, weights)
            }
        }
    }
}

/// Label smoothing must be a number in [0, 1): at 1 every target is uniform and the
/// labels are ignored.
fn check_label_smoothing(eps: f32) -> Result<()> {
    if (0.0..1.0).contains(&eps) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "label smoothing must be in [0, 1), got {eps}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPARSE: KerasLoss = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: true,
        label_smoothing: 0.0,
    };

    #[test]
    fn label_smoothing_matches_a_hand_computation() {
        // One row, logits [1, 2, 0.5], class 1, eps 0.1, K = 3:
        // targets [0.1/3, 0.9 + 0.1/3, 0.1/3]; loss = -sum t_i log softmax(z)_i.
        let z = [1.0f64, 2.0, 0.5];
        let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
        let t = [0.1 / 3.0, 0.9 + 0.1 / 3.0, 0.1 / 3.0];
        let want: f64 = -(0..3).map(|i| t[i] * (z[i] - lse)).sum::<f64>();
        let want_grad: Vec<f64> = (0..3).map(|i| (z[i] - lse).exp() - t[i]).collect();

        let logits = Var::parameter(Tensor::from_vec(vec![1.0, 2.0, 0.5], &[1, 3]));
        let sparse = SPARSE.with_label_smoothing(0.1).unwrap();
        let onehot = Tensor::from_vec(vec![0.0, 1.0, 0.0], &[1, 3]);
        let dense = KerasLoss::CategoricalCrossentropy {
            from_logits: true,
            label_smoothing: 0.1,
        };
        for (loss, labels) in [
            (sparse, Tensor::from_vec(vec![1.0], &[1])),
            (dense, onehot.clone()),
        ] {
            logits.zero_grad();
            let l = loss.compute(&logits, &labels.into(), false).unwrap();
            assert!((l.value().item() as f64 - want).abs() < 1e-6, "{loss:?}");
            l.backward();
            let g = logits.grad().unwrap();
            for (got, want) in g.to_f32_vec().iter().zip(&want_grad) {
                assert!((*got as f64 - want).abs() < 1e-6, "{loss:?}: {g:?}");
            }
        }
        // The unfused path (probabilities in) agrees with the fused one.
        let probs = crate::ops::activation::softmax(&logits);
        let unfused = KerasLoss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.1,
        }
        .compute(&probs, &onehot.into(), false)
        .unwrap();
        assert!((unfused.value().item() as f64 - want).abs() < 1e-5);
        // Smoothing raises the loss of a confident correct prediction above zero.
        let sure = Var::constant(Tensor::from_vec(vec![-20.0, 20.0, -20.0], &[1, 3]));
        let y = Target::from(Tensor::from_vec(vec![1.0], &[1]));
        assert!(SPARSE.compute(&sure, &y, false).unwrap().value().item() < 1e-6);
        assert!(sparse.compute(&sure, &y, false).unwrap().value().item() > 1.0);
    }

    #[test]
    fn label_smoothing_is_checked_and_old_configs_load() {
        for bad in [-0.1, 1.0, f32::NAN] {
            let e = SPARSE.with_label_smoothing(bad).unwrap_err().to_string();
            assert!(e.contains("label smoothing must be in [0, 1)"), "{e}");
        }
        let e = KerasLoss::MeanSquaredError
            .with_label_smoothing(0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not mean_squared_error"), "{e}");
        assert_eq!(
            KerasLoss::MeanSquaredError
                .with_label_smoothing(0.0)
                .unwrap(),
            KerasLoss::MeanSquaredError
        );
        // A hand-built loss with a bad value fails before training, in check_labels.
        let bad = KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 2.0,
        };
        assert!(bad.check_target(&Tensor::zeros(&[2]).into(), &[3]).is_err());

        // model.json written before label smoothing existed.
        let old: KerasLoss =
            serde_json::from_str(r#"{"sparse_categorical_crossentropy":{"from_logits":false}}"#)
                .unwrap();
        assert_eq!(
            old,
            KerasLoss::from_name("sparse_categorical_crossentropy").unwrap()
        );
        let new = SPARSE.with_label_smoothing(0.1).unwrap();
        let json = serde_json::to_string(&new).unwrap();
        assert_eq!(
            json,
            r#"{"sparse_categorical_crossentropy":{"from_logits":true,"label_smoothing":0.1}}"#
        );
        assert_eq!(serde_json::from_str::<KerasLoss>(&json).unwrap(), new);
    }

    #[test]
    fn every_keras_loss_weighs_samples_and_ones_change_nothing() {
        // Predictions in (0, 1) away from every kink, 3 rows of 4.
        let x = Tensor::from_vec(
            (0..12)
                .map(|i| 0.1 + 0.06 * i as f32 + 0.013 * (i % 3) as f32)
                .collect(),
            &[3, 4],
        );
        let rows = |v: &[f32]| Tensor::from_vec(v.to_vec(), &[3, 4]);
        let onehot = rows(&[1., 0., 0., 0., 0., 0., 1., 0., 0., 1., 0., 0.]);
        let sparse = Tensor::from_vec(vec![0., 2., 1.], &[3]);
        let probs = rows(&[
            0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25, 0.7, 0.1, 0.1, 0.1,
        ]);
        let w = Tensor::from_vec(vec![2.0, 0.0, 0.5], &[3]);
        for name in KerasLoss::NAMES {
            let loss = KerasLoss::from_name(name).unwrap();
            assert!(loss.supports_sample_weights());
            let y: Target = match name {
                "sparse_categorical_crossentropy" => sparse.clone().into(),
                "kl_divergence" => probs.clone().into(),
                _ => onehot.clone().into(),
            };
            let run = |weights: Option<&Tensor>| {
                let v = Var::parameter(x.clone());
                let l = match weights {
                    None => loss.compute(&v, &y, false),
                    Some(w) => loss.compute_weighted(&v, &y, false, w),
                }
                .unwrap();
                let value = l.value().item();
                l.backward();
                (value, v.grad().unwrap().to_f32_vec())
            };
            let (plain, g_plain) = run(None);
            let (ones, g_ones) = run(Some(&Tensor::ones(&[3])));
            assert_eq!(plain.to_bits(), ones.to_bits(), "{name}");
            assert_eq!(g_plain, g_ones, "{name}");
            // The weighted value is the mean of w_i times each row's own loss.
            let (weighted, g) = run(Some(&w));
            let mut want = 0.0f64;
            for i in 0..3 {
                let xi = Var::constant(x.slice_rows(i, i + 1));
                let yi = Target::from(y.as_tensor().unwrap().slice_rows(i, i + 1));
                want += w.to_f32_vec()[i] as f64
                    * loss.compute(&xi, &yi, false).unwrap().value().item() as f64;
            }
            assert!(
                (weighted as f64 - want / 3.0).abs() < 1e-5,
                "{name}: {weighted} vs {}",
                want / 3.0
            );
            assert!(
                g[4..8].iter().all(|&v| v == 0.0),
                "{name}: row of weight 0 moved"
            );
        }
        // A closure loss cannot weigh samples: a clear error, not silence.
        let half = crate::losses::from_fn("half_mse", |p: &Var, t: &Target| {
            crate::ops::loss::mean_squared_error(p, t.tensor_for("half_mse")?)
        });
        assert!(!half.supports_sample_weights());
        let e = half
            .compute_weighted(&Var::constant(x.clone()), &onehot.into(), false, &w)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'half_mse' does not support sample weights"),
            "{e}"
        );
    }
}
