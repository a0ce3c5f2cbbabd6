//! Optimizers as "Deep Learning from Scratch" defines them (and Keras names them):
//! SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, and AdamW (decoupled weight decay).
//! The update rules are in-place kernels in `ops/update.rs` (parameters change only
//! through ops); `Optimizer` holds the hyper-parameters and the per-parameter state
//! tensors, keyed by the parameter's name so the state can be saved beside the weights
//! and reloaded.
//!
//! Weight decay is decoupled (Loshchilov & Hutter, "Decoupled Weight Decay
//! Regularization") for every rule: before the update, `W -= lr * weight_decay * W`, with
//! the learning rate in use (so a schedule scales the decay too, as in PyTorch's AdamW).
//! It is not an L2 term added to the gradient (PyTorch's `SGD(weight_decay=...)` is
//! that; for plain SGD the two coincide, for momentum and adaptive rules they do not).
//! AdamW is Adam with this decay (default 0.01, as PyTorch's); `sgd` with it is SGDW.
//!
//! Only weights with two or more dimensions are decayed (Dense and Conv2D kernels);
//! biases and batch norm's gamma and beta (1-D) are not, as in the common recipe (BERT,
//! timm): shrinking a bias or a scale toward 0 does not limit the model's capacity, it
//! only shifts or rescales activations. Keras' and PyTorch's optimizers decay every
//! variable unless told otherwise, so their AdamW differs here on biases.

use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::nn::layers::Param;
use crate::ops::update::{self, Rule};
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
    /// Adam with decoupled weight decay: the decay is `Optimizer`'s, which serializes
    /// beside the kind, so model.json files that wrote it inside `adamw` still load.
    Adamw {
        beta_1: f32,
        beta_2: f32,
    },
}

impl OptimizerKind {
    /// The kernel rule for one step with learning rate `lr`, epsilon `eps`, at step `t`.
    fn rule(&self, lr: f32, eps: f32, t: u64) -> Rule {
        match *self {
            OptimizerKind::Sgd => Rule::Sgd { lr },
            OptimizerKind::Momentum { momentum } => Rule::Momentum { lr, momentum },
            OptimizerKind::Nesterov { momentum } => Rule::Nesterov { lr, momentum },
            OptimizerKind::Adagrad => Rule::Adagrad { lr, eps },
            OptimizerKind::Rmsprop { decay } => Rule::Rmsprop { lr, decay, eps },
            OptimizerKind::Adam { beta_1, beta_2 } | OptimizerKind::Adamw { beta_1, beta_2 } => {
                Rule::Adam {
                    lr,
                    beta1: beta_1,
                    beta2: beta_2,
                    eps,
                    t,
                }
            }
        }
    }

    /// Number of state tensors per parameter.
    fn slots(&self) -> usize {
        self.rule(0.0, 0.0, 1).slots()
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
            OptimizerKind::Adamw { beta_1, beta_2 } => write!(f, "adamw({beta_1}, {beta_2})"),
        }
    }
}

/// Serializable description of an optimizer (kind + learning rate + epsilon + decay).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    #[serde(flatten)]
    pub kind: OptimizerKind,
    pub learning_rate: f32,
    pub epsilon: f32,
    /// Decoupled weight decay; absent (0) in configs written before it existed, except
    /// adamw's, which had the same key.
    #[serde(default)]
    pub weight_decay: f32,
}

pub struct Optimizer {
    pub kind: OptimizerKind,
    learning_rate: f32,
    pub epsilon: f32,
    /// Decoupled weight decay (see the module doc), applied to weights with ndim >= 2.
    weight_decay: f32,
    /// Steps taken (Adam's `t`).
    iterations: u64,
    /// Per parameter name, the rule's state tensors (`Rule::slots` of them).
    state: BTreeMap<String, Vec<Tensor>>,
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
            weight_decay: 0.0,
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
    /// Adam with decoupled weight decay. Panics on a negative or non-finite decay (a
    /// programming error here; `with_weight_decay` returns the error instead).
    /// # Panics
    /// If `weight_decay` is negative or not finite (a programming error; the command
    /// line and `with_weight_decay` return an error instead).
    pub fn adamw(lr: f32, weight_decay: f32) -> Optimizer {
        Optimizer::new(
            OptimizerKind::Adamw {
                beta_1: 0.9,
                beta_2: 0.999,
            },
            lr,
        )
        .with_weight_decay(weight_decay)
        .unwrap_or_else(|e| panic!("Optimizer::adamw: {e}"))
    }

