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
//! `*_post` variants apply a ReLU in the same passes (`Post`): batch norm then ReLU is
//! the unit of ResNet, VGG-BN and Inception, and `nn::Graph::run` fuses the pair. The
//! backward recomputes the values the ReLU saw from `x` (the same `x * scale + shift`
//! as the forward, bit for bit), so the fusion stores nothing extra.
//!
//! Precision and determinism: per-channel statistics in one read of `x`: each
//! contiguous `S`-row's mean and centred sum of squares in f32 with eight lanes, merged
//! over rows in f64 (Chan et al.), so no `E[x^2] - E[x]^2` cancellation. One thread
//! computes each channel's sums in a fixed order, so results are bit-identical for any
//! thread count.
//!
//! Fast paths:
//! - statistics parallel over channels, one pass over `x` (forward) and one over `dy`
//!   and `x` for both gradient sums (backward);
//! - the elementwise passes parallel over samples, per-channel `scale * x + shift` (one
//!   multiply-add per value), the ReLU and its mask folded in, written into unzeroed new
//!   buffers (`per_channel_map`).
//!
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

/// What runs on the normalized values in the same pass: nothing, or a ReLU (batch norm
/// followed by ReLU is the unit of ResNet, VGG-BN and Inception; fused, the ReLU costs no
/// pass of its own over memory, forward or backward).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    None,
    Relu,
}

impl Post {
    /// The gradient through the post-op, given the normalized value it saw. The ReLU's
    /// derivative at 0 is 0, as `ops::activation`'s.
    #[inline(always)]
    fn grad(self, g: f32, v: f32) -> f32 {
        match self {
            Post::None => g,
            Post::Relu => {
                if v > 0.0 {
                    g
                } else {
                    0.0
                }
            }
        }
    }
}

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

/// Two sums `(sum_i f(i).0, sum_i f(i).1)` in one loop, each in `lane_sum`'s order.
#[inline(always)]
fn lane_sum2(len: usize, f: impl Fn(usize) -> (f32, f32)) -> (f32, f32) {
    let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
    let full = len / 8 * 8;
    for base in (0..full).step_by(8) {
        for k in 0..8 {
            let (u, v) = f(base + k);
            a[k] += u;
            b[k] += v;
        }
    }
    let (mut ta, mut tb) = (0.0f32, 0.0f32);
    for i in full..len {
        let (u, v) = f(i);
        ta += u;
        tb += v;
    }
    let fold =
        |a: [f32; 8], t: f32| ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + t;
    (fold(a, ta), fold(b, tb))
}

/// For each channel, `acc = fold(acc, row of a, row of b, channel)` over the rows
/// `n = 0..N` in order, where a row is the contiguous `S` values of one (n, c). Runs in
/// parallel over channel ranges; one `A` per channel of `0..C`.
fn channel_fold<A: Clone + Send + Sync>(
    a: &[f32],
    b: &[f32],
    d: &BatchNormDims,
    init: A,
    fold: impl Fn(&mut A, &[f32], &[f32], usize) + Sync + Send,
) -> Vec<A> {
    let min_channels = PAR_MIN_WORK.div_ceil(d.m().max(1));
    let parts = parallel::par_map_ranges(d.c, min_channels, |cs: Range<usize>| {
        let mut acc = vec![init.clone(); cs.len()];
        for n in 0..d.n {
            for (k, c) in cs.clone().enumerate() {
                let off = (n * d.c + c) * d.s;
                fold(&mut acc[k], &a[off..off + d.s], &b[off..off + d.s], c);
            }
        }
        acc
    });
    parts.concat()
}

/// `out[n, c, s] = f(a, b, channel)` elementwise into a new `[N, C, S]` buffer, parallel
/// over samples. The buffer is not zeroed first, since every value is written once: a
/// zeroing pass (`vec![0.0; n]`) costs a write of the whole tensor, as much as the map's
/// own write.
fn per_channel_map(
    a: &[f32],
    b: &[f32],
    d: &BatchNormDims,
    f: impl Fn(f32, f32, usize) -> f32 + Sync + Send,
) -> Vec<f32> {
    let sample = d.c * d.s;
    let len = d.n * sample;
    assert!(a.len() == len && b.len() == len, "per_channel_map: lengths");
    let mut out = Vec::with_capacity(len);
    if len > 0 {
        let min_samples = PAR_MIN_WORK.div_ceil(sample);
        let spare = &mut out.spare_capacity_mut()[..len];
        parallel::par_chunks_mut(spare, sample, min_samples, |n0, chunk| {
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
                        o.write(f(x, y, c));
                    }
                }
            }
        });
    }
    // SAFETY: `par_chunks_mut` hands out pieces of whole samples covering all `len / sample
    // = N` samples of `spare`; each piece's loop writes every value of each of its samples
    // (channels 0..C times their S values, zipped with rows of the same length). So the
    // first `len` values are initialized.
    unsafe { out.set_len(len) };
    out
}

