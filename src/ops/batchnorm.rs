//! Batch normalization over the channel axis (axis 1 of `[N, C]` or `[N, C, H, W]`).
//!
//! Dims: `N` batch, `C` channels, `S` cells per channel per sample (`H * W`, or 1 for a
//! `[N, C]` input), `M = N * S` values per channel. Kernels see the input as `[N, C, S]`.
//!
//! Training (`batch_norm_train`) normalizes with the batch's mean and biased variance
//! (divided by `M`, as Keras does) and returns them so the layer can update its running
//! statistics; inference (`batch_norm_inference`) uses given statistics and is an affine
//! map per channel. Both have hand-written backward kernels:
//!
//! | mode      | y                                  | dx                                                    |
//! |-----------|------------------------------------|-------------------------------------------------------|
//! | train     | gamma * xhat + beta                | gamma * inv_std / M * (M dy - sum(dy) - xhat sum(dy xhat)) |
//! | inference | gamma * (x - mean) * inv_std + beta | gamma * inv_std * dy                                 |
//!
//! with `inv_std = 1 / sqrt(var + eps)`, `xhat = (x - mean) * inv_std`,
//! `dgamma = sum(dy * xhat)` and `dbeta = sum(dy)` (sums over `M` per channel).
//!
//! Precision and determinism: per-channel sums add each contiguous `S`-row in f32 with
//! eight lanes, then the rows in f64; variance is two-pass (no `E[x^2] - E[x]^2`
//! cancellation). One thread computes each channel's sums in a fixed order, so results
//! are bit-identical for any thread count.
//!
//! Fast paths: statistics parallel over channels, the elementwise passes parallel over
//! samples with per-channel `scale * x + shift` (one multiply-add per value).
//! `naive` below is the f64 reference the tests compare against.

use crate::engine::{Tensor, Var};
use crate::error::{Error, Result};
use crate::ops::batchnorm_sync::ChannelSums;
use crate::ops::parallel;
use std::ops::Range;

/// Input geometry, seen as `[N, C, S]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchNormDims {
    pub n: usize,
    pub c: usize,
    pub s: usize, // H * W, or 1
}

impl BatchNormDims {
    fn m(&self) -> usize {
        self.n * self.s
    }
}

/// Values per parallel chunk below which a pass stays serial.
const PAR_MIN_WORK: usize = 1 << 15;

fn check_inputs(x: &Var, params: &[(&str, Vec<usize>)], op: &str) -> Result<BatchNormDims> {
    let shape = x.shape();
    let d = match *shape {
        [n, c] => BatchNormDims { n, c, s: 1 },
        [n, c, h, w] => BatchNormDims { n, c, s: h * w },
        _ => {
            return Err(Error::shape(format!(
                "{op}: expected an input [N, C] or [N, C, H, W], got {shape:?}"
            )))
        }
    };
    for (name, s) in params {
        if s.as_slice() != [d.c] {
            return Err(Error::shape(format!(
                "{op}: {name} has shape {s:?} but the input {shape:?} has {} channels \
                 (axis 1), so it must be [{}]",
                d.c, d.c
            )));
        }
    }
    Ok(d)
}

