//! Built-in data sets: `load_data("mnist")`, `load_data("fashion-mnist")`,
//! `load_data("cifar10")`, as in Keras.
//!
//! Where the files are looked for, in order (the first folder holding all of them wins):
//! 1. `$NABLA_DATA/<name>/`, a folder the user (or CI) provides;
//! 2. the cache, `$NABLA_CACHE/<name>/` if `NABLA_CACHE` is set, else
//!    `<user cache dir>/nabla/<name>/` (`~/.cache/nabla/mnist` on Linux);
//! 3. otherwise the missing files are downloaded into the cache (see [`super::download`]).
//!
//! In each folder the four standard IDX files of MNIST and Fashion-MNIST are accepted
//! gzip-compressed (`.gz`) or not; see [`super::idx`] for the checks made on their
//! contents. CIFAR-10 comes as six binary batch files, directly in the folder or in its
//! `cifar-10-batches-bin/` folder, and is downloaded as one archive; see
//! [`super::cifar10`].
//!
//! ```no_run
//! # fn main() -> nabla::Result<()> {
//! let ds = nabla::data::load_data("mnist")?;
//! assert_eq!(ds.x_train.shape(), &[60000, 1, 28, 28]);
//! # Ok(())
//! # }
//! ```

use super::batches::u8_to_unit;
use super::cifar10;
use super::download;
use super::idx::{read_idx, IdxArray};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Folder holding `<name>/` folders of data sets, looked at before the cache.
pub const DATA_ENV: &str = "NABLA_DATA";
/// Overrides the cache folder (`<cache>/<name>/`), where downloads go.
pub const CACHE_ENV: &str = "NABLA_CACHE";

/// The four files of an MNIST-style data set, without the optional `.gz`.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";
const FILES: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// Names accepted by [`load_data`] (also with `_` for `-` and in any case, so Keras'
/// `fashion_mnist` works, and with the aliases of [`ALIASES`]).
pub const KNOWN_DATASETS: &[&str] = &["mnist", "fashion-mnist", cifar10::NAME];

/// Other spellings of known names, `(alias, canonical name)`, after lower-casing and
/// `_` -> `-`.
pub const ALIASES: &[(&str, &str)] = &[("cifar-10", cifar10::NAME)];

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// A labelled image data set split into train and test parts.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Training images, `[N, C, H, W]` (`[N, 1, 28, 28]` for MNIST, `[N, 3, 32, 32]` for
    /// CIFAR-10), values in [0, 1].
    pub x_train: Tensor,
    /// Training labels, `[N]`, class indices stored as f32.
    pub y_train: Tensor,
    /// Test images, `[M, C, H, W]`, values in [0, 1].
    pub x_test: Tensor,
    /// Test labels, `[M]`, class indices stored as f32.
    pub y_test: Tensor,
    /// Human-readable name of each class, indexed by label.
    pub class_names: Vec<String>,
    /// The data set's name, e.g. `mnist`.
    pub name: String,
}

impl Dataset {
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
}

/// The canonical name of a known data set (`Fashion_MNIST` -> `fashion-mnist`,
/// `CIFAR-10` -> `cifar10`), or an error listing the known ones.
pub fn canonical_name(name: &str) -> Result<&'static str> {
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    KNOWN_DATASETS
        .iter()
        .copied()
        .find(|&k| k == wanted)
        .or_else(|| ALIASES.iter().find(|(a, _)| *a == wanted).map(|(_, k)| *k))
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown data set \"{name}\"; known data sets: {}",
                KNOWN_DATASETS.join(", ")
            ))
        })
}

/// Class names of a known data set, by canonical name.
pub fn class_names(name: &str) -> Option<Vec<String>> {
    match name {
        "mnist" => Some((0..10).map(|d| d.to_string()).collect()),
        "fashion-mnist" => Some(FASHION_CLASSES.iter().map(|s| s.to_string()).collect()),
        cifar10::NAME => Some(cifar10::CLASS_NAMES.iter().map(|s| s.to_string()).collect()),
        _ => None,
    }
}

