//! Reference LSTM, forward and backward through time: plain loops, one step at a time,
//! f64 sums, every matrix product written out. The readable spec of `cpu.rs` (same
//! dims and layouts; see there), used by the tests.

use super::cpu::LstmDims;

fn sig(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Every step's state in f64: activated gates `[T][N][G]`, `c` and `h` `[T+1][N][U]`
/// (index 0 is the zero initial state).
struct States {
    gates: Vec<Vec<Vec<f64>>>,
    c: Vec<Vec<Vec<f64>>>,
    h: Vec<Vec<Vec<f64>>>,
}

/// Whether sample `s` is real at step `t` (no mask: every step).
fn real(mask: Option<&[f32]>, s: usize, t: usize, d: &LstmDims) -> bool {
    mask.is_none_or(|m| m[s * d.t + t] != 0.0)
}

fn run(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    mask: Option<&[f32]>,
    d: &LstmDims,
) -> States {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let mut st = States {
        gates: vec![],
        c: vec![vec![vec![0.0; u]; n]],
        h: vec![vec![vec![0.0; u]; n]],
    };
    for t in 0..t_len {
        let mut gt = vec![vec![0.0; g]; n];
        let mut ct = vec![vec![0.0; u]; n];
        let mut ht = vec![vec![0.0; u]; n];
        for s in 0..n {
            // A masked step carries the state (its gates stay zero, unused).
            if !real(mask, s, t, d) {
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
                for q in 0..u {
                    acc += st.h[t][s][q] * rw[q * g + k] as f64;
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

/// `[N, T, U]` with `return_sequences`, else the last step `[N, U]`. `mask` `[N, T]`
/// (nonzero = real step) carries the state over masked steps, which show the carried
/// h, or zeros with `zero_output`; the last output is the carried h after step T.
#[allow(clippy::too_many_arguments)]
pub fn lstm_forward(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    return_sequences: bool,
    mask: Option<&[f32]>,
    zero_output: bool,
    d: &LstmDims,
) -> Vec<f32> {
    let st = run(x, w, rw, b, mask, d);
    let mut y = vec![];
    for s in 0..d.n {
        let steps = if return_sequences {
            1..d.t + 1
        } else {
            d.t..d.t + 1
        };
        for t in steps {
            let shown = !(return_sequences && zero_output && !real(mask, s, t - 1, d));
            y.extend(
                st.h[t][s]
                    .iter()
                    .map(|&v| if shown { v as f32 } else { 0.0 }),
            );
        }
    }
    y
}

/// Gradients `(dx [N,T,F], dw [F,G], drw [U,G], db [G])` for the output gradient `dy`
/// (shaped as `lstm_forward`'s output), with the same `mask` and `zero_output`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    return_sequences: bool,
    mask: Option<&[f32]>,
    zero_output: bool,
    d: &LstmDims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, t_len, f, u, g) = (d.n, d.t, d.f, d.u, d.g());
    let st = run(x, w, rw, b, mask, d);
    let mut dx = vec![0.0f64; n * t_len * f];
    let mut dw = vec![0.0f64; f * g];
    let mut drw = vec![0.0f64; u * g];
    let mut db = vec![0.0f64; g];
    let mut dh_next = vec![vec![0.0f64; u]; n];
    let mut dc_next = vec![vec![0.0f64; u]; n];
    for t in (0..t_len).rev() {
        let mut dh_prev = vec![vec![0.0f64; u]; n];
        for s in 0..n {
            // A masked step passes dL/dh (plus its carried output's) and dL/dc through.
            if !real(mask, s, t, d) {
                for j in 0..u {
                    let out = if return_sequences && !zero_output {
                        dy[(s * t_len + t) * u + j] as f64
                    } else if !return_sequences && t == t_len - 1 {
                        dy[s * u + j] as f64
                    } else {
                        0.0
                    };
                    dh_prev[s][j] = out + dh_next[s][j];
                }
                continue;
            }
            let mut dz = vec![0.0f64; g];
            for j in 0..u {
                let out = if return_sequences {
                    dy[(s * t_len + t) * u + j] as f64
                } else if t == t_len - 1 {
                    dy[s * u + j] as f64
                } else {
                    0.0
                };
                let dh = out + dh_next[s][j];
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
                    drw[q * g + k] += st.h[t][s][q] * dz[k];
                    dh_prev[s][q] += rw[q * g + k] as f64 * dz[k];
                }
            }
        }
        dh_next = dh_prev;
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
    (f32s(dx), f32s(dw), f32s(drw), f32s(db))
}
