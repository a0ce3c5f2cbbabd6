//! Reference GRU (`reset_after=True`), forward and backward through time: plain loops,
//! one step at a time, f64 sums, every matrix product written out. The readable spec
//! of `cpu.rs` (same dims, layouts and equations; see there), used by the tests.

use super::cpu::GruDims;
use crate::ops::rnn_driver::naive::{flat, output, RefArgs, RefGrads, RefOut};

fn sig(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Every step's state in f64: activated gates z, r, hh `[T][N][G]`, the candidate's
/// recurrent term `hz_h` `[T][N][U]`, and `h` `[T+1][N][U]` (index 0 is the initial
/// state).
struct States {
    gates: Vec<Vec<Vec<f64>>>,
    hzh: Vec<Vec<Vec<f64>>>,
    h: Vec<Vec<Vec<f64>>>,
}

fn run(x: &[f32], w: &[f32], rw: &[f32], b: Option<&[f32]>, a: &RefArgs, d: &GruDims) -> States {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let mut st = States {
        gates: vec![],
        hzh: vec![],
        h: vec![RefArgs::state0(a.h0, n, u)],
    };
    for t in 0..t_len {
        let mut gt = vec![vec![0.0; g]; n];
        let mut rt = vec![vec![0.0; u]; n];
        let mut ht = vec![vec![0.0; u]; n];
        for s in 0..n {
            // A masked step carries the state (its gates stay zero, unused).
            if !a.real(s, t, t_len) {
                ht[s] = st.h[t][s].clone();
                continue;
            }
            // xz = x_t W + b_i, hz = h_{t-1} U + b_h (per gate h * m_k under recurrent
            // dropout).
            let mut xz = vec![0.0f64; g];
            let mut hz = vec![0.0f64; g];
            for k in 0..g {
                let mut acc = b.map_or(0.0, |b| b[k] as f64);
                for q in 0..f {
                    acc += x[(s * t_len + t) * f + q] as f64 * w[q * g + k] as f64;
                }
                xz[k] = acc;
                let mut acc = b.map_or(0.0, |b| b[g + k] as f64);
                for q in 0..u {
                    acc += st.h[t][s][q] * a.drop(s, k, q, u, g) * rw[q * g + k] as f64;
                }
                hz[k] = acc;
            }
            for j in 0..u {
                let z = sig(xz[j] + hz[j]);
                let r = sig(xz[u + j] + hz[u + j]);
                let hh = (xz[2 * u + j] + r * hz[2 * u + j]).tanh();
                // The unmasked h_{t-1} here (Keras too).
                ht[s][j] = z * st.h[t][s][j] + (1.0 - z) * hh;
                rt[s][j] = hz[2 * u + j];
                gt[s][j] = z;
                gt[s][u + j] = r;
                gt[s][2 * u + j] = hh;
            }
        }
        st.gates.push(gt);
        st.hzh.push(rt);
        st.h.push(ht);
    }
    st
}

/// The output (`[N, T, U]` with `a.seq`, else `[N, U]`) and final h `[N, U]`, with
/// Keras' masking (see `rnn_driver::naive`), initial state and recurrent dropout.
pub fn gru_forward(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    d: &GruDims,
) -> RefOut {
    let st = run(x, w, rw, b, a, d);
    RefOut {
        y: output(&st.h, a, d.n, d.t),
        h: flat(&st.h[d.t]),
        c: vec![],
    }
}

/// Gradients of the input, weights (`drw [U,G]`, `db [2,G]`) and initial state for the
/// output gradient `dy` (shaped as `gru_forward`'s output) and the final state's
/// `dh_t` `[N, U]`.
#[allow(clippy::too_many_arguments)]
pub fn gru_backward(
    dy: &[f32],
    dh_t: &[f32],
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    d: &GruDims,
) -> RefGrads {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let st = run(x, w, rw, b, a, d);
    let mut dx = vec![0.0f64; n * t_len * f];
    let mut dw = vec![0.0f64; f * g];
    let mut drw = vec![0.0f64; u * g];
    let mut db = vec![0.0f64; 2 * g];
    let mut dh_next = RefArgs::state0(Some(dh_t), n, u);
    for t in (0..t_len).rev() {
        let mut dh_prev = vec![vec![0.0f64; u]; n];
        for s in 0..n {
            // A masked step passes dL/dh (plus its carried output's) through.
            if !a.real(s, t, t_len) {
                for j in 0..u {
                    dh_prev[s][j] = a.out_grad(dy, s, t, j, t_len, u) + dh_next[s][j];
                }
                continue;
            }
            // Pre-activation gradients, input side (dxz) and recurrent side (dhz).
            let mut dxz = vec![0.0f64; g];
            let mut dhz = vec![0.0f64; g];
            for j in 0..u {
                let dh = a.out_grad(dy, s, t, j, t_len, u) + dh_next[s][j];
                let gt = &st.gates[t][s];
                let (z, r, hh) = (gt[j], gt[u + j], gt[2 * u + j]);
                let hp = st.h[t][s][j];
                // h = z hp + (1 - z) hh; hh = tanh(a), a = xz_h + r hz_h.
                let dz = dh * (hp - hh) * z * (1.0 - z);
                let da = dh * (1.0 - z) * (1.0 - hh * hh);
                let dr = da * st.hzh[t][s][j] * r * (1.0 - r);
                dxz[j] = dz;
                dxz[u + j] = dr;
                dxz[2 * u + j] = da;
                dhz[j] = dz;
                dhz[u + j] = dr;
                dhz[2 * u + j] = da * r;
                dh_prev[s][j] += dh * z;
            }
            for k in 0..g {
                db[k] += dxz[k];
                db[g + k] += dhz[k];
                for q in 0..f {
                    let xi = (s * t_len + t) * f + q;
                    dw[q * g + k] += x[xi] as f64 * dxz[k];
                    dx[xi] += w[q * g + k] as f64 * dxz[k];
                }
                for q in 0..u {
                    let m = a.drop(s, k, q, u, g);
                    drw[q * g + k] += st.h[t][s][q] * m * dhz[k];
                    dh_prev[s][q] += rw[q * g + k] as f64 * m * dhz[k];
                }
            }
        }
        dh_next = dh_prev;
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
    RefGrads {
        dx: f32s(dx),
        dw: f32s(dw),
        drw: f32s(drw),
        db: f32s(db),
        dh0: flat(&dh_next),
        dc0: vec![],
    }
}
