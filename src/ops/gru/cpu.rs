//! GRU kernels (Keras' `GRU` with `reset_after=True`: gates z (update), r (reset) and
//! h (candidate) in that column order; sigmoid for z and r, tanh for the candidate),
//! forward and backward through time over one packed group of sequences (`ops::rnn_pack`: the real steps
//! only, time-major, the active rows of each step contiguous and longest sample first).
//!
//! Dims: `R` packed rows (real steps of the group), `F` input features, `U` units,
//! `G = 3U` gate columns; kernel `[F, G]`, recurrent kernel `[U, G]`, bias `[2, G]`
//! (row 0 `b_i`, added to the input projection; row 1 `b_h`, added to the recurrent
//! projection). One step, with `xz = x_t W + b_i` and `hz = h_{t-1} U + b_h`:
//!
//! ```text
//! z  = sigmoid(xz_z + hz_z)
//! r  = sigmoid(xz_r + hz_r)
//! hh = tanh(xz_h + r * hz_h)          (reset_after: r scales the recurrent term)
//! h  = z * h_{t-1} + (1 - z) * hh
//! ```
//!
//! Saved by the forward for the backward (`GruSaved`, all `[R, ...]` in packed row
//! order): the input rows `x [R, F]`, `gates [R, G]` (z, r, hh after their
//! activations), `hzh [R, U]` (`hz_h`, the candidate's recurrent term with its bias,
//! which r multiplies), `h [R, U]` and `hprev [R, U]` (`h_{t-1}`, zeros at a sample's
//! first real step).
//!
//! Fast paths:
//! - forward: the input projection of all real steps is ONE GEMM `[R, F] x [F, G]`
//!   (into `gates`, pre-filled with `b_i`); each packed step `k` is one GEMM
//!   `[n_k, U] x [U, G]` onto `b_h` (the previous h is the first `n_k` rows of step
//!   `k - 1`, contiguous) plus a fused gate kernel over the `n_k` rows (`gate_rows`).
//! - backward: each packed step is a fused gate-gradient kernel (`gate_grad_rows`)
//!   writing the input-side gradients `dzx` and the recurrent-side ones `dzh` (they
//!   differ only in the candidate block, `dzh_h = r * dzx_h`), and dL/dh of the
//!   previous step as `z * dh` plus one GEMM `[n_k, G] x [G, U]` with the recurrent
//!   kernel transposed; then the weights' gradients are ONE GEMM each over all real
//!   rows (the recurrent kernel's skips the first step, whose `h_{t-1}` is zero) and
//!   the input's is one GEMM `[R, G] x [G, F]`.
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

/// The sizes of one GRU call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GruDims {
    pub n: usize,
    pub t: usize,
    pub f: usize,
    pub u: usize,
}

impl GruDims {
    /// Gate columns: `3 * U`.
    pub fn g(&self) -> usize {
        3 * self.u
    }
}

/// What the forward keeps for the backward, per group (see the module doc).
pub struct GruSaved {
    pub x: Vec<f32>,
    pub gates: Vec<f32>,
    pub hzh: Vec<f32>,
    pub h: Vec<f32>,
    pub hprev: Vec<f32>,
}

/// `gate_rows_body` (see there), through `gate_rows_avx2` where the CPU has AVX2.
#[allow(clippy::too_many_arguments)]
fn gate_rows(gates: &mut [f32], zh: &[f32], hp: &[f32], h: &mut [f32], hzh: &mut [f32], u: usize) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked for AVX2, all `gate_rows_avx2` requires.
        return unsafe { gate_rows_avx2(gates, zh, hp, h, hzh, u) };
    }
    gate_rows_body(gates, zh, hp, h, hzh, u)
}

/// `gate_rows_body` compiled with AVX2 (8-wide; the crate's baseline is SSE2). The same
/// operations element by element, so the result is the same bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn gate_rows_avx2(
    gates: &mut [f32],
    zh: &[f32],
    hp: &[f32],
    h: &mut [f32],
    hzh: &mut [f32],
    u: usize,
) {
    gate_rows_body(gates, zh, hp, h, hzh, u)
}

/// One packed step's gates over its `n` active rows, fused: `gates` `[n, G]` holds
/// the input projection (with `b_i`) and becomes the activated gates; `zh` `[n, G]` is
/// the recurrent projection (with `b_h`); `hp` `[n, U]` is the previous h; writes `h`
/// and `hzh` `[n, U]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gate_rows_body(
    gates: &mut [f32],
    zh: &[f32],
    hp: &[f32],
    h: &mut [f32],
    hzh: &mut [f32],
    u: usize,
) {
    let g = 3 * u;
    for ((((row, zh), hp), h), hzh) in gates
        .chunks_exact_mut(g)
        .zip(zh.chunks_exact(g))
        .zip(hp.chunks_exact(u))
        .zip(h.chunks_exact_mut(u))
        .zip(hzh.chunks_exact_mut(u))
    {
        let (zr, hc) = row.split_at_mut(2 * u);
        for (v, &b) in zr.iter_mut().zip(&zh[..2 * u]) {
            *v = sigmoid(*v + b);
        }
        let rec = &zh[2 * u..];
        hzh.copy_from_slice(rec);
        let r = &zr[u..];
        for ((v, &rj), &hj) in hc.iter_mut().zip(r).zip(rec) {
            *v = tanh(*v + rj * hj);
        }
        let z = &zr[..u];
        for j in 0..u {
            h[j] = z[j] * hp[j] + (1.0 - z[j]) * hc[j];
        }
    }
}

