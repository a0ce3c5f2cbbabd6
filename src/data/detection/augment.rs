//! Box-aware augmentation: plain functions over one image `[C, H, W]` (a slice and its
//! [`ImageDims`]) and its boxes ([`BBox`], pixels, corners), moving the pixels and the
//! boxes by the same map so the boxes still enclose their objects.
//!
//! - [`hflip`]: mirror left-right. Right for most photos (a car facing left is still a
//!   car), WRONG for digits and text (a mirrored 2, 3, 7 is not that digit, and a
//!   mirrored 5 looks like a 2), so `mnist-detect` must not use it.
//! - [`affine`] / [`random_scale_translate`]: zoom about the centre and shift, nearest
//!   neighbour, output the input's size, what falls outside the source is 0 (black).
//! - [`crop`] / [`random_crop`]: cut a window, output the window's size (no resampling).
//!
//! Box rules:
//! - A box moves by the same map as the pixels: `x -> s * x + t` for [`affine`] (pixel
//!   centres are sampled, so a filled rectangle's pixels stay within its moved box give
//!   or take half a pixel), `x -> W - x` for [`hflip`], `x -> x - x0` for [`crop`].
//! - Then it is clipped to the output image and DROPPED when what is left is less than
//!   `min_visible` of its moved area (or nothing is left): an object mostly cut off is
//!   not one a detector should be asked to find. [`DEFAULT_MIN_VISIBLE`] is 0.5.
//! - [`Augmented::kept`] lists which input boxes survived, in order, so the caller drops
//!   their classes too.
//!
//! ```
//! use nabla::data::detection::augment::{hflip, ImageDims};
//! use nabla::detection::BBox;
//! let dims = ImageDims { channels: 1, height: 2, width: 4 };
//! let img = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
//! let out = hflip(&img, dims, &[BBox::new(0.0, 0.0, 1.0, 2.0)]).unwrap();
//! assert_eq!(out.image, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
//! assert_eq!(out.boxes, [BBox::new(3.0, 0.0, 4.0, 2.0)]);
//! ```

use crate::detection::BBox;
use crate::engine::Rng;
use crate::error::{Error, Result};

/// What fraction of a moved box must stay inside the output image for it to be kept.
pub const DEFAULT_MIN_VISIBLE: f64 = 0.5;

/// The sizes of an image `[C, H, W]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageDims {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageDims {
    fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// An augmented image and the boxes that survived.
#[derive(Clone, Debug, PartialEq)]
pub struct Augmented {
    /// `[C, H, W]` of `dims`.
    pub image: Vec<f32>,
    pub dims: ImageDims,
    /// The kept boxes, moved and clipped.
    pub boxes: Vec<BBox>,
    /// The index in the input of each kept box.
    pub kept: Vec<usize>,
}

fn check(image: &[f32], dims: ImageDims, boxes: &[BBox], min_visible: f64) -> Result<()> {
    if dims.len() == 0 {
        return Err(Error::invalid(format!(
            "augment: an image of {dims:?} has no pixels"
        )));
    }
    if image.len() != dims.len() {
        return Err(Error::shape(format!(
            "augment: the image has {} values, [C, H, W] = [{}, {}, {}] needs {}",
            image.len(),
            dims.channels,
            dims.height,
            dims.width,
            dims.len()
        )));
    }
    for (i, b) in boxes.iter().enumerate() {
        b.check()
            .map_err(|e| Error::invalid(format!("augment: box {i}: {e}")))?;
    }
    if !(0.0..=1.0).contains(&min_visible) {
        return Err(Error::invalid(format!(
            "augment: min_visible must be in [0, 1], not {min_visible}"
        )));
    }
    Ok(())
}

