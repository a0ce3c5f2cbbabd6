//! The transfer recipe from the command line: `nabla train --init-from RUN_DIR` with
//! `--freeze-until LAYER` (feature extraction) or `--fine-tune-from LAYER --lr ...`
//! (fine-tuning), on small slices of the real data sets (a base on Fashion-MNIST,
//! transferred to MNIST), and its errors.

use std::path::Path;
use std::process::{Command, Output};

mod common;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["--threads", "2"])
        .args(args)
        .env("NABLA_DATA", common::real_data("mnist"))
        .output()
        .expect("run nabla")
}

/// A successful `nabla train ... --json`: its result object.
fn train(args: &[&str]) -> serde_json::Value {
    let out = run(&[&["train", "--json"], args].concat());
    assert!(
        out.status.success(),
        "nabla train {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A failing `nabla train`: its stderr.
fn fails(args: &[&str]) -> String {
    let out = run(&[&["train"], args].concat());
    assert!(!out.status.success(), "nabla train {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn weights(dir: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    nabla::formats::safetensors_io::load(&dir.join("weights.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.to_f32_vec()))
        .collect()
}

fn base(dir: &Path) {
    let out = dir.to_str().unwrap();
    train(&[
        "--model",
        "mlp-bn",
        "--dataset",
        "fashion-mnist",
        "--limit",
        "600",
        "--out",
        out,
    ]);
}

fn str_list(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

#[test]
fn feature_extraction_keeps_the_base_and_trains_the_top() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    base(&base_dir);
    let out = tmp.path().join("fe");
    let r = train(&[
        "--model",
        "mlp-bn",
        "--dataset",
        "mnist",
        "--limit",
        "600",
        "--epochs",
        "2",
        "--init-from",
        base_dir.to_str().unwrap(),
        "--freeze-until",
        "dropout_1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = &r["transfer"];
    assert_eq!(str_list(&t["loaded"]).len(), 18, "{t}");
    assert_eq!(t["trainable_params"], 650, "{t}");
    assert_eq!(t["non_trainable_params"], 129_792, "{t}");
    let (before, after) = (weights(&base_dir), weights(&out));
    for (name, w) in &after {
        // Everything but the top is the base's, moving statistics included (frozen
        // BatchNormalization runs in inference mode).
        assert_eq!(name.starts_with("dense_4/"), w != &before[name], "{name}");
    }
    // The flags are saved: the run's model.json freezes the base.
    let json = std::fs::read_to_string(out.join("model.json")).unwrap();
    assert_eq!(json.matches("\"trainable\": false").count(), 9, "{json}");
}

#[test]
fn a_new_top_starts_fresh_and_fine_tuning_trains_from_a_layer_on() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    base(&base_dir);
    // The base's first layers under the same names, then a new top: `dense_1` with
    // another shape (skipped), `top` under a new name (missing from the run).
    let cfg = serde_json::json!({
        "name": "transfer",
        "input_shape": [1, 28, 28],
        "layers": [
            {"class_name": "Flatten", "config": {"name": "flatten"}},
            {"class_name": "Dense", "config": {"name": "dense", "units": 128, "activation": "relu"}},
            {"class_name": "Dense", "config": {"name": "dense_1", "units": 32, "activation": "relu"}},
            {"class_name": "Dense", "config": {"name": "top", "units": 10, "activation": "softmax"}}
        ]
    });
    let cfg_path = tmp.path().join("transfer.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = tmp.path().join("ft");
    let r = train(&[
        "--model",
        cfg_path.to_str().unwrap(),
        "--dataset",
        "mnist",
        "--limit",
        "600",
        "--init-from",
        base_dir.to_str().unwrap(),
        "--fine-tune-from",
        "dense_1",
        "--lr",
        "0.0005",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = &r["transfer"];
    assert_eq!(
        str_list(&t["loaded"]),
        ["dense/kernel", "dense/bias"],
        "{t}"
    );
    let skipped: Vec<&str> = t["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["weight"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["dense_1/kernel", "dense_1/bias"], "{t}");
    assert_eq!(str_list(&t["missing"]), ["top/kernel", "top/bias"], "{t}");
    // dense frozen (100,480); dense_1 (128*32+32) and top (32*10+10) train.
    assert_eq!(t["non_trainable_params"], 100_480, "{t}");
    assert_eq!(t["trainable_params"], 4_128 + 330, "{t}");
    assert_eq!(
        weights(&out)["dense/kernel"],
        weights(&base_dir)["dense/kernel"]
    );

    // The printed report, without --json.
    let text = run(&[
        "train",
        "--model",
        cfg_path.to_str().unwrap(),
        "--dataset",
        "mnist",
        "--limit",
        "100",
        "--init-from",
        base_dir.to_str().unwrap(),
        "--freeze-until",
        "dense",
        "--out",
        tmp.path().join("printed").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("Loaded 2 weights from"), "{stdout}");
    assert!(
        stdout.contains(
            "skipped dense_1/kernel: the file has shape [128, 128], the model needs [128, 32]"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("missing top/kernel"), "{stdout}");
    assert!(
        stdout.contains("Trainable params: 4458, non-trainable params: 100480"),
        "{stdout}"
    );
}

#[test]
fn init_until_keeps_a_fresh_top_of_the_same_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    base(&base_dir);
    let (base_s, fresh, scratch) = (
        base_dir.to_str().unwrap(),
        tmp.path().join("fresh"),
        tmp.path().join("scratch"),
    );
    // mlp-bn to mlp-bn: every shape fits, so without --init-until the base's 10-class
    // head would load. Everything up to dropout_1 is frozen, so what is fresh there is
    // still its initialization after training.
    let common = [
        "--model",
        "mlp-bn",
        "--dataset",
        "mnist",
        "--limit",
        "200",
        "--seed",
        "7",
        "--freeze-until",
        "dropout_1",
    ];
    let r = train(
        &[
            &common[..],
            &["--init-from", base_s, "--init-until", "dense_1"],
            &["--out", fresh.to_str().unwrap()],
        ]
        .concat(),
    );
    let t = &r["transfer"];
    assert_eq!(
        str_list(&t["loaded"]),
        [
            "dense/kernel",
            "dense/bias",
            "dense_1/kernel",
            "dense_1/bias"
        ],
        "{t}"
    );
    assert_eq!(t["init_until"], "dense_1", "{t}");
    let new: Vec<&str> = str_list(&t["fresh"]);
    assert!(
        new.contains(&"dense_4/kernel") && new.contains(&"dense_2/kernel"),
        "{t}"
    );
    assert!(!new
        .iter()
        .any(|n| n.starts_with("dense/") || n.starts_with("dense_1/")));
    // The same seed without --init-from: the fresh layers start from the same values.
    train(&[&common[..], &["--out", scratch.to_str().unwrap()]].concat());
    let (b, f, s) = (weights(&base_dir), weights(&fresh), weights(&scratch));
    for (name, w) in &f {
        let layer = name.split('/').next().unwrap();
        if layer == "dense" || layer == "dense_1" {
            assert_eq!(w, &b[name], "{name} is the base's");
        } else if layer != "dense_4" {
            assert_eq!(w, &s[name], "{name} is fresh");
            assert_ne!(w, &b[name], "{name} is not the base's");
        }
    }
    let e = fails(
        &[
            &common[..],
            &["--init-from", base_s, "--init-until", "nope"],
        ]
        .concat(),
    );
    assert!(
        e.contains("--init-until: model 'mlp-bn' has no layer 'nope'"),
        "{e}"
    );
    let e = fails(&[&common[..], &["--init-until", "dense"]].concat());
    assert!(e.contains("--init-from"), "{e}");
}

#[test]
fn transfer_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let base_dir = tmp.path().join("base");
    base(&base_dir);
    let out = tmp.path().join("x");
    let out_s = out.to_str().unwrap();
    let with = |extra: &[&str]| {
        let head = ["--model", "mlp-bn", "--dataset", "mnist", "--limit", "100"];
        fails(&[&head[..], &["--out", out_s], extra].concat())
    };

    let e = with(&["--freeze-until", "nope"]);
    assert!(
        e.contains(
            "--freeze-until: model 'mlp-bn' has no layer 'nope'; its layers: flatten, dense,"
        ),
        "{e}"
    );
    let e = with(&["--fine-tune-from", "dense_9"]);
    assert!(
        e.contains("--fine-tune-from") && e.contains("'dense_9'"),
        "{e}"
    );
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = with(&["--init-from", empty.to_str().unwrap()]);
    assert!(e.contains("holds no weights.safetensors"), "{e}");
    let e = with(&["--init-from", "no/such/run"]);
    assert!(e.contains("--init-from no/such/run: no such folder"), "{e}");
    let e = with(&["--freeze-until", "dense", "--fine-tune-from", "dense_2"]);
    assert!(e.contains("cannot be used with"), "{e}");
    // A run whose weights fit no layer of the model: nothing would transfer.
    let text_cfg = serde_json::json!({
        "name": "other",
        "input_shape": [1, 28, 28],
        "layers": [
            {"class_name": "Flatten", "config": {"name": "f"}},
            {"class_name": "Dense", "config": {"name": "only", "units": 10, "activation": "softmax"}}
        ]
    });
    let cfg_path = tmp.path().join("other.json");
    std::fs::write(&cfg_path, text_cfg.to_string()).unwrap();
    let e = fails(&[
        "--model",
        cfg_path.to_str().unwrap(),
        "--dataset",
        "mnist",
        "--limit",
        "100",
        "--init-from",
        base_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(e.contains("nothing would be transferred"), "{e}");
    // No panic anywhere.
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn per_class_trains_on_n_images_of_each_class() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&[
        "train",
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--per-class",
        "5",
        "--seed",
        "3",
        "--out",
        tmp.path().join("p").to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("on mnist (50 samples)"), "{stdout}");
    let e = fails(&[
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--per-class",
        "100000",
    ]);
    assert!(e.contains("--per-class 100000: class 0 has only"), "{e}");
}
