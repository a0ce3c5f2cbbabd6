//! Text runs through the report and the benchmark: `train --report` of `text-bow` on a
//! small `label<TAB>text` file writes the report (files, classes, the misclassified
//! texts with their top 3, `predictions.tsv`), its per-class F1 agrees with a hand
//! computation from the per-text predictions (which `predict` confirms one by one),
//! and `nabla report DIR` writes the same figures again; `bench model text-lstm` runs
//! on debian-sections with a per-layer profile; the bench's text options are checked.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Output};

mod common;

fn nabla(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["--threads", "2"])
        .args(args)
        .env("NABLA_DATA", common::real_data("debian-sections"))
        .output()
        .expect("run nabla")
}

fn ok(args: &[&str]) -> Output {
    let out = nabla(args);
    assert!(
        out.status.success(),
        "nabla {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn fails(args: &[&str]) -> String {
    let out = nabla(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "nabla {args:?} succeeded: {err}");
    err
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).expect("json")
}

/// Three classes, 30 distinct texts each, sharing some words across classes, so one
/// short epoch leaves misclassified texts. Returns text -> label.
fn write_tsv(path: &Path) -> HashMap<String, String> {
    let words = [
        (
            "games",
            ["chess", "arcade", "puzzle", "levels", "board", "players"],
        ),
        (
            "net",
            ["network", "proxy", "server", "client", "packets", "board"],
        ),
        (
            "sound",
            ["audio", "mixer", "players", "synth", "server", "midi"],
        ),
    ];
    let mut s = String::from("label\ttext\n");
    let mut truth = HashMap::new();
    for i in 0..30 {
        for (label, w) in &words {
            let text = format!("{} {} item{i}", w[i % 6], w[(i / 6 + i) % 6]);
            s += &format!("{label}\t{text}\n");
            truth.insert(text, label.to_string());
        }
    }
    std::fs::write(path, s).unwrap();
    truth
}

/// (label, predicted, probability, text) rows of `predictions.tsv`.
fn read_predictions(path: &Path) -> Vec<(String, String, f64, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("index\tlabel\tpredicted\tprobability\ttext")
    );
    lines
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            assert_eq!(f[0], i.to_string());
            (
                f[1].to_string(),
                f[2].to_string(),
                f[3].parse().unwrap(),
                f[4].to_string(),
            )
        })
        .collect()
}

