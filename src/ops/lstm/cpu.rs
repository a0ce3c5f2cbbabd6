//! LSTM kernels (Keras' `LSTM`: gates i, f, c, o in that column order; tanh for the
//! cell candidate and the output, sigmoid for the three gates), forward and backward
//! through time, over contiguous f32 slices.
//!
//! Dims: `N` batch, `T` steps, `F` input features, `U` units, `G = 4U` gate columns.
//! Layouts (row-major, batch-major like the input, so row `n*T + t` is sample `n` at
//! step `t`): x `[N, T, F]`, kernel `[F, G]`, recurrent kernel `[U, G]`, bias `[G]`.
//! Saved by the forward for the backward: `gates [N, T, G]` (i, f, g, o after their
//! activations), `c [N, T, U]` (the cell state after each step) and
//! `hprev [N, T, U]` (`h_{t-1}`, zeros at `t = 0`); `hseq [N, T, U]` is every step's h.
//!
//! Fast paths:
//! - forward: the input projection of all steps is ONE GEMM `[N*T, F] x [F, G]` (into
//!   `gates`, pre-filled with the bias); each step is one GEMM `[N, U] x [U, G]` plus a
//!   fused gate kernel (`gate_step`: activations, cell and hidden state in one pass).
//! - backward: each step is a fused gate-gradient kernel (`gate_grad_step`) and
//!   `dh_{t-1}` as one GEMM `[N, G] x [G, U]` with the recurrent kernel transposed; then
//!   the recurrent kernel's gradient is ONE GEMM `[U, N*T] x [N*T, G]` over all steps
//!   (with the stored `h_{t-1}`), the kernel's one GEMM `[F, N*T] x [N*T, G]` and the
//!   input's one GEMM `[N*T, G] x [G, F]`.
//!
//! Only the GEMMs use threads (the gate kernels are O(N*U) per step, the GEMMs
//! O(N*U*G)). `naive.rs` is the reference: plain loops, f64 sums, one step at a time.

use crate::ops::matmul::sgemm;

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
    /// Rows of the all-steps matrices: `N * T`.
    pub fn rows(&self) -> usize {
        self.n * self.t
    }
    /// Floats of forward scratch: `h` and `c` of the current step `[N, U]` each, and
    /// the recurrent projection `[N, G]`.
    pub fn forward_scratch(&self) -> usize {
        self.n * (2 * self.u + self.g())
    }
    /// Floats of backward scratch: `dh`, `dc` `[N, U]` and one step's `dz [N, G]`.
    pub fn backward_scratch(&self) -> usize {
        self.forward_scratch()
    }
}

pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// The saved state of a forward pass (what the backward reads).
pub struct LstmSaved<'a> {
    pub gates: &'a [f32], // [N, T, G]
    pub c: &'a [f32],     // [N, T, U]
    pub hprev: &'a [f32], // [N, T, U]
}

/// One step's gates for one sample, fused: `zx` holds the input projection of this
/// step (with the bias) and is overwritten with the activated gates; `zh` is the
/// recurrent projection; `c` holds `c_{t-1}` and becomes `c_t`; `h` becomes `h_t`.
fn gate_step(zx: &mut [f32], zh: &[f32], c: &mut [f32], h: &mut [f32], u: usize) {
    let (zi, rest) = zx.split_at_mut(u);
    let (zf, rest) = rest.split_at_mut(u);
    let (zg, zo) = rest.split_at_mut(u);
    for j in 0..u {
        let i = sigmoid(zi[j] + zh[j]);
        let f = sigmoid(zf[j] + zh[u + j]);
        let g = (zg[j] + zh[2 * u + j]).tanh();
        let o = sigmoid(zo[j] + zh[3 * u + j]);
        let cj = f * c[j] + i * g;
        c[j] = cj;
        h[j] = o * cj.tanh();
        zi[j] = i;
        zf[j] = f;
        zg[j] = g;
        zo[j] = o;
    }
}

/// Forward over all steps. Writes `hseq`, `gates`, `c` and `hprev` (every element);
/// `scratch` holds `d.forward_scratch()` floats.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward(
    hseq: &mut [f32],  // [N, T, U]
    gates: &mut [f32], // [N, T, G]
    c: &mut [f32],     // [N, T, U]
    hprev: &mut [f32], // [N, T, U]
    scratch: &mut [f32],
    x: &[f32],         // [N, T, F]
    w: &[f32],         // [F, G]
    rw: &[f32],        // [U, G]
    b: Option<&[f32]>, // [G]
    d: &LstmDims,
) {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let rows = d.rows();
    debug_assert_eq!(x.len(), rows * f);
    debug_assert_eq!(gates.len(), rows * g);
    debug_assert!(scratch.len() >= d.forward_scratch());
    // All steps' input projections at once: gates = x @ w + b.
    if let Some(b) = b {
        for row in gates.chunks_exact_mut(g) {
            row.copy_from_slice(b);
        }
    }
    sgemm(rows, f, g, x, false, w, false, gates, b.is_some(), true);
    let (hcur, rest) = scratch.split_at_mut(n * u);
    let (ccur, rest) = rest.split_at_mut(n * u);
    let zh = &mut rest[..n * g];
    hcur.fill(0.0);
    ccur.fill(0.0);
    for t in 0..t_len {
        // zh = h_{t-1} @ rw (zero at the first step: skip the GEMM).
        if t == 0 {
            zh.fill(0.0);
        } else {
            sgemm(n, u, g, hcur, false, rw, false, zh, false, true);
        }
        for s in 0..n {
            let r = s * t_len + t;
            let hs = &mut hcur[s * u..(s + 1) * u];
            hprev[r * u..(r + 1) * u].copy_from_slice(hs);
            let cs = &mut ccur[s * u..(s + 1) * u];
            gate_step(
                &mut gates[r * g..(r + 1) * g],
                &zh[s * g..(s + 1) * g],
                cs,
                hs,
                u,
            );
            c[r * u..(r + 1) * u].copy_from_slice(cs);
            hseq[r * u..(r + 1) * u].copy_from_slice(hs);
        }
    }
}

