//! Helpers of the channels-last Winograd kernels (`winograd_weight.rs`, `winograd4.rs`),
//! which vectorize over channels while the tensors are NCHW:
//! - copies between NCHW planes and channels-last buffers (`[position][channel]`), 16
//!   channels by 16 positions at a time through an in-register 16x16 transpose (scalar
//!   strided copies were half of the Winograd weight gradient's time on 16->16 28x28,
//!   see BENCHMARKS.md, "Design measurements");
//! - their GEMM: one operand broadcast a value at a time, the other loaded 16 channels
//!   wide, register tiles that sum over the whole depth.

use super::direct::Avx512;
#[cfg(target_arch = "x86_64")]
use super::winograd::lanes;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Channels (and positions) per vector.
const V: usize = 16;

/// `dst[(y*ldr + x)*ldc + ch] = src[ch*plane + y*row + x]` (zero where `mask[same] <= 0`
/// when given) for `y < rows`, `x < cols`, `ch < ldc` (zero from `ch = nch` on), 16
/// channels by 16 columns at a time through an in-register transpose. Returns each
/// channel's sum of the values written (the first `nch` count).
///
/// # Safety
/// AVX-512F; `ldc` a multiple of 16; `src` (and `mask`) readable at the positions named,
/// `dst` writable at them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transpose_planes(
    src: *const f32,
    mask: Option<*const f32>,
    (nch, plane, row): (usize, usize, usize),
    (rows, cols): (usize, usize),
    dst: *mut f32,
    ldr: usize,
    ldc: usize,
) -> Vec<f32> {
    let mut sums = vec![0.0f32; ldc];
    let zero = _mm512_setzero_ps();
    for cg in (0..ldc).step_by(V) {
        let mut sum = zero;
        for y in 0..rows {
            for x0 in (0..cols).step_by(V) {
                let n = (cols - x0).min(V);
                let k = lanes(n);
                let r: [__m512; V] = std::array::from_fn(|i| {
                    let ch = cg + i;
                    if ch >= nch {
                        return zero;
                    }
                    let at = ch * plane + y * row + x0;
                    let v = _mm512_maskz_loadu_ps(k, src.add(at));
                    match mask {
                        Some(m) => {
                            let m = _mm512_maskz_loadu_ps(k, m.add(at));
                            _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, zero), v)
                        }
                        None => v,
                    }
                });
                let t = transpose16(r);
                let out = dst.add((y * ldr + x0) * ldc + cg);
                for (j, &v) in t.iter().enumerate().take(n) {
                    _mm512_storeu_ps(out.add(j * ldc), v);
                    sum = _mm512_add_ps(sum, v);
                }
            }
        }
        _mm512_storeu_ps(sums.as_mut_ptr().add(cg), sum);
    }
    sums.truncate(nch);
    sums
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn transpose_planes(
    _: *const f32,
    _: Option<*const f32>,
    _: (usize, usize, usize),
    _: (usize, usize),
    _: *mut f32,
    _: usize,
    _: usize,
) -> Vec<f32> {
    unreachable!("no Avx512 token off x86_64")
}

/// The transpose of the 16x16 matrix whose rows are `r`: unpacks pair rows, then 64-bit
/// pairs, then 128-bit lanes twice.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) fn transpose16(r: [__m512; V]) -> [__m512; V] {
    // a[2p], a[2p + 1]: rows 2p and 2p + 1 interleaved (lanes 4L, 4L + 1 / 4L + 2, 4L + 3).
    let a: [__m512; V] = std::array::from_fn(|i| {
        let (x, y) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_ps(x, y)
        } else {
            _mm512_unpackhi_ps(x, y)
        }
    });
    // b[4g + k], 128-bit lane L: column 4L + k of rows 4g..4g + 4.
    let b: [__m512; V] = std::array::from_fn(|i| {
        let (g, k) = (i / 4, i % 4);
        let (x, y) = (
            _mm512_castps_pd(a[4 * g + k / 2]),
            _mm512_castps_pd(a[4 * g + 2 + k / 2]),
        );
        _mm512_castpd_ps(if k % 2 == 0 {
            _mm512_unpacklo_pd(x, y)
        } else {
            _mm512_unpackhi_pd(x, y)
        })
    });
    // e/f: lanes (0, 2) / (1, 3) of b[k] and b[4 + k]; g/h the same of b[8 + k], b[12 + k].
    let mut t = [_mm512_setzero_ps(); V];
    for k in 0..4 {
        let e = _mm512_shuffle_f32x4::<0x88>(b[k], b[4 + k]);
        let f = _mm512_shuffle_f32x4::<0xdd>(b[k], b[4 + k]);
        let g = _mm512_shuffle_f32x4::<0x88>(b[8 + k], b[12 + k]);
        let h = _mm512_shuffle_f32x4::<0xdd>(b[8 + k], b[12 + k]);
        t[k] = _mm512_shuffle_f32x4::<0x88>(e, g);
        t[4 + k] = _mm512_shuffle_f32x4::<0x88>(f, h);
        t[8 + k] = _mm512_shuffle_f32x4::<0xdd>(e, g);
        t[12 + k] = _mm512_shuffle_f32x4::<0xdd>(f, h);
    }
    t
}

