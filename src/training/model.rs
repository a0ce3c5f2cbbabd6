//! `Model`: layers wired into a graph, with Keras' `compile`, `fit`, `evaluate`,
//! `predict` and `summary`. `Sequential` is the same type: a model whose graph is a
//! chain, grown one layer at a time with `add`; a functional model (`Model::functional`,
//! see `functional.rs`) wires branches, merges, several inputs and outputs, and nested
//! models.
//!
//! The input shapes are known up front (without the batch axis, channels first:
//! `[1, 28, 28]` for MNIST), so each layer is built with its weights as soon as it is
//! added, and shape errors appear at `add` (or at the symbolic call), naming the layer.
//!
//! The graph is plain data: node `i` holds a layer and the ids of the tensors it reads.
//! Tensor ids `0..inputs` are the model's inputs; tensor `inputs + i` is node `i`'s
//! output. Nodes are stored in an order where every node comes after its inputs, so a
//! forward pass is one loop over them.

use super::history::History;
use super::metrics::Metric;
use crate::engine::{no_grad, DType, Rng, Tensor, Var};
use crate::error::{Error, Result};
use crate::layers::dims::{batch_shape_str, known, Dim, IntoDims};
use crate::layers::{ForwardCtx, Layer, LayerConfig, Param, SharedConfig};
use crate::losses::{Loss, LossConfig, Target};
use crate::optimizers::Optimizer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The architecture of a model as plain data (saved as `model.json`). A sequential model
/// has `input_shape` and its `layers` in order; a functional model also names each
/// layer's inputs (`inbound`), its `inputs` if it has several, and its `outputs`. A layer
/// without `inbound` reads the previous layer's output (or the input, for the first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    #[serde(default = "default_model_name")]
    pub name: String,
    /// Input shape without the batch axis, e.g. `[1, 28, 28]` (single-input models);
    /// `null` for an axis known only per batch (`[null, 8]`: sequences of any length).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_shape: Vec<Dim>,
    /// Named inputs, for models with several (then `input_shape` is left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputConfig>,
    pub layers: Vec<NodeConfig>,
    /// Names of the output tensors (layers); default: the last layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    /// Loss, optimizer and metrics, if the model was compiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<CompileConfig>,
    /// Class names for predictions (e.g. Fashion-MNIST's), if known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
}

impl ModelConfig {
    /// The shape of each input (without batch).
    pub fn input_shapes(&self) -> Vec<Vec<Dim>> {
        if self.inputs.is_empty() {
            vec![self.input_shape.clone()]
        } else {
            self.inputs.iter().map(|i| i.shape.clone()).collect()
        }
    }

    /// The shape of each output, worked out from the layer configs alone (no weights
    /// are built): what `Model::from_config(self).output_shapes()` gives, for a nested
    /// model's shape check. Names and inbound references resolve as in `from_config`.
    pub fn output_shapes(&self) -> Result<Vec<Vec<Dim>>> {
        let mut names: Vec<String> = if self.inputs.is_empty() {
            vec!["input".to_string()]
        } else {
            self.inputs.iter().map(|i| i.name.clone()).collect()
        };
        let mut shapes = self.input_shapes();
        let id = |names: &[String], n: &str| {
            names.iter().position(|m| m == n).ok_or_else(|| {
                Error::invalid(format!(
                    "model '{}': no input or earlier layer is named '{n}'",
                    self.name
                ))
            })
        };
        // Per node: the config its layer was built from and that layer's name (for a
        // Shared call, those of the layer it calls), and whether it is a further call.
        let mut built: Vec<(LayerConfig, String, bool)> = Vec::new();
        let n_in = names.len();
        for node in &self.layers {
            let reads = if node.inbound.is_empty() {
                vec![names.len() - 1]
            } else {
                node.inbound
                    .iter()
                    .map(|n| id(&names, n))
                    .collect::<Result<Vec<_>>>()?
            };
            let taken = |n: &str| names.iter().any(|m| m == n);
            let (layer, root, name) = match node.layer.downcast_ref::<SharedConfig>() {
                Some(c) => {
                    let j = names[n_in..]
                        .iter()
                        .position(|m| *m == c.layer)
                        .ok_or_else(|| {
                            Error::invalid(format!(
                                "model '{}': a Shared call names the layer '{}', which is not \
                                 an earlier layer",
                                self.name, c.layer
                            ))
                        })?;
                    let (layer, root, _) = built[j].clone();
                    let calls = built
                        .iter()
                        .filter(|(_, r, call)| *call && *r == root)
                        .count();
                    let name = match &c.name {
                        Some(n) => n.clone(),
                        None => unique_name(&format!("{root}:{}", calls + 1), taken),
                    };
                    (layer, root, name)
                }
                None => {
                    let other = &node.layer;
                    let name = match other.name() {
                        Some(n) => n.to_string(),
                        None => unique_name(other.base_name(), taken),
                    };
                    (other.clone(), name.clone(), name)
                }
            };
            if node.layer.name().is_some() && taken(&name) {
                return Err(Error::invalid(format!("two layers are named '{name}'")));
            }
            let ins: Vec<&[Dim]> = reads.iter().map(|&t| shapes[t].as_slice()).collect();
            let out = layer.output_shape_of(&name, &ins)?;
            built.push((layer, root, node.layer.is::<SharedConfig>()));
            names.push(name);
            shapes.push(out);
        }
        if self.outputs.is_empty() {
            return Ok(vec![shapes.pop().expect("inputs come first")]);
        }
        self.outputs
            .iter()
            .map(|n| Ok(shapes[id(&names, n)?].clone()))
            .collect()
    }
}

