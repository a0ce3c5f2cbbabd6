//! `Model`: a model graph (`nn::Graph`) with Keras' `compile`, `fit`, `evaluate` and the
//! state they keep (losses, loss weights, optimizer, metrics, the stop flag). The graph's
//! own API (`add`, `layers`, `predict`, `summary`, ...) is reached through `Deref`.
//! `Sequential` is the same type: a model whose graph is a chain.

use super::history::History;
use super::metrics::Metric;
use crate::engine::{no_grad, Tensor, Var};
use crate::error::{Error, Result};
use crate::losses::{Loss, LossConfig, Target};
use crate::nn::functional::SymbolicTensor;
use crate::nn::layers::dims::{known, IntoDims};
use crate::nn::layers::Activation;
use crate::nn::{Graph, ModelConfig};
use crate::optimizers::Optimizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// The `compile` section of a saved model config (`ModelConfig::compile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileConfig {
    /// The loss of the first output (of every output when `losses` is absent): a Keras
    /// loss's config, or `{"custom": NAME}` (see `losses::register`).
    pub loss: LossConfig,
    /// One loss per output, for models with several outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub losses: Option<Vec<LossConfig>>,
    /// The weight of each output's loss in the total (default: 1 each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_weights: Option<Vec<f32>>,
    pub optimizer: crate::optimizers::OptimizerConfig,
    pub metrics: Vec<String>,
}

pub(super) struct Compiled {
    /// One loss per output (one `Arc` may serve several).
    pub losses: Vec<Arc<dyn Loss>>,
    /// The weight of each output's loss in the total that training minimizes.
    pub loss_weights: Vec<f32>,
    pub optimizer: Optimizer,
    /// Computed for every output.
    pub metrics: Vec<Metric>,
}

/// Keras' `Sequential` is a `Model` whose layers form a chain.
pub type Sequential = Model;

/// Result of `evaluate`: the mean loss and each metric over the whole set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub loss: f32,
    pub metrics: BTreeMap<String, f32>,
}

impl Evaluation {
    pub fn accuracy(&self) -> Option<f32> {
        self.metrics.get("accuracy").copied()
    }
}

/// A model: a graph plus what `compile` sets. See the module docs.
pub struct Model {
    graph: Graph,
    pub(super) compiled: Option<Compiled>,
    /// Set by a callback to end `fit` after the current epoch.
    pub stop_training: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.graph.fmt(f)
    }
}

impl Deref for Model {
    type Target = Graph;
    fn deref(&self) -> &Graph {
        &self.graph
    }
}

impl DerefMut for Model {
    fn deref_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }
}

impl From<Graph> for Model {
    fn from(graph: Graph) -> Model {
        Model {
            graph,
            compiled: None,
            stop_training: false,
        }
    }
}

impl Model {
    /// An empty sequential model for inputs of `input_shape` (no batch axis), seeded
    /// with 0: `&[1, 28, 28]`, or `&[None, Some(8)]` for sequences of any length.
    pub fn new(input_shape: impl IntoDims) -> Model {
        Graph::new(input_shape).into()
    }

    /// The seed fixes weight initialization, shuffling and dropout masks.
    pub fn with_seed(input_shape: impl IntoDims, seed: u64) -> Model {
        Graph::with_seed(input_shape, seed).into()
    }

    /// A model from its inputs to its outputs (Keras' `Model(inputs, outputs)`); see
    /// `nn::functional`. The seed fixes weight initialization, shuffling and dropout
    /// masks.
    pub fn functional(
        inputs: &[&SymbolicTensor],
        outputs: &[&SymbolicTensor],
        seed: u64,
    ) -> Result<Model> {
        Ok(Graph::functional(inputs, outputs, seed)?.into())
    }

    /// The graph alone (what a nested model or an inference user needs).
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph, giving up the compile state.
    pub fn into_graph(self) -> Graph {
        self.graph
    }

