//! COCO files: instances (the ground truth: images, annotations, categories) and results
//! (detections), read with serde and checked before anything uses them.
//!
//! Conventions:
//! - `bbox` is `[x, y, w, h]` in pixels (top-left corner and size), stored as a
//!   [`BBox`](crate::detection::BBox) with corners.
//! - `iscrowd` (0 or 1, default 0) becomes `Object::crowd`, ignored by the metrics as
//!   COCO does. `area` (the segmentation's area, used for COCO's size ranges) defaults to
//!   the box's area when absent.
//! - Annotations keep the file's order within each image (pycocotools' order, which
//!   decides ties in matching).
//! - Errors name the file and the record: a missing field, an annotation of an image or
//!   category the file does not list, duplicate ids, a negative image size, a non-finite
//!   number, a box of negative or zero width or height, or a box outside its image by more
//!   than [`COCO_TOLERANCE`] pixels. Boxes overhanging by less are kept as given (not
//!   clipped), so the evaluator sees what pycocotools sees.
//! - With an images folder, every image file must exist (the error names the first
//!   missing and how many are missing).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::detection::{BBox, Category, Detection, DetectionDataset, ImageRecord, Object};
use crate::error::{Error, Result};

/// How far (pixels) a ground-truth box may overhang its image.
pub const COCO_TOLERANCE: f64 = 1.0;

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: i64,
    file_name: String,
    width: i64,
    height: i64,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    id: i64,
    image_id: i64,
    category_id: i64,
    bbox: [f64; 4],
    #[serde(default)]
    area: Option<f64>,
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: i64,
    name: String,
}

/// One line of a COCO results file.
#[derive(Serialize, Deserialize)]
struct CocoResult {
    image_id: i64,
    category_id: i64,
    bbox: [f64; 4],
    score: f64,
}

/// Reads a COCO instances file. With `images_dir`, image paths are `images_dir/file_name`
/// and must exist; without, they are `file_name` as written and are not checked.
pub fn read_coco_instances(
    path: impl AsRef<Path>,
    images_dir: Option<&Path>,
) -> Result<DetectionDataset> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let data = parse_coco_instances(&text, path, images_dir)?;
    if images_dir.is_some() {
        let missing: Vec<&PathBuf> = data
            .images
            .iter()
            .map(|i| &i.path)
            .filter(|p| !p.is_file())
            .collect();
        if let Some(first) = missing.first() {
            return Err(Error::format(
                path,
                format!(
                    "{} of its {} images are missing, the first {}",
                    missing.len(),
                    data.images.len(),
                    first.display()
                ),
            ));
        }
    }
    Ok(data)
}

/// Parses the text of a COCO instances file; `path` names it in errors. Image paths are
/// joined to `images_dir` when given (nothing is read from disk).
pub fn parse_coco_instances(
    text: &str,
    path: &Path,
    images_dir: Option<&Path>,
) -> Result<DetectionDataset> {
    let file: CocoFile = serde_json::from_str(text)
        .map_err(|e| Error::format(path, format!("not a COCO instances file: {e}")))?;
    let bad = |msg: String| Error::format(path, msg);
    let mut categories = Vec::with_capacity(file.categories.len());
    let mut category_ids = HashSet::new();
    for c in file.categories {
        if !category_ids.insert(c.id) {
            return Err(bad(format!("category id {} appears twice", c.id)));
        }
        categories.push(Category {
            id: c.id,
            name: c.name,
        });
    }
    let mut images = Vec::with_capacity(file.images.len());
    let mut index = HashMap::new();
    for im in file.images {
        if im.width <= 0
            || im.height <= 0
            || im.width > u32::MAX as i64
            || im.height > u32::MAX as i64
        {
            return Err(bad(format!(
                "image {} ('{}') has size {}x{}",
                im.id, im.file_name, im.width, im.height
            )));
        }
        if index.insert(im.id, images.len()).is_some() {
            return Err(bad(format!("image id {} appears twice", im.id)));
        }
        images.push(ImageRecord {
            id: im.id,
            path: images_dir
                .map_or_else(|| PathBuf::from(&im.file_name), |d| d.join(&im.file_name)),
            width: im.width as u32,
            height: im.height as u32,
            objects: Vec::new(),
        });
    }
    let mut ann_ids = HashSet::new();
    for a in file.annotations {
        let what = format!("annotation {}", a.id);
        if !ann_ids.insert(a.id) {
            return Err(bad(format!("{what}: the id appears twice")));
        }
        let &i = index.get(&a.image_id).ok_or_else(|| {
            bad(format!(
                "{what} names image {}, which the file does not list",
                a.image_id
            ))
        })?;
        if !category_ids.contains(&a.category_id) {
            return Err(bad(format!(
                "{what} names category {}, which the file does not list",
                a.category_id
            )));
        }
        let [x, y, w, h] = a.bbox;
        if a.bbox.iter().any(|v| !v.is_finite()) || w < 0.0 || h < 0.0 {
            return Err(bad(format!("{what} has bbox {:?}", a.bbox)));
        }
        let bbox = BBox::from_xywh(x, y, w, h);
        let im = &mut images[i];
        bbox.check_in_image(im.width as f64, im.height as f64, COCO_TOLERANCE)
            .map_err(|e| bad(format!("{what} (bbox [x, y, w, h] = {:?}): {e}", a.bbox)))?;
        let area = a.area.unwrap_or(w * h);
        if !area.is_finite() || area < 0.0 {
            return Err(bad(format!("{what} has area {area}")));
        }
        if a.iscrowd > 1 {
            return Err(bad(format!("{what} has iscrowd {} (0 or 1)", a.iscrowd)));
        }
        im.objects.push(Object {
            id: a.id,
            category_id: a.category_id,
            bbox,
            crowd: a.iscrowd == 1,
            area,
        });
    }
    Ok(DetectionDataset { images, categories })
}

