//! The network vocabulary on top of ops: `Param`, the `Layer` trait, the layer registry,
//! `Dim` shapes, every layer (`layers/`, one file each) and the model graph (config,
//! build, run, functional API, nested models and shared layers).
//!
//! `nn` knows nothing of losses, optimizers or training: a graph runs forward (and its
//! ops record the backward); `training` wraps it with what `compile` adds.

pub mod layers;

pub use layers::{Dim, ForwardCtx, IntoDims, Layer, LayerConfig, LayerKind, LayerType, Param};
