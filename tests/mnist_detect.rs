//! `mnist-detect` end to end on real MNIST (needs `NABLA_DATA` holding `mnist/`, as the
//! other data tests): generated from a seed into a temporary cache, read back as a YOLO
//! folder, its pixels checked against its boxes; the cache reused, an interrupted
//! generation replaced, a corrupt label file named. Small splits keep it fast.

use std::path::{Path, PathBuf};

use nabla::data::detection::mnist_detect::{overlap_allowed, INK_THRESHOLD};
use nabla::data::detection::{
    load_detection_images, mnist_detect, mnist_detect_dir, MnistDetectOptions, Split,
};
use nabla::detection::BBox;

fn options(dir: &Path) -> MnistDetectOptions {
    MnistDetectOptions {
        seed: 7,
        size: 96,
        train: 50,
        test: 20,
        cache_dir: Some(dir.to_path_buf()),
    }
}

/// Every file under `dir` with its bytes, by path relative to `dir`, sorted.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Whether pixel (x, y) is ink (value above the threshold; images are in [0, 1]).
fn ink(px: &[f32], size: usize, x: usize, y: usize) -> bool {
    (px[y * size + x] * 255.0).round() > INK_THRESHOLD as f32
}

fn inside(b: &BBox, x: usize, y: usize) -> bool {
    let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
    cx > b.x1 && cx < b.x2 && cy > b.y1 && cy < b.y2
}

#[test]
fn generation_is_deterministic_and_keeps_the_recipe() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&d1, &d2] {
        for split in [Split::Train, Split::Test] {
            mnist_detect_dir(split, &options(d.path())).unwrap();
        }
    }
    // Same options, same bytes in every file.
    let (f1, f2) = (files(d1.path()), files(d2.path()));
    assert_eq!(f1.len(), 2 * (50 + 20) + 2 * 2);
    assert!(f1 == f2, "two generations with the same options differ");
    let key = d1.path().join("v2-seed7-96x96");
    assert!(key.join("train-50/classes.txt").is_file());
    assert!(key.join("test-20/manifest.json").is_file());

    let mut sizes = Vec::new();
    let mut overlapping = 0;
    for (split, n) in [(Split::Train, 50), (Split::Test, 20)] {
        let ds = mnist_detect(split, &options(d1.path())).unwrap();
        assert_eq!(ds.images.len(), n);
        assert_eq!(ds.category_ids(), (0..10).collect::<Vec<i64>>());
        let x = load_detection_images(&ds, 1).unwrap();
        assert_eq!(x.shape(), &[n, 1, 96, 96]);
        let all = x.to_f32_vec();
        for (i, img) in ds.images.iter().enumerate() {
            assert_eq!((img.width, img.height), (96, 96));
            assert!((1..=5).contains(&img.objects.len()), "{:?}", img.path);
            let px = &all[i * 96 * 96..(i + 1) * 96 * 96];
            // Boxes were whole pixels; the label file's decimals give them back to
            // rounding.
            let boxes: Vec<BBox> = img
                .objects
                .iter()
                .map(|o| {
                    let b = o.bbox;
                    let r = |v: f64| {
                        assert!((v - v.round()).abs() < 1e-6, "{b:?}");
                        v.round()
                    };
                    BBox::new(r(b.x1), r(b.y1), r(b.x2), r(b.y2))
                })
                .collect();
            for (k, (b, o)) in boxes.iter().zip(&img.objects).enumerate() {
                assert!((0..10).contains(&o.category_id));
                assert!(b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= 96.0 && b.y2 <= 96.0);
                assert!(b.width() >= 1.0 && b.width() <= 42.0 && b.height() <= 42.0);
                sizes.push(b.width().max(b.height()));
                let others: Vec<&BBox> = boxes
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != k)
                    .map(|(_, b)| b)
                    .collect();
                if others.iter().any(|o| nabla::detection::iou(b, o) > 0.0) {
                    overlapping += 1;
                }
                // Overlap cap, both ways.
                for o in &others {
                    assert!(
                        overlap_allowed(b, &[**o]),
                        "{b:?} vs {o:?} in {:?}",
                        img.path
                    );
                }
                let (x1, y1, x2, y2) = (b.x1 as usize, b.y1 as usize, b.x2 as usize, b.y2 as usize);
                // Tight: each edge line of the box holds ink ...
                assert!((x1..x2).any(|x| ink(px, 96, x, y1)), "top {b:?}");
                assert!((x1..x2).any(|x| ink(px, 96, x, y2 - 1)), "bottom {b:?}");
                assert!((y1..y2).any(|y| ink(px, 96, x1, y)), "left {b:?}");
                assert!((y1..y2).any(|y| ink(px, 96, x2 - 1, y)), "right {b:?}");
                // ... and the lines just outside hold none, but where another digit's
                // box covers the pixel (its strokes may be there).
                let foreign = |x: usize, y: usize| others.iter().any(|o| inside(o, x, y));
                let clean = |x: usize, y: usize| !ink(px, 96, x, y) || foreign(x, y);
                if y1 > 0 {
                    assert!((x1..x2).all(|x| clean(x, y1 - 1)), "above {b:?}");
                }
                if y2 < 96 {
                    assert!((x1..x2).all(|x| clean(x, y2)), "below {b:?}");
                }
                if x1 > 0 {
                    assert!((y1..y2).all(|y| clean(x1 - 1, y)), "left of {b:?}");
                }
                if x2 < 96 {
                    assert!((y1..y2).all(|y| clean(x2, y)), "right of {b:?}");
                }
            }
        }
    }
    // Some small digits, some large, some overlapping: each digit's size (its ink box's
    // longer side) is drawn in 12-40 pixels, within two pixels of rounding.
    sizes.sort_by(f64::total_cmp);
    assert!(
        sizes[0] >= 10.0 && sizes[0] <= 16.0 && *sizes.last().unwrap() >= 36.0,
        "{sizes:?}"
    );
    assert!(*sizes.last().unwrap() <= 42.0, "{sizes:?}");
    assert!(overlapping > 0);

    // Another seed, other canvases; train and test differ.
    let d3 = tempfile::tempdir().unwrap();
    let other = MnistDetectOptions {
        seed: 8,
        ..options(d3.path())
    };
    let dir = mnist_detect_dir(Split::Test, &other).unwrap();
    let img = "images/000001.png";
    let a = std::fs::read(dir.join(img)).unwrap();
    assert_ne!(a, std::fs::read(key.join("test-20").join(img)).unwrap());
    assert_ne!(
        std::fs::read(key.join("train-50").join(img)).unwrap(),
        std::fs::read(key.join("test-20").join(img)).unwrap()
    );
}

