//! A model's architecture as plain data (`model.json`): its inputs, its layers and what
//! each reads, its outputs. Training adds a `compile` section that `nn` keeps as opaque
//! JSON (`training::Model` reads it), so the graph never depends on losses or optimizers.

use super::layers::dims::Dim;
use super::layers::LayerConfig;
use super::naming::Walk;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

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
    /// Loss, optimizer and metrics, if the model was compiled: JSON that `nn` keeps as
    /// it is and `training::Model` reads (`training::model::CompileConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<serde_json::Value>,
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

    /// The named inputs: `inputs`, or one called `input` of `input_shape`.
    pub fn input_configs(&self) -> Result<Vec<InputConfig>> {
        for (name, shape) in self.input_shapes().iter().enumerate() {
            if shape.iter().any(|d| d.get() == Some(0)) {
                let which = match self.inputs.get(name) {
                    Some(i) => format!("input '{}'", i.name),
                    None => "input_shape".to_string(),
                };
                return Err(Error::shape(format!(
                    "{which} {shape:?} has an axis of size 0; every axis needs at least one \
                     element (write null for an axis of any length)"
                )));
            }
        }
        match (self.input_shape.is_empty(), self.inputs.is_empty()) {
            (false, true) => Ok(vec![InputConfig {
                name: "input".into(),
                shape: self.input_shape.clone(),
            }]),
            (true, false) => Ok(self.inputs.clone()),
            _ => Err(Error::invalid(
                "a model config needs either \"input_shape\" or \"inputs\", not both",
            )),
        }
    }

    /// The shape of each output, worked out from the layer configs alone (no weights
    /// are built): what `Graph::from_config(self).output_shapes()` gives, for a nested
    /// model's shape check. Names, inbound references and shared calls resolve by the
    /// same rules (`naming::Walk`) as when the graph is built.
    pub fn output_shapes(&self) -> Result<Vec<Vec<Dim>>> {
        let mut walk = Walk::new(&self.input_configs()?);
        for node in &self.layers {
            let reads = walk.reads(&self.name, &node.inbound)?;
            let step = walk.resolve(&self.name, &node.layer, &reads)?;
            walk.push(step);
        }
        let outputs = walk.outputs(&self.name, &self.outputs)?;
        Ok(outputs.iter().map(|&t| walk.shape(t).to_vec()).collect())
    }
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
    /// Keras' `trainable`: `false` freezes the layer (see `nn/trainable.rs`); written
    /// only when false, so configs of models that freeze nothing stay as they were.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub trainable: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl From<LayerConfig> for NodeConfig {
    fn from(layer: LayerConfig) -> Self {
        NodeConfig {
            layer,
            inbound: Vec::new(),
            trainable: true,
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
            #[serde(default = "yes")]
            trainable: bool,
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
            trainable: raw.trainable,
        })
    }
}

pub(crate) fn default_model_name() -> String {
    "sequential".into()
}
