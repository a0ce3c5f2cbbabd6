//! Bad input, end to end through the real `nabla` binary: corrupt data files, broken
//! weights, wrong model configs, non-images, unknown names and a diverging loss.
//!
//! Every case runs the binary in its own temporary folder and checks that
//! - it exits with status 1 (an error, not a panic or a signal);
//! - stderr is exactly one line, `error: ...`, naming the file at fault and the problem;
//! - nothing was written: the folder (data, cache, `--out`, the user's own files) is the
//!   same byte for byte afterwards, with no temporary files left behind.
//!
//! The data sets are small fakes written here, except for the one positive test, which
//! trains on the real MNIST (`$NABLA_DATA`, else `../shared/data`) and fails without
//! it, naming where it looked. Downloads cannot happen: `NABLA_CACHE` is an empty folder of the case and
//! `NABLA_MIRROR` points at a closed port.

mod common;

use nabla::data::idx::{encode_idx, write_idx, IdxArray};
use nabla::formats::safetensors_io;
use nabla::Tensor;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nabla");
const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
/// Size of the fake data set: enough for `--limit 200` and two batches of 100.
const N_TRAIN: usize = 256;
const N_TEST: usize = 16;

/// One scratch folder; the binary runs inside it, so paths in arguments are relative.
struct Case {
    tmp: tempfile::TempDir,
    data: PathBuf,
}

struct Ran {
    out: Output,
    elapsed: Duration,
    what: String,
}

impl Ran {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn assert_ok(&self) {
        assert!(
            self.out.status.success(),
            "{} failed ({}):\n{}{}",
            self.what,
            self.out.status,
            self.stdout(),
            self.stderr()
        );
    }
}

impl Case {
    /// An empty case whose `NABLA_DATA` is `data/` (empty) and cache `cache/` (empty).
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(tmp.path().join("cache")).unwrap();
        Case { tmp, data }
    }

    /// A case with a small valid MNIST-shaped data set in `data/mnist/`.
    fn with_mnist() -> Case {
        let case = Case::new();
        write_fake_mnist(&case.mnist());
        case
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn mnist(&self) -> PathBuf {
        self.data.join("mnist")
    }

    fn run(&self, args: &[&str]) -> Ran {
        self.run_with_data(&self.data, args)
    }

    fn run_with_data(&self, data: &Path, args: &[&str]) -> Ran {
        let start = Instant::now();
        let out = Command::new(BIN)
            .args(args)
            .current_dir(self.tmp.path())
            .env("NABLA_DATA", data)
            .env("NABLA_CACHE", self.path("cache"))
            .env("NABLA_MIRROR", "http://127.0.0.1:9/")
            // A panic would print a backtrace: more than one line, so it cannot pass.
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run the nabla binary");
        Ran {
            out,
            elapsed: start.elapsed(),
            what: format!("nabla {}", args.join(" ")),
        }
    }

    /// Runs `args`, which must fail with one clear line containing every needle and
    /// leave the case's folder exactly as it was. Returns the message.
    fn expect_error(&self, args: &[&str], needles: &[&str]) -> String {
        self.expect_error_timed(args, needles).0
    }

    fn expect_error_timed(&self, args: &[&str], needles: &[&str]) -> (String, Duration) {
        let before = snapshot(self.tmp.path());
        let ran = self.run(args);
        let after = snapshot(self.tmp.path());
        let msg = assert_one_line_error(&ran, needles);
        assert_unchanged(&before, &after, &ran.what);
        assert_no_temp_files(self.tmp.path());
        (msg, ran.elapsed)
    }

    /// Runs `nabla train ARGS`, which must succeed.
    fn train(&self, args: &[&str]) {
        let mut all = vec!["train"];
        all.extend_from_slice(args);
        self.run(&all).assert_ok();
    }
}

fn assert_one_line_error(ran: &Ran, needles: &[&str]) -> String {
    let stderr = ran.stderr();
    assert_eq!(
        ran.out.status.code(),
        Some(1),
        "{}: expected exit status 1, got {}\nstdout:\n{}\nstderr:\n{stderr}",
        ran.what,
        ran.out.status,
        ran.stdout()
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: stderr is not one line:\n{stderr}",
        ran.what
    );
    let msg = lines[0];
    assert!(msg.starts_with("error: "), "{}: {msg}", ran.what);
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!msg.contains(bad), "{}: {msg}", ran.what);
    }
    for needle in needles {
        assert!(
            msg.contains(needle),
            "{}: expected {needle:?} in the error:\n{msg}",
            ran.what
        );
    }
    msg.to_string()
}

