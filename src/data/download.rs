//! Downloading data set files from mirrors, with checksums.
//!
//! Each file is tried on every mirror in turn. A mirror that fails (network error, HTTP
//! error, checksum mismatch) is skipped for the next one; if all fail, the error lists
//! every mirror and why it failed. Downloads are held in memory (the largest file is
//! 26 MB), verified, and only then written to the cache directory through
//! [`write_bytes_atomic`], so a partial or corrupt download never reaches the disk.
//!
//! # Checksums
//! For every file the table holds two sums, and a download is accepted if either matches:
//! - the MD5 of the gzip file as published upstream (what the public mirrors serve), and
//! - the SHA-256 of its decompressed content (the IDX bytes).
//!
//! The second exists because a mirror may serve the same data compressed differently:
//! the copies in the project's `shared/data` folder (served by the tests) were recompressed,
//! so their gzip MD5s differ from upstream while their decompressed content is
//! byte-identical. The SHA-256 is also checked against the raw body, for the rare server
//! that sends `Content-Encoding: gzip` (the HTTP client then decodes it); such a file is
//! stored uncompressed under the `.gz` name, which the IDX reader accepts because it
//! detects compression by content.
//!
//! # Mirrors
//! Built-in mirrors are tried in order. The environment variable `NABLA_MIRROR` replaces
//! them with one or more base URLs (separated by commas or spaces), each laid out with one
//! folder per data set: a file is fetched from `<base>/<data set>/<file>`, for example
//! `http://127.0.0.1:8000/mnist/train-images-idx3-ubyte.gz` (the layout of `shared/data`).
//!
//! CIFAR-10 is published as one `.tar.gz` archive rather than per-file gzips; it goes
//! through the same mirrors and [`fetch_verified`], with its own MD5 check and
//! extraction in [`super::cifar10`].
//!
//! A progress bar is drawn on stderr, only when stderr is a terminal.

use crate::error::{Error, Result};
use crate::formats::atomic::write_bytes_atomic;
use md5::{Digest, Md5};
use sha2::Sha256;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::Duration;

/// Environment variable that replaces the built-in mirror list (see the module docs).
pub const MIRROR_ENV: &str = "NABLA_MIRROR";

/// Largest response accepted, so that a misbehaving server cannot fill memory.
const MAX_DOWNLOAD_BYTES: u64 = 256 << 20;
/// Largest decompressed content hashed, against gzip bombs.
const MAX_DECOMPRESSED_BYTES: u64 = 1 << 30;

/// A file of a data set as published upstream.
#[derive(Debug, Clone, Copy)]
pub struct RemoteFile {
    /// File name on the mirrors and in the cache, e.g. `train-images-idx3-ubyte.gz`.
    pub name: &'static str,
    /// MD5 of the gzip file as published upstream (hex).
    pub md5: &'static str,
    /// SHA-256 of the decompressed content (hex).
    pub sha256_decompressed: &'static str,
}

/// Where a data set can be downloaded from, and what its files must hash to.
#[derive(Debug)]
pub struct Source {
    /// Data set name, e.g. `mnist`.
    pub dataset: &'static str,
    /// Base URLs, tried in order; a file's URL is the base followed by its name.
    pub mirrors: &'static [&'static str],
    pub files: &'static [RemoteFile],
}

const fn file(name: &'static str, md5: &'static str, sha256: &'static str) -> RemoteFile {
    RemoteFile {
        name,
        md5,
        sha256_decompressed: sha256,
    }
}