/// Clips moved boxes to a `w x h` image and keeps those with at least `min_visible` of
/// their area (and some area) left.
fn clip_and_keep(moved: Vec<BBox>, w: f64, h: f64, min_visible: f64) -> (Vec<BBox>, Vec<usize>) {
    let mut boxes = Vec::new();
    let mut kept = Vec::new();
    for (i, b) in moved.into_iter().enumerate() {
        let c = b.clip(w, h);
        let visible = if c.x2 > c.x1 && c.y2 > c.y1 {
            c.area()
        } else {
            0.0
        };
        if visible > 0.0 && visible >= min_visible * b.area() {
            boxes.push(c);
            kept.push(i);
        }
    }
    (boxes, kept)
}

/// Mirrors the image left-right (see the module docs for when not to).
pub fn hflip(image: &[f32], dims: ImageDims, boxes: &[BBox]) -> Result<Augmented> {
    check(image, dims, boxes, 0.0)?;
    let w = dims.width;
    let mut out = vec![0f32; image.len()];
    for (o, i) in out.chunks_exact_mut(w).zip(image.chunks_exact(w)) {
        for (x, v) in o.iter_mut().enumerate() {
            *v = i[w - 1 - x];
        }
    }
    let wf = w as f64;
    let moved = boxes
        .iter()
        .map(|b| BBox::new(wf - b.x2, b.y1, wf - b.x1, b.y2))
        .collect();
    // A flip loses nothing: every box is kept whole.
    let (boxes, kept) = clip_and_keep(moved, wf, dims.height as f64, 0.0);
    Ok(Augmented {
        image: out,
        dims,
        boxes,
        kept,
    })
}

/// Maps the image by `x -> scale * x + tx`, `y -> scale * y + ty` (pixel coordinates,
/// continuous), sampling the nearest source pixel at each output pixel's centre; the
/// output has the input's size and is 0 where nothing maps.
pub fn affine(
    image: &[f32],
    dims: ImageDims,
    boxes: &[BBox],
    scale: f64,
    tx: f64,
    ty: f64,
    min_visible: f64,
) -> Result<Augmented> {
    check(image, dims, boxes, min_visible)?;
    if !(scale.is_finite() && scale > 0.0 && tx.is_finite() && ty.is_finite()) {
        return Err(Error::invalid(format!(
            "augment: affine needs a positive finite scale and finite shifts, not scale \
             {scale}, shift ({tx}, {ty})"
        )));
    }
    let (h, w) = (dims.height, dims.width);
    // The source column (row) of each output column (row), if inside the source.
    let source = |o: usize, t: f64, n: usize| {
        let u = ((o as f64 + 0.5 - t) / scale).floor();
        (u >= 0.0 && u < n as f64).then_some(u as usize)
    };
    let cols: Vec<Option<usize>> = (0..w).map(|x| source(x, tx, w)).collect();
    let mut out = vec![0f32; image.len()];
    for c in 0..dims.channels {
        let plane = &image[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            let Some(sy) = source(y, ty, h) else {
                continue;
            };
            let row = &mut out[(c * h + y) * w..(c * h + y + 1) * w];
            for (v, sx) in row.iter_mut().zip(&cols) {
                if let Some(sx) = sx {
                    *v = plane[sy * w + sx];
                }
            }
        }
    }
    let moved = boxes
        .iter()
        .map(|b| {
            BBox::new(
                scale * b.x1 + tx,
                scale * b.y1 + ty,
                scale * b.x2 + tx,
                scale * b.y2 + ty,
            )
        })
        .collect();
    let (boxes, kept) = clip_and_keep(moved, w as f64, h as f64, min_visible);
    Ok(Augmented {
        image: out,
        dims,
        boxes,
        kept,
    })
}

/// The ranges [`random_scale_translate`] draws from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleTranslate {
    /// The zoom, uniform in `[lo, hi]` (about the image's centre).
    pub scale: (f64, f64),
    /// The shift, uniform in `[-t, t]` of the width (height) in each direction.
    pub translate: f64,
    /// See the module docs.
    pub min_visible: f64,
}

