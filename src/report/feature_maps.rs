//! Feature maps: what every Conv2D layer outputs (after its activation) for one image.
//!
//! The image runs through the layers one by one (`Sequential::forward_trace`, inference
//! mode, no graph). Each channel is drawn with viridis scaled to its own min..max, so a
//! weak but structured response is as visible as a strong one; an all-constant channel
//! (a "dead" ReLU) is drawn dark and its range is 0.

use super::picture::{font, image_tile, render, text_centered, viridis, Draw, DrawResult};
use super::picture::{Picture, Tile};
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::training::Sequential;
use plotters::coord::Shift;
use plotters::prelude::*;

/// One Conv2D layer's output for one image: `maps` is `[C, H, W]`.
#[derive(Debug, Clone)]
pub struct LayerMaps {
    pub layer: String,
    pub maps: Tensor,
}

/// The outputs of every Conv2D layer of `model` for row `index` of `x` (`[N, C, H, W]`).
pub fn conv_feature_maps(
    model: &mut Sequential,
    x: &Tensor,
    index: usize,
) -> Result<Vec<LayerMaps>> {
    let n = x.shape().first().copied().unwrap_or(0);
    if index >= n {
        return Err(Error::invalid(format!(
            "image index {index} is out of range: the test set has {n} images"
        )));
    }
    let conv: Vec<bool> = model
        .layers()
        .iter()
        .map(|l| l.config().is::<crate::nn::layers::Conv2DConfig>())
        .collect();
    let trace = model.forward_trace(&x.slice_rows(index, index + 1))?;
    trace
        .into_iter()
        .zip(conv)
        .filter(|(_, is_conv)| *is_conv)
        .map(|((layer, out), _)| {
            let shape = out.shape()[1..].to_vec(); // drop the batch axis of 1
            Ok(LayerMaps {
                layer,
                maps: out.reshape(&shape)?,
            })
        })
        .collect()
}

const WIDTH: i32 = 1240;
const COLUMNS: usize = 16;
const CELL: i32 = (WIDTH - 40) / COLUMNS as i32;
const INPUT_PANEL: i32 = 160;

struct Panel {
    title: String,
    tiles: Vec<Tile>,
}

impl Panel {
    fn height(&self) -> i32 {
        36 + self.tiles.len().div_ceil(COLUMNS) as i32 * CELL + 10
    }
}

struct FeatureMaps {
    input: Tile,
    caption: String,
    panels: Vec<Panel>,
}

impl Draw for FeatureMaps {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        text_centered(
            root,
            "Feature maps of one test image",
            (WIDTH / 2, 10),
            &font(22.0),
        )?;
        self.input.draw_at(root, (20, 40))?;
        let x_text = 40 + self.input.width as i32;
        for (i, line) in self.caption.lines().enumerate() {
            root.draw_text(line, &font(17.0), (x_text, 50 + 24 * i as i32))?;
        }
        let note = "each map scaled to its own range (viridis: dark = low, yellow = high)";
        let grey = font(14.0).color(&RGBColor(110, 110, 110));
        root.draw_text(note, &grey, (x_text, 50 + 24 * 4))?;
        let mut y = INPUT_PANEL;
        for panel in &self.panels {
            root.draw(&PathElement::new(
                [(20, y), (WIDTH - 20, y)],
                RGBColor(200, 200, 200),
            ))?;
            root.draw_text(&panel.title, &font(18.0), (20, y + 10))?;
            for (k, tile) in panel.tiles.iter().enumerate() {
                let (col, row) = ((k % COLUMNS) as i32, (k / COLUMNS) as i32);
                let x0 = 20 + col * CELL + (CELL - tile.width as i32) / 2;
                let y0 = y + 36 + row * CELL + (CELL - tile.height as i32) / 2;
                tile.draw_at(root, (x0, y0))?;
            }
            y += panel.height();
        }
        Ok(())
    }
}

/// Draws the input image (row `index` of `x`) captioned with `caption` (one or more
/// lines), then a grid of each layer's maps. Saved as `feature_maps.png/.svg`.
pub fn feature_maps_plot(
    x: &Tensor,
    index: usize,
    caption: &str,
    layers: &[LayerMaps],
) -> Result<Picture> {
    let input = image_tile(x, index, 4).ok_or_else(|| {
        Error::invalid(format!(
            "feature maps: sample {index} of {:?} is not a 1- or 3-channel image",
            x.shape()
        ))
    })?;
    let mut panels = Vec::new();
    for l in layers {
        let s = l.maps.shape();
        if s.len() != 3 {
            return Err(Error::shape(format!(
                "feature maps of '{}': expected [C, H, W], got {s:?}",
                l.layer
            )));
        }
        let (c, h, w) = (s[0], s[1], s[2]);
        let scale = ((CELL - 8) as usize / h.max(w).max(1)).max(1) as u32;
        let tiles = l
            .maps
            .to_f32_vec()
            .chunks_exact(h * w)
            .map(|m| {
                let (lo, hi) = m
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                let span = hi - lo;
                Tile::from_values(m, (h, w), scale, |v| {
                    viridis(if span > 0.0 { (v - lo) / span } else { 0.0 })
                })
            })
            .collect();
        panels.push(Panel {
            title: format!("{}: {c} maps of {h}x{w}", l.layer),
            tiles,
        });
    }
    let height = INPUT_PANEL + panels.iter().map(Panel::height).sum::<i32>() + 10;
    render(
        "feature_maps",
        (WIDTH as u32, height as u32),
        &FeatureMaps {
            input,
            caption: caption.to_string(),
            panels,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::keras::*;

    #[test]
    fn maps_of_every_conv_layer() {
        let mut m = Sequential::new(&[1, 12, 12]);
        m.add(Conv2D(4, 3).activation(Relu))
            .unwrap()
            .add(MaxPooling2D(2))
            .unwrap()
            .add(Conv2D(3, 3))
            .unwrap()
            .add(Flatten())
            .unwrap()
            .add(Dense(2))
            .unwrap();
        let x = Tensor::from_vec(
            (0..2 * 144).map(|v| (v % 7) as f32 / 7.0).collect(),
            &[2, 1, 12, 12],
        );
        let maps = conv_feature_maps(&mut m, &x, 1).unwrap();
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[0].layer, "conv2d");
        assert_eq!(maps[0].maps.shape(), &[4, 10, 10]);
        assert_eq!(maps[1].maps.shape(), &[3, 3, 3]);
        // The trace's last entry is what predict gives.
        let trace = m.forward_trace(&x).unwrap();
        let pred = m.predict(&x, 2).unwrap();
        assert_eq!(trace.last().unwrap().1.to_f32_vec(), pred.to_f32_vec());
        let p = feature_maps_plot(&x, 1, "label 3\nprediction 5", &maps).unwrap();
        assert!(p.svg.contains("conv2d_1: 3 maps of 3x3"));
        assert!(conv_feature_maps(&mut m, &x, 2).is_err());
    }
}
