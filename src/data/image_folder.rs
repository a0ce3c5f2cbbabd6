//! A folder of images sorted into one sub-folder per class, as a labelled data set (what
//! Keras' `image_dataset_from_directory` and torchvision's `ImageFolder` read):
//!
//! ```text
//! flowers/
//!   daisy/   001.jpg 002.png ...
//!   rose/    a.jpg sub/b.jpg ...
//!   tulip/   ...
//! ```
//!
//! Decisions:
//! - Classes are the sub-folders' names, sorted (byte order, as Python's `sorted`), and
//!   numbered from 0 in that order. Inside a class, images are found at any depth and
//!   taken in path order, so loading the same folder twice gives the same tensors.
//! - Images are the files named `*.png`, `*.jpg` or `*.jpeg` (any case), decoded, converted
//!   to grey or RGB, resized to `height x width` and scaled to [0, 1] by
//!   [`super::image::load_image`]; their sizes may differ. Other files (`notes.txt`,
//!   `.DS_Store`) and hidden entries (names starting with `.`) are ignored without a word,
//!   as are files directly in the top folder. Symbolic links to files and to class folders
//!   are followed; links to folders inside a class are not (no cycles).
//! - An image file that cannot be decoded (corrupt, truncated, not really an image) is
//!   skipped: a warning naming it goes to stderr and it is listed in
//!   [`ImageFolder::skipped`]. One bad file among thousands should not stop a run; the
//!   list lets a caller be strict anyway (`if !f.skipped.is_empty() { ... }`). A file
//!   that cannot be read at all (permissions, I/O error) is still an error.
//! - A class folder without images, a class whose images were all skipped, and a folder
//!   without class sub-folders are errors naming the folder: a class with no images
//!   cannot be learned.
//!
//! ```no_run
//! # fn main() -> nabla::Result<()> {
//! use nabla::data::load_image_folder;
//! let folder = load_image_folder("flowers", 3, 64, 64)?;
//! println!("{} images of {:?}", folder.len(), folder.class_names);
//! let ds = folder.split(0.2)?; // the last 20% of each class becomes the test set
//! assert_eq!(ds.x_train.shape()[1..], [3, 64, 64]);
//! # Ok(())
//! # }
//! ```

use super::batches::validation_split_index;
use super::datasets::Dataset;
use super::image::{check_options, load_image, ImageOptions};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// File extensions read as images (compared without regard to case).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// The images of a class-per-folder tree, in class order.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// The images, `[N, C, H, W]`, values in [0, 1]; class 0's first, then class 1's...
    pub x: Tensor,
    /// Labels, `[N]`, class indices stored as f32.
    pub y: Tensor,
    /// The class folders' names, sorted; a label indexes this.
    pub class_names: Vec<String>,
    /// Image files that could not be decoded and were left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// The top folder's name, used as the data set's name by [`ImageFolder::split`].
    pub name: String,
}

impl ImageFolder {
    /// Number of images loaded.
    pub fn len(&self) -> usize {
        self.y.numel()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Splits the images into a train/test [`Dataset`]: in each class, the last
    /// `test_fraction` of its images (in path order) is the test set, with the same
    /// arithmetic as Keras' `validation_split` (`train = floor(n * (1 - fraction))`), so
    /// every class appears in both parts. Deterministic: no shuffling.
    ///
    /// Rows are then ordered round-robin over the classes (class 0, 1, 2, 0, 1, 2, ...)
    /// instead of class by class, so that a later `validation_split`, which takes the
    /// last rows, still sees every class rather than only the last one.
    ///
    /// `test_fraction` must be in (0, 1) and leave each class at least one training image;
    /// the error names the first class that has too few.
    pub fn split(&self, test_fraction: f64) -> Result<Dataset> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::invalid(format!(
                "test_fraction must be between 0 and 1 (exclusive), got {test_fraction}"
            )));
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); self.num_classes()];
        for (i, &l) in self.y.data().iter().enumerate() {
            by_class[l as usize].push(i);
        }
        let mut train = Vec::with_capacity(by_class.len());
        let mut test = Vec::with_capacity(by_class.len());
        for (k, rows) in by_class.iter().enumerate() {
            let cut = validation_split_index(rows.len(), test_fraction).map_err(|_| {
                Error::invalid(format!(
                    "class \"{}\" has {} image(s), too few to keep at least one for training \
                     and one for testing with test_fraction={test_fraction}",
                    self.class_names[k],
                    rows.len()
                ))
            })?;
            train.push(&rows[..cut]);
            test.push(&rows[cut..]);
        }
        let (train, test) = (round_robin(&train), round_robin(&test));
        Ok(Dataset {
            x_train: self.x.gather_rows(&train),
            y_train: self.y.gather_rows(&train),
            x_test: self.x.gather_rows(&test),
            y_test: self.y.gather_rows(&test),
            class_names: self.class_names.clone(),
            name: self.name.clone(),
        })
    }
}