impl Default for ScaleTranslate {
    fn default() -> Self {
        ScaleTranslate {
            scale: (0.75, 1.25),
            translate: 0.1,
            min_visible: DEFAULT_MIN_VISIBLE,
        }
    }
}

/// A random zoom about the centre and shift ([`affine`]).
pub fn random_scale_translate(
    image: &[f32],
    dims: ImageDims,
    boxes: &[BBox],
    opts: &ScaleTranslate,
    rng: &mut Rng,
) -> Result<Augmented> {
    let (lo, hi) = opts.scale;
    if !(lo > 0.0 && hi >= lo && hi.is_finite() && (0.0..=1.0).contains(&opts.translate)) {
        return Err(Error::invalid(format!(
            "augment: scale range must be 0 < lo <= hi and translate in [0, 1], not {opts:?}"
        )));
    }
    let s = lo + (hi - lo) * rng.uniform() as f64;
    let (w, h) = (dims.width as f64, dims.height as f64);
    let dx = opts.translate * w * (2.0 * rng.uniform() as f64 - 1.0);
    let dy = opts.translate * h * (2.0 * rng.uniform() as f64 - 1.0);
    // Zoom about the centre: the centre maps to the centre, then shifts.
    let tx = (1.0 - s) * w / 2.0 + dx;
    let ty = (1.0 - s) * h / 2.0 + dy;
    affine(image, dims, boxes, s, tx, ty, opts.min_visible)
}

/// A window of an image: top-left corner and size, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// Cuts `window` out of the image (the output is the window's size) and moves, clips and
/// drops the boxes (see the module docs).
pub fn crop(
    image: &[f32],
    dims: ImageDims,
    boxes: &[BBox],
    window: Window,
    min_visible: f64,
) -> Result<Augmented> {
    check(image, dims, boxes, min_visible)?;
    let Window {
        x,
        y,
        width: cw,
        height: ch,
    } = window;
    if cw == 0 || ch == 0 || x + cw > dims.width || y + ch > dims.height {
        return Err(Error::invalid(format!(
            "augment: the crop window {window:?} is empty or not inside the {}x{} image",
            dims.width, dims.height
        )));
    }
    let (h, w) = (dims.height, dims.width);
    let mut out = Vec::with_capacity(dims.channels * ch * cw);
    for c in 0..dims.channels {
        for r in y..y + ch {
            let start = (c * h + r) * w + x;
            out.extend_from_slice(&image[start..start + cw]);
        }
    }
    let (fx, fy) = (x as f64, y as f64);
    let moved = boxes
        .iter()
        .map(|b| BBox::new(b.x1 - fx, b.y1 - fy, b.x2 - fx, b.y2 - fy))
        .collect();
    let (boxes, kept) = clip_and_keep(moved, cw as f64, ch as f64, min_visible);
    Ok(Augmented {
        image: out,
        dims: ImageDims {
            channels: dims.channels,
            height: ch,
            width: cw,
        },
        boxes,
        kept,
    })
}

/// What [`random_crop`] draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropOptions {
    /// The window's side as a fraction of the image's, uniform in `[min_side, 1]`
    /// (width and height drawn apart).
    pub min_side: f64,
    /// See the module docs.
    pub min_visible: f64,
}

impl Default for CropOptions {
    fn default() -> Self {
        CropOptions {
            min_side: 0.6,
            min_visible: DEFAULT_MIN_VISIBLE,
        }
    }
}