    /// Builds a model from its architecture, compiled if the config has a `compile`
    /// section; weights are fresh (load them afterwards).
    pub fn from_config(cfg: &ModelConfig, seed: u64) -> Result<Model> {
        let mut m: Model = Graph::from_config(cfg, seed)?.into();
        if let Some(json) = &cfg.compile {
            let c: CompileConfig = serde_json::from_value(json.clone())
                .map_err(|e| Error::invalid(format!("compile: {e}")))?;
            let o = &c.optimizer;
            let bad = |what: &str, v: f32| {
                Error::invalid(format!("compile: the optimizer's {what} is {v}"))
            };
            if !(o.learning_rate.is_finite() && o.learning_rate >= 0.0) {
                return Err(bad("learning_rate", o.learning_rate));
            }
            if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
                return Err(bad("weight_decay", o.weight_decay));
            }
            let metrics: Vec<&str> = c.metrics.iter().map(|s| s.as_str()).collect();
            let losses = match &c.losses {
                Some(each) => each
                    .iter()
                    .map(LossConfig::build)
                    .collect::<Result<Vec<_>>>()?,
                None => vec![c.loss.build()?; m.output_ids().len()],
            };
            m.compile_shared(
                losses,
                c.loss_weights.as_deref(),
                Optimizer::from_config(&c.optimizer),
                &metrics,
            )?;
        }
        Ok(m)
    }

    /// The architecture as plain data, with the `compile` section if compiled.
    pub fn config(&self) -> ModelConfig {
        let mut cfg = self.graph.config();
        cfg.compile = self.compiled.as_ref().map(|c| {
            let compile = CompileConfig {
                loss: LossConfig::of(c.losses[0].as_ref()),
                losses: (c.losses.len() > 1).then(|| {
                    c.losses
                        .iter()
                        .map(|l| LossConfig::of(l.as_ref()))
                        .collect()
                }),
                loss_weights: c
                    .loss_weights
                    .iter()
                    .any(|&w| w != 1.0)
                    .then(|| c.loss_weights.clone()),
                optimizer: c.optimizer.config(),
                metrics: c.metrics.iter().map(|m| m.name().to_string()).collect(),
            };
            // Through text: `to_value` widens each f32 to f64 and would write 0.9 as
            // 0.8999999761581421; the text keeps f32's shortest form.
            let text = serde_json::to_string(&compile).expect("compile configs serialize");
            serde_json::from_str(&text).expect("serde_json reads what it wrote")
        });
        cfg
    }

    /// Sets the loss, the optimizer and the metrics (`"accuracy"`). The loss is any
    /// `Loss`: one of Keras' (`KerasLoss`), a closure (`losses::from_fn`) or a struct of
    /// yours. A model with several outputs gets the same loss on each, as in Keras (see
    /// `compile_outputs`).
    pub fn compile(
        &mut self,
        loss: impl Loss + 'static,
        optimizer: Optimizer,
        metrics: &[&str],
    ) -> Result<()> {
        let loss: Arc<dyn Loss> = Arc::new(loss);
        let losses = vec![loss; self.output_ids().len()];
        self.compile_shared(losses, None, optimizer, metrics)
    }

    /// Compiles a model with several outputs: one loss per output, in the order the
    /// outputs were given, and optionally the weight of each in the total that training
    /// minimizes (Keras' `loss=[...]`, `loss_weights=[...]`). The metrics are computed
    /// for every output. Losses of different types go in as `Arc<dyn Loss>`:
    /// `compile_outputs([Arc::new(sparse) as Arc<dyn Loss>, Arc::new(focal)], ...)`.
    pub fn compile_outputs<L: Loss + 'static>(
        &mut self,
        losses: impl IntoIterator<Item = L>,
        loss_weights: Option<&[f32]>,
        optimizer: Optimizer,
        metrics: &[&str],
    ) -> Result<()> {
        let losses = losses
            .into_iter()
            .map(|l| Arc::new(l) as Arc<dyn Loss>)
            .collect();
        self.compile_shared(losses, loss_weights, optimizer, metrics)
    }

    /// `compile_outputs` with the losses already shared (a loss may serve several
    /// outputs, and `from_config` builds them shared).
    fn compile_shared(
        &mut self,
        losses: Vec<Arc<dyn Loss>>,
        loss_weights: Option<&[f32]>,
        optimizer: Optimizer,
        metrics: &[&str],
    ) -> Result<()> {
        let n = self.output_ids().len();
        if losses.len() != n {
            return Err(Error::invalid(format!(
                "compile: model '{}' has {n} output{}, got {} losses",
                self.name,
                if n == 1 { "" } else { "s" },
                losses.len()
            )));
        }
        let loss_weights = match loss_weights {
            None => vec![1.0; n],
            Some(w) if w.len() != n => {
                return Err(Error::invalid(format!(
                    "compile: model '{}' has {n} outputs, got {} loss weights",
                    self.name,
                    w.len()
                )))
            }
            Some(w) => {
                if let Some(bad) = w.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
                    return Err(Error::invalid(format!(
                        "compile: a loss weight is {bad}; they must be finite and >= 0"
                    )));
                }
                w.to_vec()
            }
        };
        optimizer
            .validate()
            .map_err(|e| Error::invalid(format!("compile: {e}")))?;
        let metrics = metrics
            .iter()
            .map(|m| Metric::from_name(m))
            .collect::<Result<Vec<_>>>()?;
        self.compiled = Some(Compiled {
            losses,
            loss_weights,
            optimizer,
            metrics,
        });
        Ok(())
    }

    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    pub fn optimizer_mut(&mut self) -> Option<&mut Optimizer> {
        self.compiled.as_mut().map(|c| &mut c.optimizer)
    }

    /// The loss of the (first) output, if compiled.
    pub fn loss(&self) -> Option<&dyn Loss> {
        self.compiled.as_ref().map(|c| c.losses[0].as_ref())
    }

    /// One loss per output, if compiled.
    pub fn losses(&self) -> Option<&[Arc<dyn Loss>]> {
        self.compiled.as_ref().map(|c| &c.losses[..])
    }

    /// For each output, whether its loss fuses the activation of the layer producing it
    /// (softmax with cross-entropy, sigmoid with binary cross-entropy): then the training
    /// forward returns that output's logits. Never for a tensor that a layer of the model
    /// also reads (it needs the activated values) or that is given as two outputs.
    pub(super) fn fused_outputs(&self) -> Vec<bool> {
        self.fused_activations()
            .iter()
            .map(Option::is_some)
            .collect()
    }

    /// For each output, the activation its loss fuses (see `fused_outputs`), if any: what
    /// the metrics that read values, not only their order, apply to the logits.
    pub(super) fn fused_activations(&self) -> Vec<Option<Activation>> {
        let Some(c) = &self.compiled else {
            return vec![None; self.output_ids().len()];
        };
        let outputs = self.output_ids();
        outputs
            .iter()
            .zip(&c.losses)
            .map(|(&t, loss)| {
                let layer = self.tensor_layer(t)?;
                let fusable = loss.fusable_activation()?;
                (layer.output_activation() == Some(fusable)
                    && !self.tensor_is_read(t)
                    && outputs.iter().filter(|&&o| o == t).count() == 1)
                    .then_some(fusable)
            })
            .collect()
    }

    /// The key under which output `k`'s `what` (`loss`, `accuracy`, ...) is logged:
    /// `what` itself for a model with one output, `OUTPUT_what` for several, as in
    /// Keras (`dense_1_loss`, `dense_1_accuracy`).
    pub(super) fn output_key(&self, k: usize, what: &str) -> String {
        if self.output_ids().len() == 1 {
            what.to_string()
        } else {
            format!("{}_{what}", self.tensor_name(self.output_ids()[k]))
        }
    }

    /// Checks data for `fit`/`evaluate`: one tensor per input (shapes as declared), one
    /// tensor of labels per output (as its loss takes them), the same number of samples
    /// in all. Returns that number. The model must be compiled.
    pub(super) fn check_data(&self, what: &str, xs: &[Tensor], ys: &[Tensor]) -> Result<usize> {
        let Some(c) = &self.compiled else {
            return Err(Error::invalid(format!(
                "{what}: the model is not compiled (call compile first)"
            )));
        };
        let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape().to_vec()).collect();
        self.check_inputs(&shapes).map_err(|e| e.context(what))?;
        if ys.len() != self.output_ids().len() {
            return Err(Error::invalid(format!(
                "{what}: model '{}' has {} outputs, got {} label tensors",
                self.name,
                self.output_ids().len(),
                ys.len()
            )));
        }
        let n = xs[0].shape()[0];
        for (k, y) in ys.iter().enumerate() {
            let which = if ys.len() == 1 {
                String::new()
            } else {
                format!(" for output '{}'", self.tensor_name(self.output_ids()[k]))
            };
            let ny = y.shape().first().copied().unwrap_or(0);
            if ny != n {
                return Err(Error::shape(format!(
                    "{what}: {n} inputs but {ny} labels{which} (x {:?}, y {:?})",
                    xs[0].shape(),
                    y.shape()
                )));
            }
            // An output with an axis known only per batch is checked by the loss itself.
            if let Some(out_shape) = known(self.output_shapes()[k]) {
                c.losses[k]
                    .check_target(&Target::from(y), &out_shape)
                    .map_err(|e| e.context(&format!("{what}{which}")))?;
            }
        }
        Ok(n)
    }

    /// The objective a training step of a compiled model differentiates: the sum of the
    /// outputs' losses, each times its loss weight, plus the layers' weight penalties.
    /// Also returns each output's own (unweighted) loss, as Keras logs them.
    pub(super) fn training_objective(
        &self,
        outs: &[Var],
        labels: &[Target],
        fused: &[bool],
    ) -> Result<(Var, Vec<f32>)> {
        self.training_objective_weighted(outs, labels, fused, None)
    }

    /// `training_objective` with one weight per sample of the batch, applied to every
    /// output's loss (`Loss::compute_weighted`); `None` is the unweighted objective.
    pub(super) fn training_objective_weighted(
        &self,
        outs: &[Var],
        labels: &[Target],
        fused: &[bool],
        weights: Option<&Tensor>,
    ) -> Result<(Var, Vec<f32>)> {
        let c = self
            .compiled
            .as_ref()
            .ok_or_else(|| Error::invalid("the model is not compiled (call compile first)"))?;
        let mut total: Option<Var> = None;
        let mut each = Vec::with_capacity(outs.len());
        for (k, out) in outs.iter().enumerate() {
            let loss = match weights {
                None => c.losses[k].compute(out, &labels[k], fused[k])?,
                Some(w) => c.losses[k].compute_weighted(out, &labels[k], fused[k], w)?,
            };
            each.push(loss.value().item());
            // A weight of 1 multiplies nothing, so a one-output model differentiates
            // exactly what it did before loss weights existed.
            let w = c.loss_weights[k];
            let weighted = if w == 1.0 {
                loss
            } else {
                crate::ops::elementwise::scale(&loss, w)
            };
            total = Some(match total {
                None => weighted,
                Some(t) => crate::ops::elementwise::add(&t, &weighted)?,
            });
        }
        let total = total.ok_or_else(|| Error::invalid("the model has no outputs"))?;
        let total = match self.regularization_penalty() {
            Some(p) => crate::ops::elementwise::add(&total, &p)?,
            None => total,
        };
        Ok((total, each))
    }

    /// Mean loss (with the layers' weight penalties, as in Keras) and metrics over
    /// `(x, y)`, in inference mode.
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Evaluation> {
        self.evaluate_many(std::slice::from_ref(x), std::slice::from_ref(y), batch_size)
    }

    /// `evaluate` for a model with several inputs or outputs: one tensor per input, one
    /// of labels per output. `loss` is the weighted total; each output's own loss and
    /// metrics are under `OUTPUT_loss`, `OUTPUT_accuracy`, ... when there are several.
    pub fn evaluate_many(
        &mut self,
        xs: &[Tensor],
        ys: &[Tensor],
        batch_size: usize,
    ) -> Result<Evaluation> {
        let n = self.check_data("evaluate", xs, ys)?;
        let metric_list = self.compiled.as_ref().expect("checked").metrics.clone();
        let fused = self.fused_outputs();
        let fused_acts = self.fused_activations();
        let _g = no_grad();
        let bs = batch_size.max(1);
        let mut tally = super::metrics::Tally::new(self.output_ids().len(), metric_list.len());
        for start in (0..n).step_by(bs) {
            let end = (start + bs).min(n);
            let xb: Vec<Var> = xs
                .iter()
                .map(|x| Var::constant(x.slice_rows(start, end)))
                .collect();
            let yb: Vec<Tensor> = ys.iter().map(|y| y.slice_rows(start, end)).collect();
            let outs = self.run(&xb, false, &fused, None, true, None)?;
            // Weight penalties included, as Keras' evaluate and val_loss do: the loss
            // reported is the objective training minimizes.
            let targets: Vec<Target> = yb.iter().map(Target::from).collect();
            let (loss, each) = self.training_objective(&outs, &targets, &fused)?;
            let outs: Vec<Tensor> = outs.iter().map(|o| o.value()).collect();
            tally.add(
                end - start,
                loss.value().item(),
                &each,
                &outs,
                &yb,
                &fused_acts,
                &metric_list,
            );
        }
        let mut metrics: BTreeMap<String, f32> =
            tally.logs(self, &metric_list).into_iter().collect();
        let loss = metrics.remove("loss").unwrap_or(f32::NAN);
        Ok(Evaluation { loss, metrics })
    }

    /// Trains the model; see `FitArgs`.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, args: super::fit::FitArgs) -> Result<History> {
        super::fit::fit(self, std::slice::from_ref(x), std::slice::from_ref(y), args)
    }

    /// Trains a model with several inputs or outputs: one tensor per input and one of
    /// labels per output, in the order given to `Model::functional` (Keras'
    /// `fit([x1, x2], [y1, y2])`). The loss minimized is the weighted sum of the outputs'
    /// losses (`compile_outputs`); each output's loss and metrics are logged as
    /// `OUTPUT_loss`, `OUTPUT_accuracy`, ... (`val_` too).
    /// Trains on the batches of `source` (Keras' `fit` on a generator or `tf.data`):
    /// batches may differ in size and in the axes the model leaves open (`None`), e.g.
    /// sequences of length 5 and 17 in one epoch. Same loop, callbacks, history and
    /// progress as `fit`; see `source.rs` for what `FitArgs` fields apply.
    pub fn fit_source(
        &mut self,
        source: &mut impl super::source::BatchSource,
        args: super::fit::FitArgs,
    ) -> Result<History> {
        super::fit::fit_source(self, source, args)
    }

    pub fn fit_many(
        &mut self,
        xs: &[Tensor],
        ys: &[Tensor],
        args: super::fit::FitArgs,
    ) -> Result<History> {
        super::fit::fit(self, xs, ys, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_refuses_an_out_of_range_optimizer() {
        let mut adam = Optimizer::adam(0.001);
        adam.epsilon = -1.0;
        let mut m = Sequential::with_seed(&[2], 0);
        m.add(crate::nn::layers::DenseConfig::new(1)).unwrap();
        let e = m
            .compile(crate::losses::KerasLoss::MeanSquaredError, adam, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("compile: the optimizer's epsilon is -1"), "{e}");
    }
}