#[test]
fn text_report_shows_texts_and_its_f1_matches_a_hand_count() {
    let dir = tempfile::tempdir().unwrap();
    let tsv = dir.path().join("three.tsv");
    let truth = write_tsv(&tsv);
    let out = dir.path().join("run");
    let (tsv_s, out_s) = (tsv.to_str().unwrap(), out.to_str().unwrap());
    ok(&[
        "train",
        "--model",
        "text-bow",
        "--dataset",
        tsv_s,
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--seed",
        "0",
        "--report",
        "--out",
        out_s,
    ]);
    let rep = out.join("report");
    for f in [
        "report.html",
        "report.json",
        "predictions.tsv",
        "confusion_matrix.png",
        "confusion_matrix.svg",
        "per_class.png",
        "loss_curves.png",
    ] {
        assert!(rep.join(f).is_file(), "{f} is missing");
    }
    // No image sections for texts.
    assert!(!rep.join("misclassified.png").exists());
    let r = json_file(&rep.join("report.json"));
    assert_eq!(r["text"], true);
    assert_eq!(
        r["class_names"],
        serde_json::json!(["games", "net", "sound"])
    );

    // Every test text with its true label (from the file) and its prediction.
    let rows = read_predictions(&rep.join("predictions.tsv"));
    let n = r["test"]["samples"].as_u64().unwrap() as usize;
    assert_eq!(rows.len(), n);
    assert_eq!(n, 18, "20% of 90 texts, stratified");
    for (label, _, p, text) in &rows {
        assert_eq!(truth.get(text), Some(label), "{text}");
        assert!((0.0..=1.0).contains(p));
    }
    let wrong: Vec<_> = rows.iter().filter(|r| r.0 != r.1).collect();
    assert_eq!(
        r["test"]["misclassified"].as_u64().unwrap() as usize,
        wrong.len()
    );
    assert!(
        !wrong.is_empty(),
        "one short epoch should leave some errors"
    );

    // Per-class precision, recall and F1 counted by hand from those rows.
    for m in r["per_class"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let tp = rows.iter().filter(|r| r.0 == name && r.1 == name).count() as f64;
        let support = rows.iter().filter(|r| r.0 == name).count() as f64;
        let predicted = rows.iter().filter(|r| r.1 == name).count() as f64;
        let p = if predicted > 0.0 { tp / predicted } else { 0.0 };
        let rc = if support > 0.0 { tp / support } else { 0.0 };
        let f1 = if p + rc > 0.0 {
            2.0 * p * rc / (p + rc)
        } else {
            0.0
        };
        assert_eq!(m["support"].as_f64().unwrap(), support, "{name}");
        for (key, want) in [("precision", p), ("recall", rc), ("f1", f1)] {
            let got = m[key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-12, "{name} {key}: {got} vs {want}");
        }
    }

    // The misclassified texts: the first ones, in order, with their labels and top 3.
    let shown = r["misclassified_texts"].as_array().unwrap();
    assert_eq!(shown.len(), wrong.len().min(25));
    for (m, w) in shown.iter().zip(&wrong) {
        assert_eq!(m["text"].as_str().unwrap(), w.3);
        assert_eq!(m["label_name"].as_str().unwrap(), w.0);
        assert_eq!(m["prediction_name"].as_str().unwrap(), w.1);
        let top = m["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["name"], m["prediction_name"]);
        let probs: Vec<f64> = top
            .iter()
            .map(|t| t["probability"].as_f64().unwrap())
            .collect();
        assert!(probs[0] >= probs[1] && probs[1] >= probs[2], "{probs:?}");
        assert!((probs[0] - m["confidence"].as_f64().unwrap()).abs() < 1e-6);
    }
    let html = std::fs::read_to_string(rep.join("report.html")).unwrap();
    assert!(html.contains("Misclassified test texts"));
    assert!(html.contains(&format!("<td class=\"name\">{}</td>", wrong[0].3)));
    assert!(!html.contains("id=\"feature-maps\""));

    // `predict` on a text gives the class the report lists for it.
    for (_, predicted, _, text) in rows.iter().take(4) {
        let o = ok(&["predict", out_s, text, "--json"]);
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v["predicted"].as_str(), Some(predicted.as_str()), "{text}");
    }

    // `nabla report DIR` finds the test texts again (run.json + vocabulary.json).
    let again = dir.path().join("again");
    ok(&["report", out_s, "--out", again.to_str().unwrap()]);
    let r2 = json_file(&again.join("report.json"));
    assert_eq!(r2["per_class"], r["per_class"]);
    assert_eq!(r2["misclassified_texts"], r["misclassified_texts"]);
    assert_eq!(
        std::fs::read_to_string(again.join("predictions.tsv")).unwrap(),
        std::fs::read_to_string(rep.join("predictions.tsv")).unwrap()
    );
}

#[test]
fn bench_model_text_lstm_profiles_its_layers() {
    let out = ok(&[
        "bench",
        "model",
        "text-lstm",
        "--steps",
        "3",
        "--profile-steps",
        "2",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.lines().last().unwrap()).expect("json");
    assert_eq!(v["model"], "text-lstm");
    assert_eq!(v["dataset"], "debian-sections");
    assert_eq!(v["samples"], "texts");
    assert_eq!(v["steps"], 23);
    for key in [
        "train_img_per_s",
        "infer_b1000_img_per_s",
        "b1_latency_ms_median",
    ] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key}: {}", v[key]);
    }
    // Embedding 10,000 x 64 + LSTM 33,024 + Dense 64 x 50 + 50: the recipe's defaults.
    assert_eq!(v["params"], 676_274);
    let layers = v["profile"]["layers"].as_array().unwrap();
    let classes: Vec<&str> = layers
        .iter()
        .map(|l| l["class_name"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["Embedding", "LSTM", "Dropout", "Dense"]);
    let shares: BTreeMap<&str, f64> = layers
        .iter()
        .map(|l| {
            (
                l["class_name"].as_str().unwrap(),
                l["share_of_step"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(
        shares.values().all(|s| (0.0..=1.0).contains(s)),
        "{shares:?}"
    );
    assert!(shares.values().sum::<f64>() <= 1.0 + 1e-9, "{shares:?}");
}

#[test]
fn bench_text_options_are_checked() {
    let e = fails(&["bench", "model", "mlp", "--max-tokens", "500"]);
    assert!(
        e.contains("--max-tokens and --sequence-length are for the text models"),
        "{e}"
    );
    let e = fails(&["bench", "model", "text-bow", "--sequence-length", "8"]);
    assert!(e.contains("--sequence-length is for text-cnn"), "{e}");
    let e = fails(&["bench", "model", "text-lstm", "--dataset", "mnist"]);
    assert!(e.contains("is not text"), "{e}");
}
