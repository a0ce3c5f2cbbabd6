//! Times conv2d on the layers of small MNIST nets (batch 64): each kernel alone, and the
//! op's forward + backward as training runs it.
//! `cargo run --release --example conv2d_timing [threads]`
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

/// Median wall time of `f` in milliseconds, after one warm-up call.
fn median_ms(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[reps / 2]
}

/// (name, x [N, C, H, W], w [OC, C, KH, KW], padding, whether x needs a gradient)
struct Layer(&'static str, [usize; 4], [usize; 4], usize, bool);

fn main() {
    if let Some(n) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        nabla::ops::parallel::set_num_threads(n);
    }
    let layers = [
        Layer("1->32 3x3, 28x28", [64, 1, 28, 28], [32, 1, 3, 3], 0, false),
        Layer(
            "32->64 3x3, 13x13",
            [64, 32, 13, 13],
            [64, 32, 3, 3],
            0,
            true,
        ),
        Layer("1->30 5x5, 28x28", [64, 1, 28, 28], [30, 1, 5, 5], 0, false),
        Layer(
            "16->16 3x3 pad 1, 14x14",
            [64, 16, 14, 14],
            [16, 16, 3, 3],
            1,
            true,
        ),
    ];
    println!(
        "threads {}, batch 64, median ms: kernels alone | op forward+backward",
        nabla::ops::parallel::num_threads()
    );
    let mut rng = Rng::new(0);
    for Layer(name, xs, ws, pad, x_grad) in layers {
        let spec = Conv2dSpec {
            padding: Padding2d::uniform(pad),
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
            21,
        );
        let mut dx = vec![0.0; x.numel()];
        let bwd_x = median_ms(
            || cpu::conv2d_backward_input(&mut dx, dy.data(), w.data(), &d),
            21,
        );
        let (mut dw, mut db) = (vec![0.0; w.numel()], vec![0.0; ws[0]]);
        let bwd_w = median_ms(
            || cpu::conv2d_backward_weight(&mut dw, Some(&mut db), dy.data(), x.data(), &d),
            21,
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
            21,
        );
        println!(
            "{name:<24} fwd {fwd:6.3}  bwd-x {bwd_x:6.3}  bwd-w {bwd_w:6.3} | {op:6.3}{}",
            if x_grad { "" } else { " (no dx)" }
        );
    }
}