/// Loads a built-in data set by name, from `$NABLA_DATA`, the cache, or the network (see
/// the module docs for the order).
pub fn load_data(name: &str) -> Result<Dataset> {
    let name = canonical_name(name)?;
    // Why $NABLA_DATA was not used, said if the cache and the download fail too.
    let mut not_used = None;
    if let Some(root) = env_dir(DATA_ENV) {
        match data_dir_problem(&root, name) {
            None => return load_named(&root.join(name), name),
            Some(why) => not_used = Some(format!("{DATA_ENV}={}: {why}", root.display())),
        }
    }
    let cache = cache_dir(name)?;
    if !is_complete(&cache, name) {
        // A failed download removes the folders it created, so no empty cache is left.
        let created: Vec<PathBuf> = cache
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        let downloaded = if name == cifar10::NAME {
            cifar10::expected_archive_md5().and_then(|md5| cifar10::download_cifar10(&cache, &md5))
        } else {
            download::download_dataset(name, &cache)
        };
        if let Err(e) = downloaded {
            for d in &created {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
            }
            return Err(match (not_used, e) {
                (Some(why), Error::Download(m)) => Error::Download(format!("{why}; then {m}")),
                (Some(why), Error::Io { path, source }) => Error::Io {
                    path: PathBuf::from(format!("{why}; then {}", path.display())),
                    source,
                },
                (_, e) => e,
            });
        }
    }
    load_named(&cache, name)
}

/// Why `root/<name>` cannot serve data set `name`, or `None` when it can: `root` missing,
/// not a folder or unreadable, no `<name>` folder in it, or a file missing there.
fn data_dir_problem(root: &Path, name: &str) -> Option<String> {
    match std::fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some("no such folder".into()),
        Err(e) => return Some(format!("cannot be read ({e})")),
        Ok(m) if !m.is_dir() => return Some("is a file, not a folder".into()),
        Ok(_) => {}
    }
    let dir = root.join(name);
    if let Err(e) = std::fs::read_dir(&dir) {
        return Some(match e.kind() {
            std::io::ErrorKind::NotFound => format!("has no folder {name}/"),
            _ => format!("{}: cannot be read ({e})", dir.display()),
        });
    }
    if is_complete(&dir, name) {
        return None;
    }
    if name == cifar10::NAME {
        return Some(format!(
            "{} holds no CIFAR-10 batch files (data_batch_1.bin ...)",
            dir.display()
        ));
    }
    let missing: Vec<String> = FILES
        .iter()
        .filter(|f| find_file(&dir, f).is_none())
        .map(|f| format!("{f}[.gz]"))
        .collect();
    Some(format!("{} lacks {}", dir.display(), missing.join(", ")))
}

/// Loads the data set found in `dir`. If the folder's name is a known data set
/// (`.../mnist`, `.../cifar10`), its files, name and class names are used. Otherwise a
/// folder holding the CIFAR-10 batch files (such as `cifar-10-batches-bin/`) is read as
/// CIFAR-10, and any other as four IDX files: the data set is named after the folder and
/// its classes are `"0"`, `"1"`, ... up to the largest label.
pub fn load_data_from(dir: impl AsRef<Path>) -> Result<Dataset> {
    let dir = dir.as_ref();
    let folder = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match canonical_name(&folder) {
        Ok(name) => load_named(dir, name),
        Err(_) if cifar10::find_batches_dir(dir).is_some() => cifar10::load_cifar10(dir),
        Err(_) => load_dir(dir, &folder, None),
    }
}

/// The cache folder of a data set: `$NABLA_CACHE/<name>` or `<user cache>/nabla/<name>`.
pub fn cache_dir(name: &str) -> Result<PathBuf> {
    if let Some(dir) = env_dir(CACHE_ENV) {
        return Ok(dir.join(name));
    }
    dirs::cache_dir()
        .map(|d| d.join("nabla").join(name))
        .ok_or_else(|| {
            Error::invalid(format!(
                "no user cache directory on this system; set {CACHE_ENV} (where to download \
                 data sets) or {DATA_ENV} (where they already are)"
            ))
        })
}

/// The path of data set file `stem` in `dir`: `<stem>.gz` if present, else `<stem>`.
pub fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Whether `dir` holds every file of data set `name`.
fn is_complete(dir: &Path, name: &str) -> bool {
    if name == cifar10::NAME {
        cifar10::find_batches_dir(dir).is_some()
    } else {
        FILES.iter().all(|f| find_file(dir, f).is_some())
    }
}

/// A path from an environment variable; unset and empty are the same.
fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn load_named(dir: &Path, name: &str) -> Result<Dataset> {
    if name == cifar10::NAME {
        return cifar10::load_cifar10(dir);
    }
    load_dir(dir, name, class_names(name))
}

