//! CIFAR-10 in its binary format: reading the batch files, and downloading, verifying and
//! extracting the upstream archive.
//!
//! # The files
//! Five training batches `data_batch_1.bin` .. `data_batch_5.bin` (10 000 images each)
//! and `test_batch.bin` (10 000 images). Each is a plain sequence of 3073-byte records:
//! one label byte (0..=9), then the 32x32 image as 1024 red, 1024 green and 1024 blue
//! bytes, each plane row-major. That is already planar CHW, so a record's 3072 pixel
//! bytes become one `[3, 32, 32]` sample as they are, scaled to [0, 1].
//!
//! The reader accepts any number of records per file (tests write small ones) and checks
//! what it can: a file that is empty, or whose length is not a whole number of records,
//! or that holds a label above 9, is an error naming the file (and the record).
//!
//! # Where the files are looked for
//! [`load_cifar10`] takes a folder holding the six files directly, or holding the
//! `cifar-10-batches-bin/` folder the upstream archive unpacks to.
//! `load_data("cifar10")` (also `"cifar-10"`) looks in `$NABLA_DATA/cifar10/`, then in the
//! cache (`$NABLA_CACHE/cifar10/` or `~/.cache/nabla/cifar10/`), and otherwise downloads
//! the archive into the cache with [`download_cifar10`].
//!
//! # Download and checksum
//! The archive `cifar-10-binary.tar.gz` (about 162 MB) is fetched from
//! `https://www.cs.toronto.edu/~kriz/`, or from `<base>/cifar10/cifar-10-binary.tar.gz`
//! for each base in `NABLA_MIRROR` (as for MNIST, see [`super::download`]). It is held in
//! memory, checked against its MD5, and only then are the six batch files extracted:
//! each is checked as the reader would, written to a temporary file in the cache folder,
//! and all six are renamed into place only once all are complete. An archive that fails
//! any of this leaves nothing in the cache. The archive itself is not kept.
//!
//! The expected MD5 is the upstream one, [`ARCHIVE_MD5`], unless `NABLA_CIFAR10_MD5`
//! says otherwise. That variable exists for tests and for mirrors that repackage the
//! archive (whose bytes, and so MD5, differ from upstream's): whoever sets it vouches for
//! the archive it names. It is honoured only together with `NABLA_MIRROR`; the built-in
//! mirror is always held to the upstream MD5, and setting the variable without a mirror
//! is an error rather than silently ignored. A checksum error says which MD5 was expected
//! and where it came from.
//!
//! ```no_run
//! # fn main() -> nabla::Result<()> {
//! let ds = nabla::data::load_data("cifar10")?;
//! assert_eq!(ds.x_train.shape(), &[50000, 3, 32, 32]);
//! assert_eq!(ds.class_names[3], "cat");
//! # Ok(())
//! # }
//! ```

use super::datasets::Dataset;
use super::download;
use crate::engine::Tensor;
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The canonical name of the data set, as `load_data` and the cache folder use it.
pub const NAME: &str = "cifar10";
/// Classes, indexed by label.
pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// The training batches, in the order their images are concatenated.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch.
pub const TEST_FILE: &str = "test_batch.bin";
/// All six batch files: the training ones, then the test one.
pub const ALL_FILES: [&str; 6] = [
    TRAIN_FILES[0],
    TRAIN_FILES[1],
    TRAIN_FILES[2],
    TRAIN_FILES[3],
    TRAIN_FILES[4],
    TEST_FILE,
];
/// The folder the upstream archive unpacks to; also accepted inside the data folder.
pub const SUBDIR: &str = "cifar-10-batches-bin";

/// Channels, height and width of one image.
pub const CHANNELS: usize = 3;
pub const HEIGHT: usize = 32;
pub const WIDTH: usize = 32;
/// Pixel bytes of one image, `3 * 32 * 32`.
pub const IMAGE_BYTES: usize = CHANNELS * HEIGHT * WIDTH;
/// Bytes of one record: the label byte, then the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;

