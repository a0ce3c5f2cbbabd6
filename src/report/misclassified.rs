//! The first misclassified test images, in test-set order, each captioned
//! "label -> prediction (confidence)" with the model's class names.

use super::picture::{ellipsize, font, image_tile, render, text_centered, Draw, DrawResult};
use super::picture::{Picture, Tile};
use super::predictions::Predictions;
use crate::engine::Tensor;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One wrongly classified test sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misclassified {
    /// Row in the test set.
    pub index: usize,
    pub label: usize,
    pub label_name: String,
    pub prediction: usize,
    pub prediction_name: String,
    /// Probability the model gave its (wrong) prediction.
    pub confidence: f32,
}

impl Misclassified {
    /// "label -> prediction (confidence)", e.g. `Shirt -> T-shirt/top (0.87)`.
    pub fn caption(&self) -> String {
        format!(
            "{} -> {} ({:.2})",
            self.label_name, self.prediction_name, self.confidence
        )
    }
}

fn class_name(names: &[String], c: usize) -> String {
    names.get(c).cloned().unwrap_or_else(|| c.to_string())
}

/// The first `n` misclassified samples, in order.
pub fn first_misclassified(
    preds: &Predictions,
    class_names: &[String],
    n: usize,
) -> Vec<Misclassified> {
    preds
        .wrong()
        .take(n)
        .map(|i| Misclassified {
            index: i,
            label: preds.labels[i],
            label_name: class_name(class_names, preds.labels[i]),
            prediction: preds.predicted[i],
            prediction_name: class_name(class_names, preds.predicted[i]),
            confidence: preds.confidence[i],
        })
        .collect()
}

const COLUMNS: usize = 5;
const CELL_W: i32 = 244;
const CELL_H: i32 = 168;
const TOP: i32 = 44;

struct Grid<'a> {
    tiles: Vec<Tile>,
    items: &'a [Misclassified],
    total_wrong: usize,
}

impl Draw for Grid<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (w, _) = root.dim_in_pixel();
        let title = format!(
            "First {} of {} misclassified test images: label -> prediction (confidence)",
            self.items.len(),
            self.total_wrong
        );
        text_centered(root, &title, (w as i32 / 2, 12), &font(20.0))?;
        for (k, (tile, item)) in self.tiles.iter().zip(self.items).enumerate() {
            let (col, row) = ((k % COLUMNS) as i32, (k / COLUMNS) as i32);
            let (x0, y0) = (col * CELL_W, TOP + row * CELL_H);
            tile.draw_at(root, (x0 + (CELL_W - tile.width as i32) / 2, y0 + 6))?;
            let y_text = y0 + 12 + tile.height as i32;
            let caption = format!(
                "{} -> {} ({:.2})",
                ellipsize(&item.label_name, 14),
                ellipsize(&item.prediction_name, 14),
                item.confidence
            );
            // The largest size at which the caption fits its cell.
            let mut size = 15.0;
            while size > 10.0 {
                let (w, _) = root.estimate_text_size(&caption, &font(size))?;
                if w as i32 <= CELL_W - 8 {
                    break;
                }
                size -= 1.0;
            }
            text_centered(root, &caption, (x0 + CELL_W / 2, y_text), &font(size))?;
            let index = format!("test #{}", item.index);
            let grey = font(12.0).color(&RGBColor(110, 110, 110));
            text_centered(root, &index, (x0 + CELL_W / 2, y_text + 17), &grey)?;
        }
        Ok(())
    }
}

/// A grid of the images `items` name (rows of `x_test`, `[N, C, H, W]` with C = 1 or
/// 3), captioned; `total_wrong` is the count of all misclassified samples, for the
/// title. Saved as `misclassified.png/.svg`.
pub fn misclassified_grid(
    x_test: &Tensor,
    items: &[Misclassified],
    total_wrong: usize,
) -> Result<Picture> {
    let s = x_test.shape();
    let side = s
        .get(2)
        .copied()
        .unwrap_or(28)
        .max(s.get(3).copied().unwrap_or(28));
    let scale = (112 / side.max(1)).max(1) as u32;
    let tiles = items
        .iter()
        .map(|m| {
            image_tile(x_test, m.index, scale).ok_or_else(|| {
                Error::invalid(format!(
                    "misclassified grid: test sample {} of {:?} is not a 1- or 3-channel image",
                    m.index, s
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = items.len().div_ceil(COLUMNS).max(1) as i32;
    let size = (
        (COLUMNS as i32 * CELL_W) as u32,
        (TOP + rows * CELL_H + 8) as u32,
    );
    render(
        "misclassified",
        size,
        &Grid {
            tiles,
            items,
            total_wrong,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_wrong_ones_with_names() {
        let preds = Predictions {
            labels: vec![0, 1, 2, 1, 0],
            predicted: vec![0, 2, 2, 0, 1],
            confidence: vec![0.9, 0.6, 0.8, 0.51, 0.7],
            num_classes: 3,
        };
        let names: Vec<String> = ["cat", "dog", "bird"].map(String::from).to_vec();
        let m = first_misclassified(&preds, &names, 2);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].index, m[1].index), (1, 3));
        assert_eq!(m[0].caption(), "dog -> bird (0.60)");
        assert_eq!(
            first_misclassified(&preds, &[], 10)[2].caption(),
            "0 -> 1 (0.70)"
        );

        let x = Tensor::from_vec(
            (0..5 * 16).map(|v| v as f32 / 80.0).collect(),
            &[5, 1, 4, 4],
        );
        let p = misclassified_grid(&x, &m, 3).unwrap();
        assert!(p.svg.contains("dog -&gt; bird (0.60)") || p.svg.contains("dog -> bird"));
        assert!(p.svg.contains("First 2 of 3 misclassified"));
        let flat = Tensor::zeros(&[5, 16]);
        assert!(misclassified_grid(&flat, &m, 3).is_err());
    }
}