/// Per-channel mean and biased variance in one pass over memory: each row's mean and
/// centred sum of squares in f32 (the row is in L1 for its second loop), merged into the
/// channel's in f64 with Chan et al.'s update, rows in order `n = 0..N`. The same
/// two-pass accuracy as centring on the channel mean (no `E[x^2] - E[x]^2`
/// cancellation) for one read of `x` instead of two.
fn channel_moments(x: &[f32], d: &BatchNormDims) -> (Vec<f64>, Vec<f64>) {
    // (count, mean, M2) per channel.
    let folded = channel_fold(x, x, d, (0.0f64, 0.0f64, 0.0f64), |acc, r, _, _| {
        let len = r.len() as f32;
        let row_mean = lane_sum(r.len(), |i| r[i]) / len;
        let row_m2 = lane_sum(r.len(), |i| (r[i] - row_mean) * (r[i] - row_mean)) as f64;
        let (n_a, mean_a, m2_a) = *acc;
        let n_b = r.len() as f64;
        let n = n_a + n_b;
        let delta = row_mean as f64 - mean_a;
        *acc = (
            n,
            mean_a + delta * n_b / n,
            m2_a + row_m2 + delta * delta * n_a * n_b / n,
        );
    });
    let m = d.m() as f64;
    folded.iter().map(|&(_, mu, m2)| (mu, m2 / m)).unzip()
}

/// The per-channel affine map the normalization is: `y = x * scale + shift` with
/// `scale = gamma * inv_std`, `shift = beta - mean * scale`. The forward and the
/// backward (which recomputes the values a fused ReLU saw) both take them from here, so
/// they agree bit for bit.
fn affine_coefficients(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = (0..gamma.len()).map(|c| gamma[c] * inv_std[c]).collect();
    let shift = (0..gamma.len())
        .map(|c| beta[c] - mean[c] * scale[c])
        .collect();
    (scale, shift)
}

/// Training forward. Returns `y[N, C, S] = post(gamma * xhat + beta)`; writes the batch
/// `mean[C]`, biased `var[C]` and `inv_std[C] = 1 / sqrt(var + eps)`. `reduce`
/// (synchronized batch norm, `batchnorm_sync.rs`) sums the per-channel sums with the
/// count `M` appended, then the sums of squares centred on the global mean, over the
/// ranks: the statistics become the global batch's.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_forward(
    mean: &mut [f32],
    var: &mut [f32],
    inv_std: &mut [f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    post: Post,
    d: &BatchNormDims,
    reduce: Option<&ChannelSums<'_>>,
) -> Vec<f32> {
    let (mut mu, mut v) = channel_moments(x, d);
    if let Some(reduce) = reduce {
        // This rank's M2 = M var, re-centred on the global mean (exact:
        // sum (x - g)^2 = M2 + M (mean - g)^2), summed over the ranks.
        let m = d.m() as f64;
        let mut sums: Vec<f64> = mu.iter().map(|&u| u * m).collect();
        sums.push(m);
        reduce(&mut sums);
        let m_all = sums.pop().expect("pushed");
        let global: Vec<f64> = sums.iter().map(|&s| s / m_all).collect();
        let mut sq: Vec<f64> = (0..d.c)
            .map(|c| m * v[c] + m * (mu[c] - global[c]) * (mu[c] - global[c]))
            .collect();
        reduce(&mut sq);
        v = sq.iter().map(|&s| s / m_all).collect();
        mu = global;
    }
    for c in 0..d.c {
        mean[c] = mu[c] as f32;
        var[c] = v[c] as f32;
        inv_std[c] = (1.0 / (v[c] + eps as f64).sqrt()) as f32;
    }
    affine_forward(x, gamma, beta, mean, inv_std, post, d)
}

