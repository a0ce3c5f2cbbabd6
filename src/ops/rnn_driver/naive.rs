//! The options, results and gradients of the recurrent ops' naive references
//! (`{lstm,gru,simple_rnn}/naive.rs`: plain loops, f64 sums, one padded step at a time),
//! and the few rules of Keras' masking they share. Used by the tests.

/// What a reference call gets besides the input and weights (see `RnnArgs`).
#[derive(Clone, Copy, Default)]
pub struct RefArgs<'a> {
    pub seq: bool,
    /// `[N, T]`, nonzero = real step.
    pub mask: Option<&'a [f32]>,
    pub zero: bool,
    /// `[N, U]`; `None` = zeros.
    pub h0: Option<&'a [f32]>,
    /// `[N, U]` (LSTM); `None` = zeros.
    pub c0: Option<&'a [f32]>,
    /// Recurrent dropout masks `[N, G]`.
    pub rd: Option<&'a [f32]>,
}

impl RefArgs<'_> {
    /// Whether sample `s` is real at step `t` (no mask: every step).
    pub fn real(&self, s: usize, t: usize, t_len: usize) -> bool {
        self.mask.is_none_or(|m| m[s * t_len + t] != 0.0)
    }
    /// Whether sample `s` has a real step at or before `t` (Keras shows zeros before:
    /// a masked step repeats the previous *output*, which starts at zero).
    pub fn seen(&self, s: usize, t: usize, t_len: usize) -> bool {
        (0..=t).any(|k| self.real(s, k, t_len))
    }
    /// Whether the output at `(s, t)` shows h (else zero).
    pub fn shown(&self, s: usize, t: usize, t_len: usize) -> bool {
        self.seen(s, t, t_len) && !(self.seq && self.zero && !self.real(s, t, t_len))
    }
    /// The recurrent dropout factor of unit `q` in gate column `k` (`u` units, `g`
    /// columns) for sample `s`: 1 without dropout.
    pub fn drop(&self, s: usize, k: usize, q: usize, u: usize, g: usize) -> f64 {
        self.rd.map_or(1.0, |m| m[s * g + (k / u) * u + q] as f64)
    }
    /// dL/dh from the output at `(s, t)`, unit `j`, for the output gradient `dy`.
    pub fn out_grad(
        &self,
        dy: &[f32],
        s: usize,
        t: usize,
        j: usize,
        t_len: usize,
        u: usize,
    ) -> f64 {
        if !self.shown(s, t, t_len) {
            0.0
        } else if self.seq {
            dy[(s * t_len + t) * u + j] as f64
        } else if t == t_len - 1 {
            dy[s * u + j] as f64
        } else {
            0.0
        }
    }
    /// The initial state `[N][U]` from `v` (zeros without).
    pub fn state0(v: Option<&[f32]>, n: usize, u: usize) -> Vec<Vec<f64>> {
        (0..n)
            .map(|s| {
                (0..u)
                    .map(|j| v.map_or(0.0, |v| v[s * u + j] as f64))
                    .collect()
            })
            .collect()
    }
}

/// A reference forward: the output (shaped as the op's), the final h and c `[N, U]`
/// (c empty but for the LSTM).
pub struct RefOut {
    pub y: Vec<f32>,
    pub h: Vec<f32>,
    pub c: Vec<f32>,
}

/// A reference backward: the gradients of the input, weights and initial states.
pub struct RefGrads {
    pub dx: Vec<f32>,
    pub dw: Vec<f32>,
    pub drw: Vec<f32>,
    pub db: Vec<f32>,
    pub dh0: Vec<f32>,
    pub dc0: Vec<f32>,
}

/// The output of a reference run from its per-step h `[T+1][N][U]` (index 0 the
/// initial state).
// `s` indexes the states on their second axis and the mask too: a range reads plainer.
#[allow(clippy::needless_range_loop)]
pub fn output(h: &[Vec<Vec<f64>>], a: &RefArgs, n: usize, t_len: usize) -> Vec<f32> {
    let mut y = vec![];
    for s in 0..n {
        let steps = if a.seq { 0..t_len } else { t_len - 1..t_len };
        for t in steps {
            let shown = a.shown(s, t, t_len);
            y.extend(
                h[t + 1][s]
                    .iter()
                    .map(|&v| if shown { v as f32 } else { 0.0 }),
            );
        }
    }
    y
}

/// `[N][U]` f64 as flat f32.
pub fn flat(v: &[Vec<f64>]) -> Vec<f32> {
    v.iter().flatten().map(|&a| a as f32).collect()
}
