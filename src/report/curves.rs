//! Training curves: a metric per epoch for the training and the validation data, with
//! the best epoch and an early stop marked.
//!
//! The best epoch is the one EarlyStopping restored (`History::best_epoch`) when there
//! is one, otherwise the epoch with the lowest validation loss (the training loss
//! without validation data). Epochs are shown 1-based, as `fit` prints them.

use super::picture::{font, render, Draw, DrawResult, Picture, Ticks};
use crate::error::{Error, Result};
use crate::training::History;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

/// The epoch a reader of the curves should look at, and why it is that one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BestEpoch {
    /// 0-based, as in `History::epoch`.
    pub epoch: usize,
    /// E.g. "restored by early stopping" or "lowest val_loss".
    pub reason: String,
}

/// See the module docs for the rule.
pub fn best_epoch(history: &History) -> Option<BestEpoch> {
    if let Some(e) = history.best_epoch {
        return Some(BestEpoch {
            epoch: e,
            reason: "restored by early stopping".into(),
        });
    }
    let key = if history.get("val_loss").is_some_and(|v| !v.is_empty()) {
        "val_loss"
    } else {
        "loss"
    };
    let values = history.get(key)?;
    let (pos, _) = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))?;
    Some(BestEpoch {
        epoch: history.epoch.get(pos).copied().unwrap_or(pos),
        reason: format!("lowest {key}"),
    })
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VALIDATION: RGBColor = RGBColor(255, 127, 14);
const BEST: RGBColor = RGBColor(44, 160, 44);
const STOP: RGBColor = RGBColor(214, 39, 40);

struct Curves<'a> {
    history: &'a History,
    metric: &'a str,
    title: String,
}

impl Draw for Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let h = self.history;
        // x: the 1-based epoch number of each entry.
        let xs: Vec<f64> = h.epoch.iter().map(|&e| e as f64 + 1.0).collect();
        let train = h.get(self.metric).unwrap_or(&[]);
        let val_key = format!("val_{}", self.metric);
        let val = h.get(&val_key).unwrap_or(&[]);
        let all = train.iter().chain(val).filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let (first, last) = (
            xs.first().copied().unwrap_or(1.0),
            xs.last().copied().unwrap_or(1.0),
        );
        // Integer epochs as ticks, at most about ten of them.
        let step = ((last - first) / 10.0).ceil().max(1.0);
        let ticks: Vec<f64> = std::iter::successors(Some(first), |t| Some(t + step))
            .take_while(|&t| t <= last + 1e-9)
            .collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(74)
            .build_cartesian_2d(
                Ticks::new((first - 0.3)..(last + 0.3), ticks),
                (lo - pad)..(hi + pad),
            )?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(self.metric)
            .axis_desc_style(font(17.0))
            .label_style(font(15.0))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.3}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;

        let (y0, y1) = (lo - pad, hi + pad);
        let best = best_epoch(h);
        if let Some(b) = &best {
            let x = b.epoch as f64 + 1.0;
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, y0), (x, y1)],
                    6,
                    4,
                    BEST.stroke_width(2),
                ))?
                .label(format!("best epoch {} ({})", b.epoch + 1, b.reason))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BEST.stroke_width(2)));
        }
        if let Some(s) = h.stopped_epoch {
            let x = s as f64 + 1.0;
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, y0), (x, y1)],
                    3,
                    3,
                    STOP.stroke_width(2),
                ))?
                .label(format!("early stop after epoch {}", s + 1))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], STOP.stroke_width(2)));
        }
        for (values, name, colour) in [
            (train, "training".to_string(), TRAIN),
            (val, "validation".to_string(), VALIDATION),
        ] {
            if values.is_empty() {
                continue;
            }
            let points: Vec<(f64, f64)> = xs
                .iter()
                .zip(values)
                .map(|(&x, &v)| (x, v as f64))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
            // Ring the best epoch's value on each curve.
            if let Some(b) = &best {
                if let Some(pos) = h.epoch.iter().position(|&e| e == b.epoch) {
                    if let Some(&p) = points.get(pos) {
                        chart.draw_series(std::iter::once(Circle::new(
                            p,
                            8,
                            BEST.stroke_width(2),
                        )))?;
                    }
                }
            }
        }
        chart
            .configure_series_labels()
            .position(if self.metric.contains("acc") {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .label_font(font(15.0))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
        Ok(())
    }
}

/// `metric` (and `val_<metric>` when present) per epoch; the picture is named
/// `<metric>_curves`. Fails when the history has no values for `metric`.
pub fn metric_curves(history: &History, metric: &str, title: &str) -> Result<Picture> {
    if history.get(metric).is_none_or(|v| v.is_empty()) {
        return Err(Error::invalid(format!(
            "the training history has no '{metric}' (it has: {})",
            history
                .history
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let figure = Curves {
        history,
        metric,
        title: title.to_string(),
    };
    render(&format!("{metric}_curves"), (760, 460), &figure)
}

/// Training and validation loss per epoch (`loss_curves.png/.svg`).
pub fn loss_curves(history: &History) -> Result<Picture> {
    metric_curves(history, "loss", "Loss")
}

/// Training and validation accuracy per epoch (`accuracy_curves.png/.svg`).
pub fn accuracy_curves(history: &History) -> Result<Picture> {
    metric_curves(history, "accuracy", "Accuracy")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(loss: &[f32], val_loss: &[f32]) -> History {
        let mut h = History::default();
        for (i, (&l, &v)) in loss.iter().zip(val_loss).enumerate() {
            let mut logs = std::collections::BTreeMap::new();
            logs.insert("loss".to_string(), l);
            logs.insert("val_loss".to_string(), v);
            logs.insert("accuracy".to_string(), 1.0 - l / 2.0);
            h.push(i, &logs);
        }
        h
    }

    #[test]
    fn best_epoch_rule() {
        let mut h = history(&[1.0, 0.5, 0.3, 0.2], &[0.9, 0.6, 0.7, 0.8]);
        let b = best_epoch(&h).unwrap();
        assert_eq!((b.epoch, b.reason.as_str()), (1, "lowest val_loss"));
        h.best_epoch = Some(2);
        assert_eq!(best_epoch(&h).unwrap().epoch, 2);
        h.history.remove("val_loss");
        h.best_epoch = None;
        assert_eq!(best_epoch(&h).unwrap().epoch, 3);
        assert!(best_epoch(&History::default()).is_none());
    }

    #[test]
    fn curves_render_with_marks() {
        let mut h = history(&[1.0, 0.5, 0.3], &[0.9, 0.6, 0.7]);
        h.stopped_epoch = Some(2);
        let p = loss_curves(&h).unwrap();
        assert_eq!(p.name, "loss_curves");
        assert!(
            p.svg.contains("best epoch 2 (lowest val_loss)"),
            "best epoch marked"
        );
        assert!(p.svg.contains("early stop after epoch 3"));
        assert!(p.svg.contains("validation"));
        assert!(accuracy_curves(&h).is_ok());
        let e = metric_curves(&h, "auc", "AUC").unwrap_err();
        assert!(e.to_string().contains("no 'auc'"), "{e}");
        // A single epoch still draws.
        assert!(loss_curves(&history(&[0.4], &[0.5])).is_ok());
    }
}
