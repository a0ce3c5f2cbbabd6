//! nabla: a deep-learning framework with its own engine.
//!
//! Layers of the system, bottom up; a folder uses only lower ranks (ARCHITECTURE.md,
//! checked by `tests/layering.rs`):
//! 0. `error`: `Error` and `Result`.
//! 1. `engine`: tensors (storage, layout, element types), reverse-mode autodiff, random
//!    numbers, gradient checking.
//! 2. `ops`: differentiable operations and their CPU kernels (forward and backward), the
//!    in-place parameter updates. `detection`: boxes, IoU, NMS, AP/mAP, COCO's evaluator
//!    (plain functions over boxes, no tensors).
//! 3. `nn`: `Param`, `Layer`, the layer registry, `Dim`, every layer (`nn::layers`, also
//!    `nabla::layers`), the model graph (`Graph`, `ModelConfig`, the functional API,
//!    nested models and shared layers).
//! 4. `losses`, `optimizers`: the open `Loss` trait and Keras' losses; update rules.
//! 5. `training`: `Model` = `Sequential` (a graph + compile state), `train_step`, `fit`
//!    (tensors or a `BatchSource`), callbacks, metrics, history, profiler.
//! 6. `formats`: safetensors weights, saved-model directories, atomic writes.
//! 7. `data` (data sets, batching, augmentation), `models` (the built-in networks).
//! 8. `report`: pictures of a trained model, its HTML report, TensorBoard event files.
//! 9. the `nabla` command line (`src/cli`, in the binary).

pub mod data;
pub mod detection;
pub mod distributed;
pub mod engine;
pub mod error;
pub mod formats;
pub mod losses;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optimizers;
pub mod report;
pub mod training;

pub use engine::{no_grad, DType, Rng, Tensor, Var};
pub use error::{Error, Result};
pub use formats::{BackupAndRestore, CSVLogger};
pub use layers::{Activation, Initializer, LayerConfig, Regularizer};
pub use losses::{KerasLoss, Loss, Target};
/// The layers keep their path: `nabla::layers::Dense`, `nabla::layers::keras::*`.
pub use nn::layers;
pub use optimizers::Optimizer;
pub use report::TensorBoard;
pub use training::{
    ClassWeights, EarlyStopping, FitArgs, History, LambdaCallback, Model, ModelCheckpoint,
    Sequential,
};
