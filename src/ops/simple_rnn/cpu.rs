//! SimpleRNN kernels (Keras' `SimpleRNN` with its default activation tanh), forward and
//! backward through time over one packed group of sequences (`ops::rnn_pack`: the real
//! steps only, time-major, the active rows of each step contiguous and longest sample
//! first).
//!
//! Dims: `R` packed rows (real steps of the group), `F` input features, `U` units;
//! kernel `[F, U]`, recurrent kernel `[U, U]`, bias `[U]`. One step:
//!
//! ```text
//! h = tanh(x_t W + h_{t-1} R + b)
//! ```
//!
//! Saved by the forward for the backward (`SimpleRnnSaved`, all `[R, ...]` in packed
//! row order): the input rows `x [R, F]`, `h [R, U]` and `hprev [R, U]` (`h_{t-1}`,
//! zeros at a sample's first real step). tanh's derivative is `1 - h^2`, so no
//! pre-activation is kept.
//!
//! Fast paths:
//! - forward: the input projection of all real steps is ONE GEMM `[R, F] x [F, U]`
//!   (into `h`, pre-filled with `b`); each packed step `k` adds one GEMM
//!   `[n_k, U] x [U, U]` (the previous h is the first `n_k` rows of step `k - 1`,
//!   contiguous) and applies tanh over its `n_k` rows in place (`tanh_rows`).
//! - backward: each packed step is a fused kernel `dz = dh * (1 - h^2)`
//!   (`tanh_grad_rows`), then dL/dh of the previous step is one GEMM
//!   `[n_k, U] x [U, U]` with the recurrent kernel transposed; the weights' gradients
//!   are ONE GEMM each over all real rows (the recurrent kernel's skips the first step,
//!   whose `h_{t-1}` is zero) and the input's is one GEMM `[R, U] x [U, F]`.
//! - tanh is `ops::fast_math` (no libm calls), in plain loops over contiguous slices so
//!   they vectorise; both fused kernels are compiled a second time for AVX2 (8 lanes
//!   instead of SSE2's 4), picked at run time.
//!
//! The GEMMs run threaded only when `parallel` (the op gives each thread its own group
//! instead when it splits the batch). `naive.rs` is the reference: plain loops, f64
//! sums, one padded step at a time.

use crate::ops::fast_math::tanh;
use crate::ops::matmul::sgemm;
use crate::ops::rnn_pack::{Group, GroupExtras, GroupGrads};
use crate::ops::rnn_recurrent::{rec_product, rec_product_t, rec_weight_grad};

/// The sizes of one SimpleRNN call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleRnnDims {
    pub n: usize,
    pub t: usize,
    pub f: usize,
    pub u: usize,
}

/// What the forward keeps for the backward, per group (see the module doc).
pub struct SimpleRnnSaved {
    pub x: Vec<f32>,
    pub h: Vec<f32>,
    pub hprev: Vec<f32>,
}

/// `tanh_rows_body` (see there), through `tanh_rows_avx2` where the CPU has AVX2.
fn tanh_rows(h: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked for AVX2, all `tanh_rows_avx2` requires.
        return unsafe { tanh_rows_avx2(h) };
    }
    tanh_rows_body(h)
}

/// `tanh_rows_body` compiled with AVX2 (8-wide; the crate's baseline is SSE2). The same
/// operations element by element, so the result is the same bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_rows_avx2(h: &mut [f32]) {
    tanh_rows_body(h)
}

/// One packed step's activation over its active rows, in place: pre-activations in,
/// h out.
#[inline(always)]
fn tanh_rows_body(h: &mut [f32]) {
    for v in h.iter_mut() {
        *v = tanh(*v);
    }
}

/// `tanh_grad_rows_body` (see there), through `tanh_grad_rows_avx2` where the CPU has AVX2.
fn tanh_grad_rows(dz: &mut [f32], dh: &[f32], h: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked for AVX2, all `tanh_grad_rows_avx2` requires.
        return unsafe { tanh_grad_rows_avx2(dz, dh, h) };
    }
    tanh_grad_rows_body(dz, dh, h)
}

/// `tanh_grad_rows_body` compiled with AVX2 (8-wide; the crate's baseline is SSE2). The
/// same operations element by element, so the result is the same bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn tanh_grad_rows_avx2(dz: &mut [f32], dh: &[f32], h: &[f32]) {
    tanh_grad_rows_body(dz, dh, h)
}

/// One packed step's pre-activation gradient over its active rows:
/// `dz = dh * (1 - h^2)`.
#[inline(always)]
fn tanh_grad_rows_body(dz: &mut [f32], dh: &[f32], h: &[f32]) {
    for ((d, &g), &hv) in dz.iter_mut().zip(dh).zip(h) {
        *d = g * (1.0 - hv * hv);
    }
}