fn load_dir(dir: &Path, name: &str, class_names: Option<Vec<String>>) -> Result<Dataset> {
    let path = |stem: &str| {
        find_file(dir, stem).ok_or_else(|| {
            Error::io(
                dir.join(format!("{stem}[.gz]")),
                std::io::Error::new(std::io::ErrorKind::NotFound, "data set file not found"),
            )
        })
    };
    let (x_train, y_train) = load_split(&path(TRAIN_IMAGES)?, &path(TRAIN_LABELS)?)?;
    let (x_test, y_test) = load_split(&path(TEST_IMAGES)?, &path(TEST_LABELS)?)?;
    if x_train.shape()[1..] != x_test.shape()[1..] {
        return Err(Error::format(
            dir,
            format!(
                "train images are {:?} but test images are {:?}",
                &x_train.shape()[2..],
                &x_test.shape()[2..]
            ),
        ));
    }

    let class_names = match class_names {
        Some(c) => c,
        None => {
            let max = y_train
                .data()
                .iter()
                .chain(y_test.data())
                .fold(0f32, |a, &b| a.max(b));
            let n = if y_train.numel() + y_test.numel() == 0 {
                0
            } else {
                max as usize + 1
            };
            (0..n).map(|i| i.to_string()).collect()
        }
    };
    for (labels, stem) in [(&y_train, TRAIN_LABELS), (&y_test, TEST_LABELS)] {
        if let Some((i, &l)) = labels
            .data()
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= class_names.len())
        {
            return Err(Error::format(
                path(stem)?,
                format!(
                    "label {l} at index {i} is out of range for {name} ({} classes)",
                    class_names.len()
                ),
            ));
        }
    }

    Ok(Dataset {
        x_train,
        y_train,
        x_test,
        y_test,
        class_names,
        name: name.to_string(),
    })
}

