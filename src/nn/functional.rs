//! The functional API: layers called on symbolic tensors, then `Model::functional`.
//!
//! ```
//! use nabla::layers::keras::*;
//! use nabla::training::Model;
//! # fn main() -> nabla::Result<()> {
//! let inputs = Input(&[1, 28, 28]);
//! let x = Conv2D(8, 3).padding(Same).activation(Relu).call(&inputs)?;
//! let y = Conv2D(8, 3).padding(Same).call(&x)?;
//! let x = Add().call_many(&[&x, &y])?; // a residual connection
//! let x = Flatten().call(&x)?;
//! let outputs = Dense(10).activation(Softmax).call(&x)?;
//! let model = Model::functional(&[&inputs], &[&outputs], 0)?;
//! assert_eq!(model.output_shape(), &[10]);
//! # Ok(())
//! # }
//! ```
//!
//! A symbolic tensor records how it was made (the layer config and the tensors it read)
//! and its shape, which is inferred at each call, so a shape error names the layer as
//! soon as it is called, as in Keras. `Model::functional` walks back from the outputs,
//! orders the layers so that each comes after its inputs, names them (`conv2d`,
//! `conv2d_1`, ...) and builds their weights from the seed. A model called on a
//! symbolic tensor (`encoder.call(&x)`) becomes one layer of the new model, carrying a
//! copy of its current weights (transfer learning); unlike Keras, the two models do not
//! share weight storage afterwards. A layer config is a value: called twice, it makes
//! two layers with their own weights. To call one layer (one set of weights) on several
//! tensors, as Keras' shared layers do, make it `shared()`:
//!
//! ```
//! use nabla::layers::keras::*;
//! use nabla::training::Model;
//! # fn main() -> nabla::Result<()> {
//! let (a, b) = (Input(&[8]), Input(&[8]));
//! let tower = Dense(4).activation(Relu).named("tower").shared();
//! let d = Subtract().call_many(&[&tower.call(&a)?, &tower.call(&b)?])?;
//! let model = Model::functional(&[&a, &b], &[&d], 0)?;
//! assert_eq!(model.count_params().0, 8 * 4 + 4); // one tower
//! # Ok(())
//! # }
//! ```
//!
//! Models with several inputs and outputs train with `compile_outputs` and `fit_many`
//! (see `tests/multi_io.rs`), or with a loop of one's own over `call_many`.
//!
//! A layer that returns several tensors (a recurrent layer with `return_state`, as
//! Keras' `out, h, c = LSTM(8, return_state=True)(x)`) is called with `call_outputs`,
//! which gives one symbolic tensor per output; its initial states are further inputs
//! (`LSTM(8).call_outputs(&[&x, &h0, &c0])`, Keras' `initial_state=[h0, c0]`).

use super::graph::Graph;
use super::layers::dims::{Dim, IntoDims};
use super::layers::LayerConfig;
use super::model_config::InputConfig;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::rc::Rc;

/// A placeholder for the values a layer will see: its shape (without batch) and how it
/// is computed.
#[derive(Clone)]
pub struct SymbolicTensor(Rc<Symbol>);

struct Symbol {
    shape: Vec<Dim>,
    source: Source,
}

enum Source {
    Input {
        name: Option<String>,
    },
    /// A layer call; the tensor is its (first) output.
    Layer {
        config: LayerConfig,
        inputs: Vec<SymbolicTensor>,
        /// Weights to copy in (a called model's).
        weights: Option<Vec<crate::engine::Tensor>>,
        /// The shared layer this is a call of, if any (its identity).
        shared: Option<Rc<LayerConfig>>,
    },
    /// Output `index` (>= 1) of the layer call `call` (a `Source::Layer` tensor).
    Output {
        call: SymbolicTensor,
        index: usize,
    },
}

impl SymbolicTensor {
    /// Shape without the batch axis (`None` where known only per batch).
    pub fn shape(&self) -> &[Dim] {
        &self.0.shape
    }

    fn id(&self) -> *const Symbol {
        Rc::as_ptr(&self.0)
    }
}

impl std::fmt::Debug for SymbolicTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SymbolicTensor(shape=[None, {:?}])", self.0.shape)
    }
}

/// Keras' `Input(shape)`: a model input, without the batch axis (`&[3, 32, 32]`).
/// `None` marks an axis known only per batch, as in Keras' `Input(shape=(None, 8))`:
/// `Input(&[None, Some(8)])` takes sequences of any length.
#[allow(non_snake_case)]
pub fn Input(shape: impl IntoDims) -> SymbolicTensor {
    SymbolicTensor(Rc::new(Symbol {
        shape: shape.into_dims(),
        source: Source::Input { name: None },
    }))
}