fn check_eps(eps: f32, op: &str) -> Result<()> {
    if eps >= 0.0 && eps.is_finite() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{op}: epsilon must be finite and >= 0, got {eps}"
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------------

/// `sum_i f(i)` over `0..len` with eight independent f32 accumulators (vectorizes; the
/// order depends only on `len`).
#[inline(always)]
fn lane_sum(len: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let full = len / 8 * 8;
    for base in (0..full).step_by(8) {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += f(base + k);
        }
    }
    let mut tail = 0.0f32;
    for i in full..len {
        tail += f(i);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// For each channel in `cs`, `sum over n of row_sum(row of x, row of y, channel)` in f64,
/// where rows are the contiguous `S` values of one (n, c). Runs in parallel over channel
/// ranges; returns one value per channel of `0..C`.
fn channel_sums(
    a: &[f32],
    b: &[f32],
    d: &BatchNormDims,
    row_sum: impl Fn(&[f32], &[f32], usize) -> f32 + Sync + Send,
) -> Vec<f64> {
    let min_channels = PAR_MIN_WORK.div_ceil(d.m().max(1));
    let parts = parallel::par_map_ranges(d.c, min_channels, |cs: Range<usize>| {
        let mut acc = vec![0.0f64; cs.len()];
        for n in 0..d.n {
            for (k, c) in cs.clone().enumerate() {
                let off = (n * d.c + c) * d.s;
                acc[k] += row_sum(&a[off..off + d.s], &b[off..off + d.s], c) as f64;
            }
        }
        acc
    });
    parts.concat()
}

/// `out[n, c, s] = f(x, y, channel)` elementwise, parallel over samples.
fn per_channel_map(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    d: &BatchNormDims,
    f: impl Fn(f32, f32, usize) -> f32 + Sync + Send,
) {
    let sample = d.c * d.s;
    if sample == 0 {
        return;
    }
    let min_samples = PAR_MIN_WORK.div_ceil(sample);
    parallel::par_chunks_mut(out, sample, min_samples, |n0, chunk| {
        for (i, o_row) in chunk.chunks_exact_mut(sample).enumerate() {
            let off = (n0 + i) * sample;
            let (a_row, b_row) = (&a[off..off + sample], &b[off..off + sample]);
            for c in 0..d.c {
                let r = c * d.s..(c + 1) * d.s;
                for ((o, &x), &y) in o_row[r.clone()]
                    .iter_mut()
                    .zip(&a_row[r.clone()])
                    .zip(&b_row[r])
                {
                    *o = f(x, y, c);
                }
            }
        }
    });
}

/// Training forward. Writes `y[N, C, S]`, the batch `mean[C]`, biased `var[C]` and
/// `inv_std[C] = 1 / sqrt(var + eps)`. `reduce` (synchronized batch norm,
/// `batchnorm_sync.rs`) sums the per-channel sums with the count `M` appended, then the
/// centred sums of squares, over the ranks: the statistics become the global batch's.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_forward(
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
    inv_std: &mut [f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    d: &BatchNormDims,
    reduce: Option<&ChannelSums<'_>>,
) {
    let mut m = d.m() as f64;
    let mut sums = channel_sums(x, x, d, |r, _, _| lane_sum(r.len(), |i| r[i]));
    if let Some(reduce) = reduce {
        sums.push(m);
        reduce(&mut sums);
        m = sums.pop().expect("pushed");
    }
    for (mu, s) in mean.iter_mut().zip(&sums) {
        *mu = (s / m) as f32;
    }
    let mut sq = channel_sums(x, x, d, |r, _, c| {
        let mu = mean[c];
        lane_sum(r.len(), |i| (r[i] - mu) * (r[i] - mu))
    });
    if let Some(reduce) = reduce {
        reduce(&mut sq);
    }
    for c in 0..d.c {
        let v = sq[c] / m;
        var[c] = v as f32;
        inv_std[c] = (1.0 / (v + eps as f64).sqrt()) as f32;
    }
    affine_forward(y, x, gamma, beta, mean, inv_std, d);
}

/// `y = (x - mean) * inv_std * gamma + beta`, folded into `x * scale + shift` per channel.
fn affine_forward(
    y: &mut [f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    d: &BatchNormDims,
) {
    let scale: Vec<f32> = (0..d.c).map(|c| gamma[c] * inv_std[c]).collect();
    let shift: Vec<f32> = (0..d.c).map(|c| beta[c] - mean[c] * scale[c]).collect();
    per_channel_map(y, x, x, d, |x, _, c| x * scale[c] + shift[c]);
}

/// Inference forward with given statistics. Writes `y` and `inv_std[C]`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_inference_forward(
    y: &mut [f32],
    inv_std: &mut [f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
    d: &BatchNormDims,
) {
    for (is, &v) in inv_std.iter_mut().zip(var) {
        *is = (1.0 / (v as f64 + eps as f64).sqrt()) as f32;
    }
    affine_forward(y, x, gamma, beta, mean, inv_std, d);
}

/// Per-channel `(sum(dy), sum(dy * xhat))`, the parameter gradients `dbeta` and `dgamma`
/// of both modes.
fn param_grads(
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    d: &BatchNormDims,
) -> (Vec<f32>, Vec<f32>) {
    let (sum_dy, sum_dy_xc) = grad_sums(dy, x, mean, d);
    grads_from_sums(&sum_dy, &sum_dy_xc, inv_std)
}

/// Per-channel `sum(dy)` and `sum(dy * (x - mean))` in f64.
fn grad_sums(dy: &[f32], x: &[f32], mean: &[f32], d: &BatchNormDims) -> (Vec<f64>, Vec<f64>) {
    let sum_dy = channel_sums(dy, dy, d, |g, _, _| lane_sum(g.len(), |i| g[i]));
    let sum_dy_xc = channel_sums(dy, x, d, |g, r, c| {
        let mu = mean[c];
        lane_sum(g.len(), |i| g[i] * (r[i] - mu))
    });
    (sum_dy, sum_dy_xc)
}

/// `(dgamma, dbeta) = (sum(dy * (x - mean)) * inv_std, sum(dy))`.
fn grads_from_sums(sum_dy: &[f64], sum_dy_xc: &[f64], inv_std: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let dbeta = sum_dy.iter().map(|&s| s as f32).collect();
    let dgamma = (0..sum_dy.len())
        .map(|c| (sum_dy_xc[c] * inv_std[c] as f64) as f32)
        .collect();
    (dgamma, dbeta)
}

/// Training backward. Writes `dx[N, C, S]`, `dgamma[C]`, `dbeta[C]`. With
/// `xhat = (x - mean) * inv_std` and `k = gamma * inv_std`, the fused formula
/// `dx = k / M * (M dy - sum(dy) - xhat sum(dy xhat))` is evaluated as
/// `k * dy + b * (x - mean) + c0` with per-channel `b = -k * inv_std * sum(dy xhat) / M`
/// and `c0 = -k * sum(dy) / M`. `reduce` (synchronized batch norm) sums `sum(dy)`,
/// `sum(dy * (x - mean))` and `M` (appended) over the ranks for `dx`; `dgamma` and `dbeta`
/// stay this rank's (the gradient exchange sums them, as any parameter's).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    d: &BatchNormDims,
    reduce: Option<&ChannelSums<'_>>,
) {
    let (sum_dy, sum_dy_xc) = grad_sums(dy, x, mean, d);
    let (dg, db) = grads_from_sums(&sum_dy, &sum_dy_xc, inv_std);
    // The sums dx needs: this rank's, or the global batch's.
    let (mut m, mut dg_all, mut db_all) = (d.m() as f32, dg.clone(), db.clone());
    if let Some(reduce) = reduce {
        let mut buf = [sum_dy, sum_dy_xc].concat();
        buf.push(d.m() as f64);
        reduce(&mut buf);
        m = buf[2 * d.c] as f32;
        (dg_all, db_all) = grads_from_sums(&buf[..d.c], &buf[d.c..2 * d.c], inv_std);
    }
    let k: Vec<f32> = (0..d.c).map(|c| gamma[c] * inv_std[c]).collect();
    let b: Vec<f32> = (0..d.c)
        .map(|c| -k[c] * inv_std[c] * dg_all[c] / m)
        .collect();
    let c0: Vec<f32> = (0..d.c).map(|c| -k[c] * db_all[c] / m).collect();
    per_channel_map(dx, dy, x, d, |g, x, c| {
        k[c] * g + b[c] * (x - mean[c]) + c0[c]
    });
    dgamma.copy_from_slice(&dg);
    dbeta.copy_from_slice(&db);
}

/// Inference backward: `dx = gamma * inv_std * dy`, plus `dgamma`, `dbeta`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_inference_backward(
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    d: &BatchNormDims,
) {
    let (dg, db) = param_grads(dy, x, mean, inv_std, d);
    let k: Vec<f32> = (0..d.c).map(|c| gamma[c] * inv_std[c]).collect();
    per_channel_map(dx, dy, dy, d, |g, _, c| k[c] * g);
    dgamma.copy_from_slice(&dg);
    dbeta.copy_from_slice(&db);
}

// ---------------------------------------------------------------------------------------
// Ops
// ---------------------------------------------------------------------------------------

/// Training mode: normalizes with the batch's own mean and (biased) variance per channel.
/// Returns the output and the batch mean and variance (for the running statistics).
pub fn batch_norm_train(
    x: &Var,
    gamma: &Var,
    beta: &Var,
    eps: f32,
) -> Result<(Var, Tensor, Tensor)> {
    const OP: &str = "batch_norm (training)";
    let d = check_inputs(x, &[("gamma", gamma.shape()), ("beta", beta.shape())], OP)?;
    check_eps(eps, OP)?;
    if d.m() == 0 {
        return Err(Error::shape(format!(
            "{OP}: input {:?} has no values per channel, so no batch statistics",
            x.shape()
        )));
    }
    let shape = x.shape();
    let (xv, gv) = (x.value().contiguous_f32(), gamma.value().contiguous_f32());
    let mut y = vec![0.0f32; xv.numel()]; // [N, C, S]
    let (mut mean, mut var, mut inv_std) = (vec![0.0; d.c], vec![0.0; d.c], vec![0.0; d.c]);
    // Synchronized batch norm (`batchnorm_sync.rs`), kept for the backward pass.
    let sync = crate::ops::batchnorm_sync::current();
    let m_all = std::cell::Cell::new(d.m() as f64);
    let sum_stats = |b: &mut [f64]| {
        if let Some(s) = &sync {
            s.sum_stats(b);
            // The first call, the sums with the count appended: the global count.
            if b.len() == d.c + 1 {
                m_all.set(b[d.c]);
            }
        }
    };
    batch_norm_train_forward(
        &mut y,
        &mut mean,
        &mut var,
        &mut inv_std,
        xv.data(),
        gv.data(),
        beta.value().contiguous_f32().data(),
        eps,
        &d,
        sync.is_some().then_some(&sum_stats as &ChannelSums<'_>),
    );
    let m_all = m_all.get();
    let (mean_t, var_t) = (
        Tensor::from_vec(mean.clone(), &[d.c]),
        Tensor::from_vec(var, &[d.c]),
    );
    let y = Var::from_op(
        Tensor::from_vec(y, &shape),
        "batch_norm_train",
        &[x, gamma, beta],
        move |dy| {
            let mut dx = vec![0.0f32; xv.numel()];
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d.c], vec![0.0f32; d.c]);
            // The gradient sums over the ranks in this rank's scale; the count is the
            // forward's global one.
            let sum_grads = |b: &mut [f64]| {
                if let Some(s) = &sync {
                    s.sum_grads(&mut b[..2 * d.c]);
                    b[2 * d.c] = m_all;
                }
            };
            batch_norm_train_backward(
                &mut dx,
                &mut dgamma,
                &mut dbeta,
                dy.data(),
                xv.data(),
                gv.data(),
                &mean,
                &inv_std,
                &d,
                sync.is_some().then_some(&sum_grads as &ChannelSums<'_>),
            );
            vec![
                Some(Tensor::from_vec(dx, &shape)),
                Some(Tensor::from_vec(dgamma, &[d.c])),
                Some(Tensor::from_vec(dbeta, &[d.c])),
            ]
        },
    );
    Ok((y, mean_t, var_t))
}

/// Inference mode: normalizes with the given running mean and variance.
pub fn batch_norm_inference(
    x: &Var,
    gamma: &Var,
    beta: &Var,
    mean: &Tensor,
    var: &Tensor,
    eps: f32,
) -> Result<Var> {
    const OP: &str = "batch_norm (inference)";
    let d = check_inputs(
        x,
        &[
            ("gamma", gamma.shape()),
            ("beta", beta.shape()),
            ("moving mean", mean.shape().to_vec()),
            ("moving variance", var.shape().to_vec()),
        ],
        OP,
    )?;
    check_eps(eps, OP)?;
    let (mean, var) = (&mean.contiguous_f32(), &var.contiguous_f32());
    let shape = x.shape();
    let (xv, gv) = (x.value().contiguous_f32(), gamma.value().contiguous_f32());
    let mut y = vec![0.0f32; xv.numel()]; // [N, C, S]
    let mut inv_std = vec![0.0f32; d.c];
    batch_norm_inference_forward(
        &mut y,
        &mut inv_std,
        xv.data(),
        gv.data(),
        beta.value().contiguous_f32().data(),
        mean.data(),
        var.data(),
        eps,
        &d,
    );
    let mean = mean.clone();
    Ok(Var::from_op(
        Tensor::from_vec(y, &shape),
        "batch_norm_inference",
        &[x, gamma, beta],
        move |dy| {
            let mut dx = vec![0.0f32; xv.numel()];
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d.c], vec![0.0f32; d.c]);
            batch_norm_inference_backward(
                &mut dx,
                &mut dgamma,
                &mut dbeta,
                dy.data(),
                xv.data(),
                gv.data(),
                mean.data(),
                &inv_std,
                &d,
            );
            vec![
                Some(Tensor::from_vec(dx, &shape)),
                Some(Tensor::from_vec(dgamma, &[d.c])),
                Some(Tensor::from_vec(dbeta, &[d.c])),
            ]
        },
    ))
}

