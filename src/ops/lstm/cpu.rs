//! LSTM kernels (Keras' `LSTM`: gates i, f, c, o in that column order; tanh for the
//! cell candidate and the output, sigmoid for the three gates), forward and backward
//! through time over one packed group of sequences (`ops::rnn_pack`: the real steps
//! only, time-major, the active rows of each step contiguous and longest sample first).
//!
//! Dims: `R` packed rows (real steps of the group), `F` input features, `U` units,
//! `G = 4U` gate columns; kernel `[F, G]`, recurrent kernel `[U, G]`, bias `[G]`.
//! Saved by the forward for the backward (`LstmSaved`, all `[R, ...]` in packed row
//! order): the input rows `x [R, F]`, `gates [R, G]` (i, f, g, o after their
//! activations), `c [R, U]` (the cell state after each step), `h [R, U]` and `hprev
//! [R, U]` (`h_{t-1}`, zeros at a sample's first real step).
//!
//! Fast paths:
//! - forward: the input projection of all real steps is ONE GEMM `[R, F] x [F, G]`
//!   (into `gates`, pre-filled with the bias); each packed step `k` is one GEMM
//!   `[n_k, U] x [U, G]` accumulated onto its gate rows (the previous h is the first
//!   `n_k` rows of step `k - 1`, contiguous) plus a fused gate kernel over the `n_k`
//!   rows (`gate_rows`: activations, cell and hidden state).
//! - backward: each packed step is a fused gate-gradient kernel (`gate_grad_rows`) and
//!   `dh` of the previous step as one GEMM `[n_k, G] x [G, U]` with the recurrent kernel
//!   transposed; then the weights' gradients are ONE GEMM each over all real rows (the
//!   recurrent kernel's skips the first step, whose `h_{t-1}` is zero) and the input's
//!   is one GEMM `[R, G] x [G, F]`.
//! - activations are `ops::fast_math` (no libm calls), in plain loops over contiguous
//!   slices so they vectorise; the gate kernels are compiled a second time for AVX2
//!   (8 lanes instead of SSE2's 4), picked at run time.
//!
//! The GEMMs run threaded only when `parallel` (the op gives each thread its own group
//! instead when it splits the batch). `naive.rs` is the reference: plain loops, f64
//! sums, one padded step at a time.

use crate::ops::fast_math::{sigmoid, tanh};
use crate::ops::matmul::sgemm;
use crate::ops::rnn_pack::{Group, GroupExtras, GroupGrads};
use crate::ops::rnn_recurrent::{rec_product, rec_product_t, rec_weight_grad};

/// The sizes of one LSTM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmDims {
    pub n: usize,
    pub t: usize,
    pub f: usize,
    pub u: usize,
}

impl LstmDims {
    /// Gate columns: `4 * U`.
    pub fn g(&self) -> usize {
        4 * self.u
    }
}

/// What the forward keeps for the backward, per group (see the module doc).
pub struct LstmSaved {
    pub x: Vec<f32>,
    pub gates: Vec<f32>,
    pub c: Vec<f32>,
    pub h: Vec<f32>,
    pub hprev: Vec<f32>,
}

/// `gate_rows_body` (see there), through `gate_rows_avx2` where the CPU has AVX2.
#[allow(clippy::too_many_arguments)]
fn gate_rows(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], h: &mut [f32], u: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked for AVX2, all `gate_rows_avx2` requires.
        return unsafe { gate_rows_avx2(gates, c_prev, c, h, u) };
    }
    gate_rows_body(gates, c_prev, c, h, u)
}

/// `gate_rows_body` compiled with AVX2 (8-wide; the crate's baseline is SSE2). The same
/// operations element by element, so the result is the same bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn gate_rows_avx2(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], h: &mut [f32], u: usize) {
    gate_rows_body(gates, c_prev, c, h, u)
}

/// One packed step's gates over its `n` active rows, fused: `gates` `[n, G]` holds the
/// pre-activations and becomes the activated gates; `c_prev` `[n, U]` is the previous
/// cell state; writes `c` and `h` `[n, U]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gate_rows_body(gates: &mut [f32], c_prev: &[f32], c: &mut [f32], h: &mut [f32], u: usize) {
    let g = 4 * u;
    for (((row, cp), c), h) in gates
        .chunks_exact_mut(g)
        .zip(c_prev.chunks_exact(u))
        .zip(c.chunks_exact_mut(u))
        .zip(h.chunks_exact_mut(u))
    {
        let (ifg, rest) = row.split_at_mut(2 * u);
        let (gg, o) = rest.split_at_mut(u);
        for v in ifg.iter_mut() {
            *v = sigmoid(*v);
        }
        for v in gg.iter_mut() {
            *v = tanh(*v);
        }
        for v in o.iter_mut() {
            *v = sigmoid(*v);
        }
        let (i, f) = ifg.split_at(u);
        for j in 0..u {
            let cj = f[j] * cp[j] + i[j] * gg[j];
            c[j] = cj;
            h[j] = cj;
        }
        for v in h.iter_mut() {
            *v = tanh(*v);
        }
        for (hj, &oj) in h.iter_mut().zip(o.iter()) {
            *hj *= oj;
        }
    }
}

