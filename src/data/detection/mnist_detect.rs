//! `mnist-detect`: a built-in detection data set made from MNIST, generated on first use
//! deterministically from a seed, cached as a YOLO folder, and read back through
//! [`super::yolo::read_yolo_folder`], so it doubles as a sample of that format.
//!
//! How a canvas is made (version 2 of the recipe; a change of recipe is a new version in
//! the cache path):
//! - A square canvas of `size x size` grey pixels (default 96), black background.
//! - 1 to 5 digits (uniform), each a random MNIST image of the split (train canvases from
//!   MNIST's train images, test canvases from its test images), drawn at a size of 12 to
//!   40 pixels (uniform): the size of the digit itself, the longer side of its ink box
//!   (MNIST's ink fills about 20 of its 28 pixels, so the 28x28 image is scaled to a
//!   square of about 1.4 times the size; a thin digit whose square would outgrow the
//!   canvas is scaled to the canvas and comes out a little smaller). Scaling is exact area
//!   averaging in integers (each output pixel is the mean of the source area it covers,
//!   rounded half up), then the digit is placed at a
//!   random position where the whole scaled square fits. Overlapping digits are merged by
//!   the brighter pixel (max), as strokes drawn on top of each other look.
//! - A digit's box is the tight box of its ink after scaling: the pixels above
//!   [`INK_THRESHOLD`] (corners, `[x1, x2)` continuous coordinates as in [`BBox`]); its
//!   class is the digit.
//! - The overlap rule, so every digit stays findable: a new digit's box may overlap an
//!   earlier one with IoU at most [`MAX_IOU`], and their intersection may cover at most
//!   [`MAX_COVER`] of the smaller box (a small digit inside a big one's box has a small IoU
//!   but is hidden by its strokes). A position is drawn up to [`PLACEMENT_TRIES`] times;
//!   a digit that finds none is left out, so a canvas holds fewer digits than drawn when
//!   it is crowded (never fewer than one: the first always fits).
//!
//! Where it is kept (see [`super::super::datasets`] for `NABLA_DATA` and the cache):
//! `<root>/v2-seed<S>-<W>x<H>/<split>-<N>/` with `images/000001.png ...`,
//! `labels/000001.txt ...` (`class cx cy w h`, normalised), `classes.txt` (`0` to `9`)
//! and `manifest.json` (the options and counts). A complete set found under
//! `$NABLA_DATA/mnist-detect/` is used as it is; otherwise `<root>` is
//! [`MnistDetectOptions::cache_dir`] or the cache (`$NABLA_CACHE/mnist-detect`, else
//! `~/.cache/nabla/mnist-detect`). A split is written into a temporary sibling
//! `.<split>-<N>.partial` and renamed into place when complete (the manifest is written
//! last), so a half-written set is never read; a leftover temporary folder (an
//! interrupted run) is removed and the split generated again. Two processes generating
//! the same split at the same moment is not supported (one of them fails with an I/O
//! error naming the file; running it again reads the other's set).
//!
//! ```no_run
//! # fn main() -> nabla::Result<()> {
//! use nabla::data::detection::{load_detection_images, mnist_detect, MnistDetectOptions, Split};
//! let test = mnist_detect(Split::Test, &MnistDetectOptions::default())?;
//! let x = load_detection_images(&test, 1)?; // [2000, 1, 96, 96] in [0, 1]
//! assert_eq!(x.shape(), &[2000, 1, 96, 96]);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use super::yolo::read_yolo_folder;
use crate::data::datasets::{cache_dir, load_data, DATA_ENV};
use crate::detection::{iou, BBox, DetectionDataset};
use crate::engine::Rng;
use crate::error::{Error, Result};

/// The data set's name (its folder under the data directory and the cache).
pub const NAME: &str = "mnist-detect";
/// The recipe's version, part of the cache path.
pub const VERSION: u32 = 2;
/// A pixel is ink when its value (0-255) is above this (a quarter of full white).
pub const INK_THRESHOLD: u8 = 64;
/// Digits per canvas, drawn uniformly in this range (inclusive).
pub const DIGITS: (usize, usize) = (1, 5);
/// A digit's size in pixels (the longer side of its ink box), uniformly in this range
/// (inclusive).
pub const SIDES: (usize, usize) = (12, 40);
/// The largest IoU allowed between two digits' boxes.
pub const MAX_IOU: f64 = 0.3;
/// The largest fraction of the smaller box two digits' boxes may share.
pub const MAX_COVER: f64 = 0.5;
/// Positions tried for one digit before it is left out.
pub const PLACEMENT_TRIES: usize = 100;
/// The smallest canvas side (a 40-pixel digit must leave room for others).
pub const MIN_SIZE: usize = 96;
/// The largest canvas side accepted.
pub const MAX_SIZE: usize = 2048;
/// The most canvases in one split.
pub const MAX_IMAGES: usize = 1_000_000;
/// The side of an MNIST image.
const MNIST_SIDE: usize = 28;

