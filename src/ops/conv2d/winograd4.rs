//! Winograd F(4x4, 3x3) for the forward and the input gradient of 3x3 stride-1 convs,
//! channels-last. Dimension letters as in `mod.rs`.
//!
//! Each 4x4 block of outputs ("tile") comes from its 6x6 input window with 36 products
//! per input and output channel instead of 144: 4x fewer multiplications than the direct
//! conv and 1.78x fewer than F(2x2, 3x3) (`winograd.rs`). With `B`, `G`, `A` the F(4, 3)
//! matrices of Lavin and Gray (interpolation points 0, 1, -1, 2, -2, infinity):
//! - filters: `U[xi][c][o] = (G g[o, c] G^T)[xi]` for the 36 entries `xi` of the 6x6
//!   result, computed in f64;
//! - input: `V[xi][t][c] = (B^T d[c, t] B)[xi]`, `d[c, t]` the 6x6 window of tile `t`;
//! - 36 GEMMs `M[xi] [T, OC] = V[xi] [T, C] x U[xi] [C, OC]` over the tiles of a block of
//!   images (`channels_last::gemm`);
//! - output: `y[o, tile t] = A^T M[..][t][o] A` (4x4), plus bias and ReLU.
//!
//! Why channels-last: the tiles of the MNIST nets' maps are few per row (an 8x8 map has
//! 2x2 tiles of 4x4), so vectors along the tiles would be mostly empty; 16 channels per
//! vector fill every lane whatever the map size. Each image is copied into a zero-padded
//! channels-last plane and its output back to NCHW by in-register transposes
//! (`channels_last.rs`).
//!
//! The input gradient is the same algorithm on `dy` (masked by the ReLU when fused) with
//! the flipped kernel and its channel axes swapped, padded by `2 - pad` (see `direct.rs`).

use super::channels_last::{gemm, planes_from_channels_last, transpose_planes, Rows};
use super::direct::Avx512;
use super::winograd::{balanced_block, Tiling};
use super::Conv2dDims;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Channels per vector.
const V: usize = 16;

/// Floats between consecutive matrices of `V` and `M` beyond their size (see
/// `winograd_weight.rs`).
const SKEW: usize = 16;

/// Most floats a block's transformed inputs and outputs (all 36 matrices) take: half of
/// a 1 MiB L2, the other half for the transformed filters of the GEMM at hand and the
/// planes.
const BLOCK_FLOATS: usize = 1 << 17;

/// F(4x4, 3x3) on `Tiling` (its fields through `Deref`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wino4(Tiling);

impl std::ops::Deref for Wino4 {
    type Target = Tiling;
    fn deref(&self) -> &Tiling {
        &self.0
    }
}

impl Wino4 {
    pub(crate) fn forward(d: &Conv2dDims) -> Wino4 {
        Wino4(Tiling::forward(d, 4))
    }

    pub(crate) fn backward_input(d: &Conv2dDims) -> Wino4 {
        Wino4(Tiling::backward_input(d, 4))
    }

    /// Positions per row of the padded input plane.
    fn wp(&self) -> usize {
        4 * self.tw + 2
    }

    /// The padded channels-last input plane: `(4*TH + 2) x (4*TW + 2)` positions.
    fn xt_len(&self) -> usize {
        (4 * self.th + 2) * self.wp() * self.cp
    }

    /// The channels-last output of one image on the tile grid, `4*TH x 4*TW`.
    fn yt_len(&self) -> usize {
        16 * self.tiles() * self.ocp
    }

    /// Images per block within `BLOCK_FLOATS`, balanced so the last block is not a sliver.
    fn block(&self, imgs: usize) -> usize {
        balanced_block(imgs, 36 * (self.cp + self.ocp) * self.tiles(), BLOCK_FLOATS)
    }

    /// Floats of scratch `images` needs for chunks of up to `imgs` images.
    pub(crate) fn scratch(&self, imgs: usize) -> usize {
        let tb = self.block(imgs) * self.tiles();
        36 * (tb * self.cp + SKEW) + 36 * (tb * self.ocp + SKEW) + self.xt_len() + self.yt_len()
    }
}

/// `G x` for the 3 entries `(a, b, c)` of a column of filters, 16 filters per lane
/// array: `G` of F(4, 3) is the 6x3 matrix with rows (1/4, 0, 0), (-1/6, -1/6, -1/6),
/// (-1/6, 1/6, -1/6), (1/24, 1/12, 1/6), (1/24, -1/12, 1/6), (0, 0, 1).
#[inline(always)]
fn g_times(a: &[f32; V], b: &[f32; V], c: &[f32; V]) -> [[f32; V]; 6] {
    let mut r = [[0.0f32; V]; 6];
    for l in 0..V {
        let (a, b, c) = (a[l], b[l], c[l]);
        r[0][l] = 0.25 * a;
        r[1][l] = -(a + b + c) * (1.0 / 6.0);
        r[2][l] = -(a - b + c) * (1.0 / 6.0);
        r[3][l] = a * (1.0 / 24.0) + b * (1.0 / 12.0) + c * (1.0 / 6.0);
        r[4][l] = a * (1.0 / 24.0) - b * (1.0 / 12.0) + c * (1.0 / 6.0);
        r[5][l] = c;
    }
    r
}

