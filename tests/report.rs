//! `nabla train --report --tensorboard` and `nabla report`, end to end through the real
//! binary on the real data sets (`$NABLA_DATA`, else `../shared/data`): the files exist
//! and decode, the page has every section with its pictures inside it, the report's
//! numbers agree with `nabla evaluate --confusion` and add up, Fashion-MNIST reports
//! name the classes, and the TensorBoard files hold one well-framed event per epoch.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nabla");

mod common;

/// The folder holding the real MNIST and Fashion-MNIST; a missing one fails the test
/// naming every place it looked.
fn data_dir() -> PathBuf {
    let mnist = common::real_data("mnist");
    let fashion = common::real_data("fashion-mnist");
    assert_eq!(
        mnist, fashion,
        "MNIST and Fashion-MNIST must sit in one data folder"
    );
    mnist
}

/// Runs `nabla args...` offline (no cache, no mirror); returns stdout, failing loudly.
fn nabla(args: &[&str], cache: &Path) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("NABLA_DATA", data_dir())
        .env("NABLA_CACHE", cache)
        .env("NABLA_MIRROR", "http://127.0.0.1:9/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "nabla {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(v: &Value) -> Vec<Vec<u64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_u64().unwrap())
                .collect()
        })
        .collect()
}

const SECTIONS: [&str; 8] = [
    "overview",
    "curves",
    "confusion",
    "per-class",
    "misclassified",
    "filters",
    "feature-maps",
    "summary",
];

