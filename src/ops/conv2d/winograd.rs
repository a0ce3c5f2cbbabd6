//! Winograd F(2x2, 3x3) for 3x3 stride-1 undilated ungrouped convolutions, the simpler
//! variant: by default (`Tuning::winograd4`) the forward and input gradient take
//! F(4x4, 3x3) (`winograd4.rs`), and the weight gradient (`winograd_weight.rs`) shares
//! this file's transforms. Each 2x2 block of outputs ("tile") is computed from its 4x4
//! input window with 16 products per input and output channel instead of 36, i.e. 2.25x
//! fewer multiplications. Dimension letters as in `mod.rs`.
//!
//! With `B`, `G`, `A` the F(2, 3) matrices (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2015):
//! - filters: `U[xi][c][o] = (G g[o, c] G^T)[xi]` for the 16 entries `xi` of the 4x4 result;
//! - input: `V[xi][c][t] = (B^T d[c, t] B)[xi]`, `d[c, t]` the 4x4 window of tile `t`;
//! - 16 GEMMs `M[xi] [OC, T] = U[xi]^T [OC, C] x V[xi] [C, T]` (the direct kernels' forward
//!   GEMM, with "taps" `c*T`), over the tiles of a block of images;
//! - output: `y[o, tile t] = A^T M[..][o][t] A` (2x2), plus bias and ReLU.
//!
//! Vectorized transforms without gathers: each input plane is copied into the zero-padded
//! plane `P` of `direct.rs` (`(2*TH + 2) x (2*TW + 2)`), and the input transform takes a
//! tile row at a time, 16 tiles per vector: for each of the window's 4 rows it loads 32
//! floats twice (at `2j` and `2j + 2`) and splits them with even/odd permutes into the
//! window's 4 columns, then writes the 16 results to `V` at the tile index
//! `t = i*TW + j`. The output transform reads `M` the same way and interleaves the four
//! output phases of a tile row into two output rows (bias and ReLU on the way).
//!
//! The weight gradient is in `winograd_weight.rs`: it sums over the tiles, so it works
//! channels-last instead.
//!
//! The backward to the input is the same algorithm on `dy` with the flipped kernel and
//! its channel axes swapped, padded by `2 - pad` (see `direct.rs`).

use super::direct::{fwd_gemm, Avx512, Planes, Taps};
use super::Conv2dDims;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// A 3x3 stride-1 conv as the Winograd kernels see it: `c` input planes of `h x w`,
/// padded by `(top, left)` (zeros beyond the input on the other sides), to `oc` planes of
/// `oh x ow`, in tiles of `m x m` outputs. The forward's, or the input gradient's (the
/// flipped conv, padded by `2 - pad`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tiling {
    pub(super) c: usize,
    pub(super) oc: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) top: usize,
    pub(super) left: usize,
    /// Tiles per image: rows, columns.
    pub(super) th: usize,
    pub(super) tw: usize,
    /// `c` and `oc` rounded up to whole vectors (the channels-last kernels' widths).
    pub(super) cp: usize,
    pub(super) ocp: usize,
}

impl Tiling {
    fn new(
        c: usize,
        oc: usize,
        (h, w): (usize, usize),
        (top, left): (usize, usize),
        (oh, ow): (usize, usize),
        m: usize,
    ) -> Tiling {
        Tiling {
            c,
            oc,
            h,
            w,
            oh,
            ow,
            top,
            left,
            th: oh.div_ceil(m),
            tw: ow.div_ceil(m),
            cp: c.div_ceil(V) * V,
            ocp: oc.div_ceil(V) * V,
        }
    }

    /// The forward conv of `d` in tiles of `m x m`.
    pub(super) fn forward(d: &Conv2dDims, m: usize) -> Tiling {
        Tiling::new(
            d.c,
            d.oc,
            (d.h, d.w),
            (d.pad_top, d.pad_left),
            (d.oh, d.ow),
            m,
        )
    }

