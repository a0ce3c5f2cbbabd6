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
        let analytic = p
            .var
            .grad()
            .unwrap_or_else(|| Tensor::zeros(&p.var.shape()));
        let n = analytic.numel();
        let mut entries: Vec<usize> = (0..n).collect();
        if n > max_entries {
            pick.shuffle(&mut entries);
            entries.truncate(max_entries);
        }
        let original = p.var.value();
        // The loss with entry `j` moved by `delta`, kinks replayed, no graph recorded.
        let loss_moved = |j: usize, delta: f32, model: &mut Sequential| -> Result<f64> {
            let mut moved = original.clone();
            moved.data_mut()[j] += delta;
            p.var.set_value(moved);
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
            let a = analytic.data()[j] as f64;
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