/// The data sets nabla can download. MD5s are the upstream ones (listed in
/// `shared/data/README.md`); SHA-256s come from `SHA256SUMS.uncompressed` there.
pub const SOURCES: &[Source] = &[
    Source {
        dataset: "mnist",
        mirrors: &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        files: &[
            file(
                "train-images-idx3-ubyte.gz",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            file(
                "train-labels-idx1-ubyte.gz",
                "d53e105ee54ea40749a09fcbcd1e9432",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            file(
                "t10k-images-idx3-ubyte.gz",
                "9fb629c4189551a2d022fa330f9573f3",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            file(
                "t10k-labels-idx1-ubyte.gz",
                "ec29112dd5afa0611ce80d1b7f02629c",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ],
    },
    Source {
        dataset: "fashion-mnist",
        mirrors: &[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ],
        files: &[
            file(
                "train-images-idx3-ubyte.gz",
                "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ),
            file(
                "train-labels-idx1-ubyte.gz",
                "25c81989df183df01b3e8a0aad5dffbe",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ),
            file(
                "t10k-images-idx3-ubyte.gz",
                "bef4ecab320f06d8554ea6380940ec79",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ),
            file(
                "t10k-labels-idx1-ubyte.gz",
                "bb300cfdad3c16e7a12a480ee83cd310",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
        ],
    },
];

/// The download source of a data set, by its canonical name.
pub fn source(dataset: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.dataset == dataset)
}

/// The URLs to try for `file` of `source`, in order: from `NABLA_MIRROR` if it is set
/// (`<base>/<data set>/<file>`), else the built-in mirrors.
pub fn urls_for(source: &Source, file: &RemoteFile) -> Vec<String> {
    urls_with(source, file, std::env::var(MIRROR_ENV).ok().as_deref())
}

fn urls_with(source: &Source, file: &RemoteFile, mirror_env: Option<&str>) -> Vec<String> {
    mirror_urls_with(source.dataset, file.name, source.mirrors, mirror_env)
}

/// The URLs to try for `file_name` of `dataset`, in order: `<base>/<dataset>/<file_name>`
/// for each base in `NABLA_MIRROR` if it is set, else `<mirror><file_name>` for each of
/// the `builtin` mirrors. Shared by every data set, whatever its files are.
pub fn mirror_urls(dataset: &str, file_name: &str, builtin: &[&str]) -> Vec<String> {
    mirror_urls_with(
        dataset,
        file_name,
        builtin,
        std::env::var(MIRROR_ENV).ok().as_deref(),
    )
}

/// Whether `NABLA_MIRROR` replaces the built-in mirrors (it is set and not blank).
pub fn mirror_overridden() -> bool {
    std::env::var(MIRROR_ENV).is_ok_and(|v| !v.trim().is_empty())
}

pub(crate) fn mirror_urls_with(
    dataset: &str,
    file_name: &str,
    builtin: &[&str],
    mirror_env: Option<&str>,
) -> Vec<String> {
    match mirror_env {
        Some(v) if !v.trim().is_empty() => v
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|b| !b.is_empty())
            .map(|b| format!("{}/{dataset}/{file_name}", b.trim_end_matches('/')))
            .collect(),
        _ => builtin.iter().map(|b| format!("{b}{file_name}")).collect(),
    }
}

/// Downloads every file of `dataset` that `dir` lacks (neither `<file>.gz` nor the
/// uncompressed `<file>` is there) into `dir`, creating it if needed. Files already
/// downloaded are kept if a later one fails, so a retry resumes.
pub fn download_dataset(dataset: &str, dir: &Path) -> Result<()> {
    let source = source(dataset).ok_or_else(|| {
        let known: Vec<&str> = SOURCES.iter().map(|s| s.dataset).collect();
        Error::invalid(format!(
            "no download source for data set \"{dataset}\"; known: {}",
            known.join(", ")
        ))
    })?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for f in source.files {
        let stem = f.name.strip_suffix(".gz").unwrap_or(f.name);
        if dir.join(f.name).is_file() || dir.join(stem).is_file() {
            continue;
        }
        download_file(source, f, &dir.join(f.name))?;
    }
    Ok(())
}

/// Downloads one file to `dest`, trying each mirror until one serves bytes that pass
/// [`verify`]. Nothing is written unless the checksum matched.
pub fn download_file(source: &Source, file: &RemoteFile, dest: &Path) -> Result<()> {
    let dir = dest.parent().unwrap_or(dest);
    let bytes = fetch_verified(
        &format!("{}/{}", source.dataset, file.name),
        &urls_for(source, file),
        &format!("or put the file in {} yourself", dir.display()),
        |bytes| verify(bytes, file).map(|_| ()),
    )?;
    // Only verified bytes reach the disk, and atomically.
    write_bytes_atomic(dest, &bytes)
}

/// Fetches `urls` in turn into memory until one serves bytes that `check` accepts, and
/// returns them. `check` rejects with `Error::Download(reason)` to move on to the next
/// mirror; any other error stops at once. When every mirror fails the error starts with
/// `label`, lists each URL and why it failed, and ends with `hint` (what else the user
/// can do). Writes nothing: the caller decides what reaches the disk.
pub fn fetch_verified(
    label: &str,
    urls: &[String],
    hint: &str,
    check: impl Fn(&[u8]) -> Result<()>,
) -> Result<Vec<u8>> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .user_agent(concat!("nabla/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut failures = Vec::new();
    for url in urls {
        let bytes = match fetch(&agent, url, label) {
            Ok(bytes) => bytes,
            Err(reason) => {
                failures.push(format!("{url}: {reason}"));
                continue;
            }
        };
        match check(&bytes) {
            Ok(()) => return Ok(bytes),
            Err(Error::Download(reason)) => failures.push(format!("{url}: {reason}")),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Download(format!(
        "{label}: every mirror failed ({}); set {MIRROR_ENV} to another mirror, {hint}",
        failures.join("; "),
    )))
}

/// GETs `url` into memory, with a progress bar when stderr is a terminal. The error is a
/// short reason (the caller adds the URL).
fn fetch(agent: &ureq::Agent, url: &str, label: &str) -> std::result::Result<Vec<u8>, String> {
    let response = agent
        .get(url)
        // Ask for the bytes as stored, so that the gzip MD5 can match.
        .set("Accept-Encoding", "identity")
        .call()
        .map_err(|e| match e {
            ureq::Error::Status(code, r) => format!("HTTP {code} {}", r.status_text()),
            ureq::Error::Transport(t) => transport_reason(&t),
        })?;
    let total: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    if let Some(t) = total.filter(|&t| t > MAX_DOWNLOAD_BYTES) {
        return Err(format!(
            "server announces {t} bytes, more than the {MAX_DOWNLOAD_BYTES} accepted"
        ));
    }
    let bar = progress_bar(total, label);
    let mut reader = response.into_reader().take(MAX_DOWNLOAD_BYTES + 1);
    let mut bytes = Vec::with_capacity(total.unwrap_or(0) as usize);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(format!(
                    "connection failed after {} bytes: {e}",
                    bytes.len()
                ));
            }
        };
        bytes.extend_from_slice(&chunk[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if bytes.len() as u64 > MAX_DOWNLOAD_BYTES {
        return Err(format!("response exceeds {MAX_DOWNLOAD_BYTES} bytes"));
    }
    if let Some(t) = total.filter(|&t| t != bytes.len() as u64) {
        return Err(format!("got {} of {t} bytes", bytes.len()));
    }
    Ok(bytes)
}

/// A transport error without the URL (which the caller prints once).
fn transport_reason(t: &ureq::Transport) -> String {
    let mut s = t.kind().to_string();
    if let Some(m) = t.message() {
        s += &format!(": {m}");
    }
    if let Some(src) = std::error::Error::source(t) {
        s += &format!(": {src}");
    }
    s
}

fn progress_bar(total: Option<u64>, label: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.with_message(format!("downloading {label}"))
}

/// Which check accepted a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The bytes are the upstream gzip file (MD5 match).
    UpstreamMd5,
    /// The bytes are gzip whose decompressed content matches (a recompressed copy).
    DecompressedSha256,
    /// The bytes are the uncompressed content itself (a server decoded the gzip).
    RawSha256,
}

/// Checks downloaded `bytes` against `file`'s sums (see the module docs). The error
/// says what was computed and what was expected.
pub fn verify(bytes: &[u8], file: &RemoteFile) -> Result<Verified> {
    let md5 = hex(&Md5::digest(bytes));
    if md5.eq_ignore_ascii_case(file.md5) {
        return Ok(Verified::UpstreamMd5);
    }
    let expected = file.sha256_decompressed;
    let detail = if bytes.starts_with(&crate::data::idx::GZIP_MAGIC) {
        match sha256_of_gunzip(bytes) {
            Ok(sha) if sha.eq_ignore_ascii_case(expected) => {
                return Ok(Verified::DecompressedSha256)
            }
            Ok(sha) => format!(
                "the SHA-256 of its decompressed content, {sha}, is not the expected {expected}"
            ),
            Err(e) => format!("it is not valid gzip ({e})"),
        }
    } else {
        let sha = hex(&Sha256::digest(bytes));
        if sha.eq_ignore_ascii_case(expected) {
            return Ok(Verified::RawSha256);
        }
        format!("it is not gzip, and its SHA-256, {sha}, is not the expected {expected}")
    };
    Err(Error::Download(format!(
        "checksum mismatch for {} ({} bytes): its MD5, {md5}, is not the upstream {}, and {detail}",
        file.name,
        bytes.len(),
        file.md5,
    )))
}

fn sha256_of_gunzip(bytes: &[u8]) -> std::io::Result<String> {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = HashWriter(Sha256::new());
    let decoder = flate2::read::MultiGzDecoder::new(bytes);
    let n = std::io::copy(&mut decoder.take(MAX_DECOMPRESSED_BYTES + 1), &mut hasher)?;
    if n > MAX_DECOMPRESSED_BYTES {
        return Err(std::io::Error::other("decompresses to more than 1 GiB"));
    }
    Ok(hex(&hasher.0.finalize()))
}

/// The MD5 of `bytes`, as 32 lower-case hex digits.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// A file entry whose sums are computed here, standing in for the upstream table.
    fn entry(upstream_gzip: &[u8], content: &[u8]) -> RemoteFile {
        let md5 = Box::leak(hex(&Md5::digest(upstream_gzip)).into_boxed_str());
        let sha = Box::leak(hex(&Sha256::digest(content)).into_boxed_str());
        file("x-idx1-ubyte.gz", md5, sha)
    }

    #[test]
    fn accepts_upstream_gzip_recompressed_copy_and_decoded_body() {
        let content: Vec<u8> = (0..5000).map(|i| (i % 13) as u8).collect();
        let upstream = gzip(&content, 9);
        let recompressed = gzip(&content, 1);
        assert_ne!(upstream, recompressed);
        let f = entry(&upstream, &content);
        assert_eq!(verify(&upstream, &f).unwrap(), Verified::UpstreamMd5);
        assert_eq!(
            verify(&recompressed, &f).unwrap(),
            Verified::DecompressedSha256
        );
        assert_eq!(verify(&content, &f).unwrap(), Verified::RawSha256);
    }

    #[test]
    fn rejects_corrupt_and_different_content() {
        let content: Vec<u8> = (0..5000).map(|i| (i % 13) as u8).collect();
        let upstream = gzip(&content, 9);
        let f = entry(&upstream, &content);

        let mut corrupt = upstream.clone();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0x55;
        let msg = verify(&corrupt, &f).unwrap_err().to_string();
        assert!(
            msg.contains("checksum mismatch for x-idx1-ubyte.gz"),
            "{msg}"
        );
        assert!(msg.contains(f.md5), "{msg}");

        let other = gzip(b"something else", 6);
        let msg = verify(&other, &f).unwrap_err().to_string();
        assert!(msg.contains("SHA-256 of its decompressed content"), "{msg}");

        let msg = verify(b"<html>404</html>", &f).unwrap_err().to_string();
        assert!(msg.contains("not gzip"), "{msg}");
    }

    #[test]
    fn mirror_urls_builtin_and_overridden() {
        let s = source("mnist").unwrap();
        let f = &s.files[0];
        assert_eq!(
            urls_with(s, f, None),
            vec![
                "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
            ]
        );
        assert_eq!(urls_with(s, f, Some("  ")), urls_with(s, f, None));
        assert_eq!(
            urls_with(s, f, Some("http://a:1/, http://b/x")),
            vec![
                "http://a:1/mnist/train-images-idx3-ubyte.gz",
                "http://b/x/mnist/train-images-idx3-ubyte.gz",
            ]
        );
    }

    #[test]
    fn table_covers_both_datasets() {
        for name in ["mnist", "fashion-mnist"] {
            let s = source(name).unwrap();
            assert_eq!(s.files.len(), 4);
            assert_eq!(s.mirrors.len(), 2);
            for f in s.files {
                assert_eq!(f.md5.len(), 32);
                assert_eq!(f.sha256_decompressed.len(), 64);
                assert!(f.name.ends_with("-ubyte.gz"));
            }
        }
        assert!(source("cifar10").is_none());
    }
}
