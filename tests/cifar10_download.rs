//! End to end: `load_data("cifar10")` downloads the archive from a mirror, verifies its
//! MD5, extracts the six batch files into the cache and loads them; a corrupt archive
//! leaves nothing behind.
//!
//! The real archive (162 MB) is not available here, so each test builds a tiny
//! `cifar-10-binary.tar.gz` with the upstream layout (`cifar-10-batches-bin/*.bin`, plus
//! the files that are not batches) and a `tiny_http` server on 127.0.0.1 (random port)
//! serves it under `/<prefix>/cifar10/cifar-10-binary.tar.gz`, anything else is 404.
//! Its MD5 is not the upstream one, so the tests pass it in `NABLA_CIFAR10_MD5`, the
//! documented override for mirrors that repackage the archive.
//!
//! Environment variables are process-wide and tests run in parallel threads, so every test
//! here holds `common::lock_env()` while it sets them and loads.

mod common;

use common::{files_in, lock_env, Mirror};
use md5::{Digest, Md5};
use nabla::data::load_data;
use std::collections::HashMap;

const RECORD: usize = 3073;
const BATCHES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

/// `n` records of batch `b`: record `i` has label `(b + i) % 10` and every pixel byte
/// `(b * 16 + i) % 256`, so each image can be traced to its file.
fn records(b: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * RECORD);
    for i in 0..n {
        out.push(((b + i) % 10) as u8);
        out.extend(std::iter::repeat_n(((b * 16 + i) % 256) as u8, RECORD - 1));
    }
    out
}

/// A `.tar.gz` laid out like the upstream archive, with `n` records per batch, leaving
/// out the batches named in `without`.
fn tarball(n: usize, without: &[&str]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), bytes)
            .unwrap();
    };
    add("batches.meta.txt", b"airplane\nautomobile\n");
    for (b, name) in BATCHES.iter().enumerate() {
        if !without.contains(name) {
            add(name, &records(b, n));
        }
    }
    add("readme.html", b"<p>CIFAR-10</p>");
    tar.into_inner().unwrap().finish().unwrap()
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn archive_path(prefix: &str) -> String {
    format!("/{prefix}/cifar10/cifar-10-binary.tar.gz")
}

/// Points nabla at `mirrors`, a fresh cache and the MD5 `md5` (none: the upstream one);
/// returns the cache (deleted on drop).
fn setup(mirrors: &[String], md5: Option<&str>) -> tempfile::TempDir {
    let cache = tempfile::tempdir().unwrap();
    std::env::remove_var("NABLA_DATA");
    std::env::set_var("NABLA_CACHE", cache.path());
    std::env::set_var("NABLA_MIRROR", mirrors.join(","));
    match md5 {
        Some(m) => std::env::set_var("NABLA_CIFAR10_MD5", m),
        None => std::env::remove_var("NABLA_CIFAR10_MD5"),
    }
    cache
}

#[test]
fn downloads_verifies_extracts_and_caches_cifar10() {
    let _env = lock_env();
    let good = tarball(3, &[]);
    let mirror = Mirror::serving(HashMap::from([(archive_path("good"), good.clone())]));
    let cache = setup(&[mirror.url("good")], Some(&md5_hex(&good)));

    let ds = load_data("cifar10").unwrap();
    assert_eq!(ds.name, "cifar10");
    assert_eq!(ds.x_train.shape(), &[15, 3, 32, 32]);
    assert_eq!(ds.y_train.shape(), &[15]);
    assert_eq!(ds.x_test.shape(), &[3, 3, 32, 32]);
    assert_eq!(ds.y_test.data(), &[5., 6., 7.]);
    assert_eq!(ds.class_names[0], "airplane");
    assert_eq!(ds.class_names[9], "truck");
    // Batches in order: the first image of data_batch_2 is train sample 3, label 1,
    // pixel byte 16.
    assert_eq!(ds.y_train.data()[3], 1.0);
    let px = ds.x_train.data()[3 * 3072..4 * 3072].to_vec();
    assert!(px.iter().all(|&v| v == 16.0 / 255.0));
    assert_eq!(mirror.requests(), 1);

    // Exactly the six batch files, as in the archive, no temporary or extra files.
    let dir = cache.path().join("cifar10");
    let mut expected: Vec<String> = BATCHES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(files_in(&dir), expected);
    assert_eq!(
        std::fs::read(dir.join("data_batch_4.bin")).unwrap(),
        records(3, 3)
    );

    // The second load, under another spelling, comes from the cache: no new request.
    let again = load_data("CIFAR-10").unwrap();
    assert_eq!(again.y_train.data(), ds.y_train.data());
    assert_eq!(mirror.requests(), 1);
}

