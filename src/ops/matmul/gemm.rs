//! Fast single-precision GEMM through a well-kept crate.
//!
//! Two crates were measured (`nabla bench gemm`, see BENCHMARKS.md): `gemm` 0.18 (on
//! stable Rust it runs its AVX2 kernel here, ~90-110 GFLOP/s on one core) and
//! `matrixmultiply` 0.3 (selects AVX-512 at run time, 135-200 GFLOP/s on one core on the
//! conv shapes). Both are wired behind one function so the benchmark can compare them;
//! `Backend::default()` is the winner, `matrixmultiply`.
//!
//! Threading: a GEMM called from inside a parallel loop (one sample per task) must run
//! single-threaded; a lone large GEMM may use the pool. Callers say which. For
//! `matrixmultiply` we split the rows of `c` over nabla's own pool (its `threading`
//! feature would start a second pool that ignores ours and oversubscribes the cores).

/// Which library performs the multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    Gemm,
    #[default]
    MatrixMultiply,
}

/// Below this many multiply-adds a GEMM is not worth splitting over threads.
const PARALLEL_MIN_WORK: usize = 1 << 20;

/// `c[m,n] (+)= op(a)[m,k] * op(b)[k,n]`, row-major; `op` transposes when asked.
/// `parallel`: whether this call may use several threads.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    sgemm_with(
        Backend::default(),
        m,
        k,
        n,
        a,
        trans_a,
        b,
        trans_b,
        c,
        accumulate,
        parallel,
    )
}

#[allow(clippy::too_many_arguments)]
pub fn sgemm_with(
    backend: Backend,
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    c: &mut [f32],
    accumulate: bool,
    parallel: bool,
) {
    assert!(a.len() >= m * k, "sgemm: a has {} < {}x{}", a.len(), m, k);
    assert!(b.len() >= k * n, "sgemm: b has {} < {}x{}", b.len(), k, n);
    assert!(c.len() >= m * n, "sgemm: c has {} < {}x{}", c.len(), m, n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // Row and column strides of op(a) [m,k] and op(b) [k,n] in row-major storage.
    let (rsa, csa) = if trans_a { (1, m) } else { (k, 1) };
    let (rsb, csb) = if trans_b { (1, k) } else { (n, 1) };
    match backend {
        Backend::Gemm => {
            let par = if parallel && super::super::parallel::num_threads() > 1 {
                gemm::Parallelism::Rayon(super::super::parallel::num_threads())
            } else {
                gemm::Parallelism::None
            };
            // SAFETY: the asserts above prove that every index the strides can reach,
            // (m-1)*rs + (k-1)*cs < m*k for a (and likewise for b and c), lies inside its
            // slice; `c` is borrowed mutably so it aliases neither `a` nor `b`.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    accumulate,
                    a.as_ptr(),
                    csa as isize,
                    rsa as isize,
                    b.as_ptr(),
                    csb as isize,
                    rsb as isize,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                );
            }
        }
        Backend::MatrixMultiply if m == 1 && csb == 1 => {
            gemv(k, n, a, csa, b, rsb, &mut c[..n], accumulate);
        }
        Backend::MatrixMultiply => {
            let rows_per_task = if parallel && m * k * n >= PARALLEL_MIN_WORK {
                // At least 16 rows per task keeps the micro-kernel's tiles full.
                (m / super::super::parallel::num_threads().max(1)).max(16)
            } else {
                m
            };
            let c = &mut c[..m * n];
            super::super::parallel::par_chunks_mut(c, n, rows_per_task, |row0, c_rows| {
                let rows = c_rows.len() / n;
                mm_sgemm(
                    rows,
                    k,
                    n,
                    &a[row0 * rsa..],
                    rsa,
                    csa,
                    b,
                    rsb,
                    csb,
                    c_rows,
                    accumulate,
                );
            });
        }
    }
}

