//! The network vocabulary on top of ops: `Param`, the `Layer` trait, the layer registry,
//! `Dim` shapes and every layer (`layers/`, one file each), and the model graph: its
//! config (`model_config.rs`), its naming rules (`naming.rs`), building and running it
//! (`graph.rs`), the functional API (`functional.rs`), nested models (`nested.rs`) and
//! half-precision inference (`precision.rs`), sub-models sharing the parent's weights
//! (`sub_model.rs`), freezing layers (`trainable.rs`).
//!
//! `nn` knows nothing of losses, optimizers or training: a graph runs forward (its ops
//! record the backward); `training::Model` wraps a graph with what `compile` adds.

pub mod functional;
pub mod graph;
pub(crate) mod layer_timing;
pub mod layers;
pub mod model_config;
pub(crate) mod naming;
pub mod nested;
pub mod precision;
pub mod sub_model;
pub mod summary;
pub mod trainable;

pub use functional::{Call, Input, NamedInput, Shared, SymbolicTensor};
pub use graph::{set_layer_fusion, Graph};
pub use layers::{Dim, ForwardCtx, IntoDims, Layer, LayerConfig, LayerKind, LayerType, Param};
pub use model_config::{InputConfig, ModelConfig, NodeConfig};
pub use trainable::LayerRef;
