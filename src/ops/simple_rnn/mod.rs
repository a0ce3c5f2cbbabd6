//! The SimpleRNN op: Keras' `SimpleRNN` layer (activation tanh) over a whole sequence
//! as ONE differentiable op (not a graph node per step), with a hand-written backward
//! through time.
//!
//! Dims: `N` batch, `T` steps, `F` input features, `U` units. Inputs: x `[N, T, F]`,
//! kernel `[F, U]`, recurrent kernel `[U, U]`, bias `[U]` (Keras' layouts). Output:
//! every step's h `[N, T, U]` with `return_sequences`, else the last step's `[N, U]`.
//! Zero initial state. An optional mask `[N, T]` skips padded steps with Keras'
//! semantics (see `simple_rnn`); the op runs on the real steps only, packed
//! (`ops::rnn_pack`), with the batch split between threads.
//! Kernels (and their fast paths) in `cpu.rs`; `naive.rs` is the reference.

pub mod cpu;
pub mod naive;
#[cfg(test)]
mod tests;

pub use cpu::SimpleRnnDims;

use std::sync::Arc;

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::parallel::par_map_ranges;
use crate::ops::rnn_pack::{self, rnn_threads, Plan};

/// Checks the shapes of a SimpleRNN call and returns its dims.
fn dims_of(x: &[usize], w: &[usize], rw: &[usize], b: Option<&[usize]>) -> Result<SimpleRnnDims> {
    let &[n, t, f] = x else {
        return Err(Error::shape(format!(
            "simple_rnn: input must be [batch, steps, features], got {x:?}"
        )));
    };
    let &[u, u2] = rw else {
        return Err(Error::shape(format!(
            "simple_rnn: recurrent_kernel must be [units, units], got {rw:?}"
        )));
    };
    if u2 != u || u == 0 {
        return Err(Error::shape(format!(
            "simple_rnn: recurrent_kernel must be [units, units] with units > 0, got {rw:?}"
        )));
    }
    if w != [f, u] {
        return Err(Error::shape(format!(
            "simple_rnn: kernel {w:?} does not fit input {x:?} and recurrent_kernel {rw:?} \
             (expected [{f}, {u}])"
        )));
    }
    if let Some(b) = b {
        if b != [u] {
            return Err(Error::shape(format!(
                "simple_rnn: bias {b:?} for {u} units (expected [{u}])"
            )));
        }
    }
    if t == 0 {
        return Err(Error::shape(format!(
            "simple_rnn: input {x:?} has no steps (at least one is needed)"
        )));
    }
    Ok(SimpleRnnDims { n, t, f, u })
}

/// `SimpleRNN(x; kernel, recurrent_kernel, bias)`: `[N, T, U]` if `return_sequences`,
/// else `[N, U]`. `mask` `[N, T]` (nonzero = real step) gives Keras' masking: a masked
/// step carries h unchanged and shows the carried h (zeros before a sample's first
/// real step); the last output is h after the last real step (zeros for a sample
/// with none). Padded steps cost nothing (the op packs them away).
pub fn simple_rnn(
    x: &Var,
    kernel: &Var,
    recurrent_kernel: &Var,
    bias: Option<&Var>,
    return_sequences: bool,
    mask: Option<&Tensor>,
) -> Result<Var> {
    simple_rnn_masked(
        x,
        kernel,
        recurrent_kernel,
        bias,
        return_sequences,
        mask,
        false,
    )
}

