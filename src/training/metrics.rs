//! Metrics computed from a batch's outputs and labels, accumulated over an epoch.
//!
//! `accuracy` picks its form from the shapes, as Keras does: argmax agreement for
//! several outputs (labels as class indices `[N]` or one-hot `[N, C]`), a 0.5 threshold
//! on probabilities (0 on logits) for a single output.
//!
//! Regression (over every output value against its label): `mae`, `mse`, `rmse`, `r2`
//! (1 - SS_res / SS_tot, about the labels' mean over the whole epoch), `mape` (percent,
//! Keras' `100 * mean(|y - p| / max(|y|, 1e-7))`). They read the values, so where the
//! loss fused the output's sigmoid or softmax (the training forward gives logits) that
//! activation is applied first: an autoencoder's `mse` is over its pixels, as in Keras.
//!
//! Binary classification (one output column, or two with class 1 the positive one; NaN
//! for more): `precision`, `recall`, `f1` at the accuracy's threshold, `auc` (ROC: the
//! probability that a random positive scores above a random negative, ties counting
//! half) and `auc_pr` (the area under the precision-recall curve as average precision,
//! scikit-learn's `average_precision_score`). The AUCs keep every score of the epoch.

use super::model::Model;
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::nn::layers::Activation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Accuracy,
    /// The label is among the `k` highest outputs (Keras' `top_k_categorical_accuracy`,
    /// k = 5 by default; logged as `top_K_accuracy`).
    TopK(usize),
    Mae,
    Mse,
    Rmse,
    R2,
    Mape,
    Precision,
    Recall,
    F1,
    AucRoc,
    AucPr,
}

/// Every name `from_name` knows, for messages.
const KNOWN: &str = "accuracy, top_k_categorical_accuracy, top_K_accuracy (e.g. top_3_accuracy), \
                     mae, mse, rmse, r2, mape, precision, recall, f1, auc, auc_pr";

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
            ("mae" | "mean_absolute_error", _) => Ok(Metric::Mae),
            ("mse" | "mean_squared_error", _) => Ok(Metric::Mse),
            ("rmse" | "root_mean_squared_error", _) => Ok(Metric::Rmse),
            ("r2" | "r2_score", _) => Ok(Metric::R2),
            ("mape" | "mean_absolute_percentage_error", _) => Ok(Metric::Mape),
            ("precision", _) => Ok(Metric::Precision),
            ("recall", _) => Ok(Metric::Recall),
            ("f1" | "f1_score", _) => Ok(Metric::F1),
            ("auc" | "auc_roc", _) => Ok(Metric::AucRoc),
            ("auc_pr", _) => Ok(Metric::AucPr),
            (other, None) => Err(Error::invalid(format!(
                "unknown metric '{other}'; known: {KNOWN}"
            ))),
        }
    }

    /// The key under which the metric is logged (and the name `from_name` reads back).
    pub fn name(&self) -> String {
        match self {
            Metric::Accuracy => "accuracy".to_string(),
            Metric::TopK(k) => format!("top_{k}_accuracy"),
            Metric::Mae => "mae".into(),
            Metric::Mse => "mse".into(),
            Metric::Rmse => "rmse".into(),
            Metric::R2 => "r2".into(),
            Metric::Mape => "mape".into(),
            Metric::Precision => "precision".into(),
            Metric::Recall => "recall".into(),
            Metric::F1 => "f1".into(),
            Metric::AucRoc => "auc".into(),
            Metric::AucPr => "auc_pr".into(),
        }
    }

    /// Rows of a batch counted as correct by this metric (accuracy and top-k; 0 for the
    /// others, which accumulate in a [`MetricState`]).
    pub fn count(&self, output: &Tensor, labels: &Tensor, logits: bool) -> usize {
        match *self {
            Metric::Accuracy => count_correct(output, labels, logits),
            Metric::TopK(k) => count_top_k(output, labels, k),
            _ => 0,
        }
    }
}

/// What a metric keeps over an epoch.
#[derive(Debug, Clone, Default)]
pub struct MetricState {
    /// Accuracy, top-k: rows correct.
    correct: usize,
    /// Regression sums over output values: count, |e|, e^2, |e|/|y|, y, y^2.
    n: f64,
    abs: f64,
    sq: f64,
    ape: f64,
    sum_y: f64,
    sum_y2: f64,
    /// Binary: true and false positives, false negatives, rows seen.
    tp: f64,
    fp: f64,
    fneg: f64,
    rows: f64,
    /// Binary AUCs: (score, is positive) of every row.
    scores: Vec<(f32, bool)>,
}