/// The archive's name, upstream and on mirrors.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// The MD5 of the upstream archive, as published on its page.
pub const ARCHIVE_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// Built-in mirrors (base URLs, followed by [`ARCHIVE`]).
pub const MIRRORS: &[&str] = &["https://www.cs.toronto.edu/~kriz/"];
/// Replaces the expected MD5 of the archive, for tests and repackaging mirrors; honoured
/// only when `NABLA_MIRROR` is set too (see the module docs).
pub const MD5_ENV: &str = "NABLA_CIFAR10_MD5";

/// Largest decompressed archive read, against gzip bombs (the real one is ~185 MB).
const MAX_EXTRACTED_BYTES: u64 = 1 << 30;

/// Checks that `bytes`, the contents of the batch file `path`, are whole records with
/// labels 0..=9, and returns how many records there are.
pub fn check_records(bytes: &[u8], path: &Path) -> Result<usize> {
    if bytes.is_empty() {
        return Err(Error::format(
            path,
            format!("empty file: a CIFAR-10 batch holds {RECORD_BYTES}-byte records"),
        ));
    }
    if !bytes.len().is_multiple_of(RECORD_BYTES) {
        return Err(Error::format(
            path,
            format!(
                "truncated: {} bytes is not a whole number of {RECORD_BYTES}-byte records",
                bytes.len()
            ),
        ));
    }
    for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if label as usize >= CLASS_NAMES.len() {
            return Err(Error::format(
                path,
                format!(
                    "record {i} (byte offset {}) has label {label}; CIFAR-10 labels are 0..=9",
                    i * RECORD_BYTES
                ),
            ));
        }
    }
    Ok(bytes.len() / RECORD_BYTES)
}

/// Appends the images of the records in `bytes` to `x` (scaled to [0, 1]) and their labels
/// to `y`. The records must have passed [`check_records`].
fn decode_records(bytes: &[u8], x: &mut Vec<f32>, y: &mut Vec<f32>) {
    for record in bytes.chunks_exact(RECORD_BYTES) {
        y.push(record[0] as f32);
        // The record is already planar [3, 32, 32]: R plane, G plane, B plane.
        x.extend(record[1..].iter().map(|&b| b as f32 / 255.0));
    }
}

/// Reads one batch file into `(x, y)`: `x` is `[N, 3, 32, 32]` in [0, 1], `y` is `[N]`,
/// class indices stored as f32.
pub fn read_batch(path: impl AsRef<Path>) -> Result<(Tensor, Tensor)> {
    read_batches(&[path.as_ref().to_path_buf()])
}

/// Parses the bytes of one batch file (`path` names it in errors) into `(x, y)` as
/// [`read_batch`] does.
pub fn parse_batch(bytes: &[u8], path: &Path) -> Result<(Tensor, Tensor)> {
    let n = check_records(bytes, path)?;
    let mut x = Vec::with_capacity(n * IMAGE_BYTES);
    let mut y = Vec::with_capacity(n);
    decode_records(bytes, &mut x, &mut y);
    Ok((
        Tensor::from_vec(x, &[n, CHANNELS, HEIGHT, WIDTH]),
        Tensor::from_vec(y, &[n]),
    ))
}

/// Reads batch files one after another into one `(x, y)` pair (see [`read_batch`]).
pub fn read_batches(paths: &[PathBuf]) -> Result<(Tensor, Tensor)> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let n = check_records(&bytes, path)?;
        x.reserve(n * IMAGE_BYTES);
        y.reserve(n);
        decode_records(&bytes, &mut x, &mut y);
    }
    let n = y.len();
    Ok((
        Tensor::from_vec(x, &[n, CHANNELS, HEIGHT, WIDTH]),
        Tensor::from_vec(y, &[n]),
    ))
}

/// The folder holding all six batch files: `dir` itself, else `dir/cifar-10-batches-bin`.
pub fn find_batches_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join(SUBDIR)]
        .into_iter()
        .find(|d| missing_files(d).is_empty())
}

/// The batch files `dir` lacks.
fn missing_files(dir: &Path) -> Vec<&'static str> {
    ALL_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect()
}