    /// The conv whose output is the input gradient of `d`, in tiles of `m x m`.
    pub(super) fn backward_input(d: &Conv2dDims, m: usize) -> Tiling {
        Tiling::new(
            d.oc,
            d.c,
            (d.oh, d.ow),
            (2 - d.pad_top, 2 - d.pad_left),
            (d.h, d.w),
            m,
        )
    }

    pub(super) fn tiles(&self) -> usize {
        self.th * self.tw
    }

    pub(super) fn in_image(&self) -> usize {
        self.c * self.h * self.w
    }

    pub(super) fn out_image(&self) -> usize {
        self.oc * self.oh * self.ow
    }
}

/// Images per block of a chunk of `imgs` so that the block's `per_image` floats each stay
/// within `budget` (at least one image), balanced so that the last block is not a sliver.
pub(super) fn balanced_block(imgs: usize, per_image: usize, budget: usize) -> usize {
    let imgs = imgs.max(1);
    let cap = (budget / per_image.max(1)).clamp(1, imgs);
    imgs.div_ceil(imgs.div_ceil(cap))
}

/// F(2x2, 3x3) on `Tiling` (its fields through `Deref`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wino(Tiling);

impl std::ops::Deref for Wino {
    type Target = Tiling;
    fn deref(&self) -> &Tiling {
        &self.0
    }
}

/// Positions per vector (the GEMM's tile count is rounded up to it).
const V: usize = 16;

/// Floats between consecutive matrices of `V` and `M` beyond their size: the transforms
/// touch all 16 at once, and with sizes that are multiples of 4 KiB (32 channels x 128
/// tiles) those 16 streams fell into the same L1 sets.
const SKEW: usize = 16;

/// Whether Winograd F(2x2, 3x3) computes `d` (and, through the flipped conv, its input
/// gradient): 3x3, stride 1, no dilation, one group, padding at most 2 before the input
/// (the input gradient's conv is padded by `2 - pad`).
pub(crate) fn applies(d: &Conv2dDims) -> bool {
    d.kh == 3
        && d.kw == 3
        && d.stride == (1, 1)
        && d.dilation == (1, 1)
        && d.groups == 1
        && d.pad_top <= 2
        && d.pad_left <= 2
        && d.p() > 0
}

impl Wino {
    pub(crate) fn forward(d: &Conv2dDims) -> Wino {
        Wino(Tiling::forward(d, 2))
    }

    pub(crate) fn backward_input(d: &Conv2dDims) -> Wino {
        Wino(Tiling::backward_input(d, 2))
    }

    /// The zero-padded input planes of one image: `(2*TH + 2) x (2*TW + 2)` each, the
    /// windows of every tile inside, and 32 floats more for the last row's vector loads.
    fn planes(&self) -> Planes {
        let (hp, wp) = (2 * self.th + 2, 2 * self.tw + 2);
        Planes {
            nch: self.c,
            h: self.h,
            w: self.w,
            hp,
            wp,
            top: self.top as isize,
            left: self.left as isize,
            ps: hp * wp,
            len: self.c * hp * wp + 2 * V,
        }
    }

    /// Images per block: the block's `V` and `M` within about half of a 1 MiB L2 cache,
    /// balanced so that the last block of `imgs` is not a sliver.
    fn block(&self, imgs: usize) -> usize {
        balanced_block(imgs, 16 * (self.c + self.oc) * self.tiles(), 1 << 17)
    }

    /// Floats of scratch `images` needs for chunks of up to `imgs` images.
    pub(crate) fn scratch(&self, imgs: usize) -> usize {
        let tp = (self.block(imgs) * self.tiles()).div_ceil(V) * V;
        16 * ((self.c + self.oc) * tp + 2 * SKEW) + self.planes().len
    }
}

