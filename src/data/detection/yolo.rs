//! YOLO folders: `images/` and `labels/` side by side, one `labels/NAME.txt` per
//! `images/NAME.png|jpg|jpeg` (sub-folders mirrored: `images/train/x.jpg` ->
//! `labels/train/x.txt`), each line `class cx cy w h` with the box's centre and size as
//! fractions of the image's width and height.
//!
//! Conventions:
//! - Class names come from `classes.txt` (one per line) or else `data.yaml` (`names:` as
//!   a list `[a, b]`, a block of `- a` lines, or a block of `0: a` lines) at the folder's
//!   root. A class index outside the names is an error. Without either file the classes
//!   are `0, 1, ...` up to the largest index used.
//! - Images are numbered from 1 in path order (sorted); category ids are class indices.
//! - Image sizes come from the file's header (nothing is decoded).
//! - An image without a label file, or with an empty one, has no boxes (background). A
//!   label file without its image is an error, as is an `images/` folder that is missing.
//! - A box reaching outside [0, 1] by at most [`YOLO_TOLERANCE`] (of the image size) is
//!   clipped to the image, as rounding in labelling tools produces; further out is an
//!   error naming the file and line. So is a zero-area box (after clipping), a line
//!   without exactly five numbers (segmentation polygons are not boxes), a non-integer or
//!   unknown class, a non-finite number, a negative size.

use std::path::{Path, PathBuf};

use crate::detection::{BBox, BoxFormat, Category, DetectionDataset, ImageRecord, Object};
use crate::error::{Error, Result};

/// How far (a fraction of the image size) a YOLO box may reach outside [0, 1] and be
/// clipped rather than refused.
pub const YOLO_TOLERANCE: f64 = 0.02;

const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The class names of a YOLO folder, if it has `classes.txt` or `data.yaml`.
fn class_names(root: &Path) -> Result<Option<Vec<String>>> {
    let classes = root.join("classes.txt");
    if classes.is_file() {
        let text = std::fs::read_to_string(&classes).map_err(|e| Error::io(&classes, e))?;
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        return Ok(Some(names));
    }
    for name in ["data.yaml", "data.yml"] {
        let yaml = root.join(name);
        if yaml.is_file() {
            let text = std::fs::read_to_string(&yaml).map_err(|e| Error::io(&yaml, e))?;
            return yaml_names(&text)
                .map(Some)
                .map_err(|m| Error::format(&yaml, m));
        }
    }
    Ok(None)
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// The `names:` entry of a data.yaml: `[a, b]`, `- a` lines, or `0: a` lines.
fn yaml_names(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("names:") else {
            continue;
        };
        let rest = rest.split(" #").next().unwrap_or("").trim();
        if let Some(list) = rest.strip_prefix('[') {
            let list = list
                .strip_suffix(']')
                .ok_or("names: a list '[...]' must end on its line")?;
            return Ok(list
                .split(',')
                .map(unquote)
                .filter(|s| !s.is_empty())
                .collect());
        }
        if !rest.is_empty() {
            return Err(format!("names: cannot read '{rest}'"));
        }
        let mut names = Vec::new();
        for line in lines.by_ref() {
            if !line.starts_with([' ', '\t', '-']) || line.trim().is_empty() {
                break;
            }
            let item = line.trim();
            if let Some(v) = item.strip_prefix('-') {
                names.push(unquote(v));
            } else if let Some((k, v)) = item.split_once(':') {
                let k: usize = k
                    .trim()
                    .parse()
                    .map_err(|_| format!("names: '{item}' is not 'index: name'"))?;
                if k != names.len() {
                    return Err(format!("names: index {k} out of order"));
                }
                names.push(unquote(v));
            }
        }
        return Ok(names);
    }
    Err("no 'names:' entry".into())
}