/// Loads CIFAR-10 from `dir` (the six batch files directly in it, or in its
/// `cifar-10-batches-bin/` folder). If neither folder holds all six, the error lists the
/// files missing from the more complete one.
pub fn load_cifar10(dir: impl AsRef<Path>) -> Result<Dataset> {
    let dir = dir.as_ref();
    let Some(found) = find_batches_dir(dir) else {
        let sub = dir.join(SUBDIR);
        let (direct, inside) = (missing_files(dir), missing_files(&sub));
        let (at, missing) = if inside.len() < direct.len() {
            (sub.as_path(), inside)
        } else {
            (dir, direct)
        };
        return Err(Error::io(
            at,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "CIFAR-10 batch files missing: {} (looked in {} and in its {SUBDIR}/ \
                     folder)",
                    missing.join(", "),
                    dir.display()
                ),
            ),
        ));
    };
    let train: Vec<PathBuf> = TRAIN_FILES.iter().map(|f| found.join(f)).collect();
    let (x_train, y_train) = read_batches(&train)?;
    let (x_test, y_test) = read_batch(found.join(TEST_FILE))?;
    Ok(Dataset {
        x_train,
        y_train,
        x_test,
        y_test,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        name: NAME.to_string(),
    })
}

/// The MD5 the downloaded archive must have: [`ARCHIVE_MD5`], or `NABLA_CIFAR10_MD5` when
/// it is set together with `NABLA_MIRROR` (see the module docs).
pub fn expected_archive_md5() -> Result<ExpectedMd5> {
    resolve_md5(
        std::env::var(MD5_ENV).ok().as_deref(),
        download::mirror_overridden(),
    )
}

/// The MD5 an archive is checked against, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedMd5 {
    /// 32 lower-case hex digits.
    pub md5: String,
    /// Whether it came from `NABLA_CIFAR10_MD5` rather than being the upstream one.
    pub overridden: bool,
}

impl ExpectedMd5 {
    /// The upstream MD5.
    pub fn upstream() -> ExpectedMd5 {
        ExpectedMd5 {
            md5: ARCHIVE_MD5.to_string(),
            overridden: false,
        }
    }

    /// An MD5 given by the caller (a test, a repackaging mirror): 32 hex digits.
    pub fn custom(md5: &str) -> Result<ExpectedMd5> {
        let md5 = md5.trim();
        if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "\"{md5}\" is not an MD5 (32 hex digits)"
            )));
        }
        Ok(ExpectedMd5 {
            md5: md5.to_ascii_lowercase(),
            overridden: true,
        })
    }

    fn source(&self) -> String {
        if self.overridden {
            format!("the expected {} (from {MD5_ENV})", self.md5)
        } else {
            format!("the upstream {}", self.md5)
        }
    }
}

fn resolve_md5(md5_env: Option<&str>, mirror_set: bool) -> Result<ExpectedMd5> {
    match md5_env.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(ExpectedMd5::upstream()),
        Some(_) if !mirror_set => Err(Error::invalid(format!(
            "{MD5_ENV} is set but {} is not: the built-in mirror serves the upstream \
             archive, which is always checked against {ARCHIVE_MD5}; unset {MD5_ENV}, or \
             set {} to the mirror whose archive it describes",
            download::MIRROR_ENV,
            download::MIRROR_ENV
        ))),
        Some(v) => ExpectedMd5::custom(v).map_err(|e| Error::invalid(format!("{MD5_ENV}: {e}"))),
    }
}

/// Downloads the archive from the mirrors (see the module docs), checks it against
/// `expected`, and extracts the six batch files into `dir` (created if needed). On any
/// failure nothing is left in `dir`.
pub fn download_cifar10(dir: &Path, expected: &ExpectedMd5) -> Result<()> {
    let urls = download::mirror_urls(NAME, ARCHIVE, MIRRORS);
    let archive = download::fetch_verified(
        &format!("{NAME}/{ARCHIVE}"),
        &urls,
        &format!(
            "or extract {ARCHIVE} into {} yourself (the six .bin files, directly or in \
             {SUBDIR}/)",
            dir.display()
        ),
        |bytes| verify_archive(bytes, expected),
    )?;
    extract_archive(&archive, dir)
}

