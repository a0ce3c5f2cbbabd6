//! Training: `Model` (sequential and functional), `fit`, callbacks, metrics, history and summary.

pub mod callbacks;
pub mod fit;
pub mod functional;
pub mod gradcheck;
pub mod history;
pub mod metrics;
pub mod model;
pub mod precision;
pub mod prefetch;
pub mod profile;
pub mod schedules;
pub mod step;
pub mod summary;

pub use callbacks::{Callback, EarlyStopping, Logs, Mode, ModelCheckpoint};
pub use fit::{FitArgs, TrainStep};
pub use functional::{Call, Input, NamedInput, Shared, SymbolicTensor};
pub use history::History;
pub use model::{Evaluation, InputConfig, Model, ModelConfig, NodeConfig, Sequential};
pub use profile::{profile_training, LayerProfile, StepProfile};
pub use schedules::{LearningRateScheduler, ReduceLROnPlateau, Schedule};
pub use step::{minimize, Minimized, StepOutput, StepTimes};