/// `G g G^T` (6x6, row-major) of 16 3x3 filters at once, `g[k][lane]` entry `k`
/// (row-major) of the lane's filter.
#[inline(always)]
fn filter_transform(g: &[[f32; V]; 9]) -> [[f32; V]; 36] {
    // Down the columns: gc[j][i] = (G g)[i][j].
    let gc: [[[f32; V]; 6]; 3] = std::array::from_fn(|j| g_times(&g[j], &g[3 + j], &g[6 + j]));
    let mut u = [[0.0f32; V]; 36];
    for i in 0..6 {
        // Along row i of G g: (G g G^T)[i][..] = G (G g)[i][..].
        for (jj, v) in g_times(&gc[0][i], &gc[1][i], &gc[2][i])
            .into_iter()
            .enumerate()
        {
            u[i * 6 + jj] = v;
        }
    }
    u
}

/// Transformed filters, `[36][Cp][OCp]` (zero rows and columns for the padding channels)
/// of the conv `geo`: the forward's (`flip` false) or the input gradient's (`flip`: the
/// kernel flipped, its channel axes swapped). Every call transforms the whole kernel
/// (the weights change every step), so it runs 16 filters at a time: first a copy
/// `wt[from][k][to]`, then the transform vectorized over `to`.
pub(crate) fn pack(w: &[f32], d: &Conv2dDims, geo: &Wino4, flip: bool) -> Vec<f32> {
    let (cp, ocp) = (geo.cp, geo.ocp);
    let nfrom = if flip { d.oc } else { d.c };
    let mut wt = vec![0.0f32; nfrom * 9 * ocp];
    for o in 0..d.oc {
        for ci in 0..d.c {
            let g = &w[(o * d.c + ci) * 9..][..9];
            // The conv `geo` reads channel `from` and writes channel `to`.
            let (from, to) = if flip { (o, ci) } else { (ci, o) };
            for k in 0..9 {
                wt[(from * 9 + k) * ocp + to] = if flip { g[8 - k] } else { g[k] };
            }
        }
    }
    let mut u = vec![0.0; 36 * cp * ocp];
    for from in 0..nfrom {
        for t0 in (0..ocp).step_by(V) {
            let g: [[f32; V]; 9] =
                std::array::from_fn(|k| wt[(from * 9 + k) * ocp + t0..][..V].try_into().unwrap());
            for (xi, v) in filter_transform(&g).iter().enumerate() {
                u[(xi * cp + from) * ocp + t0..][..V].copy_from_slice(v);
            }
        }
    }
    u
}