/// `simple_rnn` with Keras' `zero_output_for_mask`: with `return_sequences`, masked
/// steps output zeros instead of the carried h (what Keras' `Bidirectional` forces on
/// its layers when it returns sequences). The last output (`return_sequences` off) is
/// h after the last real step either way.
pub fn simple_rnn_masked(
    x: &Var,
    kernel: &Var,
    recurrent_kernel: &Var,
    bias: Option<&Var>,
    return_sequences: bool,
    mask: Option<&Tensor>,
    zero_output_for_mask: bool,
) -> Result<Var> {
    let bshape = bias.map(|b| b.shape());
    let d = dims_of(
        &x.shape(),
        &kernel.shape(),
        &recurrent_kernel.shape(),
        bshape.as_deref(),
    )?;
    let (n, t, f, u) = (d.n, d.t, d.f, d.u);
    let maskv = match mask {
        Some(m) => {
            rnn_pack::check_mask("simple_rnn", m.shape(), n, t)?;
            Some(m.to_f32_vec())
        }
        None => None,
    };
    let xv = x.value().contiguous_f32();
    let wv = kernel.value().contiguous_f32();
    let rwv = recurrent_kernel.value().contiguous_f32();
    let bv = bias.map(|b| b.value().contiguous_f32());
    let parts = rnn_threads(n, t, u);
    let plan = Arc::new(Plan::new(maskv.as_deref(), n, t, parts));
    // One group per thread, each with single-threaded GEMMs; one group uses them all.
    let parallel = plan.groups.len() == 1;
    let saved: Vec<cpu::SimpleRnnSaved> = par_map_ranges(plan.groups.len(), 1, |r| {
        r.map(|i| {
            let grp = &plan.groups[i];
            let xg = rnn_pack::gather(xv.data(), f, t, grp);
            let b = bv.as_ref().map(|b| b.data());
            cpu::simple_rnn_forward(grp, xg, wv.data(), rwv.data(), b, f, u, parallel)
        })
        .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let out_len = if return_sequences { n * t * u } else { n * u };
    let mut out = vec![0.0f32; out_len];
    for (grp, s) in plan.groups.iter().zip(&saved) {
        rnn_pack::scatter_output(
            &mut out,
            &s.h,
            u,
            t,
            grp,
            return_sequences,
            zero_output_for_mask,
        );
    }
    let out = if return_sequences {
        Tensor::from_vec(out, &[n, t, u])
    } else {
        Tensor::from_vec(out, &[n, u])
    };
    let has_bias = bias.is_some();
    let mut parents = vec![x, kernel, recurrent_kernel];
    parents.extend(bias);
    Ok(Var::from_op(out, "simple_rnn", &parents, move |dy| {
        let dy = dy.contiguous_f32();
        let per_group: Vec<_> = par_map_ranges(plan.groups.len(), 1, |r| {
            r.map(|i| {
                let grp = &plan.groups[i];
                let dh = rnn_pack::gather_output_grad(
                    dy.data(),
                    u,
                    t,
                    grp,
                    return_sequences,
                    zero_output_for_mask,
                );
                cpu::simple_rnn_backward(
                    grp,
                    &saved[i],
                    &dh,
                    wv.data(),
                    rwv.data(),
                    has_bias,
                    f,
                    u,
                    parallel,
                )
            })
            .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
        // Summed in group order: reproducible for a given thread count.
        let mut dx = vec![0.0f32; n * t * f];
        let mut dw = vec![0.0f32; f * u];
        let mut drw = vec![0.0f32; u * u];
        let mut db = vec![0.0f32; if has_bias { u } else { 0 }];
        for (grp, (gx, gw, grw, gb)) in plan.groups.iter().zip(&per_group) {
            rnn_pack::scatter(&mut dx, gx, f, t, grp);
            for (acc, part) in [(&mut dw, gw), (&mut drw, grw), (&mut db, gb)] {
                for (a, &b) in acc.iter_mut().zip(part) {
                    *a += b;
                }
            }
        }
        let mut grads = vec![
            Some(Tensor::from_vec(dx, &[n, t, f])),
            Some(Tensor::from_vec(dw, &[f, u])),
            Some(Tensor::from_vec(drw, &[u, u])),
        ];
        if has_bias {
            grads.push(Some(Tensor::from_vec(db, &[u])));
        }
        grads
    }))
}
