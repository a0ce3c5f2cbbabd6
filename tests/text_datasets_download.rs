//! Keras' `imdb` and `reuters` through the verified download path: a `tiny_http` mirror
//! on 127.0.0.1 serves the small fixture files (tests/fixtures/tiny_*, from
//! scripts/golden/keras_text_datasets.py) under `/<prefix>/<name>/<file>`; their sums
//! are not Keras' ones, so the tests pass them in `NABLA_<NAME>_CHECKSUMS`, honoured only
//! with `NABLA_MIRROR`. Nothing here reaches the network.

mod common;

use common::{files_in, lock_env, Mirror};
use md5::Digest;
use nabla::data::text::keras_datasets::{load_keras_text, KerasTextOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn sha256(b: &[u8]) -> String {
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn md5(b: &[u8]) -> String {
    md5::Md5::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A mirror serving `npz` and the tiny word index as `name`'s files under `/good/`.
fn mirror(name: &str, npz: Vec<u8>) -> Mirror {
    let index = fixture(&format!("tiny_{name}_word_index.json"));
    Mirror::serving(HashMap::from([
        (format!("/good/{name}/{name}.npz"), npz),
        (format!("/good/{name}/{name}_word_index.json"), index),
    ]))
}

fn checksums(name: &str, npz: &[u8]) -> String {
    let index = fixture(&format!("tiny_{name}_word_index.json"));
    format!(
        "{name}.npz={},{name}_word_index.json={}",
        sha256(npz),
        md5(&index)
    )
}

fn setup(name: &str, m: &Mirror, sums: &str) -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    std::env::remove_var("NABLA_DATA");
    std::env::set_var("NABLA_CACHE", cache.path());
    std::env::set_var("NABLA_MIRROR", m.url("good"));
    std::env::set_var(format!("NABLA_{}_CHECKSUMS", name.to_uppercase()), sums);
    cache
}

#[test]
fn downloads_verify_cache_and_load() {
    let _env = lock_env();
    for (name, train, test) in [("imdb", 24, 12), ("reuters", 24, 6)] {
        let npz = fixture(&format!("tiny_{name}.npz"));
        let m = mirror(name, npz.clone());
        let cache = setup(name, &m, &checksums(name, &npz));
        let (data, words) = load_keras_text(name, &KerasTextOptions::default()).unwrap();
        assert_eq!(
            (data.x_train.len(), data.x_test.len()),
            (train, test),
            "{name}"
        );
        assert!(data.x_train.iter().all(|x| x[0] == 1), "{name}: start_char");
        assert_eq!(words["the"], 1);
        assert_eq!(
            files_in(&cache.path().join(name)),
            [format!("{name}.npz"), format!("{name}_word_index.json")]
        );
        assert_eq!(m.requests(), 2);
        // Cached: no second download.
        load_keras_text(name, &KerasTextOptions::default()).unwrap();
        assert_eq!(m.requests(), 2);
    }
}

#[test]
fn a_wrong_checksum_is_refused_with_the_file_named() {
    let _env = lock_env();
    let npz = fixture("tiny_imdb.npz");
    let m = mirror("imdb", npz.clone());
    let sums = checksums("imdb", &npz).replace(&sha256(&npz), &"0".repeat(64));
    let cache = setup("imdb", &m, &sums);
    let e = load_keras_text("imdb", &KerasTextOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("imdb.npz") && e.contains("checksum mismatch") && e.contains(&sha256(&npz)),
        "{e}"
    );
    assert!(!cache.path().join("imdb").join("imdb.npz").exists());
    // Keras' sums cannot be replaced without a mirror.
    std::env::remove_var("NABLA_MIRROR");
    let e = load_keras_text("imdb", &KerasTextOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("NABLA_IMDB_CHECKSUMS is set but NABLA_MIRROR is not"),
        "{e}"
    );
    std::env::remove_var("NABLA_IMDB_CHECKSUMS");
}

#[test]
fn a_truncated_npz_is_a_clear_error() {
    let _env = lock_env();
    let full = fixture("tiny_imdb.npz");
    let npz = full[..full.len() * 2 / 3].to_vec();
    // The mirror vouches for the truncated bytes, so the download passes and the reader
    // must say what is wrong.
    let m = mirror("imdb", npz.clone());
    let cache = setup("imdb", &m, &checksums("imdb", &npz));
    let e = load_keras_text("imdb", &KerasTextOptions::default())
        .unwrap_err()
        .to_string();
    let path = cache.path().join("imdb").join("imdb.npz");
    assert!(e.contains(&path.display().to_string()), "{e}");
    assert!(e.contains("zip") || e.contains("truncated"), "{e}");
    std::env::remove_var("NABLA_IMDB_CHECKSUMS");
}

#[test]
fn cli_trains_one_epoch_on_tiny_imdb_and_predicts() {
    let _env = lock_env();
    let npz = fixture("tiny_imdb.npz");
    let m = mirror("imdb", npz.clone());
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("run");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nabla"))
            .args(["--threads", "2"])
            .args(args)
            .env_remove("NABLA_DATA")
            .env("NABLA_CACHE", cache.path())
            .env("NABLA_MIRROR", m.url("good"))
            .env("NABLA_IMDB_CHECKSUMS", checksums("imdb", &npz))
            .output()
            .unwrap()
    };
    let o = run(&[
        "train",
        "--model",
        "text-lstm",
        "--dataset",
        "imdb",
        "--epochs",
        "1",
        "--max-tokens",
        "30",
        "--sequence-length",
        "8",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let vocab = std::fs::read_to_string(out.join("vocabulary.json")).unwrap();
    assert!(
        vocab.contains("\"keras_ids\": true") && vocab.contains("[START]"),
        "{vocab}"
    );
    let o = run(&["evaluate", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&[
        "predict",
        out.to_str().unwrap(),
        "a good film, great acting",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains("positive") && text.contains("negative"),
        "{text}"
    );
}
