//! The image transforms behind augmentation, on one channels-first image (`[C, H, W]`
//! as a flat slice): padded crop and horizontal flip as index copies, rotation + shift +
//! scale as one affine warp with bilinear sampling, and brightness/contrast.
//!
//! They are plain functions with their parameters given, so each can be tested against
//! a hand-computed result; `augment` draws the parameters and chains them.
//!
//! Coordinates: `x` runs along a row (width), `y` down the rows (height), and the pixel
//! `(row i, column j)` sits at `(x, y) = (j, i)`. Rotation and scale are about the image
//! centre `((W - 1) / 2, (H - 1) / 2)`; a positive angle turns the picture
//! counter-clockwise as it is displayed (as torchvision's `rotate` and Keras'
//! `RandomRotation` do).

/// The channels, height and width of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chw {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Chw {
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Pads `src` with `pad` zeros on every side and copies the `H x W` window whose top-left
/// corner is at (`top`, `left`) in the padded image into `dst` (torchvision's
/// `RandomCrop(size, padding=pad)` once the offsets are drawn). `top` and `left` lie in
/// `0..=2 * pad`; `top = left = pad` is the identity.
pub fn pad_crop(src: &[f32], dst: &mut [f32], dims: Chw, pad: usize, top: usize, left: usize) {
    debug_assert!(top <= 2 * pad && left <= 2 * pad);
    let Chw { c, h, w } = dims;
    // Source row/column of destination row/column k: k + offset - pad, when in range.
    let dy = top as isize - pad as isize;
    let dx = left as isize - pad as isize;
    // The destination columns whose source column is inside the image: one contiguous
    // run per row, copied as a slice; the rest of the row is padding.
    let j0 = (-dx).clamp(0, w as isize) as usize;
    let j1 = (w as isize - dx).clamp(0, w as isize) as usize;
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        let out = &mut dst[ch * h * w..(ch + 1) * h * w];
        for i in 0..h {
            let row = &mut out[i * w..(i + 1) * w];
            let si = i as isize + dy;
            if si < 0 || si >= h as isize || j0 >= j1 {
                row.fill(0.0);
                continue;
            }
            let s0 = (si as usize) * w;
            let sj0 = (j0 as isize + dx) as usize;
            row[..j0].fill(0.0);
            row[j0..j1].copy_from_slice(&plane[s0 + sj0..s0 + sj0 + (j1 - j0)]);
            row[j1..].fill(0.0);
        }
    }
}

/// Mirrors every row in place (left becomes right).
pub fn flip_horizontal(img: &mut [f32], dims: Chw) {
    for row in img.chunks_exact_mut(dims.w.max(1)) {
        row.reverse();
    }
}

/// A rotation, shift and scale, composed as: scale and rotate about the centre, then
/// shift. Output point = centre + scale * R(degrees) * (input point - centre) + shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    /// Counter-clockwise as displayed.
    pub degrees: f64,
    /// Above 1 zooms in (the picture grows), below 1 zooms out.
    pub scale: f64,
    /// Pixels to the right.
    pub shift_x: f64,
    /// Pixels down.
    pub shift_y: f64,
}

impl Affine {
    pub const IDENTITY: Affine = Affine {
        degrees: 0.0,
        scale: 1.0,
        shift_x: 0.0,
        shift_y: 0.0,
    };
}

/// Warps `src` by `t` into `dst`: every output pixel is the bilinear interpolation of
/// the input at the inverse-mapped point, with zeros outside the input (Keras'
/// `fill_mode="constant"`). The identity transform, whole-pixel shifts and quarter turns
/// reproduce pixels exactly (see `bilinear`).
pub fn warp_affine(src: &[f32], dst: &mut [f32], dims: Chw, t: &Affine) {
    let Chw { c, h, w } = dims;
    let (sin, cos) = t.degrees.to_radians().sin_cos();
    let cx = (w as f64 - 1.0) / 2.0;
    let cy = (h as f64 - 1.0) / 2.0;
    // Inverse map: input = centre + R(-degrees) * (output - centre - shift) / scale, where
    // R(a) turns counter-clockwise on a y-down grid: (x, y) -> (cos x + sin y, -sin x + cos y).
    let inv = 1.0 / t.scale;
    let plane = h * w;
    for i in 0..h {
        let v = i as f64 - cy - t.shift_y;
        for j in 0..w {
            let u = j as f64 - cx - t.shift_x;
            let x = (cos * u - sin * v) * inv + cx;
            let y = (sin * u + cos * v) * inv + cy;
            for ch in 0..c {
                dst[ch * plane + i * w + j] =
                    bilinear(&src[ch * plane..(ch + 1) * plane], h, w, x, y);
            }
        }
    }
}

