//! Direct ("implicit GEMM") kernels for convolutions on AVX-512: no im2col, no col2im,
//! no GEMM packing. Dimension letters as in `mod.rs`. Fast paths: the forward and the
//! weight gradient of any conv without dilation or stride, or with one of the two; the
//! input gradient of stride-1 convs here, of strided ones in `direct_strided.rs`. Their
//! reference is `naive.rs`.
//!
//! The trick: copy each input plane into a zero-padded plane of width `WP = OW + (KW-1)*DW`
//! and number the outputs `q = oy*WP + ox` on that wider grid. Then the kernel tap
//! `(ki, kj)` of channel `ci` reads, for every `q`, the element at `q + off(ci, ki, kj)` with
//! `off = ci*PS + ki*DH*WP + kj*DW`: each row of the im2col matrix is a contiguous window of
//! the padded input, so the kernels read it in place. The outputs at `ox >= OW` are
//! computed and dropped (the waste, `WP/OW` plus rounding `OH*WP` up to 16; `waste`
//! measures it and the caller only takes this path where it is small).
//!
//! - forward: `out[o, q] = sum_t wt[t, o] * xp[off(t) + q]`, a GEMM whose B operand is
//!   read through the tap offsets; a register tile of 8 output channels x 48 positions.
//! - backward to the input: for stride 1 it is the same forward kernel on `dy` padded by
//!   `(KH-1)*DH - PT` rows above and `(KW-1)*DW - PL` columns left, with the kernel
//!   flipped and its two channel axes swapped; no col2im scatter.
//! - strided (`Phases`): the input is split by stride phase, so that tap `(ki, kj)` reads
//!   phase `(ki % SH, kj % SW)` at `(ki / SH, kj / SW)`, a stride-1 read; the grid is
//!   `OH x (OW + (KW-1)/SW)` and no skipped position is computed.
//! - backward to the kernel: `dw[o, t] = sum_q dyp[o, q] * xp[off(t) + q]`, where `dyp` is
//!   `dy` on the same wide grid with zeros at `ox >= OW`: a dot product along contiguous
//!   memory for both operands (which a packed GEMM would first have to transpose, scalar by
//!   scalar). A tile of 4 output channels x 6 taps keeps 24 vector accumulators in
//!   registers across a block of images; they are reduced to scalars once per chunk.
//!
//! Why: on deep-convnet's 16- and 32-channel layers the GEMM path spent its time in
//! im2col, col2im and (for the weight gradient, whose operands are both contiguous along
//! the summed axis) matrixmultiply's scalar packing; the measured gains are in
//! BENCHMARKS.md ("Design measurements").

use super::cpu::{copy_short, sum8};
use super::direct_strided::StridedInput;
use super::Conv2dDims;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Proof that the CPU has AVX-512F: only `Avx512::detect` makes one.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(());

impl Avx512 {
    pub(crate) fn detect() -> Option<Avx512> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") {
            return Some(Avx512(()));
        }
        None
    }
}

/// Positions per vector.
pub(super) const V: usize = 16;

/// A padded-plane layout: `nch` planes of `hp x wp` (plane stride `ps`), holding a source
/// of `nch` planes of `h x w` shifted by `(top, left)` (`dst[r, s] = src[r - top, s - left]`,
/// zero outside), followed by zeros up to `len`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Planes {
    pub(super) nch: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) hp: usize,
    pub(super) wp: usize,
    pub(super) top: isize,
    pub(super) left: isize,
    pub(super) ps: usize,
    pub(super) len: usize,
}

