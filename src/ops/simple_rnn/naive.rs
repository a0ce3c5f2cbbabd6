//! Reference SimpleRNN (tanh), forward and backward through time: plain loops, one
//! step at a time, f64 sums, every matrix product written out. The readable spec of
//! `cpu.rs` (same dims, layouts and equations; see there), used by the tests.

use super::cpu::SimpleRnnDims;
use crate::ops::rnn_driver::naive::{flat, output, RefArgs, RefGrads, RefOut};

/// Every step's h in f64, `[T+1][N][U]` (index 0 is the initial state).
fn run(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    d: &SimpleRnnDims,
) -> Vec<Vec<Vec<f64>>> {
    let (n, t_len, f, u) = (d.n, d.t, d.f, d.u);
    let mut h = vec![RefArgs::state0(a.h0, n, u)];
    for t in 0..t_len {
        let mut ht = vec![vec![0.0; u]; n];
        for s in 0..n {
            // A masked step carries the state.
            if !a.real(s, t, t_len) {
                ht[s] = h[t][s].clone();
                continue;
            }
            for j in 0..u {
                let mut acc = b.map_or(0.0, |b| b[j] as f64);
                for q in 0..f {
                    acc += x[(s * t_len + t) * f + q] as f64 * w[q * u + j] as f64;
                }
                for q in 0..u {
                    acc += h[t][s][q] * a.drop(s, j, q, u, u) * rw[q * u + j] as f64;
                }
                ht[s][j] = acc.tanh();
            }
        }
        h.push(ht);
    }
    h
}

/// The output (`[N, T, U]` with `a.seq`, else `[N, U]`) and final h `[N, U]`, with
/// Keras' masking (see `rnn_driver::naive`), initial state and recurrent dropout.
pub fn simple_rnn_forward(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    d: &SimpleRnnDims,
) -> RefOut {
    let h = run(x, w, rw, b, a, d);
    RefOut {
        y: output(&h, a, d.n, d.t),
        h: flat(&h[d.t]),
        c: vec![],
    }
}

/// Gradients of the input, weights (`drw [U,U]`, `db [U]`) and initial state for the
/// output gradient `dy` (shaped as `simple_rnn_forward`'s output) and the final
/// state's `dh_t` `[N, U]`.
#[allow(clippy::too_many_arguments)]
pub fn simple_rnn_backward(
    dy: &[f32],
    dh_t: &[f32],
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    d: &SimpleRnnDims,
) -> RefGrads {
    let (n, t_len, f, u) = (d.n, d.t, d.f, d.u);
    let h = run(x, w, rw, b, a, d);
    let mut dx = vec![0.0f64; n * t_len * f];
    let mut dw = vec![0.0f64; f * u];
    let mut drw = vec![0.0f64; u * u];
    let mut db = vec![0.0f64; u];
    let mut dh_next = RefArgs::state0(Some(dh_t), n, u);
    for t in (0..t_len).rev() {
        let mut dh_prev = vec![vec![0.0f64; u]; n];
        for s in 0..n {
            let out = |j: usize| a.out_grad(dy, s, t, j, t_len, u);
            // A masked step passes dL/dh (plus its carried output's) through.
            if !a.real(s, t, t_len) {
                for j in 0..u {
                    dh_prev[s][j] = out(j) + dh_next[s][j];
                }
                continue;
            }
            for j in 0..u {
                let hv = h[t + 1][s][j];
                // h = tanh(a): da = dh (1 - h^2).
                let da = (out(j) + dh_next[s][j]) * (1.0 - hv * hv);
                db[j] += da;
                for q in 0..f {
                    let xi = (s * t_len + t) * f + q;
                    dw[q * u + j] += x[xi] as f64 * da;
                    dx[xi] += w[q * u + j] as f64 * da;
                }
                for q in 0..u {
                    let m = a.drop(s, j, q, u, u);
                    drw[q * u + j] += h[t][s][q] * m * da;
                    dh_prev[s][q] += rw[q * u + j] as f64 * m * da;
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
