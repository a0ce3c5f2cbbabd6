//! Training: `Model` (a `nn::Graph` plus its compile state), `fit`, the training step,
//! callbacks, metrics, history, the profiler and gradient checks.

pub mod callbacks;
pub mod data_parallel;
pub mod fit;
pub mod gradcheck;
pub mod history;
pub mod lambda_callback;
pub mod metrics;
pub mod model;
pub mod prefetch;
pub mod profile;
pub mod sample_weights;
pub mod schedules;
pub mod source;
pub mod step;
pub mod transform;

pub use callbacks::{Callback, EarlyStopping, FitState, Logs, Mode, ModelCheckpoint};
pub use data_parallel::{BnStats, DataParallel};
pub use fit::{FitArgs, TrainStep};
pub use history::History;
pub use lambda_callback::LambdaCallback;
pub use model::{CompileConfig, Evaluation, Model, Sequential};
pub use profile::{profile_training, LayerProfile, StepProfile};
pub use sample_weights::ClassWeights;
pub use schedules::{LearningRateScheduler, ReduceLROnPlateau, Schedule};
pub use source::{Batch, BatchSource};
pub use step::{minimize, minimize_with, GradientExchange, Minimized, StepOutput, StepTimes};
pub use transform::{validation_split_index, BatchTransform};

// The graph's types keep their old paths (`nabla::training::ModelConfig`, `Input`, ...).
pub use crate::nn::functional::{Call, Input, NamedInput, Shared, SymbolicTensor};
pub use crate::nn::{InputConfig, ModelConfig, NodeConfig};
