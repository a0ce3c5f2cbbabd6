//! The naming and shared-call rules of a model graph, in one place. Both the graph as it
//! is built (`Graph::add_node`) and the shape walk over a config that builds nothing
//! (`ModelConfig::output_shapes`, a nested model's shape check) step through this
//! `Walk`, so the two cannot disagree on what a layer is called or which layer a
//! `Shared` call runs.
//!
//! The rules (Keras'): an unnamed layer takes its base name, or `base_1`, `base_2`, ...
//! the first that no input or earlier layer has; a name given twice is an error; the
//! K-th further call of a shared layer is `LAYER:K`; a call of a call is a call of the
//! layer itself.

use super::layers::dims::Dim;
use super::layers::{LayerConfig, SharedConfig};
use super::model_config::InputConfig;
use crate::error::{Error, Result};

/// What is known of the tensors of a graph so far: tensors `0..inputs` are the inputs,
/// tensor `inputs + i` is node `i`'s output.
#[derive(Clone, Debug)]
pub(crate) struct Walk {
    n_inputs: usize,
    names: Vec<String>,
    shapes: Vec<Vec<Dim>>,
    /// Per node: the config of the layer it runs (for a shared call, the first call's)
    /// and the node index of that layer's first call (its own index if it is one).
    nodes: Vec<(LayerConfig, usize)>,
}

/// One resolved node: its name, the layer config it runs, its output shape, and, for a further call of a shared layer, the node of the first call.
pub(crate) struct Step {
    pub name: String,
    pub config: LayerConfig,
    pub shape: Vec<Dim>,
    pub first_call: Option<usize>,
}

impl Walk {
    pub fn new(inputs: &[InputConfig]) -> Walk {
        Walk {
            n_inputs: inputs.len(),
            names: inputs.iter().map(|i| i.name.clone()).collect(),
            shapes: inputs.iter().map(|i| i.shape.clone()).collect(),
            nodes: Vec::new(),
        }
    }

    pub fn name(&self, t: usize) -> &str {
        &self.names[t]
    }

    pub fn shape(&self, t: usize) -> &[Dim] {
        &self.shapes[t]
    }

    /// The output shape of every node, in order.
    pub fn node_shapes(&self) -> &[Vec<Dim>] {
        &self.shapes[self.n_inputs..]
    }

    /// The tensor named `name` (an input or an earlier layer).
    pub fn tensor_id(&self, model: &str, name: &str) -> Result<usize> {
        self.names.iter().position(|m| m == name).ok_or_else(|| {
            Error::invalid(format!(
                "model '{model}': no input or earlier layer is named '{name}'"
            ))
        })
    }

    /// What a config node reads: the tensors it names, or the last tensor.
    pub fn reads(&self, model: &str, inbound: &[String]) -> Result<Vec<usize>> {
        if inbound.is_empty() {
            return Ok(vec![self.names.len() - 1]);
        }
        inbound.iter().map(|n| self.tensor_id(model, n)).collect()
    }

    /// A config's outputs: the tensors it names, or the last one.
    pub fn outputs(&self, model: &str, names: &[String]) -> Result<Vec<usize>> {
        if names.is_empty() {
            return Ok(vec![self.names.len() - 1]);
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
            let shape = layer.output_shape_of(&name, &ins)?;
            return Ok(Step {
                name,
                config: layer.clone(),
                shape,
                first_call: None,
            });
        };
        let j = self.names[self.n_inputs..]
            .iter()
            .position(|m| *m == c.layer)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "model '{model}': a Shared call names the layer '{}', which is not an \
                     earlier layer",
                    c.layer
                ))
            })?;
        // A call of a call is a call of the layer itself.
        let (config, first) = self.nodes[j].clone();
        let layer_name = self.names[self.n_inputs + first].clone();
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
        let shape = config
            .output_shape_of(&layer_name, &ins)
            .map_err(|e| e.context(&format!("layer '{name}' (a call of '{layer_name}')")))?;
        Ok(Step {
            name,
            config,
            shape,
            first_call: Some(first),
        })
    }

    /// Records a resolved node.
    pub fn push(&mut self, step: Step) {
        let node = self.nodes.len();
        self.names.push(step.name);
        self.shapes.push(step.shape);
        self.nodes
            .push((step.config, step.first_call.unwrap_or(node)));
    }
}