/// Runs the conv `geo` on the images of `inp [imgs, C, H, W]` (masked by `mask > 0` when
/// given) into `out [imgs, OC, OH, OW]`, with `u` from `pack`, bias and ReLU applied on
/// the way out. `out` is only written, every value once, so it may start uninitialized.
#[allow(clippy::too_many_arguments)]
pub(crate) fn images(
    cpu: Avx512,
    geo: &Wino4,
    out: &mut [MaybeUninit<f32>],
    inp: &[f32],
    mask: Option<&[f32]>,
    u: &[f32],
    b: Option<&[f32]>,
    relu: bool,
    scratch: &mut [f32],
) {
    let (cp, ocp, nt) = (geo.cp, geo.ocp, geo.tiles());
    let (in_image, out_image) = (geo.in_image(), geo.out_image());
    let imgs = out.len() / out_image;
    assert_eq!(inp.len(), imgs * in_image);
    assert!(mask.is_none_or(|m| m.len() == inp.len()));
    assert_eq!(u.len(), 36 * cp * ocp);
    assert!(b.is_none_or(|b| b.len() == geo.oc));
    let nb = geo.block(imgs);
    let (vs, ms) = (nb * nt * cp + SKEW, nb * nt * ocp + SKEW);
    let (vbuf, rest) = scratch.split_at_mut(36 * vs);
    let (mbuf, rest) = rest.split_at_mut(36 * ms);
    let (xt, rest) = rest.split_at_mut(geo.xt_len());
    let yt = &mut rest[..geo.yt_len()];
    // Only the positions inside the input are ever written: the padding and the
    // channels past C stay zero for every image.
    xt.fill(0.0);
    let wp = geo.wp();
    let rows = geo.h.min(4 * geo.th + 2 - geo.top);
    let cols = geo.w.min(wp - geo.left);
    for start in (0..imgs).step_by(nb) {
        let cnt = nb.min(imgs - start);
        for k in 0..cnt {
            let at = (start + k) * in_image..(start + k + 1) * in_image;
            let (src, m) = (&inp[at.clone()], mask.map(|m| &m[at]));
            // SAFETY: `cpu` proves AVX-512F. It reads src (and m, the same length)
            // [ci*H*W + y*W + x] for ci < C, y < rows <= H, x < cols <= W; it writes
            // xt[((y + top)*wp + left + x)*Cp + ci] for ci < Cp: y + top < 4*TH + 2 and
            // left + x < wp, so below xt_len = xt.len(). `xt` is a unique borrow.
            unsafe {
                transpose_planes(
                    src.as_ptr(),
                    m.map(|m| m.as_ptr()),
                    (geo.c, geo.h * geo.w, geo.w),
                    (rows, cols),
                    xt.as_mut_ptr().add((geo.top * wp + geo.left) * cp),
                    wp,
                    cp,
                );
            }
            input_transform(cpu, geo, xt, vbuf, k * nt, vs);
        }
        for xi in 0..36 {
            // M[xi] [tiles, OCp] = V[xi] [tiles, Cp] x U[xi] [Cp, OCp].
            let v = &vbuf[xi * vs..][..cnt * nt * cp];
            let m = &mut mbuf[xi * ms..][..cnt * nt * ocp];
            let uxi = &u[xi * cp * ocp..][..cp * ocp];
            gemm(cpu, Rows::of_rows(v, cp, cnt * nt), uxi, ocp, cp, m, false);
        }
        for k in 0..cnt {
            output_transform(cpu, geo, mbuf, k * nt, ms, yt);
            let y = &mut out[(start + k) * out_image..][..out_image];
            // SAFETY: `cpu` proves AVX-512F. It reads yt[(r*4*TW + s)*OCp + o] for
            // r < OH <= 4*TH, s < OW <= 4*TW, o < OCp: below yt_len = yt.len(); it writes
            // y[o*OH*OW + r*OW + s] for o < OC (masked stores), every one of them: inside
            // `y`, whose values are thereby all initialized; `b` has OC values (asserted).
            // `y` is a unique borrow, and `MaybeUninit<f32>` has f32's layout.
            unsafe {
                planes_from_channels_last(
                    yt.as_ptr(),
                    4 * geo.tw,
                    ocp,
                    (geo.oh, geo.ow),
                    y.as_mut_ptr().cast::<f32>(),
                    (geo.oc, geo.oh * geo.ow, geo.ow),
                    b,
                    relu,
                );
            }
        }
    }
}

/// `v[xi*vs + (t0 + t)*Cp + ci] = (B^T d_t B)[xi]` for every tile `t = i*TW + j` of the
/// image in `xt`, `d_t[a][b] = xt[(4i + a)*(4*TW + 2) + 4j + b]`.
fn input_transform(cpu: Avx512, geo: &Wino4, xt: &[f32], v: &mut [f32], t0: usize, vs: usize) {
    assert!(xt.len() >= geo.xt_len());
    assert!(35 * vs + (t0 + geo.tiles()) * geo.cp <= v.len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads xt[p*Cp + ci] for positions p of
    // the (4*TH + 2) x (4*TW + 2) plane and ci < Cp: below xt_len <= xt.len(). It writes
    // v[xi*vs + (t0 + t)*Cp + ci] for xi < 36, t < TH*TW, ci < Cp: below the bound
    // asserted above. `v` is a unique borrow, so it does not alias `xt`.
    unsafe {
        input_transform_kernel(
            xt.as_ptr(),
            (geo.th, geo.tw),
            geo.cp,
            v.as_mut_ptr().add(t0 * geo.cp),
            vs,
        )
    }
}

/// `B^T d` for the 6 rows `d` of a column (each vector 16 channels).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn bt6(d: [__m512; 6]) -> [__m512; 6] {
    let c = |v: f32| _mm512_set1_ps(v);
    let (d13, d42) = (_mm512_sub_ps(d[1], d[3]), _mm512_sub_ps(d[4], d[2]));
    [
        // 4 d0 - 5 d2 + d4
        _mm512_fmadd_ps(c(4.0), d[0], _mm512_fmadd_ps(c(-5.0), d[2], d[4])),
        // -4 (d1 + d2) + d3 + d4
        _mm512_fmadd_ps(
            c(-4.0),
            _mm512_add_ps(d[1], d[2]),
            _mm512_add_ps(d[3], d[4]),
        ),
        // 4 (d1 - d2) - d3 + d4
        _mm512_fmadd_ps(c(4.0), _mm512_sub_ps(d[1], d[2]), _mm512_sub_ps(d[4], d[3])),
        // -2 (d1 - d3) - d2 + d4
        _mm512_fmadd_ps(c(-2.0), d13, d42),
        // 2 (d1 - d3) - d2 + d4
        _mm512_fmadd_ps(c(2.0), d13, d42),
        // 4 d1 - 5 d3 + d5
        _mm512_fmadd_ps(c(4.0), d[1], _mm512_fmadd_ps(c(-5.0), d[3], d[5])),
    ]
}

