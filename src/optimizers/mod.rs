//! Optimizers as "Deep Learning from Scratch" defines them (and Keras names them):
//! SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, and AdamW (decoupled weight decay).
//! Each update rule is a plain function over slices in its own file; `Optimizer` holds
//! the hyper-parameters and the per-parameter state, keyed by the parameter's name so
//! the state can be saved beside the weights and reloaded.

pub mod adagrad;
pub mod adam;
pub mod momentum;
pub mod nesterov;
pub mod rmsprop;
pub mod sgd;

use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::layers::Param;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The update rule and its hyper-parameters (defaults are the book's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Momentum {
        momentum: f32,
    },
    Nesterov {
        momentum: f32,
    },
    Adagrad,
    Rmsprop {
        decay: f32,
    },
    Adam {
        beta_1: f32,
        beta_2: f32,
    },
    Adamw {
        beta_1: f32,
        beta_2: f32,
        weight_decay: f32,
    },
}

impl OptimizerKind {
    /// Number of state buffers per parameter.
    fn slots(&self) -> usize {
        match self {
            OptimizerKind::Sgd => 0,
            OptimizerKind::Momentum { .. }
            | OptimizerKind::Nesterov { .. }
            | OptimizerKind::Adagrad
            | OptimizerKind::Rmsprop { .. } => 1,
            OptimizerKind::Adam { .. } | OptimizerKind::Adamw { .. } => 2,
        }
    }
}

impl std::fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptimizerKind::Sgd => write!(f, "sgd"),
            OptimizerKind::Momentum { momentum } => write!(f, "momentum({momentum})"),
            OptimizerKind::Nesterov { momentum } => write!(f, "nesterov({momentum})"),
            OptimizerKind::Adagrad => write!(f, "adagrad"),
            OptimizerKind::Rmsprop { decay } => write!(f, "rmsprop(decay={decay})"),
            OptimizerKind::Adam { beta_1, beta_2 } => write!(f, "adam({beta_1}, {beta_2})"),
            OptimizerKind::Adamw {
                beta_1,
                beta_2,
                weight_decay,
            } => write!(f, "adamw({beta_1}, {beta_2}, weight_decay={weight_decay})"),
        }
    }
}

/// Serializable description of an optimizer (kind + learning rate + epsilon).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    #[serde(flatten)]
    pub kind: OptimizerKind,
    pub learning_rate: f32,
    pub epsilon: f32,
}

pub struct Optimizer {
    pub kind: OptimizerKind,
    learning_rate: f32,
    pub epsilon: f32,
    /// Steps taken (Adam's `t`).
    iterations: u64,
    state: BTreeMap<String, Vec<Vec<f32>>>,
}

impl Optimizer {
    pub const NAMES: [&'static str; 7] = [
        "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
    ];

    pub fn new(kind: OptimizerKind, learning_rate: f32) -> Optimizer {
        Optimizer {
            kind,
            learning_rate,
            epsilon: 1e-7,
            iterations: 0,
            state: BTreeMap::new(),
        }
    }
    pub fn sgd(lr: f32) -> Optimizer {
        Optimizer::new(OptimizerKind::Sgd, lr)
    }
    pub fn momentum(lr: f32, momentum: f32) -> Optimizer {
        Optimizer::new(OptimizerKind::Momentum { momentum }, lr)
    }
    pub fn nesterov(lr: f32, momentum: f32) -> Optimizer {
        Optimizer::new(OptimizerKind::Nesterov { momentum }, lr)
    }
    pub fn adagrad(lr: f32) -> Optimizer {
        Optimizer::new(OptimizerKind::Adagrad, lr)
    }
    pub fn rmsprop(lr: f32) -> Optimizer {
        Optimizer::new(OptimizerKind::Rmsprop { decay: 0.99 }, lr)
    }
    pub fn adam(lr: f32) -> Optimizer {
        Optimizer::new(
            OptimizerKind::Adam {
                beta_1: 0.9,
                beta_2: 0.999,
            },
            lr,
        )
    }
    pub fn adamw(lr: f32, weight_decay: f32) -> Optimizer {
        Optimizer::new(
            OptimizerKind::Adamw {
                beta_1: 0.9,
                beta_2: 0.999,
                weight_decay,
            },
            lr,
        )
    }