    /// Sets the decoupled weight decay (any rule; see the module doc).
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Result<Optimizer> {
        if !(weight_decay.is_finite() && weight_decay >= 0.0) {
            return Err(Error::invalid(format!(
                "weight decay must be a non-negative number, got {weight_decay}"
            )));
        }
        self.weight_decay = weight_decay;
        Ok(self)
    }

    /// Checks every hyper-parameter's range: a learning rate finite and >= 0, an epsilon
    /// finite and > 0, a weight decay finite and >= 0, momentum, decay and betas in
    /// [0, 1). `compile` calls it, so no value from code or a config goes unchecked.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, v: f32, range: &str| {
            Err(Error::invalid(format!(
                "the optimizer's {what} is {v}; it must be {range}"
            )))
        };
        let unit = |v: f32| (0.0..1.0).contains(&v);
        if !(self.learning_rate.is_finite() && self.learning_rate >= 0.0) {
            return bad("learning rate", self.learning_rate, "a number >= 0");
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return bad("epsilon", self.epsilon, "a number > 0");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad("weight decay", self.weight_decay, "a number >= 0");
        }
        match self.kind {
            OptimizerKind::Momentum { momentum } | OptimizerKind::Nesterov { momentum }
                if !unit(momentum) =>
            {
                bad("momentum", momentum, "in [0, 1)")
            }
            OptimizerKind::Rmsprop { decay } if !unit(decay) => bad("decay", decay, "in [0, 1)"),
            OptimizerKind::Adam { beta_1, beta_2 } | OptimizerKind::Adamw { beta_1, beta_2 }
                if !(unit(beta_1) && unit(beta_2)) =>
            {
                bad(
                    "beta_1/beta_2",
                    if unit(beta_1) { beta_2 } else { beta_1 },
                    "in [0, 1)",
                )
            }
            _ => Ok(()),
        }
    }

    pub fn weight_decay(&self) -> f32 {
        self.weight_decay
    }

    /// The rule, and the weight decay if any: `adamw(0.9, 0.999), weight decay 0.01`.
    pub fn describe(&self) -> String {
        if self.weight_decay == 0.0 {
            self.kind.to_string()
        } else {
            format!("{}, weight decay {}", self.kind, self.weight_decay)
        }
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
        // Not `with_weight_decay`: a hand-edited negative decay is kept as written
        // rather than failing a load; only the CLI and the builder validate.
        o.weight_decay = c.weight_decay;
        o
    }

    pub fn config(&self) -> OptimizerConfig {
        OptimizerConfig {
            kind: self.kind,
            learning_rate: self.learning_rate,
            epsilon: self.epsilon,
            weight_decay: self.weight_decay,
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
    ///
    /// # Panics
    /// If a parameter's gradient or loaded state does not match its size (a state file
    /// for another model); `try_step` returns that error instead.
    pub fn step(&mut self, params: &[Param]) {
        if let Err(e) = self.try_step(params) {
            panic!("Optimizer::step: {e}");
        }
    }

    /// As `step`, returning an error naming the parameter and both shapes when its
    /// gradient or state does not fit it.
    pub fn try_step(&mut self, params: &[Param]) -> Result<()> {
        self.iterations += 1;
        let rule = self
            .kind
            .rule(self.learning_rate, self.epsilon, self.iterations);
        for p in params.iter().filter(|p| p.trainable) {
            let Some(g) = p.var.grad() else { continue };
            let decay = if p.var.shape().len() >= 2 {
                self.learning_rate * self.weight_decay
            } else {
                0.0
            };
            let slots = self
                .state
                .entry(p.name.clone())
                .or_insert_with(|| update::init_state(&rule, g.shape()));
            update::apply(&p.var, &g, slots, rule, decay).map_err(|e| e.context(&p.name))?;
        }
        Ok(())
    }

    /// The state as named tensors: `optimizer/<param>/<slot>` and `optimizer/iterations`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(
            "optimizer/iterations".to_string(),
            Tensor::from_vec(vec![self.iterations as f32], &[1]),
        )];
        for (name, slots) in &self.state {
            for (i, s) in slots.iter().enumerate() {
                let flat = s.reshape(&[s.numel()]).expect("same number of values");
                out.push((format!("optimizer/{name}/{i}"), flat));
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
                if t.numel() != 1 {
                    return Err(Error::invalid(format!(
                        "optimizer state '{name}' should hold one value, got shape {:?}",
                        t.shape()
                    )));
                }
                self.iterations = t.item() as u64;
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
                .or_insert_with(|| vec![Tensor::zeros(&[0]); nslots]);
            slots[slot] = t.clone();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_hyper_parameters_are_refused_by_compile() {
        let mut adam = Optimizer::adam(0.001);
        adam.epsilon = -1.0;
        let e = adam.validate().unwrap_err().to_string();
        assert!(e.contains("epsilon is -1"), "{e}");
        let e = Optimizer::sgd(-1.0).validate().unwrap_err().to_string();
        assert!(e.contains("learning rate is -1"), "{e}");
        let e = Optimizer::momentum(0.1, 1.5)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("momentum is 1.5"), "{e}");
        assert!(Optimizer::adamw(0.001, 0.01).validate().is_ok());
    }
    use crate::engine::Var;

    fn param(w: Vec<f32>, g: Vec<f32>) -> Param {
        let n = w.len();
        param_shaped(w, g, &[n])
    }

    fn param_shaped(w: Vec<f32>, g: Vec<f32>, shape: &[usize]) -> Param {
        let var = Var::parameter(Tensor::from_vec(w, shape));
        // Give it a gradient by back-propagating sum(w * g).
        let gt = Var::constant(Tensor::from_vec(g, shape));
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
        assert!((w.to_f32_vec()[0] - 0.99).abs() < 1e-5, "{:?}", w);
        assert!((w.to_f32_vec()[1] - -1.99).abs() < 1e-5, "{:?}", w);
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
        // A kernel ([1, 1]) with a zero gradient: only the decay moves it.
        let p = param_shaped(vec![1.0], vec![0.0], &[1, 1]);
        Optimizer::adamw(0.1, 0.5).step(std::slice::from_ref(&p));
        assert!((p.var.value().item() - 0.95).abs() < 1e-6);
    }

    fn close(got: &Tensor, want: &[f64]) -> bool {
        got.to_f32_vec()
            .iter()
            .zip(want)
            .all(|(&g, &w)| (g as f64 - w).abs() < 1e-6)
    }

    #[test]
    fn sgdw_and_momentum_decay_match_hand_computation() {
        // SGDW, lr 0.1, wd 0.2: w <- w - 0.1 * 0.2 * w - 0.1 * g.
        let (w, g) = (vec![1.0, -2.0], vec![0.5, 1.0]);
        let p = param_shaped(w.clone(), g.clone(), &[1, 2]);
        let mut o = Optimizer::sgd(0.1).with_weight_decay(0.2).unwrap();
        o.step(std::slice::from_ref(&p));
        let want: Vec<f64> = (0..2)
            .map(|i| w[i] as f64 * (1.0 - 0.02) - 0.1 * g[i] as f64)
            .collect();
        assert!(close(&p.var.value(), &want), "{:?}", p.var.value());
        // Decoupled: with a zero gradient the weight still shrinks, by the lr in use
        // (a schedule scales the decay).
        let p = param_shaped(vec![2.0], vec![0.0], &[1, 1]);
        o.set_learning_rate(0.5);
        o.step(std::slice::from_ref(&p));
        assert!((p.var.value().item() - 2.0 * (1.0 - 0.5 * 0.2)).abs() < 1e-6);

        // Momentum 0.9, lr 0.1, wd 0.1, two steps, w = 1, g = 2 (the gradient does not
        // enter the decay, unlike an L2 term: the velocity is that of plain momentum).
        let p = param_shaped(vec![1.0], vec![2.0], &[1, 1]);
        let mut o = Optimizer::momentum(0.1, 0.9)
            .with_weight_decay(0.1)
            .unwrap();
        o.step(std::slice::from_ref(&p)); // w = 0.99 - 0.2 = 0.79
        o.step(std::slice::from_ref(&p)); // w = 0.79 * 0.99 - 0.38 = 0.4021
        assert!((p.var.value().item() - 0.4021).abs() < 1e-6);
    }

    #[test]
    fn adamw_step_matches_hand_computation() {
        let (w, g) = (vec![1.0f32, -2.0], vec![0.5f32, -4.0]);
        let (lr, wd, b1, b2, eps) = (0.01f64, 0.1f64, 0.9f64, 0.999f64, 1e-7f64);
        let p = param_shaped(w.clone(), g.clone(), &[2, 1]);
        Optimizer::adamw(lr as f32, wd as f32).step(std::slice::from_ref(&p));
        let want: Vec<f64> = (0..2)
            .map(|i| {
                let (w, g) = (w[i] as f64, g[i] as f64);
                let (m, v) = ((1.0 - b1) * g, (1.0 - b2) * g * g);
                let lr_t = lr * (1.0 - b2).sqrt() / (1.0 - b1);
                w * (1.0 - lr * wd) - lr_t * m / (v.sqrt() + eps)
            })
            .collect();
        assert!(
            close(&p.var.value(), &want),
            "{:?} vs {want:?}",
            p.var.value()
        );
    }

    #[test]
    fn biases_and_other_1d_weights_are_not_decayed() {
        // Zero gradients: whatever moves is the decay.
        // Distinct names: the optimizer keeps its state by name.
        let named = |mut p: Param, name: &str| {
            p.name = name.into();
            p
        };
        let kernel = named(param_shaped(vec![1.0; 6], vec![0.0; 6], &[2, 3]), "kernel");
        let conv = named(
            param_shaped(vec![1.0; 4], vec![0.0; 4], &[1, 1, 2, 2]),
            "conv",
        );
        let bias = named(param(vec![1.0; 3], vec![0.0; 3]), "bias");
        for mut o in [
            Optimizer::adamw(0.1, 0.5),
            Optimizer::sgd(0.1).with_weight_decay(0.5).unwrap(),
            Optimizer::nesterov(0.1, 0.9)
                .with_weight_decay(0.5)
                .unwrap(),
        ] {
            for p in [&kernel, &conv, &bias] {
                p.var.set_value(Tensor::full(&p.var.shape(), 1.0));
            }
            o.step(&[kernel.clone(), conv.clone(), bias.clone()]);
            let all = |p: &Param, want: f32| {
                p.var
                    .value()
                    .to_f32_vec()
                    .iter()
                    .all(|&v| (v - want).abs() < 1e-6)
            };
            assert!(all(&kernel, 0.95) && all(&conv, 0.95), "{}", o.describe());
            assert!(all(&bias, 1.0), "{}: the bias was decayed", o.describe());
        }
    }

    #[test]
    fn weight_decay_is_validated_and_configs_round_trip() {
        for bad in [-0.1, f32::NAN, f32::INFINITY] {
            let Err(e) = Optimizer::sgd(0.1).with_weight_decay(bad) else {
                panic!("weight decay {bad} accepted");
            };
            assert!(e.to_string().contains("weight decay must be"), "{e}");
        }
        // Written before `weight_decay` moved out of adamw: the same key, so it loads.
        let old_adamw = r#"{"name":"adamw","beta_1":0.9,"beta_2":0.999,"weight_decay":0.05,"learning_rate":0.001,"epsilon":1e-7}"#;
        let c: OptimizerConfig = serde_json::from_str(old_adamw).unwrap();
        let o = Optimizer::from_config(&c);
        assert_eq!(o.weight_decay(), 0.05);
        assert!(matches!(o.kind, OptimizerKind::Adamw { .. }));
        // Written before weight decay existed for the other rules.
        let old_sgd = r#"{"name":"sgd","learning_rate":0.01,"epsilon":1e-7}"#;
        let c: OptimizerConfig = serde_json::from_str(old_sgd).unwrap();
        assert_eq!(c.weight_decay, 0.0);
        let sgdw = Optimizer::sgd(0.01)
            .with_weight_decay(5e-4)
            .unwrap()
            .config();
        let json = serde_json::to_string(&sgdw).unwrap();
        assert!(json.contains(r#""weight_decay":0.0005"#), "{json}");
        assert_eq!(
            serde_json::from_str::<OptimizerConfig>(&json).unwrap(),
            sgdw
        );
        assert_eq!(
            Optimizer::adamw(1e-3, 0.01).describe(),
            "adamw(0.9, 0.999), weight decay 0.01"
        );
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
        // A state saved for another parameter size is an error naming both shapes.
        let other = param(vec![1.0; 3], vec![0.5; 3]);
        let e = b
            .try_step(std::slice::from_ref(&other))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[3]") && e.contains("[2]"), "{e}");
    }
}
