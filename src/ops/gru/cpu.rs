//! GRU kernels (Keras' `GRU` with `reset_after=True`: gates z (update), r (reset) and
//! h (candidate) in that column order; sigmoid for z and r, tanh for the candidate),
//! forward and backward through time, over contiguous f32 slices.
//!
//! Dims: `N` batch, `T` steps, `F` input features, `U` units, `G = 3U` gate columns.
//! Layouts (row-major, batch-major like the input, so row `n*T + t` is sample `n` at
//! step `t`): x `[N, T, F]`, kernel `[F, G]`, recurrent kernel `[U, G]`, bias `[2, G]`
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
//! Saved by the forward for the backward: `gates [N, T, G]` (z, r, hh after their
//! activations), `hzh [N, T, U]` (`hz_h`, the candidate's recurrent term with its bias,
//! which r multiplies) and `hprev [N, T, U]` (`h_{t-1}`, zeros at `t = 0`); `hseq
//! [N, T, U]` is every step's h.
//!
//! Fast paths:
//! - forward: the input projection of all steps is ONE GEMM `[N*T, F] x [F, G]` (into
//!   `gates`, pre-filled with `b_i`); each step is one GEMM `[N, U] x [U, G]` (onto
//!   `b_h`) plus a fused gate kernel (`gate_step`: activations and the new h in one
//!   pass).
//! - backward: each step is a fused gate-gradient kernel (`gate_grad_step`) writing the
//!   input-side gradients `dzx` and the recurrent-side ones `dzh` (they differ only in
//!   the candidate block, `dzh_h = r * dzx_h`), and `dh_{t-1}` as `z * dh_t` plus one
//!   GEMM `[N, G] x [G, U]` with the recurrent kernel transposed; then the recurrent
//!   kernel's gradient is ONE GEMM `[U, N*T] x [N*T, G]` over all steps (with the stored
//!   `h_{t-1}`), the kernel's one GEMM `[F, N*T] x [N*T, G]` and the input's one GEMM
//!   `[N*T, G] x [G, F]`.
//!
//! Only the GEMMs use threads (the gate kernels are O(N*U) per step, the GEMMs
//! O(N*U*G)). `naive.rs` is the reference: plain loops, f64 sums, one step at a time.

use crate::ops::matmul::sgemm;

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
    /// Rows of the all-steps matrices: `N * T`.
    pub fn rows(&self) -> usize {
        self.n * self.t
    }
    /// Floats of forward scratch: `h` of the current step `[N, U]` and the recurrent
    /// projection `[N, G]`.
    pub fn forward_scratch(&self) -> usize {
        self.n * (self.u + self.g())
    }
    /// Floats of backward scratch: `dh [N, U]` and one step's `dzx`, `dzh` `[N, G]`.
    pub fn backward_scratch(&self) -> usize {
        self.n * (self.u + 2 * self.g())
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// The saved state of a forward pass (what the backward reads).
pub struct GruSaved<'a> {
    pub gates: &'a [f32], // [N, T, G]
    pub hzh: &'a [f32],   // [N, T, U]
    pub hprev: &'a [f32], // [N, T, U]
}

/// One step's gates for one sample, fused: `zx` holds the input projection of this
/// step (with `b_i`) and is overwritten with the activated gates; `zh` is the
/// recurrent projection (with `b_h`); `h` holds `h_{t-1}` and becomes `h_t`; `hzh`
/// receives the candidate's recurrent term.
fn gate_step(zx: &mut [f32], zh: &[f32], h: &mut [f32], hzh: &mut [f32], u: usize) {
    let (zz, rest) = zx.split_at_mut(u);
    let (zr, zc) = rest.split_at_mut(u);
    for j in 0..u {
        let z = sigmoid(zz[j] + zh[j]);
        let r = sigmoid(zr[j] + zh[u + j]);
        let rec = zh[2 * u + j];
        let hh = (zc[j] + r * rec).tanh();
        h[j] = z * h[j] + (1.0 - z) * hh;
        hzh[j] = rec;
        zz[j] = z;
        zr[j] = r;
        zc[j] = hh;
    }
}

