//! The model's class prediction and confidence for every test sample, computed exactly
//! as `Sequential::evaluate` counts correct answers (same batches, same logits-or-
//! probabilities form, same argmax), so the report's counts equal `nabla evaluate`'s.

use crate::engine::{no_grad, Tensor, Var};
use crate::error::{Error, Result};
use crate::nn::layers::Activation;
use crate::ops::activation::{sigmoid_scalar, softmax_rows};
use crate::training::metrics::{label_classes, predicted_classes};
use crate::training::Sequential;

/// Per-sample true class, predicted class and the probability given to the prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub labels: Vec<usize>,
    pub predicted: Vec<usize>,
    /// Probability of the predicted class (softmax, or sigmoid for one output).
    pub confidence: Vec<f32>,
    /// Number of classes: the model's outputs, or 2 for a single sigmoid output.
    pub num_classes: usize,
}

impl Predictions {
    /// Indices of the samples whose prediction differs from the label, in order.
    pub fn wrong(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.labels.len()).filter(|&i| self.labels[i] != self.predicted[i])
    }
}

/// Class probabilities of every row of `x`, `num_classes` per row (for a single sigmoid
/// output, `[1 - p, p]`), computed as `predict_classes` does (logits through softmax or
/// sigmoid), so an average over several models (an ensemble) is an average of
/// probabilities. Returns the probabilities and `num_classes`.
pub fn predict_probabilities(
    model: &mut Sequential,
    x: &Tensor,
    batch_size: usize,
) -> Result<(Vec<f32>, usize)> {
    let n = x.shape().first().copied().unwrap_or(0);
    let cols = crate::nn::layers::dims::numel(model.output_shape()).ok_or_else(|| {
        Error::shape(format!(
            "model '{}': predictions need a known output shape, got {:?}",
            model.name,
            model.output_shape()
        ))
    })?;
    let fused = match (model.loss(), model.layers().last()) {
        (Some(loss), Some(last)) => {
            loss.fusable_activation().is_some()
                && last.output_activation() == loss.fusable_activation()
        }
        _ => false,
    };
    let softmax_out =
        model.layers().last().and_then(|l| l.output_activation()) == Some(Activation::Softmax);
    let _g = no_grad();
    let bs = batch_size.max(1);
    let classes = if cols == 1 { 2 } else { cols };
    let mut probs = Vec::with_capacity(n * classes);
    for start in (0..n).step_by(bs) {
        let end = (start + bs).min(n);
        let xb = Var::constant(x.slice_rows(start, end));
        let values = model.forward_with(&xb, false, fused)?.value().to_f32_vec();
        if cols == 1 {
            for v in values {
                let p = if fused { sigmoid_scalar(v) } else { v };
                probs.extend([1.0 - p, p]);
            }
        } else if fused || !softmax_out {
            probs.extend(softmax_rows(&values, cols));
        } else {
            probs.extend(values);
        }
    }
    Ok((probs, classes))
}

/// Classifies every row of `x` (labels `y`) in batches of `batch_size`.
pub fn predict_classes(
    model: &mut Sequential,
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
) -> Result<Predictions> {
    let n = x.shape().first().copied().unwrap_or(0);
    if y.shape().first().copied().unwrap_or(0) != n {
        return Err(Error::shape(format!(
            "{n} inputs but {} labels (x {:?}, y {:?})",
            y.shape().first().copied().unwrap_or(0),
            x.shape(),
            y.shape()
        )));
    }
    let cols = crate::nn::layers::dims::numel(model.output_shape()).ok_or_else(|| {
        Error::shape(format!(
            "model '{}': predictions need a known output shape, got {:?}",
            model.name,
            model.output_shape()
        ))
    })?;
    // The same choice `evaluate` makes: when the loss fuses the output activation, the
    // last layer returns logits and the argmax is taken on them.
    let fused = match (model.loss(), model.layers().last()) {
        (Some(loss), Some(last)) => {
            loss.fusable_activation().is_some()
                && last.output_activation() == loss.fusable_activation()
        }
        _ => false,
    };
    let softmax_out =
        model.layers().last().and_then(|l| l.output_activation()) == Some(Activation::Softmax);
    let _g = no_grad();
    let bs = batch_size.max(1);
    let mut predicted = Vec::with_capacity(n);
    let mut confidence = Vec::with_capacity(n);
    for start in (0..n).step_by(bs) {
        let end = (start + bs).min(n);
        let xb = Var::constant(x.slice_rows(start, end));
        let out = model.forward_with(&xb, false, fused)?.value();
        let values = out.to_f32_vec();
        let pred = predicted_classes(&out, fused);
        if cols == 1 {
            for (&v, &p) in values.iter().zip(&pred) {
                let prob = if fused { sigmoid_scalar(v) } else { v };
                confidence.push(if p == 1 { prob } else { 1.0 - prob });
            }
        } else {
            let probs = if fused || !softmax_out {
                softmax_rows(&values, cols)
            } else {
                values
            };
            for (row, &p) in probs.chunks_exact(cols).zip(&pred) {
                confidence.push(row[p]);
            }
        }
        predicted.extend(pred);
    }
    Ok(Predictions {
        labels: label_classes(y),
        predicted,
        confidence,
        num_classes: if cols == 1 { 2 } else { cols },
    })
}