/// Every file (with its bytes) and folder (`None`) under `root`.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut map = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                map.insert(rel, None);
                stack.push(path);
            } else {
                map.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    map
}

fn assert_unchanged(
    before: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    after: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    what: &str,
) {
    let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let removed: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    let changed: Vec<_> = before
        .iter()
        .filter(|(k, v)| after.get(*k).is_some_and(|w| w != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        added.is_empty() && removed.is_empty() && changed.is_empty(),
        "{what} touched files: added {added:?}, removed {removed:?}, changed {changed:?}"
    );
}

/// No temporary files of an interrupted atomic write (`.NAME.XXXX.tmp`) or of tempfile.
fn assert_no_temp_files(root: &Path) {
    for path in snapshot(root).keys() {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            !name.ends_with(".tmp") && !name.starts_with(".nabla-") && !name.starts_with(".tmp"),
            "temporary file left behind: {}",
            path.display()
        );
    }
}

/// The four MNIST files with `N_TRAIN` and `N_TEST` images of 28x28, mixed compression.
fn write_fake_mnist(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let images = |n: usize, salt: usize| {
        let data = (0..n * 784)
            .map(|i| ((i * 37 + salt) % 251) as u8)
            .collect();
        IdxArray::new(vec![n, 28, 28], data).unwrap()
    };
    let labels = |n: usize| IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect());
    write_idx(dir.join(TRAIN_IMAGES), &images(N_TRAIN, 1), true).unwrap();
    write_idx(dir.join(TRAIN_LABELS), &labels(N_TRAIN).unwrap(), false).unwrap();
    write_idx(dir.join(TEST_IMAGES), &images(N_TEST, 2), false).unwrap();
    write_idx(dir.join(TEST_LABELS), &labels(N_TEST).unwrap(), false).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

const TRAIN_MLP: [&str; 8] = [
    "train",
    "--model",
    "mlp",
    "--dataset",
    "mnist",
    "--epochs",
    "1",
    "--out",
];

/// `nabla train --model mlp --dataset mnist --epochs 1 --out OUT` on a corrupt data set:
/// one line naming the file, no OUT, nothing downloaded into the cache.
fn expect_data_error(case: &Case, needles: &[&str]) -> (String, Duration) {
    let mut args = TRAIN_MLP.to_vec();
    args.push("OUT");
    let res = case.expect_error_timed(&args, needles);
    assert!(!case.path("OUT").exists());
    res
}

// ---------------------------------------------------------------------------------------
// 1. IDX data files

#[test]
fn fake_mnist_trains() {
    // The baseline the corruptions start from: the untouched fake data set is fine.
    let case = Case::with_mnist();
    case.train(&[
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--epochs",
        "1",
        "--out",
        "OUT",
    ]);
    assert!(case.path("OUT/weights.safetensors").is_file());
}

#[test]
fn weight_decay_and_label_smoothing_reach_the_saved_model() {
    // The flags' positive path: the saved compile config carries both, so `nabla
    // evaluate` and a resumed `nabla train` use them.
    let case = Case::with_mnist();
    case.train(&[
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--optimizer",
        "sgd",
        "--weight-decay",
        "0.0005",
        "--label-smoothing",
        "0.1",
        "--out",
        "OUT",
    ]);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.path("OUT/model.json")).unwrap()).unwrap();
    let compile = &cfg["compile"];
    assert_eq!(compile["optimizer"]["name"], "sgd", "{compile}");
    assert!((compile["optimizer"]["weight_decay"].as_f64().unwrap() - 5e-4).abs() < 1e-9);
    let loss = &compile["loss"]["sparse_categorical_crossentropy"];
    assert!(
        (loss["label_smoothing"].as_f64().unwrap() - 0.1).abs() < 1e-7,
        "{compile}"
    );
}

#[test]
fn a_hand_edited_negative_weight_decay_in_model_json_is_an_error() {
    let case = Case::with_mnist();
    case.train(&[
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--optimizer",
        "sgd",
        "--weight-decay",
        "0.0005",
        "--out",
        "OUT",
    ]);
    let path = case.path("OUT/model.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"weight_decay\": 0.0005", "\"weight_decay\": -1.0", 1);
    assert_ne!(edited, text, "{text}");
    std::fs::write(&path, edited).unwrap();
    case.expect_error(&["evaluate", "OUT"], &["model.json", "weight_decay is -1"]);
}