/// Checks the archive's MD5; the error (a `Download` one, so the next mirror is tried)
/// says what was computed and what was expected.
pub fn verify_archive(bytes: &[u8], expected: &ExpectedMd5) -> Result<()> {
    let md5 = download::md5_hex(bytes);
    if md5.eq_ignore_ascii_case(&expected.md5) {
        return Ok(());
    }
    Err(Error::Download(format!(
        "checksum mismatch for {ARCHIVE} ({} bytes): its MD5, {md5}, is not {}",
        bytes.len(),
        expected.source()
    )))
}

/// Extracts the six batch files from `archive` (the bytes of a `.tar.gz` laid out like
/// the upstream one; other members are ignored) into `dir`, created if needed. Every
/// file is checked as [`read_batch`] would and staged in a temporary file; only when all
/// six are there and valid are they renamed into place. On any error the temporary files
/// are removed and `dir` is left as it was.
pub fn extract_archive(archive: &[u8], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let bad = |msg: String| Error::Download(format!("{ARCHIVE}: {msg}"));
    let gz = flate2::read::MultiGzDecoder::new(archive).take(MAX_EXTRACTED_BYTES);
    let mut tar = tar::Archive::new(gz);
    // One slot per entry of ALL_FILES; dropping a staged file deletes it.
    let mut staged: Vec<Option<tempfile::NamedTempFile>> = ALL_FILES.iter().map(|_| None).collect();
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a gzip-compressed tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("unreadable archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        // Only the file name matters (`cifar-10-batches-bin/data_batch_1.bin` upstream);
        // the member's path is never used to write, so `../` in it is harmless.
        let path = entry
            .path()
            .map_err(|e| bad(format!("bad member name: {e}")))?
            .into_owned();
        let Some(slot) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| ALL_FILES.iter().position(|f| *f == n))
        else {
            continue;
        };
        let name = ALL_FILES[slot];
        if staged[slot].is_some() {
            return Err(bad(format!("it holds {name} twice")));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        check_records(&bytes, &path).map_err(|e| bad(e.to_string()))?;
        staged[slot] = Some(stage(dir, name, &bytes)?);
    }
    let missing: Vec<&str> = ALL_FILES
        .iter()
        .zip(&staged)
        .filter(|(_, s)| s.is_none())
        .map(|(f, _)| *f)
        .collect();
    if !missing.is_empty() {
        return Err(bad(format!(
            "the archive lacks {} (expected {SUBDIR}/{{{}}})",
            missing.join(", "),
            ALL_FILES.join(",")
        )));
    }
    for (name, tmp) in ALL_FILES.iter().zip(staged) {
        let dest = dir.join(name);
        let tmp = tmp.expect("every file is staged");
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
    }
    sync_dir(dir);
    Ok(())
}

/// Writes `bytes` to a synced temporary file in `dir` named after `name`.
fn stage(dir: &Path, name: &str, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{name}.");
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // tempfile creates files 0o600; ask for what a plain `File::create` would give.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io(tmp.path(), e))?;
    Ok(tmp)
}