/// Forward over one group: `x` is its packed input `[R, F]`. Returns the saved state
/// (whose `h` is every real step's h).
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward(
    grp: &Group,
    x: Vec<f32>,
    w: &[f32],         // [F, G]
    rw: &[f32],        // [U, G]
    b: Option<&[f32]>, // [G]
    f: usize,
    u: usize,
    parallel: bool,
    ex: &GroupExtras,
) -> LstmSaved {
    let g = 4 * u;
    let rows = grp.rows();
    debug_assert_eq!(x.len(), rows * f);
    let mut gates = vec![0.0f32; rows * g];
    // All real steps' input projections at once: gates = x @ w + b.
    if let Some(b) = b {
        for row in gates.chunks_exact_mut(g) {
            row.copy_from_slice(b);
        }
    }
    sgemm(
        rows,
        f,
        g,
        &x,
        false,
        w,
        false,
        &mut gates,
        b.is_some(),
        parallel,
    );
    let mut c = vec![0.0f32; rows * u];
    let mut h = vec![0.0f32; rows * u];
    let mut hprev = vec![0.0f32; rows * u];
    let zeros = vec![0.0f32; grp.batch_sizes.first().copied().unwrap_or(0) * u];
    for (k, &nk) in grp.batch_sizes.iter().enumerate() {
        let o = grp.offsets[k];
        let (done_h, cur_h) = h.split_at_mut(o * u);
        let (done_c, cur_c) = c.split_at_mut(o * u);
        let gk = &mut gates[o * g..(o + nk) * g];
        // h_{k-1}, c_{k-1}: the first n_k rows of the previous step, or the initial
        // state (zeros, whose recurrent GEMM is skipped).
        let (hp, c_prev) = if k == 0 {
            (ex.h0, ex.c0.unwrap_or(&zeros))
        } else {
            let p = grp.offsets[k - 1] * u;
            (Some(&done_h[p..p + nk * u]), &done_c[p..p + nk * u])
        };
        if let Some(hp) = hp {
            let hp = &hp[..nk * u];
            hprev[o * u..(o + nk) * u].copy_from_slice(hp);
            // gates += h_{k-1} @ rw (per gate with its mask under recurrent dropout).
            let drop = ex.drop_rows(o, nk, g);
            rec_product(nk, u, 4, hp, rw, drop, gk, true, parallel);
        }
        gate_rows(
            gk,
            &c_prev[..nk * u],
            &mut cur_c[..nk * u],
            &mut cur_h[..nk * u],
            u,
        );
    }
    LstmSaved {
        x,
        gates,
        c,
        h,
        hprev,
    }
}

/// `gate_grad_rows_body` (see there), through `gate_grad_rows_avx2` where the CPU has AVX2.
#[allow(clippy::too_many_arguments)]
fn gate_grad_rows(
    dz: &mut [f32],
    dh: &[f32],
    dc: &mut [f32],
    gates: &[f32],
    c: &[f32],
    c_prev: &[f32],
    u: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked for AVX2, all `gate_grad_rows_avx2` requires.
        return unsafe { gate_grad_rows_avx2(dz, dh, dc, gates, c, c_prev, u) };
    }
    gate_grad_rows_body(dz, dh, dc, gates, c, c_prev, u)
}

/// `gate_grad_rows_body` compiled with AVX2 (8-wide; the crate's baseline is SSE2). The same
/// operations element by element, so the result is the same bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn gate_grad_rows_avx2(
    dz: &mut [f32],
    dh: &[f32],
    dc: &mut [f32],
    gates: &[f32],
    c: &[f32],
    c_prev: &[f32],
    u: usize,
) {
    gate_grad_rows_body(dz, dh, dc, gates, c, c_prev, u)
}

