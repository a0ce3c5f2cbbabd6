//! The weight gradient of a 3x3 stride-1 conv by Winograd F(2x2, 3x3), on channels-last
//! copies of the input and the output gradient. Dimension letters as in `mod.rs`.
//!
//! The forward is `y_t = A^T [U . V_t] A` per 2x2 output tile `t`, with `U = G g G^T` the
//! transformed 3x3 filter and `V_t = B^T d_t B` the transformed 4x4 input window (see
//! `winograd.rs`). It is linear in `U`, so the filter's gradient is
//! `dg = G^T (sum over tiles t of (A dy_t A^T) . V_t) G`: for each of the 16 entries `xi`
//! of the 4x4 transforms one product
//! `dU[xi] [OC, C] = sum_t W[xi][t] [OC] (outer) V[xi][t] [C]`,
//! with `W[xi][t] = (A dy_t A^T)[xi]`: 16 GEMMs with `K` = the tiles, 2.25x fewer
//! multiplications than the direct weight gradient.
//!
//! Why channels-last: the GEMMs sum over the tiles, so they want tiles as the slow axis
//! and channels as the vector axis (`V[xi] [T, C]`, `W[xi] [T, OC]`). Then the register
//! tile of `MR` output channels x `NR` vectors of input channels accumulates over every
//! tile of a block without a horizontal sum, and adds to a compact `[16][OC][C]`
//! accumulator that stays in L2. The transforms, too, run 16 channels per vector with
//! plain loads and full-width stores whatever the map size (an 8x8 map has only 4 tiles
//! per row, too few for vectors along the tiles). The first Winograd weight gradient
//! vectorized along the tiles (as the forward does) kept a 16-lane accumulator per
//! weight (16 x 16 x OC x C floats, 4 MiB for 64->64) and its transforms wrote 16
//! strided streams of mostly masked-off lanes; it ran slower than the direct kernel on
//! two threads.
//!
//! Per block of images (sized so its transformed data stays in L2): each image's input
//! is copied into a zero-padded channels-last plane `[2*TH + 2][2*TW + 2][Cp]` (`Cp` = C
//! rounded up to 16, the extra channels zero) and transformed into `V`; its gradient
//! (masked by `relu_y > 0` when given, as `conv2d_relu`'s backward masks `dy`) into
//! `[2*TH][2*TW][OCp]` and transformed into `W`; then the 16 GEMMs add the block's tiles
//! to the accumulator. At the end `dw += G^T dU G`.

use super::channels_last::{gemm, transpose_planes, Rows};
use super::direct::Avx512;
#[cfg(target_arch = "x86_64")]
use super::winograd::input_tile;
use super::winograd::{balanced_block, filter_transform_adjoint, Tiling};
use super::Conv2dDims;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Channels per vector.
const V: usize = 16;

/// Floats between consecutive matrices of `V` and `W` beyond their size: the transforms
/// write all 16 at once, and sizes that are multiples of 4 KiB would put those 16 streams
/// in the same L1 sets.
const SKEW: usize = 16;

/// Most floats a block's transformed inputs and gradients (all 16 matrices) take, so
/// that with the accumulator they fit a 1 MiB L2.
const BLOCK_FLOATS: usize = 1 << 16;

/// The weight gradient of a 3x3 stride-1 conv (`winograd::applies`) in tiles of 2x2 on
/// `Tiling` (its fields through `Deref`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WinoWeight(Tiling);

impl std::ops::Deref for WinoWeight {
    type Target = Tiling;
    fn deref(&self) -> &Tiling {
        &self.0
    }
}

impl WinoWeight {
    pub(crate) fn new(d: &Conv2dDims) -> WinoWeight {
        WinoWeight(Tiling::forward(d, 2))
    }

    /// Images per block within `BLOCK_FLOATS`, balanced so the last block is not a sliver.
    fn block(&self, imgs: usize) -> usize {
        balanced_block(imgs, 16 * (self.cp + self.ocp) * self.tiles(), BLOCK_FLOATS)
    }

    /// The padded channels-last input plane: `(2*TH + 2) x (2*TW + 2)` positions.
    fn xt_len(&self) -> usize {
        (2 * self.th + 2) * (2 * self.tw + 2) * self.cp
    }

    /// The channels-last gradient on the tile grid: `2*TH x 2*TW` positions.
    fn dt_len(&self) -> usize {
        4 * self.tiles() * self.ocp
    }

    /// Floats of scratch `weight_images` needs for chunks of up to `imgs` images.
    pub(crate) fn scratch(&self, imgs: usize) -> usize {
        let tb = self.block(imgs) * self.tiles();
        16 * self.oc * self.cp
            + 16 * (tb * self.cp + SKEW)
            + 16 * (tb * self.ocp + SKEW)
            + self.xt_len()
            + self.dt_len()
    }
}

