//! Autoencoders (issue 15): sub-models that share the parent's weights, the built-in
//! recipes trained input -> input on a small slice of real MNIST, `nabla generate`, the
//! autoencoder report, and their errors.

use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::models::autoencoder::{autoencoder, conv_autoencoder, decoder, encoder};
use nabla::training::gradcheck::check_model;
use nabla::{FitArgs, KerasLoss, Optimizer, Rng, Sequential, Tensor};
use std::path::Path;
use std::process::{Command, Output};

mod common;

fn images(n: usize, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let v = (0..n * 784).map(|_| rng.uniform()).collect();
    Tensor::from_vec(v, &[n, 1, 28, 28])
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_f32_vec(), b.to_f32_vec());
    a.iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

fn compiled(m: &mut Sequential, lr: f32) {
    m.compile(
        KerasLoss::BinaryCrossentropy { from_logits: false },
        Optimizer::adam(lr),
        &[],
    )
    .unwrap();
}

#[test]
fn encoder_and_decoder_share_the_parents_weights() {
    let mut ae = autoencoder(3).unwrap();
    let mut enc = encoder(&mut ae).unwrap();
    let mut dec = decoder(&mut ae).unwrap();
    assert_eq!(enc.count_params(), (784 * 32 + 32, 0));
    assert_eq!(dec.count_params(), (32 * 784 + 784, 0));
    assert_eq!(dec.input_shape(), &[32]);
    // Sharing did not change the parent: same weights, same summary counts.
    assert_eq!(ae.count_params(), (784 * 32 + 32 + 32 * 784 + 784, 0));
    assert!(!ae.summary().contains("shared"), "{}", ae.summary());

    let x = images(16, 1);
    let codes_before = enc.predict(&x, 16).unwrap();
    compiled(&mut ae, 0.01);
    ae.fit(&x, &x, FitArgs::new().epochs(3).batch_size(8).verbose(0))
        .unwrap();
    // Training the parent moved what the encoder computes ...
    let codes = enc.predict(&x, 16).unwrap();
    assert!(max_diff(&codes_before, &codes) > 1e-3);
    // ... and encoder then decoder is exactly the trained parent.
    let through = dec.predict(&codes, 16).unwrap();
    assert!(max_diff(&through, &ae.predict(&x, 16).unwrap()) < 1e-6);

    // The other way: training the decoder alone changes the parent's output.
    let before = ae.predict(&x, 16).unwrap();
    let mut dec_model = Sequential::from(dec);
    compiled(&mut dec_model, 0.01);
    dec_model
        .fit(
            &codes,
            &x,
            FitArgs::new().epochs(2).batch_size(8).verbose(0),
        )
        .unwrap();
    let after = ae.predict(&x, 16).unwrap();
    assert!(max_diff(&before, &after) > 1e-3);
    assert!(max_diff(&after, &dec_model.predict(&codes, 16).unwrap()) < 1e-6);
}

#[test]
fn sub_model_errors_name_the_problem() {
    let mut ae = autoencoder(0).unwrap();
    let e = ae
        .sub_model(&["input"], &["nope"])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("'nope'"), "{e}");
    // The code depends on the model's input, which is not among the given inputs.
    let e = ae
        .sub_model(&["dense"], &["code"])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("input 'input'"), "{e}");
    let mut mlp = nabla::models::build("mlp", 0).unwrap();
    let e = encoder(&mut mlp).err().unwrap().to_string();
    assert!(e.contains("not an autoencoder"), "{e}");
}