#[test]
fn the_cache_is_reused_not_regenerated() {
    let d = tempfile::tempdir().unwrap();
    let opts = options(d.path());
    let dir = mnist_detect_dir(Split::Test, &opts).unwrap();
    let manifest = dir.join("manifest.json");
    let stamp = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    // A file a regeneration would not write.
    std::fs::write(dir.join("note.md"), "still here").unwrap();
    let t = std::time::Instant::now();
    let ds = mnist_detect(Split::Test, &opts).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(ds.images.len(), 20);
    assert!(dir.join("note.md").is_file());
    assert_eq!(
        std::fs::metadata(&manifest).unwrap().modified().unwrap(),
        stamp
    );
    // Reading 20 PNG headers, not loading MNIST.
    assert!(secs < 0.5, "the second call took {secs} s");
}

#[test]
fn an_interrupted_generation_is_ignored_and_replaced() {
    let d = tempfile::tempdir().unwrap();
    let opts = options(d.path());
    let key = d.path().join("v2-seed7-96x96");
    let partial = key.join(".test-20.partial");
    std::fs::create_dir_all(partial.join("images")).unwrap();
    std::fs::write(partial.join("images/000001.png"), b"half a PNG").unwrap();
    std::fs::write(partial.join("manifest.json"), b"{").unwrap();
    let ds = mnist_detect(Split::Test, &opts).unwrap();
    assert_eq!(ds.images.len(), 20);
    assert!(!partial.exists());
    assert!(key.join("test-20/manifest.json").is_file());
    // A final folder without a manifest was not made by the generator: a clear error.
    std::fs::create_dir_all(key.join("train-50/images")).unwrap();
    let err = mnist_detect(Split::Train, &opts).unwrap_err().to_string();
    assert!(err.contains("manifest") && err.contains("delete"), "{err}");
}

#[test]
fn a_corrupt_cached_label_file_is_named() {
    let d = tempfile::tempdir().unwrap();
    let opts = options(d.path());
    let dir = mnist_detect_dir(Split::Test, &opts).unwrap();
    let bad = dir.join("labels/000003.txt");
    std::fs::write(&bad, "3 0.5 oops 0.1 0.1\n").unwrap();
    let err = mnist_detect(Split::Test, &opts).unwrap_err().to_string();
    assert!(err.contains("000003.txt") && err.contains("oops"), "{err}");
}

/// Generation time of the default sizes (10,000 train, 2,000 test canvases of 96x96):
/// `cargo test --release --test mnist_detect -- --ignored --nocapture`.
#[test]
#[ignore]
fn default_sizes_generation_time() {
    let d = tempfile::tempdir().unwrap();
    let opts = MnistDetectOptions {
        cache_dir: Some(d.path().to_path_buf()),
        ..Default::default()
    };
    for split in [Split::Train, Split::Test] {
        let t = std::time::Instant::now();
        mnist_detect_dir(split, &opts).unwrap();
        let generated = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let ds = mnist_detect(split, &opts).unwrap();
        let read = t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        let x = load_detection_images(&ds, 1).unwrap();
        let pixels = t.elapsed().as_secs_f64();
        println!(
            "{}: {} canvases, {} digits: generated in {generated:.1} s, read in {read:.2} s, \
             pixels {:?} in {pixels:.2} s",
            split.name(),
            ds.images.len(),
            ds.num_objects(),
            x.shape()
        );
    }
}
