//! Bounding boxes: one in-memory form ([`BBox`], corners in pixels) and the formats boxes
//! arrive in ([`BoxFormat`]), with the conversions between them.
//!
//! Conventions:
//! - A [`BBox`] is `x1, y1, x2, y2` in pixels, continuous coordinates: the box covers
//!   `[x1, x2) x [y1, y2)`, so its width is `x2 - x1` (COCO's convention, not the VOC
//!   devkit's "+1 pixel" one). The origin is the top-left corner of the image.
//! - A [`BoxFormat`] is a [`BoxLayout`] (`xyxy` corners, `xywh` top-left corner and size as
//!   in COCO files, `cxcywh` centre and size as in YOLO files) and whether the numbers are
//!   pixels or fractions of the image's width and height (`normalized`, YOLO's).
//! - Values are `f64`: COCO's evaluator works in double precision and its numbers are
//!   reproduced exactly (`coco_eval`).
//! - Validity ([`BBox::check`]): every coordinate finite, `x2 >= x1`, `y2 >= y1`. A box of
//!   zero area is valid data (it can be a detection) but [`BBox::check_in_image`] refuses
//!   it for ground truth, where it is almost always an annotation mistake.

use crate::error::{Error, Result};

/// An axis-aligned box in pixels: `[x1, x2) x [y1, y2)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BBox {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

/// How the four numbers of a box are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoxLayout {
    /// Corners: `x1, y1, x2, y2`.
    Xyxy,
    /// Top-left corner and size: `x, y, w, h` (COCO).
    Xywh,
    /// Centre and size: `cx, cy, w, h` (YOLO).
    Cxcywh,
}

/// A layout and whether its numbers are fractions of the image size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxFormat {
    pub layout: BoxLayout,
    /// Numbers are fractions of the image's width (x, w) and height (y, h), not pixels.
    pub normalized: bool,
}

impl BoxFormat {
    /// COCO files: `x, y, w, h` in pixels.
    pub const COCO: BoxFormat = BoxFormat {
        layout: BoxLayout::Xywh,
        normalized: false,
    };
    /// YOLO label files: `cx, cy, w, h` as fractions of the image size.
    pub const YOLO: BoxFormat = BoxFormat {
        layout: BoxLayout::Cxcywh,
        normalized: true,
    };
    /// Corners in pixels (the in-memory form).
    pub const XYXY: BoxFormat = BoxFormat {
        layout: BoxLayout::Xyxy,
        normalized: false,
    };

    pub fn new(layout: BoxLayout, normalized: bool) -> BoxFormat {
        BoxFormat { layout, normalized }
    }

    /// Reads four numbers in this format as a box in pixels. `image` is `(width, height)`,
    /// used only when the format is normalised. Non-finite numbers or a negative size are
    /// errors.
    pub fn to_bbox(self, v: [f64; 4], image: (f64, f64)) -> Result<BBox> {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(format!("box {v:?} has a non-finite number")));
        }
        let (sx, sy) = if self.normalized { image } else { (1.0, 1.0) };
        let b = match self.layout {
            BoxLayout::Xyxy => BBox::new(v[0] * sx, v[1] * sy, v[2] * sx, v[3] * sy),
            BoxLayout::Xywh | BoxLayout::Cxcywh => {
                if v[2] < 0.0 || v[3] < 0.0 {
                    return Err(Error::invalid(format!(
                        "box {v:?} has a negative width or height"
                    )));
                }
                let (w, h) = (v[2] * sx, v[3] * sy);
                let (x, y) = if self.layout == BoxLayout::Xywh {
                    (v[0] * sx, v[1] * sy)
                } else {
                    (v[0] * sx - w / 2.0, v[1] * sy - h / 2.0)
                };
                BBox::new(x, y, x + w, y + h)
            }
        };
        b.check()?;
        Ok(b)
    }

    /// Writes a box in pixels as four numbers in this format; `image` is `(width, height)`,
    /// used only when the format is normalised.
    pub fn from_bbox(self, b: &BBox, image: (f64, f64)) -> [f64; 4] {
        let (sx, sy) = if self.normalized { image } else { (1.0, 1.0) };
        let (w, h) = (b.width(), b.height());
        let v = match self.layout {
            BoxLayout::Xyxy => [b.x1, b.y1, b.x2, b.y2],
            BoxLayout::Xywh => [b.x1, b.y1, w, h],
            BoxLayout::Cxcywh => [b.x1 + w / 2.0, b.y1 + h / 2.0, w, h],
        };
        [v[0] / sx, v[1] / sy, v[2] / sx, v[3] / sy]
    }
}

/// Converts four numbers from one format to another (`image` = `(width, height)`).
pub fn convert(v: [f64; 4], from: BoxFormat, to: BoxFormat, image: (f64, f64)) -> Result<[f64; 4]> {
    Ok(to.from_bbox(&from.to_bbox(v, image)?, image))
}

impl BBox {
    pub fn new(x1: f64, y1: f64, x2: f64, y2: f64) -> BBox {
        BBox { x1, y1, x2, y2 }
    }

