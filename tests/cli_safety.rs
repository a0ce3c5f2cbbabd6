//! "Nothing lost, nothing absurd", end to end through the real `nabla` binary: saves
//! interrupted by a kill or a full disk, sizes from configs that would exhaust memory,
//! images that claim billions of pixels, nonsense option values, unwritable outputs,
//! folders named like built-ins, a misdirected `NABLA_DATA`, and data sets whose classes
//! are not the model's. Also the ensemble `nabla evaluate DIR1 DIR2 ...`.
//!
//! Like `cli_errors.rs`, every failing case checks exit status 1, a one-line `error: ...`
//! naming the problem, and an untouched folder. The huge-size cases run under a memory
//! limit (`ulimit -v`), so a regression fails (the allocation aborts) instead of eating
//! the machine. Data sets are small fakes; downloads cannot happen (`NABLA_MIRROR` is a
//! closed port).

use nabla::data::idx::{write_idx, IdxArray};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nabla");
/// Virtual memory for the huge-size cases (KiB): the binary runs in well under 1 GB.
const MEMORY_LIMIT_KIB: u64 = 3_000_000;

struct Case {
    tmp: tempfile::TempDir,
}

struct Ran {
    out: Output,
    what: String,
}

impl Ran {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn assert_ok(&self) -> &Ran {
        assert!(
            self.out.status.success(),
            "{} failed ({}):\n{}{}",
            self.what,
            self.out.status,
            self.stdout(),
            self.stderr()
        );
        self
    }
}

