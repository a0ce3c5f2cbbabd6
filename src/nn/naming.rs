//! The naming and shared-call rules of a model graph, in one place. Both the graph as it
//! is built (`Graph::add_node`) and the shape walk over a config that builds nothing
//! (`ModelConfig::output_shapes`, a nested model's shape check) step through this
//! `Walk`, so the two cannot disagree on what a layer is called or which layer a
//! `Shared` call runs.
//!
//! The rules (Keras'): an unnamed layer takes its base name, or `base_1`, `base_2`, ...
//! the first that no input or earlier layer has; a name given twice is an error; the
//! K-th further call of a shared layer is `LAYER:K`; a call of a call is a call of the
//! layer itself. A layer that returns several tensors (an LSTM with `return_state`)
//! names its first output as the layer and output `k` as `LAYER[k]` (`lstm[1]`, the
//! final h; `lstm[2]`, the final c).

use super::layers::dims::Dim;
use super::layers::{LayerConfig, SharedConfig};
use super::model_config::InputConfig;
use crate::error::{Error, Result};

/// What is known of the tensors of a graph so far: tensors `0..inputs` are the inputs,
/// then each node's outputs in node order (one per node, unless a layer returns
/// several: `first_output` says where each node's begin).
#[derive(Clone, Debug)]
pub(crate) struct Walk {
    n_inputs: usize,
    names: Vec<String>,
    shapes: Vec<Vec<Dim>>,
    /// Per node: the id of its first output tensor.
    first_output: Vec<usize>,
    /// Per node: its first output's shape (what `node_shapes` lends out).
    node_shapes: Vec<Vec<Dim>>,
    /// Per node: the config of the layer it runs (for a shared call, the first call's)
    /// and the node index of that layer's first call (its own index if it is one).
    nodes: Vec<(LayerConfig, usize)>,
}

/// One resolved node: its name, the layer config it runs, its outputs' shapes, and,
/// for a further call of a shared layer, the node of the first call.
pub(crate) struct Step {
    pub name: String,
    pub config: LayerConfig,
    pub shapes: Vec<Vec<Dim>>,
    pub first_call: Option<usize>,
}

/// The name of output `k` of the node named `node`: the node's own for the first.
pub(crate) fn output_name(node: &str, k: usize) -> String {
    match k {
        0 => node.to_string(),
        _ => format!("{node}[{k}]"),
    }
}

