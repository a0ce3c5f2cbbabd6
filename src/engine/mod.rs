//! The engine: tensors, reverse-mode autodiff, random numbers and the gradient checker.
//! Everything above this folder (ops, layers, training) is built from these pieces.

pub mod autograd;
pub mod gradcheck;
pub mod kinks;
pub mod rng;
pub mod tensor;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard, Var};
pub use rng::Rng;
pub use tensor::{DType, Device, Tensor};
