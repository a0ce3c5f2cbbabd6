//! The one driver of the recurrent ops (LSTM, GRU, SimpleRNN): everything but the cell
//! kernels, written once. It checks the shapes, packs the batch's real steps into groups
//! (`ops::rnn_pack`, one group per thread), runs the cell's forward kernel on each
//! group, scatters the outputs and final states back to batch order, and in the
//! backward gathers their gradients, runs the cell's backward kernel per group and sums
//! the weight gradients in group order (reproducible for a given thread count).
//!
//! A cell is a `Cell` value; its kernels are the plain functions of its `cpu.rs`,
//! picked by a `match` here (the cells differ in gate count, bias shape, state count
//! and kernels only).
//!
//! Options (`RnnArgs`, Keras 3 semantics): a mask `[N, T]`, `zero_output_for_mask`,
//! initial states, recurrent dropout masks and the final states as extra outputs.
//! With final states the op's value is the outputs flattened and concatenated
//! (`[output, h_T, (c_T)]`), which `ops::index::split` views as separate Vars, so the
//! single-output autograd carries gradients from all of them.

pub mod naive;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::gru::cpu::{self as gru_cpu, GruSaved};
use crate::ops::index::split;
use crate::ops::lstm::cpu::{self as lstm_cpu, LstmSaved};
use crate::ops::parallel::par_map_ranges;
use crate::ops::rnn_pack::{self, rnn_threads, Group, GroupExtras, GroupGrads, Plan};
use crate::ops::rnn_recurrent::{kernel_blocks, RecDrop};
use crate::ops::shape::reshape;
use crate::ops::simple_rnn::cpu::{self as srnn_cpu, SimpleRnnSaved};

/// The recurrent cells the driver runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Keras' `LSTM` (gates i, f, c, o; bias `[4U]`; states h, c).
    Lstm,
    /// Keras' `GRU` with `reset_after=True` (gates z, r, h; bias `[2, 3U]`; state h).
    Gru,
    /// Keras' `SimpleRNN` with tanh (bias `[U]`; state h).
    SimpleRnn,
}

impl Cell {
    /// The op's name (in errors and the graph).
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::SimpleRnn => "simple_rnn",
        }
    }
    /// Gate blocks of `U` columns in the kernels.
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
            Cell::SimpleRnn => 1,
        }
    }
    /// Recurrent states (LSTM: h and c).
    pub fn states(self) -> usize {
        match self {
            Cell::Lstm => 2,
            Cell::Gru | Cell::SimpleRnn => 1,
        }
    }
    /// The bias' shape for `g` gate columns.
    pub fn bias_shape(self, g: usize) -> Vec<usize> {
        match self {
            Cell::Gru => vec![2, g],
            Cell::Lstm | Cell::SimpleRnn => vec![g],
        }
    }
}

/// Options of one recurrent op call.
#[derive(Clone, Copy, Default)]
pub struct RnnArgs<'a> {
    pub return_sequences: bool,
    /// `[N, T]`, nonzero = real step.
    pub mask: Option<&'a Tensor>,
    pub zero_output_for_mask: bool,
    /// Empty = zeros. LSTM: `[h0, c0]`; GRU and SimpleRNN: `[h0]`; each `[N, U]`.
    /// Differentiable.
    pub initial_state: &'a [Var],
    /// Keras' recurrent_dropout masks, already scaled by `1 / (1 - rate)`:
    /// `[N, gates * U]` (gate blocks in the kernel's column order; LSTM 4, GRU 3,
    /// SimpleRNN 1).
    pub recurrent_dropout: Option<&'a Tensor>,
    /// Also return the final states.
    pub return_state: bool,
}

/// The sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Dims {
    n: usize,
    t: usize,
    f: usize,
    u: usize,
    g: usize,
}

