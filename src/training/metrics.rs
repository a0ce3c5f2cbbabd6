//! Metrics computed from a batch's outputs and labels, accumulated over an epoch.
//!
//! `accuracy` picks its form from the shapes, as Keras does: argmax agreement for
//! several outputs (labels as class indices `[N]` or one-hot `[N, C]`), a 0.5 threshold
//! on probabilities (0 on logits) for a single output.

use crate::engine::Tensor;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Accuracy,
}

impl Metric {
    pub fn from_name(name: &str) -> Result<Metric> {
        match name {
            "accuracy" | "acc" => Ok(Metric::Accuracy),
            other => Err(Error::invalid(format!(
                "unknown metric '{other}'; known: accuracy"
            ))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
        }
    }
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
            .data()
            .iter()
            .map(|&v| usize::from(v > threshold))
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
            .data()
            .iter()
            .map(|&v| v.round().max(0.0) as usize)
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
        let bin = Tensor::from_vec(vec![0.2, 0.7], &[2, 1]);
        assert_eq!(
            count_correct(&bin, &Tensor::from_vec(vec![0., 1.], &[2]), false),
            2
        );
    }
}
