//! Gradient check of a whole model: every parameter tensor's analytic gradient (one
//! backward pass) against central differences of the training loss, on a sample of its
//! entries. Used by `nabla gradcheck NAME` and by the layer test suite.
//!
//! The forward runs in training mode (batch norm uses batch statistics) with the model's
//! random generator reseeded before every evaluation, so dropout masks are the same in
//! every evaluation and the loss is a fixed differentiable function of the weights.
//! A ReLU or max-pool kink inside `[w - h, w + h]` makes the numerical estimate wrong
//! (not the backward); such entries are detected by comparing the estimates at `h` and
//! `h/2` and skipped, and the number skipped is reported.

use super::model::Sequential;
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::losses::Loss;

#[derive(Debug, Clone)]
pub struct ParamCheck {
    pub param: String,
    pub shape: Vec<usize>,
    pub checked: usize,
    pub skipped_near_kink: usize,
    /// Normwise relative error over the checked entries: max|a - n| / max(|a|, |n|).
    pub rel_error: f32,
}

fn loss_at(model: &mut Sequential, x: &Tensor, y: &Tensor, loss: Loss, seed: u64) -> Result<Var> {
    *model.rng_mut() = Rng::new(seed);
    let fused = model.fuses_output_activation();
    let out = model.forward_with(&Var::constant(x.clone()), true, fused)?;
    loss.compute(&out, y, fused)
}

/// Checks up to `max_entries` entries of every trainable parameter.
pub fn check_model(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    max_entries: usize,
    h: f32,
) -> Result<Vec<ParamCheck>> {
    let loss = model
        .loss()
        .ok_or_else(|| Error::invalid("gradcheck: compile the model first"))?;
    let seed = 1234;
    let params: Vec<_> = model.params().into_iter().filter(|p| p.trainable).collect();
    for p in &params {
        p.var.zero_grad();
    }
    loss_at(model, x, y, loss, seed)?.backward();
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
        let numeric_at = |j: usize, step: f32, model: &mut Sequential| -> Result<f64> {
            let mut plus = original.clone();
            plus.data_mut()[j] += step;
            p.var.set_value(plus);
            let lp = {
                let _g = crate::engine::no_grad();
                loss_at(model, x, y, loss, seed)?.value().item() as f64
            };
            let mut minus = original.clone();
            minus.data_mut()[j] -= step;
            p.var.set_value(minus);
            let lm = {
                let _g = crate::engine::no_grad();
                loss_at(model, x, y, loss, seed)?.value().item() as f64
            };
            p.var.set_value(original.clone());
            Ok((lp - lm) / (2.0 * step as f64))
        };
        let mut max_diff = 0.0f64;
        let mut max_mag = 0.0f64;
        let mut checked = 0;
        let mut skipped = 0;
        for &j in &entries {
            let n1 = numeric_at(j, h, model)?;
            let n2 = numeric_at(j, h / 2.0, model)?;
            let a = analytic.data()[j] as f64;
            let scale = n1.abs().max(n2.abs()).max(1e-4);
            if (n1 - n2).abs() > 0.1 * scale && (a - n1).abs() > 1e-6 {
                skipped += 1; // the two steps disagree: a kink lies within reach
                continue;
            }
            checked += 1;
            max_diff = max_diff.max((a - n1).abs());
            max_mag = max_mag.max(a.abs()).max(n1.abs());
        }
        reports.push(ParamCheck {
            param: p.name.clone(),
            shape: p.var.shape(),
            checked,
            skipped_near_kink: skipped,
            rel_error: if max_mag == 0.0 { 0.0 } else { (max_diff / max_mag) as f32 },
        });
    }
    Ok(reports)
}