impl Case {
    /// `data/` (NABLA_DATA) with a fake MNIST, an empty `cache/`.
    fn new() -> Case {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("cache")).unwrap();
        let case = Case { tmp };
        write_fake_mnist(&case.path("data/mnist"), 64, 16);
        case
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn command(&self, shell_prefix: Option<&str>, args: &[&str]) -> Command {
        let mut c = match shell_prefix {
            // `bash -c 'ulimit ...; exec "$0" "$@"' BIN ARGS...`
            Some(prefix) => {
                let mut c = Command::new("bash");
                c.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                    .arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        c.args(args)
            .current_dir(self.tmp.path())
            .env("NABLA_DATA", self.path("data"))
            .env("NABLA_CACHE", self.path("cache"))
            .env("NABLA_MIRROR", "http://127.0.0.1:9/")
            .env("RUST_BACKTRACE", "1");
        c
    }

    fn run_in(&self, shell_prefix: Option<&str>, args: &[&str]) -> Ran {
        let out = self
            .command(shell_prefix, args)
            .output()
            .expect("run the nabla binary");
        Ran {
            out,
            what: format!("nabla {}", args.join(" ")),
        }
    }

    fn run(&self, args: &[&str]) -> Ran {
        self.run_in(None, args)
    }

    /// Fails with one line holding every needle, the folder unchanged.
    fn expect_error(&self, args: &[&str], needles: &[&str]) -> String {
        self.expect_error_in(None, args, needles)
    }

    fn expect_error_in(&self, prefix: Option<&str>, args: &[&str], needles: &[&str]) -> String {
        let before = snapshot(self.tmp.path());
        let ran = self.run_in(prefix, args);
        let msg = assert_one_line_error(&ran, needles);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            snapshot(self.tmp.path()).keys().collect::<Vec<_>>(),
            "{} added or removed files",
            ran.what
        );
        assert_eq!(
            before,
            snapshot(self.tmp.path()),
            "{} changed files",
            ran.what
        );
        msg
    }

    /// Under `ulimit -v`: a case that would allocate terabytes aborts instead.
    fn expect_error_bounded(&self, args: &[&str], needles: &[&str]) -> String {
        self.expect_error_in(
            Some(&format!("ulimit -v {MEMORY_LIMIT_KIB}")),
            args,
            needles,
        )
    }

    fn train(&self, args: &[&str]) {
        let mut all = vec!["train"];
        all.extend_from_slice(args);
        self.run(&all).assert_ok();
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
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

fn hidden_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// MNIST's four IDX files with `n_train` and `n_test` 28x28 images.
fn write_fake_mnist(dir: &Path, n_train: usize, n_test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let images = |n: usize, salt: usize| {
        let data = (0..n * 784)
            .map(|i| ((i * 37 + salt + i / 784 * 11) % 251) as u8)
            .collect();
        IdxArray::new(vec![n, 28, 28], data).unwrap()
    };
    let labels = |n: usize| IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect());
    write_idx(
        dir.join("train-images-idx3-ubyte"),
        &images(n_train, 1),
        false,
    )
    .unwrap();
    write_idx(
        dir.join("train-labels-idx1-ubyte"),
        &labels(n_train).unwrap(),
        false,
    )
    .unwrap();
    write_idx(
        dir.join("t10k-images-idx3-ubyte"),
        &images(n_test, 2),
        false,
    )
    .unwrap();
    write_idx(
        dir.join("t10k-labels-idx1-ubyte"),
        &labels(n_test).unwrap(),
        false,
    )
    .unwrap();
}

const MLP: [&str; 6] = ["--model", "mlp", "--dataset", "mnist", "--epochs", "1"];

fn train_mlp(case: &Case, out: &str, seed: &str) {
    let mut args = MLP.to_vec();
    args.extend(["--out", out, "--seed", seed]);
    case.train(&args);
}

// ---------------------------------------------------------------------------------------
// 1. A save is one unit

/// Trains an mlp into `M`, then a simple-convnet into the same `M` (the issue's case)
/// with `ulimit -f` so small that its weights cannot be written: with `trap '' XFSZ`
/// the write fails like a full disk (error), without it the kernel kills the process
/// mid-write (like a kill -9). Either way the mlp must still load, unchanged, with its
/// own run.json.
fn interrupted_save(prefix: &str) -> (Case, Ran) {
    let case = Case::new();
    train_mlp(&case, "M", "1");
    let before = snapshot(&case.path("M"));
    let mut args = vec!["train", "--model", "simple-convnet", "--dataset", "mnist"];
    args.extend(["--epochs", "1", "--out", "M", "--limit", "16"]);
    // The convnet's weights are 1.7 MB; model.json is about 2 KB.
    let ran = case.run_in(Some(prefix), &args);
    assert!(!ran.out.status.success(), "{}", ran.stdout());
    // `evaluate` (a loader) recovers the folder first: the old generation, whole.
    let ev = case.run(&["evaluate", "M", "--json"]);
    ev.assert_ok();
    // The failed run's per-epoch backup (for --resume) is kept in M/backup; the model
    // files beside it are the first model's, byte for byte.
    let mut after = snapshot(&case.path("M"));
    after.retain(|k, _| !k.starts_with("backup"));
    assert!(before == after, "the first model changed");
    assert!(hidden_files(&case.path("M")).is_empty());
    (case, ran)
}

#[test]
fn a_save_that_hits_a_full_disk_leaves_the_previous_model_loadable() {
    let (_case, ran) = interrupted_save("trap '' XFSZ; ulimit -f 500");
    // The per-epoch backup cannot be written either: a warning, then the save's error.
    let stderr = ran.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("warning: no backup for --resume"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("error: M/.nabla-pending.") && lines[1].contains("File too large"),
        "{stderr}"
    );
    assert_eq!(ran.out.status.code(), Some(1));
}

#[test]
fn a_save_killed_mid_write_leaves_the_previous_model_loadable() {
    // The kill comes while the first epoch's backup (a model directory written the
    // same way) is being written; `formats::model_dir`'s unit test kills the save at
    // each of its steps.
    let (case, ran) = interrupted_save("ulimit -f 500");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(ran.out.status.signal(), Some(25), "killed by SIGXFSZ");
    // The next save replaces it whole and leaves nothing behind.
    train_mlp(&case, "M", "3");
    assert!(hidden_files(&case.path("M")).is_empty());
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.path("M/run.json")).unwrap()).unwrap();
    assert_eq!(run["seed"], 3);
}

#[test]
fn stale_temporary_files_of_a_killed_save_are_removed_by_the_next_load() {
    let case = Case::new();
    train_mlp(&case, "M", "1");
    for leftover in [
        ".weights.safetensors.Xy12Ab.tmp",
        ".nabla-pending.model.json",
    ] {
        std::fs::write(case.path("M").join(leftover), b"partial").unwrap();
    }
    case.run(&["evaluate", "M"]).assert_ok();
    assert!(hidden_files(&case.path("M")).is_empty());
}

// ---------------------------------------------------------------------------------------
// 2. Sizes from configs are bounded (under a memory limit)

fn dense_net(units: &str) -> String {
    format!(
        r#"{{"input_shape": [1, 28, 28], "layers": [
            {{"class_name": "Flatten", "config": {{}}}},
            {{"class_name": "Dense", "config": {{"units": {units}, "activation": "softmax"}}}}]}}"#
    )
}

