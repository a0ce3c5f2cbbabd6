//! Reference SimpleRNN (tanh), forward and backward through time: plain loops, one
//! step at a time, f64 sums, every matrix product written out. The readable spec of
//! `cpu.rs` (same dims, layouts and equations; see there), used by the tests.

use super::cpu::SimpleRnnDims;

/// Whether sample `s` is real at step `t` (no mask: every step).
fn real(mask: Option<&[f32]>, s: usize, t: usize, d: &SimpleRnnDims) -> bool {
    mask.is_none_or(|m| m[s * d.t + t] != 0.0)
}

/// Every step's h in f64, `[T+1][N][U]` (index 0 is the zero initial state).
fn run(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    mask: Option<&[f32]>,
    d: &SimpleRnnDims,
) -> Vec<Vec<Vec<f64>>> {
    let (n, t_len, f, u) = (d.n, d.t, d.f, d.u);
    let mut h = vec![vec![vec![0.0f64; u]; n]];
    for t in 0..t_len {
        let mut ht = vec![vec![0.0; u]; n];
        for s in 0..n {
            // A masked step carries the state.
            if !real(mask, s, t, d) {
                ht[s] = h[t][s].clone();
                continue;
            }
            for j in 0..u {
                let mut acc = b.map_or(0.0, |b| b[j] as f64);
                for q in 0..f {
                    acc += x[(s * t_len + t) * f + q] as f64 * w[q * u + j] as f64;
                }
                for q in 0..u {
                    acc += h[t][s][q] * rw[q * u + j] as f64;
                }
                ht[s][j] = acc.tanh();
            }
        }
        h.push(ht);
    }
    h
}

/// `[N, T, U]` with `return_sequences`, else the last step `[N, U]`. `mask` `[N, T]`
/// (nonzero = real step) carries the state over masked steps, which show the carried
/// h, or zeros with `zero_output`; the last output is the carried h after step T.
// `s` indexes the states `[T+1][N][U]` on their second axis and the mask too: a range
// reads plainer than an iterator here.
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
pub fn simple_rnn_forward(
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    return_sequences: bool,
    mask: Option<&[f32]>,
    zero_output: bool,
    d: &SimpleRnnDims,
) -> Vec<f32> {
    let h = run(x, w, rw, b, mask, d);
    let mut y = vec![];
    for s in 0..d.n {
        let steps = if return_sequences {
            1..d.t + 1
        } else {
            d.t..d.t + 1
        };
        for t in steps {
            let shown = !(return_sequences && zero_output && !real(mask, s, t - 1, d));
            y.extend(h[t][s].iter().map(|&v| if shown { v as f32 } else { 0.0 }));
        }
    }
    y
}

/// Gradients `(dx [N,T,F], dw [F,U], drw [U,U], db [U])` for the output gradient `dy`
/// (shaped as `simple_rnn_forward`'s output), with the same `mask` and `zero_output`.
#[allow(clippy::too_many_arguments)]
pub fn simple_rnn_backward(
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    return_sequences: bool,
    mask: Option<&[f32]>,
    zero_output: bool,
    d: &SimpleRnnDims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, t_len, f, u) = (d.n, d.t, d.f, d.u);
    let h = run(x, w, rw, b, mask, d);
    let mut dx = vec![0.0f64; n * t_len * f];
    let mut dw = vec![0.0f64; f * u];
    let mut drw = vec![0.0f64; u * u];
    let mut db = vec![0.0f64; u];
    let mut dh_next = vec![vec![0.0f64; u]; n];
    for t in (0..t_len).rev() {
        let mut dh_prev = vec![vec![0.0f64; u]; n];
        for s in 0..n {
            let shown = real(mask, s, t, d) || !zero_output;
            let out = |j: usize| {
                if return_sequences && shown {
                    dy[(s * t_len + t) * u + j] as f64
                } else if !return_sequences && t == t_len - 1 {
                    dy[s * u + j] as f64
                } else {
                    0.0
                }
            };
            // A masked step passes dL/dh (plus its carried output's) through.
            if !real(mask, s, t, d) {
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
                    drw[q * u + j] += h[t][s][q] * da;
                    dh_prev[s][q] += rw[q * u + j] as f64 * da;
                }
            }
        }
        dh_next = dh_prev;
    }
    let f32s = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect::<Vec<f32>>();
    (f32s(dx), f32s(dw), f32s(drw), f32s(db))
}
