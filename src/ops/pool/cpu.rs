//! Fast pooling kernels: plain functions over contiguous NCHW slices and a `Pool2dDims`.
//!
//! Every kernel works one `H x W` plane at a time (a plane is one (n, c) pair), and the
//! planes are independent, so the parallel split is over planes (`ops::parallel`) with a
//! work threshold under which a call stays serial. Each output value is computed by one
//! thread in a fixed order, so results are bit-identical for any thread count.
//!
//! Fast paths:
//! - max / avg forward with a 2x2 window, stride 2 and no padding (the MNIST nets' pool):
//!   two input rows at a time, no window clipping, vectorized 4 outputs per step (a row
//!   whose length is not a multiple of 4 re-runs its last 4 outputs instead of taking a
//!   branchy scalar epilogue; see `max_plane_2x2`).
//! - max forward with any other window, stride and padding: 16, 8 or 4 neighbouring
//!   windows advance together through their cells in registers, with branch-free selects
//!   (AVX-512 where present), over a copy of the plane framed by `-inf` padding so the
//!   edge windows take the same path (see `max_plane`).
//! - every backward zeroes one plane and scatters into it while it is still in L1, so the
//!   general scatter is as fast as a special case would be.
//!
//! Max-pool ties: the first maximum in row-major window order wins. A NaN wins over any
//! number (the first NaN of a window is kept), so a NaN in the input shows in the output
//! instead of being silently dropped (PyTorch does the same).

use super::Pool2dDims;
use crate::ops::parallel;
use rayon::prelude::*;
use std::ops::Range;

/// Element-operations per parallel chunk below which a call stays serial: dispatching to
/// the pool costs a few microseconds, about what a core needs for this much pooling.
const PAR_MIN_WORK: usize = 1 << 15;

/// Planes per parallel chunk so that a chunk does at least `PAR_MIN_WORK` work.
fn min_planes(work_per_plane: usize) -> usize {
    PAR_MIN_WORK.div_ceil(work_per_plane.max(1))
}

/// Whether `v` replaces `best` as a window's maximum (see the module docs: first max wins,
/// a NaN beats any number). Non-short-circuit `|` and `&` on purpose: `||` compiles to
/// branches in scalar code, which mispredict on random data (the 2x2 forward was about
/// twice as slow with `||`, measured with `bench_max_pool_2x2`).
#[inline(always)]
fn wins(v: f32, best: f32) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// The input rows `[start, end)` that window `o` covers along one axis, clipped to the
/// real cells (padding is never read). Non-empty because validation keeps every padding
/// smaller than the kernel.
#[inline(always)]
fn window(o: usize, stride: usize, pad: usize, kernel: usize, len: usize) -> Range<usize> {
    let start = o * stride;
    let lo = start.saturating_sub(pad);
    let hi = (start + kernel).saturating_sub(pad).min(len);
    lo..hi
}

/// Runs `f(first_plane, out_chunk, arg_chunk)` over matching plane-aligned chunks of two
/// output buffers, split as `parallel::split` splits the plane count (so the chunking is
/// the same as every other kernel's and deterministic).
fn par_planes2(
    out: &mut [f32],
    out_plane: usize,
    arg: &mut [u32],
    arg_plane: usize,
    min_items: usize,
    f: impl Fn(usize, &mut [f32], &mut [u32]) + Sync + Send,
) {
    let planes = out.len() / out_plane.max(1);
    let ranges = parallel::split(planes, min_items);
    if ranges.len() == 1 {
        f(0, out, arg);
        return;
    }
    let mut pieces = Vec::with_capacity(ranges.len());
    let (mut out_rest, mut arg_rest) = (out, arg);
    for r in &ranges {
        let (oh, ot) = out_rest.split_at_mut(r.len() * out_plane);
        let (ah, at) = arg_rest.split_at_mut(r.len() * arg_plane);
        pieces.push((r.start, oh, ah));
        out_rest = ot;
        arg_rest = at;
    }
    pieces
        .into_par_iter()
        .for_each(|(start, o, a)| f(start, o, a));
}

// ---------------------------------------------------------------------------------------
// Max pooling
// ---------------------------------------------------------------------------------------