impl Planes {
    /// Writes every element of `dst[..self.len]` from `src [nch, h, w]`; with `relu_y`
    /// (same shape as `src`), each value is first masked by `relu_y > 0` exactly as
    /// `conv2d_relu`'s backward masks `dy` (so the result is bit-identical to masking
    /// first, and no masked copy of `dy` is made).
    #[inline(always)]
    pub(super) fn fill(&self, dst: &mut [f32], src: &[f32], relu_y: Option<&[f32]>) {
        let dst = &mut dst[..self.len];
        let (h, w) = (self.h as isize, self.w as isize);
        // Columns s of a padded row with a source column: left..left + w, clipped to 0..wp.
        let s0 = self.left.clamp(0, self.wp as isize) as usize;
        let s1 = (self.left + w).clamp(0, self.wp as isize) as usize;
        let plane_len = self.h * self.w;
        for (c, plane) in dst.chunks_exact_mut(self.ps).take(self.nch).enumerate() {
            let src = &src[c * plane_len..][..plane_len];
            let mask = relu_y.map(|y| &y[c * plane_len..][..plane_len]);
            for (r, row) in plane[..self.hp * self.wp]
                .chunks_exact_mut(self.wp)
                .enumerate()
            {
                let sr = r as isize - self.top;
                if sr < 0 || sr >= h || s0 >= s1 {
                    row.fill(0.0);
                    continue;
                }
                let at = sr as usize * self.w + (s0 as isize - self.left) as usize;
                let seg = at..at + (s1 - s0);
                row[..s0].fill(0.0);
                row[s1..].fill(0.0);
                match mask {
                    None => copy_short(&mut row[s0..s1], &src[seg]),
                    Some(y) => {
                        for ((v, &g), &y) in
                            row[s0..s1].iter_mut().zip(&src[seg.clone()]).zip(&y[seg])
                        {
                            *v = if y > 0.0 { g } else { 0.0 };
                        }
                    }
                }
            }
            plane[self.hp * self.wp..].fill(0.0);
        }
        dst[self.nch * self.ps..].fill(0.0);
    }
}

/// `dst[i] = src[i * step]` for every `i`. Step 2 (every strided conv in the zoo) reads
/// pairs, which vectorizes (the phase copies of resnet20's 3x3 stride-2 convs cost as much
/// as a third of their kernels' time with a plain `step_by`).
#[inline(always)]
fn gather_strided(dst: &mut [f32], src: &[f32], step: usize) {
    if step == 2 {
        let pairs = dst.len().min(src.len() / 2);
        let (head, tail) = dst.split_at_mut(pairs);
        for (v, pair) in head.iter_mut().zip(src.chunks_exact(2)) {
            *v = pair[0];
        }
        if let Some(v) = tail.first_mut() {
            *v = src[2 * pairs];
        }
        return;
    }
    for (v, &x) in dst.iter_mut().zip(src.iter().step_by(step)) {
        *v = x;
    }
}

/// Offsets of the taps into a padded input, and their maximum (so one bounds check per
/// tile covers every read).
pub(super) struct Taps {
    pub(super) offs: Vec<usize>,
    pub(super) max: usize,
}

impl Taps {
    pub(super) fn new(offs: Vec<usize>) -> Taps {
        let max = offs.iter().copied().max().unwrap_or(0);
        Taps { offs, max }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.offs.is_empty()
    }
}

/// One stride-1 convolution in the direct form: what each kernel needs.
struct Implicit {
    /// The padded input planes of one image.
    inp: Planes,
    /// Output positions per plane on the wide grid: `q = oy*wp + ox`, `OH*WP` rounded up
    /// to `V`.
    lq: usize,
    /// Taps of one group: `K = CG*KH*KW` offsets (channel-major), relative to the group's
    /// first plane.
    taps: Taps,
    /// How `inp` samples the source (stride 1: a shifted copy, one plane per channel).
    phases: Phases,
    /// Floats from one group's first plane to the next group's.
    gs: usize,
}

/// A strided conv's input split by phase: padded row `sh*r + a`, column `sw*s + b` goes to
/// row `r`, column `s` of phase plane `(a, b)`, for `a < ph = min(sh, KH)`,
/// `b < pw = min(sw, KW)` (phases no tap reads are not stored). Tap `(ki, kj)` then
/// reads phase `(ki % sh, kj % sw)` shifted by `(ki / sh, kj / sw)`: a stride-1 read, so
/// the stride-1 kernels run a strided conv without computing the skipped positions.
#[derive(Debug, Clone, Copy)]
struct Phases {
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
}

