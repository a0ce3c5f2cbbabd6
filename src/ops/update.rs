//! In-place parameter updates: the optimizers' rules and batch norm's moving averages.
//!
//! Parameters change only here (issue 11, "parameters change only through ops"): the
//! optimizer and the batch-norm layer hold tensors and call `apply` / `moving_average`,
//! which take the buffers out of the `Var` once and run one kernel over plain slices.
//! So a half-precision or GPU parameter later needs new kernels here, not new loops in
//! `optimizers/` or `layers/`.
//!
//! The kernels keep the exact operation order the optimizers used before they moved
//! here, so training runs are bit for bit the same (the seeded-accuracy tests in
//! `tests/` rely on it). All are serial element loops: an update is memory-bound and
//! runs once per step, measured at well under 1% of a training step.
//!
//! The rules (the book's, "Deep Learning from Scratch", and Keras' names):
//! | rule     | state | update                                                          |
//! |----------|-------|-----------------------------------------------------------------|
//! | sgd      | -     | `W -= lr * g`                                                   |
//! | momentum | v     | `v = mu * v - lr * g; W += v`                                   |
//! | nesterov | v     | `v = mu * v - lr * g; W += mu^2 * v - (1 + mu) * lr * g`        |
//! | adagrad  | h     | `h += g^2; W -= lr * g / (sqrt(h) + eps)`                       |
//! | rmsprop  | h     | `h = rho * h + (1 - rho) * g^2; W -= lr * g / (sqrt(h) + eps)`  |
//! | adam     | m, v  | `m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v);`                 |
//! |          |       | `W -= lr_t * m / (sqrt(v) + eps)`, `lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)` |
//! Decoupled weight decay (`W -= lr * wd * W`, before the rule) is `decay`; the moving
//! average of batch norm is `moving = momentum * moving + (1 - momentum) * batch`.

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// One update rule with its hyper-parameters for this step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    Sgd {
        lr: f32,
    },
    Momentum {
        lr: f32,
        momentum: f32,
    },
    Nesterov {
        lr: f32,
        momentum: f32,
    },
    Adagrad {
        lr: f32,
        eps: f32,
    },
    Rmsprop {
        lr: f32,
        decay: f32,
        eps: f32,
    },
    /// `t` is the 1-based step count (bias correction).
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        t: u64,
    },
}

impl Rule {
    /// Number of state tensors the rule keeps per parameter (each the parameter's size).
    pub fn slots(&self) -> usize {
        match self {
            Rule::Sgd { .. } => 0,
            Rule::Momentum { .. }
            | Rule::Nesterov { .. }
            | Rule::Adagrad { .. }
            | Rule::Rmsprop { .. } => 1,
            Rule::Adam { .. } => 2,
        }
    }
}

// ---------------------------------------------------------------------------------
// Kernels: plain functions over slices (w: weights, g: gradient, state: same length).
// ---------------------------------------------------------------------------------

/// Decoupled weight decay: `w -= factor * w`, with `factor = lr * weight_decay`.
pub fn decay(w: &mut [f32], factor: f32) {
    w.iter_mut().for_each(|w| *w -= factor * *w);
}

pub fn sgd(w: &mut [f32], g: &[f32], lr: f32) {
    for (w, &g) in w.iter_mut().zip(g) {
        *w -= lr * g;
    }
}

pub fn momentum(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = momentum * *v - lr * g;
        *w += *v;
    }
}

pub fn nesterov(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f32, momentum: f32) {
    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
        *v = momentum * *v - lr * g;
        *w += momentum * momentum * *v - (1.0 + momentum) * lr * g;
    }
}

pub fn adagrad(w: &mut [f32], g: &[f32], h: &mut [f32], lr: f32, eps: f32) {
    for ((w, &g), h) in w.iter_mut().zip(g).zip(h.iter_mut()) {
        *h += g * g;
        *w -= lr * g / (h.sqrt() + eps);
    }
}

pub fn rmsprop(w: &mut [f32], g: &[f32], h: &mut [f32], lr: f32, decay: f32, eps: f32) {
    for ((w, &g), h) in w.iter_mut().zip(g).zip(h.iter_mut()) {
        *h = decay * *h + (1.0 - decay) * g * g;
        *w -= lr * g / (h.sqrt() + eps);
    }
}

/// Adam's bias-corrected step size at step `t` (1-based).
pub fn adam_lr_t(lr: f32, beta1: f32, beta2: f32, t: u64) -> f32 {
    lr * (1.0 - beta2.powi(t as i32)).sqrt() / (1.0 - beta1.powi(t as i32))
}

#[allow(clippy::too_many_arguments)]
pub fn adam(
    w: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    lr_t: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
) {
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += (1.0 - beta1) * (g - *m);
        *v += (1.0 - beta2) * (g * g - *v);
        *w -= lr_t * *m / (v.sqrt() + eps);
    }
}