/// Checks the shapes of a call and returns its dims.
fn dims_of(
    cell: Cell,
    x: &[usize],
    w: &[usize],
    rw: &[usize],
    b: Option<&[usize]>,
) -> Result<Dims> {
    let op = cell.name();
    let gates = cell.gates();
    let want_rw = if gates == 1 {
        "[units, units]".to_string()
    } else {
        format!("[units, {gates} * units]")
    };
    let &[n, t, f] = x else {
        return Err(Error::shape(format!(
            "{op}: input must be [batch, steps, features], got {x:?}"
        )));
    };
    let &[u, g] = rw else {
        return Err(Error::shape(format!(
            "{op}: recurrent_kernel must be {want_rw}, got {rw:?}"
        )));
    };
    if g != gates * u || u == 0 {
        return Err(Error::shape(format!(
            "{op}: recurrent_kernel must be {want_rw} with units > 0, got {rw:?}"
        )));
    }
    if w != [f, g] {
        return Err(Error::shape(format!(
            "{op}: kernel {w:?} does not fit input {x:?} and recurrent_kernel {rw:?} \
             (expected [{f}, {g}])"
        )));
    }
    if let Some(b) = b {
        let want = cell.bias_shape(g);
        if b != want.as_slice() {
            let what = if cell == Cell::Gru {
                ": input and recurrent bias"
            } else {
                ""
            };
            return Err(Error::shape(format!(
                "{op}: bias {b:?} for {u} units (expected {want:?}{what})"
            )));
        }
    }
    if t == 0 {
        return Err(Error::shape(format!(
            "{op}: input {x:?} has no steps (at least one is needed)"
        )));
    }
    Ok(Dims { n, t, f, u, g })
}

/// Checks the initial states and recurrent dropout masks of a call.
fn check_extras(cell: Cell, d: &Dims, args: &RnnArgs) -> Result<()> {
    let op = cell.name();
    let (n, u) = (d.n, d.u);
    let init = args.initial_state;
    if !init.is_empty() {
        let want = if cell == Cell::Lstm {
            "[h0, c0]"
        } else {
            "[h0]"
        };
        if init.len() != cell.states() {
            return Err(Error::shape(format!(
                "{op}: initial_state has {} states, expected {} ({want}, each [{n}, {u}])",
                init.len(),
                cell.states()
            )));
        }
        for (i, s) in init.iter().enumerate() {
            if s.shape() != [n, u] {
                return Err(Error::shape(format!(
                    "{op}: initial_state[{i}] is {:?}, expected [{n}, {u}] (batch, units)",
                    s.shape()
                )));
            }
        }
    }
    if let Some(m) = args.recurrent_dropout {
        if m.shape() != [n, d.g] {
            return Err(Error::shape(format!(
                "{op}: recurrent_dropout masks {:?}, expected [{n}, {}] ({} per-gate \
                 masks of [{n}, {u}] side by side)",
                m.shape(),
                d.g,
                cell.gates()
            )));
        }
    }
    Ok(())
}

/// What a cell's forward keeps for its backward, per group.
enum Saved {
    Lstm(LstmSaved),
    Gru(GruSaved),
    SimpleRnn(SimpleRnnSaved),
}

impl Saved {
    /// Every packed row's h `[R, U]`.
    fn h(&self) -> &[f32] {
        match self {
            Saved::Lstm(s) => &s.h,
            Saved::Gru(s) => &s.h,
            Saved::SimpleRnn(s) => &s.h,
        }
    }
    /// Every packed row's c `[R, U]` (LSTM only).
    fn c(&self) -> Option<&[f32]> {
        match self {
            Saved::Lstm(s) => Some(&s.c),
            _ => None,
        }
    }
}

/// The weights, as contiguous f32 (shared by the forward and the backward).
struct Weights {
    w: Tensor,
    rw: Tensor,
    b: Option<Tensor>,
    /// The recurrent kernel's gate blocks (`rnn_recurrent::kernel_blocks`), only with
    /// recurrent dropout.
    blocks: Vec<f32>,
}

/// One group's initial states and dropout masks, in its own row order.
struct GroupIn {
    h0: Option<Vec<f32>>,
    c0: Option<Vec<f32>>,
    masks: Option<Vec<f32>>,
}