/// The rows of all lists, taking one from each list in turn until all are used.
fn round_robin(lists: &[&[usize]]) -> Vec<usize> {
    let longest = lists.iter().map(|l| l.len()).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| lists.iter().filter_map(move |l| l.get(i).copied()))
        .collect()
}

/// Loads every image under the class sub-folders of `dir` as `[N, channels, height,
/// width]` in [0, 1], with labels from the sorted sub-folder names (see the module docs
/// for what is read, skipped and refused).
pub fn load_image_folder(
    dir: impl AsRef<Path>,
    channels: usize,
    height: usize,
    width: usize,
) -> Result<ImageFolder> {
    let dir = dir.as_ref();
    let opts = ImageOptions::new(channels, height, width);
    check_options(&opts)?;
    if !dir.is_dir() {
        return Err(Error::invalid(format!(
            "{}: not a directory; expected a folder with one sub-folder of images per class",
            dir.display()
        )));
    }

    let mut class_dirs: Vec<(String, PathBuf)> = Vec::new();
    let mut loose_images = 0;
    for entry in read_dir_sorted(dir)? {
        let name = entry.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if entry.is_dir() {
            class_dirs.push((name.into_owned(), entry.clone()));
        } else if is_image_name(&entry) {
            loose_images += 1;
        }
    }
    if class_dirs.is_empty() {
        let found = if loose_images > 0 {
            format!(" (it holds {loose_images} image(s) directly; move them into class folders)")
        } else {
            String::new()
        };
        return Err(Error::format(
            dir,
            format!(
                "no class sub-folders: expected one sub-folder of images per class, such as \
                 {0}/cat/1.png and {0}/dog/1.jpg{found}",
                dir.display()
            ),
        ));
    }
    // `read_dir_sorted` sorts by path, and all share `dir`, so names are sorted too.

    // (class, file) for every image, class by class, in path order.
    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    for (k, (name, class_dir)) in class_dirs.iter().enumerate() {
        let before = files.len();
        collect_images(class_dir, &mut |p| files.push((k, p)))?;
        if files.len() == before {
            return Err(Error::format(
                class_dir,
                format!(
                    "class folder \"{name}\" holds no PNG or JPEG images; a class with no \
                     images cannot be learned (add images or remove the folder)"
                ),
            ));
        }
    }

    // Decoding dominates; it is independent per file. The results keep the files' order.
    let decoded: Vec<Result<Tensor>> = files
        .par_iter()
        .map(|(_, path)| load_image(path, &opts))
        .collect();

    let sample = channels * height * width;
    let mut x = Vec::with_capacity(files.len() * sample);
    let mut y = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    let mut per_class = vec![(0usize, 0usize); class_dirs.len()]; // (loaded, skipped)
    for ((k, path), result) in files.iter().zip(decoded) {
        match result {
            Ok(t) => {
                x.extend_from_slice(t.data());
                y.push(*k as f32);
                per_class[*k].0 += 1;
            }
            Err(Error::Format { msg, .. }) => {
                eprintln!("warning: skipping {}: {msg}", path.display());
                skipped.push((path.clone(), msg));
                per_class[*k].1 += 1;
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(k) = per_class.iter().position(|&(loaded, _)| loaded == 0) {
        let (name, class_dir) = &class_dirs[k];
        return Err(Error::format(
            class_dir,
            format!(
                "class folder \"{name}\" has no readable images: all {} were skipped as \
                 broken (see the warnings above); a class with no images cannot be learned",
                per_class[k].1
            ),
        ));
    }

    let n = y.len();
    Ok(ImageFolder {
        x: Tensor::from_vec(x, &[n, channels, height, width]),
        y: Tensor::from_vec(y, &[n]),
        class_names: class_dirs.into_iter().map(|(name, _)| name).collect(),
        skipped,
        name: dir
            .canonicalize()
            .ok()
            .as_deref()
            .unwrap_or(dir)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "images".to_string()),
    })
}

/// The entries of `dir`, sorted by path.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        paths.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    paths.sort();
    Ok(paths)
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Calls `found` with every image file under `dir`, at any depth, in path order.
fn collect_images(dir: &Path, found: &mut dyn FnMut(PathBuf)) -> Result<()> {
    for path in read_dir_sorted(dir)? {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        // `symlink_metadata` does not follow links: a linked folder is not entered.
        let is_real_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if is_real_dir {
            collect_images(&path, found)?;
        } else if path.is_file() && is_image_name(&path) {
            found(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn solid_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        RgbImage::from_pixel(w, h, Rgb(rgb)).save(path).unwrap();
    }

    /// cat: 3 images (one JPEG, one nested), dog: 2 images; plus files to ignore.
    fn write_tree(root: &Path) {
        solid_png(&root.join("dog/b.png"), 10, 7, [0, 0, 255]);
        solid_png(&root.join("dog/a.png"), 3, 30, [0, 255, 0]);
        solid_png(&root.join("cat/1.png"), 16, 16, [255, 0, 0]);
        RgbImage::from_pixel(20, 12, Rgb([255, 255, 255]))
            .save(root.join("cat/2.JPG"))
            .unwrap();
        std::fs::create_dir_all(root.join("cat/more")).unwrap();
        GrayImage::from_pixel(5, 5, Luma([0]))
            .save(root.join("cat/more/3.png"))
            .unwrap();
        std::fs::write(root.join("cat/notes.txt"), "not an image").unwrap();
        std::fs::write(root.join("dog/.DS_Store"), [0u8, 1, 2]).unwrap();
        std::fs::write(root.join("README.md"), "two classes").unwrap();
        solid_png(&root.join(".thumbs/x.png"), 2, 2, [1, 2, 3]);
    }

    /// The mean of channel `c` of sample `i` of `x` ([N, C, H, W]).
    fn mean_of(x: &Tensor, i: usize, c: usize) -> f32 {
        let s = &x.shape()[1..];
        let hw = s[1] * s[2];
        let start = i * s[0] * hw + c * hw;
        x.data()[start..start + hw].iter().sum::<f32>() / hw as f32
    }

    #[test]
    fn loads_classes_in_sorted_order_and_resizes_mixed_sizes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("pets");
        write_tree(&root);
        let f = load_image_folder(&root, 3, 8, 6).unwrap();
        assert_eq!(f.class_names, vec!["cat", "dog"]);
        assert_eq!(f.name, "pets");
        assert_eq!(f.x.shape(), &[5, 3, 8, 6]);
        assert_eq!(f.y.data(), &[0., 0., 0., 1., 1.]);
        assert!(f.skipped.is_empty());
        // Path order within a class: cat/1.png (red), cat/2.JPG (white), cat/more/3.png
        // (black); dog/a.png (green), dog/b.png (blue).
        let rgb = |i| [0, 1, 2].map(|c| mean_of(&f.x, i, c).round());
        assert_eq!(rgb(0), [1.0, 0.0, 0.0]);
        assert_eq!(rgb(1), [1.0, 1.0, 1.0]);
        assert_eq!(rgb(2), [0.0, 0.0, 0.0]);
        assert_eq!(rgb(3), [0.0, 1.0, 0.0]);
        assert_eq!(rgb(4), [0.0, 0.0, 1.0]);

        let grey = load_image_folder(&root, 1, 4, 4).unwrap();
        assert_eq!(grey.x.shape(), &[5, 1, 4, 4]);
        assert!(load_image_folder(&root, 2, 4, 4).is_err());
    }

    #[test]
    fn broken_images_are_skipped_and_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        write_tree(tmp.path());
        let broken = tmp.path().join("dog/c.png");
        std::fs::write(&broken, b"\x89PNG\r\n\x1a\n but then nothing").unwrap();
        let empty = tmp.path().join("cat/0.jpeg");
        std::fs::write(&empty, b"").unwrap();
        let f = load_image_folder(tmp.path(), 3, 4, 4).unwrap();
        assert_eq!(f.len(), 5);
        assert_eq!(f.y.data(), &[0., 0., 0., 1., 1.]);
        let paths: Vec<&PathBuf> = f.skipped.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, vec![&empty, &broken]);
        assert!(f.skipped[1].1.contains("PNG or JPEG"), "{:?}", f.skipped);
    }

    #[test]
    fn a_class_without_images_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        write_tree(tmp.path());
        std::fs::create_dir_all(tmp.path().join("bird/empty")).unwrap();
        std::fs::write(tmp.path().join("bird/readme.txt"), "todo").unwrap();
        let msg = load_image_folder(tmp.path(), 3, 4, 4)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!("{}", tmp.path().join("bird").display())),
            "{msg}"
        );
        assert!(
            msg.contains("class folder \"bird\" holds no PNG or JPEG images"),
            "{msg}"
        );
        assert!(msg.contains("cannot be learned"), "{msg}");

        // Only broken images: also empty, and the message says why.
        std::fs::write(tmp.path().join("bird/x.png"), b"garbage").unwrap();
        let msg = load_image_folder(tmp.path(), 3, 4, 4)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("class folder \"bird\" has no readable images"),
            "{msg}"
        );
        assert!(msg.contains("all 1 were skipped"), "{msg}");
    }

    #[test]
    fn a_folder_without_class_folders_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        solid_png(&tmp.path().join("loose.png"), 4, 4, [9, 9, 9]);
        std::fs::create_dir_all(tmp.path().join(".git")).unwrap();
        let msg = load_image_folder(tmp.path(), 3, 4, 4)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no class sub-folders"), "{msg}");
        assert!(msg.contains("holds 1 image(s) directly"), "{msg}");
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");

        let missing = tmp.path().join("nope");
        let msg = load_image_folder(&missing, 3, 4, 4)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("nope: not a directory"), "{msg}");
    }

    #[test]
    fn split_takes_the_last_fraction_of_each_class() {
        let tmp = tempfile::tempdir().unwrap();
        // a: 5 images, b: 3 images; grey level encodes the index within the class.
        for (class, n) in [("a", 5u8), ("b", 3u8)] {
            for i in 0..n {
                let v = if class == "a" { i * 10 } else { 200 + i * 10 };
                let p = tmp.path().join(class).join(format!("{i}.png"));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                GrayImage::from_pixel(2, 2, Luma([v])).save(&p).unwrap();
            }
        }
        let f = load_image_folder(tmp.path(), 1, 1, 1).unwrap();
        let ds = f.split(0.4).unwrap();
        // a: floor(5 * 0.6) = 3 train, 2 test; b: floor(3 * 0.6) = 1 train, 2 test.
        let level = |t: &Tensor| -> Vec<u8> {
            t.data().iter().map(|v| (v * 255.0).round() as u8).collect()
        };
        // Round-robin over classes: a0 b0 a1 a2.
        assert_eq!(level(&ds.x_train), vec![0, 200, 10, 20]);
        assert_eq!(ds.y_train.data(), &[0., 1., 0., 0.]);
        assert_eq!(level(&ds.x_test), vec![30, 210, 40, 220]);
        assert_eq!(ds.y_test.data(), &[0., 1., 0., 1.]);
        assert_eq!(ds.class_names, vec!["a", "b"]);
        assert_eq!(ds.x_test.shape(), &[4, 1, 1, 1]);
        // Deterministic.
        assert_eq!(f.split(0.4).unwrap().y_train.data(), ds.y_train.data());

        let msg = f.split(0.7).unwrap_err().to_string();
        assert!(msg.contains("class \"b\" has 3 image(s), too few"), "{msg}");
        assert!(f.split(0.0).is_err());
        assert!(f.split(1.0).is_err());
    }
}