/// `base`, or `base_1`, `base_2`, ... : the first that is not `taken` (Keras' naming of
/// layers left unnamed).
fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

/// A named model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    pub name: String,
    /// Without the batch axis; `None` (JSON `null`) for an axis known only per batch.
    pub shape: Vec<Dim>,
}

/// One layer of a model config: Keras' `{"class_name", "config"}` plus the names of the
/// tensors it reads (`"inbound": ["conv2d_1", "input"]`), when not simply the previous
/// layer's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeConfig {
    #[serde(flatten)]
    pub layer: LayerConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbound: Vec<String>,
}

impl From<LayerConfig> for NodeConfig {
    fn from(layer: LayerConfig) -> Self {
        NodeConfig {
            layer,
            inbound: Vec::new(),
        }
    }
}

impl<'de> Deserialize<'de> for NodeConfig {
    /// By hand, because serde's `flatten` would silently accept unknown keys.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            class_name: serde_json::Value,
            #[serde(default)]
            config: Option<serde_json::Value>,
            #[serde(default)]
            inbound: Vec<String>,
        }
        let raw = Raw::deserialize(d)?;
        let mut map = serde_json::Map::new();
        map.insert("class_name".into(), raw.class_name);
        if let Some(c) = raw.config {
            map.insert("config".into(), c);
        }
        let layer = LayerConfig::deserialize(serde_json::Value::Object(map))
            .map_err(serde::de::Error::custom)?;
        Ok(NodeConfig {
            layer,
            inbound: raw.inbound,
        })
    }
}

fn default_model_name() -> String {
    "sequential".into()
}

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

/// A model: inputs, layers wired into a graph, outputs. See the module docs.
pub struct Model {
    pub name: String,
    inputs: Vec<InputConfig>,
    layers: Vec<Box<dyn Layer>>,
    /// Output shape of each layer (without batch).
    shapes: Vec<Vec<Dim>>,
    /// Tensor ids each layer reads.
    inbound: Vec<Vec<usize>>,
    /// Tensor ids of the outputs.
    outputs: Vec<usize>,
    pub(super) compiled: Option<Compiled>,
    pub(super) rng: Rng,
    /// Set by a callback to end `fit` after the current epoch.
    pub stop_training: bool,
    pub class_names: Vec<String>,
    /// Element type of the weights and of the activations between layers (f32, or
    /// f16/bf16 for inference; see `precision.rs`).
    pub(super) dtype: DType,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("layers", &self.layers.len())
            .field("outputs", &self.output_shapes())
            .finish()
    }
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

impl Model {
    /// An empty sequential model for inputs of `input_shape` (no batch axis), seeded
    /// with 0: `&[1, 28, 28]`, or `&[None, Some(8)]` for sequences of any length.
    pub fn new(input_shape: impl IntoDims) -> Model {
        Model::with_seed(input_shape, 0)
    }