/// The two parts of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// What to generate and where to keep it.
#[derive(Clone, Debug, PartialEq)]
pub struct MnistDetectOptions {
    /// Fixes every canvas of both splits.
    pub seed: u64,
    /// The canvas side in pixels (square), at least [`MIN_SIZE`].
    pub size: usize,
    /// Canvases in the train split.
    pub train: usize,
    /// Canvases in the test split.
    pub test: usize,
    /// Where to write (and look for) the generated sets; `None`: the cache.
    pub cache_dir: Option<PathBuf>,
}

impl Default for MnistDetectOptions {
    fn default() -> Self {
        MnistDetectOptions {
            seed: 0,
            size: 96,
            train: 10_000,
            test: 2_000,
            cache_dir: None,
        }
    }
}

impl MnistDetectOptions {
    fn check(&self) -> Result<()> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return Err(Error::invalid(format!(
                "{NAME}: the canvas size must be {MIN_SIZE} to {MAX_SIZE} pixels, not {}",
                self.size
            )));
        }
        for (split, n) in [("train", self.train), ("test", self.test)] {
            if !(1..=MAX_IMAGES).contains(&n) {
                return Err(Error::invalid(format!(
                    "{NAME}: the {split} split must have 1 to {MAX_IMAGES} canvases, not {n}"
                )));
            }
        }
        Ok(())
    }

    fn count(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Test => self.test,
        }
    }

    /// The folder of one split under a root: `v<VERSION>-seed<S>-<W>x<H>/<split>-<N>`.
    pub fn split_path(&self, root: &Path, split: Split) -> PathBuf {
        root.join(format!(
            "v{VERSION}-seed{}-{}x{}",
            self.seed, self.size, self.size
        ))
        .join(format!("{}-{}", split.name(), self.count(split)))
    }
}

/// The data set's split, generated into the cache first if it is not there.
pub fn mnist_detect(split: Split, opts: &MnistDetectOptions) -> Result<DetectionDataset> {
    let dir = mnist_detect_dir(split, opts)?;
    let ds = read_yolo_folder(&dir)?;
    let want = opts.count(split);
    if ds.images.len() != want {
        return Err(Error::format(
            &dir,
            format!(
                "{NAME}: the folder holds {} images, its manifest says {want}; delete the \
                 folder to generate it again",
                ds.images.len()
            ),
        ));
    }
    Ok(ds)
}

/// The folder of the split (a YOLO folder), generated first if needed.
pub fn mnist_detect_dir(split: Split, opts: &MnistDetectOptions) -> Result<PathBuf> {
    opts.check()?;
    // A set the user provides under $NABLA_DATA wins, as for the other data sets; only
    // without an explicit cache folder (tests name their own).
    if opts.cache_dir.is_none() {
        if let Some(data) = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()) {
            let dir = opts.split_path(&PathBuf::from(data).join(NAME), split);
            if dir.join(MANIFEST).is_file() {
                check_manifest(&dir, split, opts)?;
                return Ok(dir);
            }
        }
    }
    let root = match &opts.cache_dir {
        Some(d) => d.clone(),
        None => cache_dir(NAME)?,
    };
    let dir = opts.split_path(&root, split);
    if dir.exists() {
        check_manifest(&dir, split, opts)?;
        return Ok(dir);
    }
    let digits = mnist_digits(split)?;
    generate_split(&dir, split, opts, &digits)?;
    Ok(dir)
}

const MANIFEST: &str = "manifest.json";

fn manifest(split: Split, opts: &MnistDetectOptions, objects: usize) -> serde_json::Value {
    serde_json::json!({
        "dataset": NAME,
        "version": VERSION,
        "split": split.name(),
        "seed": opts.seed,
        "width": opts.size,
        "height": opts.size,
        "images": opts.count(split),
        "objects": objects,
        "digits": [DIGITS.0, DIGITS.1],
        "sides": [SIDES.0, SIDES.1],
        "ink_threshold": INK_THRESHOLD,
        "max_iou": MAX_IOU,
        "max_cover": MAX_COVER,
    })
}

