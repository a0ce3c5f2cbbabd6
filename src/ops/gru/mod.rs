//! The GRU op: Keras' `GRU` layer (`reset_after=True`, the cuDNN-compatible form that
//! PyTorch's `GRU` also computes) over a whole sequence as ONE differentiable op (not a
//! graph node per step), with a hand-written backward through time.
//!
//! Dims: `N` batch, `T` steps, `F` input features, `U` units, `G = 3U`. Inputs: x
//! `[N, T, F]`, kernel `[F, G]`, recurrent kernel `[U, G]`, bias `[2, G]` (row 0 the
//! input bias, row 1 the recurrent bias; Keras' layouts and gate order z, r, h).
//! Output: every step's h `[N, T, U]` with `return_sequences`, else the last step's
//! `[N, U]`. An optional mask `[N, T]` skips padded steps with
//! Keras' semantics (see `gru`); the op runs on the real steps only, packed
//! (`ops::rnn_pack`), with the batch split between threads;
//! `ops::rnn_driver` runs it (and the other recurrent cells).
//! Kernels (and their fast paths) in `cpu.rs`; `naive.rs` is the reference.

pub mod cpu;
pub mod naive;

pub use cpu::GruDims;

use crate::engine::{Tensor, Var};
use crate::error::Result;
use crate::ops::rnn_driver::{rnn_call, Cell, RnnArgs};

/// `GRU(x; kernel, recurrent_kernel, bias)` with every option of `RnnArgs` (initial
/// states, recurrent dropout, final states): `[output]`, or with `return_state`
/// `[output, h_T]`. See `rnn_driver::rnn_call` for the semantics.
pub fn gru_call(
    x: &Var,
    kernel: &Var,
    recurrent_kernel: &Var,
    bias: Option<&Var>,
    args: &RnnArgs,
) -> Result<Vec<Var>> {
    rnn_call(Cell::Gru, x, kernel, recurrent_kernel, bias, args)
}

/// `GRU(x; kernel, recurrent_kernel, bias)`: `[N, T, U]` if `return_sequences`, else
/// `[N, U]`. `mask` `[N, T]` (nonzero = real step) gives Keras' masking: a masked step
/// carries h unchanged and shows the carried h (zeros before a sample's first
/// real step); the last output is h after the last real step (zeros for a sample
/// with none). Padded steps cost nothing (the op packs them away).
pub fn gru(
    x: &Var,
    kernel: &Var,
    recurrent_kernel: &Var,
    bias: Option<&Var>,
    return_sequences: bool,
    mask: Option<&Tensor>,
) -> Result<Var> {
    gru_masked(
        x,
        kernel,
        recurrent_kernel,
        bias,
        return_sequences,
        mask,
        false,
    )
}

/// `gru` with Keras' `zero_output_for_mask`: with `return_sequences`, masked steps
/// output zeros instead of the carried h (what Keras' `Bidirectional` forces on its
/// layers when it returns sequences). The last output (`return_sequences` off) is h
/// after the last real step either way.
pub fn gru_masked(
    x: &Var,
    kernel: &Var,
    recurrent_kernel: &Var,
    bias: Option<&Var>,
    return_sequences: bool,
    mask: Option<&Tensor>,
    zero_output_for_mask: bool,
) -> Result<Var> {
    let args = RnnArgs {
        return_sequences,
        mask,
        zero_output_for_mask,
        ..RnnArgs::default()
    };
    let mut out = gru_call(x, kernel, recurrent_kernel, bias, &args)?;
    Ok(out.remove(0))
}