/// A named model input (the name appears in `summary` and in errors).
#[allow(non_snake_case)]
pub fn NamedInput(name: &str, shape: impl IntoDims) -> SymbolicTensor {
    SymbolicTensor(Rc::new(Symbol {
        shape: shape.into_dims(),
        source: Source::Input {
            name: Some(name.to_string()),
        },
    }))
}

/// A layer call: one symbolic tensor per output of the layer.
fn apply_outputs(
    config: LayerConfig,
    inputs: &[&SymbolicTensor],
    weights: Option<Vec<crate::engine::Tensor>>,
    shared: Option<Rc<LayerConfig>>,
) -> Result<Vec<SymbolicTensor>> {
    let shapes: Vec<&[Dim]> = inputs.iter().map(|t| t.shape()).collect();
    let name = config.name().unwrap_or(config.base_name()).to_string();
    let mut shapes = config.output_shapes_of(&name, &shapes)?.into_iter();
    let call = SymbolicTensor(Rc::new(Symbol {
        shape: shapes.next().expect("at least one output"),
        source: Source::Layer {
            config,
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
            weights,
            shared,
        },
    }));
    let further = shapes.enumerate().map(|(k, shape)| {
        SymbolicTensor(Rc::new(Symbol {
            shape,
            source: Source::Output {
                call: call.clone(),
                index: k + 1,
            },
        }))
    });
    Ok(std::iter::once(call.clone()).chain(further).collect())
}

/// A layer call with one output.
fn apply(
    config: LayerConfig,
    inputs: &[&SymbolicTensor],
    weights: Option<Vec<crate::engine::Tensor>>,
    shared: Option<Rc<LayerConfig>>,
) -> Result<SymbolicTensor> {
    let name = config.name().unwrap_or(config.base_name()).to_string();
    let class = config.class_name();
    let mut outs = apply_outputs(config, inputs, weights, shared)?;
    if outs.len() != 1 {
        return Err(Error::invalid(format!(
            "layer '{name}' ({class}) returns {} tensors; call it with call_outputs",
            outs.len()
        )));
    }
    Ok(outs.remove(0))
}

/// Calling a layer config on symbolic tensors, as in Keras: `Dense(10).call(&x)?`.
pub trait Call: Into<LayerConfig> + Sized {
    /// The layer under the instance name `name` (Keras' `name=`).
    fn named(self, name: &str) -> LayerConfig {
        LayerConfig::named(self.into(), name)
    }
    /// Applies the layer to one tensor.
    fn call(self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        apply(self.into(), &[x], None, None)
    }
    /// Applies a merge layer (`Add`, `Concatenate`, ...) to several tensors.
    fn call_many(self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        apply(self.into(), xs, None, None)
    }
    /// Applies the layer to its inputs (for a recurrent layer: the sequence, then any
    /// initial states) and returns every output (with `return_state`: the output,
    /// then the final states), as Keras' `out, h, c = lstm(x, initial_state=[h0, c0])`.
    fn call_outputs(self, xs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
        apply_outputs(self.into(), xs, None, None)
    }
    /// A layer to call on several tensors with one set of weights (Keras' shared
    /// layers): `let tower = Dense(64).shared(); tower.call(&a)?; tower.call(&b)?`.
    fn shared(self) -> Shared {
        Shared(Rc::new(self.into()))
    }
}

/// One layer called on several tensors, sharing its weights (the towers of a siamese
/// net). In the model, its first call builds the weights and each further call is a
/// `Shared` node that runs the same layer (see `layers::shared`). Each model built
/// from these calls gets its own copy of the layer.
#[derive(Clone)]
pub struct Shared(Rc<LayerConfig>);

impl Shared {
    /// Calls the layer on one tensor.
    pub fn call(&self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_many(&[x])
    }
    /// Calls a merge layer on several tensors.
    pub fn call_many(&self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        apply((*self.0).clone(), xs, None, Some(Rc::clone(&self.0)))
    }
    /// Calls the layer and returns every output (see `Call::call_outputs`).
    pub fn call_outputs(&self, xs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
        apply_outputs((*self.0).clone(), xs, None, Some(Rc::clone(&self.0)))
    }
}

impl<T: Into<LayerConfig>> Call for T {}