/// Forward over one group: `x` is its packed input `[R, F]`. Returns the saved state
/// (whose `h` is every real step's h).
#[allow(clippy::too_many_arguments)]
pub fn gru_forward(
    grp: &Group,
    x: Vec<f32>,
    w: &[f32],         // [F, G]
    rw: &[f32],        // [U, G]
    b: Option<&[f32]>, // [2, G]
    f: usize,
    u: usize,
    parallel: bool,
    ex: &GroupExtras,
) -> GruSaved {
    let g = 3 * u;
    let rows = grp.rows();
    debug_assert_eq!(x.len(), rows * f);
    let (bi, bh) = match b {
        Some(b) => {
            let (bi, bh) = b.split_at(g);
            (Some(bi), Some(bh))
        }
        None => (None, None),
    };
    let mut gates = vec![0.0f32; rows * g];
    // All real steps' input projections at once: gates = x @ w + b_i.
    if let Some(bi) = bi {
        for row in gates.chunks_exact_mut(g) {
            row.copy_from_slice(bi);
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
        bi.is_some(),
        parallel,
    );
    let mut h = vec![0.0f32; rows * u];
    let mut hzh = vec![0.0f32; rows * u];
    let mut hprev = vec![0.0f32; rows * u];
    let n0 = grp.batch_sizes.first().copied().unwrap_or(0);
    let zeros = vec![0.0f32; n0 * u];
    let mut zh = vec![0.0f32; n0 * g];
    for (k, &nk) in grp.batch_sizes.iter().enumerate() {
        let o = grp.offsets[k];
        let (done_h, cur_h) = h.split_at_mut(o * u);
        let zk = &mut zh[..nk * g];
        // zh = h_{k-1} @ rw + b_h (h_{-1} is zero at the first step: skip the GEMM).
        match bh {
            Some(bh) => {
                for row in zk.chunks_exact_mut(g) {
                    row.copy_from_slice(bh);
                }
            }
            None => zk.fill(0.0),
        }
        // h_{k-1}: the first n_k rows of the previous step, or the initial state
        // (zeros, whose recurrent GEMM is skipped).
        let hp = if k == 0 {
            ex.h0
        } else {
            let p = grp.offsets[k - 1] * u;
            Some(&done_h[p..p + nk * u])
        };
        let hp = match hp {
            Some(hp) => {
                let hp = &hp[..nk * u];
                hprev[o * u..(o + nk) * u].copy_from_slice(hp);
                let drop = ex.drop_rows(o, nk, g);
                rec_product(nk, u, 3, hp, rw, drop, zk, true, parallel);
                hp
            }
            None => &zeros[..nk * u],
        };
        gate_rows(
            &mut gates[o * g..(o + nk) * g],
            zk,
            hp,
            &mut cur_h[..nk * u],
            &mut hzh[o * u..(o + nk) * u],
            u,
        );
    }
    GruSaved {
        x,
        gates,
        hzh,
        h,
        hprev,
    }
}

/// `gate_grad_rows_body` (see there), through `gate_grad_rows_avx2` where the CPU has AVX2.
#[allow(clippy::too_many_arguments)]
fn gate_grad_rows(
    dzx: &mut [f32],
    dzh: &mut [f32],
    dh: &mut [f32],
    gates: &[f32],
    hzh: &[f32],
    hprev: &[f32],
    u: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just checked for AVX2, all `gate_grad_rows_avx2` requires.
        return unsafe { gate_grad_rows_avx2(dzx, dzh, dh, gates, hzh, hprev, u) };
    }
    gate_grad_rows_body(dzx, dzh, dh, gates, hzh, hprev, u)
}

/// `gate_grad_rows_body` compiled with AVX2 (8-wide; the crate's baseline is SSE2). The same
/// operations element by element, so the result is the same bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn gate_grad_rows_avx2(
    dzx: &mut [f32],
    dzh: &mut [f32],
    dh: &mut [f32],
    gates: &[f32],
    hzh: &[f32],
    hprev: &[f32],
    u: usize,
) {
    gate_grad_rows_body(dzx, dzh, dh, gates, hzh, hprev, u)
}

