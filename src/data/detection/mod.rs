//! Detection data sets from the files users' labelled images come in, read into
//! [`crate::detection::DetectionDataset`]:
//! - `coco`: COCO instances JSON, and COCO results JSON (`[{image_id, category_id, bbox,
//!   score}]`) both ways.
//! - `yolo`: a YOLO folder (`images/`, `labels/*.txt`, class names from `classes.txt` or
//!   a `data.yaml`).
//! - `mnist_detect`: the built-in `mnist-detect` set, MNIST digits scaled and placed on
//!   larger canvases, generated from a seed on first use and cached as a YOLO folder.
//! - `images`: a data set's images decoded into one `[N, C, H, W]` batch.
//! - `augment`: box-aware flip, zoom/shift and crop over one `[C, H, W]` image.

pub mod augment;
pub mod coco;
pub mod images;
pub mod mnist_detect;
pub mod yolo;

pub use coco::{
    parse_coco_instances, parse_coco_results, read_coco_instances, read_coco_results,
    write_coco_results,
};
pub use images::load_detection_images;
pub use mnist_detect::{mnist_detect, mnist_detect_dir, MnistDetectOptions, Split};
pub use yolo::read_yolo_folder;