/// Forward over all steps. Writes `hseq`, `gates`, `hzh` and `hprev` (every element);
/// `scratch` holds `d.forward_scratch()` floats.
#[allow(clippy::too_many_arguments)]
pub fn gru_forward(
    hseq: &mut [f32],  // [N, T, U]
    gates: &mut [f32], // [N, T, G]
    hzh: &mut [f32],   // [N, T, U]
    hprev: &mut [f32], // [N, T, U]
    scratch: &mut [f32],
    x: &[f32],         // [N, T, F]
    w: &[f32],         // [F, G]
    rw: &[f32],        // [U, G]
    b: Option<&[f32]>, // [2, G]
    d: &GruDims,
) {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let rows = d.rows();
    debug_assert_eq!(x.len(), rows * f);
    debug_assert_eq!(gates.len(), rows * g);
    debug_assert!(scratch.len() >= d.forward_scratch());
    let (bi, bh) = match b {
        Some(b) => {
            let (bi, bh) = b.split_at(g);
            (Some(bi), Some(bh))
        }
        None => (None, None),
    };
    // All steps' input projections at once: gates = x @ w + b_i.
    if let Some(bi) = bi {
        for row in gates.chunks_exact_mut(g) {
            row.copy_from_slice(bi);
        }
    }
    sgemm(rows, f, g, x, false, w, false, gates, bi.is_some(), true);
    let (hcur, rest) = scratch.split_at_mut(n * u);
    let zh = &mut rest[..n * g];
    hcur.fill(0.0);
    for t in 0..t_len {
        // zh = h_{t-1} @ rw + b_h (h_{-1} is zero at the first step: skip the GEMM).
        match bh {
            Some(bh) => {
                for row in zh.chunks_exact_mut(g) {
                    row.copy_from_slice(bh);
                }
            }
            None => zh.fill(0.0),
        }
        if t > 0 {
            sgemm(n, u, g, hcur, false, rw, false, zh, true, true);
        }
        for s in 0..n {
            let r = s * t_len + t;
            let hs = &mut hcur[s * u..(s + 1) * u];
            hprev[r * u..(r + 1) * u].copy_from_slice(hs);
            gate_step(
                &mut gates[r * g..(r + 1) * g],
                &zh[s * g..(s + 1) * g],
                hs,
                &mut hzh[r * u..(r + 1) * u],
                u,
            );
            hseq[r * u..(r + 1) * u].copy_from_slice(hs);
        }
    }
}

/// One step's gate gradients for one sample, fused. `dh` holds dL/dh_t (from the
/// output and the next step) and becomes the direct part of dL/dh_{t-1}, `z * dh_t`
/// (the recurrent GEMM adds the rest); writes the pre-activation gradients of the
/// input side `dzx [G]` and of the recurrent side `dzh [G]`.
fn gate_grad_step(
    dzx: &mut [f32],
    dzh: &mut [f32],
    dh: &mut [f32],
    gates: &[f32],
    hzh: &[f32],
    hprev: &[f32],
    u: usize,
) {
    for j in 0..u {
        let (z, r, hh) = (gates[j], gates[u + j], gates[2 * u + j]);
        let dhv = dh[j];
        let dzp = dhv * (hprev[j] - hh) * z * (1.0 - z);
        let dc = dhv * (1.0 - z) * (1.0 - hh * hh);
        let drp = dc * hzh[j] * r * (1.0 - r);
        dzx[j] = dzp;
        dzx[u + j] = drp;
        dzx[2 * u + j] = dc;
        dzh[j] = dzp;
        dzh[u + j] = drp;
        dzh[2 * u + j] = dc * r;
        dh[j] = dhv * z;
    }
}

/// Backward through time. `dy` is `[N, T, U]` with `return_sequences`, else `[N, U]`
/// (the last step's h). Writes `dx`, `dw`, `drw`, `db` (every element) and fills `dzx`
/// and `dzh` `[N, T, G]` with every step's pre-activation gate gradients (input and
/// recurrent side); `scratch` holds `d.backward_scratch()` floats.
#[allow(clippy::too_many_arguments)]
pub fn gru_backward(
    dx: &mut [f32],         // [N, T, F]
    dw: &mut [f32],         // [F, G]
    drw: &mut [f32],        // [U, G]
    db: Option<&mut [f32]>, // [2, G]
    dzx: &mut [f32],        // [N, T, G]
    dzh: &mut [f32],        // [N, T, G]
    scratch: &mut [f32],
    dy: &[f32],
    return_sequences: bool,
    saved: &GruSaved,
    x: &[f32],  // [N, T, F]
    w: &[f32],  // [F, G]
    rw: &[f32], // [U, G]
    d: &GruDims,
) {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let rows = d.rows();
    debug_assert!(scratch.len() >= d.backward_scratch());
    let (dh, rest) = scratch.split_at_mut(n * u);
    let (dzxt, rest) = rest.split_at_mut(n * g);
    let dzht = &mut rest[..n * g];
    dh.fill(0.0);
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
            let (gx, gh) = (&mut dzxt[s * g..(s + 1) * g], &mut dzht[s * g..(s + 1) * g]);
            gate_grad_step(
                gx,
                gh,
                &mut dh[s * u..(s + 1) * u],
                &saved.gates[r * g..(r + 1) * g],
                &saved.hzh[r * u..(r + 1) * u],
                &saved.hprev[r * u..(r + 1) * u],
                u,
            );
            dzx[r * g..(r + 1) * g].copy_from_slice(gx);
            dzh[r * g..(r + 1) * g].copy_from_slice(gh);
        }
        // dL/dh_{t-1} = z * dh_t (in dh now) + dzh_t @ rw^T.
        if t > 0 {
            sgemm(n, g, u, dzht, false, rw, true, dh, true, true);
        }
    }
    // The weights' and input's gradients, each one GEMM over all steps.
    sgemm(rows, g, f, dzx, false, w, true, dx, false, true);
    sgemm(f, rows, g, x, true, dzx, false, dw, false, true);
    sgemm(u, rows, g, saved.hprev, true, dzh, false, drw, false, true);
    if let Some(db) = db {
        db.fill(0.0);
        let (dbi, dbh) = db.split_at_mut(g);
        for (dbk, dz) in [(dbi, &*dzx), (dbh, &*dzh)] {
            for row in dz.chunks_exact(g) {
                for (a, &b) in dbk.iter_mut().zip(row) {
                    *a += b;
                }
            }
        }
    }
}
