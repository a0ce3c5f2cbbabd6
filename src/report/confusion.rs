//! The confusion matrix and per-class precision, recall and F1, as plain data (saved in
//! `report.json`) and as pictures: the matrix as a heat map with its counts, and the
//! per-class figures as a dot plot.
//!
//! Conventions (scikit-learn's): rows are true classes, columns predicted classes;
//! precision = TP / predicted, recall = TP / support, F1 their harmonic mean, and a
//! ratio with a zero denominator is 0. The per-class counts add up to the totals:
//! supports to the number of samples, predicted counts to the same, true positives to
//! the number of correct answers.

use super::picture::{ellipsize, font, render, text_rotated_below, Draw, DrawResult, Picture};
use super::picture::{Ticks, FAMILY};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};

/// `counts[t][p]`: how many samples of true class `t` were predicted as `p`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub counts: Vec<Vec<usize>>,
}

/// Precision, recall and F1 of one class, with the counts they come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: usize,
    pub name: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples whose true class this is (the row sum).
    pub support: usize,
    /// Samples predicted as this class (the column sum).
    pub predicted: usize,
    /// True positives (the diagonal entry).
    pub correct: usize,
}

/// Unweighted (macro) or support-weighted means of the per-class figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Averages {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl ConfusionMatrix {
    /// An all-zero `k x k` matrix.
    pub fn new(k: usize) -> ConfusionMatrix {
        ConfusionMatrix {
            counts: vec![vec![0; k]; k],
        }
    }

    /// Counts `(label, prediction)` pairs; every class index must be below `k`.
    pub fn from_predictions(
        labels: &[usize],
        predicted: &[usize],
        k: usize,
    ) -> Result<ConfusionMatrix> {
        if labels.len() != predicted.len() {
            return Err(Error::shape(format!(
                "confusion matrix: {} labels but {} predictions",
                labels.len(),
                predicted.len()
            )));
        }
        let mut m = ConfusionMatrix::new(k);
        for (i, (&t, &p)) in labels.iter().zip(predicted).enumerate() {
            if t >= k || p >= k {
                return Err(Error::invalid(format!(
                    "confusion matrix: sample {i} has label {t} and prediction {p}, but the \
                     model has {k} classes"
                )));
            }
            m.counts[t][p] += 1;
        }
        Ok(m)
    }

    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// The diagonal's sum.
    pub fn correct(&self) -> usize {
        (0..self.num_classes()).map(|i| self.counts[i][i]).sum()
    }

    /// The off-diagonal sum.
    pub fn misclassified(&self) -> usize {
        self.total() - self.correct()
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Samples of true class `t`.
    pub fn support(&self, t: usize) -> usize {
        self.counts[t].iter().sum()
    }

    /// Samples predicted as class `p`.
    pub fn predicted(&self, p: usize) -> usize {
        self.counts.iter().map(|row| row[p]).sum()
    }

    /// Precision, recall, F1 and counts of every class; `names[i]` names class `i`
    /// (its index when missing).
    pub fn per_class(&self, names: &[String]) -> Vec<ClassMetrics> {
        (0..self.num_classes())
            .map(|c| {
                let correct = self.counts[c][c];
                let (support, predicted) = (self.support(c), self.predicted(c));
                let precision = ratio(correct, predicted);
                let recall = ratio(correct, support);
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassMetrics {
                    class: c,
                    name: names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    precision,
                    recall,
                    f1,
                    support,
                    predicted,
                    correct,
                }
            })
            .collect()
    }
}

/// The unweighted mean of each figure over the classes.
pub fn macro_average(metrics: &[ClassMetrics]) -> Averages {
    let n = metrics.len().max(1) as f64;
    Averages {
        precision: metrics.iter().map(|m| m.precision).sum::<f64>() / n,
        recall: metrics.iter().map(|m| m.recall).sum::<f64>() / n,
        f1: metrics.iter().map(|m| m.f1).sum::<f64>() / n,
    }
}

/// The mean of each figure weighted by the classes' supports (weighted recall equals
/// accuracy).
pub fn weighted_average(metrics: &[ClassMetrics]) -> Averages {
    let total: usize = metrics.iter().map(|m| m.support).sum();
    let w = |f: fn(&ClassMetrics) -> f64| {
        if total == 0 {
            0.0
        } else {
            metrics.iter().map(|m| f(m) * m.support as f64).sum::<f64>() / total as f64
        }
    };
    Averages {
        precision: w(|m| m.precision),
        recall: w(|m| m.recall),
        f1: w(|m| m.f1),
    }
}

