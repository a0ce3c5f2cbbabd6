//! `Graph`: layers wired into a graph, run forward. `training::Model` (and `Sequential`,
//! the same type) is a graph plus what `compile` adds; a functional graph
//! (`Graph::functional`, see `functional.rs`) wires branches, merges, several inputs and
//! outputs, and nested models (`nested.rs`).
//!
//! The input shapes are known up front (without the batch axis, channels first:
//! `[1, 28, 28]` for MNIST; an axis may be `None`), so each layer is built with its
//! weights as soon as it is added, and shape errors appear at `add` (or at the symbolic
//! call), naming the layer. Layer names and shared calls follow one set of rules
//! (`naming.rs`).
//!
//! The graph is plain data: node `i` holds a layer and the ids of the tensors it reads.
//! Tensor ids `0..inputs` are the model's inputs; then come the nodes' outputs, in node
//! order: one per node, or several for a layer that returns several tensors (a
//! recurrent layer with `return_state`; see `naming::Walk`). Nodes are stored in an
//! order where every node comes after its inputs, so a forward pass is one loop over
//! them.

use super::layers::dims::{batch_shape_str, Dim, IntoDims};
use super::layers::{ForwardCtx, Layer, LayerConfig, Param, SharedLayer};
use super::model_config::{default_model_name, InputConfig, ModelConfig, NodeConfig};
use super::naming::Walk;
use crate::engine::{no_grad, DType, Rng, Tensor, Var};
use crate::error::{Error, Result};

thread_local! {
    /// Whether `Graph::run` fuses a ReLU into the layer before it (`relu_fusions`).
    static LAYER_FUSION: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Turns layer fusion (batch norm + ReLU, Add + ReLU) on or off for models run on this
/// thread; on by default. Off runs every layer's own ops: the reference the fused
/// kernels are tested against, and `nabla bench model --no-fusion`'s baseline.
pub fn set_layer_fusion(on: bool) {
    LAYER_FUSION.with(|f| f.set(on));
}

/// A batch norm folded into the conv before it: its `scale`, `shift` per channel, and
/// whether the ReLU after it comes too.
type Fold = (Vec<f32>, Vec<f32>, bool);

fn layer_fusion() -> bool {
    LAYER_FUSION.with(|f| f.get())
}

/// How `Graph::run_masked` runs: training mode, which outputs return logits (one flag
/// per output, or empty for none), the generator for dropout (default: the model's),
/// whether to time layers, and where to collect every layer's output.
pub(crate) struct RunArgs<'r, 't> {
    pub training: bool,
    pub output_logits: &'r [bool],
    pub rng: Option<&'r mut Rng>,
    pub profile: bool,
    pub trace: Option<&'t mut Vec<(String, Tensor)>>,
}

/// A model graph: inputs, layers wired into a graph, outputs. See the module docs.
pub struct Graph {
    pub name: String,
    inputs: Vec<InputConfig>,
    layers: Vec<Box<dyn Layer>>,
    /// Names and output shapes of the tensors, by the naming rules (`naming.rs`).
    walk: Walk,
    /// Tensor ids each layer reads.
    inbound: Vec<Vec<usize>>,
    /// Each layer's `trainable` flag (Keras'): a frozen layer's weights are not
    /// trainable and it runs as `Layer::set_frozen` says (`trainable.rs`).
    pub(super) trainable: Vec<bool>,
    /// Set when this graph is a nested model that its parent froze: every layer is
    /// then frozen, whatever its own flag.
    pub(super) frozen_by_parent: bool,
    /// Tensor ids of the outputs.
    outputs: Vec<usize>,
    /// Draws initial weights; training also draws shuffles and dropout masks from it.
    pub(crate) rng: Rng,
    pub class_names: Vec<String>,
    /// Element type of the weights and of the activations between layers (f32, or
    /// f16/bf16 for inference; see `precision.rs`).
    pub(super) dtype: DType,
    /// The output masks of the last run as a nested model (`nested.rs`): Keras computes
    /// a model's output masks by running it, so `compute_masks` returns what the
    /// forward found.
    pub(super) out_masks: Vec<Option<Tensor>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("layers", &self.layers.len())
            .field("outputs", &self.output_shapes())
            .finish()
    }
}

impl Graph {
    /// An empty sequential model for inputs of `input_shape` (no batch axis), seeded
    /// with 0: `&[1, 28, 28]`, or `&[None, Some(8)]` for sequences of any length.
    pub fn new(input_shape: impl IntoDims) -> Graph {
        Graph::with_seed(input_shape, 0)
    }