impl Implicit {
    /// Writes every element of `dst[..self.inp.len]` from one image `src [nch, h, w]`.
    #[inline(always)]
    fn fill(&self, dst: &mut [f32], src: &[f32]) {
        let Phases { sh, sw, ph, pw } = self.phases;
        if (sh, sw) == (1, 1) {
            return self.inp.fill(dst, src, None);
        }
        let pl = &self.inp;
        let dst = &mut dst[..pl.len];
        let (h, w) = (pl.h as isize, pl.w as isize);
        let plane_len = pl.h * pl.w;
        let mut planes = dst.chunks_exact_mut(pl.ps);
        for c in 0..pl.nch {
            let src = &src[c * plane_len..][..plane_len];
            for a in 0..ph {
                for b in 0..pw {
                    let plane = planes.next().expect("Implicit::fill: len below the planes");
                    // Columns s whose source column sw*s + b - left lies in 0..w.
                    let x0 = b as isize - pl.left;
                    let s0 = ((-x0).max(0) as usize).div_ceil(sw).min(pl.wp);
                    let s1 = if w > x0 {
                        ((w - x0 - 1) as usize / sw + 1).min(pl.wp)
                    } else {
                        0
                    };
                    for (r, row) in plane[..pl.hp * pl.wp].chunks_exact_mut(pl.wp).enumerate() {
                        let sr = (sh * r + a) as isize - pl.top;
                        if sr < 0 || sr >= h || s0 >= s1 {
                            row.fill(0.0);
                            continue;
                        }
                        row[..s0].fill(0.0);
                        row[s1..].fill(0.0);
                        let at = sr as usize * pl.w + (sw as isize * s0 as isize + x0) as usize;
                        gather_strided(&mut row[s0..s1], &src[at..], sw);
                    }
                    plane[pl.hp * pl.wp..].fill(0.0);
                }
            }
        }
        dst[pl.nch * ph * pw * pl.ps..].fill(0.0);
    }
}

/// Computed positions per useful output: `round_up(OH*WP, 16) / (OH*OW)`.
pub(crate) fn waste(d: &Conv2dDims) -> f64 {
    let wp = d.ow + (d.kw - 1) * d.dilation.1 / d.stride.1;
    (d.oh * wp).div_ceil(V) as f64 * V as f64 / d.p().max(1) as f64
}

/// Positions the direct input-gradient kernel computes per position the GEMM path's
/// GEMM computes: the first runs over the `H x (W + KW - 1)` grid of `dx` (rounded up to
/// whole vectors), the second over the `OH x OW` positions of `dy`. The two agree up to
/// `waste` for a "same" conv, but an unpadded one has fewer outputs than inputs: keras-cnn's
/// 32->64 3x3 on 13x13 computes 208 positions on the direct path against 121, and measured
/// 2.3 ms against the GEMM path's 1.9 ms (batch 64, one thread's CPU time). A strided
/// conv's kernel runs once per phase of `dx` over that phase's grid, each with its share
/// of the taps, so its work is one phase grid per output plane.
pub(crate) fn backward_input_work(d: &Conv2dDims) -> f64 {
    if d.stride != (1, 1) {
        return StridedInput::new(d).lq as f64 / d.p().max(1) as f64;
    }
    let wp = d.w + (d.kw - 1) * d.dilation.1;
    (d.h * wp).div_ceil(V) as f64 * V as f64 / d.p().max(1) as f64
}

/// Whether the direct kernels apply: stride 1, or any stride without dilation (read
/// through `Phases`).
pub(crate) fn applies(d: &Conv2dDims) -> bool {
    (d.stride == (1, 1) || d.dilation == (1, 1)) && d.p() > 0
}

/// Builds the layout of a conv with `c` input planes of `h x w`, padded by `(top, left)`,
/// read by a `kh x kw` kernel with dilation `dil` (1 unless the stride is) and stride
/// `(sh, sw)`, producing `oh x ow`.
#[allow(clippy::too_many_arguments)]
fn implicit(
    c: usize,
    cg: usize,
    (h, w): (usize, usize),
    (top, left): (isize, isize),
    (kh, kw): (usize, usize),
    (dh, dw): (usize, usize),
    (sh, sw): (usize, usize),
    (oh, ow): (usize, usize),
) -> Implicit {
    debug_assert!((sh, sw) == (1, 1) || (dh, dw) == (1, 1));
    let phases = Phases {
        sh,
        sw,
        ph: sh.min(kh),
        pw: sw.min(kw),
    };
    // With a stride, tap (ki, kj) is tap (ki / sh, kj / sw) of its phase plane.
    let (hp, wp) = (oh + (kh - 1) * dh / sh, ow + (kw - 1) * dw / sw);
    let ps = hp * wp;
    let lq = (oh * wp).div_ceil(V) * V;
    let per_channel = phases.ph * phases.pw * ps;
    let mut offs = Vec::with_capacity(cg * kh * kw);
    for ci in 0..cg {
        for ki in 0..kh {
            for kj in 0..kw {
                let phase = (ki % sh) * phases.pw + kj % sw;
                offs.push(ci * per_channel + phase * ps + ki / sh * dh * wp + kj / sw * dw);
            }
        }
    }
    let taps = Taps::new(offs);
    // Every tile reads up to `max tap + lq` past a group's first plane.
    let reach = (c - cg) * per_channel + taps.max + lq;
    let len = (c * per_channel).max(reach);
    Implicit {
        inp: Planes {
            nch: c,
            h,
            w,
            hp,
            wp,
            top,
            left,
            ps,
            len,
        },
        lq,
        taps,
        phases,
        gs: cg * per_channel,
    }
}

