//! The foundation issue's accuracy claims, end to end through the `nabla` binary on the
//! real data sets, with fixed seeds and thread count (a seed fixes a run bit for bit for
//! a given thread count and CPU path). Each test guards a method, not a run: it trains
//! several seeds and checks their mean against a threshold set below the mean measured
//! over seeds 1-8, by a margin of 3-4 standard errors of the mean of the seeds it runs.
//! Why: a change of CPU path or of a kernel's rounding (Winograd vs direct vs GEMM, or
//! another machine) reshuffles which seeds land high, so each seed's accuracy is a fresh
//! draw from the recipe's distribution; a single seed checked against a threshold near
//! the top of that distribution (as before: deep-convnet >= 98% held for 3 of 8 seeds)
//! fails on such changes and invites re-choosing the seed, which hides real regressions.
//! The first seed's saved model is also re-evaluated by `nabla evaluate`, which must
//! print exactly the same accuracy.
//!
//! Measured (2 threads, AVX-512 machine: Winograd F(4x4) forward and input gradient,
//! F(2x2) weight gradient), one epoch unless said:
//! - keras-cnn, seeds 1-8: 98.35, 98.44, 98.53, 98.25, 98.39, 98.53, 98.49, 98.35%
//!   (mean 98.42%, sd 0.10);
//! - deep-convnet, seeds 1-8: 96.08, 98.12, 97.96, 97.21, 97.17, 97.53, 98.09, 97.87%
//!   (mean 97.50%, sd 0.69; the book reports 98.11%, a NumPy rerun of its code 97.76%);
//!   earlier kernels gave means of 97.53-97.65% over the same seeds;
//! - mlp-bn on Fashion-MNIST with early stopping, seeds 1-8: 87.66, 88.49, 87.82, 88.08,
//!   88.45, 88.18, 88.60, 87.76% (mean 88.13%, sd 0.36).
//!
//! A threshold may move only with a re-measured distribution, never to fit one run.

use std::path::Path;
use std::process::Command;

mod common;

/// The folder holding both data sets these tests use (a failing test without them).
fn data_dir() -> std::path::PathBuf {
    let dir = common::real_data("mnist");
    assert_eq!(
        dir,
        common::real_data("fashion-mnist"),
        "one folder for both"
    );
    dir
}

fn nabla(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["--threads", "2"])
        .args(args)
        .env("NABLA_DATA", data_dir())
        .output()
        .expect("run nabla");
    assert!(
        out.status.success(),
        "nabla {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// One `nabla train` run; returns its test accuracy.
fn train(args: &[&str], reevaluate: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let out_s = out.to_str().unwrap();
    let mut full: Vec<&str> = vec!["train"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--out", out_s, "--json"]);
    let trained = nabla(&full);
    let acc = trained["accuracy"].as_f64().unwrap();
    assert!(Path::new(out_s).join("history.json").exists());
    if reevaluate {
        let again = nabla(&["evaluate", out_s, "--json"]);
        assert_eq!(
            again["accuracy"], trained["accuracy"],
            "evaluate must agree exactly"
        );
        assert_eq!(again["loss"], trained["loss"]);
    }
    acc
}

/// Trains `args` once per seed and returns the test accuracies; the first seed's saved
/// model is re-evaluated.
fn accuracies_over_seeds(args: &[&str], seeds: &[u64]) -> Vec<f64> {
    seeds
        .iter()
        .enumerate()
        .map(|(i, seed)| {
            let seed = seed.to_string();
            let mut full = args.to_vec();
            full.extend_from_slice(&["--seed", &seed]);
            train(&full, i == 0)
        })
        .collect()
}

/// Asserts that the mean of `accs` reaches `min_mean`.
fn assert_mean_at_least(what: &str, accs: &[f64], min_mean: f64) {
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    eprintln!("{what}: accuracies {accs:?}, mean {mean:.4}");
    assert!(
        mean >= min_mean,
        "{what}: mean test accuracy {mean:.4} over seeds ({accs:?}) < {min_mean}"
    );
}

/// keras-cnn, one epoch: mean over seeds 1-4 >= 98.2%. Measured mean 98.42%, sd 0.10,
/// so the mean of 4 seeds has a standard error of 0.05: the threshold is 4 of them
/// below (a correct change of rounding fails it with probability ~3e-5), and a real
/// loss of 0.3 points is caught.
#[test]
fn keras_cnn_one_epoch_averages_98_2_percent_over_four_seeds() {
    let accs = accuracies_over_seeds(
        &[
            "--model",
            "keras-cnn",
            "--dataset",
            "mnist",
            "--epochs",
            "1",
        ],
        &[1, 2, 3, 4],
    );
    assert_mean_at_least("keras-cnn", &accs, 0.982);
}

/// deep-convnet, one epoch: mean over seeds 1-4 >= 96.5%. Measured mean 97.50%, sd
/// 0.69 (one seed in eight at 96.1%), so 4 seeds have a standard error of 0.34: the
/// threshold is 3 of them below. A full epoch per seed: fewer samples would test a
/// different recipe (10,000 samples reach only ~64%).
#[test]
fn deep_convnet_one_epoch_averages_96_5_percent_over_four_seeds() {
    let accs = accuracies_over_seeds(
        &[
            "--model",
            "deep-convnet",
            "--dataset",
            "mnist",
            "--epochs",
            "1",
        ],
        &[1, 2, 3, 4],
    );
    assert_mean_at_least("deep-convnet", &accs, 0.965);
}

/// mlp-bn on Fashion-MNIST with early stopping: mean over seeds 1-4 >= 87.6%. Measured
/// mean 88.13%, sd 0.36, so 4 seeds have a standard error of 0.18: 3 of them below.
#[test]
fn mlp_bn_with_early_stopping_averages_87_6_percent_on_fashion_over_four_seeds() {
    let accs = accuracies_over_seeds(
        &[
            "--model",
            "mlp-bn",
            "--dataset",
            "fashion-mnist",
            "--epochs",
            "100",
            "--validation-split",
            "0.2",
            "--early-stopping",
            "10",
            "--restore-best-weights",
        ],
        &[1, 2, 3, 4],
    );
    assert_mean_at_least("mlp-bn", &accs, 0.876);
}

/// The deep-nets issue's MNIST claim: deep-convnet with augmentation (rotations, shifts,
/// zooms) and a cosine learning-rate decay over 15 epochs reaches 99.4% (the longest test
/// here, ~4-6 minutes on 2 cores). One seed in CI (4 seeds would add ~20 minutes), so
/// the recipe's spread was measured instead, 2 threads each: seeds 2, 3 and 4 gave
/// 99.53%, 99.53% and 99.60% with today's kernels (Dec 5 2026, BENCHMARKS.md, "Deep
/// nets: accuracy runs"), seed 1 99.53% at 147bc34. The threshold sits 13 test images
/// below the lowest of the four, so it guards the recipe, not one lucky run: a failure
/// here means the method lost accuracy, and re-choosing the seed is not a fix.
#[test]
fn deep_convnet_with_augmentation_and_decay_reaches_99_4_percent() {
    let acc = train(
        &[
            "--model",
            "deep-convnet",
            "--dataset",
            "mnist",
            "--epochs",
            "15",
            "--seed",
            "1",
            "--augment",
            "rotate=10,shift=0.1,scale=0.1",
            "--schedule",
            "cosine:15",
        ],
        true,
    );
    assert!(acc >= 0.994, "test accuracy {acc} < 0.994");
}