#[test]
fn idx_truncated_file_is_named() {
    let case = Case::with_mnist();
    let path = case.mnist().join(TEST_IMAGES);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let (msg, _) = expect_data_error(&case, &[TEST_IMAGES, "truncated"]);
    assert!(
        msg.contains(&format!("only {}", N_TEST * 784 - 100)),
        "{msg}"
    );
}

#[test]
fn idx_wrong_magic_number_is_named() {
    let case = Case::with_mnist();
    let path = case.mnist().join(TRAIN_LABELS);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..4].copy_from_slice(&[0x12, 0x34, 0x08, 0x01]);
    std::fs::write(&path, &bytes).unwrap();
    expect_data_error(&case, &[TRAIN_LABELS, "bad magic number 0x12340801"]);
}

#[test]
fn idx_image_label_count_mismatch_is_named() {
    let case = Case::with_mnist();
    let labels = IdxArray::new(vec![N_TEST - 1], vec![3; N_TEST - 1]).unwrap();
    write_idx(case.mnist().join(TEST_LABELS), &labels, false).unwrap();
    expect_data_error(
        &case,
        &[
            TEST_LABELS,
            &format!("{} labels but", N_TEST - 1),
            &format!("has {N_TEST} images"),
        ],
    );
}

#[test]
fn idx_header_claiming_billions_of_images_fails_fast() {
    // 4e9 images of 28x28 (3 TB) claimed, 3 really there: compressed and raw.
    let mut bytes = vec![0, 0, 8, 3];
    for d in [4_000_000_000u32, 28, 28] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend(std::iter::repeat_n(7u8, 3 * 784));
    for compressed in [true, false] {
        let case = Case::with_mnist();
        std::fs::remove_file(case.mnist().join(TRAIN_IMAGES)).unwrap();
        let name = if compressed {
            std::fs::write(case.mnist().join(TRAIN_IMAGES), gzip(&bytes)).unwrap();
            TRAIN_IMAGES
        } else {
            let raw = TRAIN_IMAGES.trim_end_matches(".gz");
            std::fs::write(case.mnist().join(raw), &bytes).unwrap();
            raw
        };
        let (msg, elapsed) = expect_data_error(&case, &[name, "truncated", "4000000000"]);
        assert!(msg.contains(&format!("holds only {}", 3 * 784)), "{msg}");
        assert!(
            elapsed < Duration::from_secs(5),
            "took {elapsed:?} to reject a lying header"
        );
    }
}

#[test]
fn idx_corrupt_gzip_is_named() {
    let case = Case::with_mnist();
    let path = case.mnist().join(TRAIN_IMAGES);
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    std::fs::write(&path, &flipped).unwrap();
    expect_data_error(&case, &[TRAIN_IMAGES, "gzip"]);

    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    expect_data_error(&case, &[TRAIN_IMAGES, "truncated gzip data"]);

    // A gzip header and nothing else.
    std::fs::write(&path, [0x1f, 0x8b]).unwrap();
    expect_data_error(&case, &[TRAIN_IMAGES, "gzip"]);
}

#[test]
fn idx_trailing_garbage_is_named() {
    let case = Case::with_mnist();
    let path = case.mnist().join(TEST_LABELS);
    let mut bytes = encode_idx(&IdxArray::new(vec![N_TEST], vec![1; N_TEST]).unwrap()).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&path, &bytes).unwrap();
    expect_data_error(&case, &[TEST_LABELS, "trailing garbage"]);
}

// ---------------------------------------------------------------------------------------
// 2. Weights of a saved model

/// A case holding `M/`, a trained xor-mlp (2-2-1: dense/kernel [2, 2], dense_1/kernel
/// [2, 1], and their biases).
fn saved_xor() -> Case {
    let case = Case::new();
    case.train(&["--model", "xor-mlp", "--epochs", "10", "--out", "M"]);
    case.run(&["evaluate", "M"]).assert_ok();
    case
}

fn rewrite_weights(case: &Case, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let path = case.path("M/weights.safetensors");
    let mut tensors = safetensors_io::load(&path).unwrap();
    edit(&mut tensors);
    safetensors_io::save(&path, &tensors).unwrap();
}

