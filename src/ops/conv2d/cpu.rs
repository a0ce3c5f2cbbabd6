//! Fast CPU kernels for conv2d: im2col + GEMM (`ops::matmul::sgemm`), per group,
//! parallel over the batch. Dimension letters as in `mod.rs`.
//!
//! Fast paths and the decisions behind them:
//! - **Several images per GEMM.** The column matrix of a group holds `B` images side by
//!   side, `col [K, B*P]`, so the GEMM is `[OCG, K] x [K, B*P]`: MNIST-sized maps
//!   (P = 121 for 11x11) would otherwise give skinny per-image GEMMs. `B` is picked so
//!   the GEMM has about `Tuning::target_cols` columns; the result `[OCG, B*P]` is then
//!   copied to `[B, OC, P]`, adding the bias on the way. When one image is enough
//!   (28x28 maps) the GEMM writes straight into the output, onto the bias.
//! - **1x1, stride 1, unpadded** (`Conv2dDims::is_pointwise`): an image's channel planes
//!   already are its column matrix; one GEMM per image and group, no im2col, no col2im.
//!   Their weight gradient takes the direct kernel (`Tuning::direct_pointwise_weight`).
//! - **im2col / col2im by row segments.** For each kernel tap the range of output
//!   positions that land inside the input is computed once; padding is written as zeros
//!   in place (column buffers are never cleared first) and stride-1 rows are plain slice
//!   copies / adds that the compiler vectorizes.
//! - **Parallel over the batch** in the fixed chunks of `ops::parallel` with
//!   single-threaded GEMMs inside; when there is only one chunk (batch 1, tiny work) the
//!   GEMMs get the pool instead. Backward-weight sums per-chunk partial dW/db in chunk
//!   order, so results are bit-reproducible for a given thread count.
//! - **Scratch reuse.** Column buffers live in a per-thread scratch vector that is kept
//!   between calls (up to `SCRATCH_KEEP` floats), so a training step does not page-fault
//!   fresh megabytes each time.
//!
//! - **Direct and Winograd kernels** for stride-1 convs (`direct.rs`, `winograd.rs`),
//!   chosen per kernel by `direct_cpu` and `winograd_cpu` (measurements in
//!   BENCHMARKS.md, "Design measurements"). Strided convs with 2x2+ kernels take the
//!   direct kernels too (`direct::Phases`, `direct_strided.rs`): resnet20's 16->32 3x3
//!   stride-2 conv, batch 128, one thread's CPU time, went from 5.2 / 5.8 / 7.0 ms
//!   (forward / input gradient / weight gradient) to 3.7 / 4.0 / 3.7 ms.
//!
//! - **Unzeroed outputs** on the Winograd F(4x4) path (`conv2d_forward_new`,
//!   `conv2d_backward_input_new`, what the op calls): it writes each value once, so a
//!   zeroing pass first would double the writes of the tensor.
//!
//! Not special-cased (correct through the general path, not fast): depthwise convs
//! (`OCG = 1` makes each group's GEMM a matrix-vector product).

use super::direct::{self, Avx512};
use super::direct_strided::StridedInput;
use super::winograd::{self, Wino};
use super::winograd4::{self, Wino4};
use super::winograd_weight::{self, WinoWeight};
use super::Conv2dDims;
use crate::ops::matmul::sgemm;
use crate::ops::parallel;
use std::cell::Cell;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Knobs of the kernels; tests vary them to drive every path with small shapes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Columns a GEMM should have: images are grouped until `B*P` reaches it. Measured
    /// on the MNIST layers (2-vCPU AMD EPYC Zen 4, `examples/conv2d_timing.rs`): 256 to
    /// 2048 are within noise of each other, while filling a 1 MiB buffer regardless (43
    /// images of 28x28 for a 1->32 3x3 conv) made the small-K first layers up to 1.7x
    /// slower, likely because the GEMM's result and its copy to NCHW no longer fit in
    /// L2. One image alone has enough columns from 23x23 outputs up.
    pub target_cols: usize,
    /// Most floats in a column buffer, whatever `target_cols` asks for (a cache-sized
    /// bound for layers with many channels).
    pub col_budget: usize,
    /// Least work (flops) worth a parallel chunk of images; below it rayon's dispatch
    /// (microseconds) would cost more than it saves.
    pub min_chunk_flops: usize,
    /// Largest `direct::waste` (computed positions per useful output) at which a
    /// conv takes the direct kernels of `direct.rs` instead of im2col + GEMM; 0 never.
    pub direct_waste: f64,
    /// Least taps (`KH*KW`) for which a strided conv takes the direct kernels (through
    /// `direct::Phases`): resnet20's 1x1 stride-2 projections ran 1.2x to 2.4x slower
    /// there than on im2col + GEMM (its im2col is a plain subsampling, and the kernels'
    /// phase copies cost as much as the 16 or 32 taps), its 3x3 stride-2 convs faster.
    pub direct_strided_taps: usize,
    /// Whether the weight gradient of 1x1 stride-1 unpadded convs takes the direct kernel
    /// (dot products along the planes) instead of one GEMM per image. On inception-mini's
    /// 1x1 convs (batch 128, one thread's CPU time): 32->16 28x28 5.6 -> 2.7 ms, 64->32
    /// 28x28 13.0 -> 7.4 ms, 120->48 14x14 8.6 -> 4.3 ms, 128->64 7x7 1.7 -> 1.9 ms. Their
    /// forward and input gradient stay on the GEMMs: the direct kernels were 0.8x to 1.3x
    /// their time there, slower on the smallest layer.
    pub direct_pointwise_weight: bool,
    /// Whether 3x3 stride-1 convs with 8+ channels each way take Winograd for the forward
    /// and the input gradient (F(4x4, 3x3) or F(2x2, 3x3), as `winograd4` says).
    pub winograd: bool,
    /// Whether those convs' forward and input gradient take F(4x4, 3x3)
    /// (`winograd4.rs`, channels-last) instead of F(2x2, 3x3) (`winograd.rs`): 0.53x to
    /// 0.83x F(2x2)'s time on deep-convnet's layers on two threads (BENCHMARKS.md,
    /// "Design measurements").
    pub winograd4: bool,
    /// Least tiles (2x2 output blocks) in the batch for Winograd.
    pub winograd_min_tiles: usize,
    /// Whether the weight gradient of those convs takes Winograd too
    /// (`winograd_weight.rs`): 0.30x to 0.80x the direct kernel's time on deep-convnet's
    /// layers on two threads (BENCHMARKS.md, "Design measurements").
    pub winograd_weight: bool,
}