/// The checks every report must pass; returns report.json.
fn check_report(dir: &Path, pictures: &[&str], grid_size: usize) -> Value {
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for s in SECTIONS {
        assert!(
            html.contains(&format!("<section id=\"{s}\">")),
            "section {s} missing"
        );
    }
    assert!(
        !html.contains("https://"),
        "the page must not fetch anything"
    );
    let r = json(&dir.join("report.json"));
    let names: Vec<&str> = r["pictures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(names, pictures);
    assert_eq!(
        html.matches("src=\"data:image/png;base64,").count(),
        pictures.len(),
        "every picture embedded once"
    );
    for p in pictures {
        let png = image::open(dir.join(format!("{p}.png"))).unwrap();
        assert!(
            png.width() > 300 && png.height() > 150,
            "{p}.png is {png:?}"
        );
        let svg = std::fs::read_to_string(dir.join(format!("{p}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{p}.svg"
        );
    }

    // The numbers add up.
    let cm = matrix(&r["confusion_matrix"]);
    let k = cm.len();
    let total: u64 = cm.iter().flatten().sum();
    let diagonal: u64 = (0..k).map(|i| cm[i][i]).sum();
    let t = &r["test"];
    assert_eq!(t["samples"], total);
    assert_eq!(t["correct"], diagonal);
    assert_eq!(
        t["misclassified"],
        total - diagonal,
        "misclassified = off-diagonal sum"
    );
    let per_class = r["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), k);
    let sum = |key: &str| {
        per_class
            .iter()
            .map(|c| c[key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("support"), total);
    assert_eq!(sum("predicted"), total);
    assert_eq!(sum("correct"), diagonal);
    for c in per_class {
        let i = c["class"].as_u64().unwrap() as usize;
        assert_eq!(c["support"], cm[i].iter().sum::<u64>());
        assert_eq!(c["predicted"], cm.iter().map(|row| row[i]).sum::<u64>());
        let (p, rc, f1) = (
            c["precision"].as_f64().unwrap(),
            c["recall"].as_f64().unwrap(),
            c["f1"].as_f64().unwrap(),
        );
        assert!((0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&rc));
        if p + rc > 0.0 {
            assert!((f1 - 2.0 * p * rc / (p + rc)).abs() < 1e-9);
        }
    }

    // The grid: the first misclassified samples, each an off-diagonal count.
    let grid = r["misclassified"].as_array().unwrap();
    assert_eq!(grid.len() as u64, (grid_size as u64).min(total - diagonal));
    let mut last = None;
    for m in grid {
        let (l, p) = (
            m["label"].as_u64().unwrap() as usize,
            m["prediction"].as_u64().unwrap() as usize,
        );
        assert_ne!(l, p);
        assert!(cm[l][p] > 0);
        let index = m["index"].as_u64().unwrap();
        assert!(last < Some(index), "in test-set order");
        last = Some(index);
        let row = format!(
            "<tr><td>{index}</td><td class=\"name\">{}</td><td class=\"name\">{}</td>",
            m["label_name"].as_str().unwrap(),
            m["prediction_name"].as_str().unwrap()
        );
        assert!(html.contains(&row), "{row} in the page's table");
    }
    r
}

fn event_records(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let (mut at, mut n) = (0, 0);
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(crc, nabla::report::tensorboard::masked_crc32c(len_bytes));
        let payload = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(crc, nabla::report::tensorboard::masked_crc32c(payload));
        at += 16 + len;
        n += 1;
    }
    assert_eq!(at, bytes.len());
    n
}

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[test]
fn keras_cnn_report_agrees_with_evaluate() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let tb = tmp.path().join("tb");
    let (run_s, tb_s) = (run.to_str().unwrap(), tb.to_str().unwrap());
    let out = nabla(
        &[
            "train",
            "--model",
            "keras-cnn",
            "--dataset",
            "mnist",
            "--limit",
            "2000",
            "--epochs",
            "2",
            "--validation-split",
            "0.1",
            "--seed",
            "1",
            "--report",
            "--tensorboard",
            tb_s,
            "--out",
            run_s,
        ],
        tmp.path(),
    );
    assert!(out.contains("Wrote the report to"), "{out}");
    let all = [
        "loss_curves",
        "accuracy_curves",
        "confusion_matrix",
        "per_class",
        "misclassified",
        "filters",
        "feature_maps",
    ];
    let r = check_report(&run.join("report"), &all, 25);
    let eval: Value = serde_json::from_str(&nabla(
        &["evaluate", run_s, "--confusion", "--json"],
        tmp.path(),
    ))
    .unwrap();
    assert_eq!(r["confusion_matrix"], eval["confusion_matrix"]);
    assert_eq!(r["test"]["misclassified"], eval["misclassified"]);
    let acc = r["test"]["accuracy"].as_f64().unwrap();
    assert!((acc - eval["accuracy"].as_f64().unwrap()).abs() < 1e-6);
    assert_eq!(r["first_conv_layer"], "conv2d");
    assert_eq!(r["feature_maps"]["layers"].as_array().unwrap().len(), 3);
    assert_eq!(r["training"]["epochs"], 2);

    // `nabla report` with other options, into another folder.
    let other = tmp.path().join("again");
    nabla(
        &[
            "report",
            run_s,
            "--misclassified",
            "7",
            "--image-index",
            "3",
            "--out",
            other.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let r2 = check_report(&other, &all, 7);
    assert_eq!(r2["confusion_matrix"], r["confusion_matrix"]);
    assert_eq!(r2["feature_maps"]["image_index"], 3);

    // TensorBoard: one file per run, the version event plus one event per epoch.
    assert_eq!(event_records(&only_file(&tb.join("train"))), 3);
    assert_eq!(event_records(&only_file(&tb.join("validation"))), 3);
    let name = only_file(&tb.join("train"));
    let name = name.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("events.out.tfevents.") && name.ends_with(".nabla"));
}

#[test]
fn fashion_mnist_report_names_the_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let run_s = run.to_str().unwrap();
    nabla(
        &[
            "train",
            "--model",
            "mlp",
            "--dataset",
            "fashion-mnist",
            "--limit",
            "1000",
            "--epochs",
            "1",
            "--seed",
            "1",
            "--out",
            run_s,
            "--json",
        ],
        tmp.path(),
    );
    nabla(&["report", run_s], tmp.path());
    let dir = run.join("report");
    // An MLP has no conv layer: no filters or feature maps, and the page says so.
    let r = check_report(
        &dir,
        &[
            "loss_curves",
            "accuracy_curves",
            "confusion_matrix",
            "per_class",
            "misclassified",
        ],
        25,
    );
    let names: Vec<&str> = r["class_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names[0], "T-shirt/top");
    assert_eq!(names[9], "Ankle boot");
    let grid = r["misclassified"].as_array().unwrap();
    assert!(!grid.is_empty());
    for m in grid {
        let label = m["label"].as_u64().unwrap() as usize;
        assert_eq!(m["label_name"], names[label], "names, not indices");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("The model has no Conv2D layer."));
    for n in &names {
        assert!(html.contains(n), "{n} on the page");
    }
    for p in ["confusion_matrix", "per_class"] {
        let svg = std::fs::read_to_string(dir.join(format!("{p}.svg"))).unwrap();
        assert!(
            svg.contains("T-shirt/top") && svg.contains("Ankle boot"),
            "{p}.svg"
        );
    }
    let svg = std::fs::read_to_string(dir.join("misclassified.svg")).unwrap();
    assert!(svg.contains(grid[0]["label_name"].as_str().unwrap()));

    // The library call behind `nabla report` writes the same numbers.
    std::env::set_var("NABLA_DATA", data_dir());
    let api = tmp.path().join("api");
    let opts = nabla::report::ReportOptions::default();
    let page = nabla::report::write_report(&run, None, Some(&api), &opts).unwrap();
    assert_eq!(page, api.join("report.html"));
    let again = json(&api.join("report.json"));
    assert_eq!(again["confusion_matrix"], r["confusion_matrix"]);
    assert_eq!(again["per_class"], r["per_class"]);
}

#[test]
fn report_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["report", tmp.path().join("nope").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such directory"), "{err}");
}
