//! Issue 15, must-show 2: are the encoder's 32-number codes better features than the
//! 784 raw pixels when only 1,000 images carry labels?
//!
//! 1. The dense autoencoder (784-32-784) trains on the 60,000 MNIST training images
//!    without their labels (input -> input).
//! 2. The encoder, a sub-model sharing the autoencoder's weights, turns images into codes.
//! 3. For seeds 1-3, 100 labelled images per class (1,000) are drawn; the same
//!    classifier (logistic regression, and a small Dense 64 net) trains on their codes
//!    and on their pixels, and is scored on the 10,000 MNIST test images.
//!
//! Each input is divided by one number, its overall standard deviation on the 1,000
//! training samples, so both start at the same scale (a linear change that keeps the
//! comparison fair; per-feature scaling would blow up pixels that are always 0 there).
//!
//! Run: `NABLA_DATA=... cargo run --release --example autoencoder_codes_vs_pixels [AE_EPOCHS]`

use nabla::layers::keras::*;
use nabla::models::autoencoder::{autoencoder, encoder};
use nabla::{data, FitArgs, KerasLoss, Optimizer, Sequential, Tensor};

fn scaled(x: &Tensor, by: f32) -> Tensor {
    let v: Vec<f32> = x.to_f32_vec().into_iter().map(|a| a / by).collect();
    Tensor::from_vec(v, x.shape())
}

fn std_of(x: &Tensor) -> f32 {
    let v = x.to_f32_vec();
    let m = v.iter().sum::<f32>() / v.len() as f32;
    (v.iter().map(|a| (a - m) * (a - m)).sum::<f32>() / v.len() as f32).sqrt()
}

/// Trains `kind` on (`x`, `y`) and returns its accuracy on (`xt`, `yt`).
fn accuracy(kind: &str, x: &Tensor, y: &Tensor, xt: &Tensor, yt: &Tensor, seed: u64) -> f32 {
    let by = std_of(x);
    let (x, xt) = (scaled(x, by), scaled(xt, by));
    let mut m = Sequential::with_seed(&[x.shape()[1]], seed);
    if kind == "dense64" {
        m.add(Dense(64).activation(Relu)).unwrap();
    }
    m.add(Dense(10).activation(Softmax)).unwrap();
    m.compile(
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        Optimizer::adam(1e-3),
        &["accuracy"],
    )
    .unwrap();
    m.fit(&x, y, FitArgs::new().epochs(100).batch_size(32).verbose(0))
        .unwrap();
    m.evaluate(&xt, yt, 1000).unwrap().accuracy().unwrap()
}

fn main() -> nabla::Result<()> {
    let ae_epochs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("AE_EPOCHS is a number"))
        .unwrap_or(10);
    let ds = data::load_data("mnist")?;
    let start = std::time::Instant::now();
    let mut ae = autoencoder(0)?;
    ae.compile(
        KerasLoss::BinaryCrossentropy { from_logits: false },
        Optimizer::adam(1e-3),
        &[],
    )?;
    // Unlabelled: the images are their own targets.
    ae.fit(
        &ds.x_train,
        &ds.x_train,
        FitArgs::new().epochs(ae_epochs).batch_size(256).verbose(0),
    )?;
    let ev = ae.evaluate(&ds.x_test, &ds.x_test, 1000)?;
    println!(
        "autoencoder: {ae_epochs} epochs on 60,000 unlabelled images in {:.0} s, test BCE {:.4}",
        start.elapsed().as_secs_f64(),
        ev.loss
    );
    let mut enc = encoder(&mut ae)?;
    let flat = |x: &Tensor| x.reshape(&[x.shape()[0], 784]).unwrap();
    let test_codes = enc.predict(&ds.x_test, 1000)?;
    let test_pixels = flat(&ds.x_test.contiguous());
    let labels: Vec<usize> = ds
        .y_train
        .to_f32_vec()
        .iter()
        .map(|&c| c as usize)
        .collect();
    println!("seed classifier codes(32) pixels(784)");
    let mut sums = [[0f32; 2]; 2];
    for seed in 1..=3u64 {
        let rows = data::per_class::per_class(&labels, 100, seed)?;
        let x = ds.x_train.gather_rows(&rows);
        let y = ds.y_train.gather_rows(&rows);
        let codes = enc.predict(&x, 1000)?;
        for (k, kind) in ["logistic", "dense64"].iter().enumerate() {
            let a_codes = accuracy(kind, &codes, &y, &test_codes, &ds.y_test, seed);
            let a_pixels = accuracy(kind, &flat(&x), &y, &test_pixels, &ds.y_test, seed);
            sums[k][0] += a_codes;
            sums[k][1] += a_pixels;
            println!("{seed} {kind} {a_codes:.4} {a_pixels:.4}");
        }
    }
    for (k, kind) in ["logistic", "dense64"].iter().enumerate() {
        println!(
            "mean {kind} {:.4} {:.4}",
            sums[k][0] / 3.0,
            sums[k][1] / 3.0
        );
    }
    Ok(())
}