fn forward_geometry(d: &Conv2dDims) -> Implicit {
    implicit(
        d.c,
        d.cg(),
        (d.h, d.w),
        (d.pad_top as isize, d.pad_left as isize),
        (d.kh, d.kw),
        d.dilation,
        d.stride,
        (d.oh, d.ow),
    )
}

/// Backward to the input as a forward conv of `dy` (OC planes, groups of OCG); stride 1.
fn backward_input_geometry(d: &Conv2dDims) -> Implicit {
    let (dh, dw) = d.dilation;
    implicit(
        d.oc,
        d.ocg(),
        (d.oh, d.ow),
        (
            ((d.kh - 1) * dh) as isize - d.pad_top as isize,
            ((d.kw - 1) * dw) as isize - d.pad_left as isize,
        ),
        (d.kh, d.kw),
        d.dilation,
        (1, 1),
        (d.h, d.w),
    )
}

/// `c[o0+i, q0 + 0..16*NV] = sum_t a[t*lda + o0 + i] * b[taps[t] + q0 + 0..16*NV]`.
/// The bounds of every access are asserted here; the kernel below reads only them.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fwd_tile<const MR: usize, const NV: usize>(
    cpu: Avx512,
    a: &[f32],
    lda: usize,
    o0: usize,
    taps: &Taps,
    b: &[f32],
    q0: usize,
    c: &mut [f32],
    ldc: usize,
) {
    let k = taps.offs.len();
    assert!(k > 0 && o0 + MR <= lda && k * lda <= a.len());
    assert!(taps.max + q0 + V * NV <= b.len());
    assert!(q0 + V * NV <= ldc && (o0 + MR) * ldc <= c.len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. Reads: a[t*lda + o0 + i] for t < k, i < MR is below
    // (k-1)*lda + lda <= a.len(); b[off + q0 + j] for off <= taps.max, j < 16*NV is below
    // b.len(); writes c[(o0+i)*ldc + q0 + j] < (o0+MR)*ldc <= c.len(). `c` is a unique
    // borrow, so it aliases neither input.
    unsafe {
        fwd_kernel::<MR, NV>(
            k,
            a.as_ptr().add(o0),
            lda,
            taps.offs.as_ptr(),
            b.as_ptr().add(q0),
            c.as_mut_ptr().add(o0 * ldc + q0),
            ldc,
        )
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fwd_kernel<const MR: usize, const NV: usize>(
    k: usize,
    a: *const f32,
    lda: usize,
    offs: *const usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    for t in 0..k {
        let bp = b.add(*offs.add(t));
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(bp.add(V * v));
        }
        let ap = a.add(t * lda);
        for (i, row) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*ap.add(i));
            for (x, &bx) in row.iter_mut().zip(&bv) {
                *x = _mm512_fmadd_ps(av, bx, *x);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            _mm512_storeu_ps(c.add(i * ldc + V * v), x);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn fwd_kernel<const MR: usize, const NV: usize>(
    _: usize,
    _: *const f32,
    _: usize,
    _: *const usize,
    _: *const f32,
    _: *mut f32,
    _: usize,
) {
    unreachable!("no Avx512 token off x86_64")
}

/// `c [M, lq] = a^T b` over the taps, for `a [K, M]`: every row and position of `c`
/// written.
pub(super) fn fwd_gemm(
    cpu: Avx512,
    a: &[f32],
    m: usize,
    taps: &Taps,
    b: &[f32],
    c: &mut [f32],
    lq: usize,
) {
    let mut o0 = 0;
    while o0 < m {
        let rows = if m - o0 >= 8 { 8 } else { 1 };
        let mut q0 = 0;
        while q0 < lq {
            // Vectors of positions in this tile: 3, or what is left (1 or 2) at the end.
            let nv = ((lq - q0) / V).min(3);
            match (rows, nv) {
                (8, 3) => fwd_tile::<8, 3>(cpu, a, m, o0, taps, b, q0, c, lq),
                (8, 2) => fwd_tile::<8, 2>(cpu, a, m, o0, taps, b, q0, c, lq),
                (8, _) => fwd_tile::<8, 1>(cpu, a, m, o0, taps, b, q0, c, lq),
                (_, 3) => fwd_tile::<1, 3>(cpu, a, m, o0, taps, b, q0, c, lq),
                (_, 2) => fwd_tile::<1, 2>(cpu, a, m, o0, taps, b, q0, c, lq),
                (_, _) => fwd_tile::<1, 1>(cpu, a, m, o0, taps, b, q0, c, lq),
            }
            q0 += nv * V;
        }
        o0 += rows;
    }
}

/// Weights of every group as `[G][K][OCG]` (tap-major, output channel contiguous).
pub(crate) fn pack_forward_weights(w: &[f32], d: &Conv2dDims) -> Vec<f32> {
    let (k, ocg) = (d.k(), d.ocg());
    let mut wt = vec![0.0; d.oc * k];
    for g in 0..d.groups {
        let dst = &mut wt[g * k * ocg..][..k * ocg];
        for o in 0..ocg {
            for (t, &v) in w[(g * ocg + o) * k..][..k].iter().enumerate() {
                dst[t * ocg + o] = v;
            }
        }
    }
    wt
}

/// Weights for the backward to the input, per group `[OCG*KH*KW][CG]`: tap `(o, ki, kj)`
/// of the flipped kernel, input channel contiguous.
pub(crate) fn pack_backward_input_weights(w: &[f32], d: &Conv2dDims) -> Vec<f32> {
    let (cg, ocg, kh, kw) = (d.cg(), d.ocg(), d.kh, d.kw);
    let mut wt = vec![0.0; w.len()];
    for g in 0..d.groups {
        let dst = &mut wt[g * ocg * kh * kw * cg..][..ocg * kh * kw * cg];
        for o in 0..ocg {
            for ci in 0..cg {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let v = w[(((g * ocg + o) * cg + ci) * kh + ki) * kw + kj];
                        let t = (o * kh + (kh - 1 - ki)) * kw + (kw - 1 - kj);
                        dst[t * cg + ci] = v;
                    }
                }
            }
        }
    }
    wt
}

/// Floats of scratch `forward_images` needs.
pub(crate) fn forward_scratch(d: &Conv2dDims) -> usize {
    let geo = forward_geometry(d);
    geo.inp.len + d.ocg() * geo.lq
}

/// Forward of the images of `inp [imgs, C, H, W]` into `out [imgs, OC, OH, OW]`
/// (overwritten), with `wt` from `pack_forward_weights`; bias and ReLU applied while
/// copying each output plane out of the wide grid.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_images(
    cpu: Avx512,
    out: &mut [f32],
    inp: &[f32],
    wt: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
    relu: bool,
    scratch: &mut [f32],
) {
    // SAFETY: `cpu` proves the CPU has AVX-512F, all `forward_images_avx512` requires.
    unsafe { forward_images_avx512(cpu, out, inp, wt, b, d, relu, scratch) }
}

/// The same, compiled with AVX-512 enabled, so the padding copies and the epilogues
/// around the kernels (plain Rust loops) vectorize 16 wide (the crate's baseline is SSE2).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
#[allow(clippy::too_many_arguments)]
fn forward_images_avx512(
    cpu: Avx512,
    out: &mut [f32],
    inp: &[f32],
    wt: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
    relu: bool,
    scratch: &mut [f32],
) {
    forward_images_body(cpu, out, inp, wt, b, d, relu, scratch)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_images_body(
    cpu: Avx512,
    out: &mut [f32],
    inp: &[f32],
    wt: &[f32],
    b: Option<&[f32]>,
    d: &Conv2dDims,
    relu: bool,
    scratch: &mut [f32],
) {
    let geo = forward_geometry(d);
    let (k, ocg) = (d.k(), d.ocg());
    let (xp, rest) = scratch.split_at_mut(geo.inp.len);
    let yp = &mut rest[..ocg * geo.lq];
    let (p, wp) = (d.p(), geo.inp.wp);
    for (x, y) in inp
        .chunks_exact(d.in_image())
        .zip(out.chunks_exact_mut(d.out_image()))
    {
        geo.fill(xp, x);
        for g in 0..d.groups {
            let a = &wt[g * k * ocg..][..k * ocg];
            fwd_gemm(cpu, a, ocg, &geo.taps, &xp[g * geo.gs..], yp, geo.lq);
            for (o, (plane, src)) in y[g * ocg * p..][..ocg * p]
                .chunks_exact_mut(p)
                .zip(yp.chunks_exact(geo.lq))
                .enumerate()
            {
                let bias = b.map_or(0.0, |b| b[g * ocg + o]);
                for (row, srow) in plane.chunks_exact_mut(d.ow).zip(src.chunks(wp)) {
                    if relu {
                        for (v, &s) in row.iter_mut().zip(srow) {
                            *v = (s + bias).max(0.0);
                        }
                    } else {
                        for (v, &s) in row.iter_mut().zip(srow) {
                            *v = s + bias;
                        }
                    }
                }
            }
        }
    }
}

/// Floats of scratch `backward_input_images` needs.
pub(crate) fn backward_input_scratch(d: &Conv2dDims) -> usize {
    let geo = backward_input_geometry(d);
    geo.inp.len + d.cg() * geo.lq
}

/// Backward to the input of the images of `dout [imgs, OC, OH, OW]` (masked by
/// `relu_y > 0` when given, see `Planes::fill`) into `dinp [imgs, C, H, W]`
/// (overwritten), with `wt` from `pack_backward_input_weights`.
pub(crate) fn backward_input_images(
    cpu: Avx512,
    dinp: &mut [f32],
    dout: &[f32],
    relu_y: Option<&[f32]>,
    wt: &[f32],
    d: &Conv2dDims,
    scratch: &mut [f32],
) {
    // SAFETY: `cpu` proves the CPU has AVX-512F, all `backward_input_images_avx512` requires.
    unsafe { backward_input_images_avx512(cpu, dinp, dout, relu_y, wt, d, scratch) }
}

/// The same, compiled with AVX-512 enabled, so the padding copies and the epilogues
/// around the kernels (plain Rust loops) vectorize 16 wide (the crate's baseline is SSE2).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
#[allow(clippy::too_many_arguments)]
fn backward_input_images_avx512(
    cpu: Avx512,
    dinp: &mut [f32],
    dout: &[f32],
    relu_y: Option<&[f32]>,
    wt: &[f32],
    d: &Conv2dDims,
    scratch: &mut [f32],
) {
    backward_input_images_body(cpu, dinp, dout, relu_y, wt, d, scratch)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_input_images_body(
    cpu: Avx512,
    dinp: &mut [f32],
    dout: &[f32],
    relu_y: Option<&[f32]>,
    wt: &[f32],
    d: &Conv2dDims,
    scratch: &mut [f32],
) {
    let geo = backward_input_geometry(d);
    let (cg, ocg) = (d.cg(), d.ocg());
    let kb = ocg * d.kh * d.kw;
    let (dyp, rest) = scratch.split_at_mut(geo.inp.len);
    let dxp = &mut rest[..cg * geo.lq];
    let (plane, wq) = (d.h * d.w, geo.inp.wp);
    for (i, (dy, dx)) in dout
        .chunks_exact(d.out_image())
        .zip(dinp.chunks_exact_mut(d.in_image()))
        .enumerate()
    {
        let mask = relu_y.map(|y| &y[i * d.out_image()..][..d.out_image()]);
        geo.inp.fill(dyp, dy, mask);
        for g in 0..d.groups {
            let a = &wt[g * kb * cg..][..kb * cg];
            fwd_gemm(
                cpu,
                a,
                cg,
                &geo.taps,
                &dyp[g * ocg * geo.inp.ps..],
                dxp,
                geo.lq,
            );
            for (dst, src) in dx[g * cg * plane..][..cg * plane]
                .chunks_exact_mut(plane)
                .zip(dxp.chunks_exact(geo.lq))
            {
                for (row, srow) in dst.chunks_exact_mut(d.w).zip(src.chunks(wq)) {
                    copy_short(row, &srow[..d.w]);
                }
            }
        }
    }
}

/// Output channels x taps of the weight-gradient register tile.
pub(super) const MO: usize = 4;
pub(super) const NT: usize = 6;

/// Images per block of the weight gradient: as many as keep the block's padded inputs and
/// gradients within about half of a 1 MiB L2 cache.
fn wgrad_block(d: &Conv2dDims) -> usize {
    let geo = forward_geometry(d);
    let per_image = geo.inp.len + d.oc * geo.lq;
    ((1 << 17) / per_image.max(1)).max(1)
}

/// Floats of scratch `backward_weight_images` needs.
pub(crate) fn backward_weight_scratch(d: &Conv2dDims, imgs: usize) -> usize {
    let geo = forward_geometry(d);
    let nb = wgrad_block(d).min(imgs.max(1));
    nb * (geo.inp.len + d.oc * geo.lq) + d.oc * d.k() * V
}

/// `acc[(o0+i)*ldp + t0 + j][..16] += sum_{img, q} dy[img*dys + (o0+i)*lq + q] *
/// x[img*xs + taps[t0+j] + q]` for `q < lq` (a multiple of 16), bounds asserted here.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn wgrad_tile<const M: usize, const N: usize>(
    cpu: Avx512,
    dy: &[f32],
    dys: usize,
    o0: usize,
    lq: usize,
    x: &[f32],
    xs: usize,
    taps: &Taps,
    t0: usize,
    imgs: usize,
    acc: &mut [f32],
    ldp: usize,
) {
    assert!(imgs > 0 && lq.is_multiple_of(V) && t0 + N <= taps.offs.len());
    assert!((imgs - 1) * dys + (o0 + M) * lq <= dy.len());
    assert!((imgs - 1) * xs + taps.max + lq <= x.len());
    assert!(t0 + N <= ldp && ((o0 + M - 1) * ldp + t0 + N) * V <= acc.len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads dy[img*dys + (o0+i)*lq + q] for
    // i < M, q < lq: below (imgs-1)*dys + (o0+M)*lq <= dy.len(); x[img*xs + off + q] for
    // off <= taps.max: below (imgs-1)*xs + taps.max + lq <= x.len(); and reads and writes
    // acc[((o0+i)*ldp + t0 + j)*16 ..+16] for j < N: below the bound asserted above.
    // `acc` is a unique borrow, so it aliases neither input.
    unsafe {
        wgrad_kernel::<M, N>(
            dy.as_ptr().add(o0 * lq),
            dys,
            lq,
            x.as_ptr(),
            xs,
            taps.offs.as_ptr().add(t0),
            imgs,
            acc.as_mut_ptr().add((o0 * ldp + t0) * V),
            ldp,
        )
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn wgrad_kernel<const M: usize, const N: usize>(
    dy: *const f32,
    dys: usize,
    lq: usize,
    x: *const f32,
    xs: usize,
    offs: *const usize,
    imgs: usize,
    acc: *mut f32,
    ldp: usize,
) {
    let mut s = [[_mm512_setzero_ps(); N]; M];
    for (i, row) in s.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(acc.add((i * ldp + j) * V));
        }
    }
    for img in 0..imgs {
        let dyi = dy.add(img * dys);
        let mut xj = [x; N];
        for (j, p) in xj.iter_mut().enumerate() {
            *p = x.add(img * xs + *offs.add(j));
        }
        let mut q = 0;
        while q < lq {
            let mut dv = [_mm512_setzero_ps(); M];
            for (i, v) in dv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(dyi.add(i * lq + q));
            }
            for (j, &p) in xj.iter().enumerate() {
                let xv = _mm512_loadu_ps(p.add(q));
                for (row, &dvi) in s.iter_mut().zip(&dv) {
                    row[j] = _mm512_fmadd_ps(dvi, xv, row[j]);
                }
            }
            q += V;
        }
    }
    for (i, row) in s.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            _mm512_storeu_ps(acc.add((i * ldp + j) * V), v);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn wgrad_kernel<const M: usize, const N: usize>(
    _: *const f32,
    _: usize,
    _: usize,
    _: *const f32,
    _: usize,
    _: *const usize,
    _: usize,
    _: *mut f32,
    _: usize,
) {
    unreachable!("no Avx512 token off x86_64")
}

/// Adds the images of `inp`/`dout` (same count) to `dw [OC, K]` and `db [OC]` (not
/// cleared), `dout` masked by `relu_y > 0` when given (see `Planes::fill`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_weight_images(
    cpu: Avx512,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dout: &[f32],
    relu_y: Option<&[f32]>,
    inp: &[f32],
    d: &Conv2dDims,
    scratch: &mut [f32],
) {
    // SAFETY: `cpu` proves the CPU has AVX-512F, all `backward_weight_images_avx512` requires.
    unsafe { backward_weight_images_avx512(cpu, dw, db, dout, relu_y, inp, d, scratch) }
}

/// The same, compiled with AVX-512 enabled, so the padding copies and the epilogues
/// around the kernels (plain Rust loops) vectorize 16 wide (the crate's baseline is SSE2).
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
#[allow(clippy::too_many_arguments)]
fn backward_weight_images_avx512(
    cpu: Avx512,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dout: &[f32],
    relu_y: Option<&[f32]>,
    inp: &[f32],
    d: &Conv2dDims,
    scratch: &mut [f32],
) {
    backward_weight_images_body(cpu, dw, db, dout, relu_y, inp, d, scratch)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_weight_images_body(
    cpu: Avx512,
    dw: &mut [f32],
    db: Option<&mut [f32]>,
    dout: &[f32],
    relu_y: Option<&[f32]>,
    inp: &[f32],
    d: &Conv2dDims,
    scratch: &mut [f32],
) {
    let mut db = db;
    let geo = forward_geometry(d);
    let imgs = dout.len() / d.out_image();
    let (k, ocg) = (d.k(), d.ocg());
    let nb = wgrad_block(d).min(imgs.max(1));
    let xs = geo.inp.len;
    let dys = d.oc * geo.lq;
    // dy on the wide grid: OC planes of OH x WP, zeros right of OW and up to lq.
    let dy_planes = Planes {
        nch: d.oc,
        h: d.oh,
        w: d.ow,
        hp: d.oh,
        wp: geo.inp.wp,
        top: 0,
        left: 0,
        ps: geo.lq,
        len: dys,
    };
    let (blk, acc) = scratch.split_at_mut(nb * (xs + dys));
    let acc = &mut acc[..d.oc * k * V];
    acc.fill(0.0);
    let (xb, dyb) = blk.split_at_mut(nb * xs);
    for start in (0..imgs).step_by(nb) {
        let cnt = nb.min(imgs - start);
        for i in 0..cnt {
            let img = start + i;
            geo.fill(
                &mut xb[i * xs..],
                &inp[img * d.in_image()..][..d.in_image()],
            );
            let dy_img = img * d.out_image()..(img + 1) * d.out_image();
            let dyp = &mut dyb[i * dys..][..dys];
            dy_planes.fill(dyp, &dout[dy_img.clone()], relu_y.map(|y| &y[dy_img]));
            if let Some(db) = db.as_deref_mut() {
                // The (masked) gradient's plane sums; the wide grid's extra entries are 0.
                for (acc, plane) in db.iter_mut().zip(dyp.chunks_exact(geo.lq)) {
                    *acc += sum8(plane);
                }
            }
        }
        for g in 0..d.groups {
            let x = &xb[g * geo.gs..];
            let dy = &dyb[g * ocg * geo.lq..];
            let acc = &mut acc[g * ocg * k * V..][..ocg * k * V];
            let mut o0 = 0;
            while o0 < ocg {
                let four = ocg - o0 >= MO;
                let mut t0 = 0;
                while t0 < k {
                    let six = k - t0 >= NT;
                    macro_rules! tile {
                        ($m:expr, $n:expr) => {
                            wgrad_tile::<$m, $n>(
                                cpu, dy, dys, o0, geo.lq, x, xs, &geo.taps, t0, cnt, acc, k,
                            )
                        };
                    }
                    match (four, six) {
                        (true, true) => tile!(MO, NT),
                        (true, false) => tile!(MO, 1),
                        (false, true) => tile!(1, NT),
                        (false, false) => tile!(1, 1),
                    }
                    t0 += if six { NT } else { 1 };
                }
                o0 += if four { MO } else { 1 };
            }
        }
    }
    for (a, lanes) in dw.iter_mut().zip(acc.chunks_exact(V)) {
        *a += lanes.iter().sum::<f32>();
    }
}