/// The way back: `dst[ch*plane + y*row + x] = f(src[(y*ldr + x)*ldc + ch] + bias[ch])`
/// for `ch < nch`, `y < rows`, `x < cols`, with `f` the ReLU when `relu` (else the
/// identity) and `bias` zero when not given.
///
/// # Safety
/// AVX-512F; `src` readable at the positions named for `ch` below `ldc` rounded to 16
/// (a whole number of vectors, `ldc` itself), `dst` writable at the positions named,
/// `bias` (when given) `nch` long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn planes_from_channels_last(
    src: *const f32,
    ldr: usize,
    ldc: usize,
    (rows, cols): (usize, usize),
    dst: *mut f32,
    (nch, plane, row): (usize, usize, usize),
    bias: Option<&[f32]>,
    relu: bool,
) {
    let zero = _mm512_setzero_ps();
    for cg in (0..nch).step_by(V) {
        let bias: [__m512; V] = std::array::from_fn(|i| match bias {
            Some(b) if cg + i < nch => _mm512_set1_ps(b[cg + i]),
            _ => zero,
        });
        for y in 0..rows {
            for x0 in (0..cols).step_by(V) {
                let n = (cols - x0).min(V);
                let at = src.add((y * ldr + x0) * ldc + cg);
                let r: [__m512; V] = std::array::from_fn(|j| {
                    if j < n {
                        _mm512_loadu_ps(at.add(j * ldc))
                    } else {
                        zero
                    }
                });
                let k = lanes(n);
                for (i, &v) in transpose16(r).iter().enumerate().take(nch - cg) {
                    let v = _mm512_add_ps(v, bias[i]);
                    let v = if relu { _mm512_max_ps(v, zero) } else { v };
                    _mm512_mask_storeu_ps(dst.add((cg + i) * plane + y * row + x0), k, v);
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn planes_from_channels_last(
    _: *const f32,
    _: usize,
    _: usize,
    _: (usize, usize),
    _: *mut f32,
    _: (usize, usize, usize),
    _: Option<&[f32]>,
    _: bool,
) {
    unreachable!("no Avx512 token off x86_64")
}

/// The broadcast operand of `gemm`: `rows` rows, element `(r, k)` at `a[r*rs + k*ks]`.
pub(super) struct Rows<'a> {
    a: &'a [f32],
    rows: usize,
    rs: usize,
    ks: usize,
}

impl<'a> Rows<'a> {
    /// Row `r` of `a` is its `r`-th column: `(r, k)` at `a[k*ld + r]`.
    pub(super) fn of_columns(a: &'a [f32], ld: usize, rows: usize) -> Rows<'a> {
        Rows {
            a,
            rows,
            rs: 1,
            ks: ld,
        }
    }

    /// Row `r` of `a` is its `r`-th row: `(r, k)` at `a[r*ld + k]`.
    pub(super) fn of_rows(a: &'a [f32], ld: usize, rows: usize) -> Rows<'a> {
        Rows {
            a,
            rows,
            rs: ld,
            ks: 1,
        }
    }
}

/// `out[r*ld + j] (+)= sum_{k < depth} a(r, k) * b[k*ld + j]` for rows `r` of `a` and
/// `j < ld` (a whole number of vectors): accumulated onto `out` when `acc`, else
/// overwritten. Register tiles of `M` rows x `N` vectors sum over the whole depth before
/// touching `out`: 6 x 4 when `ld >= 64`, 12 x 2 or 12 x 1 below (24 accumulators; at 1
/// vector wide its broadcasts already match its FMAs one to one).
pub(super) fn gemm(
    cpu: Avx512,
    a: Rows,
    b: &[f32],
    ld: usize,
    depth: usize,
    out: &mut [f32],
    acc: bool,
) {
    let nv = ld / V;
    let rows = a.rows;
    assert!(depth > 0 && rows > 0 && ld == nv * V);
    assert!((rows - 1) * a.rs + (depth - 1) * a.ks < a.a.len());
    assert!(depth * ld <= b.len());
    assert!(rows * ld <= out.len());
    let _ = cpu;
    let widest = if nv >= 4 { 4 } else { nv.min(2) };
    let mut cv = 0;
    while cv < nv {
        let n = if nv - cv >= widest {
            widest
        } else {
            (nv - cv).min(2)
        };
        let m_max = if n == 4 { 6 } else { 12 };
        let mut r0 = 0;
        while r0 < rows {
            let m = (rows - r0).min(m_max);
            // SAFETY: `cpu` proves AVX-512F. The kernel reads a[(r0 + i)*rs + k*ks] for
            // i < m, k < depth: r0 + m <= rows, so at most (rows - 1)*rs + (depth - 1)*ks,
            // inside `a` by the assert; b[k*ld + cv*16 + l] for l < 16n: cv + n <= nv, so
            // below depth*ld <= b.len(); it reads (when `acc`) and writes
            // out[(r0 + i)*ld + cv*16 + l]: below rows*ld <= out.len(). `out` is a unique
            // borrow, so it aliases neither input.
            unsafe {
                let args = (
                    a.a.as_ptr().add(r0 * a.rs),
                    (a.rs, a.ks),
                    b.as_ptr().add(cv * V),
                    ld,
                    depth,
                    out.as_mut_ptr().add(r0 * ld + cv * V),
                    acc,
                );
                macro_rules! by_m {
                    ($n:literal) => {
                        match m {
                            1 => gemm_kernel::<1, $n>(args),
                            2 => gemm_kernel::<2, $n>(args),
                            3 => gemm_kernel::<3, $n>(args),
                            4 => gemm_kernel::<4, $n>(args),
                            5 => gemm_kernel::<5, $n>(args),
                            6 => gemm_kernel::<6, $n>(args),
                            7 => gemm_kernel::<7, $n>(args),
                            8 => gemm_kernel::<8, $n>(args),
                            9 => gemm_kernel::<9, $n>(args),
                            10 => gemm_kernel::<10, $n>(args),
                            11 => gemm_kernel::<11, $n>(args),
                            _ => gemm_kernel::<12, $n>(args),
                        }
                    };
                }
                match n {
                    4 => by_m!(4),
                    2 => by_m!(2),
                    _ => by_m!(1),
                }
            }
            r0 += m;
        }
        cv += n;
    }
}

type GemmArgs = (
    *const f32,
    (usize, usize),
    *const f32,
    usize,
    usize,
    *mut f32,
    bool,
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gemm_kernel<const M: usize, const N: usize>(
    (a, (rs, ks), b, ld, depth, out, acc): GemmArgs,
) {
    let mut s = [[_mm512_setzero_ps(); N]; M];
    for k in 0..depth {
        let x: [__m512; N] = std::array::from_fn(|j| _mm512_loadu_ps(b.add(k * ld + j * V)));
        let ak = a.add(k * ks);
        for (i, row) in s.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*ak.add(i * rs));
            for (r, &xj) in row.iter_mut().zip(&x) {
                *r = _mm512_fmadd_ps(av, xj, *r);
            }
        }
    }
    for (i, row) in s.iter().enumerate() {
        for (j, &r) in row.iter().enumerate() {
            let p = out.add(i * ld + j * V);
            let v = if acc {
                _mm512_add_ps(_mm512_loadu_ps(p), r)
            } else {
                r
            };
            _mm512_storeu_ps(p, v);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn gemm_kernel<const M: usize, const N: usize>(_: GemmArgs) {
    unreachable!("no Avx512 token off x86_64")
}