/// Reads one images/labels pair: images `[N, H, W]` become `[N, 1, H, W]` in [0, 1],
/// labels `[N]` become f32 class indices.
fn load_split(images_path: &Path, labels_path: &Path) -> Result<(Tensor, Tensor)> {
    let images = read_idx(images_path)?;
    let labels = read_idx(labels_path)?;
    let (n, h, w) = match images.dims[..] {
        [n, h, w] => (n, h, w),
        _ => {
            return Err(Error::format(
                images_path,
                format!(
                    "expected images with 3 dimensions [count, height, width], got {:?}",
                    images.dims
                ),
            ))
        }
    };
    if labels.dims.len() != 1 {
        return Err(Error::format(
            labels_path,
            format!(
                "expected labels with 1 dimension [count], got {:?}",
                labels.dims
            ),
        ));
    }
    if labels.dims[0] != n {
        return Err(Error::format(
            labels_path,
            format!(
                "{} labels but {} has {n} images",
                labels.dims[0],
                images_path.display()
            ),
        ));
    }
    let IdxArray { data: pixels, .. } = images;
    let x = Tensor::from_vec(u8_to_unit(&pixels), &[n, 1, h, w]);
    let y = Tensor::from_vec(labels.data.iter().map(|&l| l as f32).collect(), &[n]);
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::write_idx;

    /// Writes a tiny MNIST-shaped data set (4 train, 2 test images of 3x2) into `dir`.
    fn write_tiny(dir: &Path, train_labels: Vec<u8>) {
        std::fs::create_dir_all(dir).unwrap();
        let img =
            |n: usize| IdxArray::new(vec![n, 3, 2], (0..n * 6).map(|i| (i * 10) as u8).collect());
        let n_labels = train_labels.len();
        write_idx(
            dir.join("train-images-idx3-ubyte.gz"),
            &img(4).unwrap(),
            true,
        )
        .unwrap();
        write_idx(
            dir.join("train-labels-idx1-ubyte"),
            &IdxArray::new(vec![n_labels], train_labels).unwrap(),
            false,
        )
        .unwrap();
        write_idx(dir.join("t10k-images-idx3-ubyte"), &img(2).unwrap(), false).unwrap();
        write_idx(
            dir.join("t10k-labels-idx1-ubyte.gz"),
            &IdxArray::new(vec![2], vec![9, 0]).unwrap(),
            true,
        )
        .unwrap();
    }

    #[test]
    fn loads_a_folder_with_mixed_compression() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnist");
        write_tiny(&dir, vec![1, 2, 3, 4]);
        let ds = load_data_from(&dir).unwrap();
        assert_eq!(ds.name, "mnist");
        assert_eq!(ds.x_train.shape(), &[4, 1, 3, 2]);
        assert_eq!(ds.y_train.data(), &[1., 2., 3., 4.]);
        assert_eq!(ds.x_test.shape(), &[2, 1, 3, 2]);
        assert_eq!(ds.y_test.data(), &[9., 0.]);
        assert_eq!(ds.num_classes(), 10);
        assert_eq!(ds.x_train.data()[1], 10.0 / 255.0);
        assert!(ds.x_train.data().iter().all(|&v| (0.0..=1.0).contains(&v)));
    }

    #[test]
    fn unknown_folder_gets_numbered_classes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("my-digits");
        write_tiny(&dir, vec![1, 2, 3, 4]);
        let ds = load_data_from(&dir).unwrap();
        assert_eq!(ds.name, "my-digits");
        assert_eq!(ds.num_classes(), 10); // the test set has a 9
    }

    #[test]
    fn count_mismatch_names_the_labels_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnist");
        write_tiny(&dir, vec![1, 2, 3]);
        let msg = load_data_from(&dir).unwrap_err().to_string();
        assert!(msg.contains("train-labels-idx1-ubyte"), "{msg}");
        assert!(msg.contains("3 labels but"), "{msg}");
        assert!(msg.contains("has 4 images"), "{msg}");
    }

    #[test]
    fn label_out_of_range_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fashion-mnist");
        write_tiny(&dir, vec![1, 2, 10, 4]);
        let msg = load_data_from(&dir).unwrap_err().to_string();
        assert!(msg.contains("train-labels-idx1-ubyte"), "{msg}");
        assert!(msg.contains("label 10 at index 2"), "{msg}");
    }

    #[test]
    fn missing_file_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnist");
        write_tiny(&dir, vec![1, 2, 3, 4]);
        std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
        let msg = load_data_from(&dir).unwrap_err().to_string();
        assert!(msg.contains("t10k-images-idx3-ubyte"), "{msg}");
    }

    #[test]
    fn names_are_normalised_and_unknown_ones_listed() {
        assert_eq!(canonical_name("Fashion_MNIST").unwrap(), "fashion-mnist");
        assert_eq!(canonical_name("mnist").unwrap(), "mnist");
        let msg = load_data("cifar-100").unwrap_err().to_string();
        assert!(msg.contains("unknown data set \"cifar-100\""), "{msg}");
        assert!(msg.contains("mnist, fashion-mnist, cifar10"), "{msg}");
        assert_eq!(class_names("fashion-mnist").unwrap()[9], "Ankle boot");
        for alias in ["cifar10", "CIFAR-10", "Cifar_10", " cifar10 "] {
            assert_eq!(canonical_name(alias).unwrap(), "cifar10", "{alias}");
        }
        assert!(canonical_name("cifar").is_err());
        assert_eq!(class_names("cifar10").unwrap()[9], "truck");
        assert_eq!(class_names("mnist").unwrap()[3], "3");
    }

    #[test]
    fn cifar10_folders_are_recognised() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |dir: &Path| {
            std::fs::create_dir_all(dir).unwrap();
            for f in cifar10::ALL_FILES {
                let mut record = vec![7u8];
                record.extend(std::iter::repeat_n(255u8, cifar10::IMAGE_BYTES));
                std::fs::write(dir.join(f), record).unwrap();
            }
        };
        // Named after the data set, with the upstream subfolder inside.
        let named = tmp.path().join("cifar10");
        write(&named.join(cifar10::SUBDIR));
        let ds = load_data_from(&named).unwrap();
        assert_eq!((ds.name.as_str(), ds.num_classes()), ("cifar10", 10));
        assert_eq!(ds.x_train.shape(), &[5, 3, 32, 32]);
        assert_eq!(ds.y_test.data(), &[7.0]);
        // The upstream folder itself, by its contents.
        let ds = load_data_from(named.join(cifar10::SUBDIR)).unwrap();
        assert_eq!(ds.class_names[7], "horse");
        assert!(is_complete(&named, "cifar10"));
        assert!(!is_complete(&named, "mnist"));
    }
}