impl GroupIn {
    fn new(grp: &Group, init: &[Tensor], drop: Option<&Tensor>, u: usize, g: usize) -> Self {
        // Rows of `[N, width]` in the group's sample order.
        let rows = |src: &Tensor, width: usize| {
            let d = src.data();
            let mut out = Vec::with_capacity(grp.samples.len() * width);
            for &s in &grp.samples {
                out.extend_from_slice(&d[s * width..(s + 1) * width]);
            }
            out
        };
        let masks = drop.map(|m| {
            let d = m.data();
            let mut out = vec![0.0f32; grp.rows() * g];
            for (r, s, _) in grp.rows_iter() {
                out[r * g..(r + 1) * g].copy_from_slice(&d[s * g..(s + 1) * g]);
            }
            out
        });
        GroupIn {
            h0: init.first().map(|t| rows(t, u)),
            c0: init.get(1).map(|t| rows(t, u)),
            masks,
        }
    }
    fn extras<'a>(&'a self, blocks: &'a [f32]) -> GroupExtras<'a> {
        GroupExtras {
            h0: self.h0.as_deref(),
            c0: self.c0.as_deref(),
            drop: self.masks.as_deref().map(|masks| RecDrop { masks, blocks }),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_group(
    cell: Cell,
    grp: &Group,
    x: Vec<f32>,
    wt: &Weights,
    d: &Dims,
    parallel: bool,
    ex: &GroupExtras,
) -> Saved {
    let (w, rw, b) = (wt.w.data(), wt.rw.data(), wt.b.as_ref().map(|b| b.data()));
    let (f, u) = (d.f, d.u);
    match cell {
        Cell::Lstm => Saved::Lstm(lstm_cpu::lstm_forward(grp, x, w, rw, b, f, u, parallel, ex)),
        Cell::Gru => Saved::Gru(gru_cpu::gru_forward(grp, x, w, rw, b, f, u, parallel, ex)),
        Cell::SimpleRnn => Saved::SimpleRnn(srnn_cpu::simple_rnn_forward(
            grp, x, w, rw, b, f, u, parallel, ex,
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn backward_group(
    grp: &Group,
    saved: &Saved,
    dh: &[f32],
    dc: Option<&[f32]>,
    wt: &Weights,
    d: &Dims,
    parallel: bool,
    ex: &GroupExtras,
) -> GroupGrads {
    let (w, rw, hb) = (wt.w.data(), wt.rw.data(), wt.b.is_some());
    let (f, u) = (d.f, d.u);
    match saved {
        Saved::Lstm(s) => lstm_cpu::lstm_backward(grp, s, dh, dc, w, rw, hb, f, u, parallel, ex),
        Saved::Gru(s) => gru_cpu::gru_backward(grp, s, dh, w, rw, hb, f, u, parallel, ex),
        Saved::SimpleRnn(s) => {
            srnn_cpu::simple_rnn_backward(grp, s, dh, w, rw, hb, f, u, parallel, ex)
        }
    }
}

/// The packed row of each group sample's last real step.
fn last_rows(grp: &Group) -> impl Iterator<Item = (usize, usize)> + '_ {
    grp.samples
        .iter()
        .zip(&grp.steps)
        .enumerate()
        .map(|(p, (&s, ts))| (s, grp.offsets[ts.len() - 1] + p))
}

/// Runs `cell` over `x [N, T, F]` with `kernel [F, G]`, `recurrent_kernel [U, G]` and
/// the cell's bias: `[output]`, or with `args.return_state` `[output, h_T]` (`[output,
/// h_T, c_T]` for the LSTM), each state `[N, U]`. Keras 3's semantics: a masked step
/// carries the states unchanged and shows the previous output (zeros before a sample's
/// first real step), or zeros with `zero_output_for_mask`; the last output (without
/// `return_sequences`) is h after the last real step (zeros for a sample with none); the
/// final states are the states after the last real step (the initial states for a sample
/// with none). Padded steps cost nothing (the op packs them away).
pub fn rnn_call(
    cell: Cell,
    x: &Var,
    kernel: &Var,
    recurrent_kernel: &Var,
    bias: Option<&Var>,
    args: &RnnArgs,
) -> Result<Vec<Var>> {
    let op = cell.name();
    let bshape = bias.map(|b| b.shape());
    let d = dims_of(
        cell,
        &x.shape(),
        &kernel.shape(),
        &recurrent_kernel.shape(),
        bshape.as_deref(),
    )?;
    check_extras(cell, &d, args)?;
    let (n, t, f, u, g) = (d.n, d.t, d.f, d.u, d.g);
    let maskv = match args.mask {
        Some(m) => {
            rnn_pack::check_mask(op, m.shape(), n, t)?;
            Some(m.to_f32_vec())
        }
        None => None,
    };
    let (seq, zero) = (args.return_sequences, args.zero_output_for_mask);
    let return_state = args.return_state;
    let xv = x.value().contiguous_f32();
    let rwv = recurrent_kernel.value().contiguous_f32();
    let blocks = if args.recurrent_dropout.is_some() {
        kernel_blocks(rwv.data(), u, cell.gates())
    } else {
        vec![]
    };
    let wt = Arc::new(Weights {
        w: kernel.value().contiguous_f32(),
        rw: rwv,
        b: bias.map(|b| b.value().contiguous_f32()),
        blocks,
    });
    let init: Vec<Tensor> = args
        .initial_state
        .iter()
        .map(|s| s.value().contiguous_f32())
        .collect();
    let drop = args.recurrent_dropout.map(|m| m.contiguous_f32());
    let parts = rnn_threads(n, t, u);
    let plan = Arc::new(Plan::new(maskv.as_deref(), n, t, parts));
    let ins: Arc<Vec<GroupIn>> = Arc::new(
        plan.groups
            .iter()
            .map(|grp| GroupIn::new(grp, &init, drop.as_ref(), u, g))
            .collect(),
    );
    // One group per thread, each with single-threaded GEMMs; one group uses them all.
    let parallel = plan.groups.len() == 1;
    let saved: Vec<Saved> = par_map_ranges(plan.groups.len(), 1, |r| {
        r.map(|i| {
            let grp = &plan.groups[i];
            let xg = rnn_pack::gather(xv.data(), f, t, grp);
            let ex = ins[i].extras(&wt.blocks);
            forward_group(cell, grp, xg, &wt, &d, parallel, &ex)
        })
        .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let out_len = if seq { n * t * u } else { n * u };
    let states = if return_state { cell.states() } else { 0 };
    // The value: the output, then the final states (each [N, U]) when asked for.
    let mut value = vec![0.0f32; out_len + states * n * u];
    let (out, finals) = value.split_at_mut(out_len);
    for (grp, s) in plan.groups.iter().zip(&saved) {
        rnn_pack::scatter_output(out, s.h(), u, t, grp, seq, zero);
    }
    if return_state {
        // Samples with no real step keep their initial states (zeros without).
        for (k, st) in init.iter().enumerate() {
            finals[k * n * u..(k + 1) * n * u].copy_from_slice(st.data());
        }
        for (grp, s) in plan.groups.iter().zip(&saved) {
            let srcs = [Some(s.h()), s.c()];
            for (k, src) in srcs.iter().take(states).enumerate() {
                let src = src.expect("an LSTM saves c");
                for (smp, r) in last_rows(grp) {
                    let to = k * n * u + smp * u;
                    finals[to..to + u].copy_from_slice(&src[r * u..(r + 1) * u]);
                }
            }
        }
    }
    let out_shape = if seq { vec![n, t, u] } else { vec![n, u] };
    let value = if return_state {
        Tensor::from_vec(value, &[out_len + states * n * u])
    } else {
        Tensor::from_vec(value, &out_shape)
    };
    let has_bias = bias.is_some();
    let has_init = !init.is_empty();
    let mut parents = vec![x, kernel, recurrent_kernel];
    parents.extend(bias);
    parents.extend(args.initial_state.iter());
    let bshape = cell.bias_shape(g);
    let y = Var::from_op(value, op, &parents, move |dy| {
        let dy = dy.contiguous_f32();
        let (dy_out, dy_fin) = dy.data().split_at(out_len);
        let per_group: Vec<GroupGrads> = par_map_ranges(plan.groups.len(), 1, |r| {
            r.map(|i| {
                let grp = &plan.groups[i];
                let mut dh = rnn_pack::gather_output_grad(dy_out, u, t, grp, seq, zero);
                // The final states' gradients enter at each sample's last real row.
                let mut dc = None;
                if return_state {
                    let mut dcv = vec![0.0f32; if states > 1 { grp.rows() * u } else { 0 }];
                    for (smp, r) in last_rows(grp) {
                        let from = smp * u;
                        for (a, &b) in dh[r * u..(r + 1) * u]
                            .iter_mut()
                            .zip(&dy_fin[from..from + u])
                        {
                            *a += b;
                        }
                        if states > 1 {
                            let from = n * u + smp * u;
                            dcv[r * u..(r + 1) * u].copy_from_slice(&dy_fin[from..from + u]);
                        }
                    }
                    if states > 1 {
                        dc = Some(dcv);
                    }
                }
                let ex = ins[i].extras(&wt.blocks);
                backward_group(grp, &saved[i], &dh, dc.as_deref(), &wt, &d, parallel, &ex)
            })
            .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
        // Summed in group order: reproducible for a given thread count.
        let mut dx = vec![0.0f32; n * t * f];
        let mut dw = vec![0.0f32; f * g];
        let mut drw = vec![0.0f32; u * g];
        let mut db = vec![0.0f32; if has_bias { bshape.iter().product() } else { 0 }];
        let nstates = if has_init { cell.states() } else { 0 };
        // dL/d(initial states): a sample with no real step passes its final states'
        // gradients straight through.
        let mut dinit = vec![0.0f32; nstates * n * u];
        if has_init && return_state {
            dinit.copy_from_slice(&dy_fin[..nstates * n * u]);
        }
        for (grp, gg) in plan.groups.iter().zip(&per_group) {
            rnn_pack::scatter(&mut dx, &gg.dx, f, t, grp);
            for (acc, part) in [(&mut dw, &gg.dw), (&mut drw, &gg.drw), (&mut db, &gg.db)] {
                for (a, &b) in acc.iter_mut().zip(part) {
                    *a += b;
                }
            }
            for (k, part) in [&gg.dh0, &gg.dc0].iter().take(nstates).enumerate() {
                for (p, &smp) in grp.samples.iter().enumerate() {
                    // A sample with real steps gets its gradient from the kernel only.
                    let to = k * n * u + smp * u;
                    dinit[to..to + u].copy_from_slice(&part[p * u..(p + 1) * u]);
                }
            }
        }
        let mut grads = vec![
            Some(Tensor::from_vec(dx, &[n, t, f])),
            Some(Tensor::from_vec(dw, &[f, g])),
            Some(Tensor::from_vec(drw, &[u, g])),
        ];
        if has_bias {
            grads.push(Some(Tensor::from_vec(db, &bshape)));
        }
        for k in 0..nstates {
            grads.push(Some(Tensor::from_vec(
                dinit[k * n * u..(k + 1) * n * u].to_vec(),
                &[n, u],
            )));
        }
        grads
    });
    if !return_state {
        return Ok(vec![y]);
    }
    let mut sizes = vec![out_len];
    sizes.extend(std::iter::repeat_n(n * u, states));
    let parts = split(&y, 0, &sizes)?;
    let state_shape = [n, u];
    let mut outs = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        outs.push(reshape(p, if i == 0 { &out_shape } else { &state_shape })?);
    }
    Ok(outs)
}
