//! Images from disk as model input: decode a PNG or JPEG of any size, convert it to grey
//! or RGB, resize it, and scale it to [0, 1] the way the data sets are scaled.
//!
//! Decisions:
//! - Resizing ignores the aspect ratio (the image is stretched to `height x width`) with a
//!   triangle (bilinear, area-averaging when shrinking) filter.
//! - Transparent pixels are composited over white, what a viewer or browser shows.
//! - Nothing is inverted automatically. MNIST digits are white on black, while a digit
//!   drawn in a paint program is usually black on white; set [`ImageOptions::invert`]
//!   (`x -> 1 - x`) for those.
//!
//! ```no_run
//! # fn main() -> nabla::Result<()> {
//! use nabla::data::image::{load_image, load_image_for_model, ImageOptions};
//! let x = load_image_for_model("digit.png", 1, 28, 28)?; // [1, 1, 28, 28]
//! let y = load_image("photo.jpg", &ImageOptions::new(1, 28, 28).invert(true))?;
//! # Ok(())
//! # }
//! ```

use crate::engine::Tensor;
use crate::error::{Error, Result};
use image::imageops::FilterType;
use image::{DynamicImage, GenericImageView};
use std::path::Path;

/// How to turn an image file into a model input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageOptions {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Output height in pixels.
    pub height: usize,
    /// Output width in pixels.
    pub width: usize,
    /// Map each value `x` to `1 - x` (for dark-on-light images fed to MNIST models).
    pub invert: bool,
}

impl ImageOptions {
    pub fn new(channels: usize, height: usize, width: usize) -> ImageOptions {
        ImageOptions {
            channels,
            height,
            width,
            invert: false,
        }
    }

    pub fn invert(mut self, invert: bool) -> ImageOptions {
        self.invert = invert;
        self
    }
}

/// Loads a PNG or JPEG as a `[1, channels, height, width]` tensor in [0, 1], not inverted.
pub fn load_image_for_model(
    path: impl AsRef<Path>,
    channels: usize,
    height: usize,
    width: usize,
) -> Result<Tensor> {
    load_image(path, &ImageOptions::new(channels, height, width))
}

/// Loads a PNG or JPEG as a `[1, C, H, W]` tensor in [0, 1] according to `opts`.
pub fn load_image(path: impl AsRef<Path>, opts: &ImageOptions) -> Result<Tensor> {
    let path = path.as_ref();
    check_options(opts)?;
    let open = || -> Result<image::ImageReader<_>> {
        image::ImageReader::open(path)
            .map_err(|e| Error::io(path, e))?
            // Trust the bytes, not the extension.
            .with_guessed_format()
            .map_err(|e| Error::io(path, e))
    };
    let decode_error = |e: image::ImageError| match e {
        image::ImageError::IoError(e) => Error::io(path, e),
        e => Error::format(path, format!("cannot read as a PNG or JPEG image: {e}")),
    };
    // The header first: a small file may claim a huge image, and decoding or resizing it
    // would ask for gigabytes.
    let (w, h) = open()?.into_dimensions().map_err(decode_error)?;
    check_image_size(w, h).map_err(|m| Error::format(path, m))?;
    let mut reader = open()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::IoError(e) => Error::io(path, e),
        e => Error::format(path, format!("cannot read as a PNG or JPEG image: {e}")),
    })?;
    image_to_tensor(&img, opts)
}

/// The longest side of an image that is read (larger ones are refused before decoding).
pub const MAX_IMAGE_SIDE: u32 = 20_000;
/// The most pixels an image that is read may have (50 megapixels: 200 MB decoded).
pub const MAX_IMAGE_PIXELS: u64 = 50_000_000;

/// Refuses sizes that would cost gigabytes to decode and resize (a 300,000,000 x 1 PNG
/// compresses to a few hundred KB).
fn check_image_size(w: u32, h: u32) -> std::result::Result<(), String> {
    let pixels = w as u64 * h as u64;
    if w > MAX_IMAGE_SIDE || h > MAX_IMAGE_SIDE || pixels > MAX_IMAGE_PIXELS {
        return Err(format!(
            "the image is {w}x{h} pixels; images may be at most {MAX_IMAGE_SIDE} pixels on a \
             side and {MAX_IMAGE_PIXELS} pixels in all"
        ));
    }
    Ok(())
}

/// Converts a decoded image to a `[1, C, H, W]` tensor in [0, 1] according to `opts`.
pub fn image_to_tensor(img: &DynamicImage, opts: &ImageOptions) -> Result<Tensor> {
    check_options(opts)?;
    let (w, h) = (opts.width as u32, opts.height as u32);
    let flat = flatten_alpha(img);
    // Channel-last bytes of the resized image, `[H, W, C]`.
    let hwc: Vec<u8> = match opts.channels {
        1 => image::imageops::resize(&flat.to_luma8(), w, h, FilterType::Triangle).into_raw(),
        _ => image::imageops::resize(&flat.to_rgb8(), w, h, FilterType::Triangle).into_raw(),
    };
    let (c, hw) = (opts.channels, opts.height * opts.width);
    let mut chw = vec![0f32; c * hw];
    for (i, px) in hwc.chunks_exact(c).enumerate() {
        for (ch, &v) in px.iter().enumerate() {
            let x = v as f32 / 255.0;
            chw[ch * hw + i] = if opts.invert { 1.0 - x } else { x };
        }
    }
    Ok(Tensor::from_vec(chw, &[1, c, opts.height, opts.width]))
}