fn conv_net(conv: &str) -> String {
    format!(
        r#"{{"input_shape": [1, 28, 28], "layers": [
            {{"class_name": "Conv2D", "config": {conv}}},
            {{"class_name": "Flatten", "config": {{}}}},
            {{"class_name": "Dense", "config": {{"units": 10}}}}]}}"#
    )
}

#[test]
fn a_dense_of_a_trillion_units_is_refused_everywhere() {
    let case = Case::new();
    case.write("huge.json", &dense_net("1000000000000"));
    let needles = ["layer 'dense' (Dense): units = 1000000000000 is too large"];
    case.expect_error_bounded(&["summary", "huge.json"], &needles);
    let mut train = vec!["train", "--model", "huge.json", "--out", "OUT"];
    train.extend(["--dataset", "mnist"]);
    case.expect_error_bounded(&train, &needles);
    // A saved model whose model.json was edited to the same size.
    train_mlp(&case, "M", "1");
    let path = case.path("M/model.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"units\": 100", "\"units\": 1000000000000", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    case.expect_error_bounded(
        &["evaluate", "M"],
        &["M/model.json", "units = 1000000000000"],
    );
    std::fs::write(case.path("x.png"), b"not read").unwrap();
    case.expect_error_bounded(&["predict", "M", "x.png"], &["units = 1000000000000"]);
}

#[test]
fn weights_larger_than_the_memory_budget_are_refused_before_allocating() {
    // 784 x 1,000,000 f32 = 3.1 GB of weights, each size within bounds on its own.
    let case = Case::new();
    case.write("big.json", &dense_net("1000000"));
    let mut cmd_args = vec!["summary", "big.json"];
    let prefix = format!("export NABLA_MEMORY_LIMIT=1000000000; ulimit -v {MEMORY_LIMIT_KIB}");
    case.expect_error_in(
        Some(&prefix),
        &cmd_args,
        &[
            "layer 'dense' (Dense): its weights [784, 1000000] needs 3.1 GB",
            "memory budget of 1.0 GB",
        ],
    );
    cmd_args[1] = "mlp";
    case.run_in(Some(&prefix), &cmd_args).assert_ok();
}

#[test]
fn huge_filters_paddings_dilations_and_classes_are_refused() {
    let case = Case::new();
    case.write(
        "filters.json",
        &conv_net(r#"{"filters": 1000000000000, "kernel_size": [3, 3]}"#),
    );
    case.expect_error_bounded(
        &["summary", "filters.json"],
        &["layer 'conv2d' (Conv2D): filters = 1000000000000 is too large"],
    );
    case.write(
        "dilation.json",
        &conv_net(r#"{"filters": 4, "kernel_size": [3, 3], "dilation_rate": [4294967296, 4294967296], "padding": "same"}"#),
    );
    case.expect_error_bounded(
        &["summary", "dilation.json"],
        &["layer 'conv2d' (Conv2D): dilation_rate = 4294967296 is too large"],
    );
    case.write(
        "padding.json",
        r#"{"input_shape": [1, 28, 28], "layers": [
            {"class_name": "ZeroPadding2D", "config": {"padding": 9223372036854775807}}]}"#,
    );
    case.expect_error_bounded(
        &["summary", "padding.json"],
        &["layer 'zero_padding2d' (ZeroPadding2D): padding = 9223372036854775807 is too large"],
    );
    case.expect_error_bounded(
        &["summary", "resnet20", "--classes", "1000000000000"],
        &["(Dense): units = 1000000000000 is too large"],
    );
    case.run_in(
        Some(&format!("ulimit -v {MEMORY_LIMIT_KIB}")),
        &["summary", "resnet20", "--classes", "1000"],
    )
    .assert_ok();
}

// ---------------------------------------------------------------------------------------
// 3. Images that claim billions of pixels

/// A PNG that is only a header claiming `w` x `h` grey pixels (and an empty IDAT).
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(&body);
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(&body);
        c.extend_from_slice(&crc.sum().to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[]));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn an_image_claiming_300_million_pixels_is_refused_naming_the_file() {
    let case = Case::new();
    train_mlp(&case, "M", "1");
    std::fs::write(case.path("wide.png"), png_header_only(300_000_000, 1)).unwrap();
    std::fs::write(case.path("square.png"), png_header_only(15_000, 15_000)).unwrap();
    case.expect_error_bounded(
        &["predict", "M", "wide.png"],
        &[
            "wide.png",
            "300000000x1 pixels",
            "at most 20000 pixels on a side",
        ],
    );
    case.expect_error_bounded(
        &["predict", "M", "square.png"],
        &["square.png", "15000x15000"],
    );
}