    /// The seed fixes weight initialization, shuffling and dropout masks.
    pub fn with_seed(input_shape: impl IntoDims, seed: u64) -> Graph {
        Graph::empty(
            vec![InputConfig {
                name: "input".into(),
                shape: input_shape.into_dims(),
            }],
            seed,
        )
    }

    pub(crate) fn empty(inputs: Vec<InputConfig>, seed: u64) -> Graph {
        Graph {
            name: default_model_name(),
            walk: Walk::new(&inputs),
            inputs,
            layers: Vec::new(),
            inbound: Vec::new(),
            trainable: Vec::new(),
            frozen_by_parent: false,
            outputs: vec![0],
            rng: Rng::new(seed),
            class_names: Vec::new(),
            dtype: DType::F32,
            out_masks: Vec::new(),
        }
    }

    /// Builds a graph from its architecture; weights are fresh (load them afterwards).
    /// The config's `compile` section is not read here (see `training::Model`).
    pub fn from_config(cfg: &ModelConfig, seed: u64) -> Result<Graph> {
        let mut m = Graph::empty(cfg.input_configs()?, seed);
        m.name = cfg.name.clone();
        m.class_names = cfg.class_names.clone();
        for node in &cfg.layers {
            let ids = m.walk.reads(&m.name, &node.inbound)?;
            let i = m.add_node(node.layer.clone(), ids)?;
            m.trainable[i] = node.trainable;
        }
        m.outputs = m.walk.outputs(&m.name, &cfg.outputs)?;
        if m.trainable.contains(&false) {
            m.sync_frozen();
        }
        Ok(m)
    }

