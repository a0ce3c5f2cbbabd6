//! Metrics computed from a batch's outputs and labels, accumulated over an epoch.
//!
//! `accuracy` picks its form from the shapes, as Keras does: argmax agreement for
//! several outputs (labels as class indices `[N]` or one-hot `[N, C]`), a 0.5 threshold
//! on probabilities (0 on logits) for a single output.

use super::model::Model;
use crate::engine::Tensor;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Accuracy,
    /// The label is among the `k` highest outputs (Keras' `top_k_categorical_accuracy`,
    /// k = 5 by default; logged as `top_K_accuracy`).
    TopK(usize),
}

impl Metric {
    pub fn from_name(name: &str) -> Result<Metric> {
        let top_k = name
            .strip_prefix("top_")
            .and_then(|r| r.strip_suffix("_accuracy"))
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|&k| k > 0);
        match (name, top_k) {
            ("accuracy" | "acc", _) => Ok(Metric::Accuracy),
            ("top_k_categorical_accuracy" | "sparse_top_k_categorical_accuracy", _) => {
                Ok(Metric::TopK(5))
            }
            (_, Some(k)) => Ok(Metric::TopK(k)),
            (other, None) => Err(Error::invalid(format!(
                "unknown metric '{other}'; known: accuracy, top_k_categorical_accuracy, \
                 top_K_accuracy (e.g. top_3_accuracy)"
            ))),
        }
    }

    /// The key under which the metric is logged (and the name `from_name` reads back).
    pub fn name(&self) -> String {
        match self {
            Metric::Accuracy => "accuracy".to_string(),
            Metric::TopK(k) => format!("top_{k}_accuracy"),
        }
    }

    /// Rows of a batch counted as correct by this metric.
    pub fn count(&self, output: &Tensor, labels: &Tensor, logits: bool) -> usize {
        match *self {
            Metric::Accuracy => count_correct(output, labels, logits),
            Metric::TopK(k) => count_top_k(output, labels, k),
        }
    }
}

/// Rows whose label is among the `k` largest outputs (ties broken toward the label's
/// favour only if strictly fewer than `k` outputs exceed it). Monotone outputs
/// (probabilities or logits) give the same answer.
pub fn count_top_k(output: &Tensor, labels: &Tensor, k: usize) -> usize {
    let cols: usize = output.shape()[1..].iter().product();
    output
        .to_f32_vec()
        .chunks(cols.max(1))
        .zip(label_classes(labels))
        .filter(|(row, label)| {
            let Some(&v) = row.get(*label) else {
                return false;
            };
            row.iter().filter(|&&x| x > v).count() < k
        })
        .count()
}

/// Predicted class per row of `output` (`[N, C]` or `[N, 1]`/`[N]` for binary).
pub fn predicted_classes(output: &Tensor, logits: bool) -> Vec<usize> {
    let cols = if output.ndim() >= 2 {
        output.shape()[1..].iter().product()
    } else {
        1
    };
    if cols == 1 {
        let threshold = if logits { 0.0 } else { 0.5 };
        output
            .to_f32_vec()
            .into_iter()
            .map(|v| usize::from(v > threshold))
            .collect()
    } else {
        output.argmax_rows()
    }
}

/// True class per row of `labels` (`[N]` indices or `[N, C]` one-hot).
pub fn label_classes(labels: &Tensor) -> Vec<usize> {
    if labels.ndim() >= 2 && labels.shape()[1..].iter().product::<usize>() > 1 {
        labels.argmax_rows()
    } else {
        labels
            .to_f32_vec()
            .into_iter()
            .map(|v| v.round().max(0.0) as usize)
            .collect()
    }
}

/// Number of rows whose predicted class equals the label.
pub fn count_correct(output: &Tensor, labels: &Tensor, logits: bool) -> usize {
    predicted_classes(output, logits)
        .iter()
        .zip(label_classes(labels))
        .filter(|(p, l)| **p == *l)
        .count()
}

/// Running sums over an epoch of `fit` or over `evaluate`: the total loss, each
/// output's loss and each metric's count per output, weighted by batch size.
pub(super) struct Tally {
    seen: usize,
    loss: f64,
    output_losses: Vec<f64>,
    /// `[output][metric]` rows counted as correct.
    counts: Vec<Vec<usize>>,
}

impl Tally {
    pub fn new(outputs: usize, metrics: usize) -> Tally {
        Tally {
            seen: 0,
            loss: 0.0,
            output_losses: vec![0.0; outputs],
            counts: vec![vec![0; metrics]; outputs],
        }
    }

    /// Adds one batch of `size` rows: its total loss, each output's loss, and the
    /// metrics of each output (`fused`: the output is logits).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        size: usize,
        loss: f32,
        output_losses: &[f32],
        outputs: &[Tensor],
        labels: &[Tensor],
        fused: &[bool],
        metrics: &[Metric],
    ) {
        self.seen += size;
        self.loss += loss as f64 * size as f64;
        for (sum, l) in self.output_losses.iter_mut().zip(output_losses) {
            *sum += *l as f64 * size as f64;
        }
        // A custom training step may return no outputs: no metric counts its batch.
        if outputs.len() < self.counts.len() {
            return;
        }
        for (k, counts) in self.counts.iter_mut().enumerate() {
            for (count, m) in counts.iter_mut().zip(metrics) {
                *count += m.count(&outputs[k], &labels[k], fused[k]);
            }
        }
    }

    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The means so far, as logged: `loss`, then (with several outputs) each output's
    /// loss, then each output's metrics, under `model.output_key` names.
    pub fn logs(&self, model: &Model, metrics: &[Metric]) -> Vec<(String, f32)> {
        let n = self.seen.max(1) as f64;
        let mut logs = vec![("loss".to_string(), (self.loss / n) as f32)];
        if self.output_losses.len() > 1 {
            for (k, l) in self.output_losses.iter().enumerate() {
                logs.push((model.output_key(k, "loss"), (l / n) as f32));
            }
        }
        for (k, counts) in self.counts.iter().enumerate() {
            for (m, c) in metrics.iter().zip(counts) {
                logs.push((model.output_key(k, &m.name()), (*c as f64 / n) as f32));
            }
        }
        logs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_forms() {
        let out = Tensor::from_vec(vec![0.1, 0.9, 0.8, 0.2, 0.3, 0.7], &[3, 2]);
        assert_eq!(
            count_correct(&out, &Tensor::from_vec(vec![1., 0., 0.], &[3]), false),
            2
        );
        let onehot = Tensor::from_vec(vec![0., 1., 1., 0., 0., 1.], &[3, 2]);
        assert_eq!(count_correct(&out, &onehot, false), 3);
        let three = Tensor::from_vec(vec![0.5, 0.3, 0.2, 0.1, 0.3, 0.6], &[2, 3]);
        let y = Tensor::from_vec(vec![2., 0.], &[2]);
        assert_eq!(count_top_k(&three, &y, 1), 0);
        assert_eq!(count_top_k(&three, &y, 2), 0);
        assert_eq!(count_top_k(&three, &y, 3), 2);
        assert_eq!(
            Metric::from_name("top_2_accuracy").unwrap(),
            Metric::TopK(2)
        );
        assert_eq!(
            Metric::from_name(&Metric::TopK(3).name()).unwrap(),
            Metric::TopK(3)
        );
        assert!(Metric::from_name("top_0_accuracy").is_err());
        let bin = Tensor::from_vec(vec![0.2, 0.7], &[2, 1]);
        assert_eq!(
            count_correct(&bin, &Tensor::from_vec(vec![0., 1.], &[2]), false),
            2
        );
    }
}