/// `A^T m` for the 6 rows `m` of a column.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn at6(m: [__m512; 6]) -> [__m512; 4] {
    let c = |v: f32| _mm512_set1_ps(v);
    let (p12, m12) = (_mm512_add_ps(m[1], m[2]), _mm512_sub_ps(m[1], m[2]));
    let (p34, m34) = (_mm512_add_ps(m[3], m[4]), _mm512_sub_ps(m[3], m[4]));
    [
        _mm512_add_ps(_mm512_add_ps(m[0], p12), p34),
        _mm512_fmadd_ps(c(2.0), m34, m12),
        _mm512_fmadd_ps(c(4.0), p34, p12),
        _mm512_add_ps(_mm512_fmadd_ps(c(8.0), m34, m12), m[5]),
    ]
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_transform_kernel(
    xt: *const f32,
    (th, tw): (usize, usize),
    cp: usize,
    out: *mut f32,
    vs: usize,
) {
    let wp = 4 * tw + 2;
    for i in 0..th {
        for j in 0..tw {
            let dst = out.add((i * tw + j) * cp);
            for cv in (0..cp).step_by(V) {
                let at = |a: usize, b: usize| ((4 * i + a) * wp + 4 * j + b) * cp + cv;
                // Columns first: r[b] = B^T (column b of the window).
                let r: [[__m512; 6]; 6] = std::array::from_fn(|b| {
                    bt6(std::array::from_fn(|a| _mm512_loadu_ps(xt.add(at(a, b)))))
                });
                // Then rows: row a of B^T d B is B^T applied to (r[0][a], ..., r[5][a]).
                #[allow(clippy::needless_range_loop)] // `a` indexes the inner arrays
                for a in 0..6 {
                    let row = bt6(std::array::from_fn(|b| r[b][a]));
                    for (b, &v) in row.iter().enumerate() {
                        _mm512_storeu_ps(dst.add((a * 6 + b) * vs + cv), v);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_transform_kernel(
    _: *const f32,
    _: (usize, usize),
    _: usize,
    _: *mut f32,
    _: usize,
) {
    unreachable!("no Avx512 token off x86_64")
}

/// `yt[(4i + a)*4*TW + 4j + b][o] = (A^T M_t A)[a][b]` for every tile `t = i*TW + j` of
/// one image, `M_t[xi] = m[xi*ms + (t0 + t)*OCp + o]`.
fn output_transform(cpu: Avx512, geo: &Wino4, m: &[f32], t0: usize, ms: usize, yt: &mut [f32]) {
    assert!(35 * ms + (t0 + geo.tiles()) * geo.ocp <= m.len());
    assert!(yt.len() >= geo.yt_len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads m[xi*ms + (t0 + t)*OCp + o] for
    // xi < 36, t < TH*TW, o < OCp: below the bound asserted above; it writes
    // yt[p*OCp + o] for the 4*TH x 4*TW positions p: below yt_len <= yt.len(). `yt` is a
    // unique borrow.
    unsafe {
        output_transform_kernel(
            m.as_ptr().add(t0 * geo.ocp),
            ms,
            (geo.th, geo.tw),
            geo.ocp,
            yt.as_mut_ptr(),
        )
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn output_transform_kernel(
    m: *const f32,
    ms: usize,
    (th, tw): (usize, usize),
    ocp: usize,
    yt: *mut f32,
) {
    let wq = 4 * tw;
    for i in 0..th {
        for j in 0..tw {
            let src = m.add((i * tw + j) * ocp);
            for ov in (0..ocp).step_by(V) {
                // Columns first: s[b] = A^T (column b of M), 4 rows.
                let s: [[__m512; 4]; 6] = std::array::from_fn(|b| {
                    at6(std::array::from_fn(|a| {
                        _mm512_loadu_ps(src.add((a * 6 + b) * ms + ov))
                    }))
                });
                #[allow(clippy::needless_range_loop)] // `a` indexes the inner arrays
                for a in 0..4 {
                    let row = at6(std::array::from_fn(|b| s[b][a]));
                    let dst = yt.add(((4 * i + a) * wq + 4 * j) * ocp + ov);
                    for (b, &v) in row.iter().enumerate() {
                        _mm512_storeu_ps(dst.add(b * ocp), v);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn output_transform_kernel(
    _: *const f32,
    _: usize,
    _: (usize, usize),
    _: usize,
    _: *mut f32,
) {
    unreachable!("no Avx512 token off x86_64")
}