/// `y = post(x * scale + shift)` per channel (one multiply-add per value).
#[allow(clippy::too_many_arguments)]
fn affine_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    post: Post,
    d: &BatchNormDims,
) -> Vec<f32> {
    let (scale, shift) = affine_coefficients(gamma, beta, mean, inv_std);
    match post {
        Post::None => per_channel_map(x, x, d, |x, _, c| x * scale[c] + shift[c]),
        Post::Relu => per_channel_map(x, x, d, |x, _, c| (x * scale[c] + shift[c]).max(0.0)),
    }
}

/// Inference batch norm as the per-channel map `y = x * scale + shift` (what
/// `batch_norm_inference` computes), for folding into the conv before it.
pub fn inference_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps as f64).sqrt()) as f32)
        .collect();
    affine_coefficients(gamma, beta, mean, &inv_std)
}

/// Inference forward with given statistics. Returns `y = post(...)`; writes `inv_std[C]`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_inference_forward(
    inv_std: &mut [f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
    post: Post,
    d: &BatchNormDims,
) -> Vec<f32> {
    for (is, &v) in inv_std.iter_mut().zip(var) {
        *is = (1.0 / (v as f64 + eps as f64).sqrt()) as f32;
    }
    affine_forward(x, gamma, beta, mean, inv_std, post, d)
}

/// Per-channel `(sum(g), sum(g * (x - mean)))` in one pass over `dy` and `x`, where `g`
/// is `dy` through the post-op (`post.grad(dy, x * scale + shift)`).
#[allow(clippy::too_many_arguments)]
fn gradient_sums(
    dy: &[f32],
    x: &[f32],
    mean: &[f32],
    scale: &[f32],
    shift: &[f32],
    post: Post,
    d: &BatchNormDims,
) -> (Vec<f64>, Vec<f64>) {
    let folded = channel_fold(dy, x, d, (0.0f64, 0.0f64), |acc, g, r, c| {
        let (mu, s, t) = (mean[c], scale[c], shift[c]);
        let (a, b) = match post {
            Post::None => lane_sum2(g.len(), |i| (g[i], g[i] * (r[i] - mu))),
            Post::Relu => lane_sum2(g.len(), |i| {
                let gi = post.grad(g[i], r[i] * s + t);
                (gi, gi * (r[i] - mu))
            }),
        };
        acc.0 += a as f64;
        acc.1 += b as f64;
    });
    folded.into_iter().unzip()
}

/// Training backward. Returns `dx[N, C, S]`; writes `dgamma[C]`, `dbeta[C]`. With `g` the
/// gradient through the post-op, `xhat = (x - mean) * inv_std` and `k = gamma *
/// inv_std`, the fused formula `dx = k / M * (M g - sum(g) - xhat sum(g xhat))` is
/// evaluated as `k * g + b * (x - mean) + c0` with per-channel
/// `b = -k * inv_std * sum(g xhat) / M` and `c0 = -k * sum(g) / M`. `reduce`
/// (synchronized batch norm) sums `sum(g)`, `sum(g * (x - mean))` and `M` (appended) over
/// the ranks for `dx`; `dgamma` and `dbeta` stay this rank's (the gradient exchange sums
/// them, as any parameter's).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    post: Post,
    d: &BatchNormDims,
    reduce: Option<&ChannelSums<'_>>,
) -> Vec<f32> {
    let (scale, shift) = affine_coefficients(gamma, beta, mean, inv_std);
    let (sum_g, sum_g_xc) = gradient_sums(dy, x, mean, &scale, &shift, post, d);
    for c in 0..d.c {
        dbeta[c] = sum_g[c] as f32;
        dgamma[c] = (sum_g_xc[c] * inv_std[c] as f64) as f32;
    }
    // The sums dx needs: this rank's, or the global batch's.
    let (mut m, mut dg_all, mut db_all) = (d.m() as f32, dgamma.to_vec(), dbeta.to_vec());
    if let Some(reduce) = reduce {
        let mut buf = [sum_g, sum_g_xc].concat();
        buf.push(d.m() as f64);
        reduce(&mut buf);
        m = buf[2 * d.c] as f32;
        for c in 0..d.c {
            db_all[c] = buf[c] as f32;
            dg_all[c] = (buf[d.c + c] * inv_std[c] as f64) as f32;
        }
    }
    let k = &scale;
    let b: Vec<f32> = (0..d.c)
        .map(|c| -k[c] * inv_std[c] * dg_all[c] / m)
        .collect();
    let c0: Vec<f32> = (0..d.c).map(|c| -k[c] * db_all[c] / m).collect();
    match post {
        Post::None => per_channel_map(dy, x, d, |g, x, c| k[c] * g + b[c] * (x - mean[c]) + c0[c]),
        Post::Relu => per_channel_map(dy, x, d, |g, x, c| {
            let g = post.grad(g, x * scale[c] + shift[c]);
            k[c] * g + b[c] * (x - mean[c]) + c0[c]
        }),
    }
}