/// Reads one label file's boxes for an image of `size` (width, height).
fn read_labels(
    path: &Path,
    size: (u32, u32),
    num_classes: Option<usize>,
) -> Result<Vec<(usize, BBox)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let (w, h) = (size.0 as f64, size.1 as f64);
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |msg: String| Error::format(path, format!("line {}: {msg}", n + 1));
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 5 {
            return Err(at(format!(
                "{} fields; a box is 'class cx cy w h' (5)",
                fields.len()
            )));
        }
        let class: usize = fields[0]
            .parse()
            .map_err(|_| at(format!("class '{}' is not a class index", fields[0])))?;
        if let Some(k) = num_classes {
            if class >= k {
                return Err(at(format!(
                    "class {class} is unknown: there are {k} classes"
                )));
            }
        }
        let mut v = [0.0f64; 4];
        for (i, f) in fields[1..].iter().enumerate() {
            v[i] = f
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| at(format!("'{f}' is not a number")))?;
        }
        let norm = BoxFormat::YOLO
            .to_bbox(v, (1.0, 1.0))
            .map_err(|e| at(e.to_string()))?;
        let t = YOLO_TOLERANCE;
        if norm.x1 < -t || norm.y1 < -t || norm.x2 > 1.0 + t || norm.y2 > 1.0 + t {
            return Err(at(format!(
                "the box {v:?} reaches outside the image (beyond [0, 1] by more than {t})"
            )));
        }
        let b = BBox::new(norm.x1 * w, norm.y1 * h, norm.x2 * w, norm.y2 * h).clip(w, h);
        if b.area() <= 0.0 {
            return Err(at(format!("the box {v:?} has zero area")));
        }
        out.push((class, b));
    }
    Ok(out)
}

/// The width and height of an image from its header.
fn image_size(path: &Path) -> Result<(u32, u32)> {
    image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .into_dimensions()
        .map_err(|e| Error::format(path, format!("cannot read as a PNG or JPEG image: {e}")))
}

