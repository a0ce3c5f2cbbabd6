//! Half-precision inference, as in "Deep Learning from Scratch" (chapter 8 casts a
//! trained DeepConvNet to float16 and compares accuracy): `Model::set_dtype`.
//!
//! ```no_run
//! # use nabla::{DType, Model, Tensor};
//! # fn demo(model: &mut Model, x: &Tensor, y: &Tensor) -> nabla::error::Result<()> {
//! let full = model.evaluate(x, y, 100)?.accuracy();
//! model.set_dtype(DType::F16)?; // weights now stored in 2 bytes each
//! let half = model.evaluate(x, y, 100)?.accuracy();
//! # Ok(()) }
//! ```
//!
//! What changes in a model set to f16 or bf16 (PyTorch's `model.half()`, Keras' dtype
//! policy):
//! - every weight and buffer is stored in that type (real 2-byte storage, rounded to
//!   nearest even);
//! - the model's inputs and each layer's output are rounded to that type, so what flows
//!   between layers is half precision; an input an `Embedding` reads stays as it is
//!   (token ids are indices, and bf16 holds whole numbers exactly only up to 256);
//! - inside a layer, each op converts its inputs to f32 at its entry
//!   (`Tensor::contiguous_f32`) and accumulates in f32: the kernels stay f32.
//!
//! It is for inference: `fit` on a model that is not f32 is an error (the optimizers
//! update f32 weights). `set_dtype(DType::F32)` widens the weights back (exactly: the
//! rounding already happened). A nested model rounds at its own boundary only unless it
//! is set too.

use super::graph::Graph;
use crate::engine::{DType, Var};
use crate::error::{Error, Result};

impl Graph {
    /// Stores the weights in `dtype` and rounds activations to it between layers (f32,
    /// f16 or bf16). See the module docs.
    pub fn set_dtype(&mut self, dtype: DType) -> Result<()> {
        if !dtype.is_float() {
            return Err(Error::invalid(format!(
                "model '{}': set_dtype takes f32, f16 or bf16, not {dtype}",
                self.name
            )));
        }
        for p in self.params() {
            let v = p.var.value().to_dtype(dtype);
            p.var.set_value(v);
        }
        self.dtype = dtype;
        Ok(())
    }

    /// The element type of the weights and of the activations between layers.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Bytes the weights and buffers take when stored in `dtype`.
    pub fn size_in_bytes(&self, dtype: DType) -> usize {
        let (trainable, fixed) = self.count_params();
        (trainable + fixed + self.count_buffers()) * dtype.size_in_bytes()
    }
}

/// A layer's output (or a model input) rounded to the model's element type.
pub(super) fn round_activation(v: Var, dtype: DType) -> Var {
    if dtype == DType::F32 || v.value_ref().dtype() == dtype {
        return v;
    }
    Var::constant(v.value().to_dtype(dtype))
}

pub(super) fn check_can_train(model: &Graph, training: bool) -> Result<()> {
    if training && model.dtype != DType::F32 {
        return Err(Error::invalid(format!(
            "model '{}' is set to {}: half precision is for inference; call \
             set_dtype(DType::F32) before training",
            model.name, model.dtype
        )));
    }
    Ok(())
}