/// The value of a `h x w` plane at the real point `(x, y)`, interpolated between its four
/// neighbouring pixels, which count as 0 outside the plane. At a whole-pixel point the
/// weights are exactly 1 and 0, so the pixel comes back unchanged.
fn bilinear(plane: &[f32], h: usize, w: usize, x: f64, y: f64) -> f32 {
    // Further out than one pixel, all four neighbours are padding (and the casts below
    // stay small).
    if !(x > -1.0 && y > -1.0 && x < w as f64 && y < h as f64) {
        return 0.0;
    }
    // cos(90 degrees) is 6e-17, not 0, so a quarter turn lands a hair off the pixels;
    // snapping points within 1e-9 pixel of a whole one keeps such turns exact.
    let snap = |v: f64| {
        let r = v.round();
        if (v - r).abs() < 1e-9 {
            r
        } else {
            v
        }
    };
    let (x, y) = (snap(x), snap(y));
    let (xf, yf) = (x.floor(), y.floor());
    let (fx, fy) = ((x - xf) as f32, (y - yf) as f32);
    let (x0, y0) = (xf as isize, yf as isize);
    let at = |yy: isize, xx: isize| -> f32 {
        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
            plane[yy as usize * w + xx as usize]
        } else {
            0.0
        }
    };
    let (a, b) = (at(y0, x0), at(y0, x0 + 1));
    let (c, d) = (at(y0 + 1, x0), at(y0 + 1, x0 + 1));
    let top = a + fx * (b - a);
    let bottom = c + fx * (d - c);
    top + fy * (bottom - top)
}

/// Scales every value's distance from the image's mean (over all its channels and pixels)
/// by `factor`: 1 leaves the image as it is, 0 makes it flat grey at its mean
/// (`tf.image.adjust_contrast` does the same per channel). Values are not clipped.
pub fn adjust_contrast(img: &mut [f32], factor: f32) {
    if img.is_empty() {
        return;
    }
    let mean = (img.iter().map(|&v| v as f64).sum::<f64>() / img.len() as f64) as f32;
    for v in img.iter_mut() {
        *v = (*v - mean) * factor + mean;
    }
}