/// One packed step's gate gradients over its `n` active rows, fused. `dh` `[n, U]` is
/// dL/dh of the step, `dc` `[n, U]` holds dL/dc from the next step and becomes dL/dc of
/// the previous one; writes the pre-activation gradients `dz [n, G]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gate_grad_rows_body(
    dz: &mut [f32],
    dh: &[f32],
    dc: &mut [f32],
    gates: &[f32],
    c: &[f32],
    c_prev: &[f32],
    u: usize,
) {
    let g = 4 * u;
    let mut tc = vec![0.0f32; u];
    for (((((dz, dh), dc), gt), c), cp) in dz
        .chunks_exact_mut(g)
        .zip(dh.chunks_exact(u))
        .zip(dc.chunks_exact_mut(u))
        .zip(gates.chunks_exact(g))
        .zip(c.chunks_exact(u))
        .zip(c_prev.chunks_exact(u))
    {
        for (t, &cj) in tc.iter_mut().zip(c) {
            *t = tanh(cj);
        }
        let (gi, rest) = gt.split_at(u);
        let (gf, rest) = rest.split_at(u);
        let (gg, go) = rest.split_at(u);
        let (dzi, rest) = dz.split_at_mut(u);
        let (dzf, rest) = rest.split_at_mut(u);
        let (dzg, dzo) = rest.split_at_mut(u);
        for j in 0..u {
            let (i, f, gv, o) = (gi[j], gf[j], gg[j], go[j]);
            let t = tc[j];
            let dcv = dc[j] + dh[j] * o * (1.0 - t * t);
            dzi[j] = dcv * gv * i * (1.0 - i);
            dzf[j] = dcv * cp[j] * f * (1.0 - f);
            dzg[j] = dcv * i * (1.0 - gv * gv);
            dzo[j] = dh[j] * t * o * (1.0 - o);
            dc[j] = dcv * f;
        }
    }
}

/// The gradients of one group (`GroupGrads`: `dw [F, G]`, `drw [U, G]`, `db [G]`) for
/// `dh_out [R, U]` and `dc_out [R, U]`, dL/dh and dL/dc of each packed row from the
/// op's outputs (`dc_out` only from the final state).
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    grp: &Group,
    saved: &LstmSaved,
    dh_out: &[f32],
    dc_out: Option<&[f32]>,
    w: &[f32],  // [F, G]
    rw: &[f32], // [U, G]
    has_bias: bool,
    f: usize,
    u: usize,
    parallel: bool,
    ex: &GroupExtras,
) -> GroupGrads {
    let g = 4 * u;
    let rows = grp.rows();
    let n0 = grp.batch_sizes.first().copied().unwrap_or(0);
    let mut dz = vec![0.0f32; rows * g];
    // dL/dh and dL/dc of the current step's rows (rows past n_k are still zero when a
    // shorter step starts using them: no sample ended there yet).
    let mut dh = vec![0.0f32; n0 * u];
    let mut dc = vec![0.0f32; n0 * u];
    let zeros = vec![0.0f32; n0 * u];
    for (k, &nk) in grp.batch_sizes.iter().enumerate().rev() {
        let o = grp.offsets[k];
        for (a, &b) in dh[..nk * u].iter_mut().zip(&dh_out[o * u..(o + nk) * u]) {
            *a += b;
        }
        if let Some(dc_out) = dc_out {
            for (a, &b) in dc[..nk * u].iter_mut().zip(&dc_out[o * u..(o + nk) * u]) {
                *a += b;
            }
        }
        let c_prev = if k == 0 {
            &ex.c0.unwrap_or(&zeros)[..nk * u]
        } else {
            let p = grp.offsets[k - 1] * u;
            &saved.c[p..p + nk * u]
        };
        let dzk = &mut dz[o * g..(o + nk) * g];
        gate_grad_rows(
            dzk,
            &dh[..nk * u],
            &mut dc[..nk * u],
            &saved.gates[o * g..(o + nk) * g],
            &saved.c[o * u..(o + nk) * u],
            c_prev,
            u,
        );
        // dL/dh of the previous step through the recurrence: dz_k @ rw^T (at the first
        // step, dL/dh0 when there is an initial state).
        if k > 0 || ex.h0.is_some() {
            let drop = ex.drop_rows(o, nk, g);
            rec_product_t(nk, u, 4, dzk, rw, drop, &mut dh[..nk * u], false, parallel);
        }
    }
    // The weights' and input's gradients, each one GEMM over all real rows.
    let mut dx = vec![0.0f32; rows * f];
    let mut dw = vec![0.0f32; f * g];
    let mut drw = vec![0.0f32; u * g];
    sgemm(rows, g, f, &dz, false, w, true, &mut dx, false, parallel);
    sgemm(
        f, rows, g, &saved.x, true, &dz, false, &mut dw, false, parallel,
    );
    // The first step's h_{t-1} is zero without an initial state: skip its rows.
    let skip = if ex.h0.is_some() { 0 } else { n0 };
    rec_weight_grad(
        rows - skip,
        u,
        4,
        &saved.hprev[skip * u..],
        &dz[skip * g..],
        ex.drop_rows(skip, rows - skip, g),
        &mut drw,
        parallel,
    );
    let mut db = vec![0.0f32; if has_bias { g } else { 0 }];
    if has_bias {
        for row in dz.chunks_exact(g) {
            for (a, &b) in db.iter_mut().zip(row) {
                *a += b;
            }
        }
    }
    GroupGrads {
        dx,
        dw,
        drw,
        db,
        dh0: if ex.h0.is_some() { dh } else { vec![] },
        dc0: if ex.c0.is_some() { dc } else { vec![] },
    }
}
