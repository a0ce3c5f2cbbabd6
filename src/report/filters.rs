//! The first convolution layer's filters, one tile per output channel.
//!
//! Kernels are `[OC, C, KH, KW]`. Each filter is coloured on a diverging map (blue
//! negative, white zero, red positive) scaled to its own largest |weight|, so the
//! pattern it responds to shows whatever its overall size. With 3 input channels the
//! filter is shown as an RGB image (min-max scaled); with another count, as the mean
//! over its input channels.

use super::picture::{diverging, font, render, text_centered, Draw, DrawResult, Picture, Tile};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::training::Sequential;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The name and kernel `[OC, C, KH, KW]` of the model's first Conv2D layer, if any.
pub fn first_conv_kernel(model: &Sequential) -> Option<(String, Tensor)> {
    model.layers().iter().find_map(|layer| {
        if !layer.config().is::<crate::nn::layers::Conv2DConfig>() {
            return None;
        }
        let kernel = layer
            .params()
            .into_iter()
            .find(|p| p.name.ends_with("/kernel"))?;
        Some((layer.name().to_string(), kernel.var.value()))
    })
}

const COLUMNS: usize = 8;

struct Filters {
    layer: String,
    shape: Vec<usize>,
    tiles: Vec<Tile>,
    cell: i32,
}

impl Draw for Filters {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (w, _) = root.dim_in_pixel();
        let title = format!(
            "First conv layer '{}': {} filters {}x{} (kernel {:?})",
            self.layer, self.shape[0], self.shape[2], self.shape[3], self.shape
        );
        text_centered(root, &title, (w as i32 / 2, 10), &font(20.0))?;
        let note = "blue < 0 < red; each filter scaled to its own largest |weight|";
        let grey = font(14.0).color(&RGBColor(110, 110, 110));
        text_centered(root, note, (w as i32 / 2, 36), &grey)?;
        // The grid, centred.
        let columns = self.tiles.len().min(COLUMNS) as i32;
        let left = (w as i32 - columns * self.cell) / 2;
        for (k, tile) in self.tiles.iter().enumerate() {
            let (col, row) = ((k % COLUMNS) as i32, (k / COLUMNS) as i32);
            let (x0, y0) = (left + col * self.cell, 60 + row * (self.cell + 18));
            tile.draw_at(root, (x0 + (self.cell - tile.width as i32) / 2, y0))?;
            let label = format!("#{k}");
            let y = y0 + tile.height as i32 + 3;
            text_centered(root, &label, (x0 + self.cell / 2, y), &font(12.0))?;
        }
        Ok(())
    }
}

/// A grid of the filters of a kernel `[OC, C, KH, KW]` (see the module docs for the
/// colours). Saved as `filters.png/.svg`.
pub fn conv_filters(layer: &str, kernel: &Tensor) -> Result<Picture> {
    let s = kernel.shape();
    if s.len() != 4 || s.contains(&0) {
        return Err(Error::shape(format!(
            "filters of '{layer}': expected a kernel [OC, C, KH, KW], got {s:?}"
        )));
    }
    let (oc, c, kh, kw) = (s[0], s[1], s[2], s[3]);
    let scale = (64 / kh.max(kw)).clamp(1, 16) as u32;
    let plane = kh * kw;
    let tiles = kernel
        .to_f32_vec()
        .chunks_exact(c * plane)
        .map(|f| {
            if c == 3 {
                let (lo, hi) = f
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                let span = (hi - lo).max(1e-12);
                let unit: Vec<f32> = f.iter().map(|v| (v - lo) / span).collect();
                Tile::from_rgb_planes(&unit, (kh, kw), scale)
            } else {
                let mean: Vec<f32> = (0..plane)
                    .map(|i| (0..c).map(|ch| f[ch * plane + i]).sum::<f32>() / c as f32)
                    .collect();
                let max = mean.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
                Tile::from_values(&mean, (kh, kw), scale, |v| diverging(v / max))
            }
        })
        .collect::<Vec<_>>();
    let cell = (tiles[0].width as i32 + 16).max(56);
    let rows = oc.div_ceil(COLUMNS) as i32;
    let width = (40 + COLUMNS as i32 * cell).max(640) as u32;
    let height = (60 + rows * (cell + 18) + 10) as u32;
    render(
        "filters",
        (width, height),
        &Filters {
            layer: layer.to_string(),
            shape: s.to_vec(),
            tiles,
            cell,
        },
    )
}

/// The first Conv2D layer's filters, or `None` when the model has no Conv2D layer.
pub fn first_conv_filters(model: &Sequential) -> Result<Option<Picture>> {
    match first_conv_kernel(model) {
        Some((name, kernel)) => conv_filters(&name, &kernel).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::keras::*;

    #[test]
    fn finds_and_draws_the_first_conv_layer() {
        let mut m = Sequential::new(&[1, 8, 8]);
        m.add(Flatten()).unwrap().add(Dense(3)).unwrap();
        assert!(first_conv_kernel(&m).is_none());
        let mut m = Sequential::new(&[1, 8, 8]);
        m.add(Conv2D(4, 3)).unwrap().add(Conv2D(2, 3)).unwrap();
        let (name, k) = first_conv_kernel(&m).unwrap();
        assert_eq!(
            (name.as_str(), k.shape()),
            ("conv2d", &[4usize, 1, 3, 3][..])
        );
        let p = first_conv_filters(&m).unwrap().unwrap();
        assert!(p.svg.contains("4 filters 3x3"));
        // RGB and many-channel kernels draw too; a wrong rank does not.
        assert!(conv_filters("rgb", &Tensor::ones(&[2, 3, 5, 5])).is_ok());
        assert!(conv_filters("deep", &Tensor::ones(&[2, 7, 3, 3])).is_ok());
        assert!(conv_filters("flat", &Tensor::ones(&[2, 9])).is_err());
    }
}
