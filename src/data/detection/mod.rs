//! Detection data sets from the files users' labelled images come in, read into
//! [`crate::detection::DetectionDataset`]:
//! - `coco`: COCO instances JSON, and COCO results JSON (`[{image_id, category_id, bbox,
//!   score}]`) both ways.
//! - `yolo`: a YOLO folder (`images/`, `labels/*.txt`, class names from `classes.txt` or
//!   a `data.yaml`).

pub mod coco;
pub mod yolo;

pub use coco::{
    parse_coco_instances, parse_coco_results, read_coco_instances, read_coco_results,
    write_coco_results,
};
pub use yolo::read_yolo_folder;
