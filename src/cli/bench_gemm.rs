//! `nabla bench gemm`: achieved GFLOP/s of the GEMM backends on the shapes the built-in
//! models use and on a large square one (the machine's achieved peak).

use nabla::ops::matmul::gemm::{sgemm_with, Backend};
use std::time::Instant;

/// (label, m, k, n): `c[m,n] = a[m,k] b[k,n]`.
pub const SHAPES: [(&str, usize, usize, usize); 7] = [
    ("square 1024", 1024, 1024, 1024),
    ("square 512", 512, 512, 512),
    ("keras-cnn conv2 fwd (1 img)", 64, 288, 121),
    ("keras-cnn conv1 fwd (64 img)", 32, 9, 64 * 676),
    ("keras-cnn conv2 fwd (64 img)", 64, 288, 64 * 121),
    ("simple-convnet dense 4320x100 (b100)", 100, 4320, 100),
    ("mlp dense 784x100 (b100)", 100, 784, 100),
];

/// Median seconds of `reps` runs of `f`.
pub fn median_time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

/// GFLOP/s of one backend on one shape, single- or multi-threaded.
pub fn gflops(backend: Backend, m: usize, k: usize, n: usize, parallel: bool) -> f64 {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; m * n];
    let flops = 2.0 * (m * k * n) as f64;
    let reps = ((2e9 / flops) as usize).clamp(3, 200);
    let t = median_time(reps, || {
        sgemm_with(
            backend, m, k, n, &a, false, &b, false, &mut c, false, parallel,
        )
    });
    flops / t / 1e9
}

pub fn run(json: bool) -> serde_json::Value {
    let mut rows = Vec::new();
    if !json {
        println!(
            "{:<40}{:>14}{:>14}{:>14}{:>14}",
            "shape (m x k x n)", "gemm 1T", "gemm all", "mm 1T", "mm all"
        );
    }
    for (label, m, k, n) in SHAPES {
        let g1 = gflops(Backend::Gemm, m, k, n, false);
        let gp = gflops(Backend::Gemm, m, k, n, true);
        let m1 = gflops(Backend::MatrixMultiply, m, k, n, false);
        let mp = gflops(Backend::MatrixMultiply, m, k, n, true);
        if !json {
            println!(
                "{:<40}{:>14.1}{:>14.1}{:>14.1}{:>14.1}",
                format!("{label} ({m}x{k}x{n})"),
                g1,
                gp,
                m1,
                mp
            );
        }
        rows.push(serde_json::json!({
            "shape": label, "m": m, "k": k, "n": n,
            "gemm_1t_gflops": g1, "gemm_all_gflops": gp,
            "matrixmultiply_1t_gflops": m1, "matrixmultiply_all_gflops": mp,
        }));
    }
    serde_json::json!({ "gemm": rows })
}
