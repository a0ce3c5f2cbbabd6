//! A detection data set's pixels as one batch: every image of a
//! [`DetectionDataset`] decoded into `[N, C, H, W]` f32 in [0, 1], in the order of
//! `ds.images`, so `ds.images[i].objects` are the boxes of batch item `i`.
//!
//! Decisions:
//! - Nothing is resized: the boxes are in the images' pixels, and a resize here would
//!   have to move them too. All images must have one size (an error names the first
//!   image that differs); resizing is the augmentation's job (`augment`).
//! - Transparent pixels are dropped (alpha ignored): detection images are photos or
//!   generated canvases, not icons.

use crate::detection::DetectionDataset;
use crate::engine::Tensor;
use crate::error::{Error, Result};

/// Decodes every image of `ds` as `[N, channels, H, W]` in [0, 1] (`channels` 1 or 3).
pub fn load_detection_images(ds: &DetectionDataset, channels: usize) -> Result<Tensor> {
    if channels != 1 && channels != 3 {
        return Err(Error::invalid(format!(
            "detection images load with 1 (grey) or 3 (RGB) channels, not {channels}"
        )));
    }
    let Some(first) = ds.images.first() else {
        return Err(Error::invalid("the detection data set has no images"));
    };
    let (w, h) = (first.width as usize, first.height as usize);
    let hw = w * h;
    let mut out = vec![0f32; ds.images.len() * channels * hw];
    for (item, rec) in out.chunks_exact_mut(channels * hw).zip(&ds.images) {
        let img = image::ImageReader::open(&rec.path)
            .map_err(|e| Error::io(&rec.path, e))?
            .with_guessed_format()
            .map_err(|e| Error::io(&rec.path, e))?
            .decode()
            .map_err(|e| Error::format(&rec.path, format!("cannot decode the image: {e}")))?;
        if (img.width() as usize, img.height() as usize) != (w, h) {
            return Err(Error::format(
                &rec.path,
                format!(
                    "the image is {}x{}, the first image ({}) {w}x{h}; a batch needs one size",
                    img.width(),
                    img.height(),
                    first.path.display()
                ),
            ));
        }
        // Channel-last bytes, `[H, W, C]`.
        let hwc = match channels {
            1 => img.to_luma8().into_raw(),
            _ => img.to_rgb8().into_raw(),
        };
        for (i, px) in hwc.chunks_exact(channels).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                item[c * hw + i] = v as f32 / 255.0;
            }
        }
    }
    Ok(Tensor::from_vec(out, &[ds.images.len(), channels, h, w]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::ImageRecord;

    fn record(path: std::path::PathBuf, w: u32, h: u32) -> ImageRecord {
        ImageRecord {
            id: 1,
            path,
            width: w,
            height: h,
            objects: Vec::new(),
        }
    }

    #[test]
    fn loads_a_batch_and_refuses_mixed_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.png");
        let mut img = image::GrayImage::new(4, 3);
        img.put_pixel(2, 1, image::Luma([255]));
        img.save(&a).unwrap();
        let b = dir.path().join("b.png");
        image::GrayImage::new(5, 3).save(&b).unwrap();
        let mut ds = DetectionDataset {
            images: vec![record(a.clone(), 4, 3), record(a, 4, 3)],
            categories: Vec::new(),
        };
        let x = load_detection_images(&ds, 1).unwrap();
        assert_eq!(x.shape(), &[2, 1, 3, 4]);
        let v = x.to_f32_vec();
        assert_eq!(v[4 + 2], 1.0);
        assert_eq!(v.iter().sum::<f32>(), 2.0);
        assert_eq!(
            load_detection_images(&ds, 3).unwrap().shape(),
            &[2, 3, 3, 4]
        );
        ds.images.push(record(b, 5, 3));
        let err = load_detection_images(&ds, 1).unwrap_err().to_string();
        assert!(err.contains("b.png") && err.contains("5x3"), "{err}");
    }
}