/// Makes the renames durable (best effort, as in `formats::atomic`).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` records: record `i` has label `i % 10` and pixel bytes `(i + j) % 256`.
    fn records(n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * RECORD_BYTES);
        for i in 0..n {
            out.push((i % 10) as u8);
            out.extend((0..IMAGE_BYTES).map(|j| ((i + j) % 256) as u8));
        }
        out
    }

    /// Writes six small batch files into `dir`: `counts[k]` records in `ALL_FILES[k]`.
    fn write_batches(dir: &Path, counts: [usize; 6]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, n) in ALL_FILES.iter().zip(counts) {
            std::fs::write(dir.join(f), records(n)).unwrap();
        }
    }

    fn tar_gz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, bytes) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &bytes[..]).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    fn upstream_members(n: usize) -> Vec<(String, Vec<u8>)> {
        let mut m = vec![(format!("{SUBDIR}/batches.meta.txt"), b"airplane\n".to_vec())];
        m.extend(
            ALL_FILES
                .iter()
                .map(|f| (format!("{SUBDIR}/{f}"), records(n))),
        );
        m
    }

    fn as_refs(m: &[(String, Vec<u8>)]) -> Vec<(&str, Vec<u8>)> {
        m.iter().map(|(n, b)| (n.as_str(), b.clone())).collect()
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn reads_records_as_planar_unit_pixels() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data_batch_1.bin");
        std::fs::write(&path, records(3)).unwrap();
        let (x, y) = read_batch(&path).unwrap();
        assert_eq!(x.shape(), &[3, 3, 32, 32]);
        assert_eq!(y.data(), &[0., 1., 2.]);
        let d = x.data();
        // Record 1, red plane, first pixel: byte (1 + 0) -> 1/255.
        assert_eq!(d[IMAGE_BYTES], 1.0 / 255.0);
        // Record 0, green plane (offset 1024), pixel (row 0, col 5): byte 1029 % 256 = 5.
        assert_eq!(d[1024 + 5], 5.0 / 255.0);
        // Record 2, blue plane, last pixel: (2 + 3071) % 256 = 1.
        assert_eq!(d[3 * IMAGE_BYTES - 1], 1.0 / 255.0);
        assert!(d.iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn loads_a_folder_directly_or_in_the_upstream_subfolder() {
        let tmp = tempfile::tempdir().unwrap();
        let direct = tmp.path().join("direct");
        write_batches(&direct, [2, 3, 1, 1, 4, 5]);
        let ds = load_cifar10(&direct).unwrap();
        assert_eq!(ds.name, "cifar10");
        assert_eq!(ds.x_train.shape(), &[11, 3, 32, 32]);
        assert_eq!(ds.y_train.shape(), &[11]);
        assert_eq!(ds.x_test.shape(), &[5, 3, 32, 32]);
        // Batches are concatenated in order: labels 0,1 | 0,1,2 | 0 | 0 | 0,1,2,3.
        assert_eq!(
            ds.y_train.data(),
            &[0., 1., 0., 1., 2., 0., 0., 0., 1., 2., 3.]
        );
        assert_eq!(ds.y_test.data(), &[0., 1., 2., 3., 4.]);
        assert_eq!(ds.class_names, CLASS_NAMES);
        assert_eq!(ds.num_classes(), 10);

        let parent = tmp.path().join("parent");
        write_batches(&parent.join(SUBDIR), [1; 6]);
        assert_eq!(find_batches_dir(&parent), Some(parent.join(SUBDIR)));
        let ds = load_cifar10(&parent).unwrap();
        assert_eq!(ds.x_train.shape(), &[5, 3, 32, 32]);
        assert_eq!(ds.x_test.shape(), &[1, 3, 32, 32]);
    }

    #[test]
    fn truncated_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        write_batches(tmp.path(), [1; 6]);
        let mut bytes = records(5);
        bytes.truncate(12345);
        std::fs::write(tmp.path().join("data_batch_3.bin"), bytes).unwrap();
        let msg = load_cifar10(tmp.path()).unwrap_err().to_string();
        assert!(msg.contains("data_batch_3.bin: "), "{msg}");
        assert!(
            msg.contains("truncated: 12345 bytes is not a whole number of 3073-byte records"),
            "{msg}"
        );
    }

    #[test]
    fn label_out_of_range_names_file_and_record() {
        let tmp = tempfile::tempdir().unwrap();
        write_batches(tmp.path(), [1; 6]);
        let mut bytes = records(5);
        bytes[3 * RECORD_BYTES] = 10;
        std::fs::write(tmp.path().join(TEST_FILE), bytes).unwrap();
        let msg = load_cifar10(tmp.path()).unwrap_err().to_string();
        assert!(msg.contains("test_batch.bin: "), "{msg}");
        assert!(
            msg.contains("record 3 (byte offset 9219) has label 10; CIFAR-10 labels are 0..=9"),
            "{msg}"
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        write_batches(tmp.path(), [1; 6]);
        std::fs::write(tmp.path().join("data_batch_5.bin"), b"").unwrap();
        let msg = load_cifar10(tmp.path()).unwrap_err().to_string();
        assert!(msg.contains("data_batch_5.bin: empty file"), "{msg}");
    }

    #[test]
    fn missing_files_are_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let msg = load_cifar10(tmp.path()).unwrap_err().to_string();
        assert!(
            msg.contains(&format!("missing: {}", ALL_FILES.join(", "))),
            "{msg}"
        );

        // The more complete folder is the one reported.
        let sub = tmp.path().join(SUBDIR);
        write_batches(&sub, [1; 6]);
        std::fs::remove_file(sub.join("data_batch_2.bin")).unwrap();
        std::fs::remove_file(sub.join(TEST_FILE)).unwrap();
        let msg = load_cifar10(tmp.path()).unwrap_err().to_string();
        assert!(msg.contains(SUBDIR), "{msg}");
        assert!(
            msg.contains("CIFAR-10 batch files missing: data_batch_2.bin, test_batch.bin"),
            "{msg}"
        );
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    }

    #[test]
    fn extracts_the_six_files_and_ignores_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache").join("cifar10");
        let members = upstream_members(2);
        extract_archive(&tar_gz(&as_refs(&members)), &dir).unwrap();
        let mut expected: Vec<String> = ALL_FILES.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(names_in(&dir), expected);
        assert_eq!(std::fs::read(dir.join(TEST_FILE)).unwrap(), records(2));
        assert_eq!(load_cifar10(&dir).unwrap().x_train.shape()[0], 10);
    }

    #[test]
    fn bad_archives_leave_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cifar10");
        let mut members = upstream_members(1);

        // A member missing.
        members.retain(|(n, _)| !n.ends_with("data_batch_4.bin"));
        let msg = extract_archive(&tar_gz(&as_refs(&members)), &dir)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("the archive lacks data_batch_4.bin"), "{msg}");
        assert_eq!(names_in(&dir), Vec::<String>::new());

        // A truncated member, after good ones were staged.
        members.push((
            format!("{SUBDIR}/data_batch_4.bin"),
            records(2)[..100].to_vec(),
        ));
        let msg = extract_archive(&tar_gz(&as_refs(&members)), &dir)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("data_batch_4.bin: truncated: 100 bytes"),
            "{msg}"
        );
        assert_eq!(names_in(&dir), Vec::<String>::new());

        // Not gzip at all, and gzip cut short.
        let msg = extract_archive(b"<html>moved</html>", &dir)
            .unwrap_err()
            .to_string();
        assert!(
            msg.starts_with("download failed: cifar-10-binary.tar.gz"),
            "{msg}"
        );
        let good = tar_gz(&as_refs(&upstream_members(1)));
        assert!(extract_archive(&good[..good.len() / 2], &dir).is_err());
        assert_eq!(names_in(&dir), Vec::<String>::new());
    }

    #[test]
    fn verify_names_both_sums() {
        let bytes = b"not the archive";
        let msg = verify_archive(bytes, &ExpectedMd5::upstream())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("checksum mismatch for cifar-10-binary.tar.gz"),
            "{msg}"
        );
        assert!(msg.contains(&download::md5_hex(bytes)), "{msg}");
        assert!(
            msg.contains(&format!("the upstream {ARCHIVE_MD5}")),
            "{msg}"
        );

        let custom = ExpectedMd5::custom(&download::md5_hex(bytes).to_uppercase()).unwrap();
        verify_archive(bytes, &custom).unwrap();
        let msg = verify_archive(b"other", &custom).unwrap_err().to_string();
        assert!(msg.contains("(from NABLA_CIFAR10_MD5)"), "{msg}");
    }

    #[test]
    fn md5_override_needs_a_mirror_and_a_real_md5() {
        assert_eq!(resolve_md5(None, false).unwrap(), ExpectedMd5::upstream());
        assert_eq!(
            resolve_md5(Some(" "), true).unwrap(),
            ExpectedMd5::upstream()
        );
        let sum = "0123456789ABCDEF0123456789abcdef";
        let got = resolve_md5(Some(sum), true).unwrap();
        assert_eq!(got.md5, sum.to_ascii_lowercase());
        assert!(got.overridden);
        let msg = resolve_md5(Some(sum), false).unwrap_err().to_string();
        assert!(
            msg.contains("NABLA_CIFAR10_MD5 is set but NABLA_MIRROR is not"),
            "{msg}"
        );
        let msg = resolve_md5(Some("abc"), true).unwrap_err().to_string();
        assert!(
            msg.contains("NABLA_CIFAR10_MD5: \"abc\" is not an MD5"),
            "{msg}"
        );
    }
}
