//! A CIFAR-10-shaped run (32x32x3, 10 classes) end to end through the `nabla` binary,
//! with augmentation on: small CIFAR-10 binary files written here into a temporary
//! `NABLA_DATA`, a small conv net given as a JSON model config, `nabla train --augment`,
//! then `nabla evaluate` on the saved model. No network: the cache is an empty folder and
//! `NABLA_MIRROR` points at a closed port.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nabla");
const RECORD: usize = 1 + 3 * 32 * 32;
const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];

/// A conv net that takes CIFAR-10's `[3, 32, 32]` images (no built-in model does).
const SMALL_CONV: &str = r#"{"name": "small-conv", "input_shape": [3, 32, 32], "layers": [
    {"class_name": "Conv2D", "config": {"filters": 8, "kernel_size": [3, 3], "activation": "relu"}},
    {"class_name": "MaxPooling2D", "config": {"pool_size": [2, 2]}},
    {"class_name": "Conv2D", "config": {"filters": 8, "kernel_size": [3, 3], "activation": "relu"}},
    {"class_name": "MaxPooling2D", "config": {"pool_size": [2, 2]}},
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}"#;

/// `n` records whose class is visible in the picture: label `k` paints its colour
/// channel `k % 3` bright in a band of rows that depends on `k`, over random noise.
fn records(n: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut noise = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 58) as u8 // 0..64
    };
    let mut out = Vec::with_capacity(n * RECORD);
    for i in 0..n {
        let label = (i % 10) as u8;
        out.push(label);
        for c in 0..3 {
            for row in 0..32 {
                for _col in 0..32 {
                    let lit = c == label as usize % 3 && row / 3 == label as usize;
                    out.push(if lit { 255 } else { noise() });
                }
            }
        }
    }
    out
}

fn nabla(tmp: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--threads", "2"])
        .args(args)
        .current_dir(tmp)
        .env("NABLA_DATA", tmp.join("data"))
        .env("NABLA_CACHE", tmp.join("cache"))
        .env("NABLA_MIRROR", "http://127.0.0.1:9/")
        .output()
        .expect("run the nabla binary")
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn cifar10_shaped_run_trains_with_augmentation_saves_and_evaluates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("cifar10");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir(tmp.path().join("cache")).unwrap();
    for (b, name) in TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(name), records(40, b as u64)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), records(30, 99)).unwrap();
    std::fs::write(tmp.path().join("small_conv.json"), SMALL_CONV).unwrap();

    let spec = "crop=4,flip,rotate=10,shift=0.1,scale=0.1,brightness=0.2,contrast=0.2";
    let train = |out: &str| {
        json(&ok(
            nabla(
                tmp.path(),
                &[
                    "train",
                    "--model",
                    "small_conv.json",
                    "--dataset",
                    "cifar10",
                    "--epochs",
                    "20",
                    "--batch-size",
                    "32",
                    "--validation-split",
                    "0.2",
                    "--augment",
                    spec,
                    "--seed",
                    "3",
                    "--out",
                    out,
                    "--json",
                ],
            ),
            "train",
        ))
    };
    let trained = train("OUT");
    assert_eq!(trained["dataset"], "cifar10");
    assert_eq!(trained["epochs"], 20);
    // The classes are separable by design (a bright band per class), so the net must
    // learn them through the augmentation: at least 27 of the 30 test records. Measured:
    // 30/30 for seeds 1-6 after 20 epochs (2 epochs gave 6/30, 10 epochs 18-20/30).
    let acc = trained["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9 - 1e-6, "test accuracy {acc}: {trained}");
    let out = tmp.path().join("OUT");
    for f in [
        "model.json",
        "weights.safetensors",
        "history.json",
        "run.json",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }

    // run.json keeps the augmentation; the history has the batch timings per epoch.
    let run = json(&std::fs::read_to_string(out.join("run.json")).unwrap());
    assert_eq!(run["augmentation"]["crop_padding"], 4);
    assert_eq!(run["augmentation"]["horizontal_flip"], true);
    let history = json(&std::fs::read_to_string(out.join("history.json")).unwrap());
    for key in [
        "batch_prepare_ms",
        "batch_wait_ms",
        "step_ms",
        "val_accuracy",
    ] {
        let v = history["history"][key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}"));
        assert_eq!(v.len(), 20, "{key}");
    }
    assert!(history["history"]["batch_prepare_ms"][0].as_f64().unwrap() > 0.0);

    // The same seed gives the same run, augmented batches included.
    let again = train("OUT2");
    assert_eq!(again["loss"], trained["loss"]);
    assert_eq!(again["accuracy"], trained["accuracy"]);

    // The saved model evaluates to exactly the figures train printed.
    let ev = json(&ok(
        nabla(tmp.path(), &["evaluate", "OUT", "--json"]),
        "evaluate",
    ));
    assert_eq!(ev["loss"], trained["loss"]);
    assert_eq!(ev["accuracy"], trained["accuracy"]);
}

#[test]
fn a_zoo_resnet_is_built_for_cifar10_and_trains_with_augmentation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("cifar10");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir(tmp.path().join("cache")).unwrap();
    for (b, name) in TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(name), records(16, b as u64)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), records(20, 99)).unwrap();
    let trained = json(&ok(
        nabla(
            tmp.path(),
            &[
                "train",
                "--model",
                "se-resnet20",
                "--dataset",
                "cifar10",
                "--batch-size",
                "16",
                "--augment",
                "crop=4,flip",
                "--schedule",
                "onecycle:1",
                "--weight-decay",
                "5e-4",
                "--out",
                "R",
                "--json",
            ],
        ),
        "train",
    ));
    assert_eq!(trained["model"], "se-resnet20");
    // The saved graph (merges, SE rescales, projections) reloads and evaluates exactly.
    let ev = json(&ok(
        nabla(tmp.path(), &["evaluate", "R", "--json"]),
        "evaluate",
    ));
    assert_eq!(ev["loss"], trained["loss"]);
    let summary = ok(nabla(tmp.path(), &["summary", "R"]), "summary");
    assert!(summary.contains("(None, 3, 32, 32)"), "{summary}");
    assert!(
        summary.contains("conv4_block3_se_scale (Multiply)"),
        "{summary}"
    );
}

#[test]
fn summary_prints_the_published_parameter_counts() {
    let tmp = tempfile::tempdir().unwrap();
    for (model, count) in [
        ("vgg16", "138,357,544"),
        ("resnet50", "25,557,032"),
        ("resnet18", "11,689,512"),
    ] {
        let s = ok(nabla(tmp.path(), &["summary", model]), model);
        assert!(
            s.contains(&format!("Total params: {count}\n")),
            "{model}:\n{s}"
        );
    }
    let s = ok(
        nabla(
            tmp.path(),
            &["summary", "resnet20", "--input-shape", "1,28,28"],
        ),
        "summary resnet20",
    );
    assert!(s.contains("(None, 64, 7, 7)"), "{s}");
    let bad = nabla(tmp.path(), &["summary", "keras-cnn", "--classes", "3"]);
    assert!(!bad.status.success());
}