// ---------------------------------------------------------------------------------------
// 4. Nonsense option values

fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["train"];
    v.extend(MLP);
    v.extend(["--out", "OUT"]);
    v.extend_from_slice(extra);
    v
}

#[test]
fn nonsense_options_are_refused_before_training() {
    let case = Case::new();
    for (extra, needles) in [
        (&["--lr=-1"][..], &["--lr must be a number > 0, got -1"][..]),
        (&["--lr", "nan"], &["--lr must be a number > 0"]),
        (
            &["--schedule", "step:1:-1"],
            &["step:1:-1", "FACTOR must be in (0, 1]"],
        ),
        (
            &["--schedule", "exp:-5"],
            &["exp:-5", "RATE must be in (0, 1]"],
        ),
        (
            &["--schedule", "cosine:0"],
            &["cosine:0", "EPOCHS must be at least 1"],
        ),
        (
            &["--schedule", "step:0:0.5"],
            &["step:0:0.5", "EVERY must be at least 1"],
        ),
        (
            &["--validation-split=-0.1"],
            &["--validation-split must be in [0, 1), got -0.1"],
        ),
        (
            &["--validation-split", "nan"],
            &["--validation-split must be in [0, 1), got NaN"],
        ),
        (
            &["--augment", "crop=100000"],
            &["--augment", "crop=100000", "at most 28"],
        ),
        (
            &["--augment", "brightness=100"],
            &["brightness=100", "in [0, 1]"],
        ),
        (&["--batch-size", "0"], &["--batch-size must be at least 1"]),
    ] {
        case.expect_error(&train_args(extra), needles);
    }
    for n in ["0", "100000"] {
        case.expect_error(
            &["--threads", n, "summary", "mlp"],
            &["--threads must be between 1 and", &format!("got {n}")],
        );
    }
}

#[test]
fn a_dropout_of_2_or_an_adam_epsilon_of_minus_1_in_a_config_is_refused() {
    let case = Case::new();
    case.write(
        "drop.json",
        r#"{"input_shape": [1, 28, 28], "layers": [
            {"class_name": "Flatten", "config": {}},
            {"class_name": "Dropout", "config": {"rate": 2.0}},
            {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}"#,
    );
    case.expect_error(
        &["summary", "drop.json"],
        &["layer 'dropout' (Dropout): rate must be in [0, 1), got 2"],
    );
    train_mlp(&case, "M", "1");
    let path = case.path("M/model.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"epsilon\": 1e-7", "\"epsilon\": -1.0", 1);
    assert_ne!(edited, text, "{text}");
    std::fs::write(&path, edited).unwrap();
    case.expect_error(&["evaluate", "M"], &["model.json", "epsilon is -1"]);
}

#[test]
fn an_empty_test_set_is_an_error_not_a_loss_of_zero() {
    let case = Case::new();
    write_fake_mnist(&case.path("data/mnist"), 64, 0);
    case.expect_error(&train_args(&[]), &["data set 'mnist' has no test samples"]);
}

// ---------------------------------------------------------------------------------------
// 5. Problems found before the first epoch

#[test]
fn checkpoint_or_early_stopping_without_validation_fail_before_training() {
    let case = Case::new();
    for flag in [&["--checkpoint"][..], &["--early-stopping", "2"]] {
        let msg = case.expect_error(&train_args(flag), &["needs a validation split"]);
        assert!(msg.contains(flag[0]), "{msg}");
    }
    // With a split, or watching the training loss, they run.
    case.train(&train_args(&["--checkpoint", "--validation-split", "0.25"])[1..]);
    assert!(case.path("OUT/checkpoint/weights.safetensors").is_file());
}

#[test]
fn an_out_whose_files_cannot_be_replaced_fails_before_training() {
    let case = Case::new();
    std::fs::create_dir_all(case.path("OUT/weights.safetensors/inside")).unwrap();
    let before = snapshot(case.tmp.path());
    let ran = case.run(&train_args(&[]));
    assert_one_line_error(&ran, &["OUT/weights.safetensors", "not a file"]);
    assert!(!ran.stdout().contains("Epoch"), "{}", ran.stdout());
    assert_eq!(before, snapshot(case.tmp.path()));
}

