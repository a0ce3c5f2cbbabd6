//! `Picture`: one figure drawn twice by plotters, into a PNG (bitmap backend, text from
//! the bundled font) and an SVG (text left to the viewer's fonts), plus the small
//! drawing helpers the figures share (image tiles, colour maps, text).
//!
//! Every figure is a type implementing [`Draw`], so the same drawing code runs on both
//! backends; [`render`] does the two passes.

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The font of the PNG pictures: a Latin-1 subset of DejaVu Sans (22 KB, license in
/// `assets/fonts/LICENSE-DejaVu.txt`). Bundled because plotters' system-font lookup
/// needs fontconfig and installed fonts, which a clean machine may not have.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
/// The family every figure asks for; the PNG pass maps it to `FONT`.
pub const FAMILY: &str = "sans-serif";

/// Errors from plotters' drawing calls, boxed (their types depend on the backend).
pub type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A figure that can draw itself on any plotters backend.
pub trait Draw {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// A figure as PNG bytes and SVG text.
#[derive(Debug, Clone)]
pub struct Picture {
    /// File stem: the picture is saved as `<name>.png` and `<name>.svg`.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
    pub svg: String,
}

impl Picture {
    /// Writes `<dir>/<name>.png` and `<dir>/<name>.svg` (atomically); returns both paths.
    pub fn save(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let png = dir.join(format!("{}.png", self.name));
        let svg = dir.join(format!("{}.svg", self.name));
        crate::formats::atomic::write_bytes_atomic(&png, &self.png)?;
        crate::formats::atomic::write_bytes_atomic(&svg, self.svg.as_bytes())?;
        Ok((png, svg))
    }

    /// `data:image/png;base64,...`, for embedding in a page.
    pub fn png_data_uri(&self) -> String {
        use base64::Engine;
        format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&self.png)
        )
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            // The bundled file is tested to parse; this cannot happen in a release.
            panic!("the bundled font does not parse");
        }
    });
}

fn draw_error(name: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!("drawing the picture '{name}' failed: {e}"))
}

/// Draws `figure` on a white `size` canvas, once as PNG and once as SVG.
pub fn render(name: &str, size: (u32, u32), figure: &impl Draw) -> Result<Picture> {
    register_font();
    let (w, h) = size;
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(name, e))?;
        figure.draw(&root).map_err(|e| draw_error(name, e))?;
        root.present().map_err(|e| draw_error(name, e))?;
    }
    let mut png = Vec::new();
    {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&rgb, w, h, image::ExtendedColorType::Rgb8)
            .map_err(|e| draw_error(name, e))?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(name, e))?;
        figure.draw(&root).map_err(|e| draw_error(name, e))?;
        root.present().map_err(|e| draw_error(name, e))?;
    }
    // plotters-svg 0.3.7 labels embedded bitmaps `data:png;base64,`, which is not a MIME
    // type; browsers that do not sniff would show nothing.
    let svg = svg.replace("href=\"data:png;base64,", "href=\"data:image/png;base64,");
    Ok(Picture {
        name: name.to_string(),
        width: w,
        height: h,
        png,
        svg,
    })
}

/// An f64 axis with the ticks given: integer epochs, or class centres `i + 0.5`.
/// (plotters 0.3.7's `WithKeyPoints` over f64 has no label formatter.)
pub struct Ticks {
    range: plotters::coord::types::RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticks {
    /// `start..end` may run backwards (a heat map's rows top to bottom).
    pub fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Ticks {
        Ticks {
            range: range.into(),
            ticks,
        }
    }
}

impl plotters::coord::ranged1d::Ranged for Ticks {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.range.map(value, limit)
    }
    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.range.range()
    }
}

/// A text style of the figures' family.
pub fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Draws `text` with its top centre at `(x, y)`.
pub fn text_centered<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (x, y): (i32, i32),
    style: &TextStyle,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = style.pos(Pos::new(HPos::Center, VPos::Top));
    area.draw_text(text, &style, (x, y))?;
    Ok(())
}

/// Draws `text` turned a quarter left (reading upwards) so that it ends at `(x, y)`
/// and hangs below it, centred on `x`: an x-axis label too long to lie flat. (The
/// chart mesh anchors rotated labels at their centre, which cuts off half of them.)
pub fn text_rotated_below<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    (x, y): (i32, i32),
    style: &TextStyle,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let style = style
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Right, VPos::Center));
    area.draw_text(text, &style, (x, y))?;
    Ok(())
}

/// Shortens `text` to at most `max` characters, ending with "..." when cut.
pub fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(3)).collect();
    format!("{kept}...")
}

/// An RGB bitmap (row-major, 3 bytes per pixel) scaled up `scale` times by repeating
/// pixels, ready for plotters' `BitMapElement`.
pub struct Tile {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Tile {
    /// Colours an `h x w` grid of values with `color` and scales it up `scale` times
    /// (nearest neighbour, so each value stays a crisp square).
    pub fn from_values(
        values: &[f32],
        (h, w): (usize, usize),
        scale: u32,
        color: impl Fn(f32) -> RGBColor,
    ) -> Tile {
        debug_assert_eq!(values.len(), h * w);
        let mut small = image::RgbImage::new(w as u32, h as u32);
        for (p, &v) in small.pixels_mut().zip(values) {
            let c = color(v);
            *p = image::Rgb([c.0, c.1, c.2]);
        }
        Tile::scaled(small, scale)
    }

