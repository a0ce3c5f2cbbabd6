//! Training: `Model` (sequential and functional), `fit`, callbacks, metrics, history and summary.

pub mod backup;
pub mod callbacks;
pub mod csv_logger;
pub mod fit;
pub mod functional;
pub mod gradcheck;
pub mod history;
pub mod lambda_callback;
pub mod metrics;
pub mod model;
pub mod precision;
pub mod prefetch;
pub mod profile;
pub mod schedules;
pub mod step;
pub mod summary;

pub use backup::BackupAndRestore;
pub use callbacks::{Callback, EarlyStopping, FitState, Logs, Mode, ModelCheckpoint};
pub use csv_logger::CSVLogger;
pub use fit::{FitArgs, TrainStep};
pub use functional::{Call, Input, NamedInput, Shared, SymbolicTensor};
pub use history::History;
pub use lambda_callback::LambdaCallback;
pub use model::{Evaluation, InputConfig, Model, ModelConfig, NodeConfig, Sequential};
pub use profile::{profile_training, LayerProfile, StepProfile};
pub use schedules::{LearningRateScheduler, ReduceLROnPlateau, Schedule};
pub use step::{minimize, Minimized, StepOutput, StepTimes};