/// Light to dark blue (matplotlib's "Blues") for `v` in [0, 1].
fn blues(v: f64) -> RGBColor {
    let (lo, hi) = ((247.0, 251.0, 255.0), (8.0, 48.0, 107.0));
    let t = v.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(lo.0, hi.0), mix(lo.1, hi.1), mix(lo.2, hi.2))
}

/// Above this many classes the heat map writes each cell as a percentage of its true
/// class (row), and leaves empty cells blank: at 50 classes, counts of three or four
/// digits in every cell are unreadable, and a row's spread is what the reader wants.
pub const PERCENT_ABOVE: usize = 20;

struct HeatMap<'a> {
    cm: &'a ConfusionMatrix,
    names: Vec<String>,
    /// Cells as row percentages, empty cells blank (`PERCENT_ABOVE`).
    percent: bool,
}

impl Draw for HeatMap<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let k = self.cm.num_classes();
        let kf = k as f64;
        let centres: Vec<f64> = (0..k).map(|i| i as f64 + 0.5).collect();
        let label_width = self.names.iter().map(|n| n.len()).max().unwrap_or(1) as u32;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Confusion matrix ({} test samples, {} misclassified{})",
                    self.cm.total(),
                    self.cm.misclassified(),
                    if self.percent {
                        "; cells: % of the true class"
                    } else {
                        ""
                    }
                ),
                font(22.0),
            )
            .margin(14)
            .x_label_area_size(if label_width > 3 {
                36 + 8 * label_width.min(14)
            } else {
                50
            })
            .y_label_area_size(50 + 9 * label_width.min(14))
            .build_cartesian_2d(
                Ticks::new(0.0..kf, centres.clone()),
                Ticks::new(kf..0.0, centres),
            )?;
        let name = |v: &f64| {
            let i = v.floor().max(0.0) as usize;
            ellipsize(self.names.get(i).map(|s| s.as_str()).unwrap_or("?"), 14)
        };
        let rotated = label_width > 3;
        let flat_name = |v: &f64| if rotated { String::new() } else { name(v) };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted class")
            .y_desc("true class")
            .axis_desc_style(font(17.0))
            .x_label_style(font(15.0))
            .y_label_style(font(15.0))
            .x_label_formatter(&flat_name)
            .y_label_formatter(&name)
            .draw()?;
        if rotated {
            for i in 0..k {
                let (x, y) = chart.backend_coord(&(i as f64 + 0.5, kf));
                text_rotated_below(root, &name(&(i as f64)), (x, y + 10), &font(15.0))?;
            }
        }
        let cell_font = if k > 12 { 11.0 } else { 16.0 };
        for t in 0..k {
            let support = self.cm.support(t).max(1) as f64;
            for p in 0..k {
                let count = self.cm.counts[t][p];
                // Shade by the share of the true class (the row), so a rare class's
                // errors show as clearly as a common one's.
                let share = count as f64 / support;
                let (x, y) = (p as f64, t as f64);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    blues(share).filled(),
                )))?;
                let colour = if share > 0.5 {
                    WHITE
                } else if count == 0 {
                    RGBColor(170, 170, 170)
                } else {
                    BLACK
                };
                let style = (FAMILY, cell_font)
                    .into_font()
                    .color(&colour)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let text = match (self.percent, count) {
                    (true, 0) => continue,
                    // "0" would read as empty: a share under 0.5% shows as "<1".
                    (true, _) if share < 0.005 => "<1".to_string(),
                    (true, _) => format!("{:.0}", 100.0 * share),
                    (false, _) => count.to_string(),
                };
                chart.draw_series(std::iter::once(Text::new(text, (x + 0.5, y + 0.5), style)))?;
            }
        }
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (kf, kf)],
            BLACK.stroke_width(1),
        )))?;
        Ok(())
    }
}