    /// The seed fixes weight initialization, shuffling and dropout masks.
    pub fn with_seed(input_shape: impl IntoDims, seed: u64) -> Model {
        Model::empty(
            vec![InputConfig {
                name: "input".into(),
                shape: input_shape.into_dims(),
            }],
            seed,
        )
    }

    pub(super) fn empty(inputs: Vec<InputConfig>, seed: u64) -> Model {
        Model {
            name: default_model_name(),
            inputs,
            layers: Vec::new(),
            shapes: Vec::new(),
            inbound: Vec::new(),
            outputs: vec![0],
            compiled: None,
            rng: Rng::new(seed),
            stop_training: false,
            class_names: Vec::new(),
            dtype: DType::F32,
        }
    }

    /// Builds a model from its architecture; weights are fresh (load them afterwards).
    pub fn from_config(cfg: &ModelConfig, seed: u64) -> Result<Model> {
        let inputs = match (cfg.input_shape.is_empty(), cfg.inputs.is_empty()) {
            (false, true) => vec![InputConfig {
                name: "input".into(),
                shape: cfg.input_shape.clone(),
            }],
            (true, false) => cfg.inputs.clone(),
            _ => {
                return Err(Error::invalid(
                    "a model config needs either \"input_shape\" or \"inputs\", not both",
                ))
            }
        };
        let mut m = Model::empty(inputs, seed);
        m.name = cfg.name.clone();
        m.class_names = cfg.class_names.clone();
        for node in &cfg.layers {
            let ids = if node.inbound.is_empty() {
                vec![m.num_tensors() - 1]
            } else {
                node.inbound
                    .iter()
                    .map(|n| m.tensor_id(n))
                    .collect::<Result<Vec<_>>>()?
            };
            m.add_node(node.layer.clone(), ids)?;
        }
        m.outputs = if cfg.outputs.is_empty() {
            vec![m.num_tensors() - 1]
        } else {
            cfg.outputs
                .iter()
                .map(|n| m.tensor_id(n))
                .collect::<Result<Vec<_>>>()?
        };
        if let Some(c) = &cfg.compile {
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
                None => vec![c.loss.build()?; m.outputs.len()],
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

    pub fn config(&self) -> ModelConfig {
        let chain = self.is_sequential();
        ModelConfig {
            name: self.name.clone(),
            input_shape: if self.inputs.len() == 1 {
                self.inputs[0].shape.clone()
            } else {
                Vec::new()
            },
            inputs: if self.inputs.len() == 1 {
                Vec::new()
            } else {
                self.inputs.clone()
            },
            layers: self
                .layers
                .iter()
                .zip(&self.inbound)
                .enumerate()
                .map(|(i, (l, ids))| NodeConfig {
                    layer: l.config(),
                    // Written out unless the layer reads the tensor just before it.
                    inbound: if chain || ids[..] == [self.inputs.len() + i - 1] {
                        Vec::new()
                    } else {
                        ids.iter()
                            .map(|&t| self.tensor_name(t).to_string())
                            .collect()
                    },
                })
                .collect(),
            outputs: if chain {
                Vec::new()
            } else {
                self.outputs
                    .iter()
                    .map(|&t| self.tensor_name(t).to_string())
                    .collect()
            },
            compile: self.compiled.as_ref().map(|c| CompileConfig {
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
            }),
            class_names: self.class_names.clone(),
        }
    }

    /// Whether the layers form one chain from the single input to the single output.
    pub fn is_sequential(&self) -> bool {
        self.inputs.len() == 1
            && self.outputs[..] == [self.num_tensors() - 1]
            && self
                .inbound
                .iter()
                .enumerate()
                .all(|(i, ids)| ids[..] == [i])
    }

    /// The input shape (without batch) of a single-input model; the first input's
    /// otherwise.
    pub fn input_shape(&self) -> &[Dim] {
        &self.inputs[0].shape
    }

    /// The model's inputs (names and shapes).
    pub fn inputs(&self) -> &[InputConfig] {
        &self.inputs
    }

    /// The first output's shape (without batch).
    pub fn output_shape(&self) -> &[Dim] {
        self.tensor_shape(self.outputs[0])
    }

    /// Every output's shape (without batch).
    pub fn output_shapes(&self) -> Vec<&[Dim]> {
        self.outputs.iter().map(|&t| self.tensor_shape(t)).collect()
    }

    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Output shape of each layer (without batch).
    pub fn layer_output_shapes(&self) -> &[Vec<Dim>] {
        &self.shapes
    }

    /// The shapes (without batch) of the tensors layer `i` reads.
    pub fn layer_input_shapes(&self, i: usize) -> Vec<&[Dim]> {
        self.inbound[i]
            .iter()
            .map(|&t| self.tensor_shape(t))
            .collect()
    }

    /// The names of the tensors layer `i` reads (input or layer names).
    pub fn layer_inbound_names(&self, i: usize) -> Vec<&str> {
        self.inbound[i]
            .iter()
            .map(|&t| self.tensor_name(t))
            .collect()
    }

    /// The layer named `name`.
    pub fn get_layer(&self, name: &str) -> Option<&dyn Layer> {
        self.layers
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.as_ref())
    }

    fn num_tensors(&self) -> usize {
        self.inputs.len() + self.layers.len()
    }

    fn tensor_shape(&self, t: usize) -> &[Dim] {
        match t.checked_sub(self.inputs.len()) {
            None => &self.inputs[t].shape,
            Some(i) => &self.shapes[i],
        }
    }

    fn tensor_name(&self, t: usize) -> &str {
        match t.checked_sub(self.inputs.len()) {
            None => &self.inputs[t].name,
            Some(i) => self.layers[i].name(),
        }
    }

    fn tensor_id(&self, name: &str) -> Result<usize> {
        (0..self.num_tensors())
            .find(|&t| self.tensor_name(t) == name)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "model '{}': no input or earlier layer is named '{name}'",
                    self.name
                ))
            })
    }

    /// Adds a layer after the last one, building its weights for the current output
    /// shape (Keras' `Sequential.add`).
    pub fn add(&mut self, layer: impl Into<LayerConfig>) -> Result<&mut Self> {
        if self.outputs.len() != 1 {
            return Err(Error::invalid(format!(
                "model '{}' has {} outputs; add appends to a single chain",
                self.name,
                self.outputs.len()
            )));
        }
        let node = self.add_node(layer.into(), vec![self.outputs[0]])?;
        self.outputs = vec![self.inputs.len() + node];
        Ok(self)
    }

    /// Appends a layer reading tensors `ids` (which must exist already); returns its
    /// index. The outputs are not changed.
    pub(super) fn add_node(&mut self, cfg: LayerConfig, ids: Vec<usize>) -> Result<usize> {
        if let Some(c) = cfg.downcast_ref::<SharedConfig>() {
            return self.add_shared_call(c, ids);
        }
        let name = match cfg.name() {
            Some(n) => {
                if self.layers.iter().any(|l| l.name() == n)
                    || self.inputs.iter().any(|i| i.name == n)
                {
                    return Err(Error::invalid(format!("two layers are named '{n}'")));
                }
                n.to_string()
            }
            None => self.unique_name(cfg.base_name()),
        };
        let shapes: Vec<Vec<Dim>> = ids.iter().map(|&t| self.tensor_shape(t).to_vec()).collect();
        let refs: Vec<&[Dim]> = shapes.iter().map(|s| s.as_slice()).collect();
        let out = cfg.output_shape_of(&name, &refs)?;
        let layer = cfg.build_from(name, &refs, &mut self.rng)?;
        self.layers.push(layer);
        self.shapes.push(out);
        self.inbound.push(ids);
        Ok(self.layers.len() - 1)
    }

    /// Adds a further call of the earlier layer `c.layer` (Keras' shared layer): a node
    /// that runs that layer, with its weights, on the tensors `ids`. The layer's weights
    /// must fit these inputs as they fit its first call's.
    fn add_shared_call(&mut self, c: &SharedConfig, ids: Vec<usize>) -> Result<usize> {
        let j = self
            .layers
            .iter()
            .position(|l| l.name() == c.layer)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "model '{}': a Shared call names the layer '{}', which is not an earlier \
                     layer",
                    self.name, c.layer
                ))
            })?;
        // A call of a call is a call of the layer itself.
        let j = match self.layers[j].as_shared() {
            Some(s) => {
                let first = s.layer_name();
                self.layers
                    .iter()
                    .position(|l| l.name() == first)
                    .expect("the first call keeps the layer's name")
            }
            None => j,
        };
        let layer_cfg = match self.layers[j].as_shared() {
            Some(s) => s.layer_config(),
            None => self.layers[j].config(),
        };
        let layer_name = self.layers[j].name().to_string();
        let name = match &c.name {
            Some(n) if self.unique_name(n) != *n => {
                return Err(Error::invalid(format!("two layers are named '{n}'")));
            }
            Some(n) => n.clone(),
            None => {
                let calls = self
                    .layers
                    .iter()
                    .filter(|l| l.as_shared().is_some_and(|s| s.layer_name() == layer_name))
                    .count()
                    .max(1);
                self.unique_name(&format!("{layer_name}:{calls}"))
            }
        };
        let shapes: Vec<Vec<Dim>> = ids.iter().map(|&t| self.tensor_shape(t).to_vec()).collect();
        let refs: Vec<&[Dim]> = shapes.iter().map(|s| s.as_slice()).collect();
        let out = layer_cfg
            .output_shape_of(&layer_name, &refs)
            .map_err(|e| e.context(&format!("layer '{name}' (a call of '{layer_name}')")))?;
        // The weights were built for the first call's inputs; a layer built for these
        // inputs must have weights of the same shapes (a Dense on as many features, a
        // Conv2D on as many channels).
        let fresh = layer_cfg.build_from(layer_name.clone(), &refs, &mut Rng::new(0))?;
        let fits = |a: Vec<Param>, b: Vec<Param>| {
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|(p, q)| p.var.shape() == q.var.shape())
        };
        if !fits(fresh.params(), self.layers[j].params()) {
            let first_inputs: Vec<&[Dim]> = self.layer_input_shapes(j);
            return Err(Error::shape(format!(
                "layer '{name}' calls '{layer_name}' again on inputs {refs:?}, but its weights \
                 were built for inputs {first_inputs:?}"
            )));
        }
        if self.layers[j].as_shared().is_none() {
            // Move the layer behind the shared handle; its node becomes the first call.
            let placeholder: Box<dyn Layer> = Box::new(crate::layers::Flatten {
                name: String::new(),
            });
            let layer = std::mem::replace(&mut self.layers[j], placeholder);
            self.layers[j] = Box::new(crate::layers::SharedLayer::first_call(layer));
        }
        let call = self.layers[j]
            .as_shared()
            .expect("made shared above")
            .another_call(name);
        self.layers.push(Box::new(call));
        self.shapes.push(out);
        self.inbound.push(ids);
        Ok(self.layers.len() - 1)
    }

    pub(super) fn set_outputs(&mut self, outputs: Vec<usize>) {
        self.outputs = outputs;
    }

    fn unique_name(&self, base: &str) -> String {
        unique_name(base, |n| {
            self.layers.iter().any(|l| l.name() == n) || self.inputs.iter().any(|i| i.name == n)
        })
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
        let losses = vec![loss; self.outputs.len()];
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
        let n = self.outputs.len();
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

    /// Every weight (trainable and not), layer by layer.
    pub fn params(&self) -> Vec<Param> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    /// `(trainable, non-trainable)` weight counts; buffers (batch norm's moving
    /// statistics) are not weights and are counted by `count_buffers`.
    pub fn count_params(&self) -> (usize, usize) {
        let mut trainable = 0;
        let mut fixed = 0;
        for p in self.params().iter().filter(|p| !p.buffer) {
            let n = p.var.value_ref().numel();
            if p.trainable {
                trainable += n;
            } else {
                fixed += n;
            }
        }
        (trainable, fixed)
    }

    /// Values of the buffers (batch norm's moving mean and variance).
    pub fn count_buffers(&self) -> usize {
        self.params()
            .iter()
            .filter(|p| p.buffer)
            .map(|p| p.var.value_ref().numel())
            .sum()
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

    /// For each output, whether its loss fuses the activation of the layer producing it
    /// (softmax with cross-entropy, sigmoid with binary cross-entropy): then the training
    /// forward returns that output's logits. Never for a tensor that a layer of the model
    /// also reads (it needs the activated values) or that is given as two outputs.
    pub(super) fn fused_outputs(&self) -> Vec<bool> {
        let Some(c) = &self.compiled else {
            return vec![false; self.outputs.len()];
        };
        self.outputs
            .iter()
            .zip(&c.losses)
            .map(|(&t, loss)| {
                let Some(layer) = self.tensor_layer(t) else {
                    return false;
                };
                loss.fusable_activation().is_some()
                    && layer.output_activation() == loss.fusable_activation()
                    && !self.tensor_is_read(t)
                    && self.outputs.iter().filter(|&&o| o == t).count() == 1
            })
            .collect()
    }

    /// The layer producing tensor `t`, unless `t` is an input.
    fn tensor_layer(&self, t: usize) -> Option<&dyn Layer> {
        t.checked_sub(self.inputs.len())
            .map(|i| self.layers[i].as_ref())
    }

    /// Whether a layer of the model reads tensor `t`.
    fn tensor_is_read(&self, t: usize) -> bool {
        self.inbound.iter().any(|ids| ids.contains(&t))
    }

    /// The name of each output (its layer's, or its input's), in order.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .map(|&t| self.tensor_name(t).to_string())
            .collect()
    }

    /// The key under which output `k`'s `what` (`loss`, `accuracy`, ...) is logged:
    /// `what` itself for a model with one output, `OUTPUT_what` for several, as in
    /// Keras (`dense_1_loss`, `dense_1_accuracy`).
    pub(super) fn output_key(&self, k: usize, what: &str) -> String {
        if self.outputs.len() == 1 {
            what.to_string()
        } else {
            format!("{}_{what}", self.tensor_name(self.outputs[k]))
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
        if ys.len() != self.outputs.len() {
            return Err(Error::invalid(format!(
                "{what}: model '{}' has {} outputs, got {} label tensors",
                self.name,
                self.outputs.len(),
                ys.len()
            )));
        }
        let n = xs[0].shape()[0];
        for (k, y) in ys.iter().enumerate() {
            let which = if ys.len() == 1 {
                String::new()
            } else {
                format!(" for output '{}'", self.tensor_name(self.outputs[k]))
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

    /// Errors unless the model has one input and one output (what `predict`, `forward`,
    /// the profiler and the report take; the `_many` forms run the others).
    pub(super) fn check_single_io(&self, what: &str) -> Result<()> {
        if self.inputs.len() != 1 || self.outputs.len() != 1 {
            return Err(Error::invalid(format!(
                "{what}: model '{}' has {} inputs and {} outputs; {what} takes models with \
                 one of each (use predict_many, fit_many, evaluate_many or call_many)",
                self.name,
                self.inputs.len(),
                self.outputs.len()
            )));
        }
        Ok(())
    }

    fn check_inputs(&self, xs: &[Vec<usize>]) -> Result<()> {
        if xs.len() != self.inputs.len() {
            return Err(Error::invalid(format!(
                "model '{}' has {} inputs, got {}",
                self.name,
                self.inputs.len(),
                xs.len()
            )));
        }
        for (x, input) in xs.iter().zip(&self.inputs) {
            let want = &input.shape;
            // A `None` axis takes any size.
            if x.len() != want.len() + 1 || x[1..].iter().zip(want).any(|(&n, d)| !d.accepts(n)) {
                let which = if self.inputs.len() == 1 {
                    String::new()
                } else {
                    format!(" '{}'", input.name)
                };
                return Err(Error::shape(format!(
                    "model '{}' expects input{which} {}, got {:?}",
                    self.name,
                    batch_shape_str(want),
                    x
                )));
            }
        }
        let n = xs[0].first();
        if xs.iter().any(|x| x.first() != n) {
            return Err(Error::shape(format!(
                "model '{}': the inputs' batch sizes differ",
                self.name
            )));
        }
        Ok(())
    }

    fn check_input(&self, x: &[usize]) -> Result<()> {
        self.check_single_io("forward")?;
        self.check_inputs(&[x.to_vec()])
    }

    /// Runs the graph: one batch per input in, every output out. `output_logits` (one
    /// flag per output, or empty for none) asks output layers to skip a fusable
    /// activation; `rng` (default: the model's) draws dropout masks; `trace` collects
    /// every layer's output.
    pub(super) fn run(
        &mut self,
        xs: &[Var],
        training: bool,
        output_logits: &[bool],
        rng: Option<&mut Rng>,
        profile: bool,
        mut trace: Option<&mut Vec<(String, Tensor)>>,
    ) -> Result<Vec<Var>> {
        let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape()).collect();
        self.check_inputs(&shapes)?;
        let dtype = self.dtype;
        super::precision::check_can_train(self, training)?;
        let n_in = self.inputs.len();
        let Model {
            layers,
            inbound,
            outputs,
            rng: own_rng,
            ..
        } = self;
        let rng = match rng {
            Some(r) => r,
            None => own_rng,
        };
        let logits_of: Vec<usize> = outputs
            .iter()
            .zip(output_logits)
            .filter(|(_, &logits)| logits)
            .map(|(&t, _)| t)
            .collect();
        // Each tensor is dropped after its last reader, so inference holds only the
        // live branch values.
        let mut last_use = vec![usize::MAX; n_in + layers.len()];
        for (i, ids) in inbound.iter().enumerate() {
            for &t in ids {
                last_use[t] = i;
            }
        }
        let mut values: Vec<Option<Var>> = xs
            .iter()
            .map(|x| Some(super::precision::round_activation(x.clone(), dtype)))
            .collect();
        values.resize(n_in + layers.len(), None);
        // Read once per call: off, profiling costs nothing per layer.
        let profiling = profile && super::profile::is_profiling();
        for (i, layer) in layers.iter_mut().enumerate() {
            let args: Vec<Var> = inbound[i]
                .iter()
                .map(|&t| values[t].clone().expect("inputs come first"))
                .collect();
            for &t in &inbound[i] {
                if last_use[t] == i && !outputs.contains(&t) {
                    values[t] = None;
                }
            }
            let mut ctx = ForwardCtx {
                training,
                rng,
                output_logits: logits_of.contains(&(n_in + i)),
            };
            let h = if profiling {
                super::profile::time_layer(i, || layer.forward_many(&args, &mut ctx))?
            } else {
                layer.forward_many(&args, &mut ctx)?
            };
            let h = super::precision::round_activation(h, dtype);
            if let Some(t) = trace.as_deref_mut() {
                t.push((layer.name().to_string(), h.value()));
            }
            values[n_in + i] = Some(h);
        }
        Ok(outputs
            .iter()
            .map(|&t| values[t].clone().expect("outputs are kept"))
            .collect())
    }

    /// Runs the layers of a one-input, one-output model. `output_logits` asks the output
    /// layer to skip a fusable activation.
    pub fn forward_with(&mut self, x: &Var, training: bool, output_logits: bool) -> Result<Var> {
        self.check_input(&x.shape())?;
        let mut out = self.run(
            std::slice::from_ref(x),
            training,
            &[output_logits],
            None,
            true,
            None,
        )?;
        Ok(out.remove(0))
    }

    /// The model's output (probabilities for a softmax model).
    pub fn forward(&mut self, x: &Var, training: bool) -> Result<Var> {
        self.forward_with(x, training, false)
    }

    /// Runs a model with any number of inputs and outputs (in the order given to
    /// `Model::functional`).
    pub fn call_many(&mut self, xs: &[Var], training: bool) -> Result<Vec<Var>> {
        self.run(xs, training, &[], None, true, None)
    }

    /// Every layer's output for `x` (`[batch, ...]`), in inference mode and recording no
    /// graph: `(layer name, output)` in layer order. For looking inside a trained model
    /// (feature maps); the last entry is what `predict` returns.
    pub fn forward_trace(&mut self, x: &Tensor) -> Result<Vec<(String, Tensor)>> {
        self.check_input(x.shape())?;
        let _g = no_grad();
        let mut trace = Vec::with_capacity(self.layers.len());
        self.run(
            &[Var::constant(x.clone())],
            false,
            &[],
            None,
            false,
            Some(&mut trace),
        )?;
        Ok(trace)
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
        let c = self
            .compiled
            .as_ref()
            .ok_or_else(|| Error::invalid("the model is not compiled (call compile first)"))?;
        let mut total: Option<Var> = None;
        let mut each = Vec::with_capacity(outs.len());
        for (k, out) in outs.iter().enumerate() {
            let loss = c.losses[k].compute(out, &labels[k], fused[k])?;
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

    /// The sum of the layers' weight penalties (L2), if any layer has one.
    pub(super) fn regularization_penalty(&self) -> Option<Var> {
        let mut penalty: Option<Var> = None;
        for r in self.layers.iter().filter_map(|l| l.regularization()) {
            penalty = Some(match penalty {
                None => r,
                Some(t) => crate::ops::elementwise::add(&t, &r).expect("scalars"),
            });
        }
        penalty
    }

    /// The layer producing the (single) output, if the output is not an input and no
    /// layer reads it (so it may return logits when its loss fuses the activation).
    pub(super) fn output_layer(&self) -> Option<&dyn Layer> {
        match self.outputs[..] {
            [t] if !self.tensor_is_read(t) => self.tensor_layer(t),
            _ => None,
        }
    }

    /// Overwrites layer `i`'s weights (in its `params()` order).
    pub(super) fn set_layer_weights(&mut self, i: usize, weights: &[Tensor]) -> Result<()> {
        let params = self.layers[i].params();
        if params.len() != weights.len()
            || params
                .iter()
                .zip(weights)
                .any(|(p, w)| p.var.shape() != w.shape())
        {
            return Err(Error::shape(format!(
                "layer '{}': the weights given do not match its parameters",
                self.layers[i].name()
            )));
        }
        for (p, w) in params.iter().zip(weights) {
            p.var.set_value(w.clone());
        }
        Ok(())
    }

    /// Outputs of a model with several inputs or outputs, in batches, in inference mode.
    pub fn predict_many(&mut self, xs: &[Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape().to_vec()).collect();
        self.check_inputs(&shapes)?;
        let _g = no_grad();
        let n = xs[0].shape()[0];
        let bs = batch_size.max(1);
        let mut outs: Vec<Vec<f32>> = vec![Vec::new(); self.outputs.len()];
        // Per-sample output shapes, from the outputs themselves: an axis the model
        // leaves open (`None`) is whatever these inputs give.
        let mut sample_shapes: Vec<Vec<usize>> = self
            .output_shapes()
            .iter()
            .map(|s| s.iter().map(|d| d.get().unwrap_or(0)).collect())
            .collect();
        for start in (0..n).step_by(bs) {
            let end = (start + bs).min(n);
            let batch: Vec<Var> = xs
                .iter()
                .map(|x| Var::constant(x.slice_rows(start, end)))
                .collect();
            let ys = self.call_many(&batch, false)?;
            for ((o, s), y) in outs.iter_mut().zip(&mut sample_shapes).zip(ys) {
                let y = y.value();
                o.extend(y.to_f32_vec());
                *s = y.shape()[1..].to_vec();
            }
        }
        outs.into_iter()
            .zip(sample_shapes)
            .map(|(o, s)| {
                let mut shape = vec![n];
                shape.extend_from_slice(&s);
                Tensor::try_from_vec(o, &shape)
            })
            .collect()
    }

    /// Outputs for `x` in batches, in inference mode.
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        self.check_single_io("predict")?;
        self.check_input(x.shape())?;
        let _g = no_grad();
        let n = x.shape()[0];
        let bs = batch_size.max(1);
        let mut out = Vec::new();
        // From the outputs themselves (see `predict_many`).
        let mut shape: Vec<usize> = std::iter::once(n)
            .chain(self.output_shape().iter().map(|d| d.get().unwrap_or(0)))
            .collect();
        for start in (0..n).step_by(bs) {
            let xb = Var::constant(x.slice_rows(start, (start + bs).min(n)));
            let y = self.forward(&xb, false)?.value();
            out.extend(y.to_f32_vec());
            shape.truncate(1);
            shape.extend_from_slice(&y.shape()[1..]);
        }
        Tensor::try_from_vec(out, &shape)
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
        let _g = no_grad();
        let bs = batch_size.max(1);
        let mut tally = super::metrics::Tally::new(self.outputs.len(), metric_list.len());
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
                &fused,
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
    pub fn fit_many(
        &mut self,
        xs: &[Tensor],
        ys: &[Tensor],
        args: super::fit::FitArgs,
    ) -> Result<History> {
        super::fit::fit(self, xs, ys, args)
    }

    /// Saves architecture, weights and optimizer state into a directory.
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        crate::formats::model_dir::save(self, dir)
    }

    /// Loads a model saved by `save`.
    pub fn load(dir: &std::path::Path) -> Result<Model> {
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