/// Adds the weight gradient of the images of `inp [imgs, C, H, W]` and `dout [imgs, OC,
/// OH, OW]` (masked by `relu_y > 0` when given) to `dw [OC, C, 3, 3]` and `db [OC]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn weight_images(
    cpu: Avx512,
    geo: &WinoWeight,
    dw: &mut [f32],
    mut db: Option<&mut [f32]>,
    dout: &[f32],
    relu_y: Option<&[f32]>,
    inp: &[f32],
    scratch: &mut [f32],
) {
    let (c, oc, cp, ocp, nt) = (geo.c, geo.oc, geo.cp, geo.ocp, geo.tiles());
    let (in_image, out_image) = (geo.in_image(), geo.out_image());
    let imgs = dout.len() / out_image;
    assert_eq!(inp.len(), imgs * in_image);
    assert!(relu_y.is_none_or(|y| y.len() == dout.len()));
    assert_eq!(dw.len(), oc * c * 9);
    let nb = geo.block(imgs);
    let (vs, ws) = (nb * nt * cp + SKEW, nb * nt * ocp + SKEW);
    let (acc, rest) = scratch.split_at_mut(16 * oc * cp);
    let (vbuf, rest) = rest.split_at_mut(16 * vs);
    let (wbuf, rest) = rest.split_at_mut(16 * ws);
    let (xt, rest) = rest.split_at_mut(geo.xt_len());
    let dt = &mut rest[..geo.dt_len()];
    // Only the positions inside the input (gradient) are ever written: the padding and
    // the channels past C (OC) stay zero for every image.
    acc.fill(0.0);
    xt.fill(0.0);
    dt.fill(0.0);
    for start in (0..imgs).step_by(nb) {
        let cnt = nb.min(imgs - start);
        for k in 0..cnt {
            let img = start + k;
            fill_input(cpu, geo, xt, &inp[img * in_image..][..in_image]);
            input_transform(cpu, geo, xt, vbuf, k * nt, vs);
            let at = img * out_image..(img + 1) * out_image;
            fill_gradient(
                cpu,
                geo,
                dt,
                &dout[at.clone()],
                relu_y.map(|y| &y[at]),
                db.as_deref_mut(),
            );
            gradient_transform(cpu, geo, dt, wbuf, k * nt, ws);
        }
        for xi in 0..16 {
            let w = &wbuf[xi * ws..][..cnt * nt * ocp];
            let v = &vbuf[xi * vs..][..cnt * nt * cp];
            // acc[xi][o][ci] += sum over the block's tiles t of W[xi][t][o] * V[xi][t][ci].
            let acc = &mut acc[xi * oc * cp..][..oc * cp];
            gemm(
                cpu,
                Rows::of_columns(w, ocp, oc),
                v,
                cp,
                cnt * nt,
                acc,
                true,
            );
        }
    }
    for o in 0..oc {
        for ci in 0..c {
            let u: [f32; 16] = std::array::from_fn(|xi| acc[(xi * oc + o) * cp + ci]);
            let g = filter_transform_adjoint(u);
            for (d, v) in dw[(o * c + ci) * 9..][..9].iter_mut().zip(g) {
                *d += v;
            }
        }
    }
}

