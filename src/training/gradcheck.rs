//! Gradient check of a whole model: every parameter tensor's analytic gradient (one
//! backward pass) against central differences of the training loss, on a sample of its
//! entries. Used by `nabla gradcheck NAME` and by the layer test suite.
//!
//! The forward runs in training mode (batch norm uses batch statistics) with the model's
//! random generator reseeded before every evaluation, so dropout masks are the same in
//! every evaluation and the loss is a fixed differentiable function of the weights.
//! Kinks: the ReLU masks and max-pool winners of the analytic pass are recorded and
//! replayed in every numerical evaluation (`engine::kinks`), so a step that would carry
//! an activation across a kink still measures the piece the backward differentiates.
//! Numerical error: in f32 a deep net's loss carries rounding noise of ~1e-6, which
//! divided by 2h is comparable to the smallest gradients. The difference between the
//! estimates at `h` and `h/2` measures it: entries where it exceeds 10% of the value are
//! skipped (and counted), and elsewhere the analytic gradient must agree with the
//! estimate up to twice that difference plus the relative tolerance. A wrong backward (a
//! missing term, a wrong sign or scale) is off by the gradient's own size and still
//! fails.

use super::model::Sequential;
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};

/// Gradients smaller than this are compared absolutely: a parameter whose true gradient
/// is zero (a conv bias followed by batch norm, which removes per-channel constants) has
/// both estimates at f32 noise level, and their ratio means nothing.
pub const ABS_FLOOR: f64 = 1e-6;

/// Relative rounding noise of a deep net's f32 loss (a logit summed over thousands of
/// f32 products carries ~sqrt(K) * 6e-8 ~ 4e-6 of relative error). A central
/// difference cannot resolve gradients below `LOSS_REL_NOISE * |L| / h`; tensors whose
/// gradients are all smaller are judged against that resolution instead of their own
/// scale (e.g. the 4320x100 kernel of simple-convnet with the book's N(0, 0.01) init,
/// whose gradients are ~1e-4).
pub const LOSS_REL_NOISE: f64 = 1e-5;

#[derive(Debug, Clone)]
pub struct ParamCheck {
    pub param: String,
    pub shape: Vec<usize>,
    pub checked: usize,
    pub skipped_near_kink: usize,
    /// Normwise relative error over the checked entries, beyond the numerical
    /// estimate's own error: max(|a - n| - 2|n(h) - n(h/2)|) / max(|a|, |n|, resolution),
    /// with resolution = max(LOSS_REL_NOISE * |L| / h, ABS_FLOOR).
    pub rel_error: f32,
    /// Largest |gradient| among the checked entries (the scale the error is relative to).
    pub grad_scale: f32,
}

impl ParamCheck {
    /// The verdict every caller uses: the relative error within `DEFAULT_TOLERANCE` on
    /// at least half of the sampled entries. Skipping is the checker's one way to go
    /// blind (an entry whose two estimates disagree is not compared), so a tensor where
    /// most entries were skipped has not been checked, whatever its error says.
    pub fn passed(&self) -> bool {
        let sampled = self.checked + self.skipped_near_kink;
        self.rel_error < crate::engine::gradcheck::DEFAULT_TOLERANCE
            && self.checked > 0
            && 2 * self.checked >= sampled
    }
}

/// The training objective (every output's weighted loss plus the weight penalties).
fn loss_at(model: &mut Sequential, xs: &[Tensor], ys: &[Tensor], seed: u64) -> Result<Var> {
    *model.rng_mut() = Rng::new(seed);
    let fused = model.fused_outputs();
    let xs: Vec<Var> = xs.iter().cloned().map(Var::constant).collect();
    let outs = model.run(&xs, true, &fused, None, false, None)?;
    let targets: Vec<crate::losses::Target> = ys.iter().map(Into::into).collect();
    Ok(model.training_objective(&outs, &targets, &fused)?.0)
}

/// Checks up to `max_entries` entries of every trainable parameter.
pub fn check_model(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    max_entries: usize,
    h: f32,
) -> Result<Vec<ParamCheck>> {
    check_model_many(
        model,
        std::slice::from_ref(x),
        std::slice::from_ref(y),
        max_entries,
        h,
    )
}

/// `check_model` for a model with several inputs or outputs (one tensor per input, one
/// of labels per output): the objective is the loss-weighted sum `fit` minimizes.
pub fn check_model_many(
    model: &mut Sequential,
    xs: &[Tensor],
    ys: &[Tensor],
    max_entries: usize,
    h: f32,
) -> Result<Vec<ParamCheck>> {
    check_with_analytic(model, xs, ys, max_entries, h, &|_, g| g)
}

