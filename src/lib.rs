//! nabla: a deep-learning framework with its own engine.
//!
//! Layers of the system, bottom up (see ARCHITECTURE.md):
//! - `engine`: tensors, reverse-mode autodiff, random numbers, gradient checking.
//! - `ops`: differentiable operations and their CPU kernels (forward and backward).
//! - `layers`, `losses`, `optimizers`: the Keras vocabulary built on ops.
//! - `training`: `Sequential`, `compile`, `fit`, callbacks, metrics, history.
//! - `models`: the built-in networks.
//! - `data`: data sets (IDX, download, batching, images).
//! - `formats`: safetensors weights, JSON model configs, atomic writes.
//! - `report`: pictures of a trained model, its HTML report, TensorBoard event files.

pub mod data;
pub mod engine;
pub mod error;
pub mod formats;
pub mod layers;
pub mod losses;
pub mod models;
pub mod ops;
pub mod optimizers;
pub mod report;
pub mod training;

pub use engine::{no_grad, DType, Rng, Tensor, Var};
pub use error::{Error, Result};
pub use layers::{Activation, Initializer, LayerConfig, Regularizer};
pub use losses::{KerasLoss, Loss, Target};
pub use optimizers::Optimizer;
pub use report::TensorBoard;
pub use training::{
    BackupAndRestore, CSVLogger, EarlyStopping, FitArgs, History, LambdaCallback, Model,
    ModelCheckpoint, Sequential,
};