impl MetricState {
    /// Adds one batch; `fused`: the activation the loss fused, if any (then `output`
    /// holds its logits).
    pub fn add(&mut self, m: Metric, output: &Tensor, labels: &Tensor, fused: Option<Activation>) {
        let logits = fused.is_some();
        match m {
            Metric::Accuracy | Metric::TopK(_) => self.correct += m.count(output, labels, logits),
            Metric::Mae | Metric::Mse | Metric::Rmse | Metric::R2 | Metric::Mape => {
                let (p, y) = (activated(output, fused), labels.to_f32_vec());
                if p.len() != y.len() {
                    return;
                }
                for (&p, &y) in p.iter().zip(&y) {
                    let (p, y) = (p as f64, y as f64);
                    let e = (y - p).abs();
                    self.n += 1.0;
                    self.abs += e;
                    self.sq += e * e;
                    self.ape += e / y.abs().max(1e-7);
                    self.sum_y += y;
                    self.sum_y2 += y * y;
                }
            }
            Metric::Precision | Metric::Recall | Metric::F1 | Metric::AucRoc | Metric::AucPr => {
                let Some(scores) = positive_scores(output) else {
                    self.rows = f64::NAN;
                    return;
                };
                let threshold = if logits { 0.0 } else { 0.5 };
                for (s, l) in scores.into_iter().zip(label_classes(labels)) {
                    let (pred, pos) = (s > threshold, l == 1);
                    self.rows += 1.0;
                    self.tp += (pred && pos) as u8 as f64;
                    self.fp += (pred && !pos) as u8 as f64;
                    self.fneg += (!pred && pos) as u8 as f64;
                    if matches!(m, Metric::AucRoc | Metric::AucPr) {
                        self.scores.push((s, pos));
                    }
                }
            }
        }
    }

    /// The metric's value over what was added; `seen`: rows added (for the accuracies).
    pub fn value(&self, m: Metric, seen: usize) -> f32 {
        let div = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let v = match m {
            Metric::Accuracy | Metric::TopK(_) => div(self.correct as f64, seen as f64),
            Metric::Mae => div(self.abs, self.n),
            Metric::Mse => div(self.sq, self.n),
            Metric::Rmse => div(self.sq, self.n).sqrt(),
            Metric::Mape => 100.0 * div(self.ape, self.n),
            Metric::R2 => {
                let ss_tot = self.sum_y2 - self.sum_y * self.sum_y / self.n.max(1.0);
                if self.n == 0.0 {
                    0.0
                } else if ss_tot > 0.0 {
                    1.0 - self.sq / ss_tot
                } else {
                    f64::NAN
                }
            }
            Metric::Precision => div(self.tp, self.tp + self.fp),
            Metric::Recall => div(self.tp, self.tp + self.fneg),
            Metric::F1 => div(2.0 * self.tp, 2.0 * self.tp + self.fp + self.fneg),
            Metric::AucRoc => roc_auc(&self.scores),
            Metric::AucPr => average_precision(&self.scores),
        };
        if self.rows.is_nan() {
            f32::NAN
        } else {
            v as f32
        }
    }
}

/// The output's values after the activation its loss fused (sigmoid per element, softmax
/// over the last axis); the values themselves without one.
fn activated(output: &Tensor, fused: Option<Activation>) -> Vec<f32> {
    let mut v = output.to_f32_vec();
    match fused {
        Some(Activation::Sigmoid) => v.iter_mut().for_each(|x| *x = 1.0 / (1.0 + (-*x).exp())),
        Some(Activation::Softmax) => {
            let cols = output.shape().last().copied().unwrap_or(1).max(1);
            for row in v.chunks_mut(cols) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row
                    .iter_mut()
                    .map(|x| {
                        *x = (*x - max).exp();
                        *x
                    })
                    .sum();
                row.iter_mut().for_each(|x| *x /= sum);
            }
        }
        _ => {}
    }
    v
}

/// The positive class's score per row: the single column, or column 1 of two.
fn positive_scores(output: &Tensor) -> Option<Vec<f32>> {
    let cols: usize = output.shape()[1..].iter().product();
    let v = output.to_f32_vec();
    match cols {
        1 => Some(v),
        2 => Some(v.chunks(2).map(|r| r[1]).collect()),
        _ => None,
    }
}

/// Area under the ROC curve: sorted by score, each positive counts the negatives below
/// it, plus half the negatives tied with it (the Mann-Whitney U statistic / (P N)).
pub fn roc_auc(scores: &[(f32, bool)]) -> f64 {
    let mut s = scores.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut below, mut u) = (0f64, 0f64);
    let mut i = 0;
    while i < s.len() {
        let j = i + s[i..].iter().take_while(|x| x.0 == s[i].0).count();
        let pos = s[i..j].iter().filter(|x| x.1).count() as f64;
        let neg = (j - i) as f64 - pos;
        u += pos * (below + neg / 2.0);
        below += neg;
        i = j;
    }
    let p = s.iter().filter(|x| x.1).count() as f64;
    let n = s.len() as f64 - p;
    if p == 0.0 || n == 0.0 {
        f64::NAN
    } else {
        u / (p * n)
    }
}

