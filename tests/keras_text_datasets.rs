//! Keras' `imdb` / `reuters` ids: nabla's loader against `load_data`'s own steps on
//! small files (tests/golden/keras_text_datasets.json and tests/fixtures/tiny_*.npz,
//! written by scripts/golden/keras_text_datasets.py with numpy's shuffle), and the
//! restricted pickle reader on those files and broken copies of them.

use nabla::data::numpy_random::Mt19937;
use nabla::data::text::keras_datasets::{load_ids, load_ids_file, vocabulary, KerasTextOptions};
use nabla::data::text::TextVectorizationConfig;
use serde_json::Value;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden() -> Value {
    let text =
        std::fs::read_to_string(root().join("tests/golden/keras_text_datasets.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn seqs(v: &Value) -> Vec<Vec<i64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_i64().unwrap())
                .collect()
        })
        .collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_i64().unwrap())
        .collect()
}

fn options(o: &Value) -> KerasTextOptions {
    let d = KerasTextOptions::default();
    let opt = |k: &str, def: Option<i64>| match o.get(k) {
        Some(Value::Null) => None,
        Some(v) => v.as_i64(),
        None => def,
    };
    KerasTextOptions {
        num_words: o
            .get("num_words")
            .and_then(Value::as_u64)
            .map(|v| v as usize),
        skip_top: o.get("skip_top").and_then(Value::as_u64).unwrap_or(0) as usize,
        maxlen: o.get("maxlen").and_then(Value::as_u64).map(|v| v as usize),
        test_split: o
            .get("test_split")
            .and_then(Value::as_f64)
            .unwrap_or(d.test_split),
        seed: o.get("seed").and_then(Value::as_u64).unwrap_or(113) as u32,
        start_char: opt("start_char", d.start_char),
        oov_char: opt("oov_char", d.oov_char),
        index_from: o.get("index_from").and_then(Value::as_i64).unwrap_or(3),
    }
}

#[test]
fn ids_match_keras_load_data() {
    let g = golden();
    for name in ["imdb", "reuters"] {
        let path = root().join(format!("tests/fixtures/tiny_{name}.npz"));
        for case in g[name].as_array().unwrap() {
            let o = options(&case["options"]);
            let got = load_ids_file(name, &path, &o).unwrap();
            let what = format!("{name} {}", case["name"]);
            assert_eq!(got.x_train, seqs(&case["x_train"]), "{what}");
            assert_eq!(got.y_train, ints(&case["y_train"]), "{what}");
            assert_eq!(got.x_test, seqs(&case["x_test"]), "{what}");
            assert_eq!(got.y_test, ints(&case["y_test"]), "{what}");
        }
    }
}

#[test]
fn shuffle_matches_numpy_random_state() {
    for s in golden()["shuffles"].as_array().unwrap() {
        let n = s["n"].as_u64().unwrap() as usize;
        let mut idx: Vec<i64> = (0..n as i64).collect();
        Mt19937::new(s["seed"].as_u64().unwrap() as u32).shuffle(&mut idx);
        let first = ints(&s["first"]);
        assert_eq!(idx[..first.len().min(n)], first[..], "{s}");
        let last = ints(&s["last"]);
        assert_eq!(idx[n - last.len().min(n)..], last[..], "{s}");
    }
}

#[test]
fn corrupt_and_truncated_files_are_errors_not_panics() {
    let bytes = std::fs::read(root().join("tests/fixtures/tiny_imdb.npz")).unwrap();
    let o = KerasTextOptions::default();
    for cut in (0..bytes.len()).step_by(7) {
        assert!(load_ids("imdb", &bytes[..cut], &o).is_err(), "cut at {cut}");
    }
    // Flipped bytes: an error or (rarely) other ids, never a panic.
    let mut rng = 1u64;
    for _ in 0..2000 {
        let mut b = bytes.clone();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let i = (rng >> 33) as usize % b.len();
        b[i] ^= (rng >> 20) as u8 | 1;
        let _ = load_ids("imdb", &b, &o);
    }
    // The wrong data set's layout is named.
    let e = load_ids("reuters", &bytes, &o).unwrap_err().to_string();
    assert!(e.contains("no array 'x'"), "{e}");
}

#[test]
fn word_index_is_a_keras_id_vocabulary() {
    let words: std::collections::HashMap<String, i64> = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/tiny_imdb_word_index.json")).unwrap(),
    )
    .unwrap();
    let tv = vocabulary(
        &words,
        10,
        TextVectorizationConfig {
            output_sequence_length: Some(6),
            ..Default::default()
        },
    )
    .unwrap();
    // "the" is rank 1: id 4; "film" rank 7: id 10 >= num_words, so OOV (2), as Keras.
    assert_eq!(tv.vocabulary()[4], "the");
    assert_eq!(tv.vocabulary_size(), 10);
    let x = tv.transform(&["The film, and zzz"]).unwrap();
    assert_eq!(x.to_f32_vec(), [1., 4., 2., 5., 2., 0.]);
    // Saved and loaded as any vocabulary.
    let back = nabla::data::text::TextVectorization::from_json(&tv.to_json()).unwrap();
    assert_eq!(back, tv);
}
