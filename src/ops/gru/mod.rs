//! The GRU op: Keras' `GRU` layer (`reset_after=True`, the cuDNN-compatible form that
//! PyTorch's `GRU` also computes) over a whole sequence as ONE differentiable op (not a
//! graph node per step), with a hand-written backward through time.
//!
//! Dims: `N` batch, `T` steps, `F` input features, `U` units, `G = 3U`. Inputs: x
//! `[N, T, F]`, kernel `[F, G]`, recurrent kernel `[U, G]`, bias `[2, G]` (row 0 the
//! input bias, row 1 the recurrent bias; Keras' layouts and gate order z, r, h).
//! Output: every step's h `[N, T, U]` with `return_sequences`, else the last step's
//! `[N, U]`. Zero initial state.
//! Kernels (and their fast paths) in `cpu.rs`; `naive.rs` is the reference.

pub mod cpu;
pub mod naive;
#[cfg(test)]
mod tests;

pub use cpu::GruDims;

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};

/// Checks the shapes of a GRU call and returns its dims.
fn dims_of(x: &[usize], w: &[usize], rw: &[usize], b: Option<&[usize]>) -> Result<GruDims> {
    let &[n, t, f] = x else {
        return Err(Error::shape(format!(
            "gru: input must be [batch, steps, features], got {x:?}"
        )));
    };
    let &[u, g] = rw else {
        return Err(Error::shape(format!(
            "gru: recurrent_kernel must be [units, 3 * units], got {rw:?}"
        )));
    };
    if g != 3 * u || u == 0 {
        return Err(Error::shape(format!(
            "gru: recurrent_kernel must be [units, 3 * units] with units > 0, got {rw:?}"
        )));
    }
    if w != [f, g] {
        return Err(Error::shape(format!(
            "gru: kernel {w:?} does not fit input {x:?} and recurrent_kernel {rw:?} \
             (expected [{f}, {g}])"
        )));
    }
    if let Some(b) = b {
        if b != [2, g] {
            return Err(Error::shape(format!(
                "gru: bias {b:?} for {u} units (expected [2, {g}]: input and recurrent bias)"
            )));
        }
    }
    if t == 0 {
        return Err(Error::shape(format!(
            "gru: input {x:?} has no steps (at least one is needed)"
        )));
    }
    Ok(GruDims { n, t, f, u })
}

/// `GRU(x; kernel, recurrent_kernel, bias)`: `[N, T, U]` if `return_sequences`, else
/// `[N, U]`.
pub fn gru(
    x: &Var,
    kernel: &Var,
    recurrent_kernel: &Var,
    bias: Option<&Var>,
    return_sequences: bool,
) -> Result<Var> {
    let bshape = bias.map(|b| b.shape());
    let d = dims_of(
        &x.shape(),
        &kernel.shape(),
        &recurrent_kernel.shape(),
        bshape.as_deref(),
    )?;
    let (n, t, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let xv = x.value().contiguous_f32();
    let wv = kernel.value().contiguous_f32();
    let rwv = recurrent_kernel.value().contiguous_f32();
    let bv = bias.map(|b| b.value().contiguous_f32());
    let rows = d.rows();
    let mut hseq = vec![0.0f32; rows * u];
    let mut gates = vec![0.0f32; rows * g];
    let mut hzh = vec![0.0f32; rows * u];
    let mut hprev = vec![0.0f32; rows * u];
    let mut scratch = vec![0.0f32; d.forward_scratch()];
    cpu::gru_forward(
        &mut hseq,
        &mut gates,
        &mut hzh,
        &mut hprev,
        &mut scratch,
        xv.data(),
        wv.data(),
        rwv.data(),
        bv.as_ref().map(|b| b.data()),
        &d,
    );
    let out = if return_sequences {
        Tensor::from_vec(hseq, &[n, t, u])
    } else {
        // The last step of each sample.
        let last: Vec<f32> = (0..n)
            .flat_map(|s| {
                let r = s * t + t - 1;
                hseq[r * u..(r + 1) * u].to_vec()
            })
            .collect();
        Tensor::from_vec(last, &[n, u])
    };
    let has_bias = bias.is_some();
    let mut parents = vec![x, kernel, recurrent_kernel];
    parents.extend(bias);
    Ok(Var::from_op(out, "gru", &parents, move |dy| {
        let dy = dy.contiguous_f32();
        let saved = cpu::GruSaved {
            gates: &gates,
            hzh: &hzh,
            hprev: &hprev,
        };
        let mut dx = vec![0.0f32; rows * f];
        let mut dw = vec![0.0f32; f * g];
        let mut drw = vec![0.0f32; u * g];
        let mut db = vec![0.0f32; if has_bias { 2 * g } else { 0 }];
        let mut dzx = vec![0.0f32; rows * g];
        let mut dzh = vec![0.0f32; rows * g];
        let mut scratch = vec![0.0f32; d.backward_scratch()];
        cpu::gru_backward(
            &mut dx,
            &mut dw,
            &mut drw,
            has_bias.then_some(&mut db[..]),
            &mut dzx,
            &mut dzh,
            &mut scratch,
            dy.data(),
            return_sequences,
            &saved,
            xv.data(),
            wv.data(),
            rwv.data(),
            &d,
        );
        let mut grads = vec![
            Some(Tensor::from_vec(dx, &[n, t, f])),
            Some(Tensor::from_vec(dw, &[f, g])),
            Some(Tensor::from_vec(drw, &[u, g])),
        ];
        if has_bias {
            grads.push(Some(Tensor::from_vec(db, &[2, g])));
        }
        grads
    }))
}
