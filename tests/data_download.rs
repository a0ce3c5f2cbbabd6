//! End to end: `load_data` downloads from a mirror, verifies, caches, and refuses corrupt
//! files. A `tiny_http` server on 127.0.0.1 (random port) serves `shared/data` under
//! several prefixes:
//! - `/good/<data set>/<file>`: the files as they are (recompressed copies, so they pass
//!   by the SHA-256 of their content, not the upstream MD5);
//! - `/corrupt/...`: one byte flipped in the middle;
//! - `/truncated/...`: the first half only;
//! - anything else: 404.
//!
//! Environment variables are process-wide and tests run in parallel threads, so every test
//! here holds `common::lock_env()` while it sets them and loads.

mod common;

use common::{files_in, lock_env, real_data, Mirror};
use nabla::data::load_data;
use std::path::Path;

/// Serves `root/<data set>/<file>` at `/<mode>/<data set>/<file>`, mangled by `mode`.
fn start_mirror(root: &Path) -> Mirror {
    let root = root.to_path_buf();
    Mirror::start(move |url| {
        let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
        match parts[..] {
            [mode, dataset, file] if !dataset.contains("..") && !file.contains("..") => {
                std::fs::read(root.join(dataset).join(file))
                    .ok()
                    .and_then(|b| mangle(mode, b))
            }
            _ => None,
        }
    })
}

fn mangle(mode: &str, mut bytes: Vec<u8>) -> Option<Vec<u8>> {
    match mode {
        "good" => Some(bytes),
        "corrupt" => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            Some(bytes)
        }
        "truncated" => {
            bytes.truncate(bytes.len() / 2);
            Some(bytes)
        }
        _ => None,
    }
}

/// Points nabla at `mirrors` and a fresh cache; returns the cache (deleted on drop).
fn setup(mirrors: &[String]) -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    std::env::remove_var("NABLA_DATA");
    std::env::set_var("NABLA_CACHE", cache.path());
    std::env::set_var("NABLA_MIRROR", mirrors.join(","));
    cache
}

#[test]
fn downloads_verifies_and_caches_mnist() {
    let _env = lock_env();
    let root = real_data("mnist");
    let mirror = start_mirror(&root);
    let cache = setup(&[mirror.url("good")]);

    let ds = load_data("mnist").unwrap();
    assert_eq!(ds.x_train.shape(), &[60000, 1, 28, 28]);
    assert_eq!(ds.y_train.shape(), &[60000]);
    assert_eq!(ds.x_test.shape(), &[10000, 1, 28, 28]);
    assert_eq!(ds.y_test.shape(), &[10000]);
    assert_eq!(mirror.hits("good"), 4);
    // Exactly the four files, byte-identical to what was served, no temporary files.
    let dir = cache.path().join("mnist");
    assert_eq!(
        files_in(&dir),
        vec![
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
    for f in files_in(&dir) {
        assert_eq!(
            std::fs::read(dir.join(&f)).unwrap(),
            std::fs::read(root.join("mnist").join(&f)).unwrap()
        );
    }

    // The second load comes from the cache: no new request.
    let again = load_data("mnist").unwrap();
    assert_eq!(again.y_test.data()[..3], ds.y_test.data()[..3]);
    assert_eq!(mirror.requests(), 4);
}

#[test]
fn corrupt_mirrors_fail_the_checksum_and_leave_no_file() {
    let _env = lock_env();
    let root = real_data("mnist");
    let mirror = start_mirror(&root);
    let cache = setup(&[mirror.url("corrupt"), mirror.url("truncated")]);

    let msg = load_data("mnist").unwrap_err().to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with("download failed: mnist/train-images-idx3-ubyte.gz"),
        "{msg}"
    );
    assert!(msg.contains("every mirror failed"), "{msg}");
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(
        msg.contains(&format!(
            "{}/mnist/train-images-idx3-ubyte.gz",
            mirror.url("corrupt")
        )),
        "{msg}"
    );
    assert!(msg.contains(&mirror.url("truncated")), "{msg}");
    assert!(
        msg.contains("f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "names the expected MD5: {msg}"
    );
    assert_eq!((mirror.hits("corrupt"), mirror.hits("truncated")), (1, 1));
    // Nothing in the cache: no partial file, no temporary file.
    assert_eq!(files_in(&cache.path().join("mnist")), Vec::<String>::new());
}

#[test]
fn bad_mirrors_are_skipped_for_the_next_one() {
    let _env = lock_env();
    let root = real_data("mnist");
    let mirror = start_mirror(&root);
    let cache = setup(&[
        mirror.url("missing"),
        mirror.url("corrupt"),
        mirror.url("good"),
    ]);

    let ds = load_data("mnist").unwrap();
    assert_eq!(ds.x_train.shape()[0], 60000);
    assert_eq!(ds.x_test.shape()[0], 10000);
    assert_eq!(mirror.hits("missing"), 4);
    assert_eq!(mirror.hits("corrupt"), 4);
    assert_eq!(mirror.hits("good"), 4);
    assert_eq!(files_in(&cache.path().join("mnist")).len(), 4);
}