/// `out[P, OH, OW]`, `argmax[P, OH, OW]` (index of the winner inside its input plane,
/// `iy * W + ix`) from `inp[P, H, W]`.
pub fn max_pool2d_forward(out: &mut [f32], argmax: &mut [u32], inp: &[f32], d: &Pool2dDims) {
    let (hw, ohw) = (d.h * d.w, d.oh * d.ow);
    debug_assert_eq!(inp.len(), d.planes * hw);
    debug_assert_eq!(out.len(), d.planes * ohw);
    debug_assert_eq!(argmax.len(), d.planes * ohw);
    if ohw == 0 || d.planes == 0 {
        return;
    }
    let fast = d.is_2x2_s2_unpadded();
    let geo = Framed::new(d);
    let work = ohw * d.kh * d.kw;
    par_planes2(out, ohw, argmax, ohw, min_planes(work), |p0, out, arg| {
        let mut frame = if fast { Vec::new() } else { geo.scratch(d) };
        for (i, (o, a)) in out
            .chunks_exact_mut(ohw)
            .zip(arg.chunks_exact_mut(ohw))
            .enumerate()
        {
            let plane = &inp[(p0 + i) * hw..(p0 + i + 1) * hw];
            if fast {
                max_plane_2x2(o, a, plane, d);
            } else {
                max_plane(PlaneJob {
                    out: o,
                    arg: a,
                    plane,
                    d,
                    geo: &geo,
                    frame: &mut frame,
                });
            }
        }
    });
}

/// `out[P, OH, OW]` from `inp[P, H, W]` without recording the winners (inference: no
/// backward will read them). The same values as `max_pool2d_forward`'s.
pub fn max_pool2d_forward_values(out: &mut [f32], inp: &[f32], d: &Pool2dDims) {
    let (hw, ohw) = (d.h * d.w, d.oh * d.ow);
    debug_assert_eq!(inp.len(), d.planes * hw);
    debug_assert_eq!(out.len(), d.planes * ohw);
    if ohw == 0 || d.planes == 0 {
        return;
    }
    if !d.is_2x2_s2_unpadded() {
        let mut arg = vec![0u32; out.len()];
        return max_pool2d_forward(out, &mut arg, inp, d);
    }
    parallel::par_chunks_mut(out, ohw, min_planes(ohw * 4), |p0, chunk| {
        for (i, o) in chunk.chunks_exact_mut(ohw).enumerate() {
            let plane = &inp[(p0 + i) * hw..(p0 + i + 1) * hw];
            for (oy, o) in o.chunks_exact_mut(d.ow).enumerate() {
                let r0 = &plane[2 * oy * d.w..(2 * oy + 1) * d.w];
                let r1 = &plane[(2 * oy + 1) * d.w..(2 * oy + 2) * d.w];
                max_row_2x2_values(o, r0, r1);
            }
        }
    });
}

/// The values of `max_row_2x2`: the same tournament (same winner, so the same bits for
/// ties of `0.0` and `-0.0` and for NaNs), no indices. Branch-free selects: LLVM
/// vectorizes the loop.
#[inline(always)]
fn max_row_2x2_values(o: &mut [f32], r0: &[f32], r1: &[f32]) {
    for (o, (p0, p1)) in o.iter_mut().zip(r0.chunks_exact(2).zip(r1.chunks_exact(2))) {
        let top = if wins(p0[1], p0[0]) { p0[1] } else { p0[0] };
        let bot = if wins(p1[1], p1[0]) { p1[1] } else { p1[0] };
        *o = if wins(bot, top) { bot } else { top };
    }
}

/// Any window, stride and padding, one output row at a time.
///
/// The textbook scan (one window at a time) turns each "new maximum?" test into a branch
/// that mispredicts on real activations: a 3x3 stride-1 pool over inception-mini's
/// 128x64x28x28 maps took 179 ms at 2 threads (`bench_max_pool`). Here the windows of
/// 16, 8 or 4 neighbouring outputs advance together through their `KH x KW` cells, their
/// maxima and indices held in registers and updated with bit-mask selects (AVX-512 where
/// present). The plane is first copied into a frame with `-inf` in the left and right
/// padding, so windows at the edges take the same path: `-inf` never strictly beats a
/// window's start value `-inf`, so padding never wins. Every window sees its cells in
/// row-major order with strict `wins`, so the winner is the scan's (`naive.rs`); a window
/// starts at `-inf` with its first real cell as the index, so a first real cell of `-inf`
/// keeps that index, as in the scan. Rows under 4 outputs take the scan (`max_window`).
fn max_plane(job: PlaneJob<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU was just checked for AVX-512F, all `max_plane_avx512` requires.
        return unsafe { max_plane_avx512(job) };
    }
    max_plane_body(job)
}

