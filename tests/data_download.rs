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
//! here holds `ENV_LOCK` while it sets them and loads.

use nabla::data::load_data;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

static ENV_LOCK: Mutex<()> = Mutex::new(());

fn lock_env() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the others can still run.
    ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn shared_data() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    if dir.join("mnist").is_dir() {
        Some(dir)
    } else {
        eprintln!("note: {} not found; skipping", dir.display());
        None
    }
}

/// A file server that stops when dropped.
struct Mirror {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    base: String,
    /// Requests served, by prefix (`good`, `corrupt`, ...).
    hits: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
}

impl Mirror {
    fn start(root: &Path) -> Mirror {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let total = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (server, hits, total, root) = (
                server.clone(),
                hits.clone(),
                total.clone(),
                root.to_path_buf(),
            );
            std::thread::spawn(move || {
                // Ends when `unblock` is called in `drop`.
                for request in server.incoming_requests() {
                    total.fetch_add(1, Ordering::SeqCst);
                    let url = request.url().to_string();
                    let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
                    let body = match parts[..] {
                        [mode, dataset, file]
                            if !dataset.contains("..") && !file.contains("..") =>
                        {
                            *hits.lock().unwrap().entry(mode.to_string()).or_insert(0) += 1;
                            std::fs::read(root.join(dataset).join(file))
                                .ok()
                                .and_then(|b| mangle(mode, b))
                        }
                        _ => None,
                    };
                    let response = match body {
                        Some(b) => tiny_http::Response::from_data(b),
                        None => tiny_http::Response::from_data(b"not found".to_vec())
                            .with_status_code(404),
                    };
                    let _ = request.respond(response);
                }
            })
        };
        Mirror {
            server,
            thread: Some(thread),
            base: format!("http://127.0.0.1:{port}"),
            hits,
            total,
        }
    }

    fn url(&self, prefix: &str) -> String {
        format!("{}/{prefix}", self.base)
    }

    fn hits(&self, prefix: &str) -> usize {
        self.hits.lock().unwrap().get(prefix).copied().unwrap_or(0)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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

fn files_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn downloads_verifies_and_caches_mnist() {
    let Some(root) = shared_data() else { return };
    let _env = lock_env();
    let mirror = Mirror::start(&root);
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
    assert_eq!(mirror.total.load(Ordering::SeqCst), 4);
}

#[test]
fn corrupt_mirrors_fail_the_checksum_and_leave_no_file() {
    let Some(root) = shared_data() else { return };
    let _env = lock_env();
    let mirror = Mirror::start(&root);
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
    let Some(root) = shared_data() else { return };
    let _env = lock_env();
    let mirror = Mirror::start(&root);
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
