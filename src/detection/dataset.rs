//! A labelled detection data set in memory, whatever file format it came from (COCO JSON,
//! YOLO folders: readers in `data::detection`), and a detection as a model or a COCO
//! results file gives it.
//!
//! Conventions:
//! - Boxes are [`BBox`]es in pixels (corners). Images and categories are named by their
//!   ids as in COCO (a YOLO folder numbers its images from 1 and uses the class index as
//!   the category id).
//! - `crowd` marks a region that is neither to be found nor penalised when a detection
//!   lands on it: COCO's `iscrowd` and, for VOC-style evaluation, VOC's "difficult".
//! - `area` is the object's area used for COCO's small/medium/large ranges: COCO files
//!   give it (the segmentation's area); otherwise it is the box's area.

use std::path::PathBuf;

use super::boxes::BBox;

/// A class of object.
#[derive(Clone, Debug, PartialEq)]
pub struct Category {
    pub id: i64,
    pub name: String,
}

/// One labelled object of an image.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The annotation's id (unique in the data set).
    pub id: i64,
    pub category_id: i64,
    pub bbox: BBox,
    /// A crowd ("difficult") region: ignored by the metrics.
    pub crowd: bool,
    /// The area for COCO's size ranges.
    pub area: f64,
}

/// One image and its objects (none is allowed: an image of background).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    pub id: i64,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub objects: Vec<Object>,
}

/// Images with their labelled objects, and the categories.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetectionDataset {
    pub images: Vec<ImageRecord>,
    pub categories: Vec<Category>,
}

/// A predicted box: which image, which category, where, how confident.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub image_id: i64,
    pub category_id: i64,
    pub bbox: BBox,
    pub score: f64,
}

impl DetectionDataset {
    /// The category ids, sorted (COCO's order of classes).
    pub fn category_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.categories.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The name of a category id, if it is one.
    pub fn category_name(&self, id: i64) -> Option<&str> {
        self.categories
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.as_str())
    }

    /// The number of labelled objects.
    pub fn num_objects(&self) -> usize {
        self.images.iter().map(|i| i.objects.len()).sum()
    }
}