/// One plane's max pool: its outputs and argmax, the plane, and the frame to copy it into.
struct PlaneJob<'a> {
    out: &'a mut [f32],
    arg: &'a mut [u32],
    plane: &'a [f32],
    d: &'a Pool2dDims,
    geo: &'a Framed,
    frame: &'a mut [f32],
}

/// `max_plane_body` compiled with AVX-512 (the crate's baseline is SSE2). The same
/// operations element by element, so the same result bit for bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn max_plane_avx512(job: PlaneJob<'_>) {
    max_plane_body(job)
}

/// A plane's rows with `-inf` padding left and right, wide enough for every window.
struct Framed {
    /// Row length in the frame; input column `x` sits at `PAD_LEFT + x`.
    width: usize,
    /// Per output column, its window's first real input column (the start index).
    first: Vec<u32>,
}

impl Framed {
    fn new(d: &Pool2dDims) -> Framed {
        let reach = (d.ow.max(1) - 1) * d.sw + d.kw;
        Framed {
            width: reach.max(d.pad_left + d.w),
            first: (0..d.ow)
                .map(|ox| window(ox, d.sw, d.pad_left, d.kw, d.w).start as u32)
                .collect(),
        }
    }

    /// A frame buffer with the padding already `-inf` (the copies overwrite only the
    /// real cells).
    fn scratch(&self, d: &Pool2dDims) -> Vec<f32> {
        vec![f32::NEG_INFINITY; d.h * self.width]
    }
}

#[inline(always)]
fn max_plane_body(job: PlaneJob<'_>) {
    let PlaneJob {
        out,
        arg,
        plane,
        d,
        geo,
        frame,
    } = job;
    if d.ow < 4 {
        for oy in 0..d.oh {
            let ys = window(oy, d.sh, d.pad_top, d.kh, d.h);
            for ox in 0..d.ow {
                (out[oy * d.ow + ox], arg[oy * d.ow + ox]) = max_window(plane, d, ys.clone(), ox);
            }
        }
        return;
    }
    for (f, row) in frame
        .chunks_exact_mut(geo.width)
        .zip(plane.chunks_exact(d.w))
    {
        f[d.pad_left..d.pad_left + d.w].copy_from_slice(row);
    }
    let frame = &*frame;
    for oy in 0..d.oh {
        let ys = window(oy, d.sh, d.pad_top, d.kh, d.h);
        let o = &mut out[oy * d.ow..(oy + 1) * d.ow];
        let a = &mut arg[oy * d.ow..(oy + 1) * d.ow];
        // 16 lanes for the 28-wide maps of small-image nets, 8 for 14-wide, 4 for 7-wide.
        if d.ow >= 16 {
            max_chunks::<16>(o, a, frame, d, geo, ys);
        } else if d.ow >= 8 {
            max_chunks::<8>(o, a, frame, d, geo, ys);
        } else {
            max_chunks::<4>(o, a, frame, d, geo, ys);
        }
    }
}

/// One output row in chunks of `L` (the row has at least `L` outputs); the last chunk
/// ends at the row's end, overlapping the one before it (recomputing the same values)
/// rather than leaving a scalar tail.
#[inline(always)]
fn max_chunks<const L: usize>(
    o: &mut [f32],
    a: &mut [u32],
    frame: &[f32],
    d: &Pool2dDims,
    geo: &Framed,
    ys: Range<usize>,
) {
    let mut start = 0;
    loop {
        let s = start.min(d.ow - L);
        let (oc, ac) = (&mut o[s..s + L], &mut a[s..s + L]);
        // Strides 1 and 2 as constants: contiguous or fixed-pattern loads.
        match d.sw {
            1 => max_chunk::<L, 1>(oc, ac, frame, d, geo, ys.clone(), s),
            2 => max_chunk::<L, 2>(oc, ac, frame, d, geo, ys.clone(), s),
            _ => max_chunk::<L, 0>(oc, ac, frame, d, geo, ys.clone(), s),
        }
        if s + L == d.ow {
            return;
        }
        start += L;
    }
}