/// `G g G^T` of a 3x3 `g` (row-major), the 4x4 result row-major.
fn filter_transform(g: [f32; 9]) -> [f32; 16] {
    // Rows of G g: g0, (g0 + g1 + g2)/2, (g0 - g1 + g2)/2, g2 (each a row of 3).
    let mut r = [[0.0f32; 3]; 4];
    for j in 0..3 {
        let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
        r[0][j] = g0;
        r[1][j] = 0.5 * (g0 + g1 + g2);
        r[2][j] = 0.5 * (g0 - g1 + g2);
        r[3][j] = g2;
    }
    let mut u = [0.0f32; 16];
    for (i, row) in r.iter().enumerate() {
        let [g0, g1, g2] = *row;
        u[i * 4] = g0;
        u[i * 4 + 1] = 0.5 * (g0 + g1 + g2);
        u[i * 4 + 2] = 0.5 * (g0 - g1 + g2);
        u[i * 4 + 3] = g2;
    }
    u
}

/// Transformed filters for the forward, `[16][C][OC]`.
pub(crate) fn pack_forward(w: &[f32], d: &Conv2dDims) -> Vec<f32> {
    let (c, oc) = (d.c, d.oc);
    let mut u = vec![0.0; 16 * c * oc];
    for o in 0..oc {
        for ci in 0..c {
            let g: [f32; 9] = w[(o * c + ci) * 9..][..9].try_into().unwrap();
            for (xi, &v) in filter_transform(g).iter().enumerate() {
                u[(xi * c + ci) * oc + o] = v;
            }
        }
    }
    u
}

/// Transformed filters for the input gradient, `[16][OC][C]`: the kernel flipped, its
/// channel axes swapped.
pub(crate) fn pack_backward_input(w: &[f32], d: &Conv2dDims) -> Vec<f32> {
    let (c, oc) = (d.c, d.oc);
    let mut u = vec![0.0; 16 * c * oc];
    for o in 0..oc {
        for ci in 0..c {
            let mut g: [f32; 9] = w[(o * c + ci) * 9..][..9].try_into().unwrap();
            g.reverse();
            for (xi, &v) in filter_transform(g).iter().enumerate() {
                u[(xi * oc + o) * c + ci] = v;
            }
        }
    }
    u
}

/// Runs the conv `geo` on the images of `inp [imgs, C, H, W]` (masked by `mask > 0` when
/// given, as `conv2d_relu`'s backward masks `dy`) into `out [imgs, OC, OH, OW]`
/// (overwritten), with `u` from `pack_forward` / `pack_backward_input`, bias and ReLU
/// applied on the way out.
#[allow(clippy::too_many_arguments)]
pub(crate) fn images(
    cpu: Avx512,
    geo: &Wino,
    out: &mut [f32],
    inp: &[f32],
    mask: Option<&[f32]>,
    u: &[f32],
    b: Option<&[f32]>,
    relu: bool,
    scratch: &mut [f32],
) {
    // SAFETY: `cpu` proves the CPU has AVX-512F, all `images_avx512` requires.
    unsafe { images_avx512(cpu, geo, out, inp, mask, u, b, relu, scratch) }
}