pub(crate) const TUNING: Tuning = Tuning {
    target_cols: 512,
    col_budget: 1 << 18,
    min_chunk_flops: 1 << 18,
    direct_waste: 1.3,
    direct_strided_taps: 4,
    direct_pointwise_weight: true,
    winograd: true,
    winograd4: true,
    winograd_min_tiles: 1024,
    winograd_weight: true,
};

/// Which direct kernel `direct_cpu` is asked about: their register tiles need different
/// least channel counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kernel {
    Forward,
    BackwardInput,
    BackwardWeight,
}

/// The kernel family a call ran. Only the last is portable; the others need the
/// `Avx512` token, so on a CPU without AVX-512 every call is `Im2colGemm`, and the tests
/// that compare the fast kernels with the naive ones read this to say (and check) which
/// of them they covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ConvPath {
    /// F(4x4, 3x3), channels-last (`winograd4.rs`).
    Winograd4x4,
    /// F(2x2, 3x3): `winograd.rs` for the forward and input gradient,
    /// `winograd_weight.rs` for the weight gradient.
    Winograd2x2,
    /// `direct.rs`.
    Direct,
    /// im2col + GEMM (or one GEMM for 1x1 convs): every CPU.
    Im2colGemm,
}

#[cfg(test)]
thread_local! {
    static PATHS_TAKEN: std::cell::RefCell<Vec<(Kernel, ConvPath)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Notes the path a `*_tuned` call dispatched to (kept only in test builds, on the
/// calling thread: the dispatch happens there, before any parallel chunk).
fn took(_kernel: Kernel, _path: ConvPath) {
    #[cfg(test)]
    PATHS_TAKEN.with(|p| p.borrow_mut().push((_kernel, _path)));
}

/// The paths the calls on this thread took since the last call (test builds only).
#[cfg(test)]
pub(crate) fn paths_taken() -> Vec<(Kernel, ConvPath)> {
    PATHS_TAKEN.with(|p| std::mem::take(&mut *p.borrow_mut()))
}

/// The CPU token when `d` takes the direct kernel `which` under `t`. The forward kernel's
/// tile spans 8 output channels (for the backward to the input, 8 input channels): with
/// fewer it runs 1-row tiles that are bound by loads, and the GEMM path was faster (1-channel
/// convs' input gradient: 0.47 vs 0.73 ms for 1->32 3x3, 0.64 vs 1.42 ms for 1->30 5x5, batch
/// 64, one thread's CPU time). The weight-gradient tile spans 4 output channels. The input
/// gradient also needs `direct::backward_input_work` within `direct_waste` (unpadded
/// convs on small maps stay on the GEMM path).
fn direct_cpu(d: &Conv2dDims, t: &Tuning, which: Kernel) -> Option<Avx512> {
    let pointwise_ok = t.direct_pointwise_weight && which == Kernel::BackwardWeight;
    if (d.is_pointwise() && !pointwise_ok)
        || !direct::applies(d)
        || direct::waste(d) > t.direct_waste
    {
        return None;
    }
    if d.stride != (1, 1) && d.kh * d.kw < t.direct_strided_taps {
        return None;
    }
    let rows = match which {
        Kernel::Forward => d.ocg() >= 8,
        Kernel::BackwardInput => d.cg() >= 8 && direct::backward_input_work(d) <= t.direct_waste,
        Kernel::BackwardWeight => d.ocg() >= 4,
    };
    if rows {
        Avx512::detect()
    } else {
        None
    }
}

/// The CPU token when `d` takes Winograd for the kernel `which` under `t` (F(4x4, 3x3)
/// or F(2x2, 3x3) for the forward and input gradient as `t.winograd4` says). With fewer
/// than 8 channels either way (a network's 1-channel first layer) the direct kernels
/// stay. Each call transforms the whole kernel, so small batches stay direct too:
/// deep-convnet's batch-1 latency went from 0.16 to 0.39 ms with F(2x2) at batch 1.
fn winograd_cpu(d: &Conv2dDims, t: &Tuning, which: Kernel) -> Option<Avx512> {
    if !t.winograd || !winograd::applies(d) || d.c < 8 || d.oc < 8 {
        return None;
    }
    if d.n * d.oh.div_ceil(2) * d.ow.div_ceil(2) < t.winograd_min_tiles {
        return None;
    }
    match which {
        Kernel::Forward | Kernel::BackwardInput => Avx512::detect(),
        Kernel::BackwardWeight if t.winograd_weight => Avx512::detect(),
        Kernel::BackwardWeight => None,
    }
}

/// Scratch buffers larger than this (floats, 64 MiB) are freed after use, not kept.
const SCRATCH_KEEP: usize = 1 << 24;

thread_local! {
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on a scratch slice of `len` floats with unspecified contents. The buffer is
/// taken out of the thread-local slot while in use, so a nested call on the same thread
/// (a rayon worker running another conv while it waits inside a parallel GEMM) gets a
/// fresh buffer instead of a conflicting borrow.
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH.with(Cell::take);
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    if buf.len() <= SCRATCH_KEEP {
        SCRATCH.with(|s| s.set(buf));
    }
    r
}

/// Smallest number of images per parallel chunk.
fn min_chunk_images(d: &Conv2dDims, t: &Tuning) -> usize {
    let flops_per_image = (2 * d.oc * d.k() * d.p()).max(1);
    t.min_chunk_flops.div_ceil(flops_per_image).max(1)
}

/// Images per GEMM for a chunk of `imgs` images: enough for `target_cols` columns, no
/// more than fit `col_budget` (but at least one), balanced so that the chunk's last GEMM
/// is not a sliver.
fn images_per_gemm(imgs: usize, d: &Conv2dDims, t: &Tuning) -> usize {
    let cap = (t.col_budget / (d.k() * d.p()).max(1))
        .min(t.target_cols.div_ceil(d.p().max(1)))
        .max(1);
    let gemms = imgs.div_ceil(cap).max(1);
    imgs.div_ceil(gemms).max(1)
}

/// Output positions `lo..hi` along one axis whose input index
/// `o*stride + tap - pad` lies in `0..len` (`tap` = kernel index times dilation);
/// `(0, 0)` when there are none.
fn valid_range(
    out_len: usize,
    len: usize,
    tap: usize,
    pad: usize,
    stride: usize,
) -> (usize, usize) {
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    let hi = if len + pad > tap {
        ((len + pad - tap - 1) / stride + 1).min(out_len)
    } else {
        0
    };
    if lo < hi {
        (lo, hi)
    } else {
        (0, 0)
    }
}

/// `dst.copy_from_slice(src)` for short rows, without a call to `memcpy`: im2col copies
/// rows of 3 to 28 floats on the MNIST nets, where the call and its size dispatch cost
/// more than the copy itself (memmove was 6% of a keras-cnn training profile, all of it
/// from im2col). Fixed-size 8- and 4-float moves, the last one overlapping.
#[inline(always)]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    assert_eq!(n, src.len());
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            let s: [f32; 8] = src[i..i + 8].try_into().unwrap();
            dst[i..i + 8].copy_from_slice(&s);
            i += 8;
        }
        if i < n {
            let s: [f32; 8] = src[n - 8..].try_into().unwrap();
            dst[n - 8..].copy_from_slice(&s);
        }
    } else if n >= 4 {
        let (a, b): ([f32; 4], [f32; 4]) = (
            src[..4].try_into().unwrap(),
            src[n - 4..].try_into().unwrap(),
        );
        dst[..4].copy_from_slice(&a);
        dst[n - 4..].copy_from_slice(&b);
    } else {
        // No loop, so LLVM cannot turn it back into a `memcpy` call.
        if n > 0 {
            dst[0] = src[0];
        }
        if n > 1 {
            dst[1] = src[1];
        }
        if n > 2 {
            dst[2] = src[2];
        }
    }
}