    /// By name with the book's defaults; `lr` overrides the default learning rate.
    pub fn from_name(name: &str, lr: Option<f32>) -> Result<Optimizer> {
        let lr_or = |d: f32| lr.unwrap_or(d);
        Ok(match name.to_ascii_lowercase().as_str() {
            "sgd" => Optimizer::sgd(lr_or(0.01)),
            "momentum" => Optimizer::momentum(lr_or(0.01), 0.9),
            "nesterov" => Optimizer::nesterov(lr_or(0.01), 0.9),
            "adagrad" => Optimizer::adagrad(lr_or(0.01)),
            "rmsprop" => Optimizer::rmsprop(lr_or(0.01)),
            "adam" => Optimizer::adam(lr_or(0.001)),
            "adamw" => Optimizer::adamw(lr_or(0.001), 0.01),
            other => {
                return Err(Error::invalid(format!(
                    "unknown optimizer '{other}'; known: {}",
                    Optimizer::NAMES.join(", ")
                )))
            }
        })
    }

    pub fn from_config(c: &OptimizerConfig) -> Optimizer {
        let mut o = Optimizer::new(c.kind, c.learning_rate);
        o.epsilon = c.epsilon;
        o
    }

    pub fn config(&self) -> OptimizerConfig {
        OptimizerConfig {
            kind: self.kind,
            learning_rate: self.learning_rate,
            epsilon: self.epsilon,
        }
    }

    pub fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    /// Changes the learning rate from the next step on (schedules, callbacks).
    pub fn set_learning_rate(&mut self, lr: f32) {
        self.learning_rate = lr;
    }

    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// One update of every trainable parameter that has a gradient.
    pub fn step(&mut self, params: &[Param]) {
        self.iterations += 1;
        let (lr, eps, t) = (self.learning_rate, self.epsilon, self.iterations);
        let nslots = self.kind.slots();
        for p in params.iter().filter(|p| p.trainable) {
            let Some(g) = p.var.grad() else { continue };
            let slots = self
                .state
                .entry(p.name.clone())
                .or_insert_with(|| vec![vec![0.0; g.numel()]; nslots]);
            let g = g.data();
            p.var.update(|w| {
                let w = w.data_mut();
                match (self.kind, slots.as_mut_slice()) {
                    (OptimizerKind::Sgd, _) => sgd::update(w, g, lr),
                    (OptimizerKind::Momentum { momentum }, [v]) => {
                        momentum::update(w, g, v, lr, momentum)
                    }
                    (OptimizerKind::Nesterov { momentum }, [v]) => {
                        nesterov::update(w, g, v, lr, momentum)
                    }
                    (OptimizerKind::Adagrad, [h]) => adagrad::update(w, g, h, lr, eps),
                    (OptimizerKind::Rmsprop { decay }, [h]) => {
                        rmsprop::update(w, g, h, lr, decay, eps)
                    }
                    (OptimizerKind::Adam { beta_1, beta_2 }, [m, v]) => {
                        adam::update(w, g, m, v, lr, beta_1, beta_2, eps, t, 0.0)
                    }
                    (
                        OptimizerKind::Adamw {
                            beta_1,
                            beta_2,
                            weight_decay,
                        },
                        [m, v],
                    ) => adam::update(w, g, m, v, lr, beta_1, beta_2, eps, t, weight_decay),
                    _ => unreachable!("slot count fixed by kind"),
                }
            });
        }
    }

