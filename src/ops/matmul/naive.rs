//! Reference GEMM: the textbook triple loop. The spec the fast path is tested against.

/// `c[m,n] (+)= op(a)[m,k] * op(b)[k,n]`, row-major; `op` transposes when asked.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_naive(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    trans_a: bool,
    b: &[f32],
    trans_b: bool,
    c: &mut [f32],
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                let av = if trans_a { a[p * m + i] } else { a[i * k + p] };
                let bv = if trans_b { b[j * k + p] } else { b[p * n + j] };
                s += av as f64 * bv as f64;
            }
            let s = s as f32;
            c[i * n + j] = if accumulate { c[i * n + j] + s } else { s };
        }
    }
}