/// Inference backward: returns `dx = gamma * inv_std * g`; writes `dgamma`, `dbeta`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_inference_backward(
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    post: Post,
    d: &BatchNormDims,
) -> Vec<f32> {
    let (scale, shift) = affine_coefficients(gamma, beta, mean, inv_std);
    let (sum_g, sum_g_xc) = gradient_sums(dy, x, mean, &scale, &shift, post, d);
    for c in 0..d.c {
        dbeta[c] = sum_g[c] as f32;
        dgamma[c] = (sum_g_xc[c] * inv_std[c] as f64) as f32;
    }
    let k = &scale;
    match post {
        Post::None => per_channel_map(dy, dy, d, |g, _, c| k[c] * g),
        Post::Relu => per_channel_map(dy, x, d, |g, x, c| {
            k[c] * post.grad(g, x * scale[c] + shift[c])
        }),
    }
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
    batch_norm_train_post(x, gamma, beta, eps, Post::None)
}

/// `batch_norm_train` with `post` (a ReLU) applied in the same passes.
pub fn batch_norm_train_post(
    x: &Var,
    gamma: &Var,
    beta: &Var,
    eps: f32,
    post: Post,
) -> Result<(Var, Tensor, Tensor)> {
    if post == Post::Relu && crate::engine::kinks::active() {
        // Gradient checking with frozen ReLU masks: the relu op records and replays them.
        let (y, mean, var) = batch_norm_train_post(x, gamma, beta, eps, Post::None)?;
        return Ok((crate::ops::activation::relu(&y), mean, var));
    }
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
    let (xv, gv, bv) = (
        x.value().contiguous_f32(),
        gamma.value().contiguous_f32(),
        beta.value().contiguous_f32(),
    );
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
    let y = batch_norm_train_forward(
        &mut mean,
        &mut var,
        &mut inv_std,
        xv.data(),
        gv.data(),
        bv.data(),
        eps,
        post,
        &d,
        sync.is_some().then_some(&sum_stats as &ChannelSums<'_>),
    );
    let m_all = m_all.get();
    let (mean_t, var_t) = (
        Tensor::from_vec(mean.clone(), &[d.c]),
        Tensor::from_vec(var, &[d.c]),
    );
    let name = match post {
        Post::None => "batch_norm_train",
        Post::Relu => "batch_norm_relu_train",
    };
    let y = Var::from_op(
        Tensor::from_vec(y, &shape),
        name,
        &[x, gamma, beta],
        move |dy| {
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d.c], vec![0.0f32; d.c]);
            // The gradient sums over the ranks in this rank's scale; the count is the
            // forward's global one.
            let sum_grads = |b: &mut [f64]| {
                if let Some(s) = &sync {
                    s.sum_grads(&mut b[..2 * d.c]);
                    b[2 * d.c] = m_all;
                }
            };
            let dx = batch_norm_train_backward(
                &mut dgamma,
                &mut dbeta,
                dy.data(),
                xv.data(),
                gv.data(),
                bv.data(),
                &mean,
                &inv_std,
                post,
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
    batch_norm_inference_post(x, gamma, beta, mean, var, eps, Post::None)
}

/// `batch_norm_inference` with `post` (a ReLU) applied in the same passes.
pub fn batch_norm_inference_post(
    x: &Var,
    gamma: &Var,
    beta: &Var,
    mean: &Tensor,
    var: &Tensor,
    eps: f32,
    post: Post,
) -> Result<Var> {
    if post == Post::Relu && crate::engine::kinks::active() {
        let y = batch_norm_inference_post(x, gamma, beta, mean, var, eps, Post::None)?;
        return Ok(crate::ops::activation::relu(&y));
    }
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
    let (xv, gv, bv) = (
        x.value().contiguous_f32(),
        gamma.value().contiguous_f32(),
        beta.value().contiguous_f32(),
    );
    let mut inv_std = vec![0.0f32; d.c];
    let y = batch_norm_inference_forward(
        &mut inv_std,
        xv.data(),
        gv.data(),
        bv.data(),
        mean.data(),
        var.data(),
        eps,
        post,
        &d,
    );
    let mean = mean.clone();
    let name = match post {
        Post::None => "batch_norm_inference",
        Post::Relu => "batch_norm_relu_inference",
    };
    Ok(Var::from_op(
        Tensor::from_vec(y, &shape),
        name,
        &[x, gamma, beta],
        move |dy| {
            let (mut dgamma, mut dbeta) = (vec![0.0f32; d.c], vec![0.0f32; d.c]);
            let dx = batch_norm_inference_backward(
                &mut dgamma,
                &mut dbeta,
                dy.data(),
                xv.data(),
                gv.data(),
                bv.data(),
                mean.data(),
                &inv_std,
                post,
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

    /// The fused batch norm + ReLU against the two ops it replaces, in both modes: the
    /// same outputs and gradients bit for bit (the backward recomputes the values the
    /// ReLU saw with the forward's own arithmetic).
    #[test]
    fn fused_relu_is_relu_of_batch_norm() {
        let mut rng = Rng::new(26);
        for shape in [&[9, 5][..], &[6, 4, 5, 3], &[3, 8, 7, 7]] {
            let d = dims(shape);
            let x = random(shape, &mut rng, -2.0, 3.0);
            let gamma = random(&[d.c], &mut rng, -1.5, 1.5);
            let beta = random(&[d.c], &mut rng, -1.0, 1.0);
            let (mean, var) = (
                random(&[d.c], &mut rng, -0.5, 0.5),
                random(&[d.c], &mut rng, 0.5, 2.0),
            );
            let dy = random(shape, &mut rng, -1.0, 1.0);
            for training in [true, false] {
                let run = |fused: bool| {
                    let (xv, gv, bv) = (
                        Var::parameter(x.clone()),
                        Var::parameter(gamma.clone()),
                        Var::parameter(beta.clone()),
                    );
                    let post = if fused { Post::Relu } else { Post::None };
                    let y = if training {
                        batch_norm_train_post(&xv, &gv, &bv, EPS, post).unwrap().0
                    } else {
                        batch_norm_inference_post(&xv, &gv, &bv, &mean, &var, EPS, post).unwrap()
                    };
                    let y = if fused {
                        y
                    } else {
                        crate::ops::activation::relu(&y)
                    };
                    let out = y.value().into_vec();
                    y.backward_with(dy.clone());
                    [
                        out,
                        xv.grad().unwrap().into_vec(),
                        gv.grad().unwrap().into_vec(),
                        bv.grad().unwrap().into_vec(),
                    ]
                };
                let (fused, plain) = (run(true), run(false));
                assert_eq!(fused, plain, "{shape:?} training {training}");
                let zeros = fused[0].iter().filter(|&&v| v == 0.0).count();
                assert!(
                    zeros > 0 && zeros < fused[0].len(),
                    "{shape:?}: the ReLU must cut"
                );
            }
        }
    }

    #[test]
    fn batch_norm_gradchecks() {
        let mut rng = Rng::new(24);
        for shape in [&[6, 3][..], &[2, 3, 3, 2]] {
            let c = shape[1];
            // The fused ReLU's gradient too, on channels shifted far to either side of
            // the kink (|xhat| < 2.3 for 6 values, so no difference step crosses it);
            // `fused_relu_is_relu_of_batch_norm` covers the mask at the kink.
            let (x0, g0) = (
                random(shape, &mut rng, -2.0, 2.0),
                random(&[c], &mut rng, 0.4, 0.6),
            );
            let b0 = Tensor::from_vec(vec![3.0, -3.0, 2.5], &[c]);
            let r = gradcheck::check(
                |v| {
                    batch_norm_train_post(&v[0], &v[1], &v[2], EPS, Post::Relu)
                        .unwrap()
                        .0
                },
                &[x0, g0, b0],
                gradcheck::DEFAULT_STEP,
                9,
            );
            assert!(
                r.worst() < gradcheck::DEFAULT_TOLERANCE,
                "relu {shape:?}: {r:?}"
            );
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