/// Reads a COCO results file (`[{image_id, category_id, bbox, score}, ...]`).
pub fn read_coco_results(path: impl AsRef<Path>) -> Result<Vec<Detection>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_coco_results(&text, path)
}

/// Parses the text of a COCO results file; `path` names it in errors. Extra fields (a
/// segmentation, ...) are ignored; a box of negative size or a non-finite number is an
/// error.
pub fn parse_coco_results(text: &str, path: &Path) -> Result<Vec<Detection>> {
    let rows: Vec<CocoResult> = serde_json::from_str(text)
        .map_err(|e| Error::format(path, format!("not a COCO results file: {e}")))?;
    rows.into_iter()
        .enumerate()
        .map(|(n, r)| {
            let [x, y, w, h] = r.bbox;
            if r.bbox.iter().any(|v| !v.is_finite()) || w < 0.0 || h < 0.0 || !r.score.is_finite() {
                return Err(Error::format(
                    path,
                    format!("result {n}: bbox {:?} score {}", r.bbox, r.score),
                ));
            }
            Ok(Detection {
                image_id: r.image_id,
                category_id: r.category_id,
                bbox: BBox::from_xywh(x, y, w, h),
                score: r.score,
            })
        })
        .collect()
}

/// Writes detections as a COCO results file (atomically: the old file or the new one).
pub fn write_coco_results(path: impl AsRef<Path>, detections: &[Detection]) -> Result<()> {
    let rows: Vec<CocoResult> = detections
        .iter()
        .map(|d| CocoResult {
            image_id: d.image_id,
            category_id: d.category_id,
            bbox: [d.bbox.x1, d.bbox.y1, d.bbox.width(), d.bbox.height()],
            score: d.score,
        })
        .collect();
    let text = serde_json::to_string(&rows).map_err(|e| Error::invalid(e.to_string()))?;
    crate::formats::atomic::write_bytes_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
                 {"id": 2, "file_name": "b.jpg", "width": 100, "height": 50}],
      "annotations": [
        {"id": 5, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20, 10], "area": 150, "iscrowd": 0},
        {"id": 6, "image_id": 1, "category_id": 4, "bbox": [0, 0, 100.5, 50], "iscrowd": 1}],
      "categories": [{"id": 3, "name": "cat"}, {"id": 4, "name": "dog"}]
    }"#;

    fn parse(text: &str) -> Result<DetectionDataset> {
        parse_coco_instances(text, Path::new("instances.json"), None)
    }

    #[test]
    fn reads_instances() {
        let d = parse(GOOD).unwrap();
        assert_eq!(d.images.len(), 2);
        assert!(d.images[1].objects.is_empty());
        let o = &d.images[0].objects;
        assert_eq!(o[0].bbox, BBox::new(10.0, 5.0, 30.0, 15.0));
        assert_eq!((o[0].area, o[0].crowd), (150.0, false));
        assert_eq!((o[1].area, o[1].crowd), (5025.0, true));
        assert_eq!(d.category_name(4), Some("dog"));
    }

    #[test]
    fn bad_instances_name_the_file_and_record() {
        let cases = [
            (
                GOOD.replace(
                    "\"image_id\": 1, \"category_id\": 3",
                    "\"image_id\": 9, \"category_id\": 3",
                ),
                "names image 9",
            ),
            (
                GOOD.replace("\"category_id\": 4", "\"category_id\": 8"),
                "names category 8",
            ),
            (
                GOOD.replace(
                    "\"width\": 100, \"height\": 50},\n",
                    "\"width\": -100, \"height\": 50},\n",
                ),
                "size -100x50",
            ),
            (GOOD.replace("[10, 5, 20, 10]", "[10, 5, -20, 10]"), "bbox"),
            (
                GOOD.replace("[10, 5, 20, 10]", "[10, 5, 0, 10]"),
                "zero area",
            ),
            (
                GOOD.replace("[10, 5, 20, 10]", "[90, 5, 20, 10]"),
                "outside",
            ),
            (
                GOOD.replace("\"bbox\": [10, 5, 20, 10], ", ""),
                "missing field `bbox`",
            ),
            (GOOD.replace("\"id\": 6", "\"id\": 5"), "appears twice"),
        ];
        for (text, want) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.contains("instances.json") && e.contains(want),
                "{want}: {e}"
            );
        }
    }

    #[test]
    fn missing_images_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("instances.json");
        std::fs::write(&file, GOOD).unwrap();
        std::fs::write(dir.path().join("a.jpg"), b"").unwrap();
        let e = read_coco_instances(&file, Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 of its 2 images are missing") && e.contains("b.jpg"),
            "{e}"
        );
        assert!(read_coco_instances(&file, None).is_ok());
    }

    #[test]
    fn results_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("results.json");
        let dets = vec![Detection {
            image_id: 1,
            category_id: 3,
            bbox: BBox::from_xywh(10.5, 5.0, 20.0, 10.25),
            score: 0.75,
        }];
        write_coco_results(&file, &dets).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\"bbox\":[10.5,5.0,20.0,10.25]"), "{text}");
        assert_eq!(read_coco_results(&file).unwrap(), dets);
        let e = parse_coco_results(r#"[{"image_id": 1, "bbox": [0,0,1,1], "score": 1}]"#, &file);
        assert!(e.unwrap_err().to_string().contains("category_id"));
    }
}