    /// The state as named tensors: `optimizer/<param>/<slot>` and `optimizer/iterations`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "optimizer/iterations".to_string(),
            Tensor::from_vec(vec![self.iterations as f32], &[1]),
        )];
        for (name, slots) in &self.state {
            for (i, s) in slots.iter().enumerate() {
                out.push((
                    format!("optimizer/{name}/{i}"),
                    Tensor::from_vec(s.clone(), &[s.len()]),
                ));
            }
        }
        out
    }

    /// Restores what `state` returned.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) -> Result<()> {
        let nslots = self.kind.slots();
        self.state.clear();
        for (name, t) in tensors {
            let Some(rest) = name.strip_prefix("optimizer/") else {
                continue;
            };
            if rest == "iterations" {
                self.iterations = t.data().first().copied().unwrap_or(0.0) as u64;
                continue;
            }
            let (param, slot) = rest
                .rsplit_once('/')
                .and_then(|(p, s)| s.parse::<usize>().ok().map(|s| (p, s)))
                .ok_or_else(|| Error::invalid(format!("bad optimizer state entry '{name}'")))?;
            if slot >= nslots {
                return Err(Error::invalid(format!(
                    "optimizer state '{name}' has slot {slot}, but this optimizer has {nslots}"
                )));
            }
            let slots = self
                .state
                .entry(param.to_string())
                .or_insert_with(|| vec![Vec::new(); nslots]);
            slots[slot] = t.data().to_vec();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Var;

    fn param(w: Vec<f32>, g: Vec<f32>) -> Param {
        let n = w.len();
        let var = Var::parameter(Tensor::from_vec(w, &[n]));
        // Give it a gradient by back-propagating sum(w * g).
        let gt = Var::constant(Tensor::from_vec(g, &[n]));
        let y = crate::ops::elementwise::sum(&crate::ops::elementwise::mul(&var, &gt).unwrap());
        y.backward();
        Param {
            name: "p".into(),
            var,
            trainable: true,
            buffer: false,
        }
    }

    #[test]
    fn adam_first_step_matches_hand_computation() {
        // t=1: m = 0.1 g, v = 0.001 g^2, lr_t = lr * sqrt(0.001) / 0.1
        // => step = lr_t * 0.1 g / (sqrt(0.001) |g| + eps) ~= lr * sign(g).
        let p = param(vec![1.0, -2.0], vec![0.5, -4.0]);
        let mut opt = Optimizer::adam(0.01);
        opt.step(std::slice::from_ref(&p));
        let w = p.var.value();
        assert!((w.data()[0] - 0.99).abs() < 1e-5, "{:?}", w);
        assert!((w.data()[1] - -1.99).abs() < 1e-5, "{:?}", w);
    }

    #[test]
    fn sgd_momentum_nesterov_follow_the_book() {
        let p = param(vec![1.0], vec![2.0]);
        Optimizer::sgd(0.1).step(std::slice::from_ref(&p));
        assert!((p.var.value().item() - 0.8).abs() < 1e-6);

        let p = param(vec![1.0], vec![2.0]);
        let mut o = Optimizer::momentum(0.1, 0.9);
        o.step(std::slice::from_ref(&p)); // v = -0.2, w = 0.8
        o.step(std::slice::from_ref(&p)); // v = -0.18 - 0.2 = -0.38, w = 0.42
        assert!((p.var.value().item() - 0.42).abs() < 1e-6);

        let p = param(vec![1.0], vec![2.0]);
        Optimizer::nesterov(0.1, 0.9).step(std::slice::from_ref(&p));
        // v = -0.2; w += 0.81 * -0.2 - 1.9 * 0.2 = -0.542
        assert!((p.var.value().item() - 0.458).abs() < 1e-6);
    }

    #[test]
    fn adagrad_rmsprop_and_adamw_decay() {
        let p = param(vec![1.0], vec![2.0]);
        Optimizer::adagrad(0.1).step(std::slice::from_ref(&p));
        assert!((p.var.value().item() - 0.9).abs() < 1e-5);
        let p = param(vec![1.0], vec![2.0]);
        Optimizer::rmsprop(0.1).step(std::slice::from_ref(&p));
        // h = 0.01 * 4 = 0.04, step = 0.1 * 2 / 0.2 = 1
        assert!((p.var.value().item() - 0.0).abs() < 1e-4);
        let p = param(vec![1.0], vec![0.0]);
        Optimizer::adamw(0.1, 0.5).step(std::slice::from_ref(&p));
        assert!((p.var.value().item() - 0.95).abs() < 1e-6);
    }

    #[test]
    fn state_round_trips_and_lr_is_settable() {
        let p = param(vec![1.0, 2.0], vec![0.5, 0.5]);
        let mut a = Optimizer::adam(0.01);
        a.step(std::slice::from_ref(&p));
        let mut b = Optimizer::adam(0.01);
        b.load_state(&a.state()).unwrap();
        assert_eq!(b.iterations(), 1);
        assert_eq!(a.state().len(), b.state().len());
        b.set_learning_rate(0.5);
        assert_eq!(b.learning_rate(), 0.5);
        assert!(Optimizer::from_name("adamx", None).is_err());
    }
}