/// A random window ([`crop`]).
pub fn random_crop(
    image: &[f32],
    dims: ImageDims,
    boxes: &[BBox],
    opts: &CropOptions,
    rng: &mut Rng,
) -> Result<Augmented> {
    if !(opts.min_side > 0.0 && opts.min_side <= 1.0) {
        return Err(Error::invalid(format!(
            "augment: min_side must be in (0, 1], not {}",
            opts.min_side
        )));
    }
    let side = |n: usize, rng: &mut Rng| {
        let f = opts.min_side + (1.0 - opts.min_side) * rng.uniform() as f64;
        ((f * n as f64).round() as usize).clamp(1, n.max(1))
    };
    let cw = side(dims.width, rng);
    let ch = side(dims.height, rng);
    let x = rng.below(dims.width.saturating_sub(cw) + 1);
    let y = rng.below(dims.height.saturating_sub(ch) + 1);
    let window = Window {
        x,
        y,
        width: cw,
        height: ch,
    };
    crop(image, dims, boxes, window, opts.min_visible)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIMS: ImageDims = ImageDims {
        channels: 2,
        height: 30,
        width: 40,
    };

    /// A black image with white rectangles (both channels) and their boxes.
    fn picture(rects: &[(usize, usize, usize, usize)]) -> (Vec<f32>, Vec<BBox>) {
        let (h, w) = (DIMS.height, DIMS.width);
        let mut img = vec![0f32; DIMS.len()];
        for &(x1, y1, x2, y2) in rects {
            for c in 0..DIMS.channels {
                for y in y1..y2 {
                    for x in x1..x2 {
                        img[(c * h + y) * w + x] = 1.0;
                    }
                }
            }
        }
        let boxes = rects
            .iter()
            .map(|&(a, b, c, d)| BBox::new(a as f64, b as f64, c as f64, d as f64))
            .collect();
        (img, boxes)
    }

    /// The tight box of the white pixels of channel `c` inside `region`.
    fn white_box(a: &Augmented, c: usize, region: &BBox) -> Option<BBox> {
        let (h, w) = (a.dims.height, a.dims.width);
        let mut b: Option<BBox> = None;
        for y in 0..h {
            for x in 0..w {
                let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                let inside = cx >= region.x1 - 1.0
                    && cx <= region.x2 + 1.0
                    && cy >= region.y1 - 1.0
                    && cy <= region.y2 + 1.0;
                if a.image[(c * h + y) * w + x] > 0.5 && inside {
                    let p = BBox::new(x as f64, y as f64, x as f64 + 1.0, y as f64 + 1.0);
                    b = Some(match b {
                        None => p,
                        Some(q) => BBox::new(
                            q.x1.min(p.x1),
                            q.y1.min(p.y1),
                            q.x2.max(p.x2),
                            q.y2.max(p.y2),
                        ),
                    });
                }
            }
        }
        b
    }

    /// Every kept box agrees with the white pixels around it to within `tol` pixels, in
    /// both channels.
    fn boxes_agree(a: &Augmented, tol: f64) {
        for b in &a.boxes {
            for c in 0..a.dims.channels {
                let wb = white_box(a, c, b).unwrap_or_else(|| panic!("no white pixels for {b:?}"));
                for (p, q) in [(wb.x1, b.x1), (wb.y1, b.y1), (wb.x2, b.x2), (wb.y2, b.y2)] {
                    assert!((p - q).abs() <= tol, "white {wb:?} vs box {b:?}");
                }
            }
        }
    }

    #[test]
    fn hflip_moves_pixels_and_boxes_together() {
        let (img, boxes) = picture(&[(2, 3, 9, 12), (30, 20, 40, 30)]);
        let a = hflip(&img, DIMS, &boxes).unwrap();
        assert_eq!(a.boxes[0], BBox::new(31.0, 3.0, 38.0, 12.0));
        assert_eq!(a.boxes[1], BBox::new(0.0, 20.0, 10.0, 30.0));
        assert_eq!(a.kept, [0, 1]);
        boxes_agree(&a, 0.0);
        // Twice is the identity.
        let b = hflip(&a.image, DIMS, &a.boxes).unwrap();
        assert_eq!((b.image, b.boxes), (img, boxes));
    }

    #[test]
    fn affine_boxes_enclose_the_moved_rectangles() {
        let (img, boxes) = picture(&[(5, 4, 15, 11), (22, 15, 31, 26)]);
        // Identity and a whole-pixel shift are exact.
        let a = affine(&img, DIMS, &boxes, 1.0, 0.0, 0.0, 0.5).unwrap();
        assert_eq!((&a.image, &a.boxes), (&img, &boxes));
        let a = affine(&img, DIMS, &boxes, 1.0, 3.0, -2.0, 0.5).unwrap();
        assert_eq!(a.boxes[0], BBox::new(8.0, 2.0, 18.0, 9.0));
        boxes_agree(&a, 0.0);
        // Random zooms and shifts: within a pixel (nearest sampling at pixel centres).
        let mut rng = Rng::new(5);
        let opts = ScaleTranslate {
            scale: (0.6, 1.4),
            translate: 0.15,
            min_visible: 0.5,
        };
        for _ in 0..50 {
            let a = random_scale_translate(&img, DIMS, &boxes, &opts, &mut rng).unwrap();
            boxes_agree(&a, 1.0);
        }
    }

    #[test]
    fn crops_cut_pixels_and_clip_or_drop_boxes() {
        // Box 0 inside; box 1 keeps 6 of 10 columns (60 %); box 2 keeps 4 of 10 (40 %).
        let (img, boxes) = picture(&[(12, 5, 18, 10), (6, 15, 16, 20), (26, 15, 36, 20)]);
        let window = Window {
            x: 10,
            y: 2,
            width: 20,
            height: 25,
        };
        let a = crop(&img, DIMS, &boxes, window, 0.5).unwrap();
        assert_eq!(a.dims.width, 20);
        assert_eq!(a.dims.height, 25);
        assert_eq!(a.kept, [0, 1]);
        assert_eq!(a.boxes[0], BBox::new(2.0, 3.0, 8.0, 8.0));
        assert_eq!(a.boxes[1], BBox::new(0.0, 13.0, 6.0, 18.0));
        boxes_agree(&a, 0.0);
        // With a lower bar the 40 % box stays, clipped.
        let a = crop(&img, DIMS, &boxes, window, 0.3).unwrap();
        assert_eq!(a.kept, [0, 1, 2]);
        assert_eq!(a.boxes[2], BBox::new(16.0, 13.0, 20.0, 18.0));
        // A box wholly outside goes whatever the bar.
        let a = crop(
            &img,
            DIMS,
            &boxes,
            Window {
                x: 0,
                y: 0,
                width: 5,
                height: 5,
            },
            0.0,
        )
        .unwrap();
        assert!(a.kept.is_empty());
        // Random crops: same seed, same result; boxes agree with the pixels.
        let mut r1 = Rng::new(9);
        let mut r2 = Rng::new(9);
        for _ in 0..30 {
            let a = random_crop(&img, DIMS, &boxes, &CropOptions::default(), &mut r1).unwrap();
            let b = random_crop(&img, DIMS, &boxes, &CropOptions::default(), &mut r2).unwrap();
            assert_eq!(a, b);
            boxes_agree(&a, 0.0);
            for (b, &k) in a.boxes.iter().zip(&a.kept) {
                assert!(b.area() >= 0.5 * boxes[k].area());
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let (img, boxes) = picture(&[(1, 1, 3, 3)]);
        assert!(hflip(&img[1..], DIMS, &boxes).is_err());
        assert!(affine(&img, DIMS, &boxes, 0.0, 0.0, 0.0, 0.5).is_err());
        assert!(affine(&img, DIMS, &boxes, 1.0, 0.0, 0.0, 1.5).is_err());
        let bad = [BBox::new(5.0, 0.0, 1.0, 1.0)];
        assert!(hflip(&img, DIMS, &bad).is_err());
        let window = Window {
            x: 30,
            y: 0,
            width: 20,
            height: 5,
        };
        assert!(crop(&img, DIMS, &boxes, window, 0.5).is_err());
    }
}