/// Reads a YOLO folder (`root/images`, `root/labels`) as a detection data set.
pub fn read_yolo_folder(root: impl AsRef<Path>) -> Result<DetectionDataset> {
    let root = root.as_ref();
    let (images_dir, labels_dir) = (root.join("images"), root.join("labels"));
    if !images_dir.is_dir() {
        return Err(Error::format(
            root,
            "not a YOLO folder: it has no 'images' folder",
        ));
    }
    let names = class_names(root)?;
    let mut image_paths = Vec::new();
    files(&images_dir, &mut image_paths)?;
    image_paths.retain(|p| is_image(p));
    image_paths.sort();
    let label_of = |img: &Path| {
        let rel = img
            .strip_prefix(&images_dir)
            .expect("walked from images_dir");
        labels_dir.join(rel).with_extension("txt")
    };
    // Every label file needs its image.
    if labels_dir.is_dir() {
        let mut labels = Vec::new();
        files(&labels_dir, &mut labels)?;
        let expected: std::collections::HashSet<PathBuf> =
            image_paths.iter().map(|p| label_of(p)).collect();
        labels.sort();
        if let Some(orphan) = labels
            .iter()
            .find(|l| l.extension().is_some_and(|e| e == "txt") && !expected.contains(*l))
        {
            return Err(Error::format(
                orphan,
                format!(
                    "a label file without its image (looked for {}.png/.jpg/.jpeg under {})",
                    orphan.file_stem().unwrap_or_default().to_string_lossy(),
                    images_dir.display()
                ),
            ));
        }
    }
    let mut images = Vec::with_capacity(image_paths.len());
    let mut max_class = None::<usize>;
    let mut next_object = 1;
    for (i, path) in image_paths.into_iter().enumerate() {
        let (width, height) = image_size(&path)?;
        let label = label_of(&path);
        let boxes = if label.is_file() {
            read_labels(&label, (width, height), names.as_ref().map(Vec::len))?
        } else {
            Vec::new()
        };
        let objects = boxes
            .into_iter()
            .map(|(class, bbox)| {
                max_class = max_class.max(Some(class));
                next_object += 1;
                Object {
                    id: next_object - 1,
                    category_id: class as i64,
                    bbox,
                    crowd: false,
                    area: bbox.area(),
                }
            })
            .collect();
        images.push(ImageRecord {
            id: i as i64 + 1,
            path,
            width,
            height,
            objects,
        });
    }
    let names = names.unwrap_or_else(|| {
        (0..max_class.map_or(0, |m| m + 1))
            .map(|c| c.to_string())
            .collect()
    });
    let categories = names
        .into_iter()
        .enumerate()
        .map(|(id, name)| Category {
            id: id as i64,
            name,
        })
        .collect();
    Ok(DetectionDataset { images, categories })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::new(w, h).save(path).unwrap();
    }

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        png(&r.join("images/a.png"), 200, 100);
        png(&r.join("images/sub/b.png"), 50, 50);
        png(&r.join("images/c.png"), 10, 10);
        std::fs::create_dir_all(r.join("labels/sub")).unwrap();
        std::fs::write(
            r.join("labels/a.txt"),
            "0 0.5 0.5 0.2 0.4\n\n1 0.1 0.1 0.2 0.2\n2 0.995 0.5 0.02 0.1\n",
        )
        .unwrap();
        std::fs::write(r.join("labels/sub/b.txt"), "").unwrap();
        std::fs::write(r.join("classes.txt"), "cat\ndog\nbird\n").unwrap();
        dir
    }

    #[test]
    fn reads_a_yolo_folder() {
        let dir = folder();
        let d = read_yolo_folder(dir.path()).unwrap();
        let names: Vec<&str> = d.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cat", "dog", "bird"]);
        assert_eq!(d.images.len(), 3);
        let a = &d.images[0];
        assert_eq!((a.width, a.height, a.id), (200, 100, 1));
        assert_eq!(a.objects.len(), 3);
        let close = |b: BBox, w: [f64; 4]| {
            let v = [b.x1, b.y1, b.x2, b.y2];
            assert!(v.iter().zip(w).all(|(x, y)| (x - y).abs() < 1e-9), "{v:?}");
        };
        close(a.objects[0].bbox, [80.0, 30.0, 120.0, 70.0]);
        close(a.objects[1].bbox, [0.0, 0.0, 40.0, 20.0]);
        // Slightly outside (to 1.005): clipped.
        close(a.objects[2].bbox, [197.0, 45.0, 200.0, 55.0]);
        assert_eq!(a.objects[2].category_id, 2);
        // c.png has no label file, sub/b.png an empty one: no boxes.
        assert!(d.images[1].objects.is_empty() && d.images[2].objects.is_empty());
        assert!(d.images[2].path.ends_with("sub/b.png"));
    }

    #[test]
    fn bad_folders_are_errors() {
        let cases = [
            ("3 0.5 0.5 0.2 0.2", "class 3 is unknown"),
            ("0 0.5 0.5 0.2", "4 fields"),
            ("0 0.5 abc 0.2 0.2", "'abc' is not a number"),
            ("0 0.5 0.5 0.2 nan", "'nan' is not a number"),
            ("x 0.5 0.5 0.2 0.2", "not a class index"),
            ("0 1.2 0.5 0.2 0.2", "outside the image"),
            ("0 0.5 0.5 0 0.2", "zero area"),
            ("0 0.5 0.5 -0.1 0.2", "negative"),
        ];
        for (line, want) in cases {
            let dir = folder();
            std::fs::write(dir.path().join("labels/a.txt"), format!("{line}\n")).unwrap();
            let e = read_yolo_folder(dir.path()).unwrap_err().to_string();
            assert!(
                e.contains("a.txt") && e.contains("line 1") && e.contains(want),
                "{e}"
            );
        }
        let dir = folder();
        std::fs::write(dir.path().join("labels/gone.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
        let e = read_yolo_folder(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("gone.txt") && e.contains("without its image"),
            "{e}"
        );
        let dir = folder();
        std::fs::write(dir.path().join("images/bad.png"), b"not a png").unwrap();
        let e = read_yolo_folder(dir.path()).unwrap_err().to_string();
        assert!(e.contains("bad.png"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(read_yolo_folder(empty.path()).is_err());
    }

    #[test]
    fn class_names_from_data_yaml() {
        assert_eq!(
            yaml_names("path: x\nnames: [a, 'b c']\n").unwrap(),
            ["a", "b c"]
        );
        assert_eq!(
            yaml_names("names:\n  - a\n  - b\nnc: 2\n").unwrap(),
            ["a", "b"]
        );
        assert_eq!(
            yaml_names("names:\n  0: a\n  1: \"b\"\n").unwrap(),
            ["a", "b"]
        );
        assert!(yaml_names("names:\n  1: a\n").is_err());
        assert!(yaml_names("nc: 2\n").is_err());
        // Without a names file, classes are numbered up to the largest used.
        let dir = folder();
        std::fs::remove_file(dir.path().join("classes.txt")).unwrap();
        std::fs::write(
            dir.path().join("data.yaml"),
            "names:\n- cat\n- dog\n- bird\n",
        )
        .unwrap();
        assert_eq!(read_yolo_folder(dir.path()).unwrap().categories.len(), 3);
        std::fs::remove_file(dir.path().join("data.yaml")).unwrap();
        let d = read_yolo_folder(dir.path()).unwrap();
        let names: Vec<&str> = d.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["0", "1", "2"]);
    }
}