/// `c[n] (+)= a[k] (stride csa) x b[k, n]` (row stride `rsb`, unit column stride): a
/// batch-1 dense layer. matrixmultiply packs all of `b` (a copy of the weights) and pads
/// the one row of `a` to a full micro-kernel tile, so for a single row streaming the rows
/// of `b` into `c` is cheaper: simple-convnet's 4320x100 dense at batch 1.
#[allow(clippy::too_many_arguments)]
fn gemv(
    k: usize,
    n: usize,
    a: &[f32],
    csa: usize,
    b: &[f32],
    rsb: usize,
    c: &mut [f32],
    acc: bool,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU was just checked for AVX-512F, all `gemv_avx512` requires.
        return unsafe { gemv_avx512(k, n, a, csa, b, rsb, c, acc) };
    }
    gemv_body(k, n, a, csa, b, rsb, c, acc)
}

/// `gemv_body` compiled with AVX-512 (16-wide row updates; the crate's baseline is SSE2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
fn gemv_avx512(
    k: usize,
    n: usize,
    a: &[f32],
    csa: usize,
    b: &[f32],
    rsb: usize,
    c: &mut [f32],
    acc: bool,
) {
    gemv_body(k, n, a, csa, b, rsb, c, acc)
}

/// Four rows of `b` per pass over `c`, so `c` is loaded and stored once per four rows.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemv_body(
    k: usize,
    n: usize,
    a: &[f32],
    csa: usize,
    b: &[f32],
    rsb: usize,
    c: &mut [f32],
    acc: bool,
) {
    let c = &mut c[..n];
    if !acc {
        c.fill(0.0);
    }
    let row = |p: usize| &b[p * rsb..p * rsb + n];
    let mut p = 0;
    while p + 4 <= k {
        let (a0, a1, a2, a3) = (
            a[p * csa],
            a[(p + 1) * csa],
            a[(p + 2) * csa],
            a[(p + 3) * csa],
        );
        let (b0, b1, b2, b3) = (row(p), row(p + 1), row(p + 2), row(p + 3));
        for j in 0..n {
            c[j] += (a0 * b0[j] + a1 * b1[j]) + (a2 * b2[j] + a3 * b3[j]);
        }
        p += 4;
    }
    while p < k {
        let (ap, bp) = (a[p * csa], row(p));
        for (c, &b) in c.iter_mut().zip(bp) {
            *c += ap * b;
        }
        p += 1;
    }
}

/// One single-threaded `matrixmultiply` call on row-major `c[m, n]`.
#[allow(clippy::too_many_arguments)]
fn mm_sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    rsa: usize,
    csa: usize,
    b: &[f32],
    rsb: usize,
    csb: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    // The last element reachable through the strides must lie inside each slice.
    assert!(m == 0 || k == 0 || (m - 1) * rsa + (k - 1) * csa < a.len());
    assert!(k == 0 || n == 0 || (k - 1) * rsb + (n - 1) * csb < b.len());
    assert!(c.len() >= m * n);
    let beta = if accumulate { 1.0 } else { 0.0 };
    // SAFETY: the asserts above bound every index the strides can reach in `a`, `b` and
    // `c`; `c` is borrowed mutably so it aliases neither input; with beta = 0
    // matrixmultiply does not read `c`, so its prior contents may be anything.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive::sgemm_naive;
    use super::*;
    use crate::engine::Rng;

    #[test]
    fn fast_matches_naive_on_random_shapes() {
        let mut rng = Rng::new(7);
        for &(m, k, n) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 9),
            (64, 100, 31),
            (130, 7, 257),
            (1, 4320, 100),
            (1, 37, 19),
            (1, 3, 5),
        ] {
            for backend in [Backend::Gemm, Backend::MatrixMultiply] {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.normal()).collect();
                    let init: Vec<f32> = (0..m * n).map(|_| rng.normal()).collect();
                    for acc in [false, true] {
                        let mut want = init.clone();
                        sgemm_naive(m, k, n, &a, ta, &b, tb, &mut want, acc);
                        let mut got = init.clone();
                        sgemm_with(backend, m, k, n, &a, ta, &b, tb, &mut got, acc, true);
                        for (x, y) in got.iter().zip(&want) {
                            assert!(
                                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                                "{backend:?} {m}x{k}x{n} ta={ta} tb={tb} acc={acc}: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }
}