/// Adds `delta` to every value (Keras' `RandomBrightness` before its clipping). Values
/// are not clipped: inputs need not be in [0, 1] (standardised data is not).
pub fn adjust_brightness(img: &mut [f32], delta: f32) {
    for v in img.iter_mut() {
        *v += delta;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D3: Chw = Chw { c: 1, h: 3, w: 3 };

    fn ramp(dims: Chw) -> Vec<f32> {
        (0..dims.len()).map(|v| v as f32 + 1.0).collect()
    }

    fn warp(src: &[f32], dims: Chw, t: Affine) -> Vec<f32> {
        let mut dst = vec![f32::NAN; dims.len()];
        warp_affine(src, &mut dst, dims, &t);
        dst
    }

    #[test]
    fn flip_twice_is_the_identity_and_once_mirrors_rows() {
        let dims = Chw { c: 2, h: 3, w: 4 };
        let src = ramp(dims);
        let mut img = src.clone();
        flip_horizontal(&mut img, dims);
        assert_eq!(&img[..4], &[4., 3., 2., 1.]);
        assert_eq!(&img[12..16], &[16., 15., 14., 13.]);
        flip_horizontal(&mut img, dims);
        assert_eq!(img, src);
    }

    #[test]
    fn crop_without_padding_is_the_identity() {
        let dims = Chw { c: 3, h: 4, w: 5 };
        let src = ramp(dims);
        let mut dst = vec![f32::NAN; dims.len()];
        pad_crop(&src, &mut dst, dims, 0, 0, 0);
        assert_eq!(dst, src);
        // With padding, the centred window is the identity too.
        pad_crop(&src, &mut dst, dims, 2, 2, 2);
        assert_eq!(dst, src);
    }

    #[test]
    fn crop_offsets_move_the_image_and_fill_zeros() {
        let src = ramp(D3); // 1 2 3 / 4 5 6 / 7 8 9
        let mut dst = vec![f32::NAN; 9];
        // Window at the padded image's top-left corner: the image moves down-right by 1.
        pad_crop(&src, &mut dst, D3, 1, 0, 0);
        assert_eq!(dst, vec![0., 0., 0., 0., 1., 2., 0., 4., 5.]);
        // At the bottom-right corner: up-left by 1.
        pad_crop(&src, &mut dst, D3, 1, 2, 2);
        assert_eq!(dst, vec![5., 6., 0., 8., 9., 0., 0., 0., 0.]);
        // Padding wider than the image: a window entirely in the padding is all zeros.
        pad_crop(&src, &mut dst, D3, 4, 0, 8);
        assert_eq!(dst, vec![0.0; 9]);
        pad_crop(&src, &mut dst, D3, 4, 4, 7);
        assert_eq!(dst, vec![0., 0., 0., 0., 0., 0., 0., 0., 0.]);
        pad_crop(&src, &mut dst, D3, 4, 4, 6);
        assert_eq!(dst, vec![3., 0., 0., 6., 0., 0., 9., 0., 0.]);
    }

    #[test]
    fn the_identity_warp_is_exact() {
        let dims = Chw { c: 2, h: 5, w: 4 };
        let src: Vec<f32> = (0..dims.len()).map(|v| (v as f32 * 0.37).sin()).collect();
        assert_eq!(warp(&src, dims, Affine::IDENTITY), src);
    }

    #[test]
    fn a_quarter_turn_matches_the_hand_computed_image() {
        // 1 2 3        3 6 9
        // 4 5 6  -->   2 5 8   (counter-clockwise: the top row becomes the left column)
        // 7 8 9        1 4 7
        let t = Affine {
            degrees: 90.0,
            ..Affine::IDENTITY
        };
        assert_eq!(
            warp(&ramp(D3), D3, t),
            vec![3., 6., 9., 2., 5., 8., 1., 4., 7.]
        );
        // A quarter turn clockwise on a 2x2 image (centre between pixels): 1 2 / 3 4 -> 3 1 / 4 2.
        let d2 = Chw { c: 1, h: 2, w: 2 };
        let t = Affine {
            degrees: -90.0,
            ..Affine::IDENTITY
        };
        assert_eq!(warp(&[1., 2., 3., 4.], d2, t), vec![3., 1., 4., 2.]);
    }

    #[test]
    fn whole_pixel_shifts_move_pixels_exactly() {
        let src = ramp(D3);
        let right = Affine {
            shift_x: 1.0,
            ..Affine::IDENTITY
        };
        assert_eq!(
            warp(&src, D3, right),
            vec![0., 1., 2., 0., 4., 5., 0., 7., 8.]
        );
        let up = Affine {
            shift_y: -1.0,
            ..Affine::IDENTITY
        };
        assert_eq!(warp(&src, D3, up), vec![4., 5., 6., 7., 8., 9., 0., 0., 0.]);
        // Half a pixel: the average of the neighbours, half of the edge pixel at the border.
        let half = Affine {
            shift_x: 0.5,
            ..Affine::IDENTITY
        };
        assert_eq!(&warp(&src, D3, half)[..3], &[0.5, 1.5, 2.5]);
    }

    #[test]
    fn scale_zooms_about_the_centre() {
        // Zooming in by 2 on a 5x5 image: output column j samples input column
        // 2 + (j - 2) / 2, so the centre pixel stays and the edges sample halfway.
        let dims = Chw { c: 1, h: 5, w: 5 };
        let src: Vec<f32> = (0..25).map(|v| (v % 5 + 1) as f32).collect(); // column + 1
        let t = Affine {
            scale: 2.0,
            ..Affine::IDENTITY
        };
        let out = warp(&src, dims, t);
        assert_eq!(&out[10..15], &[2.0, 2.5, 3.0, 3.5, 4.0]);
        // Zooming out by 2 leaves a border of zeros.
        let t = Affine {
            scale: 0.5,
            ..Affine::IDENTITY
        };
        let out = warp(&src, dims, t);
        assert_eq!(&out[10..15], &[0.0, 1.0, 3.0, 5.0, 0.0]);
    }

    #[test]
    fn brightness_and_contrast() {
        let mut img = vec![0.0, 0.5, 1.0, 0.5];
        adjust_brightness(&mut img, 0.25);
        assert_eq!(img, vec![0.25, 0.75, 1.25, 0.75]);
        // Mean 0.75; factor 2 doubles the distances to it, keeping the mean.
        adjust_contrast(&mut img, 2.0);
        assert_eq!(img, vec![-0.25, 0.75, 1.75, 0.75]);
        adjust_contrast(&mut img, 0.0);
        assert_eq!(img, vec![0.75; 4]);
        let mut same = vec![0.1, 0.9, 0.3];
        adjust_contrast(&mut same, 1.0);
        for (a, b) in same.iter().zip([0.1, 0.9, 0.3]) {
            assert!((a - b).abs() < 1e-6, "{same:?}");
        }
    }
}