#[test]
fn weights_missing_tensor_is_named() {
    let case = saved_xor();
    rewrite_weights(&case, |t| t.retain(|(name, _)| name != "dense/kernel"));
    case.expect_error(
        &["evaluate", "M"],
        &[
            "weights.safetensors",
            "missing tensor 'dense/kernel'",
            "[2, 2]",
        ],
    );
}

#[test]
fn weights_wrong_shape_names_both_shapes() {
    let case = saved_xor();
    rewrite_weights(&case, |t| {
        let k = t.iter_mut().find(|(n, _)| n == "dense_1/kernel").unwrap();
        k.1 = Tensor::zeros(&[3, 1]);
    });
    case.expect_error(
        &["evaluate", "M"],
        &[
            "weights.safetensors",
            "tensor 'dense_1/kernel' has shape [3, 1], the model needs [2, 1]",
        ],
    );
}

#[test]
fn weights_extra_tensor_is_named() {
    let case = saved_xor();
    rewrite_weights(&case, |t| {
        t.push(("dense_2/kernel".to_string(), Tensor::zeros(&[1, 1])))
    });
    case.expect_error(
        &["evaluate", "M"],
        &["weights.safetensors", "unexpected tensor 'dense_2/kernel'"],
    );
}

#[test]
fn weights_truncated_or_garbage_file_is_named() {
    let case = saved_xor();
    let path = case.path("M/weights.safetensors");
    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    case.expect_error(
        &["evaluate", "M"],
        &["weights.safetensors", "not a valid safetensors file"],
    );
    std::fs::write(&path, b"these are not weights\n\x00\x01\x02").unwrap();
    case.expect_error(
        &["evaluate", "M"],
        &["weights.safetensors", "not a valid safetensors file"],
    );
    std::fs::write(&path, b"").unwrap();
    case.expect_error(
        &["evaluate", "M"],
        &["weights.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn corrupt_optimizer_state_is_named() {
    let case = saved_xor();
    std::fs::write(case.path("M/optimizer.safetensors"), b"garbage").unwrap();
    case.expect_error(
        &["evaluate", "M"],
        &["optimizer.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn corrupt_model_json_in_a_saved_dir_is_named() {
    let case = saved_xor();
    let path = case.path("M/model.json");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    case.expect_error(&["evaluate", "M"], &["model.json", "invalid JSON"]);
    case.expect_error(&["predict", "M", "x.png"], &["model.json", "invalid JSON"]);

    std::fs::write(&path, good.replacen("\"Dense\"", "\"Dense2\"", 1)).unwrap();
    case.expect_error(
        &["evaluate", "M"],
        &["model.json", "unknown layer class \"Dense2\""],
    );
    std::fs::write(&path, good.replacen("\"units\": 2", "\"units\": 3", 1)).unwrap();
    case.expect_error(
        &["evaluate", "M"],
        &[
            "weights.safetensors",
            "tensor 'dense/kernel' has shape [2, 2], the model needs [2, 3]",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// 3. Model configs written by hand

const DENSE2: &str = r#"{"name": "t", "input_shape": [1, 28, 28], "layers": [
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense2", "config": {"units": 10, "activation": "softmax"}}]}"#;
const RELUX: &str = r#"{"name": "t", "input_shape": [1, 28, 28], "layers": [
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"units": 32, "activation": "relux"}},
    {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}"#;
const BROKEN: &str = r#"{"name": "t", "input_shape": [1, 28, 28], "layers": [
    {"class_name": "Flatten", "config": {}},"#;
const NO_FLATTEN: &str = r#"{"name": "t", "input_shape": [1, 28, 28], "layers": [
    {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": [3, 3], "activation": "relu"}},
    {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}"#;
const TYPO_FIELD: &str = r#"{"name": "t", "input_shape": [1, 28, 28], "layers": [
    {"class_name": "Flatten", "config": {}},
    {"class_name": "Dense", "config": {"unit": 10}}]}"#;

/// `summary FILE` and `train --model FILE` both fail with the same clear line.
fn expect_config_error(file: &str, json: &str, needles: &[&str]) {
    let case = Case::with_mnist();
    std::fs::write(case.path(file), json).unwrap();
    let mut all = vec![file];
    all.extend_from_slice(needles);
    let a = case.expect_error(&["summary", file], &all);
    let mut train = TRAIN_MLP.to_vec();
    train[2] = file;
    train.push("OUT");
    let b = case.expect_error(&train, &all);
    assert_eq!(a, b);
    assert!(!case.path("OUT").exists());
}

#[test]
fn config_unknown_layer_class_is_named() {
    expect_config_error(
        "dense2.json",
        DENSE2,
        &[
            "layer 2",
            "unknown layer class \"Dense2\"",
            "known: Dense, Conv2D",
        ],
    );
}

#[test]
fn config_unknown_activation_is_named() {
    expect_config_error(
        "relux.json",
        RELUX,
        &[
            "layer 2 (Dense)",
            "unknown activation \"relux\"",
            "relu, sigmoid",
        ],
    );
}

#[test]
fn config_invalid_json_is_named() {
    expect_config_error(
        "broken.json",
        BROKEN,
        &["invalid JSON", "EOF while parsing", "line 2"],
    );
}

#[test]
fn config_shape_error_names_the_layer() {
    expect_config_error(
        "noflatten.json",
        NO_FLATTEN,
        &["layer 'dense' (Dense)", "[batch, 4, 26, 26]", "Flatten"],
    );
}

#[test]
fn config_unknown_field_is_named() {
    expect_config_error(
        "typo.json",
        TYPO_FIELD,
        &["layer 2 (Dense)", "unknown field `unit`"],
    );
}

#[test]
fn config_file_that_does_not_exist_is_named() {
    let case = Case::new();
    case.expect_error(&["summary", "nope.json"], &["nope.json", "No such file"]);
}

#[test]
fn train_refuses_a_model_with_two_outputs_and_says_what_to_use() {
    // A valid graph (summary shows it), but a data set has one label per sample.
    let json = r#"{"name": "two-out", "input_shape": [1, 28, 28], "layers": [
        {"class_name": "Flatten", "config": {"name": "f"}},
        {"class_name": "Dense", "config": {"name": "p", "units": 10, "activation": "softmax"}},
        {"class_name": "Dense", "config": {"name": "q", "units": 10}, "inbound": ["f"]}],
        "outputs": ["p", "q"]}"#;
    let case = Case::with_mnist();
    std::fs::write(case.path("two.json"), json).unwrap();
    case.run(&["summary", "two.json"]).assert_ok();
    let mut train = TRAIN_MLP.to_vec();
    train[2] = "two.json";
    train.push("OUT");
    case.expect_error(&train, &["'two-out'", "1 inputs and 2 outputs", "fit_many"]);
    assert!(!case.path("OUT").exists());
}

// ---------------------------------------------------------------------------------------
// 4. Images and model directories for predict

/// A case with `M/`, an mlp trained for one epoch on the fake MNIST.
fn saved_mlp() -> Case {
    let case = Case::with_mnist();
    case.train(&[
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--epochs",
        "1",
        "--out",
        "M",
    ]);
    case
}

fn write_digit_png(path: &Path) {
    // 40x40, light grey "1" (a bar with a foot) on black, like MNIST but larger.
    image::GrayImage::from_fn(40, 40, |x, y| {
        let bar = (18..23).contains(&x) && (6..34).contains(&y);
        let foot = (13..28).contains(&x) && (31..34).contains(&y);
        image::Luma([if bar || foot { 220 } else { 0 }])
    })
    .save(path)
    .unwrap();
}

#[test]
fn predict_on_a_text_file_is_named() {
    let case = saved_mlp();
    std::fs::write(case.path("notanimage.png"), "just some text\n").unwrap();
    case.expect_error(
        &["predict", "M", "notanimage.png"],
        &["notanimage.png", "cannot read as a PNG or JPEG image"],
    );
}

#[test]
fn predict_on_a_missing_image_is_named() {
    let case = saved_mlp();
    case.expect_error(
        &["predict", "M", "missing.png"],
        &["missing.png", "No such file"],
    );
}

#[test]
fn a_model_dir_that_does_not_exist_is_named() {
    let case = Case::new();
    write_digit_png(&case.path("digit.png"));
    for args in [
        &["predict", "nodir", "digit.png"][..],
        &["evaluate", "nodir"][..],
    ] {
        case.expect_error(args, &["nodir", "no such directory", "model directory"]);
    }
    case.expect_error(
        &["predict", "digit.png", "digit.png"],
        &["digit.png", "not a directory"],
    );
}

// ---------------------------------------------------------------------------------------
// 5. Unknown names list the known ones

#[test]
fn unknown_model_lists_the_builtins() {
    let case = Case::new();
    for args in [
        &["train", "--model", "nosuchnet", "--out", "OUT"][..],
        &["summary", "nosuchnet"][..],
    ] {
        case.expect_error(
            args,
            &["unknown model 'nosuchnet'", "perceptron, xor-mlp, mlp"],
        );
    }
}

#[test]
fn unknown_dataset_lists_the_known_ones() {
    let case = Case::new();
    case.expect_error(
        &[
            "train",
            "--model",
            "mlp",
            "--dataset",
            "nosuchdata",
            "--out",
            "OUT",
        ],
        &[
            "unknown data set \"nosuchdata\"",
            "mnist, fashion-mnist",
            "xor, and, or, nand",
        ],
    );
}

// The optimizer and loss names are checked before any data is loaded: the data folder
// of these cases is empty, so loading MNIST would fail (no download possible).

#[test]
fn unknown_optimizer_lists_the_known_ones() {
    let case = Case::new();
    case.expect_error(
        &[
            "train",
            "--model",
            "mlp",
            "--optimizer",
            "adamx",
            "--out",
            "OUT",
        ],
        &["unknown optimizer 'adamx'", "sgd", "adam, adamw"],
    );
}

#[test]
fn unknown_loss_lists_the_known_ones() {
    let case = Case::new();
    case.expect_error(
        &["train", "--model", "mlp", "--loss", "foo", "--out", "OUT"],
        &[
            "unknown loss 'foo'",
            "sparse_categorical_crossentropy",
            "mse",
        ],
    );
}

#[test]
fn label_smoothing_out_of_range_or_on_the_wrong_loss_names_the_flag() {
    let case = Case::new();
    for eps in ["1", "-0.1", "NaN"] {
        case.expect_error(
            &[
                "train",
                "--model",
                "mlp",
                "--label-smoothing",
                eps,
                "--out",
                "OUT",
            ],
            &["--label-smoothing must be in [0, 1)"],
        );
    }
    // xor-mlp trains with binary cross-entropy on the XOR table (no data files).
    case.expect_error(
        &[
            "train",
            "--model",
            "xor-mlp",
            "--label-smoothing",
            "0.1",
            "--out",
            "OUT",
        ],
        &["--label-smoothing", "not binary_crossentropy"],
    );
}

#[test]
fn negative_weight_decay_names_the_flag() {
    let case = Case::new();
    for wd in ["-0.01", "inf"] {
        case.expect_error(
            &[
                "train",
                "--model",
                "mlp",
                "--optimizer",
                "adamw",
                "--weight-decay",
                wd,
                "--out",
                "OUT",
            ],
            &["--weight-decay must be a non-negative number"],
        );
    }
}

// ---------------------------------------------------------------------------------------
// 6. A diverging loss

const DIVERGE: [&str; 15] = [
    "train",
    "--model",
    "mlp",
    "--dataset",
    "mnist",
    "--optimizer",
    "sgd",
    "--lr",
    "1e30",
    "--limit",
    "200",
    "--epochs",
    "1",
    "--out",
    "OUT",
];

#[test]
fn nan_loss_names_epoch_and_batch_and_writes_nothing() {
    let case = Case::with_mnist();
    let msg = case.expect_error(
        &DIVERGE,
        &["numerical error", "epoch 1, batch", "learning rate"],
    );
    assert!(msg.contains("NaN") || msg.contains("inf"), "{msg}");
    assert!(!case.path("OUT").exists());

    // Into a nested --out: none of the folders is left behind.
    let mut nested = DIVERGE;
    nested[14] = "runs/a/b";
    case.expect_error(&nested, &["numerical error"]);
    assert!(!case.path("runs").exists());
}

#[test]
fn nan_loss_leaves_an_existing_out_dir_untouched() {
    let case = Case::with_mnist();
    // A model and a note the user already has in OUT.
    case.train(&["--model", "xor-mlp", "--epochs", "3", "--out", "OUT"]);
    std::fs::write(case.path("OUT/notes.txt"), "my notes\n").unwrap();
    case.expect_error(&DIVERGE, &["numerical error"]);
    // ... and the old model still loads.
    case.run(&["evaluate", "OUT"]).assert_ok();
}

// ---------------------------------------------------------------------------------------
// 7. Augmentation specs

// The spec is checked before any data is loaded (the data folder here is empty).
#[test]
fn bad_augment_spec_names_the_key() {
    let case = Case::new();
    for (spec, needles) in [
        (
            "crop=4,zoom=0.1",
            &["unknown key \"zoom\"", "known keys: crop, flip"][..],
        ),
        ("crop=four", &["crop=four", "whole number of pixels"]),
        ("rotate=400", &["rotate=400", "[0, 180] degrees"]),
        ("shift", &["\"shift\" needs a value"]),
    ] {
        let prefix = format!("--augment \"{spec}\"");
        let mut all = vec![prefix.as_str()];
        all.extend_from_slice(needles);
        case.expect_error(
            &["train", "--model", "mlp", "--augment", spec, "--out", "OUT"],
            &all,
        );
    }
}

#[test]
fn augmenting_a_truth_table_is_refused() {
    let case = Case::new();
    case.expect_error(
        &[
            "train",
            "--model",
            "xor-mlp",
            "--dataset",
            "xor",
            "--augment",
            "flip",
            "--out",
            "OUT",
        ],
        &["--augment needs an image data set", "'xor'"],
    );
}

#[test]
fn fake_mnist_trains_with_augmentation_seeded() {
    let case = Case::with_mnist();
    let run = |out: &str, augment: Option<&str>| -> serde_json::Value {
        let mut args = vec![
            "train",
            "--model",
            "mlp",
            "--dataset",
            "mnist",
            "--epochs",
            "2",
            "--limit",
            "200",
            "--seed",
            "5",
            "--out",
            out,
        ];
        if let Some(spec) = augment {
            args.extend(["--augment", spec]);
        }
        let ran = case.run(&args);
        ran.assert_ok();
        if augment.is_some() {
            assert!(
                ran.stdout()
                    .contains("Augmenting the training batches: crop=2,flip"),
                "{}",
                ran.stdout()
            );
        }
        let text = std::fs::read_to_string(case.path(out).join("run.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let spec = "crop=2,flip,rotate=10,shift=0.1,scale=0.1,brightness=0.1,contrast=0.1";
    let a = run("A", Some(spec));
    let b = run("B", Some(spec));
    let plain = run("C", None);
    assert_eq!(a["augmentation"]["rotation_degrees"], 10.0);
    assert_eq!(plain["augmentation"], serde_json::Value::Null);
    assert_eq!(a["loss"], b["loss"], "same seed, same augmented run");
    assert_ne!(a["loss"], plain["loss"], "augmentation changes the run");
}

// ---------------------------------------------------------------------------------------
// Positive: predict on a real PNG

#[test]
fn predict_prints_a_class_and_ten_probabilities() {
    let data = common::real_data("mnist");
    let case = Case::new();
    let train = [
        "train",
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--limit",
        "2000",
        "--epochs",
        "1",
        "--seed",
        "1",
        "--out",
        "M",
    ];
    case.run_with_data(&data, &train).assert_ok();
    write_digit_png(&case.path("digit.png"));

    let ran = case.run(&["predict", "M", "digit.png"]);
    ran.assert_ok();
    assert_eq!(ran.stderr(), "", "predict wrote to stderr");
    let stdout = ran.stdout();
    let mut lines = stdout.lines();
    let first = lines.next().expect("a first line");
    let class = first
        .strip_prefix("digit.png: ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"));
    let rows: Vec<(String, f32)> = lines
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap().to_string();
            let p: f32 = parts.next().unwrap().parse().unwrap();
            assert!(parts.next().is_none(), "{l}");
            (name, p)
        })
        .collect();
    assert_eq!(rows.len(), 10, "{stdout}");
    let mut names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[0], class,
        "the class printed is the most probable one"
    );
    // The picture is a "1" (a bar with a foot), and an MLP trained on 2,000 MNIST
    // digits for one epoch reads it as one (measured: p = 0.44, the next 0.16).
    assert_eq!(class, "1", "{stdout}");
    names.sort();
    assert_eq!(names, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert!(rows.windows(2).all(|w| w[0].1 >= w[1].1), "{stdout}");
    assert!(
        rows.iter().all(|(_, p)| (0.0..=1.0).contains(p)),
        "{stdout}"
    );
    let sum: f32 = rows.iter().map(|(_, p)| p).sum();
    // Each printed with 4 decimals: at most 10 * 0.00005 off.
    assert!(
        (sum - 1.0).abs() < 1e-3,
        "probabilities sum to {sum}:\n{stdout}"
    );
}