    /// From COCO's `x, y, w, h`.
    pub fn from_xywh(x: f64, y: f64, w: f64, h: f64) -> BBox {
        BBox::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f64 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f64 {
        self.y2 - self.y1
    }

    /// `width * height`; 0 for a box whose corners are swapped (no negative areas).
    pub fn area(&self) -> f64 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// The box cut to the image `[0, width] x [0, height]`; a box wholly outside becomes
    /// a zero-area box on the border.
    pub fn clip(&self, width: f64, height: f64) -> BBox {
        let cx = |x: f64| x.clamp(0.0, width);
        let cy = |y: f64| y.clamp(0.0, height);
        BBox::new(cx(self.x1), cy(self.y1), cx(self.x2), cy(self.y2))
    }

    /// Finite corners with `x2 >= x1` and `y2 >= y1`.
    pub fn check(&self) -> Result<()> {
        let v = [self.x1, self.y1, self.x2, self.y2];
        if v.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(format!(
                "box {self} has a non-finite corner"
            )));
        }
        if self.x2 < self.x1 || self.y2 < self.y1 {
            return Err(Error::invalid(format!(
                "box {self} has its corners swapped (x2 < x1 or y2 < y1)"
            )));
        }
        Ok(())
    }

    /// A ground-truth box: valid ([`check`](Self::check)), of positive area, and inside the
    /// image `[0, width] x [0, height]` up to `tolerance` pixels (a box overhanging by less
    /// is for the caller to [`clip`](Self::clip)).
    pub fn check_in_image(&self, width: f64, height: f64, tolerance: f64) -> Result<()> {
        self.check()?;
        if self.area() <= 0.0 {
            return Err(Error::invalid(format!("box {self} has zero area")));
        }
        if self.x1 < -tolerance
            || self.y1 < -tolerance
            || self.x2 > width + tolerance
            || self.y2 > height + tolerance
        {
            return Err(Error::invalid(format!(
                "box {self} lies outside the {width}x{height} image"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for BBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[x1 {}, y1 {}, x2 {}, y2 {}]",
            self.x1, self.y1, self.x2, self.y2
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: (f64, f64) = (200.0, 100.0);

    #[test]
    fn formats_convert_both_ways() {
        let b = BBox::new(20.0, 10.0, 60.0, 50.0);
        let cases = [
            (BoxFormat::XYXY, [20.0, 10.0, 60.0, 50.0]),
            (BoxFormat::COCO, [20.0, 10.0, 40.0, 40.0]),
            (
                BoxFormat::new(BoxLayout::Cxcywh, false),
                [40.0, 30.0, 40.0, 40.0],
            ),
            (BoxFormat::YOLO, [0.2, 0.3, 0.2, 0.4]),
            (BoxFormat::new(BoxLayout::Xyxy, true), [0.1, 0.1, 0.3, 0.5]),
            (BoxFormat::new(BoxLayout::Xywh, true), [0.1, 0.1, 0.2, 0.4]),
        ];
        for (fmt, v) in cases {
            let w = fmt.from_bbox(&b, IMG);
            for (x, y) in w.iter().zip(v) {
                assert!((x - y).abs() < 1e-12, "{fmt:?}: {w:?} vs {v:?}");
            }
            let back = fmt.to_bbox(v, IMG).unwrap();
            assert!((back.x1 - b.x1).abs() < 1e-9 && (back.y2 - b.y2).abs() < 1e-9);
        }
        let yolo = convert(
            [20.0, 10.0, 40.0, 40.0],
            BoxFormat::COCO,
            BoxFormat::YOLO,
            IMG,
        );
        assert_eq!(yolo.unwrap(), [0.2, 0.3, 0.2, 0.4]);
    }

    #[test]
    fn area_clip_and_checks() {
        let b = BBox::new(-10.0, 5.0, 30.0, 120.0);
        assert_eq!(b.area(), 40.0 * 115.0);
        assert_eq!(b.clip(200.0, 100.0), BBox::new(0.0, 5.0, 30.0, 100.0));
        assert!(b.check_in_image(200.0, 100.0, 0.5).is_err());
        assert!(b.check_in_image(200.0, 100.0, 25.0).is_ok());
        let zero = BBox::new(5.0, 5.0, 5.0, 9.0);
        assert_eq!(zero.area(), 0.0);
        assert!(zero.check().is_ok());
        let e = zero.check_in_image(200.0, 100.0, 0.0).unwrap_err();
        assert!(e.to_string().contains("zero area"), "{e}");
        assert!(BBox::new(5.0, 5.0, 4.0, 9.0).check().is_err());
        assert_eq!(BBox::new(5.0, 5.0, 4.0, 9.0).area(), 0.0);
        assert!(BBox::new(f64::NAN, 0.0, 1.0, 1.0).check().is_err());
        assert!(BoxFormat::COCO.to_bbox([0.0, 0.0, -1.0, 2.0], IMG).is_err());
        assert!(BoxFormat::COCO
            .to_bbox([0.0, f64::INFINITY, 1.0, 2.0], IMG)
            .is_err());
        // Wholly outside: clipped to a zero-area box on the border.
        assert_eq!(
            BBox::new(300.0, 10.0, 310.0, 20.0)
                .clip(200.0, 100.0)
                .area(),
            0.0
        );
    }
}
