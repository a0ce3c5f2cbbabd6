//! `nabla train --resume OUT` (Must-show 3): a run killed at an epoch boundary and
//! resumed ends bit-identical to an uninterrupted one (weights, optimizer state, history),
//! and one killed with SIGKILL in the middle of an epoch repeats only that epoch.
//!
//! The run exercises every piece of state: shuffling, dropout masks, augmentation, a
//! validation split, a learning-rate schedule, early stopping and ReduceLROnPlateau
//! (their patience counters). Data: a fake MNIST of 1,500 images, so a run takes a
//! second or two.

use nabla::data::idx::{write_idx, IdxArray};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nabla");
const EPOCHS: &str = "4";

fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data/mnist");
    std::fs::create_dir_all(&dir).unwrap();
    let images = |n: usize, salt: usize| {
        let data = (0..n * 784)
            .map(|i| ((i * 37 + salt + (i / 784) * 13) % 251) as u8)
            .collect();
        IdxArray::new(vec![n, 28, 28], data).unwrap()
    };
    let labels = |n: usize| IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect());
    write_idx(dir.join("train-images-idx3-ubyte"), &images(1500, 1), false).unwrap();
    write_idx(
        dir.join("train-labels-idx1-ubyte"),
        &labels(1500).unwrap(),
        false,
    )
    .unwrap();
    write_idx(dir.join("t10k-images-idx3-ubyte"), &images(100, 2), false).unwrap();
    write_idx(
        dir.join("t10k-labels-idx1-ubyte"),
        &labels(100).unwrap(),
        false,
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("net.json"),
        r#"{"input_shape": [1, 28, 28], "layers": [
            {"class_name": "Flatten", "config": {}},
            {"class_name": "Dense", "config": {"units": 64, "activation": "relu"}},
            {"class_name": "Dropout", "config": {"rate": 0.3}},
            {"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}]}"#,
    )
    .unwrap();
    tmp
}

fn command(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(root)
        .env("NABLA_DATA", root.join("data"))
        .env("NABLA_CACHE", root.join("cache"))
        .env("NABLA_MIRROR", "http://127.0.0.1:9/");
    c
}

fn train_args(out: &str) -> Vec<String> {
    let args = [
        "train",
        "--model",
        "net.json",
        "--dataset",
        "mnist",
        "--epochs",
        EPOCHS,
        "--batch-size",
        "50",
        "--seed",
        "7",
        "--validation-split",
        "0.2",
        "--schedule",
        "step:1:0.7",
        "--augment",
        "flip,shift=0.1",
        "--early-stopping",
        "10",
        "--reduce-lr-on-plateau",
        "1",
        "--out",
        out,
    ];
    args.iter().map(|s| s.to_string()).collect()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(root: &Path, args: &[String], what: &str) -> Output {
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = command(root, &refs).output().unwrap();
    ok(&out, what);
    out
}

/// The history without its timings (which differ from run to run).
fn learning_history(dir: &Path) -> serde_json::Value {
    let mut h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("history.json")).unwrap()).unwrap();
    let map = h["history"].as_object_mut().unwrap();
    map.retain(|k, _| ["loss", "accuracy", "val_loss", "val_accuracy", "lr"].contains(&k.as_str()));
    assert_eq!(map.len(), 5, "{map:?}");
    h
}

fn assert_same_run(a: &Path, b: &Path) {
    for f in ["weights.safetensors", "optimizer.safetensors", "model.json"] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    assert_eq!(learning_history(a), learning_history(b));
    assert!(
        !b.join("backup").exists(),
        "the backup is removed at the end"
    );
}

/// The epoch a resume of `out` starts from, read as nabla's loader reads the backup: a
/// kill after a save's commit point but before its renames leaves the new
/// `fit_state.json` pending beside the journal, and the loader installs it first
/// (`formats::file_set::recover`). Reading only the installed file raced with that.
fn next_epoch_saved(out: &Path) -> Option<u64> {
    let backup = out.join("backup");
    let pending = backup.join(".nabla-pending.fit_state.json");
    let journal = std::fs::read_to_string(backup.join(nabla::formats::file_set::JOURNAL));
    let committed = journal.is_ok_and(|j| j.contains("\"fit_state.json\""));
    let file = if committed && pending.exists() {
        pending
    } else {
        backup.join("fit_state.json")
    };
    let text = std::fs::read(file).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v["next_epoch"].as_u64()
}

#[test]
fn a_run_killed_and_resumed_ends_as_an_uninterrupted_one() {
    let tmp = setup();
    let root = tmp.path();
    run(root, &train_args("A"), "the uninterrupted run");

    // Killed at the boundary after epoch 2 (the test hook aborts right after the backup).
    let killed = command(
        root,
        &train_args("B")
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    )
    .env("NABLA_TEST_ABORT_AFTER_EPOCH", "2")
    .output()
    .unwrap();
    assert!(!killed.status.success());
    assert!(
        !root.join("B/weights.safetensors").exists(),
        "no final model yet"
    );
    assert_eq!(next_epoch_saved(&root.join("B")), Some(2));
    let resumed = run(
        root,
        &["train".into(), "--resume".into(), "B".into()],
        "the resumed run",
    );
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        !stdout.contains("Epoch 2/4 -") && stdout.contains("Epoch 3/4 -"),
        "{stdout}"
    );
    assert_same_run(&root.join("A"), &root.join("B"));

    // Killed with SIGKILL in the middle of a later epoch: it repeats only that epoch.
    let mut child = command(
        root,
        &train_args("C")
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let start = Instant::now();
    let saved = loop {
        if let Some(e) = next_epoch_saved(&root.join("C")) {
            break e;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before a backup"
        );
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(1));
    };
    std::thread::sleep(Duration::from_millis(20));
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(still_running, "the run ended before it could be killed");
    let saved = next_epoch_saved(&root.join("C")).unwrap().max(saved);
    assert!(saved < 4, "killed after the last epoch");
    let resumed = run(
        root,
        &["train".into(), "--resume".into(), "C".into()],
        "the run resumed after SIGKILL",
    );
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        stdout.contains(&format!("Epoch {}/4 -", saved + 1)),
        "{stdout}"
    );
    assert_same_run(&root.join("A"), &root.join("C"));
}

#[test]
fn resume_needs_a_run_started_by_nabla_train() {
    let tmp = setup();
    let out = command(tmp.path(), &["train", "--resume", "nothing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--resume nothing") && err.contains("train_command.json"),
        "{err}"
    );
}