#[test]
fn corrupt_archive_fails_the_checksum_and_leaves_nothing() {
    let _env = lock_env();
    let good = tarball(2, &[]);
    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let truncated = good[..good.len() / 2].to_vec();
    let mirror = Mirror::serving(HashMap::from([
        (archive_path("corrupt"), corrupt.clone()),
        (archive_path("truncated"), truncated),
    ]));
    let expected = md5_hex(&good);
    let cache = setup(
        &[
            mirror.url("missing"),
            mirror.url("corrupt"),
            mirror.url("truncated"),
        ],
        Some(&expected),
    );

    let msg = load_data("cifar10").unwrap_err().to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with("download failed: cifar10/cifar-10-binary.tar.gz: every mirror failed"),
        "{msg}"
    );
    assert!(msg.contains("HTTP 404"), "{msg}");
    assert!(
        msg.contains(&format!(
            "{}: checksum mismatch for cifar-10-binary.tar.gz",
            mirror.url("corrupt") + "/cifar10/cifar-10-binary.tar.gz"
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&md5_hex(&corrupt)),
        "names the computed MD5: {msg}"
    );
    assert!(
        msg.contains(&format!("{expected} (from NABLA_CIFAR10_MD5)")),
        "names the expected MD5 and where it came from: {msg}"
    );
    assert!(msg.contains(&mirror.url("truncated")), "{msg}");
    assert_eq!(mirror.requests(), 3);
    // Nothing in the cache: no partial file, no temporary file.
    assert_eq!(
        files_in(&cache.path().join("cifar10")),
        Vec::<String>::new()
    );
}

#[test]
fn without_the_override_the_upstream_md5_is_required() {
    let _env = lock_env();
    let good = tarball(1, &[]);
    let mirror = Mirror::serving(HashMap::from([(archive_path("good"), good.clone())]));
    let cache = setup(&[mirror.url("good")], None);

    let msg = load_data("cifar10").unwrap_err().to_string();
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(
        msg.contains("the upstream c32a1d4ab5d03f1284b67883e8d87530"),
        "{msg}"
    );
    assert_eq!(
        files_in(&cache.path().join("cifar10")),
        Vec::<String>::new()
    );

    // The override is refused without a mirror of one's own.
    std::env::remove_var("NABLA_MIRROR");
    std::env::set_var("NABLA_CIFAR10_MD5", md5_hex(&good));
    let msg = load_data("cifar10").unwrap_err().to_string();
    assert!(
        msg.contains("NABLA_CIFAR10_MD5 is set but NABLA_MIRROR is not"),
        "{msg}"
    );
    assert_eq!(mirror.requests(), 1);
}

#[test]
fn an_archive_that_passes_the_checksum_but_lacks_a_batch_leaves_nothing() {
    let _env = lock_env();
    let incomplete = tarball(2, &["test_batch.bin"]);
    let mirror = Mirror::serving(HashMap::from([(archive_path("good"), incomplete.clone())]));
    let cache = setup(&[mirror.url("good")], Some(&md5_hex(&incomplete)));

    let msg = load_data("cifar10").unwrap_err().to_string();
    assert!(
        msg.contains("cifar-10-binary.tar.gz: the archive lacks test_batch.bin"),
        "{msg}"
    );
    assert_eq!(
        files_in(&cache.path().join("cifar10")),
        Vec::<String>::new()
    );
}

#[test]
fn a_local_folder_is_used_without_downloading() {
    let _env = lock_env();
    let mirror = Mirror::serving(HashMap::new());
    let cache = setup(&[mirror.url("good")], None);
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("cifar10").join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for (b, name) in BATCHES.iter().enumerate() {
        std::fs::write(dir.join(name), records(b, 2)).unwrap();
    }
    std::env::set_var("NABLA_DATA", data.path());

    let ds = load_data("cifar_10").unwrap();
    std::env::remove_var("NABLA_DATA");
    assert_eq!(ds.x_train.shape(), &[10, 3, 32, 32]);
    assert_eq!(ds.x_test.shape(), &[2, 3, 32, 32]);
    assert_eq!(mirror.requests(), 0);
    assert_eq!(
        files_in(&cache.path().join("cifar10")),
        Vec::<String>::new()
    );
}