/// The same, compiled with AVX-512 enabled so the transforms (plain Rust loops) vectorize
/// 16 wide.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
#[allow(clippy::too_many_arguments)]
fn images_avx512(
    cpu: Avx512,
    geo: &Wino,
    out: &mut [f32],
    inp: &[f32],
    mask: Option<&[f32]>,
    u: &[f32],
    b: Option<&[f32]>,
    relu: bool,
    scratch: &mut [f32],
) {
    images_body(cpu, geo, out, inp, mask, u, b, relu, scratch)
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn images_body(
    cpu: Avx512,
    geo: &Wino,
    out: &mut [f32],
    inp: &[f32],
    mask: Option<&[f32]>,
    u: &[f32],
    b: Option<&[f32]>,
    relu: bool,
    scratch: &mut [f32],
) {
    let imgs = out.len() / geo.out_image();
    debug_assert_eq!(inp.len(), imgs * geo.in_image());
    debug_assert_eq!(u.len(), 16 * geo.c * geo.oc);
    let (c, oc, nt) = (geo.c, geo.oc, geo.tiles());
    let nb = geo.block(imgs);
    let tp = (nb * nt).div_ceil(V) * V;
    let (vbuf, rest) = scratch.split_at_mut(16 * (c * tp + SKEW));
    let (mbuf, rest) = rest.split_at_mut(16 * (oc * tp + SKEW));
    let pl = geo.planes();
    let xp = &mut rest[..pl.len];
    let plane_out = geo.oh * geo.ow;
    for start in (0..imgs).step_by(nb) {
        let cnt = nb.min(imgs - start);
        // This block's tiles, rounded up to whole vectors: the row length of V and M. The
        // entries past `cnt * nt` hold stale values that only reach unread columns of M.
        let lq = (cnt * nt).div_ceil(V) * V;
        let taps = Taps::new((0..c).map(|ci| ci * lq).collect());
        // Stride of the 16 matrices of V and M, skewed off multiples of 4 KiB.
        let (vs, ms) = (c * lq + SKEW, oc * lq + SKEW);
        for k in 0..cnt {
            let img = start + k;
            let at = img * geo.in_image()..(img + 1) * geo.in_image();
            pl.fill(xp, &inp[at.clone()], mask.map(|m| &m[at]));
            for ci in 0..c {
                let plane = &xp[ci * pl.ps..];
                input_transform(cpu, geo, vbuf, ci * lq + k * nt, vs, plane);
            }
        }
        for xi in 0..16 {
            let a = &u[xi * c * oc..][..c * oc];
            let v = &vbuf[xi * vs..][..c * lq];
            let m = &mut mbuf[xi * ms..][..oc * lq];
            fwd_gemm(cpu, a, oc, &taps, v, m, lq);
        }
        for k in 0..cnt {
            let img = start + k;
            for o in 0..oc {
                let bias = b.map_or(0.0, |b| b[o]);
                let y = &mut out[img * geo.out_image() + o * plane_out..][..plane_out];
                output_transform(cpu, geo, y, mbuf, o * lq + k * nt, ms, bias, relu);
            }
        }
    }
}

/// `v[at + xi*stride + i*TW + j] = (B^T d B)[xi]` for every tile `(i, j)` of one channel
/// and image, `d[a][b] = P[2i + a][2j + b]` of the padded plane `P` at the start of
/// `plane` (row length `2*TW + 2`), one tile row at a time (16 tiles per vector).
#[inline(always)]
fn input_transform(
    cpu: Avx512,
    geo: &Wino,
    v: &mut [f32],
    at: usize,
    stride: usize,
    plane: &[f32],
) {
    let wp = 2 * geo.tw + 2;
    // The last vector load of tile row i, columns j0.. (j0 < TW) starts at
    // (2i + 3)*wp + 2*j0 + 18 and is 16 long: below (2*TH + 2)*wp + 32.
    assert!((2 * geo.th + 2) * wp + 2 * V <= plane.len());
    assert!(at + 15 * stride + geo.tiles() <= v.len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads plane[..(2*TH + 2)*wp + 32] and
    // writes v[at + xi*stride + i*TW + j] for i < TH, j < TW only (masked stores touch no
    // other lane): in bounds by the asserts above. `v` is a unique borrow, so it does not
    // alias `plane`.
    unsafe {
        input_transform_kernel(
            plane.as_ptr(),
            (geo.th, geo.tw),
            v.as_mut_ptr().add(at),
            stride,
        )
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_transform_kernel(
    p: *const f32,
    (th, tw): (usize, usize),
    out: *mut f32,
    stride: usize,
) {
    let wp = 2 * tw + 2;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for i in 0..th {
        let mut j = 0;
        while j < tw {
            let k = lanes(tw - j);
            // x[a][b] lane l = P[2i + a][2(j + l) + b]; lanes past TW read unused values.
            let x: [[__m512; 4]; 4] = std::array::from_fn(|a| {
                let row = p.add((2 * i + a) * wp + 2 * j);
                let (lo, hi) = (_mm512_loadu_ps(row), _mm512_loadu_ps(row.add(V)));
                let (lo2, hi2) = (_mm512_loadu_ps(row.add(2)), _mm512_loadu_ps(row.add(V + 2)));
                [
                    _mm512_permutex2var_ps(lo, even, hi),
                    _mm512_permutex2var_ps(lo, odd, hi),
                    _mm512_permutex2var_ps(lo2, even, hi2),
                    _mm512_permutex2var_ps(lo2, odd, hi2),
                ]
            });
            let dst = out.add(i * tw + j);
            for (a, row) in input_tile(x).iter().enumerate() {
                for (b, &v) in row.iter().enumerate() {
                    _mm512_mask_storeu_ps(dst.add((a * 4 + b) * stride), k, v);
                }
            }
            j += V;
        }
    }
}

/// `B^T x B` of 4x4 windows, one per lane: `x[a][b]` holds row `a`, column `b` of each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn input_tile(x: [[__m512; 4]; 4]) -> [[__m512; 4]; 4] {
    // B^T x: rows x0 - x2, x1 + x2, x2 - x1, x1 - x3; then the same along each row.
    let c: [[__m512; 4]; 4] = [
        bt4(x[0][0], x[1][0], x[2][0], x[3][0]),
        bt4(x[0][1], x[1][1], x[2][1], x[3][1]),
        bt4(x[0][2], x[1][2], x[2][2], x[3][2]),
        bt4(x[0][3], x[1][3], x[2][3], x[3][3]),
    ];
    [
        bt4(c[0][0], c[1][0], c[2][0], c[3][0]),
        bt4(c[0][1], c[1][1], c[2][1], c[3][1]),
        bt4(c[0][2], c[1][2], c[2][2], c[3][2]),
        bt4(c[0][3], c[1][3], c[2][3], c[3][3]),
    ]
}

/// `B^T (d0, d1, d2, d3)` of F(2, 3): `d0 - d2, d1 + d2, d2 - d1, d1 - d3`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn bt4(d0: __m512, d1: __m512, d2: __m512, d3: __m512) -> [__m512; 4] {
    [
        _mm512_sub_ps(d0, d2),
        _mm512_add_ps(d1, d2),
        _mm512_sub_ps(d2, d1),
        _mm512_sub_ps(d1, d3),
    ]
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_transform_kernel(_: *const f32, _: (usize, usize), _: *mut f32, _: usize) {
    unreachable!("no Avx512 token off x86_64")
}

/// The lowest `n` lanes (all 16 from `n >= 16` up).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn lanes(n: usize) -> __mmask16 {
    if n >= V {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// One output plane `y [OH, OW]` (overwritten): `y[2i + a][2j + b] = (A^T M A)[a][b] +
/// bias` (ReLU'd if asked) for each tile `(i, j)`, `M[xi] = m[at + xi*stride + i*TW + j]`,
/// one tile row at a time, the four phases interleaved into two output rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn output_transform(
    cpu: Avx512,
    geo: &Wino,
    y: &mut [f32],
    m: &[f32],
    at: usize,
    stride: usize,
    bias: f32,
    relu: bool,
) {
    assert!(at + 15 * stride + geo.tiles() <= m.len());
    assert!(y.len() == geo.oh * geo.ow && geo.oh <= 2 * geo.th && geo.ow <= 2 * geo.tw);
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads m[at + xi*stride + i*TW + j] for
    // xi < 16, i < TH, j < TW and writes y[r*OW + s] for r < OH, s < OW only (masked loads
    // and stores touch no other lane): in bounds by the asserts above; `y` is a unique
    // borrow.
    unsafe {
        output_transform_kernel(
            m.as_ptr().add(at),
            stride,
            (geo.th, geo.tw),
            (geo.oh, geo.ow),
            y.as_mut_ptr(),
            bias,
            relu,
        )
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn output_transform_kernel(
    m: *const f32,
    stride: usize,
    (th, tw): (usize, usize),
    (oh, ow): (usize, usize),
    y: *mut f32,
    bias: f32,
    relu: bool,
) {
    let bv = _mm512_set1_ps(bias);
    let zero = _mm512_setzero_ps();
    let lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for i in 0..th {
        let mut j = 0;
        while j < tw {
            let t = i * tw + j;
            let k = lanes(tw - j);
            let x: [__m512; 16] =
                std::array::from_fn(|xi| _mm512_maskz_loadu_ps(k, m.add(xi * stride + t)));
            // A^T x: rows x0 + x1 + x2, x1 - x2 - x3; then the same along each row.
            let s0: [__m512; 4] =
                std::array::from_fn(|b| _mm512_add_ps(_mm512_add_ps(x[b], x[4 + b]), x[8 + b]));
            let s1: [__m512; 4] = std::array::from_fn(|b| {
                _mm512_sub_ps(_mm512_sub_ps(x[4 + b], x[8 + b]), x[12 + b])
            });
            let fin = |v: __m512| {
                let v = _mm512_add_ps(v, bv);
                if relu {
                    _mm512_max_ps(v, zero)
                } else {
                    v
                }
            };
            // Output rows 2i (from s0) and 2i + 1 (from s1, if inside), columns 2j.. (at
            // most 32 of them, clipped at OW).
            for (a, s) in [s0, s1].iter().enumerate() {
                let r = 2 * i + a;
                if r >= oh {
                    continue;
                }
                let e = fin(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), s[2]));
                let o = fin(_mm512_sub_ps(_mm512_sub_ps(s[1], s[2]), s[3]));
                let col = 2 * j;
                let row = y.add(r * ow);
                _mm512_mask_storeu_ps(
                    row.add(col),
                    lanes(ow - col),
                    _mm512_permutex2var_ps(e, lo_idx, o),
                );
                // `wrapping_add`: past the row's end when no lane is stored.
                _mm512_mask_storeu_ps(
                    row.wrapping_add(col + V),
                    lanes(ow.saturating_sub(col + V)),
                    _mm512_permutex2var_ps(e, hi_idx, o),
                );
            }
            j += V;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform_kernel(
    _: *const f32,
    _: usize,
    _: (usize, usize),
    _: (usize, usize),
    _: *mut f32,
    _: f32,
    _: bool,
) {
    unreachable!("no Avx512 token off x86_64")
}

/// `G^T u G` (3x3, row-major) of a 4x4 `u`: the adjoint of `filter_transform`.
pub(super) fn filter_transform_adjoint(u: [f32; 16]) -> [f32; 9] {
    // Rows of G^T u: u0 + (u1 + u2)/2, (u1 - u2)/2, (u1 + u2)/2 + u3 (each a row of 4).
    let mut r = [[0.0f32; 4]; 3];
    for j in 0..4 {
        let (u0, u1, u2, u3) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
        r[0][j] = u0 + 0.5 * (u1 + u2);
        r[1][j] = 0.5 * (u1 - u2);
        r[2][j] = 0.5 * (u1 + u2) + u3;
    }
    let mut g = [0.0f32; 9];
    for (i, row) in r.iter().enumerate() {
        let [u0, u1, u2, u3] = *row;
        g[i * 3] = u0 + 0.5 * (u1 + u2);
        g[i * 3 + 1] = 0.5 * (u1 - u2);
        g[i * 3 + 2] = 0.5 * (u1 + u2) + u3;
    }
    g
}