/// `L` windows side by side, starting at output column `ox0`: maxima and indices stay in
/// registers through all `KH x KW` cells. `SW` is the column stride as a constant, or 0
/// to read it from `d`. Plane indices are computed in wrapping u32 arithmetic: a padding
/// cell's (x < 0) wraps, but padding never wins, so no such index is kept.
#[inline(always)]
fn max_chunk<const L: usize, const SW: usize>(
    o: &mut [f32],
    a: &mut [u32],
    frame: &[f32],
    d: &Pool2dDims,
    geo: &Framed,
    ys: Range<usize>,
    ox0: usize,
) {
    let sw = if SW == 0 { d.sw } else { SW };
    let (w, fw) = (d.w as u32, geo.width);
    let mut best = [f32::NEG_INFINITY; L];
    let mut idx = [0u32; L];
    for (i, &x) in idx.iter_mut().zip(&geo.first[ox0..ox0 + L]) {
        *i = ys.start as u32 * w + x;
    }
    // Frame column of the first cell of window `ox0`.
    let xf = ox0 * sw;
    for y in ys {
        let row = &frame[y * fw..(y + 1) * fw];
        for kx in 0..d.kw {
            let x0 = xf + kx;
            // Plane index of frame column x0: y*W + x0 - PAD (wrapping for padding).
            let base = (y as u32 * w)
                .wrapping_add(x0 as u32)
                .wrapping_sub(d.pad_left as u32);
            let span = &row[x0..x0 + (L - 1) * sw + 1];
            for l in 0..L {
                let v = span[l * sw];
                // All ones where `v` wins, else zero: a select LLVM keeps branch-free.
                let m = 0u32.wrapping_sub(wins(v, best[l]) as u32);
                best[l] = f32::from_bits((v.to_bits() & m) | (best[l].to_bits() & !m));
                let cand = base.wrapping_add((l * sw) as u32);
                idx[l] = (cand & m) | (idx[l] & !m);
            }
        }
    }
    o.copy_from_slice(&best);
    a.copy_from_slice(&idx);
}

/// One window by the textbook scan: its clipped cells in row-major order.
fn max_window(plane: &[f32], d: &Pool2dDims, ys: Range<usize>, ox: usize) -> (f32, u32) {
    let xs = window(ox, d.sw, d.pad_left, d.kw, d.w);
    let mut bi = ys.start * d.w + xs.start;
    let mut best = plane[bi];
    for y in ys {
        for x in xs.clone() {
            let v = plane[y * d.w + x];
            if wins(v, best) {
                best = v;
                bi = y * d.w + x;
            }
        }
    }
    (best, bi as u32)
}

/// 2x2 window, stride 2, no padding, one output row at a time.
///
/// The row loop vectorizes (4 outputs per step), but LLVM finishes a row whose length is
/// not a multiple of 4 with a scalar epilogue whose selects become branches, and on
/// random data those mispredict: with `OW = 13` (26 -> 13, the MNIST conv output) that
/// made the whole kernel about twice as slow. So a row runs as a multiple-of-4 prefix and
/// then its last 4 outputs again (overlapping, recomputing identical values): both go
/// through the vector loop and the scalar epilogue never runs.
fn max_plane_2x2(out: &mut [f32], arg: &mut [u32], plane: &[f32], d: &Pool2dDims) {
    const VEC: usize = 4;
    let w = d.w;
    for oy in 0..d.oh {
        let r0 = &plane[2 * oy * w..(2 * oy + 1) * w];
        let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 2) * w];
        let o = &mut out[oy * d.ow..(oy + 1) * d.ow];
        let a = &mut arg[oy * d.ow..(oy + 1) * d.ow];
        let base = (2 * oy * w) as u32;
        let head = d.ow / VEC * VEC;
        if head == 0 || head == d.ow {
            max_row_2x2(o, a, r0, r1, base, w as u32);
        } else {
            max_row_2x2(&mut o[..head], &mut a[..head], r0, r1, base, w as u32);
            let t = d.ow - VEC;
            let b = base + 2 * t as u32;
            max_row_2x2(
                &mut o[t..],
                &mut a[t..],
                &r0[2 * t..],
                &r1[2 * t..],
                b,
                w as u32,
            );
        }
    }
}

