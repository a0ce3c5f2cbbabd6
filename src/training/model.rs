//! `Sequential`: a stack of layers with Keras' `add`, `compile`, `fit`, `evaluate`,
//! `predict` and `summary`.
//!
//! The input shape is given up front (without the batch axis, channels first:
//! `[1, 28, 28]` for MNIST), so each layer is built with its weights as soon as it is
//! added, and shape errors appear at `add`, naming the layer.

use super::history::History;
use super::metrics::Metric;
use crate::engine::{no_grad, Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::layers::{ForwardCtx, Layer, LayerConfig, Param};
use crate::losses::Loss;
use crate::optimizers::Optimizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The architecture of a `Sequential` model as plain data (saved as `model.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default = "default_model_name")]
    pub name: String,
    /// Input shape without the batch axis, e.g. `[1, 28, 28]`.
    pub input_shape: Vec<usize>,
    pub layers: Vec<LayerConfig>,
    /// Loss, optimizer and metrics, if the model was compiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<CompileConfig>,
    /// Class names for predictions (e.g. Fashion-MNIST's), if known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
}

fn default_model_name() -> String {
    "sequential".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompileConfig {
    pub loss: Loss,
    pub optimizer: crate::optimizers::OptimizerConfig,
    pub metrics: Vec<String>,
}

pub(super) struct Compiled {
    pub loss: Loss,
    pub optimizer: Optimizer,
    pub metrics: Vec<Metric>,
}

pub struct Sequential {
    pub name: String,
    input_shape: Vec<usize>,
    layers: Vec<Box<dyn Layer>>,
    /// Output shape of each layer (without batch).
    shapes: Vec<Vec<usize>>,
    pub(super) compiled: Option<Compiled>,
    pub(super) rng: Rng,
    /// Set by a callback to end `fit` after the current epoch.
    pub stop_training: bool,
    pub class_names: Vec<String>,
}

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

impl Sequential {
    /// An empty model for inputs of `input_shape` (no batch axis), seeded with 0.
    pub fn new(input_shape: &[usize]) -> Sequential {
        Sequential::with_seed(input_shape, 0)
    }

    /// The seed fixes weight initialization, shuffling and dropout masks.
    pub fn with_seed(input_shape: &[usize], seed: u64) -> Sequential {
        Sequential {
            name: default_model_name(),
            input_shape: input_shape.to_vec(),
            layers: Vec::new(),
            shapes: Vec::new(),
            compiled: None,
            rng: Rng::new(seed),
            stop_training: false,
            class_names: Vec::new(),
        }
    }

    /// Builds a model from its architecture; weights are fresh (load them afterwards).
    pub fn from_config(cfg: &ModelConfig, seed: u64) -> Result<Sequential> {
        let mut m = Sequential::with_seed(&cfg.input_shape, seed);
        m.name = cfg.name.clone();
        m.class_names = cfg.class_names.clone();
        for l in &cfg.layers {
            m.add(l.clone())?;
        }
        if let Some(c) = &cfg.compile {
            let metrics: Vec<&str> = c.metrics.iter().map(|s| s.as_str()).collect();
            m.compile(c.loss, Optimizer::from_config(&c.optimizer), &metrics)?;
        }
        Ok(m)
    }

    pub fn config(&self) -> ModelConfig {
        ModelConfig {
            name: self.name.clone(),
            input_shape: self.input_shape.clone(),
            layers: self.layers.iter().map(|l| l.config()).collect(),
            compile: self.compiled.as_ref().map(|c| CompileConfig {
                loss: c.loss,
                optimizer: c.optimizer.config(),
                metrics: c.metrics.iter().map(|m| m.name().to_string()).collect(),
            }),
            class_names: self.class_names.clone(),
        }
    }

    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Output shape (without batch).
    pub fn output_shape(&self) -> &[usize] {
        self.shapes.last().unwrap_or(&self.input_shape)
    }

    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Output shape of each layer (without batch).
    pub fn layer_output_shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Adds a layer, building its weights for the current output shape.
    pub fn add(&mut self, layer: impl Into<LayerConfig>) -> Result<&mut Self> {
        let cfg: LayerConfig = layer.into();
        let name = match cfg.name() {
            Some(n) => {
                if self.layers.iter().any(|l| l.name() == n) {
                    return Err(Error::invalid(format!("two layers are named '{n}'")));
                }
                n.to_string()
            }
            None => self.unique_name(cfg.base_name()),
        };
        let input = self.output_shape().to_vec();
        let out = cfg.output_shape(&name, &input)?;
        let layer = cfg.build(name, &input, &mut self.rng)?;
        self.layers.push(layer);
        self.shapes.push(out);
        Ok(self)
    }

    fn unique_name(&self, base: &str) -> String {
        let taken = |n: &str| self.layers.iter().any(|l| l.name() == n);
        if !taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !taken(n))
            .expect("some suffix is free")
    }

    /// Sets the loss, the optimizer and the metrics (`"accuracy"`).
    pub fn compile(&mut self, loss: Loss, optimizer: Optimizer, metrics: &[&str]) -> Result<()> {
        let metrics = metrics
            .iter()
            .map(|m| Metric::from_name(m))
            .collect::<Result<Vec<_>>>()?;
        self.compiled = Some(Compiled {
            loss,
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

    pub fn loss(&self) -> Option<Loss> {
        self.compiled.as_ref().map(|c| c.loss)
    }

    /// Every weight (trainable and not), layer by layer.
    pub fn params(&self) -> Vec<Param> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    pub fn count_params(&self) -> (usize, usize) {
        let mut trainable = 0;
        let mut fixed = 0;
        for p in self.params() {
            let n = p.var.value_ref().numel();
            if p.trainable {
                trainable += n;
            } else {
                fixed += n;
            }
        }
        (trainable, fixed)
    }

    /// Copies of all weights, in `params()` order.
    pub fn get_weights(&self) -> Vec<Tensor> {
        self.params().iter().map(|p| p.var.value()).collect()
    }

    pub fn set_weights(&mut self, weights: &[Tensor]) -> Result<()> {
        let params = self.params();
        if params.len() != weights.len() {
            return Err(Error::invalid(format!(
                "set_weights: the model has {} weights, got {}",
                params.len(),
                weights.len()
            )));
        }
        for (p, w) in params.iter().zip(weights) {
            if p.var.shape() != w.shape() {
                return Err(Error::shape(format!(
                    "set_weights: '{}' is {:?}, got {:?}",
                    p.name,
                    p.var.shape(),
                    w.shape()
                )));
            }
        }
        for (p, w) in params.iter().zip(weights) {
            p.var.set_value(w.clone());
        }
        Ok(())
    }

    /// Whether the loss fuses the last layer's activation (softmax/sigmoid): then the
    /// training forward returns logits.
    pub(super) fn fuses_output_activation(&self) -> bool {
        match (&self.compiled, self.layers.last()) {
            (Some(c), Some(last)) => {
                c.loss.fusable_activation().is_some()
                    && last.output_activation() == c.loss.fusable_activation()
            }
            _ => false,
        }
    }

    fn check_input(&self, x: &[usize]) -> Result<()> {
        if x.len() != self.input_shape.len() + 1 || x[1..] != self.input_shape[..] {
            return Err(Error::shape(format!(
                "model '{}' expects inputs [batch, {}], got {:?}",
                self.name,
                self.input_shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                x
            )));
        }
        Ok(())
    }

    /// Runs the layers. `output_logits` asks the last layer to skip a fusable activation.
    pub fn forward_with(&mut self, x: &Var, training: bool, output_logits: bool) -> Result<Var> {
        self.check_input(&x.shape())?;
        let n = self.layers.len();
        // Read once per call: off, profiling costs nothing per layer.
        let profiling = super::profile::is_profiling();
        let mut h = x.clone();
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let mut ctx = ForwardCtx {
                training,
                rng: &mut self.rng,
                output_logits: output_logits && i + 1 == n,
            };
            h = if profiling {
                super::profile::time_layer(i, || layer.forward(&h, &mut ctx))?
            } else {
                layer.forward(&h, &mut ctx)?
            };
        }
        Ok(h)
    }

    /// The model's output (probabilities for a softmax model).
    pub fn forward(&mut self, x: &Var, training: bool) -> Result<Var> {
        self.forward_with(x, training, false)
    }

    /// Every layer's output for `x` (`[batch, ...]`), in inference mode and recording no
    /// graph: `(layer name, output)` in layer order. For looking inside a trained model
    /// (feature maps); the last entry is what `predict` returns.
    pub fn forward_trace(&mut self, x: &Tensor) -> Result<Vec<(String, Tensor)>> {
        self.check_input(x.shape())?;
        let _g = no_grad();
        let mut h = Var::constant(x.clone());
        let mut trace = Vec::with_capacity(self.layers.len());
        for layer in self.layers.iter_mut() {
            let mut ctx = ForwardCtx {
                training: false,
                rng: &mut self.rng,
                output_logits: false,
            };
            h = layer.forward(&h, &mut ctx)?;
            trace.push((layer.name().to_string(), h.value()));
        }
        Ok(trace)
    }

    /// The objective a training step differentiates: the batch's loss plus the sum of
    /// the layers' weight penalties (L2). One place for `fit`, the profiler and the
    /// gradient check, so all three differentiate the same function.
    pub(super) fn training_loss(
        &self,
        loss_fn: Loss,
        out: &Var,
        labels: &Tensor,
        fused: bool,
    ) -> Result<Var> {
        let loss = loss_fn.compute(out, labels, fused)?;
        let mut penalty: Option<Var> = None;
        for r in self.layers.iter().filter_map(|l| l.regularization()) {
            penalty = Some(match penalty {
                None => r,
                Some(t) => crate::ops::elementwise::add(&t, &r)?,
            });
        }
        match penalty {
            Some(p) => crate::ops::elementwise::add(&loss, &p),
            None => Ok(loss),
        }
    }

    /// Outputs for `x` in batches, in inference mode.
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        self.check_input(x.shape())?;
        let _g = no_grad();
        let n = x.shape()[0];
        let bs = batch_size.max(1);
        let mut out = Vec::new();
        for start in (0..n).step_by(bs) {
            let xb = Var::constant(x.slice_rows(start, (start + bs).min(n)));
            out.extend_from_slice(self.forward(&xb, false)?.value_ref().data());
        }
        let mut shape = vec![n];
        shape.extend_from_slice(self.output_shape());
        Tensor::try_from_vec(out, &shape)
    }

    /// Mean loss (with the layers' weight penalties, as in Keras) and metrics over
    /// `(x, y)`, in inference mode.
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Evaluation> {
        let compiled = self.compiled.as_ref().ok_or_else(|| {
            Error::invalid("evaluate: the model is not compiled (call compile first)")
        })?;
        let (loss_fn, metric_list) = (compiled.loss, compiled.metrics.clone());
        self.check_input(x.shape())?;
        check_labels_len(x, y)?;
        loss_fn.check_labels(y, self.output_shape())?;
        let fused = self.fuses_output_activation();
        let _g = no_grad();
        let n = x.shape()[0];
        let bs = batch_size.max(1);
        let mut loss_sum = 0.0f64;
        let mut counts = vec![0usize; metric_list.len()];
        for start in (0..n).step_by(bs) {
            let end = (start + bs).min(n);
            let xb = Var::constant(x.slice_rows(start, end));
            let yb = y.slice_rows(start, end);
            let out = self.forward_with(&xb, false, fused)?;
            // Weight penalties included, as Keras' evaluate and val_loss do: the loss
            // reported is the objective training minimizes.
            let loss = self.training_loss(loss_fn, &out, &yb, fused)?;
            loss_sum += loss.value().item() as f64 * (end - start) as f64;
            let out_value = out.value();
            for (count, m) in counts.iter_mut().zip(&metric_list) {
                *count += m.count(&out_value, &yb, fused);
            }
        }
        let mut m = BTreeMap::new();
        for (metric, count) in metric_list.iter().zip(&counts) {
            m.insert(metric.name(), *count as f32 / n.max(1) as f32);
        }
        Ok(Evaluation {
            loss: (loss_sum / n.max(1) as f64) as f32,
            metrics: m,
        })
    }

    /// Trains the model; see `FitArgs`.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, args: super::fit::FitArgs) -> Result<History> {
        super::fit::fit(self, x, y, args)
    }

    /// Saves architecture, weights and optimizer state into a directory.
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        crate::formats::model_dir::save(self, dir)
    }

    /// Loads a model saved by `save`.
    pub fn load(dir: &std::path::Path) -> Result<Sequential> {
        crate::formats::model_dir::load(dir)
    }

    /// Keras' summary table.
    pub fn summary(&self) -> String {
        super::summary::summary(self)
    }

    /// Callback-friendly access to the model's random generator (e.g. to reseed).
    pub fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

pub(super) fn check_labels_len(x: &Tensor, y: &Tensor) -> Result<()> {
    let (nx, ny) = (x.shape()[0], y.shape().first().copied().unwrap_or(0));
    if nx != ny {
        return Err(Error::shape(format!(
            "{nx} inputs but {ny} labels (x {:?}, y {:?})",
            x.shape(),
            y.shape()
        )));
    }
    Ok(())
}