/// One step's gate gradients for one sample, fused. `dh` is dL/dh_t (from the output
/// and the next step), `dc` holds dL/dc_t from the next step and becomes dL/dc_{t-1};
/// writes the pre-activation gradients `dz [G]`.
#[allow(clippy::too_many_arguments)]
fn gate_grad_step(
    dz: &mut [f32],
    dh: &[f32],
    dc: &mut [f32],
    gates: &[f32],
    c: &[f32],
    c_prev: Option<&[f32]>,
    u: usize,
) {
    for j in 0..u {
        let (i, f, g, o) = (gates[j], gates[u + j], gates[2 * u + j], gates[3 * u + j]);
        let tc = c[j].tanh();
        let cp = c_prev.map_or(0.0, |cp| cp[j]);
        let dcv = dc[j] + dh[j] * o * (1.0 - tc * tc);
        let do_ = dh[j] * tc;
        dz[j] = dcv * g * i * (1.0 - i);
        dz[u + j] = dcv * cp * f * (1.0 - f);
        dz[2 * u + j] = dcv * i * (1.0 - g * g);
        dz[3 * u + j] = do_ * o * (1.0 - o);
        dc[j] = dcv * f;
    }
}

/// Backward through time. `dy` is `[N, T, U]` with `return_sequences`, else `[N, U]`
/// (the last step's h). Writes `dx`, `dw`, `drw`, `db` (every element) and fills `dz`
/// `[N, T, G]` with every step's pre-activation gate gradients; `scratch` holds
/// `d.backward_scratch()` floats.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    dx: &mut [f32],         // [N, T, F]
    dw: &mut [f32],         // [F, G]
    drw: &mut [f32],        // [U, G]
    db: Option<&mut [f32]>, // [G]
    dz: &mut [f32],         // [N, T, G]
    scratch: &mut [f32],
    dy: &[f32],
    return_sequences: bool,
    saved: &LstmSaved,
    x: &[f32],  // [N, T, F]
    w: &[f32],  // [F, G]
    rw: &[f32], // [U, G]
    d: &LstmDims,
) {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let rows = d.rows();
    debug_assert!(scratch.len() >= d.backward_scratch());
    let (dh, rest) = scratch.split_at_mut(n * u);
    let (dc, rest) = rest.split_at_mut(n * u);
    let dzt = &mut rest[..n * g];
    dh.fill(0.0);
    dc.fill(0.0);
    for t in (0..t_len).rev() {
        // dh = dL/dh_t: the recurrent part (already in dh) plus the output's.
        if return_sequences {
            for s in 0..n {
                let r = s * t_len + t;
                for (a, &b) in dh[s * u..(s + 1) * u].iter_mut().zip(&dy[r * u..]) {
                    *a += b;
                }
            }
        } else if t == t_len - 1 {
            for (a, &b) in dh.iter_mut().zip(dy) {
                *a += b;
            }
        }
        for s in 0..n {
            let r = s * t_len + t;
            let c_prev = (t > 0).then(|| &saved.c[(r - 1) * u..r * u]);
            let dzs = &mut dzt[s * g..(s + 1) * g];
            gate_grad_step(
                dzs,
                &dh[s * u..(s + 1) * u],
                &mut dc[s * u..(s + 1) * u],
                &saved.gates[r * g..(r + 1) * g],
                &saved.c[r * u..(r + 1) * u],
                c_prev,
                u,
            );
            dz[r * g..(r + 1) * g].copy_from_slice(dzs);
        }
        // dL/dh_{t-1} through the recurrence: dz_t @ rw^T.
        if t > 0 {
            sgemm(n, g, u, dzt, false, rw, true, dh, false, true);
        }
    }
    // The weights' and input's gradients, each one GEMM over all steps.
    sgemm(rows, g, f, dz, false, w, true, dx, false, true);
    sgemm(f, rows, g, x, true, dz, false, dw, false, true);
    sgemm(u, rows, g, saved.hprev, true, dz, false, drw, false, true);
    if let Some(db) = db {
        db.fill(0.0);
        for row in dz.chunks_exact(g) {
            for (a, &b) in db.iter_mut().zip(row) {
                *a += b;
            }
        }
    }
}