/// The confusion matrix as a heat map: counts in the cells (above `PERCENT_ABOVE`
/// classes: percentages of the row), shaded by the share of the true class (row), class
/// names on the axes. Saved as `confusion_matrix.png/.svg`.
pub fn confusion_plot(cm: &ConfusionMatrix, class_names: &[String]) -> Result<Picture> {
    let k = cm.num_classes();
    let names = (0..k)
        .map(|i| class_names.get(i).cloned().unwrap_or_else(|| i.to_string()))
        .collect();
    let percent = k > PERCENT_ABOVE;
    // Many classes: about 32 px a cell (two digits at 11 px), so 50 classes and their
    // names stay legible at full size (1,920 px) instead of 24 px cells in 1,400.
    let side = if percent {
        (320 + 32 * k as u32).min(4000)
    } else {
        (200 + 60 * k as u32).clamp(420, 1400)
    };
    render(
        "confusion_matrix",
        (side, side),
        &HeatMap { cm, names, percent },
    )
}

struct PerClassPlot<'a> {
    metrics: &'a [ClassMetrics],
}

impl Draw for PerClassPlot<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let k = self.metrics.len();
        let lowest = self
            .metrics
            .iter()
            .flat_map(|m| [m.precision, m.recall, m.f1])
            .fold(1.0f64, f64::min);
        // Zoom in on the values (well-trained models sit near 1), keeping 1.0 in view.
        let y_min = ((lowest - 0.02) * 20.0).floor() / 20.0;
        let y_min = y_min.clamp(0.0, 0.95);
        let centres: Vec<f64> = (0..k).map(|i| i as f64 + 0.5).collect();
        let label_width = self.metrics.iter().map(|m| m.name.len()).max().unwrap_or(1) as u32;
        let rotated = label_width > 3;
        let mut chart = ChartBuilder::on(root)
            .caption("Per-class precision, recall and F1 (test set)", font(22.0))
            .margin(14)
            .x_label_area_size(if rotated {
                36 + 8 * label_width.min(14)
            } else {
                50
            })
            .y_label_area_size(70)
            .build_cartesian_2d(Ticks::new(0.0..k as f64, centres), y_min..1.0f64)?;
        let name = |v: &f64| {
            let i = v.floor().max(0.0) as usize;
            ellipsize(
                self.metrics.get(i).map(|m| m.name.as_str()).unwrap_or("?"),
                14,
            )
        };
        let flat_name = |v: &f64| if rotated { String::new() } else { name(v) };
        chart
            .configure_mesh()
            .x_label_formatter(&flat_name)
            .x_label_style(font(15.0))
            .y_label_style(font(15.0))
            .y_labels(8)
            .y_label_formatter(&|v| format!("{v:.3}"))
            .x_desc("class")
            .y_desc("score")
            .axis_desc_style(font(17.0))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        // (name, colour, value, x offset within the class's column)
        type Series = (&'static str, RGBColor, fn(&ClassMetrics) -> f64, f64);
        let series: [Series; 3] = [
            ("precision", RGBColor(31, 119, 180), |m| m.precision, -0.2),
            ("recall", RGBColor(255, 127, 14), |m| m.recall, 0.0),
            ("F1", RGBColor(44, 160, 44), |m| m.f1, 0.2),
        ];
        for (label, colour, value, offset) in series {
            let points: Vec<(f64, f64)> = self
                .metrics
                .iter()
                .map(|m| (m.class as f64 + 0.5 + offset, value(m)))
                .collect();
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&p| Circle::new(p, 5, colour.filled()))
                        .collect::<Vec<_>>(),
                )?
                .label(label)
                .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
        }
        if rotated {
            for i in 0..k {
                let (x, y) = chart.backend_coord(&(i as f64 + 0.5, y_min));
                text_rotated_below(root, &name(&(i as f64)), (x, y + 10), &font(15.0))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(font(15.0))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()?;
        Ok(())
    }
}