/// `moving = momentum * moving + (1 - momentum) * batch` (batch norm's statistics).
pub fn moving_average_kernel(moving: &mut [f32], batch: &[f32], momentum: f32) {
    for (a, &b) in moving.iter_mut().zip(batch) {
        *a = momentum * *a + (1.0 - momentum) * b;
    }
}

// ---------------------------------------------------------------------------------
// Tensor / Var level.
// ---------------------------------------------------------------------------------

fn same_size(what: &str, w: &Tensor, other: &Tensor, name: &str) -> Result<()> {
    if other.numel() != w.numel() {
        return Err(Error::shape(format!(
            "{what}: parameter {:?} and {name} {:?} differ in size",
            w.shape(),
            other.shape()
        )));
    }
    Ok(())
}

/// Fresh (zero) state tensors for `rule` and a parameter of `shape`.
pub fn init_state(rule: &Rule, shape: &[usize]) -> Vec<Tensor> {
    (0..rule.slots()).map(|_| Tensor::zeros(shape)).collect()
}

/// One in-place update of the parameter `w` with gradient `g`: first the decoupled
/// weight decay `w -= decay_factor * w` (skipped when 0), then `rule`, which reads and
/// writes its `state` (`rule.slots()` tensors of `w`'s size, see `init_state`).
/// The parameter's buffer is written in place (copied first only if shared).
pub fn apply(
    w: &Var,
    g: &Tensor,
    state: &mut [Tensor],
    rule: Rule,
    decay_factor: f32,
) -> Result<()> {
    let what = "parameter update";
    let g = g.contiguous();
    {
        let wv = w.value_ref();
        same_size(what, &wv, &g, "gradient")?;
        if state.len() != rule.slots() {
            return Err(Error::invalid(format!(
                "{what}: {rule:?} keeps {} state tensors, got {}",
                rule.slots(),
                state.len()
            )));
        }
        for s in state.iter() {
            same_size(what, &wv, s, "optimizer state")?;
        }
    }
    for s in state.iter_mut() {
        *s = s.contiguous();
    }
    w.update(|t| {
        *t = t.contiguous();
        let wd = t.data_mut();
        if decay_factor != 0.0 {
            decay(wd, decay_factor);
        }
        let g = g.data();
        match (rule, state) {
            (Rule::Sgd { lr }, []) => sgd(wd, g, lr),
            (Rule::Momentum { lr, momentum: mu }, [v]) => momentum(wd, g, v.data_mut(), lr, mu),
            (Rule::Nesterov { lr, momentum: mu }, [v]) => nesterov(wd, g, v.data_mut(), lr, mu),
            (Rule::Adagrad { lr, eps }, [h]) => adagrad(wd, g, h.data_mut(), lr, eps),
            (Rule::Rmsprop { lr, decay, eps }, [h]) => rmsprop(wd, g, h.data_mut(), lr, decay, eps),
            (
                Rule::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    t,
                },
                [m, v],
            ) => adam(
                wd,
                g,
                m.data_mut(),
                v.data_mut(),
                adam_lr_t(lr, beta1, beta2, t),
                beta1,
                beta2,
                eps,
            ),
            _ => unreachable!("slot count checked above"),
        }
    });
    Ok(())
}

