//! Keras' shared layers: one layer, one set of weights, called on several tensors (the
//! towers of a siamese net, one embedding for two word sequences).
//!
//! A model's graph has one node per call. When a layer is called a second time, the
//! model moves the layer behind a shared handle and every call of it becomes a
//! `SharedLayer` node holding that handle: each call runs the same layer (so the
//! gradients of all calls add up in the same weights), the first call lists the weights
//! and its config, and each later call is saved as a `Shared` config naming the layer
//! it calls (`{"class_name": "Shared", "config": {"name": "tower:1", "layer": "tower"}}`).

use super::dims::Dim;
use super::{Activation, ForwardCtx, Layer, LayerConfig, LayerKind, LayerType, Param};
use crate::engine::{Rng, Tensor, Var};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

/// A later call of the earlier layer `layer`, with its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedConfig {
    /// This call's name (default: `LAYER:K` for the K-th further call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The name of the layer called again (its first call).
    pub layer: String,
}

/// The registry line (see `layers::LAYER_TYPES`).
pub const SHARED: LayerType = LayerType::of::<SharedConfig>("Shared");

/// A `Shared` config means "call the model's layer `layer` again": only a model, which
/// has that layer, can resolve it (`Model::add_node`).
impl LayerKind for SharedConfig {
    fn class_name(&self) -> &'static str {
        "Shared"
    }
    fn base_name(&self) -> &'static str {
        "shared"
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn takes_many_inputs(&self) -> bool {
        // The layer called decides; the model checks its inputs.
        true
    }
    fn output_shape(&self, name: &str, _inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Err(self.outside_a_model(name))
    }
    fn build(&self, name: String, _inputs: &[&[Dim]], _rng: &mut Rng) -> Result<Box<dyn Layer>> {
        Err(self.outside_a_model(&name))
    }
}

impl SharedConfig {
    fn outside_a_model(&self, name: &str) -> Error {
        Error::invalid(format!(
            "layer '{name}' (Shared) calls layer '{}' again; it can only appear in a model \
             after that layer",
            self.layer
        ))
    }
}

/// One call of a layer that several nodes share.
pub struct SharedLayer {
    /// The node's name: the layer's own for its first call, `LAYER:K` after.
    name: String,
    layer: Rc<RefCell<Box<dyn Layer>>>,
    /// The first call owns the weights (lists them once) and the layer's config.
    first: bool,
    /// A handle that a sub-model shares with its parent (`nn/sub_model.rs`), not a
    /// layer its own model calls twice: `summary` does not call it shared.
    view: bool,
}

impl SharedLayer {
    /// Moves `layer` behind a shared handle: the returned node is its first call.
    pub fn first_call(layer: Box<dyn Layer>) -> SharedLayer {
        SharedLayer {
            name: layer.name().to_string(),
            layer: Rc::new(RefCell::new(layer)),
            first: true,
            view: false,
        }
    }

    /// Moves `layer` behind a handle that another graph (a sub-model) will hold too.
    pub fn view_of(layer: Box<dyn Layer>) -> SharedLayer {
        SharedLayer {
            view: true,
            ..SharedLayer::first_call(layer)
        }
    }

    /// This node's layer for another graph (a sub-model): the same layer and weights,
    /// listed by that graph as its own.
    pub fn view(&self) -> SharedLayer {
        SharedLayer {
            name: self.name.clone(),
            layer: Rc::clone(&self.layer),
            first: true,
            view: true,
        }
    }

    /// Whether this is a sub-model's handle rather than a call of a shared layer.
    pub fn is_view(&self) -> bool {
        self.view
    }

    /// A further call of the same layer, named `name`.
    pub fn another_call(&self, name: String) -> SharedLayer {
        SharedLayer {
            name,
            layer: Rc::clone(&self.layer),
            first: false,
            view: false,
        }
    }

    /// The config of the layer itself (what its first call was built from).
    pub fn layer_config(&self) -> LayerConfig {
        self.layer.borrow().config()
    }

    /// The weights of the layer (every call has the same).
    pub fn layer_params(&self) -> Vec<Param> {
        self.layer.borrow().params()
    }

    /// The name of the layer (its first call's).
    pub fn layer_name(&self) -> String {
        self.layer.borrow().name().to_string()
    }
}

impl Layer for SharedLayer {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.layer.borrow_mut().forward(x, ctx)
    }
    /// Only the first call speaks for the layer (it owns the weights): a further
    /// call's flag would otherwise undo the first's.
    fn set_frozen(&mut self, frozen: bool) {
        if self.first {
            self.layer.borrow_mut().set_frozen(frozen);
        }
    }
    fn forward_many(&mut self, xs: &[Var], ctx: &mut ForwardCtx) -> Result<Var> {
        self.layer.borrow_mut().forward_many(xs, ctx)
    }
    fn forward_masked(
        &mut self,
        x: &Var,
        mask: Option<&Tensor>,
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        self.layer.borrow_mut().forward_masked(x, mask, ctx)
    }
    fn forward_many_masked(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Var> {
        self.layer.borrow_mut().forward_many_masked(xs, masks, ctx)
    }
    fn compute_mask(&self, x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        self.layer.borrow().compute_mask(x, mask)
    }
    fn compute_mask_many(&self, xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Option<Tensor>> {
        self.layer.borrow().compute_mask_many(xs, masks)
    }
    fn forward_outputs(
        &mut self,
        xs: &[Var],
        masks: &[Option<&Tensor>],
        ctx: &mut ForwardCtx,
    ) -> Result<Vec<Var>> {
        self.layer.borrow_mut().forward_outputs(xs, masks, ctx)
    }
    fn compute_masks(&self, xs: &[Var], masks: &[Option<&Tensor>]) -> Result<Vec<Option<Tensor>>> {
        self.layer.borrow().compute_masks(xs, masks)
    }
    /// Listed by the first call only, so the model counts, saves and trains them once.
    fn params(&self) -> Vec<Param> {
        if self.first {
            self.layer_params()
        } else {
            Vec::new()
        }
    }
    fn config(&self) -> LayerConfig {
        if self.first {
            self.layer_config()
        } else {
            SharedConfig {
                name: Some(self.name.clone()),
                layer: self.layer_name(),
            }
            .into()
        }
    }
    fn output_activation(&self) -> Option<Activation> {
        self.layer.borrow().output_activation()
    }
    fn as_shared(&self) -> Option<&SharedLayer> {
        Some(self)
    }
    fn reads_indices(&self) -> bool {
        self.layer.borrow().reads_indices()
    }
    /// The layer's penalty, counted once (by the first call).
    fn regularization(&self) -> Option<Var> {
        if self.first {
            self.layer.borrow().regularization()
        } else {
            None
        }
    }
}