    /// The architecture as plain data (`compile` left empty).
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
                    // Written out unless the layer reads the previous layer's (first)
                    // output, or the input for the first layer (`Walk::last`).
                    inbound: if chain || ids[..] == [self.default_read(i)] {
                        Vec::new()
                    } else {
                        ids.iter()
                            .map(|&t| self.tensor_name(t).to_string())
                            .collect()
                    },
                    trainable: self.trainable[i],
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
            compile: None,
            class_names: self.class_names.clone(),
        }
    }

    /// Whether the layers form one chain from the single input to the single output.
    pub fn is_sequential(&self) -> bool {
        self.inputs.len() == 1
            && self.walk.single_outputs()
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

    pub(super) fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    /// Output shape of each layer (without batch).
    pub fn layer_output_shapes(&self) -> &[Vec<Dim>] {
        self.walk.node_shapes()
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

    pub(super) fn num_tensors(&self) -> usize {
        self.walk.num_tensors()
    }

    /// Which layers' ReLU is computed by the layer before it: entry `j` is `Some(i)`
    /// when layer `j` is a plain ReLU (`Layer::is_plain_relu`) whose one input is layer
    /// `i`'s one output, read by nothing else and not a model output, and layer `i` has
    /// a fused path (`Layer::fuses_relu`: batch norm, Add). `run` then calls layer `i`'s
    /// `forward_relu` and passes the value through layer `j`: one pass over the
    /// activations forward and backward instead of two, the same values and gradients.
    /// All `None` while fusion is off on this thread (`set_layer_fusion`).
    pub fn relu_fusions(&self) -> Vec<Option<usize>> {
        if !layer_fusion() {
            return vec![None; self.layers.len()];
        }
        let n_in = self.inputs.len();
        let (producer, readers) = self.producers_and_readers();
        (0..self.layers.len())
            .map(|j| match self.inbound[j][..] {
                [t] if t >= n_in
                    && self.layers[j].is_plain_relu()
                    && readers[t] == 1
                    && !self.outputs.contains(&t) =>
                {
                    let i = producer[t];
                    (self.walk.node_outputs(i).len() == 1 && self.layers[i].fuses_relu())
                        .then_some(i)
                }
                _ => None,
            })
            .collect()
    }

    /// For each tensor id, the node that produces it (`usize::MAX` for model inputs) and
    /// how many inbound slots read it.
    fn producers_and_readers(&self) -> (Vec<usize>, Vec<usize>) {
        let mut producer = vec![usize::MAX; self.num_tensors()];
        for i in 0..self.layers.len() {
            for t in self.walk.node_outputs(i) {
                producer[t] = i;
            }
        }
        let mut readers = vec![0usize; self.num_tensors()];
        for ids in &self.inbound {
            for &t in ids {
                readers[t] += 1;
            }
        }
        (producer, readers)
    }

    /// The `(batch norm j, conv i, scale, shift)` folds where `j` alone reads the one
    /// output of conv `i` (`Layer::folds_affine`), which is not a model output, and `j`
    /// is the per-channel map `x * scale + shift` (`Layer::inference_affine`): at
    /// inference `run` folds `j` into `i`'s weights.
    fn bn_folds(&self) -> Vec<(usize, usize, Vec<f32>, Vec<f32>)> {
        let n_in = self.inputs.len();
        let (producer, readers) = self.producers_and_readers();
        (0..self.layers.len())
            .filter_map(|j| match self.inbound[j][..] {
                [t] if t >= n_in && readers[t] == 1 && !self.outputs.contains(&t) => {
                    let i = producer[t];
                    if self.walk.node_outputs(i).len() != 1 || !self.layers[i].folds_affine() {
                        return None;
                    }
                    let (scale, shift) = self.layers[j].inference_affine()?;
                    Some((j, i, scale, shift))
                }
                _ => None,
            })
            .collect()
    }

    /// The tensor ids of layer `i`'s outputs (one, unless it returns several).
    pub(crate) fn layer_outputs(&self, i: usize) -> std::ops::Range<usize> {
        self.walk.node_outputs(i)
    }

    /// What layer `i` reads when its config names nothing: the previous layer's (first)
    /// output, or the last input.
    fn default_read(&self, i: usize) -> usize {
        match i {
            0 => self.inputs.len() - 1,
            _ => self.layer_outputs(i - 1).start,
        }
    }

    /// The shape (without batch) of each output of layer `i`.
    pub fn layer_output_shapes_all(&self, i: usize) -> Vec<&[Dim]> {
        self.layer_outputs(i)
            .map(|t| self.tensor_shape(t))
            .collect()
    }

    pub(super) fn walk_shape(&self, t: usize) -> &[Dim] {
        self.walk.shape(t)
    }

    fn tensor_shape(&self, t: usize) -> &[Dim] {
        self.walk.shape(t)
    }

    /// The node producing tensor `t` (`None` for an input).
    pub(super) fn tensor_producer(&self, t: usize) -> Option<usize> {
        self.walk.producer(t).map(|(i, _)| i)
    }

    /// The tensor ids node `i` reads.
    pub(super) fn inbound_ids(&self, i: usize) -> &[usize] {
        &self.inbound[i]
    }

    /// The name of tensor `t` (an input's or its layer's).
    pub(crate) fn tensor_name(&self, t: usize) -> &str {
        self.walk.name(t)
    }

    /// The tensor ids of the outputs (inputs first, then one per layer).
    pub(crate) fn output_ids(&self) -> &[usize] {
        &self.outputs
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
        let layer = layer.into();
        let step = self.walk.resolve(&self.name, &layer, &self.outputs)?;
        if step.shapes.len() != 1 {
            // As Keras' Sequential: the next layer would not know which to read.
            return Err(Error::invalid(format!(
                "layer '{}' returns {} tensors; a sequential model takes layers with one \
                 output (build a functional model and pick the outputs)",
                step.name,
                step.shapes.len()
            )));
        }
        let node = self.add_node(layer, vec![self.outputs[0]])?;
        self.outputs = vec![self.layer_outputs(node).start];
        Ok(self)
    }

    /// Appends a layer reading tensors `ids` (which must exist already); returns its
    /// index. The outputs are not changed. Naming and shared calls follow `naming::Walk`.
    pub(crate) fn add_node(&mut self, cfg: LayerConfig, ids: Vec<usize>) -> Result<usize> {
        let step = self.walk.resolve(&self.name, &cfg, &ids)?;
        let shapes: Vec<Vec<Dim>> = ids.iter().map(|&t| self.tensor_shape(t).to_vec()).collect();
        let refs: Vec<&[Dim]> = shapes.iter().map(|s| s.as_slice()).collect();
        let layer = match step.first_call {
            None => step
                .config
                .build_from(step.name.clone(), &refs, &mut self.rng)?,
            Some(j) => self.shared_call(j, &step.name, &step.config, &refs)?,
        };
        self.layers.push(layer);
        self.walk.push(step);
        self.inbound.push(ids);
        self.trainable.push(true);
        Ok(self.layers.len() - 1)
    }

    /// A further call (named `name`) of layer `j` (Keras' shared layer): a node that runs
    /// that layer, with its weights, on inputs of shapes `refs`. The layer's weights must
    /// fit these inputs as they fit its first call's.
    fn shared_call(
        &mut self,
        j: usize,
        name: &str,
        layer_cfg: &LayerConfig,
        refs: &[&[Dim]],
    ) -> Result<Box<dyn Layer>> {
        let layer_name = self.layers[j].name().to_string();
        // The weights were built for the first call's inputs; a layer built for these
        // inputs must have weights of the same shapes (a Dense on as many features, a
        // Conv2D on as many channels).
        let fresh = layer_cfg.build_from(layer_name.clone(), refs, &mut Rng::new(0))?;
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
            let placeholder: Box<dyn Layer> = Box::new(super::layers::Flatten {
                name: String::new(),
            });
            let layer = std::mem::replace(&mut self.layers[j], placeholder);
            self.layers[j] = Box::new(SharedLayer::first_call(layer));
        }
        let call = self.layers[j]
            .as_shared()
            .expect("made shared above")
            .another_call(name.to_string());
        Ok(Box::new(call))
    }

    pub(crate) fn set_outputs(&mut self, outputs: Vec<usize>) {
        self.outputs = outputs;
    }

    /// Every weight (trainable and not), layer by layer; a frozen layer's weights
    /// come out with `trainable: false`, so optimizers leave them alone.
    pub fn params(&self) -> Vec<Param> {
        self.layers
            .iter()
            .zip(&self.trainable)
            .flat_map(|(l, &on)| {
                l.params().into_iter().map(move |p| Param {
                    trainable: p.trainable && on,
                    ..p
                })
            })
            .collect()
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

    /// The layer producing tensor `t`, unless `t` is an input.
    /// The layer whose first output is tensor `t` (`None` for an input, or for a
    /// further output of a layer that returns several, which is no layer's own output
    /// to fuse an activation into).
    pub(crate) fn tensor_layer(&self, t: usize) -> Option<&dyn Layer> {
        match self.walk.producer(t) {
            Some((i, 0)) => Some(self.layers[i].as_ref()),
            _ => None,
        }
    }

    /// Whether a layer of the model reads tensor `t`.
    pub(crate) fn tensor_is_read(&self, t: usize) -> bool {
        self.inbound.iter().any(|ids| ids.contains(&t))
    }

    /// The name of each output (its layer's, or its input's), in order.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .map(|&t| self.tensor_name(t).to_string())
            .collect()
    }

    /// Errors unless the model has one input and one output (what `predict`, `forward`,
    /// the profiler and the report take; the `_many` forms run the others).
    pub(crate) fn check_single_io(&self, what: &str) -> Result<()> {
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

    pub(crate) fn check_inputs(&self, xs: &[Vec<usize>]) -> Result<()> {
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
    pub(crate) fn run(
        &mut self,
        xs: &[Var],
        training: bool,
        output_logits: &[bool],
        rng: Option<&mut Rng>,
        profile: bool,
        trace: Option<&mut Vec<(String, Tensor)>>,
    ) -> Result<Vec<Var>> {
        let run = RunArgs {
            training,
            output_logits,
            rng,
            profile,
            trace,
        };
        Ok(self.run_masked(xs, &[], run)?.0)
    }

    /// `run` with a mask (or none) per input (`[N, T]`, 1 = real step; empty: none),
    /// returning each output's mask too. Every tensor of the graph carries its mask:
    /// a layer receives its inputs' masks (`Layer::forward_many_masked`) and says its
    /// output's (`Layer::compute_mask_many`); see `Layer` for Keras' rules.
    pub(crate) fn run_masked(
        &mut self,
        xs: &[Var],
        input_masks: &[Option<&Tensor>],
        run: RunArgs<'_, '_>,
    ) -> Result<(Vec<Var>, Vec<Option<Tensor>>)> {
        let RunArgs {
            training,
            output_logits,
            rng,
            profile,
            mut trace,
        } = run;
        let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.shape()).collect();
        self.check_inputs(&shapes)?;
        let dtype = self.dtype;
        super::precision::check_can_train(self, training)?;
        let n_in = self.inputs.len();
        let n_tensors = self.num_tensors();
        // A trace records each layer's own output, so it runs every layer unfused.
        let absorbed = match trace {
            None => self.relu_fusions(),
            Some(_) => vec![None; self.layers.len()],
        };
        let mut fuses = vec![false; self.layers.len()];
        for &i in absorbed.iter().flatten() {
            fuses[i] = true;
        }
        // At inference, a conv followed by batch norm runs as one conv with the batch
        // norm folded into its weights (and the ReLU after the batch norm, if fused).
        let mut folds: Vec<Option<Fold>> = vec![None; self.layers.len()];
        let mut folded_away = vec![false; self.layers.len()];
        if !training && trace.is_none() && layer_fusion() && self.dtype == DType::F32 {
            for (j, i, scale, shift) in self.bn_folds() {
                folds[i] = Some((scale, shift, fuses[j]));
                folded_away[j] = true;
                fuses[j] = false;
            }
        }
        let Graph {
            layers,
            inbound,
            outputs,
            walk,
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
        let mut last_use = vec![usize::MAX; n_tensors];
        for (i, ids) in inbound.iter().enumerate() {
            for &t in ids {
                last_use[t] = i;
            }
        }
        // A model input is rounded to the model's element type unless a layer reads it
        // as indices (an Embedding's token ids must stay whole numbers).
        let mut values: Vec<Option<Var>> = xs
            .iter()
            .enumerate()
            .map(|(t, x)| {
                let ids = (inbound.iter().zip(layers.iter()))
                    .any(|(ins, l)| l.reads_indices() && ins.contains(&t));
                Some(if ids {
                    x.clone()
                } else {
                    super::precision::round_activation(x.clone(), dtype)
                })
            })
            .collect();
        values.resize(n_tensors, None);
        let mut masks: Vec<Option<Tensor>> = vec![None; n_tensors];
        for (t, m) in input_masks.iter().enumerate().take(n_in) {
            if let Some(m) = m {
                crate::ops::mask::check_mask("model input", m, &xs[t].shape())?;
            }
            masks[t] = m.cloned();
        }
        // Read once per call: off, profiling costs nothing per layer.
        let profiling = profile && super::layer_timing::is_profiling();
        for (i, layer) in layers.iter_mut().enumerate() {
            let args: Vec<Var> = inbound[i]
                .iter()
                .map(|&t| values[t].clone().expect("inputs come first"))
                .collect();
            let arg_masks: Vec<Option<Tensor>> =
                inbound[i].iter().map(|&t| masks[t].clone()).collect();
            for &t in &inbound[i] {
                if last_use[t] == i && !outputs.contains(&t) {
                    values[t] = None;
                    masks[t] = None;
                }
            }
            let arg_masks: Vec<Option<&Tensor>> = arg_masks.iter().map(Option::as_ref).collect();
            let out_ids = walk.node_outputs(i);
            let mut ctx = ForwardCtx {
                training,
                rng,
                output_logits: out_ids.len() == 1 && logits_of.contains(&out_ids.start),
            };
            let mut forward = || -> Result<Vec<Var>> {
                if let Some((scale, shift, relu)) = &folds[i] {
                    Ok(vec![layer.forward_folded(&args[0], scale, shift, *relu)?])
                } else if folded_away[i] {
                    // Folded into the conv before it.
                    Ok(args.clone())
                } else if fuses[i] {
                    Ok(vec![layer.forward_relu(&args, &mut ctx)?])
                } else if absorbed[i].is_some() {
                    // The layer before computed this ReLU (`relu_fusions`).
                    Ok(args.clone())
                } else {
                    layer.forward_outputs(&args, &arg_masks, &mut ctx)
                }
            };
            let hs = if profiling {
                super::layer_timing::time_layer(i, forward)?
            } else {
                forward()?
            };
            // Asked after the forward: a nested model learns its output mask by running.
            let hs_masks = layer.compute_masks(&args, &arg_masks)?;
            if hs.len() != out_ids.len() || hs_masks.len() != out_ids.len() {
                return Err(Error::invalid(format!(
                    "layer '{}' returned {} tensors and {} masks, but its config says it \
                     has {} outputs",
                    layer.name(),
                    hs.len(),
                    hs_masks.len(),
                    out_ids.len()
                )));
            }
            for ((t, h), m) in out_ids.zip(hs).zip(hs_masks) {
                let h = super::precision::round_activation(h, dtype);
                // One entry per layer: its first output.
                if let Some(trace) = trace
                    .as_deref_mut()
                    .filter(|_| t == walk.node_outputs(i).start)
                {
                    trace.push((layer.name().to_string(), h.value()));
                }
                masks[t] = m;
                values[t] = Some(h);
            }
        }
        Ok((
            outputs
                .iter()
                .map(|&t| values[t].clone().expect("outputs are kept"))
                .collect(),
            outputs.iter().map(|&t| masks[t].clone()).collect(),
        ))
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

    /// The sum of the layers' weight penalties (L2), if any layer has one.
    pub fn regularization_penalty(&self) -> Option<Var> {
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
    pub(crate) fn output_layer(&self) -> Option<&dyn Layer> {
        match self.outputs[..] {
            [t] if !self.tensor_is_read(t) => self.tensor_layer(t),
            _ => None,
        }
    }

    /// Overwrites layer `i`'s weights (in its `params()` order).
    pub(crate) fn set_layer_weights(&mut self, i: usize, weights: &[Tensor]) -> Result<()> {
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

    /// Keras' summary table.
    pub fn summary(&self) -> String {
        super::summary::summary(self)
    }

    /// Callback-friendly access to the model's random generator (e.g. to reseed).
    pub fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }
}