/// The checker, with each parameter's analytic gradient passed through `analytic(name,
/// gradient)` before it is compared: the identity for every caller, and the seam through
/// which the tests stand in a wrong backward (scaled, sign-flipped, transposed, a term
/// missing) to show that the checker rejects it.
fn check_with_analytic(
    model: &mut Sequential,
    xs: &[Tensor],
    ys: &[Tensor],
    max_entries: usize,
    h: f32,
    analytic: &dyn Fn(&str, Tensor) -> Tensor,
) -> Result<Vec<ParamCheck>> {
    if model.loss().is_none() {
        return Err(Error::invalid("gradcheck: compile the model first"));
    }
    model.check_data("gradcheck", xs, ys)?;
    let seed = 1234;
    let params: Vec<_> = model.params().into_iter().filter(|p| p.trainable).collect();
    for p in &params {
        p.var.zero_grad();
    }
    let (base, kinks) = crate::engine::kinks::record(|| loss_at(model, xs, ys, seed));
    let base = base?;
    let resolution =
        (LOSS_REL_NOISE * base.value().item().abs().max(1.0) as f64 / h as f64).max(ABS_FLOOR);
    base.backward();
    let mut pick = Rng::new(99);
    let mut reports = Vec::new();
    for p in &params {
        let analytic = analytic(
            &p.name,
            p.var
                .grad()
                .unwrap_or_else(|| Tensor::zeros(&p.var.shape())),
        );
        let n = analytic.numel();
        let analytic_values = analytic.to_f32_vec();
        let mut entries: Vec<usize> = (0..n).collect();
        if n > max_entries {
            pick.shuffle(&mut entries);
            entries.truncate(max_entries);
        }
        let original = p.var.value();
        // The loss with entry `j` moved by `delta`, kinks replayed, no graph recorded.
        let loss_moved = |j: usize, delta: f32, model: &mut Sequential| -> Result<f64> {
            let mut values = original.to_f32_vec();
            values[j] += delta;
            p.var.set_value(Tensor::from_vec(values, original.shape()));
            let _g = crate::engine::no_grad();
            let l = crate::engine::kinks::replay(&kinks, || loss_at(model, xs, ys, seed));
            p.var.set_value(original.clone());
            Ok(l?.value().item() as f64)
        };
        let numeric_at = |j: usize, step: f32, model: &mut Sequential| -> Result<f64> {
            let lp = loss_moved(j, step, model)?;
            let lm = loss_moved(j, -step, model)?;
            Ok((lp - lm) / (2.0 * step as f64))
        };
        let mut max_excess = 0.0f64;
        let mut max_mag = 0.0f64;
        let mut checked = 0;
        let mut skipped = 0;
        for &j in &entries {
            let n1 = numeric_at(j, h, model)?;
            let n2 = numeric_at(j, h / 2.0, model)?;
            let a = analytic_values[j] as f64;
            // |n1 - n2| estimates the numerical error of n1 (f32 rounding grows as the
            // step shrinks, truncation and kinks as it grows).
            let disc = (n1 - n2).abs();
            if disc > 0.1 * n1.abs().max(n2.abs()).max(a.abs()).max(ABS_FLOOR) {
                skipped += 1; // a kink within reach, or noise as large as the value
                continue;
            }
            checked += 1;
            max_excess = max_excess.max((a - n1).abs() - 2.0 * disc);
            max_mag = max_mag.max(a.abs()).max(n1.abs());
        }
        reports.push(ParamCheck {
            param: p.name.clone(),
            shape: p.var.shape(),
            checked,
            skipped_near_kink: skipped,
            rel_error: (max_excess.max(0.0) / max_mag.max(resolution)) as f32,
            grad_scale: max_mag as f32,
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    //! The checker's negative control: a correct backward passes with (nearly) every
    //! sampled entry compared, and each kind of wrong backward, applied to one parameter
    //! tensor at a time, is rejected for that tensor. Two nets: a smooth one (tanh) and
    //! one with kinks (ReLU, max-pool), where the frozen kinks and the skipping of
    //! disagreeing estimates could hide an error if they were too lenient.
    use super::*;
    use crate::nn::layers::keras::*;
    use crate::optimizers::Optimizer;

    const SPARSE: crate::losses::KerasLoss =
        crate::losses::KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        };
    /// Every entry of these small nets' tensors is checked (none has more).
    const ENTRIES: usize = 200;

    fn uniform(shape: &[usize], rng: &mut Rng) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(
            (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect(),
            shape,
        )
    }

    /// A net, a batch of 4 and its labels.
    fn smooth_net() -> (Sequential, Tensor, Tensor) {
        let mut m = Sequential::with_seed(&[6], 7);
        m.add(Dense(6).activation(Tanh)).unwrap();
        m.add(Dense(3).activation(Softmax)).unwrap();
        m.compile(SPARSE, Optimizer::sgd(0.0), &[]).unwrap();
        let mut rng = Rng::new(3);
        let x = uniform(&[4, 6], &mut rng);
        (m, x, Tensor::from_vec(vec![0.0, 2.0, 1.0, 2.0], &[4]))
    }

    fn kinked_net() -> (Sequential, Tensor, Tensor) {
        let mut m = Sequential::with_seed(&[1, 6, 6], 7);
        m.add(Conv2D(3, 3).activation(Relu)).unwrap();
        m.add(MaxPooling2D(2)).unwrap();
        m.add(Flatten()).unwrap();
        m.add(Dense(3).activation(Softmax)).unwrap();
        m.compile(SPARSE, Optimizer::sgd(0.0), &[]).unwrap();
        let mut rng = Rng::new(4);
        let x = uniform(&[4, 1, 6, 6], &mut rng);
        (m, x, Tensor::from_vec(vec![1.0, 0.0, 2.0, 1.0], &[4]))
    }

    /// A named corruption of one tensor's gradient.
    type WrongBackward = (&'static str, fn(Tensor) -> Tensor);

    /// The wrong backwards, as they would reach the checker. Each is a bug seen in
    /// backward code: a wrong constant (a 1/N or 1/(1 - rate) forgotten; off by only 5%
    /// here, smaller than such bugs are), a sign, the gradient of the transposed matrix
    /// (a swapped GEMM operand; square kernels only), one entry wrong (an index off at
    /// an edge), and a gradient that never arrives (a term missing).
    fn wrong_backwards() -> Vec<WrongBackward> {
        vec![
            ("scaled by 1.05", |g| g.map(|v| v * 1.05)),
            ("sign flipped", |g| g.map(|v| -v)),
            ("transposed", |g| {
                let s = g.shape().to_vec();
                let n = s[0]; // only called on square kernels
                let d = g.to_f32_vec();
                Tensor::from_vec((0..n * n).map(|i| d[(i % n) * n + i / n]).collect(), &s)
            }),
            ("largest entry doubled", |g| {
                let d = g.to_f32_vec();
                let j = (0..d.len())
                    .max_by(|&a, &b| d[a].abs().total_cmp(&d[b].abs()))
                    .unwrap();
                let mut d = d.to_vec();
                d[j] *= 2.0;
                Tensor::from_vec(d, g.shape())
            }),
            ("zero", |g| g.map(|_| 0.0)),
        ]
    }

    fn check_net(
        net: fn() -> (Sequential, Tensor, Tensor),
        analytic: &dyn Fn(&str, Tensor) -> Tensor,
    ) -> Vec<ParamCheck> {
        let (mut m, x, y) = net();
        check_with_analytic(&mut m, &[x], &[y], ENTRIES, 1e-2, analytic).unwrap()
    }

    #[test]
    fn a_correct_backward_passes_with_every_entry_compared() {
        for (name, net) in [
            ("smooth", smooth_net as fn() -> _),
            ("kinked", kinked_net as fn() -> _),
        ] {
            let reports = check_net(net, &|_, g| g);
            assert_eq!(
                reports.len(),
                4,
                "{name}: two tensors per layer with weights"
            );
            for r in &reports {
                let n: usize = r.shape.iter().product();
                assert!(r.passed(), "{name}: {r:?}");
                // Nearly every entry compared, not skipped: at most 1 in 10 (kinks the
                // replay cannot freeze, e.g. a pooling tie).
                assert!(10 * r.checked >= 9 * n, "{name}: {r:?}");
            }
        }
    }

    #[test]
    fn every_kind_of_wrong_backward_is_rejected_in_every_tensor() {
        for (name, net) in [
            ("smooth", smooth_net as fn() -> _),
            ("kinked", kinked_net as fn() -> _),
        ] {
            let params: Vec<(String, bool)> = check_net(net, &|_, g| g)
                .into_iter()
                .map(|r| (r.param, r.shape.len() == 2 && r.shape[0] == r.shape[1]))
                .collect();
            for (target, square) in &params {
                for (bug, wrong) in wrong_backwards() {
                    if bug == "transposed" && !square {
                        continue;
                    }
                    let reports = check_net(net, &|p, g| if p == target { wrong(g) } else { g });
                    for r in &reports {
                        if &r.param == target {
                            assert!(!r.passed(), "{name}: {target} {bug} was accepted: {r:?}");
                        } else {
                            assert!(r.passed(), "{name}: {target} {bug} failed {r:?}");
                        }
                    }
                }
            }
        }
    }
}
