//! The engine: tensors (typed storage, layouts, element-type conversion), reverse-mode
//! autodiff, random numbers and the gradient checker. Everything above this folder (ops,
//! layers, training) is built from these pieces.

pub mod autograd;
pub mod convert;
pub mod gradcheck;
pub mod kinks;
pub mod layout;
pub mod rng;
pub mod storage;
pub mod tensor;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard, Var};
pub use layout::Layout;
pub use rng::{Rng, RngState, Shard};
pub use storage::{DType, Element, Storage};
pub use tensor::{Device, Tensor};
