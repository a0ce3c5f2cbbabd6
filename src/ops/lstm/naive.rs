//! Reference LSTM, forward and backward through time: plain loops, one step at a time,
//! f64 sums, every matrix product written out. The readable spec of `cpu.rs` (same
//! dims and layouts; see there), used by the tests.

use super::cpu::LstmDims;
use crate::ops::rnn_driver::naive::{flat, output, RefArgs, RefGrads, RefOut};

fn sig(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Every step's state in f64: activated gates `[T][N][G]`, `c` and `h` `[T+1][N][U]`
/// (index 0 is the initial state).
struct States {
    gates: Vec<Vec<Vec<f64>>>,
    c: Vec<Vec<Vec<f64>>>,
    h: Vec<Vec<Vec<f64>>>,
}

fn run(x: &[f32], w: &[f32], rw: &[f32], b: Option<&[f32]>, a: &RefArgs, d: &LstmDims) -> States {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let mut st = States {
        gates: vec![],
        c: vec![RefArgs::state0(a.c0, n, u)],
        h: vec![RefArgs::state0(a.h0, n, u)],
    };
    for t in 0..t_len {
        let mut gt = vec![vec![0.0; g]; n];
        let mut ct = vec![vec![0.0; u]; n];
        let mut ht = vec![vec![0.0; u]; n];
        for s in 0..n {
            // A masked step carries the state (its gates stay zero, unused).
            if !a.real(s, t, t_len) {
                ct[s] = st.c[t][s].clone();
                ht[s] = st.h[t][s].clone();
                continue;
            }
            let mut z = vec![0.0f64; g];
            for (k, zk) in z.iter_mut().enumerate() {
                let mut acc = b.map_or(0.0, |b| b[k] as f64);
                for q in 0..f {
                    acc += x[(s * t_len + t) * f + q] as f64 * w[q * g + k] as f64;
                }
                // Recurrent dropout: gate k's block sees h * m_k.
                for q in 0..u {
                    acc += st.h[t][s][q] * a.drop(s, k, q, u, g) * rw[q * g + k] as f64;
                }
                *zk = acc;
            }
            for j in 0..u {
                let i = sig(z[j]);
                let fg = sig(z[u + j]);
                let cc = z[2 * u + j].tanh();
                let o = sig(z[3 * u + j]);
                ct[s][j] = fg * st.c[t][s][j] + i * cc;
                ht[s][j] = o * ct[s][j].tanh();
                gt[s][j] = i;
                gt[s][u + j] = fg;
                gt[s][2 * u + j] = cc;
                gt[s][3 * u + j] = o;
            }
        }
        st.gates.push(gt);
        st.c.push(ct);
        st.h.push(ht);
    }
    st
}

/// The output (`[N, T, U]` with `a.seq`, else `[N, U]`) and final h, c `[N, U]`, with
/// Keras' masking (see `rnn_driver::naive`), initial states and recurrent dropout.
pub fn lstm_forward(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    d: &LstmDims,
) -> RefOut {
    let st = run(x, w, rw, b, a, d);
    RefOut {
        y: output(&st.h, a, d.n, d.t),
        h: flat(&st.h[d.t]),
        c: flat(&st.c[d.t]),
    }
}

/// Gradients of the input, weights (`drw [U,G]`, `db [G]`) and initial states for the
/// output gradient `dy` (shaped as `lstm_forward`'s output) and the final states'
/// `dh_t`, `dc_t` `[N, U]` (zeros when unused).
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    dy: &[f32],
    dh_t: &[f32],
    dc_t: &[f32],
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    d: &LstmDims,
) -> RefGrads {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let st = run(x, w, rw, b, a, d);
    let mut dx = vec![0.0f64; n * t_len * f];
    let mut dw = vec![0.0f64; f * g];
    let mut drw = vec![0.0f64; u * g];
    let mut db = vec![0.0f64; g];
    let mut dh_next = RefArgs::state0(Some(dh_t), n, u);
    let mut dc_next = RefArgs::state0(Some(dc_t), n, u);
    for t in (0..t_len).rev() {
        let mut dh_prev = vec![vec![0.0f64; u]; n];
        for s in 0..n {
            // A masked step passes dL/dh (plus its carried output's) and dL/dc through.
            if !a.real(s, t, t_len) {
                for j in 0..u {
                    dh_prev[s][j] = a.out_grad(dy, s, t, j, t_len, u) + dh_next[s][j];
                }
                continue;
            }
            let mut dz = vec![0.0f64; g];
            for j in 0..u {
                let dh = a.out_grad(dy, s, t, j, t_len, u) + dh_next[s][j];
                let gt = &st.gates[t][s];
                let (i, fg, cc, o) = (gt[j], gt[u + j], gt[2 * u + j], gt[3 * u + j]);
                let tc = st.c[t + 1][s][j].tanh();
                let dc = dc_next[s][j] + dh * o * (1.0 - tc * tc);
                dz[j] = dc * cc * i * (1.0 - i);
                dz[u + j] = dc * st.c[t][s][j] * fg * (1.0 - fg);
                dz[2 * u + j] = dc * i * (1.0 - cc * cc);
                dz[3 * u + j] = dh * tc * o * (1.0 - o);
                dc_next[s][j] = dc * fg;
            }
            for k in 0..g {
                db[k] += dz[k];
                for q in 0..f {
                    let xi = (s * t_len + t) * f + q;
                    dw[q * g + k] += x[xi] as f64 * dz[k];
                    dx[xi] += w[q * g + k] as f64 * dz[k];
                }
                for q in 0..u {
                    let m = a.drop(s, k, q, u, g);
                    drw[q * g + k] += st.h[t][s][q] * m * dz[k];
                    dh_prev[s][q] += rw[q * g + k] as f64 * m * dz[k];
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
        dc0: flat(&dc_next),
    }
}