/// Forward over one group: `x` is its packed input `[R, F]`. Returns the saved state
/// (whose `h` is every real step's h).
#[allow(clippy::too_many_arguments)]
pub fn simple_rnn_forward(
    grp: &Group,
    x: Vec<f32>,
    w: &[f32],         // [F, U]
    rw: &[f32],        // [U, U]
    b: Option<&[f32]>, // [U]
    f: usize,
    u: usize,
    parallel: bool,
    ex: &GroupExtras,
) -> SimpleRnnSaved {
    let rows = grp.rows();
    debug_assert_eq!(x.len(), rows * f);
    let mut h = vec![0.0f32; rows * u];
    // All real steps' input projections at once: h = x @ w + b (pre-activations).
    if let Some(b) = b {
        for row in h.chunks_exact_mut(u) {
            row.copy_from_slice(b);
        }
    }
    sgemm(
        rows,
        f,
        u,
        &x,
        false,
        w,
        false,
        &mut h,
        b.is_some(),
        parallel,
    );
    let mut hprev = vec![0.0f32; rows * u];
    for (k, &nk) in grp.batch_sizes.iter().enumerate() {
        let o = grp.offsets[k];
        let (done_h, cur_h) = h.split_at_mut(o * u);
        let cur = &mut cur_h[..nk * u];
        // h_{k-1}: the first n_k rows of the previous step, or the initial state
        // (zeros: no recurrent GEMM).
        let hp = if k == 0 {
            ex.h0
        } else {
            let p = grp.offsets[k - 1] * u;
            Some(&done_h[p..p + nk * u])
        };
        if let Some(hp) = hp {
            let hp = &hp[..nk * u];
            hprev[o * u..(o + nk) * u].copy_from_slice(hp);
            let drop = ex.drop_rows(o, nk, u);
            rec_product(nk, u, 1, hp, rw, drop, cur, true, parallel);
        }
        tanh_rows(cur);
    }
    SimpleRnnSaved { x, h, hprev }
}

/// The gradients of one group (`GroupGrads`: `dw [F, U]`, `drw [U, U]`, `db [U]`) for
/// `dh_out [R, U]`, dL/dh of each packed row from the op's outputs.
#[allow(clippy::too_many_arguments)]
pub fn simple_rnn_backward(
    grp: &Group,
    saved: &SimpleRnnSaved,
    dh_out: &[f32],
    w: &[f32],  // [F, U]
    rw: &[f32], // [U, U]
    has_bias: bool,
    f: usize,
    u: usize,
    parallel: bool,
    ex: &GroupExtras,
) -> GroupGrads {
    let rows = grp.rows();
    let n0 = grp.batch_sizes.first().copied().unwrap_or(0);
    let mut dz = vec![0.0f32; rows * u];
    // dL/dh of the current step's rows (rows past n_k are still zero when a shorter
    // step starts using them: no sample ended there yet).
    let mut dh = vec![0.0f32; n0 * u];
    for (k, &nk) in grp.batch_sizes.iter().enumerate().rev() {
        let o = grp.offsets[k];
        for (a, &b) in dh[..nk * u].iter_mut().zip(&dh_out[o * u..(o + nk) * u]) {
            *a += b;
        }
        let dzk = &mut dz[o * u..(o + nk) * u];
        tanh_grad_rows(dzk, &dh[..nk * u], &saved.h[o * u..(o + nk) * u]);
        // dL/dh of the previous step = dz_k @ rw^T (h_{t-1} reaches h only through R;
        // at the first step, dL/dh0 when there is an initial state).
        if k > 0 || ex.h0.is_some() {
            let drop = ex.drop_rows(o, nk, u);
            rec_product_t(nk, u, 1, dzk, rw, drop, &mut dh[..nk * u], false, parallel);
        }
    }
    // The weights' and input's gradients, each one GEMM over all real rows.
    let mut dx = vec![0.0f32; rows * f];
    let mut dw = vec![0.0f32; f * u];
    let mut drw = vec![0.0f32; u * u];
    sgemm(rows, u, f, &dz, false, w, true, &mut dx, false, parallel);
    sgemm(
        f, rows, u, &saved.x, true, &dz, false, &mut dw, false, parallel,
    );
    // The first step's h_{t-1} is zero without an initial state: skip its rows.
    let skip = if ex.h0.is_some() { 0 } else { n0 };
    rec_weight_grad(
        rows - skip,
        u,
        1,
        &saved.hprev[skip * u..],
        &dz[skip * u..],
        ex.drop_rows(skip, rows - skip, u),
        &mut drw,
        parallel,
    );
    let mut db = vec![0.0f32; if has_bias { u } else { 0 }];
    if has_bias {
        for row in dz.chunks_exact(u) {
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
        dc0: vec![],
    }
}