/// One packed step's gate gradients over its `n` active rows, fused. `dh` `[n, U]`
/// holds dL/dh of the step and becomes the direct part of dL/dh of the previous one,
/// `z * dh` (the recurrent GEMM adds the rest); writes the pre-activation gradients of
/// the input side `dzx [n, G]` and of the recurrent side `dzh [n, G]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gate_grad_rows_body(
    dzx: &mut [f32],
    dzh: &mut [f32],
    dh: &mut [f32],
    gates: &[f32],
    hzh: &[f32],
    hprev: &[f32],
    u: usize,
) {
    let g = 3 * u;
    for (((((dzx, dzh), dh), gt), hzh), hp) in dzx
        .chunks_exact_mut(g)
        .zip(dzh.chunks_exact_mut(g))
        .zip(dh.chunks_exact_mut(u))
        .zip(gates.chunks_exact(g))
        .zip(hzh.chunks_exact(u))
        .zip(hprev.chunks_exact(u))
    {
        let (gz, rest) = gt.split_at(u);
        let (gr, gh) = rest.split_at(u);
        let (xz, rest) = dzx.split_at_mut(u);
        let (xr, xh) = rest.split_at_mut(u);
        let (hz, rest) = dzh.split_at_mut(u);
        let (hr, hh_) = rest.split_at_mut(u);
        for j in 0..u {
            let (z, r, hh) = (gz[j], gr[j], gh[j]);
            let dhv = dh[j];
            let dzp = dhv * (hp[j] - hh) * z * (1.0 - z);
            let dc = dhv * (1.0 - z) * (1.0 - hh * hh);
            let drp = dc * hzh[j] * r * (1.0 - r);
            xz[j] = dzp;
            xr[j] = drp;
            xh[j] = dc;
            hz[j] = dzp;
            hr[j] = drp;
            hh_[j] = dc * r;
            dh[j] = dhv * z;
        }
    }
}

/// The gradients of one group (`GroupGrads`: `dw [F, G]`, `drw [U, G]`, `db [2, G]`)
/// for `dh_out [R, U]`, dL/dh of each packed row from the op's outputs.
#[allow(clippy::too_many_arguments)]
pub fn gru_backward(
    grp: &Group,
    saved: &GruSaved,
    dh_out: &[f32],
    w: &[f32],  // [F, G]
    rw: &[f32], // [U, G]
    has_bias: bool,
    f: usize,
    u: usize,
    parallel: bool,
    ex: &GroupExtras,
) -> GroupGrads {
    let g = 3 * u;
    let rows = grp.rows();
    let n0 = grp.batch_sizes.first().copied().unwrap_or(0);
    let mut dzx = vec![0.0f32; rows * g];
    let mut dzh = vec![0.0f32; rows * g];
    // dL/dh of the current step's rows (rows past n_k are still zero when a shorter
    // step starts using them: no sample ended there yet).
    let mut dh = vec![0.0f32; n0 * u];
    for (k, &nk) in grp.batch_sizes.iter().enumerate().rev() {
        let o = grp.offsets[k];
        for (a, &b) in dh[..nk * u].iter_mut().zip(&dh_out[o * u..(o + nk) * u]) {
            *a += b;
        }
        let dzhk = &mut dzh[o * g..(o + nk) * g];
        gate_grad_rows(
            &mut dzx[o * g..(o + nk) * g],
            dzhk,
            &mut dh[..nk * u],
            &saved.gates[o * g..(o + nk) * g],
            &saved.hzh[o * u..(o + nk) * u],
            &saved.hprev[o * u..(o + nk) * u],
            u,
        );
        // dL/dh of the previous step = z * dh (in dh now) + dzh_k @ rw^T (at the first
        // step, dL/dh0 when there is an initial state).
        if k > 0 || ex.h0.is_some() {
            let drop = ex.drop_rows(o, nk, g);
            rec_product_t(nk, u, 3, dzhk, rw, drop, &mut dh[..nk * u], true, parallel);
        }
    }
    // The weights' and input's gradients, each one GEMM over all real rows.
    let mut dx = vec![0.0f32; rows * f];
    let mut dw = vec![0.0f32; f * g];
    let mut drw = vec![0.0f32; u * g];
    sgemm(rows, g, f, &dzx, false, w, true, &mut dx, false, parallel);
    sgemm(
        f, rows, g, &saved.x, true, &dzx, false, &mut dw, false, parallel,
    );
    // The first step's h_{t-1} is zero without an initial state: skip its rows.
    let skip = if ex.h0.is_some() { 0 } else { n0 };
    rec_weight_grad(
        rows - skip,
        u,
        3,
        &saved.hprev[skip * u..],
        &dzh[skip * g..],
        ex.drop_rows(skip, rows - skip, g),
        &mut drw,
        parallel,
    );
    let mut db = vec![0.0f32; if has_bias { 2 * g } else { 0 }];
    if has_bias {
        let (dbi, dbh) = db.split_at_mut(g);
        for (dbk, dz) in [(dbi, &dzx), (dbh, &dzh)] {
            for row in dz.chunks_exact(g) {
                for (a, &b) in dbk.iter_mut().zip(row) {
                    *a += b;
                }
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