    /// An RGB image `[3, h, w]` (channels first, values in [0, 1]), scaled up.
    pub fn from_rgb_planes(planes: &[f32], (h, w): (usize, usize), scale: u32) -> Tile {
        let mut small = image::RgbImage::new(w as u32, h as u32);
        let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        for (i, p) in small.pixels_mut().enumerate() {
            *p = image::Rgb([
                byte(planes[i]),
                byte(planes[h * w + i]),
                byte(planes[2 * h * w + i]),
            ]);
        }
        Tile::scaled(small, scale)
    }

    fn scaled(small: image::RgbImage, scale: u32) -> Tile {
        let (w, h) = (small.width() * scale, small.height() * scale);
        let big = image::imageops::resize(&small, w, h, image::imageops::FilterType::Nearest);
        Tile {
            width: w,
            height: h,
            rgb: big.into_raw(),
        }
    }

    /// Draws the tile with its top-left corner at `(x, y)`, framed in grey.
    pub fn draw_at<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x, y): (i32, i32),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let element = BitMapElement::<_, plotters::backend::RGBPixel>::with_owned_buffer(
            (x, y),
            (self.width, self.height),
            self.rgb.clone(),
        )
        .ok_or("tile buffer has the wrong size")?;
        area.draw(&element)?;
        area.draw(&Rectangle::new(
            [
                (x - 1, y - 1),
                (x + self.width as i32, y + self.height as i32),
            ],
            RGBColor(160, 160, 160).stroke_width(1),
        ))?;
        Ok(())
    }
}

/// Black for 0, white for 1 (how MNIST digits are usually shown).
pub fn gray(v: f32) -> RGBColor {
    let b = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    RGBColor(b, b, b)
}

/// Viridis (matplotlib's default map) for `v` in [0, 1].
pub fn viridis(v: f32) -> RGBColor {
    use plotters::style::colors::colormaps::ViridisRGB;
    ViridisRGB::get_color(v.clamp(0.0, 1.0))
}

/// Blue for -1, white for 0, red for +1: weights, whose sign matters.
pub fn diverging(v: f32) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let (end, t) = if t < 0.0 {
        ((33.0, 102.0, 172.0), -t)
    } else {
        ((178.0, 24.0, 43.0), t)
    };
    let mix = |e: f32| (255.0 + (e - 255.0) * t).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// The image at row `i` of `x` (`[N, C, H, W]` with C = 1 or 3, values in [0, 1]) as a
/// tile scaled `scale` times; `None` when `x` does not hold images.
pub fn image_tile(x: &crate::engine::Tensor, i: usize, scale: u32) -> Option<Tile> {
    let s = x.shape();
    if s.len() != 4 || !(s[1] == 1 || s[1] == 3) || i >= s[0] {
        return None;
    }
    let (c, h, w) = (s[1], s[2], s[3]);
    let img = &x.narrow(0, i, 1).ok()?.to_f32_vec();
    Some(if c == 1 {
        Tile::from_values(img, (h, w), scale, gray)
    } else {
        Tile::from_rgb_planes(img, (h, w), scale)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hello;
    impl Draw for Hello {
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
        where
            DB::ErrorType: 'static,
        {
            text_centered(root, "Hello -> 7 (0.93)", (60, 10), &font(14.0))?;
            Tile::from_values(&[0.0, 1.0, 0.5, 0.25], (2, 2), 4, gray).draw_at(root, (5, 30))
        }
    }

    #[test]
    fn renders_png_and_svg_with_text() {
        let p = render("hello", (120, 60), &Hello).unwrap();
        let img = image::load_from_memory(&p.png).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (120, 60));
        // The bundled font put dark pixels in the text's band.
        let dark = (0..120)
            .flat_map(|x| (8..26).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y)[0] < 128)
            .count();
        assert!(dark > 30, "no text drawn ({dark} dark pixels)");
        // The tile's white pixel (value 1.0, top right) scaled 4x at (5, 30).
        assert_eq!(img.get_pixel(5 + 4 + 1, 30 + 1).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(5 + 1, 30 + 1).0, [0, 0, 0]);
        assert!(p.svg.contains("Hello -&gt; 7 (0.93)") || p.svg.contains("Hello -> 7"));
        assert!(
            p.svg.contains("href=\"data:image/png;base64,"),
            "tile embedded: {}",
            p.svg
        );
    }

    #[test]
    fn colour_maps() {
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(1.0), RGBColor(178, 24, 43));
        assert_eq!(diverging(-1.0), RGBColor(33, 102, 172));
        assert_eq!(gray(1.0), RGBColor(255, 255, 255));
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(ellipsize("Ankle boot", 20), "Ankle boot");
        assert_eq!(ellipsize("abcdefghij", 6), "abc...");
    }
}