impl Graph {
    /// A model from its inputs to its outputs (Keras' `Model(inputs, outputs)`). The
    /// seed fixes weight initialization, shuffling and dropout masks.
    pub fn functional(
        inputs: &[&SymbolicTensor],
        outputs: &[&SymbolicTensor],
        seed: u64,
    ) -> Result<Graph> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::invalid(
                "a functional model needs at least one input and one output",
            ));
        }
        // Inputs first, named as given or input, input_1, ...
        let mut ids: HashMap<*const Symbol, usize> = HashMap::new();
        let mut input_cfgs = Vec::new();
        for (k, t) in inputs.iter().enumerate() {
            let Source::Input { name } = &t.0.source else {
                return Err(Error::invalid(format!(
                    "input {} of the model is a layer's output, not an Input",
                    k + 1
                )));
            };
            if ids.insert(t.id(), k).is_some() {
                return Err(Error::invalid("the same Input is given twice"));
            }
            let name = name.clone().unwrap_or_else(|| match k {
                0 => "input".to_string(),
                _ => format!("input_{k}"),
            });
            if input_cfgs.iter().any(|i: &InputConfig| i.name == name) {
                return Err(Error::invalid(format!("two inputs are named '{name}'")));
            }
            input_cfgs.push(InputConfig {
                name,
                shape: t.shape().to_vec(),
            });
        }
        // Layers in dependency order: a depth-first walk from the outputs.
        let mut order: Vec<SymbolicTensor> = Vec::new();
        let mut seen: HashMap<*const Symbol, bool> = HashMap::new();
        for out in outputs {
            visit(out, &ids, &mut seen, &mut order)?;
        }
        let mut model = Graph::empty(input_cfgs, seed);
        model.name = "model".into();
        // The name of the layer each shared layer's first call built.
        let mut shared_names: HashMap<*const LayerConfig, String> = HashMap::new();
        for t in &order {
            if let Source::Output { call, index } = &t.0.source {
                // Its call was ordered (and given an id) before it.
                ids.insert(t.id(), ids[&call.id()] + index);
                continue;
            }
            let Source::Layer {
                config,
                inputs,
                weights,
                shared,
            } = &t.0.source
            else {
                unreachable!("visit only orders layers")
            };
            let reads = inputs.iter().map(|i| ids[&i.id()]).collect();
            let first_call = shared
                .as_ref()
                .and_then(|s| shared_names.get(&Rc::as_ptr(s)));
            let config = match first_call {
                Some(layer) => super::layers::SharedConfig {
                    name: None,
                    layer: layer.clone(),
                }
                .into(),
                None => config.clone(),
            };
            let node = model.add_node(config, reads)?;
            if let Some(s) = shared {
                let name = model.layers()[node].name().to_string();
                shared_names.entry(Rc::as_ptr(s)).or_insert(name);
            }
            if let Some(w) = weights {
                model.set_layer_weights(node, w)?;
            }
            ids.insert(t.id(), model.layer_outputs(node).start);
        }
        let outs = outputs.iter().map(|t| ids[&t.id()]).collect();
        model.set_outputs(outs);
        Ok(model)
    }

    /// Uses this model as one layer of a functional model, with a copy of its current
    /// weights (e.g. a trained feature extractor).
    pub fn call(&self, x: &SymbolicTensor) -> Result<SymbolicTensor> {
        self.call_inputs(&[x])
    }

    /// `call` for a model with several inputs.
    pub fn call_inputs(&self, xs: &[&SymbolicTensor]) -> Result<SymbolicTensor> {
        let cfg = self.config();
        let weights = self.get_weights();
        apply(LayerConfig::new(cfg), xs, Some(weights), None)
    }

    /// Uses this model as one layer and returns each of its outputs (a model with
    /// several outputs).
    pub fn call_outputs(&self, xs: &[&SymbolicTensor]) -> Result<Vec<SymbolicTensor>> {
        let cfg = self.config();
        let weights = self.get_weights();
        apply_outputs(LayerConfig::new(cfg), xs, Some(weights), None)
    }
}

/// Post-order walk: a layer is pushed after everything it reads.
fn visit(
    t: &SymbolicTensor,
    inputs: &HashMap<*const Symbol, usize>,
    seen: &mut HashMap<*const Symbol, bool>,
    order: &mut Vec<SymbolicTensor>,
) -> Result<()> {
    if inputs.contains_key(&t.id()) {
        return Ok(());
    }
    match seen.get(&t.id()) {
        Some(true) => return Ok(()),
        Some(false) => unreachable!("symbolic tensors cannot form cycles"),
        None => {}
    }
    match &t.0.source {
        Source::Input { name } => Err(Error::invalid(format!(
            "graph disconnected: an output depends on the input {} of shape {:?}, which \
             is not among the model's inputs",
            name.as_deref().map_or(String::new(), |n| format!("'{n}'")),
            t.shape()
        ))),
        Source::Output { call, .. } => {
            visit(call, inputs, seen, order)?;
            seen.insert(t.id(), true);
            order.push(t.clone());
            Ok(())
        }
        Source::Layer { inputs: reads, .. } => {
            seen.insert(t.id(), false);
            for r in reads {
                visit(r, inputs, seen, order)?;
            }
            seen.insert(t.id(), true);
            order.push(t.clone());
            Ok(())
        }
    }
}