/// Copies one image `src [C, H, W]` into the padded channels-last plane
/// `xt[(y + top)*(2*TW + 2) + x + left][ci]`, rows and columns past the plane left out
/// (no tile reads them).
fn fill_input(cpu: Avx512, geo: &WinoWeight, xt: &mut [f32], src: &[f32]) {
    let (hp, wp) = (2 * geo.th + 2, 2 * geo.tw + 2);
    let rows = geo.h.min(hp - geo.top);
    let cols = geo.w.min(wp - geo.left);
    assert_eq!(src.len(), geo.c * geo.h * geo.w);
    assert!(xt.len() >= geo.xt_len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads src[ci*H*W + y*W + x] for ci < C,
    // y < rows <= H, x < cols <= W (masked loads touch no other lane): inside `src` by the
    // assert above. It writes xt[((y + top)*wp + left + x)*Cp + ci] for ci < Cp: with
    // y + top < hp and left + x < wp, below hp*wp*Cp = xt_len <= xt.len(). `xt` is a
    // unique borrow.
    unsafe {
        transpose_planes(
            src.as_ptr(),
            None,
            (geo.c, geo.h * geo.w, geo.w),
            (rows, cols),
            xt.as_mut_ptr().add((geo.top * wp + geo.left) * geo.cp),
            wp,
            geo.cp,
        );
    }
}

/// Copies one image's gradient `src [OC, OH, OW]` (masked by `relu_y > 0` when given)
/// into `dt[y*2*TW + x][o]`, and adds each channel's sum to `db`.
fn fill_gradient(
    cpu: Avx512,
    geo: &WinoWeight,
    dt: &mut [f32],
    src: &[f32],
    relu_y: Option<&[f32]>,
    db: Option<&mut [f32]>,
) {
    assert_eq!(src.len(), geo.oc * geo.oh * geo.ow);
    assert!(relu_y.is_none_or(|y| y.len() == src.len()));
    assert!(dt.len() >= geo.dt_len());
    let _ = cpu;
    // SAFETY: as in `fill_input`, with the OC planes of OH x OW of `src` (and `relu_y`,
    // the same length) and the 2*TH x 2*TW grid of `dt` (OH <= 2*TH, OW <= 2*TW).
    let sums = unsafe {
        transpose_planes(
            src.as_ptr(),
            relu_y.map(|y| y.as_ptr()),
            (geo.oc, geo.oh * geo.ow, geo.ow),
            (geo.oh, geo.ow),
            dt.as_mut_ptr(),
            2 * geo.tw,
            geo.ocp,
        )
    };
    if let Some(db) = db {
        for (d, s) in db.iter_mut().zip(sums) {
            *d += s;
        }
    }
}

/// `v[xi*vs + (t0 + t)*Cp + ci] = (B^T d_t B)[xi]` for every tile `t = i*TW + j` of the
/// image in `xt` (from `fill_input`), `d_t[a][b] = xt[(2i + a)*(2*TW + 2) + 2j + b]`.
fn input_transform(cpu: Avx512, geo: &WinoWeight, xt: &[f32], v: &mut [f32], t0: usize, vs: usize) {
    assert!(xt.len() >= geo.xt_len());
    assert!(15 * vs + (t0 + geo.tiles()) * geo.cp <= v.len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads xt[p*Cp + ci] for positions p of
    // the (2*TH + 2) x (2*TW + 2) plane and ci < Cp: below xt_len <= xt.len(). It writes
    // v[xi*vs + (t0 + t)*Cp + ci] for xi < 16, t < TH*TW, ci < Cp: below the bound
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_transform_kernel(
    xt: *const f32,
    (th, tw): (usize, usize),
    cp: usize,
    out: *mut f32,
    vs: usize,
) {
    let wp = 2 * tw + 2;
    for i in 0..th {
        for j in 0..tw {
            let dst = out.add((i * tw + j) * cp);
            for cv in (0..cp).step_by(V) {
                let x: [[__m512; 4]; 4] = std::array::from_fn(|a| {
                    std::array::from_fn(|b| {
                        _mm512_loadu_ps(xt.add(((2 * i + a) * wp + 2 * j + b) * cp + cv))
                    })
                });
                for (a, row) in input_tile(x).iter().enumerate() {
                    for (b, &v) in row.iter().enumerate() {
                        _mm512_storeu_ps(dst.add((a * 4 + b) * vs + cv), v);
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

/// `w[xi*ws + (t0 + t)*OCp + o] = (A z_t A^T)[xi]` for every tile `t = i*TW + j`,
/// `z_t[a][b] = dt[(2i + a)*2*TW + 2j + b]` its 2x2 gradient (from `fill_gradient`).
fn gradient_transform(
    cpu: Avx512,
    geo: &WinoWeight,
    dt: &[f32],
    w: &mut [f32],
    t0: usize,
    ws: usize,
) {
    assert!(dt.len() >= geo.dt_len());
    assert!(15 * ws + (t0 + geo.tiles()) * geo.ocp <= w.len());
    let _ = cpu;
    // SAFETY: `cpu` proves AVX-512F. The kernel reads dt[p*OCp + o] for positions p of
    // the 2*TH x 2*TW grid and o < OCp: below dt_len <= dt.len(). It writes
    // w[xi*ws + (t0 + t)*OCp + o] for xi < 16, t < TH*TW, o < OCp: below the bound
    // asserted above. `w` is a unique borrow, so it does not alias `dt`.
    unsafe {
        gradient_transform_kernel(
            dt.as_ptr(),
            (geo.th, geo.tw),
            geo.ocp,
            w.as_mut_ptr().add(t0 * geo.ocp),
            ws,
        )
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gradient_transform_kernel(
    dt: *const f32,
    (th, tw): (usize, usize),
    ocp: usize,
    out: *mut f32,
    ws: usize,
) {
    let wq = 2 * tw;
    let zero = _mm512_setzero_ps();
    for i in 0..th {
        for j in 0..tw {
            let dst = out.add((i * tw + j) * ocp);
            for ov in (0..ocp).step_by(V) {
                let z: [[__m512; 2]; 2] = std::array::from_fn(|a| {
                    std::array::from_fn(|b| {
                        _mm512_loadu_ps(dt.add(((2 * i + a) * wq + 2 * j + b) * ocp + ov))
                    })
                });
                // A z: rows z0, z0 + z1, z0 - z1, -z1; then the same along each row.
                let rows: [[__m512; 2]; 4] = [
                    z[0],
                    std::array::from_fn(|b| _mm512_add_ps(z[0][b], z[1][b])),
                    std::array::from_fn(|b| _mm512_sub_ps(z[0][b], z[1][b])),
                    std::array::from_fn(|b| _mm512_sub_ps(zero, z[1][b])),
                ];
                for (a, [r0, r1]) in rows.into_iter().enumerate() {
                    let v = [
                        r0,
                        _mm512_add_ps(r0, r1),
                        _mm512_sub_ps(r0, r1),
                        _mm512_sub_ps(zero, r1),
                    ];
                    for (b, &v) in v.iter().enumerate() {
                        _mm512_storeu_ps(dst.add((a * 4 + b) * ws + ov), v);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn gradient_transform_kernel(
    _: *const f32,
    _: (usize, usize),
    _: usize,
    _: *mut f32,
    _: usize,
) {
    unreachable!("no Avx512 token off x86_64")
}
