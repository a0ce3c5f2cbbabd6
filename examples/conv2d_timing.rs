//! Times conv2d on the layers of small MNIST nets (batch 64): each kernel alone, and the
//! op's forward + backward as training runs it.
//! `cargo run --release --example conv2d_timing [threads] [resnet20]`: the MNIST nets'
//! layers, or with `resnet20` that net's distinct layers on Fashion-MNIST (batch 128).
//! The first layer of a net reads data: its input needs no gradient, so its backward
//! computes only dW and db ("no dx").

use nabla::ops::conv2d::{conv2d, cpu, Conv2dDims, Conv2dSpec};
use nabla::ops::Padding2d;
use nabla::{Rng, Tensor, Var};
use std::time::Instant;

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.normal()).collect(), shape)
}

/// This thread's CPU time in ms (Linux), from `/proc/thread-self/schedstat`.
fn thread_cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(s.split_whitespace().next()?.parse::<f64>().ok()? / 1e6)
}

/// Median time of `f` in milliseconds, after one warm-up call: wall time, or with one
/// thread (where the kernels run on the calling thread) its CPU time per call over
/// runs of 40 ms, which other processes on a shared machine disturb less.
fn median_ms(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    let cpu = nabla::ops::parallel::num_threads() == 1 && thread_cpu_ms().is_some();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            if cpu {
                // The kernel's clock ticks in milliseconds: time a run of calls.
                let s = thread_cpu_ms().unwrap();
                let mut calls = 0;
                while thread_cpu_ms().unwrap() - s < 40.0 {
                    f();
                    calls += 1;
                }
                return (thread_cpu_ms().unwrap() - s) / calls as f64;
            }
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[reps / 2]
}

/// (name, x [N, C, H, W], w [OC, C, KH, KW], padding, stride, whether x needs a gradient)
struct Layer(&'static str, [usize; 4], [usize; 4], usize, usize, bool);

/// resnet20's distinct conv layers, batch 128, 1x28x28 input.
fn resnet20_layers() -> Vec<Layer> {
    vec![
        Layer(
            "r20 1->16 28x28",
            [128, 1, 28, 28],
            [16, 1, 3, 3],
            1,
            1,
            false,
        ),
        Layer(
            "r20 16->16 28x28",
            [128, 16, 28, 28],
            [16, 16, 3, 3],
            1,
            1,
            true,
        ),
        Layer(
            "r20 16->32 1x1 s2",
            [128, 16, 28, 28],
            [32, 16, 1, 1],
            0,
            2,
            true,
        ),
        Layer(
            "r20 16->32 3x3 s2",
            [128, 16, 28, 28],
            [32, 16, 3, 3],
            1,
            2,
            true,
        ),
        Layer(
            "r20 32->32 14x14",
            [128, 32, 14, 14],
            [32, 32, 3, 3],
            1,
            1,
            true,
        ),
        Layer(
            "r20 32->64 1x1 s2",
            [128, 32, 14, 14],
            [64, 32, 1, 1],
            0,
            2,
            true,
        ),
        Layer(
            "r20 32->64 3x3 s2",
            [128, 32, 14, 14],
            [64, 32, 3, 3],
            1,
            2,
            true,
        ),
        Layer(
            "r20 64->64 7x7",
            [128, 64, 7, 7],
            [64, 64, 3, 3],
            1,
            1,
            true,
        ),
    ]
}

fn main() {
    if let Some(n) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        nabla::ops::parallel::set_num_threads(n);
    }
    let resnet20 = std::env::args().nth(2).is_some_and(|a| a == "resnet20");
    let mnist = [
        Layer(
            "1->32 3x3, 28x28",
            [64, 1, 28, 28],
            [32, 1, 3, 3],
            0,
            1,
            false,
        ),
        Layer(
            "32->64 3x3, 13x13",
            [64, 32, 13, 13],
            [64, 32, 3, 3],
            0,
            1,
            true,
        ),
        Layer(
            "1->30 5x5, 28x28",
            [64, 1, 28, 28],
            [30, 1, 5, 5],
            0,
            1,
            false,
        ),
        // deep-convnet (batch 100)
        Layer(
            "dc 1->16 p1, 28x28",
            [100, 1, 28, 28],
            [16, 1, 3, 3],
            1,
            1,
            false,
        ),
        Layer(
            "dc 16->16 p1, 28x28",
            [100, 16, 28, 28],
            [16, 16, 3, 3],
            1,
            1,
            true,
        ),
        Layer(
            "dc 16->32 p1, 14x14",
            [100, 16, 14, 14],
            [32, 16, 3, 3],
            1,
            1,
            true,
        ),
        Layer(
            "dc 32->32 p2, 14x14",
            [100, 32, 14, 14],
            [32, 32, 3, 3],
            2,
            1,
            true,
        ),
        Layer(
            "dc 32->64 p1, 8x8",
            [100, 32, 8, 8],
            [64, 32, 3, 3],
            1,
            1,
            true,
        ),
        Layer(
            "dc 64->64 p1, 8x8",
            [100, 64, 8, 8],
            [64, 64, 3, 3],
            1,
            1,
            true,
        ),
    ];
    let layers = if resnet20 {
        resnet20_layers()
    } else {
        mnist.into_iter().collect()
    };
    println!(
        "threads {}, median ms (GFLOP/s): kernels alone | op forward+backward",
        nabla::ops::parallel::num_threads()
    );
    let mut rng = Rng::new(0);
    for Layer(name, xs, ws, pad, stride, x_grad) in layers {
        let spec = Conv2dSpec {
            padding: Padding2d::uniform(pad),
            stride: (stride, stride),
            ..Default::default()
        };
        let d = Conv2dDims::new(&xs, &ws, Some(&[ws[0]]), &spec).unwrap();
        let (x, w, b) = (
            randn(&xs, &mut rng),
            randn(&ws, &mut rng),
            randn(&[ws[0]], &mut rng),
        );
        let dy = randn(&d.out_shape(), &mut rng);
        let mut y = vec![0.0; dy.numel()];
        let fwd = median_ms(
            || cpu::conv2d_forward(&mut y, x.data(), w.data(), Some(b.data()), &d),
            7,
        );
        let mut dx = vec![0.0; x.numel()];
        let bwd_x = median_ms(
            || cpu::conv2d_backward_input(&mut dx, dy.data(), w.data(), &d),
            7,
        );
        let (mut dw, mut db) = (vec![0.0; w.numel()], vec![0.0; ws[0]]);
        let bwd_w = median_ms(
            || cpu::conv2d_backward_weight(&mut dw, Some(&mut db), dy.data(), x.data(), &d),
            7,
        );
        let xv = if x_grad {
            Var::parameter(x)
        } else {
            Var::constant(x)
        };
        let (wv, bv) = (Var::parameter(w), Var::parameter(b));
        let op = median_ms(
            || {
                let y = conv2d(&xv, &wv, Some(&bv), &spec).unwrap();
                y.backward_with(dy.clone());
            },
            7,
        );
        let gf = |ms: f64| (2 * d.n * d.oc * d.p() * d.k()) as f64 / ms / 1e6;
        println!(
            "{name:<24} fwd {fwd:6.3} ({:3.0})  bwd-x {bwd_x:6.3} ({:3.0})  bwd-w {bwd_w:6.3} ({:3.0}) | {op:6.3}{}",
            gf(fwd),
            gf(bwd_x),
            gf(bwd_w),
            if x_grad { "" } else { " (no dx)" }
        );
    }
}