pub(crate) fn check_options(opts: &ImageOptions) -> Result<()> {
    if opts.channels != 1 && opts.channels != 3 {
        return Err(Error::invalid(format!(
            "images can be loaded with 1 (grey) or 3 (RGB) channels, not {}",
            opts.channels
        )));
    }
    let fits = |d: usize| d > 0 && u32::try_from(d).is_ok();
    if !fits(opts.height) || !fits(opts.width) {
        return Err(Error::invalid(format!(
            "cannot resize an image to {}x{}",
            opts.height, opts.width
        )));
    }
    Ok(())
}

/// The image composited over white if it has an alpha channel, as RGB.
fn flatten_alpha(img: &DynamicImage) -> DynamicImage {
    if !img.color().has_alpha() {
        return img.clone();
    }
    let (w, h) = img.dimensions();
    let rgba = img.to_rgba8();
    let mut rgb = image::RgbImage::new(w, h);
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = src[3] as u32;
        for c in 0..3 {
            // c * a + 255 * (1 - a), rounded, in integers.
            dst[c] = ((src[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    DynamicImage::ImageRgb8(rgb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn grey_png_of_any_size_becomes_1x1xhxw() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("digit.png");
        // 100x60, white left half, black right half.
        let img = GrayImage::from_fn(100, 60, |x, _| Luma([if x < 50 { 255 } else { 0 }]));
        img.save(&path).unwrap();
        let t = load_image_for_model(&path, 1, 28, 28).unwrap();
        assert_eq!(t.shape(), &[1, 1, 28, 28]);
        let d = t.data();
        assert!(d.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(d[0], 1.0); // top-left is white
        assert_eq!(d[27], 0.0); // top-right is black

        let inv = load_image(&path, &ImageOptions::new(1, 28, 28).invert(true)).unwrap();
        assert_eq!(inv.data()[0], 0.0);
        assert_eq!(inv.data()[27], 1.0);
    }

    #[test]
    fn rgb_jpeg_is_planar_chw() {
        let dir = tempfile::tempdir().unwrap();
        // A JPEG saved with a misleading extension: the format is guessed from content.
        let path = dir.path().join("red.png.jpg");
        let jpg = dir.path().join("red.jpg");
        RgbImage::from_pixel(40, 30, Rgb([255, 0, 0]))
            .save(&jpg)
            .unwrap();
        std::fs::rename(&jpg, &path).unwrap();
        let t = load_image_for_model(&path, 3, 8, 6).unwrap();
        assert_eq!(t.shape(), &[1, 3, 8, 6]);
        let hw = 48;
        let mean = |c: usize| t.data()[c * hw..(c + 1) * hw].iter().sum::<f32>() / hw as f32;
        assert!(mean(0) > 0.9, "red plane {}", mean(0));
        assert!(mean(1) < 0.1 && mean(2) < 0.1);
        // Grey from colour uses luminance: pure red is dark-ish.
        let g = load_image_for_model(&path, 1, 8, 6).unwrap();
        assert!(g.data()[0] > 0.1 && g.data()[0] < 0.4, "{}", g.data()[0]);
    }

    #[test]
    fn transparency_is_composited_over_white() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alpha.png");
        // Fully transparent black background with one opaque black column.
        RgbaImage::from_fn(10, 10, |x, _| Rgba([0, 0, 0, if x == 0 { 255 } else { 0 }]))
            .save(&path)
            .unwrap();
        let t = load_image_for_model(&path, 1, 10, 10).unwrap();
        assert_eq!(t.data()[0], 0.0);
        assert_eq!(t.data()[5], 1.0);
    }

    /// A PNG that is only a header claiming `w` x `h` grey pixels (and an empty IDAT, so
    /// a decoder reads the header through).
    fn png_header_only(w: u32, h: u32) -> Vec<u8> {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            let mut crc = flate2::Crc::new();
            crc.update(&body);
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(&body);
            c.extend_from_slice(&crc.sum().to_be_bytes());
            c
        };
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IDAT", &[]));
        png.extend(chunk(b"IEND", &[]));
        png
    }

    #[test]
    fn huge_claimed_sizes_are_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        for (w, h) in [(300_000_000, 1), (1, 300_000_000), (10_000, 10_000)] {
            let path = dir.path().join(format!("big-{w}x{h}.png"));
            std::fs::write(&path, png_header_only(w, h)).unwrap();
            let e = load_image(&path, &ImageOptions::new(1, 28, 28))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("big-{w}x{h}.png")) && e.contains(&format!("{w}x{h} pixels")),
                "{e}"
            );
        }
        assert!(check_image_size(4000, 3000).is_ok());
    }

    #[test]
    fn not_an_image_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.png");
        std::fs::write(&path, b"this is text, not pixels").unwrap();
        let msg = load_image_for_model(&path, 1, 28, 28)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("notes.png"), "{msg}");
        assert!(msg.contains("PNG or JPEG"), "{msg}");

        let missing = dir.path().join("missing.png");
        let msg = load_image_for_model(&missing, 1, 28, 28)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("missing.png"), "{msg}");
    }

    #[test]
    fn bad_options_are_rejected() {
        let img = DynamicImage::ImageLuma8(GrayImage::new(4, 4));
        assert!(image_to_tensor(&img, &ImageOptions::new(2, 4, 4)).is_err());
        assert!(image_to_tensor(&img, &ImageOptions::new(1, 0, 4)).is_err());
        assert_eq!(
            image_to_tensor(&img, &ImageOptions::new(3, 2, 2))
                .unwrap()
                .shape(),
            &[1, 3, 2, 2]
        );
    }
}