/// Batch norm's moving statistic, in place: `moving = momentum * moving + (1 - momentum)
/// * batch`. `moving` is a constant `Var` (no gradient flows through it).
pub fn moving_average(moving: &Var, batch: &Tensor, momentum: f32) -> Result<()> {
    let batch = batch.contiguous();
    same_size(
        "moving average",
        &moving.value_ref(),
        &batch,
        "batch statistic",
    )?;
    moving.update(|t| {
        *t = t.contiguous();
        moving_average_kernel(t.data_mut(), batch.data(), momentum)
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Rng;

    /// The naive references: one element at a time, by index, written from the table in
    /// the module doc (no iterator chains shared with the kernels).
    // The reference spells each formula out as written in the table above.
    #[allow(clippy::assign_op_pattern)]
    fn naive(rule: Rule, w: &mut [f32], g: &[f32], s: &mut [Vec<f32>], wd: f32) {
        for i in 0..w.len() {
            if wd != 0.0 {
                w[i] = w[i] - wd * w[i];
            }
            match rule {
                Rule::Sgd { lr } => w[i] = w[i] - lr * g[i],
                Rule::Momentum { lr, momentum } => {
                    s[0][i] = momentum * s[0][i] - lr * g[i];
                    w[i] = w[i] + s[0][i];
                }
                Rule::Nesterov { lr, momentum } => {
                    s[0][i] = momentum * s[0][i] - lr * g[i];
                    w[i] = w[i] + (momentum * momentum * s[0][i] - (1.0 + momentum) * lr * g[i]);
                }
                Rule::Adagrad { lr, eps } => {
                    s[0][i] = s[0][i] + g[i] * g[i];
                    w[i] = w[i] - lr * g[i] / (s[0][i].sqrt() + eps);
                }
                Rule::Rmsprop { lr, decay, eps } => {
                    s[0][i] = decay * s[0][i] + (1.0 - decay) * g[i] * g[i];
                    w[i] = w[i] - lr * g[i] / (s[0][i].sqrt() + eps);
                }
                Rule::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    t,
                } => {
                    let lr_t =
                        lr * (1.0 - beta2.powi(t as i32)).sqrt() / (1.0 - beta1.powi(t as i32));
                    s[0][i] = s[0][i] + (1.0 - beta1) * (g[i] - s[0][i]);
                    s[1][i] = s[1][i] + (1.0 - beta2) * (g[i] * g[i] - s[1][i]);
                    w[i] = w[i] - lr_t * s[0][i] / (s[1][i].sqrt() + eps);
                }
            }
        }
    }

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect()
    }

    #[test]
    fn every_rule_matches_its_naive_reference_bit_for_bit() {
        let rules = [
            Rule::Sgd { lr: 0.1 },
            Rule::Momentum {
                lr: 0.05,
                momentum: 0.9,
            },
            Rule::Nesterov {
                lr: 0.05,
                momentum: 0.9,
            },
            Rule::Adagrad { lr: 0.1, eps: 1e-7 },
            Rule::Rmsprop {
                lr: 0.01,
                decay: 0.99,
                eps: 1e-7,
            },
            Rule::Adam {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-7,
                t: 1,
            },
        ];
        let mut rng = Rng::new(3);
        let shape = [3, 5];
        for rule in rules {
            for wd in [0.0, 0.01] {
                let w0 = random(15, &mut rng);
                let w = Var::parameter(Tensor::from_vec(w0.clone(), &shape));
                let mut state = init_state(&rule, &shape);
                let mut w_ref = w0;
                let mut s_ref = vec![vec![0.0f32; 15]; rule.slots()];
                // Three steps, a new gradient each (Adam's t advances).
                for step in 1..=3u64 {
                    let rule = match rule {
                        Rule::Adam {
                            t: _,
                            lr,
                            beta1,
                            beta2,
                            eps,
                        } => Rule::Adam {
                            lr,
                            beta1,
                            beta2,
                            eps,
                            t: step,
                        },
                        r => r,
                    };
                    let g = random(15, &mut rng);
                    apply(
                        &w,
                        &Tensor::from_vec(g.clone(), &shape),
                        &mut state,
                        rule,
                        wd,
                    )
                    .unwrap();
                    naive(rule, &mut w_ref, &g, &mut s_ref, wd);
                }
                let got = w.value();
                assert_eq!(got.data(), &w_ref[..], "{rule:?}, wd {wd}");
                for (s, r) in state.iter().zip(&s_ref) {
                    assert_eq!(s.data(), &r[..], "{rule:?} state");
                }
            }
        }
    }

    #[test]
    fn moving_average_matches_the_formula_and_checks_sizes() {
        let moving = Var::constant(Tensor::from_vec(vec![1.0, 2.0, -3.0], &[3]));
        let batch = Tensor::from_vec(vec![0.5, 0.0, 1.0], &[3]);
        moving_average(&moving, &batch, 0.9).unwrap();
        let want: Vec<f32> = [(1.0f32, 0.5f32), (2.0, 0.0), (-3.0, 1.0)]
            .iter()
            .map(|&(a, b)| 0.9 * a + (1.0 - 0.9) * b)
            .collect();
        assert_eq!(moving.value().data(), &want[..]);
        let e = moving_average(&moving, &Tensor::zeros(&[4]), 0.9).unwrap_err();
        assert!(
            e.to_string().contains("[3]") && e.to_string().contains("[4]"),
            "{e}"
        );
    }

    #[test]
    fn mismatched_gradient_or_state_is_an_error_naming_both_shapes() {
        let w = Var::parameter(Tensor::zeros(&[2, 3]));
        let e = apply(
            &w,
            &Tensor::zeros(&[5]),
            &mut [],
            Rule::Sgd { lr: 0.1 },
            0.0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[2, 3]") && e.contains("[5]"), "{e}");
        let rule = Rule::Momentum {
            lr: 0.1,
            momentum: 0.9,
        };
        let e = apply(
            &w,
            &Tensor::zeros(&[2, 3]),
            &mut [Tensor::zeros(&[4])],
            rule,
            0.0,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("optimizer state") && e.contains("[4]"), "{e}");
        assert!(apply(&w, &Tensor::zeros(&[2, 3]), &mut [], rule, 0.0).is_err());
    }

    #[test]
    fn a_shared_parameter_buffer_is_copied_not_written_through() {
        let t = Tensor::ones(&[3]);
        let w = Var::parameter(t.clone());
        apply(&w, &Tensor::ones(&[3]), &mut [], Rule::Sgd { lr: 0.5 }, 0.0).unwrap();
        assert_eq!(t.data(), &[1.0, 1.0, 1.0]);
        assert_eq!(w.value().data(), &[0.5, 0.5, 0.5]);
    }
}