/// `o.len()` outputs of a 2x2 stride-2 row from input rows `r0`, `r1`; `base` is the
/// plane index of `r0[0]`. A two-round tournament where the left side wins ties:
/// (v00 vs v01) and (v10 vs v11), then top vs bottom. That is the same winner as a
/// row-major scan with strict `>`, because every left/top candidate precedes its rival.
#[inline(never)]
fn max_row_2x2(o: &mut [f32], a: &mut [u32], r0: &[f32], r1: &[f32], base: u32, w: u32) {
    for (ox, ((o, a), (p0, p1))) in o
        .iter_mut()
        .zip(a.iter_mut())
        .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
        .enumerate()
    {
        let top_right = wins(p0[1], p0[0]);
        let top = if top_right { p0[1] } else { p0[0] };
        let bot_right = wins(p1[1], p1[0]);
        let bot = if bot_right { p1[1] } else { p1[0] };
        let take_bot = wins(bot, top);
        *o = if take_bot { bot } else { top };
        // Offset of the winner in the window: +1 for the right column, +W for the
        // bottom row.
        let col = if take_bot { bot_right } else { top_right };
        *a = base + 2 * ox as u32 + col as u32 + if take_bot { w } else { 0 };
    }
}

/// `dinp[P, H, W] = scatter-add of dout[P, OH, OW]` to the recorded winners. Overwrites
/// `dinp`. With overlapping windows one input can win several windows; its gradient is
/// then the sum, accumulated in output order.
pub fn max_pool2d_backward(dinp: &mut [f32], dout: &[f32], argmax: &[u32], d: &Pool2dDims) {
    let (hw, ohw) = (d.h * d.w, d.oh * d.ow);
    debug_assert_eq!(dinp.len(), d.planes * hw);
    debug_assert_eq!(dout.len(), d.planes * ohw);
    debug_assert_eq!(argmax.len(), d.planes * ohw);
    if hw == 0 {
        return;
    }
    parallel::par_chunks_mut(dinp, hw, min_planes(hw + ohw), |p0, chunk| {
        for (i, di) in chunk.chunks_exact_mut(hw).enumerate() {
            let p = p0 + i;
            di.fill(0.0);
            let g = &dout[p * ohw..(p + 1) * ohw];
            let a = &argmax[p * ohw..(p + 1) * ohw];
            for (&g, &a) in g.iter().zip(a) {
                di[a as usize] += g;
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Average pooling
// ---------------------------------------------------------------------------------------

/// `out[P, OH, OW]` = mean of each window's real cells (padding is not counted).
pub fn avg_pool2d_forward(out: &mut [f32], inp: &[f32], d: &Pool2dDims) {
    let (hw, ohw) = (d.h * d.w, d.oh * d.ow);
    debug_assert_eq!(inp.len(), d.planes * hw);
    debug_assert_eq!(out.len(), d.planes * ohw);
    if ohw == 0 {
        return;
    }
    let fast = d.is_2x2_s2_unpadded();
    let work = ohw * d.kh * d.kw;
    parallel::par_chunks_mut(out, ohw, min_planes(work), |p0, chunk| {
        for (i, o) in chunk.chunks_exact_mut(ohw).enumerate() {
            let plane = &inp[(p0 + i) * hw..(p0 + i + 1) * hw];
            if fast {
                avg_plane_2x2(o, plane, d);
            } else {
                avg_plane(o, plane, d);
            }
        }
    });
}

fn avg_plane(out: &mut [f32], plane: &[f32], d: &Pool2dDims) {
    for oy in 0..d.oh {
        let ys = window(oy, d.sh, d.pad_top, d.kh, d.h);
        for ox in 0..d.ow {
            let xs = window(ox, d.sw, d.pad_left, d.kw, d.w);
            let mut s = 0.0f32;
            for y in ys.clone() {
                s += plane[y * d.w + xs.start..y * d.w + xs.end]
                    .iter()
                    .sum::<f32>();
            }
            out[oy * d.ow + ox] = s / (ys.len() * xs.len()) as f32;
        }
    }
}

fn avg_plane_2x2(out: &mut [f32], plane: &[f32], d: &Pool2dDims) {
    let w = d.w;
    for oy in 0..d.oh {
        let r0 = &plane[2 * oy * w..(2 * oy + 1) * w];
        let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 2) * w];
        let o = &mut out[oy * d.ow..(oy + 1) * d.ow];
        for (o, (p0, p1)) in o.iter_mut().zip(r0.chunks_exact(2).zip(r1.chunks_exact(2))) {
            *o = ((p0[0] + p0[1]) + (p1[0] + p1[1])) * 0.25;
        }
    }
}

/// `dinp[P, H, W]`: each window spreads `dout / count` over its real cells. Overwrites
/// `dinp`; overlapping windows accumulate.
pub fn avg_pool2d_backward(dinp: &mut [f32], dout: &[f32], d: &Pool2dDims) {
    let (hw, ohw) = (d.h * d.w, d.oh * d.ow);
    debug_assert_eq!(dinp.len(), d.planes * hw);
    debug_assert_eq!(dout.len(), d.planes * ohw);
    if hw == 0 {
        return;
    }
    let work = hw + ohw * d.kh * d.kw;
    parallel::par_chunks_mut(dinp, hw, min_planes(work), |p0, chunk| {
        for (i, di) in chunk.chunks_exact_mut(hw).enumerate() {
            let g = &dout[(p0 + i) * ohw..(p0 + i + 1) * ohw];
            di.fill(0.0);
            for oy in 0..d.oh {
                let ys = window(oy, d.sh, d.pad_top, d.kh, d.h);
                for ox in 0..d.ow {
                    let xs = window(ox, d.sw, d.pad_left, d.kw, d.w);
                    let share = g[oy * d.ow + ox] / (ys.len() * xs.len()) as f32;
                    for y in ys.clone() {
                        for v in &mut di[y * d.w + xs.start..y * d.w + xs.end] {
                            *v += share;
                        }
                    }
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------
// Global pooling: one window per plane. Dims: `P` planes of `HW` cells.
// ---------------------------------------------------------------------------------------

/// Sum with eight independent accumulators (vectorizes; the order is fixed by the length,
/// so the result is deterministic).
fn lane_sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `out[P]` = mean of each plane of `inp[P, HW]`.
pub fn global_avg_pool_forward(out: &mut [f32], inp: &[f32], hw: usize) {
    debug_assert_eq!(inp.len(), out.len() * hw);
    parallel::par_chunks_mut(out, 1, min_planes(hw), |p0, chunk| {
        for (i, o) in chunk.iter_mut().enumerate() {
            let p = p0 + i;
            *o = lane_sum(&inp[p * hw..(p + 1) * hw]) / hw as f32;
        }
    });
}

/// `dinp[P, HW] = dout[P] / HW` broadcast over each plane.
pub fn global_avg_pool_backward(dinp: &mut [f32], dout: &[f32], hw: usize) {
    debug_assert_eq!(dinp.len(), dout.len() * hw);
    if hw == 0 {
        return;
    }
    parallel::par_chunks_mut(dinp, hw, min_planes(hw), |p0, chunk| {
        for (i, di) in chunk.chunks_exact_mut(hw).enumerate() {
            di.fill(dout[p0 + i] / hw as f32);
        }
    });
}

/// `out[P]` = max of each plane, `argmax[P]` = its index in the plane (first max wins).
pub fn global_max_pool_forward(out: &mut [f32], argmax: &mut [u32], inp: &[f32], hw: usize) {
    debug_assert_eq!(inp.len(), out.len() * hw);
    debug_assert_eq!(argmax.len(), out.len());
    par_planes2(out, 1, argmax, 1, min_planes(hw), |p0, out, arg| {
        for (i, (o, a)) in out.iter_mut().zip(arg.iter_mut()).enumerate() {
            let plane = &inp[(p0 + i) * hw..(p0 + i + 1) * hw];
            let (mut best, mut bi) = (plane[0], 0);
            for (j, &v) in plane.iter().enumerate().skip(1) {
                if wins(v, best) {
                    best = v;
                    bi = j;
                }
            }
            *o = best;
            *a = bi as u32;
        }
    });
}

/// `dinp[P, HW]`: each plane's gradient goes to its recorded maximum. Overwrites `dinp`.
pub fn global_max_pool_backward(dinp: &mut [f32], dout: &[f32], argmax: &[u32], hw: usize) {
    debug_assert_eq!(dinp.len(), dout.len() * hw);
    if hw == 0 {
        return;
    }
    parallel::par_chunks_mut(dinp, hw, min_planes(hw), |p0, chunk| {
        for (i, di) in chunk.chunks_exact_mut(hw).enumerate() {
            di.fill(0.0);
            di[argmax[p0 + i] as usize] = dout[p0 + i];
        }
    });
}