/// Per-class precision, recall and F1 as a dot plot (one column per class). Saved as
/// `per_class.png/.svg`.
pub fn per_class_plot(metrics: &[ClassMetrics]) -> Result<Picture> {
    // About 36 px a class at 50 classes, so the three dots per class stay apart.
    let width = (240 + 70 * metrics.len() as u32).clamp(640, 1400);
    let width = width.max((240 + 36 * metrics.len() as u32).min(4000));
    render("per_class", (width, 440), &PerClassPlot { metrics })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn counts_and_figures() {
        // 3 classes; true 0: 3 right, 1 as 2; true 1: 2 right; true 2: 1 as 0, 1 right.
        let labels = [0, 0, 0, 0, 1, 1, 2, 2];
        let preds = [0, 0, 0, 2, 1, 1, 0, 2];
        let cm = ConfusionMatrix::from_predictions(&labels, &preds, 3).unwrap();
        assert_eq!(cm.counts, vec![vec![3, 0, 1], vec![0, 2, 0], vec![1, 0, 1]]);
        assert_eq!((cm.total(), cm.correct(), cm.misclassified()), (8, 6, 2));
        assert_eq!(cm.accuracy(), 0.75);
        let m = cm.per_class(&names(3));
        assert_eq!(m[0].precision, 0.75);
        assert_eq!(m[0].recall, 0.75);
        assert_eq!(m[1].precision, 1.0);
        assert_eq!(m[2].precision, 0.5);
        assert_eq!(m[2].recall, 0.5);
        assert!((m[0].f1 - 0.75).abs() < 1e-12);
        assert_eq!(m[2].name, "c2");
        // The per-class counts add up to the totals.
        assert_eq!(m.iter().map(|c| c.support).sum::<usize>(), cm.total());
        assert_eq!(m.iter().map(|c| c.predicted).sum::<usize>(), cm.total());
        assert_eq!(m.iter().map(|c| c.correct).sum::<usize>(), cm.correct());
        // Weighted recall is accuracy.
        assert!((weighted_average(&m).recall - cm.accuracy()).abs() < 1e-12);
        let macro_p = (0.75 + 1.0 + 0.5) / 3.0;
        assert!((macro_average(&m).precision - macro_p).abs() < 1e-12);
    }

    #[test]
    fn empty_classes_give_zero_not_nan() {
        // Class 2 never occurs and is never predicted; class 1 is never predicted.
        let cm = ConfusionMatrix::from_predictions(&[0, 1], &[0, 0], 3).unwrap();
        let m = cm.per_class(&[]);
        assert_eq!(m[1].precision, 0.0);
        assert_eq!(m[1].recall, 0.0);
        assert_eq!(m[1].f1, 0.0);
        assert_eq!(m[2].support, 0);
        assert_eq!(m[2].name, "2");
        assert!(m.iter().all(|c| c.f1.is_finite()));
    }

    #[test]
    fn random_matrices_sum_to_totals() {
        let mut rng = crate::engine::Rng::new(7);
        for k in [2, 3, 10] {
            let n = 500;
            let labels: Vec<usize> = (0..n).map(|_| rng.below(k)).collect();
            let preds: Vec<usize> = (0..n).map(|_| rng.below(k)).collect();
            let cm = ConfusionMatrix::from_predictions(&labels, &preds, k).unwrap();
            let m = cm.per_class(&names(k));
            assert_eq!(cm.total(), n);
            assert_eq!(m.iter().map(|c| c.support).sum::<usize>(), n);
            assert_eq!(m.iter().map(|c| c.predicted).sum::<usize>(), n);
            let wrong = labels.iter().zip(&preds).filter(|(t, p)| t != p).count();
            assert_eq!(cm.misclassified(), wrong);
            assert_eq!(m.iter().map(|c| c.correct).sum::<usize>(), n - wrong);
        }
    }

    #[test]
    fn out_of_range_is_an_error() {
        let e = ConfusionMatrix::from_predictions(&[0, 3], &[0, 1], 3).unwrap_err();
        assert!(e.to_string().contains("sample 1 has label 3"), "{e}");
        assert!(ConfusionMatrix::from_predictions(&[0], &[0, 1], 3).is_err());
    }

    #[test]
    fn plots_render() {
        let cm = ConfusionMatrix::from_predictions(&[0, 1, 2, 2], &[0, 2, 2, 1], 3).unwrap();
        let p = confusion_plot(&cm, &names(3)).unwrap();
        assert!(p.svg.contains("c1") && p.svg.contains("predicted class"));
        let p = per_class_plot(&cm.per_class(&names(3))).unwrap();
        assert!(p.svg.contains("precision"));
        // 50 classes: cells as row percentages, blank when empty, every name shown.
        let k = 50;
        let labels: Vec<usize> = (0..200).map(|i| i % k).collect();
        let preds: Vec<usize> = (0..200).map(|i| if i < 150 { i % k } else { 0 }).collect();
        let cm = ConfusionMatrix::from_predictions(&labels, &preds, k).unwrap();
        let p = confusion_plot(&cm, &names(k)).unwrap();
        assert!(p.svg.contains("% of the true class"));
        assert!(p.svg.contains("c49"));
        assert!(p.width >= 32 * k as u32);
    }
}