/// Checks that a cached split's manifest is there and describes these options.
fn check_manifest(dir: &Path, split: Split, opts: &MnistDetectOptions) -> Result<()> {
    let path = dir.join(MANIFEST);
    let bad = |m: String| {
        Error::format(
            &path,
            format!("{NAME}: {m}; delete {} to generate it again", dir.display()),
        )
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| bad(format!("the cached set has no readable manifest ({e})")))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("the manifest is not JSON ({e})")))?;
    let want = manifest(split, opts, 0);
    for key in [
        "dataset", "version", "split", "seed", "width", "height", "images",
    ] {
        if v.get(key) != want.get(key) {
            return Err(bad(format!(
                "the manifest's \"{key}\" is {}, expected {}",
                v.get(key).unwrap_or(&serde_json::Value::Null),
                want[key]
            )));
        }
    }
    Ok(())
}

/// MNIST images of one split as bytes, with their labels.
pub struct MnistDigits {
    /// `[N, 28, 28]` bytes.
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl MnistDigits {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn image(&self, i: usize) -> &[u8] {
        let n = MNIST_SIDE * MNIST_SIDE;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// The MNIST images of a split through `load_data("mnist")` (`$NABLA_DATA`, the cache or
/// a download).
fn mnist_digits(split: Split) -> Result<MnistDigits> {
    let ds = load_data("mnist")?;
    let (x, y) = match split {
        Split::Train => (&ds.x_train, &ds.y_train),
        Split::Test => (&ds.x_test, &ds.y_test),
    };
    // The loader scaled bytes by 1/255; this is exact back to the bytes.
    let pixels = x
        .to_f32_vec()
        .iter()
        .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    let labels = y.to_f32_vec().iter().map(|&v| v as u8).collect();
    Ok(MnistDigits { pixels, labels })
}

/// Area-averaging weights from `n` source pixels to `m` output pixels, in units where a
/// source pixel is `m` wide and an output pixel `n` wide: `w[o * n + i]` is the overlap of
/// output pixel `o` with source pixel `i`, and each row sums to `n`.
fn area_weights(n: usize, m: usize) -> Vec<u32> {
    let mut w = vec![0u32; m * n];
    for o in 0..m {
        let (a, b) = (o * n, (o + 1) * n);
        for i in 0..n {
            let (c, d) = (i * m, (i + 1) * m);
            let overlap = b.min(d).saturating_sub(a.max(c));
            w[o * n + i] = overlap as u32;
        }
    }
    w
}

/// Scales a `28x28` digit to `side x side` by exact area averaging (integer arithmetic,
/// rounded half up).
pub fn scale_digit(src: &[u8], side: usize) -> Vec<u8> {
    let n = MNIST_SIDE;
    debug_assert_eq!(src.len(), n * n);
    let w = area_weights(n, side);
    // Rows first: `[n, side]` sums in units of n.
    let mut tmp = vec![0u32; n * side];
    for r in 0..n {
        for o in 0..side {
            tmp[r * side + o] = (0..n).map(|i| w[o * n + i] * src[r * n + i] as u32).sum();
        }
    }
    let denom = (n * n) as u32;
    let mut out = vec![0u8; side * side];
    for o in 0..side {
        for c in 0..side {
            let s: u32 = (0..n).map(|i| w[o * n + i] * tmp[i * side + c]).sum();
            out[o * side + c] = ((s + denom / 2) / denom) as u8;
        }
    }
    out
}

/// The tight box `(x1, y1, x2, y2)` (exclusive ends) of the pixels above
/// [`INK_THRESHOLD`] in a `w`-wide image, or `None` if there is none.
pub fn ink_box(img: &[u8], w: usize) -> Option<(usize, usize, usize, usize)> {
    let mut b: Option<(usize, usize, usize, usize)> = None;
    for (i, &v) in img.iter().enumerate() {
        if v > INK_THRESHOLD {
            let (y, x) = (i / w, i % w);
            b = Some(match b {
                None => (x, y, x + 1, y + 1),
                Some((x1, y1, x2, y2)) => (x1.min(x), y1.min(y), x2.max(x + 1), y2.max(y + 1)),
            });
        }
    }
    b
}

/// Whether a new box keeps to the overlap rule against the boxes placed before it.
pub fn overlap_allowed(new: &BBox, placed: &[BBox]) -> bool {
    placed.iter().all(|b| {
        let iw = (new.x2.min(b.x2) - new.x1.max(b.x1)).max(0.0);
        let ih = (new.y2.min(b.y2) - new.y1.max(b.y1)).max(0.0);
        let smaller = new.area().min(b.area());
        iou(new, b) <= MAX_IOU && iw * ih <= MAX_COVER * smaller
    })
}

/// One generated canvas: `size x size` bytes and its boxes with their digits.
pub struct Canvas {
    pub pixels: Vec<u8>,
    pub objects: Vec<(u8, BBox)>,
}

/// Draws one canvas from `digits` (see the module docs for the recipe).
pub fn generate_canvas(digits: &MnistDigits, size: usize, rng: &mut Rng) -> Canvas {
    let mut pixels = vec![0u8; size * size];
    let mut objects: Vec<(u8, BBox)> = Vec::new();
    let wanted = DIGITS.0 + rng.below(DIGITS.1 - DIGITS.0 + 1);
    let mut drawn = 0;
    // A digit without ink at its scale (never seen in MNIST, but possible in principle)
    // does not count, so the canvas still gets at least one digit.
    while drawn < wanted || objects.is_empty() {
        drawn += 1;
        let k = rng.below(digits.len());
        let want = SIDES.0 + rng.below(SIDES.1 - SIDES.0 + 1);
        // The square the 28x28 image is scaled to, so that its ink spans `want`.
        let Some((sx1, sy1, sx2, sy2)) = ink_box(digits.image(k), 28) else {
            continue;
        };
        let ink = (sx2 - sx1).max(sy2 - sy1);
        let side = ((28 * want + ink / 2) / ink).clamp(1, size);
        let patch = scale_digit(digits.image(k), side);
        let Some((bx1, by1, bx2, by2)) = ink_box(&patch, side) else {
            continue;
        };
        let placed: Vec<BBox> = objects.iter().map(|o| o.1).collect();
        for _ in 0..PLACEMENT_TRIES {
            let x0 = rng.below(size - side + 1);
            let y0 = rng.below(size - side + 1);
            let b = BBox::new(
                (x0 + bx1) as f64,
                (y0 + by1) as f64,
                (x0 + bx2) as f64,
                (y0 + by2) as f64,
            );
            if !overlap_allowed(&b, &placed) {
                continue;
            }
            for r in 0..side {
                let row = &mut pixels[(y0 + r) * size + x0..(y0 + r) * size + x0 + side];
                for (p, &v) in row.iter_mut().zip(&patch[r * side..(r + 1) * side]) {
                    *p = (*p).max(v);
                }
            }
            objects.push((digits.labels[k], b));
            break;
        }
    }
    Canvas { pixels, objects }
}

/// One YOLO label line for a box on a `w x h` image (shortest exact decimals, so the
/// pixel box is recovered to rounding).
fn yolo_line(class: u8, b: &BBox, w: f64, h: f64) -> String {
    let cx = (b.x1 + b.x2) / 2.0 / w;
    let cy = (b.y1 + b.y2) / 2.0 / h;
    format!("{class} {cx} {cy} {} {}\n", b.width() / w, b.height() / h)
}

/// Generates a split into `dir` through a temporary sibling folder.
fn generate_split(
    dir: &Path,
    split: Split,
    opts: &MnistDetectOptions,
    digits: &MnistDigits,
) -> Result<()> {
    let parent = dir.parent().expect("a split folder has a parent");
    let name = dir.file_name().expect("named").to_string_lossy();
    let tmp = parent.join(format!(".{name}.partial"));
    if tmp.exists() {
        // Left by an interrupted run: never read, replaced.
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    let (images, labels) = (tmp.join("images"), tmp.join("labels"));
    for d in [&images, &labels] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let classes: String = (0..10).map(|d| format!("{d}\n")).collect();
    let path = tmp.join("classes.txt");
    std::fs::write(&path, classes).map_err(|e| Error::io(&path, e))?;
    // Each split has its own stream, so the test split does not depend on the train
    // split's size.
    let mut root = Rng::new(opts.seed);
    let (mut train_rng, mut test_rng) = (root.fork(), root.fork());
    let rng = match split {
        Split::Train => &mut train_rng,
        Split::Test => &mut test_rng,
    };
    let n = opts.count(split);
    let digits_in_name = n.to_string().len().max(6);
    let side = opts.size as f64;
    let mut objects = 0;
    for i in 1..=n {
        let canvas = generate_canvas(digits, opts.size, rng);
        let stem = format!("{i:0digits_in_name$}");
        let png = images.join(format!("{stem}.png"));
        image::GrayImage::from_raw(opts.size as u32, opts.size as u32, canvas.pixels)
            .expect("size x size bytes")
            .save(&png)
            .map_err(|e| Error::format(&png, format!("cannot write the PNG: {e}")))?;
        let text: String = canvas
            .objects
            .iter()
            .map(|(c, b)| yolo_line(*c, b, side, side))
            .collect();
        let txt = labels.join(format!("{stem}.txt"));
        std::fs::write(&txt, text).map_err(|e| Error::io(&txt, e))?;
        objects += canvas.objects.len();
    }
    let path = tmp.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest(split, opts, objects))
        .expect("a JSON value serialises");
    std::fs::write(&path, text + "\n").map_err(|e| Error::io(&path, e))?;
    std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_weights_rows_sum_to_the_source_width() {
        for m in [12, 17, 28, 40] {
            let w = area_weights(28, m);
            for o in 0..m {
                assert_eq!(w[o * 28..(o + 1) * 28].iter().sum::<u32>(), 28);
            }
        }
    }

    #[test]
    fn scaling_keeps_a_flat_image_flat_and_is_identity_at_28() {
        let flat = vec![200u8; 28 * 28];
        assert!(scale_digit(&flat, 13).iter().all(|&v| v == 200));
        let ramp: Vec<u8> = (0..28 * 28).map(|i| (i % 251) as u8).collect();
        assert_eq!(scale_digit(&ramp, 28), ramp);
        // 28 -> 14 averages 2x2 blocks, rounded half up.
        let mut src = vec![0u8; 28 * 28];
        src[0] = 255;
        src[1] = 0;
        src[28] = 0;
        src[29] = 1;
        assert_eq!(scale_digit(&src, 14)[0], 64); // (255 + 1) / 4
    }

    #[test]
    fn ink_box_is_tight() {
        let mut img = vec![0u8; 10 * 8];
        img[2 * 10 + 3] = 65;
        img[5 * 10 + 7] = 255;
        img[6 * 10 + 1] = INK_THRESHOLD; // not above the threshold
        assert_eq!(ink_box(&img, 10), Some((3, 2, 8, 6)));
        assert_eq!(ink_box(&[0u8; 16], 4), None);
    }

    #[test]
    fn the_overlap_rule_caps_iou_and_cover() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert!(overlap_allowed(&BBox::new(8.0, 0.0, 18.0, 10.0), &[a]));
        // IoU 60/140 > 0.3.
        assert!(!overlap_allowed(&BBox::new(4.0, 0.0, 14.0, 10.0), &[a]));
        // Small IoU but a small box inside a big one.
        assert!(!overlap_allowed(&BBox::new(2.0, 2.0, 4.0, 4.0), &[a]));
    }

    fn fake_digits() -> MnistDigits {
        // Ten "digits": a filled square of side 8 + 2k at the centre.
        let mut pixels = Vec::new();
        for k in 0..10usize {
            let s = 8 + 2 * k;
            let lo = (28 - s) / 2;
            for y in 0..28 {
                for x in 0..28 {
                    let ink = (lo..lo + s).contains(&x) && (lo..lo + s).contains(&y);
                    pixels.push(if ink { 255 } else { 0 });
                }
            }
        }
        MnistDigits {
            pixels,
            labels: (0..10).collect(),
        }
    }

    #[test]
    fn canvases_keep_the_recipe() {
        let digits = fake_digits();
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 6];
        for _ in 0..300 {
            let c = generate_canvas(&digits, 96, &mut rng);
            assert!((1..=5).contains(&c.objects.len()));
            counts[c.objects.len()] += 1;
            let boxes: Vec<BBox> = c.objects.iter().map(|o| o.1).collect();
            for (i, b) in boxes.iter().enumerate() {
                assert!(b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= 96.0 && b.y2 <= 96.0);
                let big = b.width().max(b.height());
                assert!((10.0..=42.0).contains(&big), "{b:?}");
                assert!(overlap_allowed(b, &boxes[..i]));
            }
        }
        // Every count of digits occurs.
        assert!(counts[1..].iter().all(|&n| n > 20), "{counts:?}");
    }

    #[test]
    fn bad_options_are_refused() {
        let small = MnistDetectOptions {
            size: 64,
            ..Default::default()
        };
        assert!(mnist_detect_dir(Split::Train, &small)
            .unwrap_err()
            .to_string()
            .contains("96"));
        let empty = MnistDetectOptions {
            test: 0,
            ..Default::default()
        };
        assert!(mnist_detect_dir(Split::Test, &empty).is_err());
    }
}