/// Reference batch normalization: per-channel loops in f64, straight from the
/// definitions. The spec the kernels above are tested against.
pub mod naive {
    use super::BatchNormDims;

    fn channel(d: &BatchNormDims, c: usize) -> impl Iterator<Item = usize> + '_ {
        (0..d.n).flat_map(move |n| (0..d.s).map(move |s| (n * d.c + c) * d.s + s))
    }

    /// Batch mean and biased variance per channel.
    pub fn stats(x: &[f32], d: &BatchNormDims) -> (Vec<f64>, Vec<f64>) {
        let m = (d.n * d.s) as f64;
        let mut mean = vec![0.0; d.c];
        let mut var = vec![0.0; d.c];
        for c in 0..d.c {
            mean[c] = channel(d, c).map(|i| x[i] as f64).sum::<f64>() / m;
            var[c] = channel(d, c)
                .map(|i| (x[i] as f64 - mean[c]).powi(2))
                .sum::<f64>()
                / m;
        }
        (mean, var)
    }

    /// `y = gamma * (x - mean) / sqrt(var + eps) + beta`.
    #[allow(clippy::too_many_arguments)]
    pub fn normalize(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &[f64],
        var: &[f64],
        eps: f32,
        d: &BatchNormDims,
    ) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        for c in 0..d.c {
            let inv_std = 1.0 / (var[c] + eps as f64).sqrt();
            for i in channel(d, c) {
                y[i] =
                    (gamma[c] as f64 * (x[i] as f64 - mean[c]) * inv_std + beta[c] as f64) as f32;
            }
        }
        y
    }

    /// Training forward: `(y, mean, var)`.
    pub fn train_forward(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        d: &BatchNormDims,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mean, var) = stats(x, d);
        let y = normalize(x, gamma, beta, &mean, &var, eps, d);
        let f = |v: Vec<f64>| v.into_iter().map(|a| a as f32).collect();
        (y, f(mean), f(var))
    }

    /// Training backward: `(dx, dgamma, dbeta)` from the fused formula
    /// `dx = gamma * inv_std / M * (M dy - sum(dy) - xhat * sum(dy xhat))`.
    pub fn train_backward(
        dy: &[f32],
        x: &[f32],
        gamma: &[f32],
        eps: f32,
        d: &BatchNormDims,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let m = (d.n * d.s) as f64;
        let (mean, var) = stats(x, d);
        let mut dx = vec![0.0f32; x.len()];
        let (mut dgamma, mut dbeta) = (vec![0.0f32; d.c], vec![0.0f32; d.c]);
        for c in 0..d.c {
            let inv_std = 1.0 / (var[c] + eps as f64).sqrt();
            let xhat = |i: usize| (x[i] as f64 - mean[c]) * inv_std;
            let sum_dy: f64 = channel(d, c).map(|i| dy[i] as f64).sum();
            let sum_dy_xhat: f64 = channel(d, c).map(|i| dy[i] as f64 * xhat(i)).sum();
            for i in channel(d, c) {
                dx[i] = (gamma[c] as f64 * inv_std / m
                    * (m * dy[i] as f64 - sum_dy - xhat(i) * sum_dy_xhat))
                    as f32;
            }
            dgamma[c] = sum_dy_xhat as f32;
            dbeta[c] = sum_dy as f32;
        }
        (dx, dgamma, dbeta)
    }

    /// Inference backward: `(dx, dgamma, dbeta)` of the affine map.
    #[allow(clippy::too_many_arguments)]
    pub fn inference_backward(
        dy: &[f32],
        x: &[f32],
        gamma: &[f32],
        mean: &[f32],
        var: &[f32],
        eps: f32,
        d: &BatchNormDims,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut dx = vec![0.0f32; x.len()];
        let (mut dgamma, mut dbeta) = (vec![0.0f32; d.c], vec![0.0f32; d.c]);
        for c in 0..d.c {
            let inv_std = 1.0 / (var[c] as f64 + eps as f64).sqrt();
            let (mut sg, mut sb) = (0.0f64, 0.0f64);
            for i in channel(d, c) {
                dx[i] = (gamma[c] as f64 * inv_std * dy[i] as f64) as f32;
                sg += dy[i] as f64 * (x[i] as f64 - mean[c] as f64) * inv_std;
                sb += dy[i] as f64;
            }
            dgamma[c] = sg as f32;
            dbeta[c] = sb as f32;
        }
        (dx, dgamma, dbeta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{gradcheck, Rng};

    const EPS: f32 = 1e-3;

    fn random(shape: &[usize], rng: &mut Rng, lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec((0..n).map(|_| rng.uniform_range(lo, hi)).collect(), shape)
    }

    fn dims(shape: &[usize]) -> BatchNormDims {
        let s = if shape.len() == 4 {
            shape[2] * shape[3]
        } else {
            1
        };
        BatchNormDims {
            n: shape[0],
            c: shape[1],
            s,
        }
    }

    /// Max abs difference relative to the largest magnitude of `want` (at least 1).
    fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tol * scale,
                "{what}: element {i}: {a} vs {b} (scale {scale})"
            );
        }
    }

    const SHAPES: [&[usize]; 7] = [
        &[5, 3],
        &[1, 7],
        &[64, 128],
        &[1, 3, 5, 7],
        &[5, 4, 3, 3],
        &[2, 1, 1, 1],
        &[16, 32, 13, 13],
    ];

    #[test]
    fn train_fast_matches_naive() {
        let mut rng = Rng::new(21);
        for shape in SHAPES {
            let d = dims(shape);
            // An offset mean and a spread far from 1 so normalization does real work.
            let x = random(shape, &mut rng, 2.0, 8.0);
            let gamma = random(&[d.c], &mut rng, 0.5, 1.5);
            let beta = random(&[d.c], &mut rng, -1.0, 1.0);
            let (xv, gv, bv) = (
                Var::parameter(x.clone()),
                Var::parameter(gamma.clone()),
                Var::parameter(beta.clone()),
            );
            let (y, mean, var) = batch_norm_train(&xv, &gv, &bv, EPS).unwrap();
            let (y_ref, mean_ref, var_ref) =
                naive::train_forward(x.data(), gamma.data(), beta.data(), EPS, &d);
            assert_close(y.value().data(), &y_ref, 1e-5, "y");
            assert_close(mean.data(), &mean_ref, 1e-6, "mean");
            assert_close(var.data(), &var_ref, 1e-5, "var");

            let dy = random(shape, &mut rng, -1.0, 1.0);
            y.backward_with(dy.clone());
            let (dx, dg, db) = naive::train_backward(dy.data(), x.data(), gamma.data(), EPS, &d);
            assert_close(xv.grad().unwrap().data(), &dx, 1e-4, "dx");
            assert_close(gv.grad().unwrap().data(), &dg, 1e-5, "dgamma");
            assert_close(bv.grad().unwrap().data(), &db, 1e-5, "dbeta");
        }
    }

    #[test]
    fn inference_fast_matches_naive() {
        let mut rng = Rng::new(22);
        for shape in SHAPES {
            let d = dims(shape);
            let x = random(shape, &mut rng, -3.0, 3.0);
            let gamma = random(&[d.c], &mut rng, 0.5, 1.5);
            let beta = random(&[d.c], &mut rng, -1.0, 1.0);
            let mean = random(&[d.c], &mut rng, -1.0, 1.0);
            let var = random(&[d.c], &mut rng, 0.1, 4.0);
            let (xv, gv, bv) = (
                Var::parameter(x.clone()),
                Var::parameter(gamma.clone()),
                Var::parameter(beta.clone()),
            );
            let y = batch_norm_inference(&xv, &gv, &bv, &mean, &var, EPS).unwrap();
            let f64s = |t: &Tensor| t.data().iter().map(|&v| v as f64).collect::<Vec<_>>();
            let y_ref = naive::normalize(
                x.data(),
                gamma.data(),
                beta.data(),
                &f64s(&mean),
                &f64s(&var),
                EPS,
                &d,
            );
            assert_close(y.value().data(), &y_ref, 1e-5, "y");

            let dy = random(shape, &mut rng, -1.0, 1.0);
            y.backward_with(dy.clone());
            let (dx, dg, db) = naive::inference_backward(
                dy.data(),
                x.data(),
                gamma.data(),
                mean.data(),
                var.data(),
                EPS,
                &d,
            );
            assert_close(xv.grad().unwrap().data(), &dx, 1e-5, "dx");
            assert_close(gv.grad().unwrap().data(), &dg, 1e-5, "dgamma");
            assert_close(bv.grad().unwrap().data(), &db, 1e-5, "dbeta");
        }
    }

    #[test]
    fn train_output_is_normalized_per_channel() {
        let mut rng = Rng::new(23);
        for shape in [&[256, 6][..], &[8, 5, 9, 9]] {
            let d = dims(shape);
            let x = random(shape, &mut rng, 10.0, 30.0);
            let one = |v| Var::constant(Tensor::full(&[d.c], v));
            let (y, mean, var) =
                batch_norm_train(&Var::constant(x), &one(1.0), &one(0.0), 1e-5).unwrap();
            assert!(
                mean.data().iter().all(|&m| (19.0..21.0).contains(&m)),
                "{mean:?}"
            );
            assert!(
                var.data().iter().all(|&v| (25.0..40.0).contains(&v)),
                "{var:?}"
            );
            let (ym, yv) = naive::stats(y.value().data(), &d);
            for c in 0..d.c {
                assert!(ym[c].abs() < 1e-5, "channel {c} mean {}", ym[c]);
                assert!((yv[c] - 1.0).abs() < 1e-3, "channel {c} var {}", yv[c]);
            }
        }
    }

    #[test]
    fn batch_norm_gradchecks() {
        let mut rng = Rng::new(24);
        for shape in [&[6, 3][..], &[2, 3, 3, 2]] {
            let c = shape[1];
            let x = random(shape, &mut rng, -2.0, 2.0);
            let gamma = random(&[c], &mut rng, 0.5, 1.5);
            let beta = random(&[c], &mut rng, -1.0, 1.0);
            let r = gradcheck::check(
                |v| batch_norm_train(&v[0], &v[1], &v[2], EPS).unwrap().0,
                &[x.clone(), gamma.clone(), beta.clone()],
                gradcheck::DEFAULT_STEP,
                7,
            );
            assert!(
                r.worst() < gradcheck::DEFAULT_TOLERANCE,
                "train {shape:?}: {r:?}"
            );
            assert!(
                r.grad_scale.iter().all(|&g| g > 0.0),
                "train {shape:?}: {r:?}"
            );

            let mean = random(&[c], &mut rng, -0.5, 0.5);
            let var = random(&[c], &mut rng, 0.5, 2.0);
            let r = gradcheck::check(
                |v| batch_norm_inference(&v[0], &v[1], &v[2], &mean, &var, EPS).unwrap(),
                &[x, gamma, beta],
                gradcheck::DEFAULT_STEP,
                8,
            );
            assert!(
                r.worst() < gradcheck::DEFAULT_TOLERANCE,
                "inference {shape:?}: {r:?}"
            );
            assert!(
                r.grad_scale.iter().all(|&g| g > 0.0),
                "inference {shape:?}: {r:?}"
            );
        }
    }

    #[test]
    fn shape_errors_are_errors() {
        let p = |s: &[usize]| Var::parameter(Tensor::ones(s));
        let x = p(&[2, 3, 4, 4]);
        let e = batch_norm_train(&x, &p(&[4]), &p(&[3]), EPS).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("gamma") && msg.contains("[4]") && msg.contains("3 channels"),
            "{msg}"
        );
        assert!(batch_norm_train(&x, &p(&[3]), &p(&[3, 1]), EPS).is_err());
        let e = batch_norm_train(&p(&[2, 3, 4]), &p(&[3]), &p(&[3]), EPS).unwrap_err();
        assert!(e.to_string().contains("[2, 3, 4]"), "{e}");
        assert!(batch_norm_train(&p(&[0, 3]), &p(&[3]), &p(&[3]), EPS).is_err());
        assert!(batch_norm_train(&x, &p(&[3]), &p(&[3]), -1.0).is_err());
        let (m, v) = (Tensor::zeros(&[3]), Tensor::ones(&[2]));
        assert!(batch_norm_inference(&x, &p(&[3]), &p(&[3]), &m, &v, EPS).is_err());
        assert!(batch_norm_inference(&p(&[3]), &p(&[3]), &p(&[3]), &m, &m, EPS).is_err());
    }

    #[test]
    fn batch_norm_is_deterministic() {
        let mut rng = Rng::new(25);
        let shape = [32, 16, 12, 12];
        let x = random(&shape, &mut rng, -2.0, 2.0);
        let dy = random(&shape, &mut rng, -1.0, 1.0);
        let gamma = random(&[16], &mut rng, 0.5, 1.5);
        let beta = random(&[16], &mut rng, -1.0, 1.0);
        let run = || {
            let (xv, gv, bv) = (
                Var::parameter(x.clone()),
                Var::parameter(gamma.clone()),
                Var::parameter(beta.clone()),
            );
            let (y, mean, var) = batch_norm_train(&xv, &gv, &bv, EPS).unwrap();
            let out = y.value();
            y.backward_with(dy.clone());
            [
                out.into_vec(),
                mean.into_vec(),
                var.into_vec(),
                xv.grad().unwrap().into_vec(),
                gv.grad().unwrap().into_vec(),
                bv.grad().unwrap().into_vec(),
            ]
        };
        let first = run();
        let bits = |v: &[Vec<f32>; 6]| -> Vec<Vec<u32>> {
            v.iter()
                .map(|t| t.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        assert_eq!(bits(&first), bits(&run()));
    }
}
