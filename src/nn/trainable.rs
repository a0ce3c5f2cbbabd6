//! Freezing layers (Keras' `trainable`), for transfer learning: keep a trained base and
//! train a new top (feature extraction), or train the top and the last blocks of the
//! base (fine-tuning).
//!
//! Semantics, as Keras 2.x+/3:
//! - A frozen layer's weights come out of `Graph::params` with `trainable: false`, so
//!   every optimizer leaves them alone and `count_params`/`summary` count them as
//!   non-trainable. Their `Var`s stop requiring gradients (`Var::set_requires_grad`),
//!   so backward computes nothing for them, and nothing at all below a frozen base.
//! - A frozen BatchNormalization runs in inference mode even while the model trains:
//!   it uses and does not update its moving statistics.
//! - Freezing a nested model freezes every layer in it; unfreezing it gives each inner
//!   layer back its own flag.
//! - The flag is part of the architecture: `model.json` writes `"trainable": false`
//!   beside the layer (nothing when true), and loading restores it.
//!
//! Optimizer state is kept by parameter name, so changing what is frozen between `fit`
//! calls needs no re-compile (Keras needs one): a frozen weight's slots (Adam's
//! moments) are left as they are and resume when it is unfrozen; a weight trainable
//! for the first time starts with fresh slots. To start the optimizer afresh, as
//! Keras' re-compile does, compile again.

use super::graph::Graph;
use super::layers::Layer;
use crate::error::{Error, Result};

/// A layer by name or by index in the model's layer order (`model.layers()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerRef {
    Name(String),
    Index(usize),
}

impl From<&str> for LayerRef {
    fn from(name: &str) -> Self {
        LayerRef::Name(name.to_string())
    }
}

impl From<String> for LayerRef {
    fn from(name: String) -> Self {
        LayerRef::Name(name)
    }
}

impl From<usize> for LayerRef {
    fn from(i: usize) -> Self {
        LayerRef::Index(i)
    }
}

impl Graph {
    /// The index of a layer given by name or index; an unknown one is an error that
    /// lists the model's layers.
    pub fn layer_index(&self, which: impl Into<LayerRef>) -> Result<usize> {
        let n = self.layers().len();
        match which.into() {
            LayerRef::Index(i) if i < n => Ok(i),
            LayerRef::Index(i) => Err(Error::invalid(format!(
                "model '{}' has {n} layers; there is no layer {i}",
                self.name
            ))),
            LayerRef::Name(name) => self
                .layers()
                .iter()
                .position(|l| l.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = self.layers().iter().map(|l| l.name()).collect();
                    Error::invalid(format!(
                        "model '{}' has no layer '{name}'; its layers: {}",
                        self.name,
                        names.join(", ")
                    ))
                }),
        }
    }

    /// The layer at index `i` (`model.layers()[i]`), if there is one.
    pub fn get_layer_at(&self, i: usize) -> Option<&dyn Layer> {
        self.layers().get(i).map(|l| l.as_ref())
    }

    /// The layer given by name or index, mutable (its weights through `params()`).
    /// Freeze it with `set_trainable`, not through the layer: the model keeps the flag.
    pub fn get_layer_mut(&mut self, which: impl Into<LayerRef>) -> Result<&mut dyn Layer> {
        let i = self.layer_index(which)?;
        Ok(self.layers_mut()[i].as_mut())
    }

    /// Whether the layer (by name or index) is trainable (its own flag).
    pub fn is_trainable(&self, which: impl Into<LayerRef>) -> Result<bool> {
        Ok(self.trainable[self.layer_index(which)?])
    }

    /// Freezes (`false`) or unfreezes one layer, by name or index (Keras'
    /// `model.get_layer(name).trainable = False`).
    pub fn set_trainable(&mut self, which: impl Into<LayerRef>, trainable: bool) -> Result<()> {
        let i = self.layer_index(which)?;
        self.trainable[i] = trainable;
        self.sync_frozen();
        Ok(())
    }

    /// Freezes or unfreezes every layer (Keras' `model.trainable = False`).
    pub fn set_model_trainable(&mut self, trainable: bool) {
        self.trainable.iter_mut().for_each(|t| *t = trainable);
        self.sync_frozen();
    }

    /// Feature extraction: every layer up to and including `last` (by name or index)
    /// frozen, the ones after it trainable.
    pub fn freeze_until(&mut self, last: impl Into<LayerRef>) -> Result<()> {
        let last = self.layer_index(last)?;
        for (i, t) in self.trainable.iter_mut().enumerate() {
            *t = i > last;
        }
        self.sync_frozen();
        Ok(())
    }

    /// Fine-tuning: the layers before `first` (by name or index) frozen, `first` and
    /// every layer after it trainable.
    pub fn fine_tune_from(&mut self, first: impl Into<LayerRef>) -> Result<()> {
        let first = self.layer_index(first)?;
        for (i, t) in self.trainable.iter_mut().enumerate() {
            *t = i >= first;
        }
        self.sync_frozen();
        Ok(())
    }

    /// Tells each layer whether it is frozen (its own flag, or the parent's when this
    /// graph is a frozen nested model) and makes the weights' `Var`s require gradients
    /// exactly when they are trainable.
    pub(crate) fn sync_frozen(&mut self) {
        let parent = self.frozen_by_parent;
        let flags = self.trainable.clone();
        for (layer, on) in self.layers_mut().iter_mut().zip(flags) {
            layer.set_frozen(parent || !on);
        }
        // A half-precision copy holds its weights as constants and never trains
        // (`precision.rs`): it has nothing to switch.
        if self.dtype != crate::engine::DType::F32 {
            return;
        }
        for p in self.params().iter().filter(|p| !p.buffer) {
            p.var.set_requires_grad(p.trainable && !parent);
        }
    }
}