/// `dst.fill(0.0)` for the short padding runs of im2col (0 to 2 floats per row for the
/// padded MNIST convs), without a call to `memset`; long runs still use `fill`.
#[inline(always)]
fn zero_short(dst: &mut [f32]) {
    let n = dst.len();
    if n >= 8 {
        dst.fill(0.0);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&[0.0; 4]);
        dst[n - 4..].copy_from_slice(&[0.0; 4]);
    } else {
        if n > 0 {
            dst[0] = 0.0;
        }
        if n > 1 {
            dst[1] = 0.0;
        }
        if n > 2 {
            dst[2] = 0.0;
        }
    }
}

/// Column matrix of group `g` for the `imgs` images at the start of `inp`:
/// `col[(ci, ki, kj), (img, oy, ox)] = x[img, g*CG + ci, oy*SH + ki*DH - PT, ox*SW + kj*DW - PL]`,
/// zero in the padding. Writes every entry of `col [K, imgs*P]`.
fn im2col(col: &mut [f32], inp: &[f32], imgs: usize, g: usize, d: &Conv2dDims) {
    let (p, plane) = (d.p(), d.h * d.w);
    let (sh, sw) = d.stride;
    let (dh, dw) = d.dilation;
    let mut rows = col.chunks_exact_mut(imgs * p);
    for ci in 0..d.cg() {
        for ki in 0..d.kh {
            let (ylo, yhi) = valid_range(d.oh, d.h, ki * dh, d.pad_top, sh);
            for kj in 0..d.kw {
                let (xlo, xhi) = valid_range(d.ow, d.w, kj * dw, d.pad_left, sw);
                let row = rows.next().expect("im2col: col shorter than K rows");
                for (img, dst) in row.chunks_exact_mut(p).enumerate() {
                    let src = &inp[(img * d.c + g * d.cg() + ci) * plane..][..plane];
                    zero_short(&mut dst[..ylo * d.ow]);
                    zero_short(&mut dst[yhi * d.ow..]);
                    let inside = &mut dst[ylo * d.ow..yhi * d.ow]; // rows ylo..yhi
                    if xlo == xhi || ylo == yhi {
                        inside.fill(0.0);
                        continue;
                    }
                    // The per-row work is kept to one bounds-checked copy: MNIST rows are
                    // 3 to 26 floats, so index arithmetic and branches per row cost as
                    // much as the copy (im2col was 18% of a keras-cnn training profile).
                    if xlo > 0 || xhi < d.ow {
                        for drow in inside.chunks_exact_mut(d.ow) {
                            zero_short(&mut drow[..xlo]);
                            zero_short(&mut drow[xhi..]);
                        }
                    }
                    let len = xhi - xlo;
                    let ix0 = xlo * sw + kj * dw - d.pad_left;
                    let mut s = (ylo * sh + ki * dh - d.pad_top) * d.w + ix0;
                    for drow in inside.chunks_exact_mut(d.ow) {
                        let seg = &mut drow[xlo..xhi];
                        if sw == 1 {
                            copy_short(seg, &src[s..s + len]);
                        } else {
                            for (v, &x) in seg.iter_mut().zip(src[s..].iter().step_by(sw)) {
                                *v = x;
                            }
                        }
                        s += sh * d.w;
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each entry of `dcol [K, imgs*P]` (group `g`) to the
/// input gradient it came from. `dinp` holds the `imgs` images and is accumulated into.
fn col2im(dinp: &mut [f32], dcol: &[f32], imgs: usize, g: usize, d: &Conv2dDims) {
    let (p, plane) = (d.p(), d.h * d.w);
    let (sh, sw) = d.stride;
    let (dh, dw) = d.dilation;
    let mut rows = dcol.chunks_exact(imgs * p);
    for ci in 0..d.cg() {
        for ki in 0..d.kh {
            let (ylo, yhi) = valid_range(d.oh, d.h, ki * dh, d.pad_top, sh);
            for kj in 0..d.kw {
                let (xlo, xhi) = valid_range(d.ow, d.w, kj * dw, d.pad_left, sw);
                let row = rows.next().expect("col2im: dcol shorter than K rows");
                if xlo == xhi || ylo == yhi {
                    continue;
                }
                let ix0 = xlo * sw + kj * dw - d.pad_left;
                let len = xhi - xlo;
                for (img, src) in row.chunks_exact(p).enumerate() {
                    let dst = &mut dinp[(img * d.c + g * d.cg() + ci) * plane..][..plane];
                    // As in im2col: one bounds-checked add per row, nothing else.
                    let mut at = (ylo * sh + ki * dh - d.pad_top) * d.w + ix0;
                    for srow in src[ylo * d.ow..yhi * d.ow].chunks_exact(d.ow) {
                        let seg = &srow[xlo..xhi];
                        if sw == 1 {
                            for (a, &v) in dst[at..at + len].iter_mut().zip(seg) {
                                *a += v;
                            }
                        } else {
                            for (a, &v) in dst[at..].iter_mut().step_by(sw).zip(seg) {
                                *a += v;
                            }
                        }
                        at += sh * d.w;
                    }
                }
            }
        }
    }
}

/// Copies group `g`'s output-channel planes of `imgs` images of `dout [imgs, OC, P]` into
/// `dst [OCG, imgs*P]`, the layout the GEMMs over several images need.
fn gather_dout(dst: &mut [f32], dout: &[f32], imgs: usize, g: usize, d: &Conv2dDims) {
    let (p, ocg) = (d.p(), d.ocg());
    for (o, row) in dst.chunks_exact_mut(imgs * p).enumerate() {
        for (img, seg) in row.chunks_exact_mut(p).enumerate() {
            seg.copy_from_slice(&dout[img * d.out_image() + (g * ocg + o) * p..][..p]);
        }
    }
}

/// Sum of a slice with 8 independent accumulators (vectorizes; a plain `sum` is serial).
pub(super) fn sum8(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    acc.iter().sum::<f32>() + tail
}

/// Forward: `out [N, OC, OH, OW] = conv(inp [N, C, H, W], w [OC, CG, KH, KW]) + b [OC]`.
/// Overwrites `out`.
pub fn conv2d_forward(out: &mut [f32], inp: &[f32], w: &[f32], b: Option<&[f32]>, d: &Conv2dDims) {
    conv2d_forward_tuned(out, inp, w, b, d, false, &TUNING)
}

/// Forward with ReLU fused: `out = max(conv(inp, w) + b, 0)`, applied to each GEMM's
/// block of outputs while it is still in cache (no separate pass, no second buffer).
pub fn conv2d_relu_forward(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
) {
    conv2d_forward_tuned(out, inp, w, b, d, true, &TUNING)
}

/// `max(v, 0)` in place, the same expression as `ops::activation::relu` (so the fused
/// op is bit-identical to conv followed by relu, NaN included).
fn relu_in_place(y: &mut [f32]) {
    for v in y {
        *v = v.max(0.0);
    }
}

/// Whether F(4x4, 3x3) Winograd runs the forward or the input gradient of `d`.
fn winograd4_cpu(d: &Conv2dDims, t: &Tuning, which: Kernel) -> Option<Avx512> {
    winograd_cpu(d, t, which).filter(|_| t.winograd4)
}

/// `out` seen as values that may be uninitialized, for the kernels that only write it.
fn as_uninit(out: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of f32. The kernels this feeds write only
    // initialized f32 values through it (never `MaybeUninit::uninit()`), so `out` stays
    // initialized for its owner.
    unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// The forward into a new buffer. The Winograd F(4x4) path writes each output value
/// once, so its buffer is not zeroed first: the zeroing pass over a 128x16x28x28 output
/// cost as much as the kernel's own write of it. The other paths get zeros, as before.
pub(crate) fn conv2d_forward_new(
    inp: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
    relu: bool,
    t: &Tuning,
) -> Vec<f32> {
    let len = d.n * d.out_image();
    if let Some(cpu) = winograd4_cpu(d, t, Kernel::Forward) {
        let mut out = Vec::with_capacity(len);
        forward_winograd4(
            cpu,
            &mut out.spare_capacity_mut()[..len],
            inp,
            w,
            b,
            d,
            relu,
            t,
        );
        // SAFETY: `winograd4::images` writes every value of every image's output, and
        // `forward_chunks` hands it chunks covering all N images of the `len` values.
        unsafe { out.set_len(len) };
        return out;
    }
    let mut out = vec![0.0; len];
    conv2d_forward_tuned(&mut out, inp, w, b, d, relu, t);
    out
}

/// The input gradient into a new buffer, unzeroed on the Winograd F(4x4) path as in
/// `conv2d_forward_new`.
pub(crate) fn conv2d_backward_input_new(
    dout: &[f32],
    relu_y: Option<&[f32]>,
    w: &[f32],
    d: &Conv2dDims,
    t: &Tuning,
) -> Vec<f32> {
    let len = d.n * d.in_image();
    if let Some(cpu) = winograd4_cpu(d, t, Kernel::BackwardInput) {
        let mut dinp = Vec::with_capacity(len);
        let spare = &mut dinp.spare_capacity_mut()[..len];
        backward_input_winograd4(cpu, spare, dout, relu_y, w, d, t);
        // SAFETY: as in `conv2d_forward_new`: every value of all N images' gradients.
        unsafe { dinp.set_len(len) };
        return dinp;
    }
    let mut dinp = vec![0.0; len];
    conv2d_backward_input_tuned(&mut dinp, dout, relu_y, w, d, t);
    dinp
}

#[allow(clippy::too_many_arguments)]
fn forward_winograd4(
    cpu: Avx512,
    out: &mut [MaybeUninit<f32>],
    inp: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
    relu: bool,
    t: &Tuning,
) {
    took(Kernel::Forward, ConvPath::Winograd4x4);
    let geo = Wino4::forward(d);
    let u = winograd4::pack(w, d, &geo, false);
    forward_chunks(
        out,
        inp,
        d,
        min_chunk_images(d, t),
        |n| geo.scratch(n),
        |out, inp, s| winograd4::images(cpu, &geo, out, inp, None, &u, b, relu, s),
    );
}

fn backward_input_winograd4(
    cpu: Avx512,
    dinp: &mut [MaybeUninit<f32>],
    dout: &[f32],
    relu_y: Option<&[f32]>,
    w: &[f32],
    d: &Conv2dDims,
    t: &Tuning,
) {
    took(Kernel::BackwardInput, ConvPath::Winograd4x4);
    let geo = Wino4::backward_input(d);
    let u = winograd4::pack(w, d, &geo, true);
    backward_input_chunks(
        dinp,
        dout,
        relu_y,
        d,
        min_chunk_images(d, t),
        |n| geo.scratch(n),
        |dx, dy, y, s| winograd4::images(cpu, &geo, dx, dy, y, &u, None, false, s),
    );
}

pub(crate) fn conv2d_forward_tuned(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
    relu: bool,
    t: &Tuning,
) {
    debug_assert_eq!(out.len(), d.n * d.out_image());
    debug_assert_eq!(inp.len(), d.n * d.in_image());
    debug_assert_eq!(w.len(), d.oc * d.k());
    debug_assert!(b.is_none_or(|b| b.len() == d.oc));
    let min_imgs = min_chunk_images(d, t);
    if let Some(cpu) = winograd4_cpu(d, t, Kernel::Forward) {
        return forward_winograd4(cpu, as_uninit(out), inp, w, b, d, relu, t);
    }
    if let Some(cpu) = winograd_cpu(d, t, Kernel::Forward) {
        took(Kernel::Forward, ConvPath::Winograd2x2);
        let geo = Wino::forward(d);
        let u = winograd::pack_forward(w, d);
        forward_chunks(
            out,
            inp,
            d,
            min_imgs,
            |n| geo.scratch(n),
            |out, inp, s| winograd::images(cpu, &geo, out, inp, None, &u, b, relu, s),
        );
        return;
    }
    if let Some(cpu) = direct_cpu(d, t, Kernel::Forward) {
        took(Kernel::Forward, ConvPath::Direct);
        let wt = direct::pack_forward_weights(w, d);
        let len = direct::forward_scratch(d);
        forward_chunks(
            out,
            inp,
            d,
            min_imgs,
            |_| len,
            |out, inp, s| direct::forward_images(cpu, out, inp, &wt, b, d, relu, s),
        );
        return;
    }
    took(Kernel::Forward, ConvPath::Im2colGemm);
    let gemm_par = parallel::split(d.n, min_imgs).len() == 1;
    parallel::par_chunks_mut(out, d.out_image(), min_imgs, |first, out| {
        let imgs = out.len() / d.out_image();
        let inp = &inp[first * d.in_image()..(first + imgs) * d.in_image()];
        forward_chunk(out, inp, w, b, d, relu, t, gemm_par);
    });
}

/// Runs `f(out_chunk, inp_chunk, scratch)` over the batch in the fixed parallel chunks of
/// at least `min_imgs` images, each with a scratch slice of `scratch(images)` floats: the
/// frame of every kernel that works a chunk of whole images at a time.
fn forward_chunks<T: Send>(
    out: &mut [T],
    inp: &[f32],
    d: &Conv2dDims,
    min_imgs: usize,
    scratch: impl Fn(usize) -> usize + Sync,
    f: impl Fn(&mut [T], &[f32], &mut [f32]) + Sync,
) {
    parallel::par_chunks_mut(out, d.out_image(), min_imgs, |first, out| {
        let imgs = out.len() / d.out_image();
        let inp = &inp[first * d.in_image()..(first + imgs) * d.in_image()];
        with_scratch(scratch(imgs), |s| f(out, inp, s));
    });
}

/// The same for the input gradient: `f(dinp_chunk, dout_chunk, relu_y_chunk, scratch)`.
fn backward_input_chunks<T: Send>(
    dinp: &mut [T],
    dout: &[f32],
    relu_y: Option<&[f32]>,
    d: &Conv2dDims,
    min_imgs: usize,
    scratch: impl Fn(usize) -> usize + Sync,
    f: impl Fn(&mut [T], &[f32], Option<&[f32]>, &mut [f32]) + Sync,
) {
    parallel::par_chunks_mut(dinp, d.in_image(), min_imgs, |first, dinp| {
        let imgs = dinp.len() / d.in_image().max(1);
        let out = first * d.out_image()..(first + imgs) * d.out_image();
        let y = relu_y.map(|y| &y[out.clone()]);
        with_scratch(scratch(imgs), |s| f(dinp, &dout[out], y, s));
    });
}

#[allow(clippy::too_many_arguments)]
fn forward_chunk(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
    relu: bool,
    t: &Tuning,
    par: bool,
) {
    let imgs = out.len() / d.out_image();
    let (k, p, ocg) = (d.k(), d.p(), d.ocg());
    // The GEMM accumulates onto the bias when it writes straight into `out`.
    let fill_bias = |y: &mut [f32], g: usize| {
        if let Some(b) = b {
            for (plane, &bias) in y.chunks_exact_mut(p).zip(&b[g * ocg..]) {
                plane.fill(bias);
            }
        }
    };
    if d.is_pointwise() {
        for img in 0..imgs {
            for g in 0..d.groups {
                let y = &mut out[img * d.out_image() + g * ocg * p..][..ocg * p];
                let x = &inp[img * d.in_image() + g * k * p..][..k * p];
                fill_bias(y, g);
                let wg = &w[g * ocg * k..][..ocg * k];
                sgemm(ocg, k, p, wg, false, x, false, y, b.is_some(), par);
                if relu {
                    relu_in_place(y);
                }
            }
        }
        return;
    }
    let nb = images_per_gemm(imgs, d, t);
    let tmp_len = if nb > 1 { ocg * nb * p } else { 0 };
    with_scratch(k * nb * p + tmp_len, |buf| {
        let (col, tmp) = buf.split_at_mut(k * nb * p);
        for start in (0..imgs).step_by(nb) {
            let cnt = nb.min(imgs - start);
            let cols = cnt * p;
            let col = &mut col[..k * cols];
            let x = &inp[start * d.in_image()..(start + cnt) * d.in_image()];
            for g in 0..d.groups {
                im2col(col, x, cnt, g, d);
                let wg = &w[g * ocg * k..][..ocg * k];
                if cnt == 1 {
                    // [OCG, P] is contiguous in `out`: no copy needed.
                    let y = &mut out[start * d.out_image() + g * ocg * p..][..ocg * p];
                    fill_bias(y, g);
                    sgemm(ocg, k, p, wg, false, col, false, y, b.is_some(), par);
                    if relu {
                        relu_in_place(y);
                    }
                    continue;
                }
                let tmp = &mut tmp[..ocg * cols]; // [OCG, cnt*P]
                sgemm(ocg, k, cols, wg, false, col, false, tmp, false, par);
                for (o, row) in tmp.chunks_exact(cols).enumerate() {
                    let bias = b.map_or(0.0, |b| b[g * ocg + o]);
                    for (img, src) in row.chunks_exact(p).enumerate() {
                        let dst = &mut out[(start + img) * d.out_image() + (g * ocg + o) * p..];
                        if relu {
                            for (y, &v) in dst[..p].iter_mut().zip(src) {
                                *y = (v + bias).max(0.0);
                            }
                        } else {
                            for (y, &v) in dst[..p].iter_mut().zip(src) {
                                *y = v + bias;
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Backward to the input: `dinp [N, C, H, W]` from `dout [N, OC, OH, OW]` and `w`.
/// Overwrites `dinp`.
pub fn conv2d_backward_input(dinp: &mut [f32], dout: &[f32], w: &[f32], d: &Conv2dDims) {
    conv2d_backward_input_tuned(dinp, dout, None, w, d, &TUNING)
}

/// `dout` masked by `relu_y > 0` (`if y > 0 { g } else { 0 }`, what `conv2d_relu`'s
/// backward applies), as a new buffer.
fn relu_masked(dout: &[f32], relu_y: &[f32]) -> Vec<f32> {
    dout.iter()
        .zip(relu_y)
        .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
        .collect()
}

/// Whether the backward kernels of `d` that run (the input gradient only if `need_dx`)
/// apply a ReLU mask while they copy `dout` (the direct path) rather than on a masked copy
/// made first.
pub(crate) fn masks_in_place(d: &Conv2dDims, need_dx: bool) -> bool {
    weight_masks_in_place(d, &TUNING)
        && (!need_dx
            || direct_cpu(d, &TUNING, Kernel::BackwardInput).is_some()
            || winograd_cpu(d, &TUNING, Kernel::BackwardInput).is_some())
}

/// `relu_y`: the output of the fused Conv2D+ReLU, whose mask `relu_y > 0` applies to
/// `dout` first (in the direct kernels' padding copy, else on a masked copy).
pub(crate) fn conv2d_backward_input_tuned(
    dinp: &mut [f32],
    dout: &[f32],
    relu_y: Option<&[f32]>,
    w: &[f32],
    d: &Conv2dDims,
    t: &Tuning,
) {
    debug_assert_eq!(dinp.len(), d.n * d.in_image());
    debug_assert_eq!(dout.len(), d.n * d.out_image());
    debug_assert!(relu_y.is_none_or(|y| y.len() == dout.len()));
    debug_assert_eq!(w.len(), d.oc * d.k());
    let min_imgs = min_chunk_images(d, t);
    if let Some(cpu) = winograd4_cpu(d, t, Kernel::BackwardInput) {
        return backward_input_winograd4(cpu, as_uninit(dinp), dout, relu_y, w, d, t);
    }
    if let Some(cpu) = winograd_cpu(d, t, Kernel::BackwardInput) {
        took(Kernel::BackwardInput, ConvPath::Winograd2x2);
        let geo = Wino::backward_input(d);
        let u = winograd::pack_backward_input(w, d);
        backward_input_chunks(
            dinp,
            dout,
            relu_y,
            d,
            min_imgs,
            |n| geo.scratch(n),
            |dx, dy, y, s| winograd::images(cpu, &geo, dx, dy, y, &u, None, false, s),
        );
        return;
    }
    if let (Some(cpu), true) = (direct_cpu(d, t, Kernel::BackwardInput), d.stride != (1, 1)) {
        took(Kernel::BackwardInput, ConvPath::Direct);
        let geo = StridedInput::new(d);
        let wt = geo.pack(w, d);
        backward_input_chunks(
            dinp,
            dout,
            relu_y,
            d,
            min_imgs,
            |_| geo.scratch(d),
            |dx, dy, y, s| geo.backward_input_images(cpu, dx, dy, y, &wt, d, s),
        );
        return;
    }
    if let Some(cpu) = direct_cpu(d, t, Kernel::BackwardInput) {
        took(Kernel::BackwardInput, ConvPath::Direct);
        let wt = direct::pack_backward_input_weights(w, d);
        let len = direct::backward_input_scratch(d);
        backward_input_chunks(
            dinp,
            dout,
            relu_y,
            d,
            min_imgs,
            |_| len,
            |dx, dy, y, s| direct::backward_input_images(cpu, dx, dy, y, &wt, d, s),
        );
        return;
    }
    if let Some(y) = relu_y {
        let masked = relu_masked(dout, y);
        return conv2d_backward_input_tuned(dinp, &masked, None, w, d, t);
    }
    took(Kernel::BackwardInput, ConvPath::Im2colGemm);
    let gemm_par = parallel::split(d.n, min_imgs).len() == 1;
    parallel::par_chunks_mut(dinp, d.in_image(), min_imgs, |first, dinp| {
        let imgs = dinp.len() / d.in_image().max(1);
        let dout = &dout[first * d.out_image()..(first + imgs) * d.out_image()];
        backward_input_chunk(dinp, dout, w, d, t, gemm_par);
    });
}

fn backward_input_chunk(
    dinp: &mut [f32],
    dout: &[f32],
    w: &[f32],
    d: &Conv2dDims,
    t: &Tuning,
    par: bool,
) {
    let imgs = dout.len() / d.out_image();
    let (k, p, ocg) = (d.k(), d.p(), d.ocg());
    if d.is_pointwise() {
        // dx[CG, P] = w_g^T [CG, OCG] x dy[OCG, P], written in place.
        for img in 0..imgs {
            for g in 0..d.groups {
                let dx = &mut dinp[img * d.in_image() + g * k * p..][..k * p];
                let dy = &dout[img * d.out_image() + g * ocg * p..][..ocg * p];
                let wg = &w[g * ocg * k..][..ocg * k];
                sgemm(k, ocg, p, wg, true, dy, false, dx, false, par);
            }
        }
        return;
    }
    // col2im adds every tap's contribution, so the gradient starts at zero.
    dinp.fill(0.0);
    let nb = images_per_gemm(imgs, d, t);
    let gathered_len = if nb > 1 { ocg * nb * p } else { 0 };
    with_scratch(k * nb * p + gathered_len, |buf| {
        let (dcol, gathered) = buf.split_at_mut(k * nb * p);
        for start in (0..imgs).step_by(nb) {
            let cnt = nb.min(imgs - start);
            let cols = cnt * p;
            let dcol = &mut dcol[..k * cols];
            let dy_imgs = &dout[start * d.out_image()..(start + cnt) * d.out_image()];
            let dx_imgs = &mut dinp[start * d.in_image()..(start + cnt) * d.in_image()];
            for g in 0..d.groups {
                let dy: &[f32] = if cnt == 1 {
                    &dy_imgs[g * ocg * p..][..ocg * p]
                } else {
                    let gathered = &mut gathered[..ocg * cols];
                    gather_dout(gathered, dy_imgs, cnt, g, d);
                    gathered
                };
                // dcol[K, cnt*P] = w_g^T [K, OCG] x dy[OCG, cnt*P]
                let wg = &w[g * ocg * k..][..ocg * k];
                sgemm(k, ocg, cols, wg, true, dy, false, dcol, false, par);
                col2im(dx_imgs, dcol, cnt, g, d);
            }
        }
    });
}

/// Backward to the bias alone: `db[o] = sum_{n, p} dout[n, o, p]`. Overwrites `db`.
pub fn conv2d_backward_bias(db: &mut [f32], dout: &[f32], d: &Conv2dDims) {
    db.fill(0.0);
    accumulate_bias(db, dout, d);
}

fn accumulate_bias(db: &mut [f32], dout: &[f32], d: &Conv2dDims) {
    for img in dout.chunks_exact(d.out_image()) {
        for (acc, plane) in db.iter_mut().zip(img.chunks_exact(d.p())) {
            *acc += sum8(plane);
        }
    }
}

/// Backward to the kernel (and bias): `dw [OC, CG, KH, KW]`, `db [OC]` from
/// `dout [N, OC, OH, OW]` and `inp [N, C, H, W]`. Overwrites both.
pub fn conv2d_backward_weight(
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    d: &Conv2dDims,
) {
    conv2d_backward_weight_tuned(dw, db, dout, None, inp, d, &TUNING)
}

/// The path `weight_chunk` takes for `d` under `t`.
fn weight_path(d: &Conv2dDims, t: &Tuning) -> ConvPath {
    if winograd_cpu(d, t, Kernel::BackwardWeight).is_some() {
        ConvPath::Winograd2x2
    } else if direct_cpu(d, t, Kernel::BackwardWeight).is_some() {
        ConvPath::Direct
    } else {
        ConvPath::Im2colGemm
    }
}

/// Whether the weight gradient of `d` runs a kernel that masks `dout` as it copies it.
fn weight_masks_in_place(d: &Conv2dDims, t: &Tuning) -> bool {
    winograd_cpu(d, t, Kernel::BackwardWeight).is_some()
        || direct_cpu(d, t, Kernel::BackwardWeight).is_some()
}

/// `relu_y` as in `conv2d_backward_input_tuned`.
pub(crate) fn conv2d_backward_weight_tuned(
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
    dout: &[f32],
    relu_y: Option<&[f32]>,
    inp: &[f32],
    d: &Conv2dDims,
    t: &Tuning,
) {
    debug_assert_eq!(dw.len(), d.oc * d.k());
    debug_assert!(db.as_ref().is_none_or(|db| db.len() == d.oc));
    debug_assert_eq!(dout.len(), d.n * d.out_image());
    debug_assert!(relu_y.is_none_or(|y| y.len() == dout.len()));
    debug_assert_eq!(inp.len(), d.n * d.in_image());
    if let (Some(y), false) = (relu_y, weight_masks_in_place(d, t)) {
        let masked = relu_masked(dout, y);
        return conv2d_backward_weight_tuned(dw, db, &masked, None, inp, d, t);
    }
    // `weight_chunk` makes the same choice for every chunk (on the pool's threads).
    took(Kernel::BackwardWeight, weight_path(d, t));
    let min_imgs = min_chunk_images(d, t);
    dw.fill(0.0);
    if let Some(db) = db.as_deref_mut() {
        db.fill(0.0);
    }
    if parallel::split(d.n, min_imgs).len() == 1 {
        weight_chunk(dw, db, dout, relu_y, inp, 0..d.n, d, t, true);
        return;
    }
    // Each chunk sums into its own [dw | db] buffer; the buffers are added in chunk order,
    // so the result does not depend on which thread finished first.
    let (wlen, with_bias) = (dw.len(), db.is_some());
    let parts = parallel::par_map_ranges(d.n, min_imgs, |range| {
        let mut part = vec![0.0f32; wlen + d.oc];
        let (pdw, pdb) = part.split_at_mut(wlen);
        weight_chunk(
            pdw,
            with_bias.then_some(pdb),
            dout,
            relu_y,
            inp,
            range,
            d,
            t,
            false,
        );
        part
    });
    for part in &parts {
        for (a, &v) in dw.iter_mut().zip(&part[..wlen]) {
            *a += v;
        }
        if let Some(db) = db.as_deref_mut() {
            for (a, &v) in db.iter_mut().zip(&part[wlen..]) {
                *a += v;
            }
        }
    }
}

/// Adds the images `range`'s contribution to `dw` and `db`.
/// `relu_y` (the whole batch's) only on the direct path, which masks as it copies.
#[allow(clippy::too_many_arguments)]
fn weight_chunk(
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dout: &[f32],
    relu_y: Option<&[f32]>,
    inp: &[f32],
    range: Range<usize>,
    d: &Conv2dDims,
    t: &Tuning,
    par: bool,
) {
    let imgs = range.len();
    let (k, p, ocg) = (d.k(), d.p(), d.ocg());
    let out = range.start * d.out_image()..range.end * d.out_image();
    let relu_y = relu_y.map(|y| &y[out.clone()]);
    let dout = &dout[out];
    let inp = &inp[range.start * d.in_image()..range.end * d.in_image()];
    if let Some(cpu) = winograd_cpu(d, t, Kernel::BackwardWeight) {
        let geo = WinoWeight::new(d);
        with_scratch(geo.scratch(imgs), |s| {
            winograd_weight::weight_images(cpu, &geo, dw, db, dout, relu_y, inp, s)
        });
        return;
    }
    if let Some(cpu) = direct_cpu(d, t, Kernel::BackwardWeight) {
        let len = direct::backward_weight_scratch(d, imgs);
        with_scratch(len, |s| {
            direct::backward_weight_images(cpu, dw, db, dout, relu_y, inp, d, s)
        });
        return;
    }
    debug_assert!(relu_y.is_none(), "masked before the GEMM path");
    if let Some(db) = db {
        accumulate_bias(db, dout, d);
    }
    if d.is_pointwise() {
        // dw_g[OCG, CG] += dy[OCG, P] x x[CG, P]^T
        for img in 0..imgs {
            for g in 0..d.groups {
                let dy = &dout[img * d.out_image() + g * ocg * p..][..ocg * p];
                let x = &inp[img * d.in_image() + g * k * p..][..k * p];
                let dwg = &mut dw[g * ocg * k..][..ocg * k];
                sgemm(ocg, p, k, dy, false, x, true, dwg, true, par);
            }
        }
        return;
    }
    let nb = images_per_gemm(imgs, d, t);
    let gathered_len = if nb > 1 { ocg * nb * p } else { 0 };
    with_scratch(k * nb * p + gathered_len, |buf| {
        let (col, gathered) = buf.split_at_mut(k * nb * p);
        for start in (0..imgs).step_by(nb) {
            let cnt = nb.min(imgs - start);
            let cols = cnt * p;
            let col = &mut col[..k * cols];
            let x = &inp[start * d.in_image()..(start + cnt) * d.in_image()];
            let dy_imgs = &dout[start * d.out_image()..(start + cnt) * d.out_image()];
            for g in 0..d.groups {
                im2col(col, x, cnt, g, d);
                let dy: &[f32] = if cnt == 1 {
                    &dy_imgs[g * ocg * p..][..ocg * p]
                } else {
                    let gathered = &mut gathered[..ocg * cols];
                    gather_dout(gathered, dy_imgs, cnt, g, d);
                    gathered
                };
                // dw_g[OCG, K] += dy[OCG, cnt*P] x col[K, cnt*P]^T
                let dwg = &mut dw[g * ocg * k..][..ocg * k];
                sgemm(ocg, cols, k, dy, false, col, true, dwg, true, par);
            }
        }
    });
}