#[test]
fn an_unwritable_out_fails_before_training() {
    let case = Case::new();
    std::fs::write(case.path("file"), b"not a folder").unwrap();
    let ran_args = {
        let mut v = vec!["train"];
        v.extend(MLP);
        v.extend(["--out", "file/OUT"]);
        v
    };
    let before = snapshot(case.tmp.path());
    let ran = case.run(&ran_args);
    assert_one_line_error(&ran, &["file/OUT"]);
    assert!(!ran.stdout().contains("Epoch"), "{}", ran.stdout());
    assert_eq!(before, snapshot(case.tmp.path()));
}

// ---------------------------------------------------------------------------------------
// 6. Folders named like built-ins

#[test]
fn a_folder_named_like_a_builtin_data_set_or_model_does_not_replace_it() {
    let case = Case::new();
    // ./mnist: an image folder with two classes of 28x28 grey images.
    for (class, v) in [("a", 30u8), ("b", 220)] {
        let dir = case.path(&format!("mnist/{class}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..5 {
            image::GrayImage::from_pixel(28, 28, image::Luma([v + i]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }
    let ran = case.run(&train_args(&["--json"]));
    ran.assert_ok();
    assert!(
        ran.stderr().contains("using the built-in data set 'mnist'"),
        "{}",
        ran.stderr()
    );
    let run: serde_json::Value = serde_json::from_str(ran.stdout().trim()).unwrap();
    assert_eq!(run["dataset"], "mnist");
    let cfg = std::fs::read_to_string(case.path("OUT/model.json")).unwrap();
    assert!(cfg.contains("\"0\""), "MNIST's classes: {cfg}");
    // ./mnist names the folder.
    let mut args = vec![
        "train",
        "--model",
        "mlp",
        "--dataset",
        "./mnist",
        "--out",
        "F",
    ];
    args.push("--json");
    case.run(&args).assert_ok();
    let cfg = std::fs::read_to_string(case.path("F/model.json")).unwrap();
    assert!(cfg.contains("\"a\"") && cfg.contains("\"b\""), "{cfg}");
    // --model mlp after --out mlp: the built-in mlp (fresh weights), with a note.
    train_mlp(&case, "mlp", "1");
    let mut args = vec!["train"];
    args.extend(MLP);
    args.extend(["--out", "OUT2", "--seed", "1"]);
    let ran = case.run(&args);
    ran.assert_ok();
    assert!(
        ran.stderr().contains("using the built-in model 'mlp'"),
        "{}",
        ran.stderr()
    );
    assert_eq!(
        std::fs::read(case.path("OUT2/weights.safetensors")).unwrap(),
        std::fs::read(case.path("mlp/weights.safetensors")).unwrap(),
        "same seed, same built-in model: same weights"
    );
}

// ---------------------------------------------------------------------------------------
// 7. A misdirected NABLA_DATA

#[test]
fn a_misdirected_nabla_data_says_what_was_looked_at() {
    let case = Case::new();
    std::fs::write(case.path("afile"), b"x").unwrap();
    std::fs::remove_file(case.path("data/mnist/t10k-labels-idx1-ubyte")).unwrap();
    let train = train_args(&[]);
    for (data, needles) in [
        (
            "afile",
            &["NABLA_DATA=", "afile: is a file, not a folder"][..],
        ),
        ("missing", &["missing: no such folder"]),
        ("cache", &["has no folder mnist/"]),
        ("data", &["lacks t10k-labels-idx1-ubyte[.gz]"]),
    ] {
        let before = snapshot(case.tmp.path());
        let ran = {
            let mut c = case.command(None, &train);
            c.env("NABLA_DATA", case.path(data));
            Ran {
                out: c.output().unwrap(),
                what: format!("NABLA_DATA={data} nabla train"),
            }
        };
        let msg = assert_one_line_error(&ran, needles);
        assert!(msg.contains("every mirror failed"), "{msg}");
        // No empty cache folder after the failed download.
        assert_eq!(before, snapshot(case.tmp.path()), "{data}");
        assert!(!case.path("cache/mnist").exists());
    }
}

// ---------------------------------------------------------------------------------------
// 8. evaluate checks the classes

#[test]
fn evaluate_refuses_a_data_set_with_other_classes() {
    let case = Case::new();
    write_fake_mnist(&case.path("data/fashion-mnist"), 64, 16);
    let mut args = vec!["--model", "mlp", "--dataset", "fashion-mnist", "--out", "F"];
    args.extend(["--epochs", "1"]);
    case.train(&args);
    case.expect_error(
        &["evaluate", "F", "--dataset", "mnist"],
        &[
            "model 'mlp' was trained on the classes [T-shirt/top",
            "data set 'mnist' has the classes [0, 1",
        ],
    );
    case.run(&["evaluate", "F"]).assert_ok();
}

// ---------------------------------------------------------------------------------------
// Ensembles

#[test]
fn an_ensemble_reports_each_model_and_the_average_of_their_probabilities() {
    let case = Case::new();
    for (dir, seed) in [("M1", "1"), ("M2", "2"), ("M3", "3")] {
        train_mlp(&case, dir, seed);
    }
    let ran = case.run(&["evaluate", "M1", "M2", "M3", "--json"]);
    ran.assert_ok();
    let v: serde_json::Value = serde_json::from_str(ran.stdout().trim()).unwrap();
    // Recomputed here from the saved models.
    let ds = nabla::data::datasets::load_data_from(case.path("data/mnist")).unwrap();
    let labels = nabla::training::metrics::label_classes(&ds.y_test);
    let mut sum = vec![0.0f64; labels.len() * 10];
    for (i, dir) in ["M1", "M2", "M3"].iter().enumerate() {
        let mut m = nabla::Sequential::load(&case.path(dir)).unwrap();
        let (p, k) =
            nabla::report::predictions::predict_probabilities(&mut m, &ds.x_test, 500).unwrap();
        assert_eq!(k, 10);
        let acc = p
            .chunks_exact(10)
            .zip(&labels)
            .filter(|(r, &l)| argmax(r) == l)
            .count() as f64
            / labels.len() as f64;
        assert_eq!(v["models"][i]["accuracy"].as_f64().unwrap(), acc, "{v}");
        // The single-model evaluate agrees.
        let one = case.run(&["evaluate", dir, "--json"]);
        let one: serde_json::Value = serde_json::from_str(one.stdout().trim()).unwrap();
        assert!(
            (one["accuracy"].as_f64().unwrap() - acc).abs() < 1e-6,
            "{one}"
        );
        for (s, x) in sum.iter_mut().zip(&p) {
            *s += *x as f64;
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / 3.0) as f32).collect();
    let ens = mean
        .chunks_exact(10)
        .zip(&labels)
        .filter(|(r, &l)| argmax(r) == l)
        .count() as f64
        / labels.len() as f64;
    assert_eq!(v["ensemble_accuracy"].as_f64().unwrap(), ens, "{v}");
    let text = case.run(&["evaluate", "M1", "M2", "M3"]);
    text.assert_ok();
    assert_eq!(text.stdout().lines().count(), 4, "{}", text.stdout());
    assert!(text.stdout().contains("average of 3 models' probabilities"));
}

#[test]
fn an_ensemble_of_models_with_other_shapes_or_data_is_refused() {
    let case = Case::new();
    train_mlp(&case, "M1", "1");
    case.train(&["--model", "xor-mlp", "--epochs", "1", "--out", "X"]);
    case.expect_error(
        &["evaluate", "M1", "X"],
        &["M1 was trained on 'mnist' but X on 'xor'"],
    );
    case.expect_error(
        &["evaluate", "M1", "X", "--dataset", "mnist"],
        &["an ensemble needs models of one input shape"],
    );
    case.expect_error(
        &["evaluate", "M1", "M1", "--confusion"],
        &["--confusion and --dtype take one model"],
    );
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

// ---------------------------------------------------------------------------------------
// Training on from a saved model

#[test]
fn a_saved_model_trains_on_with_its_optimizer_state_and_batch_size() {
    let case = Case::new();
    let mut args = MLP.to_vec();
    args.extend(["--out", "M", "--batch-size", "16"]);
    case.train(&args);
    case.train(&[
        "--model",
        "M",
        "--dataset",
        "mnist",
        "--epochs",
        "1",
        "--out",
        "M2",
    ]);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.path("M2/run.json")).unwrap()).unwrap();
    assert_eq!(run["batch_size"], 16, "{run}");
    let iterations = |dir: &str| {
        let t = nabla::formats::safetensors_io::load(&case.path(dir).join("optimizer.safetensors"))
            .unwrap();
        let (_, it) = t.iter().find(|(n, _)| n == "optimizer/iterations").unwrap();
        it.to_f32_vec()[0]
    };
    // 64 samples in batches of 16: 4 steps each run, Adam's step count carried on.
    assert_eq!(iterations("M"), 4.0);
    assert_eq!(iterations("M2"), 8.0);
}