#[test]
fn gradients_through_a_sub_model_match_central_differences() {
    // The conv decoder: Dense, Reshape, Conv2DTranspose, UpSampling2D, Conv2D, each
    // behind the handle it shares with the parent.
    let mut ae = conv_autoencoder(5).unwrap();
    let mut dec = Sequential::from(decoder(&mut ae).unwrap());
    compiled(&mut dec, 1e-3);
    let mut rng = Rng::new(2);
    let codes = Tensor::from_vec((0..2 * 32).map(|_| rng.uniform()).collect(), &[2, 32]);
    let y = images(2, 4);
    let reports = check_model(&mut dec, &codes, &y, 20, 1e-2).unwrap();
    // Dense, Conv2DTranspose and Conv2D: a kernel and a bias each, all checked.
    assert_eq!(reports.len(), 6, "{reports:?}");
    for r in reports {
        assert!(
            r.rel_error < DEFAULT_TOLERANCE,
            "{}: {:.3e}",
            r.param,
            r.rel_error
        );
        assert!(r.passed(), "{r:?}");
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["--threads", "2"])
        .args(args)
        .env("NABLA_DATA", common::real_data("mnist"))
        .output()
        .expect("run nabla")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "nabla {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "nabla {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn epoch_losses(dir: &Path) -> Vec<f64> {
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("history.json")).unwrap()).unwrap();
    let h = if h["history"].is_object() {
        &h["history"]
    } else {
        &h
    };
    h["loss"]
        .as_array()
        .unwrap_or_else(|| panic!("no loss in {h}"))
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn recipes_train_on_mnist_and_generate_writes_images() {
    let tmp = tempfile::tempdir().unwrap();
    let dense = tmp.path().join("ae");
    let d = dense.to_str().unwrap();
    ok(&[
        "train",
        "--model",
        "autoencoder",
        "--dataset",
        "mnist",
        "--limit",
        "2000",
        "--epochs",
        "4",
        "--out",
        d,
        "--report",
    ]);
    let losses = epoch_losses(&dense);
    assert!(
        losses[3] < 0.8 * losses[0],
        "reconstruction loss did not fall: {losses:?}"
    );
    assert!(dense.join("codes.json").exists());
    let page = std::fs::read_to_string(dense.join("report/report.html")).unwrap();
    for pic in ["reconstructions", "generated", "code_space"] {
        assert!(page.contains(&format!("alt=\"{pic}\"")), "{pic} missing");
        assert!(dense.join(format!("report/{pic}.png")).exists());
    }

    let png = tmp.path().join("gen.png");
    let npy = tmp.path().join("gen.npy");
    ok(&[
        "generate",
        d,
        "--count",
        "50",
        "--seed",
        "7",
        "--out",
        png.to_str().unwrap(),
        "--npy",
        npy.to_str().unwrap(),
    ]);
    // 50 images: 8 columns of 28 + 2 pixels, 7 rows.
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (8 * 30 + 2, 7 * 30 + 2));
    let arr = nabla::data::npy::load_npy(&npy).unwrap();
    assert_eq!(arr.shape, vec![50, 1, 28, 28]);
    // Images, not blanks: values in [0, 1], not all the same.
    let (lo, hi) = arr
        .data
        .iter()
        .fold((1f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(lo >= 0.0 && hi <= 1.0 && hi - lo > 0.5, "{lo} {hi}");

    // The convolutional recipe, denoising.
    let conv = tmp.path().join("conv");
    ok(&[
        "train",
        "--model",
        "conv-autoencoder",
        "--dataset",
        "mnist",
        "--limit",
        "512",
        "--epochs",
        "3",
        "--denoise",
        "0.3",
        "--batch-size",
        "64",
        "--out",
        conv.to_str().unwrap(),
    ]);
    let losses = epoch_losses(&conv);
    assert!(losses[2] < losses[0], "conv loss did not fall: {losses:?}");
    let run_json = std::fs::read_to_string(conv.join("run.json")).unwrap();
    assert!(run_json.contains("\"denoise\": 0.3"), "{run_json}");

    // Bad input.
    let e = fails(&["generate", d, "--count", "0"]);
    assert!(e.contains("--count must be between 1 and"), "{e}");
    let e = fails(&["generate", d, "--count", "100000000"]);
    assert!(e.contains("--count must be between 1 and"), "{e}");
    let mlp = tmp.path().join("mlp");
    ok(&[
        "train",
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--limit",
        "200",
        "--epochs",
        "1",
        "--out",
        mlp.to_str().unwrap(),
    ]);
    let e = fails(&["generate", mlp.to_str().unwrap()]);
    assert!(e.contains("not an autoencoder run"), "{e}");
    let e = fails(&["generate", tmp.path().join("none").to_str().unwrap()]);
    assert!(e.contains("no such directory"), "{e}");
    let e = fails(&[
        "train",
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--limit",
        "100",
        "--denoise",
        "0.5",
    ]);
    assert!(e.contains("--denoise is for autoencoders"), "{e}");
    // A run whose code statistics were damaged: the file is named.
    std::fs::write(dense.join("codes.json"), "{\"samples\": 3}").unwrap();
    let e = fails(&["generate", d]);
    assert!(e.contains("codes.json"), "{e}");
}
