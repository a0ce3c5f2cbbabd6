//! Helpers shared by the integration tests; a test file that needs them declares
//! `mod common;` (a folder module, so cargo does not build it as a test of its own).
//!
//! - `Mirror`: a local HTTP file server (`tiny_http` on 127.0.0.1, random port) that
//!   stands in for the data set mirrors, so downloads are tested without a network.
//! - `lock_env`: environment variables are process-wide and the tests of one file run
//!   in parallel threads, so a test holds this lock while it sets them and loads.
//! - `real_data`: where the real data sets are (`$NABLA_DATA`, then `../shared/data`),
//!   or a failing test that says where it looked.

// Each test file compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;

static ENV_LOCK: Mutex<()> = Mutex::new(());

pub fn lock_env() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the others can still run.
    ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file server that stops when dropped. It answers each request with what its
/// `respond` function returns for the URL path, or 404 for `None`, and counts requests,
/// in all and by their first path segment (the prefix a test puts in a mirror's URL:
/// `/good/...`, `/corrupt/...`).
pub struct Mirror {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
}

impl Mirror {
    pub fn start(respond: impl Fn(&str) -> Option<Vec<u8>> + Send + 'static) -> Mirror {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let total = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (server, hits, total) = (server.clone(), hits.clone(), total.clone());
            std::thread::spawn(move || {
                // Ends when `unblock` is called in `drop`.
                for request in server.incoming_requests() {
                    total.fetch_add(1, Ordering::SeqCst);
                    let url = request.url().to_string();
                    let prefix = url.trim_start_matches('/').split('/').next().unwrap_or("");
                    *hits.lock().unwrap().entry(prefix.to_string()).or_insert(0) += 1;
                    let response = match respond(&url) {
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

    /// Serves exactly `files` (URL path -> body).
    pub fn serving(files: HashMap<String, Vec<u8>>) -> Mirror {
        Mirror::start(move |url| files.get(url).cloned())
    }

    /// The mirror URL to give nabla for `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        format!("{}/{prefix}", self.base)
    }

    /// Requests whose path started with `/prefix/`.
    pub fn hits(&self, prefix: &str) -> usize {
        self.hits.lock().unwrap().get(prefix).copied().unwrap_or(0)
    }

    /// All requests so far.
    pub fn requests(&self) -> usize {
        self.total.load(Ordering::SeqCst)
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

/// The file names in `dir`, sorted (none if it does not exist).
pub fn files_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `$NABLA_DATA` as the test process found it, read once: some tests remove it (while
/// holding `lock_env`) to force downloads, and a later `real_data` must still see it.
fn nabla_data_at_start() -> Option<PathBuf> {
    static AT_START: OnceLock<Option<PathBuf>> = OnceLock::new();
    AT_START
        .get_or_init(|| std::env::var_os("NABLA_DATA").map(PathBuf::from))
        .clone()
}

/// The folder holding the real data set `dataset` (its sub-folder, e.g. `mnist/`):
/// `$NABLA_DATA` first, then `../shared/data` beside the crate. Without it the calling
/// test fails, naming both places: a data test never passes by returning early. In a
/// test file that also removes `NABLA_DATA`, call it while holding `lock_env`.
pub fn real_data(dataset: &str) -> PathBuf {
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    find_real_data(nabla_data_at_start(), &fallback, dataset).unwrap_or_else(|e| panic!("{e}"))
}

/// `real_data`'s search, given the environment variable and the fallback folder.
pub fn find_real_data(
    nabla_data: Option<PathBuf>,
    fallback: &Path,
    dataset: &str,
) -> Result<PathBuf, String> {
    let mut looked = Vec::new();
    match nabla_data {
        Some(dir) if dir.join(dataset).is_dir() => return Ok(dir),
        Some(dir) => looked.push(format!("NABLA_DATA={}", dir.display())),
        None => looked.push("NABLA_DATA (not set)".to_string()),
    }
    if fallback.join(dataset).is_dir() {
        return Ok(fallback.to_path_buf());
    }
    looked.push(fallback.display().to_string());
    Err(format!(
        "the real data set '{dataset}' is missing: looked for {dataset}/ in {}; set \
         NABLA_DATA to the folder that holds it",
        looked.join(", then in ")
    ))
}