/// Average precision: the sum over the distinct score thresholds, highest first, of
/// (recall gained) * (precision at that threshold).
pub fn average_precision(scores: &[(f32, bool)]) -> f64 {
    let mut s = scores.to_vec();
    s.sort_by(|a, b| b.0.total_cmp(&a.0));
    let p = s.iter().filter(|x| x.1).count() as f64;
    if p == 0.0 {
        return f64::NAN;
    }
    let (mut tp, mut fp, mut ap, mut i) = (0f64, 0f64, 0f64, 0);
    while i < s.len() {
        let j = i + s[i..].iter().take_while(|x| x.0 == s[i].0).count();
        let pos = s[i..j].iter().filter(|x| x.1).count() as f64;
        tp += pos;
        fp += (j - i) as f64 - pos;
        ap += pos / p * tp / (tp + fp);
        i = j;
    }
    ap
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
    /// `[output][metric]` what each metric keeps.
    states: Vec<Vec<MetricState>>,
}

impl Tally {
    pub fn new(outputs: usize, metrics: usize) -> Tally {
        Tally {
            seen: 0,
            loss: 0.0,
            output_losses: vec![0.0; outputs],
            states: vec![vec![MetricState::default(); metrics]; outputs],
        }
    }

    /// Adds one batch of `size` rows: its total loss, each output's loss, and the
    /// metrics of each output (`fused`: the activation whose logits the output holds).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        size: usize,
        loss: f32,
        output_losses: &[f32],
        outputs: &[Tensor],
        labels: &[Tensor],
        fused: &[Option<Activation>],
        metrics: &[Metric],
    ) {
        self.seen += size;
        self.loss += loss as f64 * size as f64;
        for (sum, l) in self.output_losses.iter_mut().zip(output_losses) {
            *sum += *l as f64 * size as f64;
        }
        // A custom training step may return no outputs: no metric counts its batch.
        if outputs.len() < self.states.len() {
            return;
        }
        for (k, states) in self.states.iter_mut().enumerate() {
            for (state, m) in states.iter_mut().zip(metrics) {
                state.add(*m, &outputs[k], &labels[k], fused[k]);
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
        for (k, states) in self.states.iter().enumerate() {
            for (m, st) in metrics.iter().zip(states) {
                logs.push((model.output_key(k, &m.name()), st.value(*m, self.seen)));
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

#[cfg(test)]
mod more_tests {
    use super::*;

    fn state(m: Metric, out: &[f32], y: &[f32], cols: usize) -> f32 {
        let mut st = MetricState::default();
        let n = out.len() / cols;
        // Two batches, to check the accumulation across them.
        let half = n / 2;
        for (a, b) in [(0, half), (half, n)] {
            let o = Tensor::from_vec(out[a * cols..b * cols].to_vec(), &[b - a, cols]);
            let l = Tensor::from_vec(y[a..b].to_vec(), &[b - a]);
            st.add(m, &o, &l, None);
        }
        st.value(m, n)
    }

    /// Where the loss fused the output's activation, the value metrics see probabilities:
    /// the same MSE as on the activated outputs, not one over logits.
    #[test]
    fn value_metrics_apply_the_fused_activation() {
        let logits = [-2.0f32, 0.0, 1.5, 3.0];
        let y = [0.0f32, 1.0, 1.0, 0.0];
        let sig: Vec<f32> = logits.iter().map(|x| 1.0 / (1.0 + (-x).exp())).collect();
        let want: f32 = sig
            .iter()
            .zip(&y)
            .map(|(p, y)| (p - y) * (p - y))
            .sum::<f32>()
            / 4.0;
        let run = |fused| {
            let mut st = MetricState::default();
            let o = Tensor::from_vec(logits.to_vec(), &[2, 2]);
            let l = Tensor::from_vec(y.to_vec(), &[2, 2]);
            st.add(Metric::Mse, &o, &l, fused);
            st.value(Metric::Mse, 2)
        };
        assert!((run(Some(Activation::Sigmoid)) - want).abs() < 1e-6);
        // Softmax per row: rows [-2, 0] and [1.5, 3].
        let soft = |a: f32, b: f32| {
            let (ea, eb) = ((a - b.max(a)).exp(), (b - b.max(a)).exp());
            [ea / (ea + eb), eb / (ea + eb)]
        };
        let p: Vec<f32> = [soft(-2.0, 0.0), soft(1.5, 3.0)].concat();
        let want: f32 = p
            .iter()
            .zip(&y)
            .map(|(p, y)| (p - y) * (p - y))
            .sum::<f32>()
            / 4.0;
        assert!((run(Some(Activation::Softmax)) - want).abs() < 1e-6);
        // Without a fused activation the values are taken as they are.
        let raw: f32 = logits
            .iter()
            .zip(&y)
            .map(|(p, y)| (p - y) * (p - y))
            .sum::<f32>()
            / 4.0;
        assert!((run(None) - raw).abs() < 1e-6);
    }

    #[test]
    fn regression_metrics_against_hand_values() {
        let p = [2.0, 4.0, 6.0, 9.0];
        let y = [1.0, 4.0, 8.0, 10.0];
        // errors 1, 0, 2, 1; mean y 5.75, SS_tot = 22.75 + 3.0625 + 5.0625 + 18.0625.
        assert!((state(Metric::Mae, &p, &y, 1) - 1.0).abs() < 1e-6);
        assert!((state(Metric::Mse, &p, &y, 1) - 1.5).abs() < 1e-6);
        assert!((state(Metric::Rmse, &p, &y, 1) - 1.5f32.sqrt()).abs() < 1e-6);
        let ss_tot = 4.75f64.powi(2) + 1.75f64.powi(2) + 2.25f64.powi(2) + 4.25f64.powi(2);
        let r2 = 1.0 - 6.0 / ss_tot;
        assert!((state(Metric::R2, &p, &y, 1) as f64 - r2).abs() < 1e-6);
        let mape = 100.0 * (1.0 / 1.0 + 0.0 + 2.0 / 8.0 + 1.0 / 10.0) / 4.0;
        assert!((state(Metric::Mape, &p, &y, 1) - mape).abs() < 1e-4);
    }

    #[test]
    fn binary_metrics_against_hand_values() {
        let p = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1];
        let y = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        // predicted 1 0 0 1 0 0 vs ... : tp 2 (0.9, 0.6), fp 1 (0.8), fn 1 (0.3).
        assert!((state(Metric::Precision, &p, &y, 1) - 2.0 / 3.0).abs() < 1e-6);
        assert!((state(Metric::Recall, &p, &y, 1) - 2.0 / 3.0).abs() < 1e-6);
        assert!((state(Metric::F1, &p, &y, 1) - 2.0 / 3.0).abs() < 1e-6);
        // Two columns: class 1's column is the score.
        let two: Vec<f32> = p.iter().flat_map(|&v| [1.0 - v, v]).collect();
        assert!((state(Metric::Precision, &two, &y, 2) - 2.0 / 3.0).abs() < 1e-6);
        assert!(state(Metric::Recall, &[0.1; 9], &[0., 1., 2.], 3).is_nan());
        // AP by hand: thresholds 0.9 (tp 1 fp 0: P 1, R 1/3), 0.8 (no recall gained),
        // 0.6 (tp 2 fp 1: P 2/3), 0.3 (tp 3 fp 1: P 3/4): AP = (1 + 2/3 + 3/4) / 3, as
        // scikit-learn's average_precision_score gives (0.8055...).
        let ap = (1.0 + 2.0 / 3.0 + 0.75) / 3.0;
        assert!((state(Metric::AucPr, &p, &y, 1) as f64 - ap).abs() < 1e-6);
    }

    /// Brute force: over all (positive, negative) pairs, 1 if the positive scores
    /// higher, 1/2 if tied.
    fn pair_count_auc(s: &[(f32, bool)]) -> f64 {
        let mut total = 0.0;
        let mut pairs = 0.0;
        for a in s.iter().filter(|x| x.1) {
            for b in s.iter().filter(|x| !x.1) {
                pairs += 1.0;
                total += if a.0 > b.0 {
                    1.0
                } else if a.0 == b.0 {
                    0.5
                } else {
                    0.0
                };
            }
        }
        total / pairs
    }

    #[test]
    fn roc_auc_equals_a_pair_count_with_ties() {
        let mut rng = crate::engine::Rng::new(5);
        for _ in 0..20 {
            let s: Vec<(f32, bool)> = (0..37)
                .map(|_| {
                    // Coarse scores so that ties happen.
                    let v = (rng.next_u64() % 8) as f32 / 8.0;
                    (v, rng.next_u64().is_multiple_of(3))
                })
                .collect();
            if s.iter().all(|x| x.1) || s.iter().all(|x| !x.1) {
                continue;
            }
            assert!((roc_auc(&s) - pair_count_auc(&s)).abs() < 1e-12);
        }
        assert!(roc_auc(&[(0.5, true)]).is_nan());
        assert_eq!(Metric::from_name("auc").unwrap(), Metric::AucRoc);
        for m in [
            "mae",
            "mse",
            "rmse",
            "r2",
            "mape",
            "precision",
            "recall",
            "f1",
            "auc_pr",
        ] {
            assert_eq!(Metric::from_name(m).unwrap().name(), m);
        }
    }
}
