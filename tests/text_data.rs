//! Text data end to end: the real `debian-sections` set (label<TAB>text, 50 classes)
//! through `TextVectorization`, hand-computed bags on a toy corpus, and golden values
//! from Keras itself (`tests/golden/text_vectorization.json`, written by
//! `scripts/golden/text_vectorization.py` with TensorFlow 2.21 / keras 3.15).

mod common;

use nabla::data::text::{
    load_text_data, load_text_data_from, pad_sequences, OutputMode, Side, Standardize, TextDataset,
    TextVectorization, TextVectorizationConfig,
};
use serde_json::Value;
use std::collections::BTreeSet;

fn layer(mode: OutputMode, max_tokens: Option<usize>) -> TextVectorization {
    TextVectorization::new(TextVectorizationConfig {
        max_tokens,
        output_mode: mode,
        ..Default::default()
    })
    .unwrap()
}

/// The real data set's folder. Read under the environment lock, because
/// `debian_sections_by_name_and_a_missing_folder` changes `NABLA_DATA` while it runs.
fn debian_sections() -> TextDataset {
    let root = {
        let _env = common::lock_env();
        common::real_data("debian-sections")
    };
    load_text_data_from(root.join("debian-sections")).unwrap()
}

#[test]
fn debian_sections_loads_and_vectorizes() {
    let ds = debian_sections();
    assert_eq!(ds.num_classes(), 50);
    assert_eq!(ds.train_texts.len(), 50_554);
    assert_eq!(ds.train_labels.len(), 50_554);
    assert_eq!(ds.test_texts.len(), 12_527);
    assert_eq!(ds.test_labels.len(), 12_527);
    // Sorted class names; the biggest classes are where they should be.
    assert!(ds.class_names.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(&ds.class_names[..3], ["admin", "cli-mono", "comm"]);
    let libs = ds.class_names.iter().position(|c| c == "libs").unwrap();
    let n_libs = ds.train_labels.iter().filter(|&&l| l == libs).count();
    assert_eq!(n_libs, 5377, "the largest class");
    assert!(ds
        .train_labels
        .iter()
        .chain(&ds.test_labels)
        .all(|&l| l < 50));
    let y = ds.y_test();
    assert_eq!(y.shape(), &[12_527]);

    let mut tv = layer(OutputMode::Int, Some(10_000));
    tv.adapt(&ds.train_texts);
    assert_eq!(tv.vocabulary_size(), 10_000);
    // keras.layers.TextVectorization(max_tokens=10000).adapt(train) gives these first 22
    // (checked with keras 3.15): short function words and the words of package blurbs.
    assert_eq!(
        tv.vocabulary()[..22],
        [
            "",
            "[UNK]",
            "for",
            "library",
            "and",
            "files",
            "to",
            "the",
            "development",
            "of",
            "documentation",
            "module",
            "python",
            "gnu",
            "data",
            "a",
            "with",
            "in",
            "c",
            "libraries",
            "code",
            "package"
        ]
    );
    // OOV rate on the test set: keras counts 5,358 [UNK] of 80,636 tokens (6.64%), and
    // the longest test text has 51 tokens.
    let (mut oov, mut tokens) = (0usize, 0usize);
    for text in &ds.test_texts {
        let ids = tv.encode(text);
        tokens += ids.len();
        oov += ids.iter().filter(|&&i| i == 1).count();
    }
    assert_eq!(
        (oov, tokens),
        (5_358, 80_636),
        "OOV rate {}",
        oov as f64 / tokens as f64
    );
    let ids = tv.transform(&ds.test_texts).unwrap();
    assert_eq!(ids.shape(), &[12_527, 51]);
    let v = ids.to_f32_vec();
    assert!(v
        .iter()
        .all(|&x| x.fract() == 0.0 && (0.0..10_000.0).contains(&x)));

    // Saved and loaded next to a model, the same layer.
    let dir = tempfile::tempdir().unwrap();
    tv.save(dir.path().join("vocabulary.json")).unwrap();
    let back = TextVectorization::load(dir.path().join("vocabulary.json")).unwrap();
    assert_eq!(back, tv);
}

#[test]
fn debian_sections_by_name_and_a_missing_folder() {
    let _env = common::lock_env();
    let root = common::real_data("debian-sections");
    let empty = tempfile::tempdir().unwrap();
    std::env::set_var("NABLA_CACHE", empty.path());
    std::env::set_var("NABLA_DATA", &root);
    let ds = load_text_data("Debian_Sections").unwrap();
    assert_eq!(
        (ds.name.as_str(), ds.num_classes()),
        ("debian-sections", 50)
    );

    std::env::set_var("NABLA_DATA", empty.path());
    let e = load_text_data("debian-sections").unwrap_err().to_string();
    std::env::set_var("NABLA_DATA", &root);
    std::env::remove_var("NABLA_CACHE");
    let data_dir = empty.path().join("debian-sections");
    assert!(
        e.contains(&format!("NABLA_DATA={}", empty.path().display())),
        "{e}"
    );
    assert!(e.contains(&data_dir.display().to_string()), "{e}");
    assert!(e.contains("no public mirror"), "{e}");
}

/// Three documents, vocabularies and bags computed by hand.
#[test]
fn bags_agree_with_a_hand_computation() {
    let docs = ["red fish, blue fish", "Red car", "blue CAR blue sky"];
    // Counts: blue 3, fish 2, red 2, car 2, sky 1. Ties by bytes descending: red > fish,
    // red > car > ... so: blue, red, fish, car, sky. Document frequencies: blue 2, red 2,
    // fish 1, car 2, sky 1.
    let mut count = layer(OutputMode::Count, None);
    count.adapt(&docs);
    assert_eq!(
        count.vocabulary(),
        ["[UNK]", "blue", "red", "fish", "car", "sky"]
    );
    let query = ["blue fish fish boat boat boat", "sky"];
    assert_eq!(
        count.transform(&query).unwrap().to_f32_vec(),
        [3., 1., 0., 2., 0., 0., 0., 0., 0., 0., 0., 1.]
    );
    let mut multi = layer(OutputMode::MultiHot, None);
    multi.adapt(&docs);
    assert_eq!(
        multi.transform(&query).unwrap().to_f32_vec(),
        [1., 1., 0., 1., 0., 0., 0., 0., 0., 0., 0., 1.]
    );
    let mut tfidf = layer(OutputMode::TfIdf, None);
    tfidf.adapt(&docs);
    // idf = ln(1 + 3 / (1 + df)): df 2 -> ln 2, df 1 -> ln 2.5; OOV: their mean.
    let (i2, i1) = (2f64.ln(), 2.5f64.ln());
    let learned = [i2, i2, i1, i2, i1];
    let oov = learned.iter().sum::<f64>() / 5.0;
    let want = [
        3.0 * oov,
        i2,
        0.0,
        2.0 * i1,
        0.0,
        0.0, //
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        i1,
    ];
    let got = tfidf.transform(&query).unwrap().to_f32_vec();
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
    // With max_tokens = 4 the OOV column takes car and sky too.
    let mut small = layer(OutputMode::Count, Some(4));
    small.adapt(&docs);
    assert_eq!(small.vocabulary(), ["[UNK]", "blue", "red", "fish"]);
    assert_eq!(
        small.transform(&["car sky blue"]).unwrap().to_f32_vec(),
        [2., 1., 0., 0.]
    );
}

/// Two texts' multi-hot rows differ exactly in the columns of the tokens one has and the
/// other lacks.
#[test]
fn multi_hot_rows_differ_in_their_distinct_tokens() {
    let ds = debian_sections();
    let mut tv = layer(OutputMode::MultiHot, Some(10_000));
    tv.adapt(&ds.train_texts);
    let (a, b) = (&ds.test_texts[0], &ds.test_texts[1]);
    let rows = tv.transform(&[a, b]).unwrap().to_f32_vec();
    let (ra, rb) = rows.split_at(10_000);
    let columns = |t: &str| -> BTreeSet<usize> { tv.encode(t).into_iter().collect() };
    let (ca, cb) = (columns(a), columns(b));
    let differ: BTreeSet<usize> = (0..10_000).filter(|&j| ra[j] != rb[j]).collect();
    let expected: BTreeSet<usize> = ca.symmetric_difference(&cb).copied().collect();
    assert!(!expected.is_empty(), "{a:?} / {b:?}");
    assert_eq!(differ, expected, "{a:?} / {b:?}");
    // And each row is 1 exactly on its own columns.
    assert!((0..10_000).all(|j| (ra[j] == 1.0) == ca.contains(&j)));
}

fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/text_vectorization.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn text_vectorization_matches_keras() {
    let g = golden();
    let corpus = strings(&g["corpus"]);
    let queries = strings(&g["queries"]);
    let cases = g["vectorization"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let s = &case["settings"];
        let config = TextVectorizationConfig {
            max_tokens: s["max_tokens"].as_u64().map(|m| m as usize),
            standardize: Standardize::LowerAndStripPunctuation,
            output_mode: serde_json::from_value(s["output_mode"].clone()).unwrap(),
            output_sequence_length: s["output_sequence_length"].as_u64().map(|m| m as usize),
            pad_to_max_tokens: s["pad_to_max_tokens"].as_bool().unwrap_or(false),
            keras_ids: false,
        };
        let mut tv = TextVectorization::new(config).unwrap();
        tv.adapt(&corpus);
        assert_eq!(tv.vocabulary(), strings(&case["vocabulary"]), "{s}");
        if let Some(w) = case.get("idf_weights") {
            for (a, b) in tv.idf_weights().iter().zip(floats(w)) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{s}: idf {a} vs {b}"
                );
            }
            assert_eq!(tv.idf_weights().len(), w.as_array().unwrap().len());
        }
        let out = tv.transform(&queries).unwrap();
        let shape: Vec<usize> = case["output_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(out.shape(), shape, "{s}");
        for (i, (a, b)) in out
            .to_f32_vec()
            .iter()
            .zip(floats(&case["output"]))
            .enumerate()
        {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{s}: [{i}] {a} vs {b}"
            );
        }
    }
}

#[test]
fn pad_sequences_matches_keras() {
    let g = golden();
    let p = &g["pad_sequences"];
    let seqs: Vec<Vec<i64>> = serde_json::from_value(p["sequences"].clone()).unwrap();
    let cases = p["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 32);
    let side = |v: &Value| match v.as_str().unwrap() {
        "pre" => Side::Pre,
        _ => Side::Post,
    };
    for c in cases {
        let want: Vec<Vec<i64>> = serde_json::from_value(c["output"].clone()).unwrap();
        let got = pad_sequences(
            &seqs,
            c["maxlen"].as_u64().map(|m| m as usize),
            side(&c["padding"]),
            side(&c["truncating"]),
            c["value"].as_i64().unwrap(),
        );
        assert_eq!(got, want, "{c}");
    }
}