impl Walk {
    pub fn new(inputs: &[InputConfig]) -> Walk {
        Walk {
            n_inputs: inputs.len(),
            names: inputs.iter().map(|i| i.name.clone()).collect(),
            shapes: inputs.iter().map(|i| i.shape.clone()).collect(),
            first_output: Vec::new(),
            node_shapes: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// How many tensors there are: inputs and every node's outputs.
    pub fn num_tensors(&self) -> usize {
        self.names.len()
    }

    /// The tensor ids of node `i`'s outputs.
    pub fn node_outputs(&self, i: usize) -> std::ops::Range<usize> {
        let end = self
            .first_output
            .get(i + 1)
            .copied()
            .unwrap_or(self.names.len());
        self.first_output[i]..end
    }

    /// The node producing tensor `t` and which of its outputs `t` is; `None` for a
    /// model input.
    pub fn producer(&self, t: usize) -> Option<(usize, usize)> {
        if t < self.n_inputs {
            return None;
        }
        let i = self.first_output.partition_point(|&f| f <= t) - 1;
        Some((i, t - self.first_output[i]))
    }

    /// Whether every node has exactly one output.
    pub fn single_outputs(&self) -> bool {
        self.n_inputs + self.first_output.len() == self.names.len()
    }

    pub fn name(&self, t: usize) -> &str {
        &self.names[t]
    }

    pub fn shape(&self, t: usize) -> &[Dim] {
        &self.shapes[t]
    }

    /// The (first) output shape of every node, in order.
    pub fn node_shapes(&self) -> &[Vec<Dim>] {
        &self.node_shapes
    }

    /// The tensor named `name` (an input or an earlier layer).
    pub fn tensor_id(&self, model: &str, name: &str) -> Result<usize> {
        self.names.iter().position(|m| m == name).ok_or_else(|| {
            Error::invalid(format!(
                "model '{model}': no input or earlier layer is named '{name}'"
            ))
        })
    }

    /// What a node without `inbound` reads, and a config without `outputs` returns:
    /// the last node's (first) output, or the last input before any node.
    pub fn last(&self) -> usize {
        self.first_output
            .last()
            .copied()
            .unwrap_or(self.n_inputs - 1)
    }

    /// What a config node reads: the tensors it names, or the last tensor (`last`).
    pub fn reads(&self, model: &str, inbound: &[String]) -> Result<Vec<usize>> {
        if inbound.is_empty() {
            return Ok(vec![self.last()]);
        }
        inbound.iter().map(|n| self.tensor_id(model, n)).collect()
    }

    /// A config's outputs: the tensors it names, or the last one (`last`).
    pub fn outputs(&self, model: &str, names: &[String]) -> Result<Vec<usize>> {
        if names.is_empty() {
            return Ok(vec![self.last()]);
        }
        names.iter().map(|n| self.tensor_id(model, n)).collect()
    }

    fn taken(&self, name: &str) -> bool {
        self.names.iter().any(|m| m == name)
    }

    /// `base`, or `base_1`, `base_2`, ...: the first name not taken.
    fn unique_name(&self, base: &str) -> String {
        if !self.taken(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.taken(n))
            .expect("some suffix is free")
    }

    /// Names the node `layer` reading `reads`, resolves a `Shared` call to the layer it
    /// calls, and works out its output shape. Records nothing (see `push`).
    pub fn resolve(&self, model: &str, layer: &LayerConfig, reads: &[usize]) -> Result<Step> {
        let ins: Vec<&[Dim]> = reads.iter().map(|&t| self.shapes[t].as_slice()).collect();
        let Some(c) = layer.downcast_ref::<SharedConfig>() else {
            let name = match layer.name() {
                Some(n) if self.taken(n) => {
                    return Err(Error::invalid(format!("two layers are named '{n}'")))
                }
                Some(n) => n.to_string(),
                None => self.unique_name(layer.base_name()),
            };
            let shapes = layer.output_shapes_of(&name, &ins)?;
            self.check_output_names(&name, shapes.len())?;
            return Ok(Step {
                name,
                config: layer.clone(),
                shapes,
                first_call: None,
            });
        };
        let j = (0..self.nodes.len())
            .find(|&i| self.names[self.first_output[i]] == c.layer)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "model '{model}': a Shared call names the layer '{}', which is not an \
                     earlier layer",
                    c.layer
                ))
            })?;
        // A call of a call is a call of the layer itself.
        let (config, first) = self.nodes[j].clone();
        let layer_name = self.names[self.first_output[first]].clone();
        let name = match &c.name {
            Some(n) if self.taken(n) => {
                return Err(Error::invalid(format!("two layers are named '{n}'")))
            }
            Some(n) => n.clone(),
            None => {
                let calls = (0..self.nodes.len())
                    .filter(|&i| i != self.nodes[i].1 && self.nodes[i].1 == first)
                    .count();
                self.unique_name(&format!("{layer_name}:{}", calls + 1))
            }
        };
        let shapes = config
            .output_shapes_of(&layer_name, &ins)
            .map_err(|e| e.context(&format!("layer '{name}' (a call of '{layer_name}')")))?;
        self.check_output_names(&name, shapes.len())?;
        Ok(Step {
            name,
            config,
            shapes,
            first_call: Some(first),
        })
    }

    /// The names of a node's further outputs (`NAME[k]`) must be free too.
    fn check_output_names(&self, name: &str, outputs: usize) -> Result<()> {
        match (1..outputs)
            .map(|k| output_name(name, k))
            .find(|n| self.taken(n))
        {
            Some(n) => Err(Error::invalid(format!(
                "layer '{name}' names its output {n}, but a layer or input is already \
                 named '{n}'"
            ))),
            None => Ok(()),
        }
    }

    /// Records a resolved node.
    pub fn push(&mut self, step: Step) {
        let node = self.nodes.len();
        self.first_output.push(self.names.len());
        self.node_shapes.push(step.shapes[0].clone());
        for (k, shape) in step.shapes.into_iter().enumerate() {
            self.names.push(output_name(&step.name, k));
            self.shapes.push(shape);
        }
        self.nodes
            .push((step.config, step.first_call.unwrap_or(node)));
    }
}
