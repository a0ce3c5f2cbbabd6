//! A detector's pictures: an image with its boxes drawn (predicted ones coloured by
//! class with name and confidence, true ones as thin white frames), a grid of such
//! images, and the precision/recall curve of each class with the operating points at
//! chosen confidence thresholds marked.
//!
//! Colours: class `i` has colour `i` of a fixed 10-colour palette (Tableau's), cycled,
//! so a class looks the same in every picture of a run.

use super::picture::{font, render, text_centered, DrawResult, Picture, Tile};
use crate::detection::{match_detections, precision_recall, BBox, GtBox, ScoredBox};
use crate::detection::{Detection, DetectionDataset};
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Tableau's 10 colours.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of class index `class`.
pub fn class_color(class: usize) -> RGBColor {
    PALETTE[class % PALETTE.len()]
}

/// A box to draw: where (in the image's pixels), which class index, and the caption.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledBox {
    pub bbox: BBox,
    pub class: usize,
    pub label: String,
}

/// One image `[C, H, W]` (C = 1 or 3, values in [0, 1]) with its predicted boxes and,
/// optionally, its true boxes.
pub struct BoxedImage {
    pub tile: Tile,
    /// The scale from image pixels to tile pixels.
    pub scale: u32,
    pub predicted: Vec<LabelledBox>,
    pub truth: Vec<BBox>,
    pub title: Option<String>,
}

impl BoxedImage {
    /// `pixels` is `[C, H, W]` in [0, 1], `C` 1 or 3.
    pub fn new(pixels: &[f32], (c, h, w): (usize, usize, usize), scale: u32) -> BoxedImage {
        let tile = if c == 3 {
            Tile::from_rgb_planes(pixels, (h, w), scale)
        } else {
            Tile::from_values(&pixels[..h * w], (h, w), scale, super::picture::gray)
        };
        BoxedImage {
            tile,
            scale,
            predicted: Vec::new(),
            truth: Vec::new(),
            title: None,
        }
    }

    fn draw_at<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x0, y0): (i32, i32),
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        self.tile.draw_at(area, (x0, y0))?;
        let s = self.scale as f64;
        let corner = |b: &BBox| {
            (
                (
                    x0 + (b.x1 * s).round() as i32,
                    y0 + (b.y1 * s).round() as i32,
                ),
                (
                    x0 + (b.x2 * s).round() as i32 - 1,
                    y0 + (b.y2 * s).round() as i32 - 1,
                ),
            )
        };
        for b in &self.truth {
            let (p, q) = corner(b);
            area.draw(&Rectangle::new([p, q], WHITE.stroke_width(1)))?;
        }
        let label_size = (10.0 + 2.0 * s).min(16.0);
        for b in &self.predicted {
            let color = class_color(b.class);
            let (p, q) = corner(&b.bbox);
            area.draw(&Rectangle::new([p, q], color.stroke_width(2)))?;
            // The caption on a filled strip above the box (inside it at the top edge).
            let h = label_size as i32 + 2;
            let w = (b.label.chars().count() as f64 * label_size * 0.6) as i32 + 4;
            let top = if p.1 - h >= y0 { p.1 - h } else { p.1 };
            area.draw(&Rectangle::new(
                [(p.0, top), (p.0 + w, top + h)],
                color.filled(),
            ))?;
            let style = font(label_size)
                .color(&WHITE)
                .pos(Pos::new(HPos::Left, VPos::Top));
            area.draw_text(&b.label, &style, (p.0 + 2, top + 1))?;
        }
        if let Some(t) = &self.title {
            text_centered(
                area,
                t,
                (
                    x0 + self.tile.width as i32 / 2,
                    y0 + self.tile.height as i32 + 3,
                ),
                &font(12.0),
            )?;
        }
        Ok(())
    }
}

/// One boxed image as a picture.
struct Single<'a>(&'a BoxedImage);

impl super::picture::Draw for Single<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        self.0.draw_at(root, (1, 1))
    }
}

/// A picture of one image with its boxes.
pub fn boxed_image_picture(name: &str, image: &BoxedImage) -> Result<Picture> {
    let extra = if image.title.is_some() { 18 } else { 0 };
    render(
        name,
        (image.tile.width + 2, image.tile.height + 2 + extra),
        &Single(image),
    )
}

struct Grid<'a> {
    images: &'a [BoxedImage],
    cols: usize,
    cell: (u32, u32),
    title: String,
}

const GRID_TITLE: i32 = 30;

impl super::picture::Draw for Grid<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (w, _) = root.dim_in_pixel();
        text_centered(root, &self.title, (w as i32 / 2, 6), &font(16.0))?;
        for (i, im) in self.images.iter().enumerate() {
            let (r, c) = (i / self.cols, i % self.cols);
            let x = 8 + c as i32 * self.cell.0 as i32;
            let y = GRID_TITLE + r as i32 * self.cell.1 as i32;
            im.draw_at(root, (x, y))?;
        }
        Ok(())
    }
}

/// A grid of boxed images (all of one size), `cols` per row, under a title.
pub fn boxed_grid_picture(
    name: &str,
    title: &str,
    images: &[BoxedImage],
    cols: usize,
) -> Result<Picture> {
    let cols = cols.max(1).min(images.len().max(1));
    let rows = images.len().div_ceil(cols).max(1);
    let (tw, th) = images
        .first()
        .map_or((100, 100), |im| (im.tile.width, im.tile.height));
    let cell = (tw + 10, th + 24);
    let size = (
        16 + cols as u32 * cell.0,
        GRID_TITLE as u32 + rows as u32 * cell.1 + 4,
    );
    render(
        name,
        size,
        &Grid {
            images,
            cols,
            cell,
            title: title.to_string(),
        },
    )
}

/// One class's precision/recall curve at one IoU threshold, with the operating points.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassCurve {
    pub name: String,
    pub class: usize,
    /// Recall and precision at each detection, in order of falling score.
    pub recall: Vec<f64>,
    pub precision: Vec<f64>,
    /// `(threshold, recall, precision)` keeping the detections scoring at least
    /// `threshold`; `None` recall/precision when none does.
    pub operating_points: Vec<(f64, Option<(f64, f64)>)>,
    /// The class's AP (all-point interpolation), `None` without ground truth.
    pub ap: Option<f64>,
}

/// The PR curve of every category of `data` (in the order of `category_ids`) at
/// `iou_threshold`, VOC-style matching, with operating points at `thresholds`.
pub fn class_curves(
    data: &DetectionDataset,
    detections: &[Detection],
    category_ids: &[i64],
    iou_threshold: f64,
    thresholds: &[f64],
) -> Vec<ClassCurve> {
    let image_index: std::collections::HashMap<i64, usize> = data
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id, i))
        .collect();
    category_ids
        .iter()
        .enumerate()
        .map(|(class, &cat)| {
            let gt: Vec<GtBox> = data
                .images
                .iter()
                .enumerate()
                .flat_map(|(i, im)| {
                    im.objects
                        .iter()
                        .filter(move |o| o.category_id == cat)
                        .map(move |o| GtBox {
                            image: i,
                            bbox: o.bbox,
                            crowd: o.crowd,
                        })
                })
                .collect();
            let dets: Vec<ScoredBox> = detections
                .iter()
                .filter(|d| d.category_id == cat)
                .filter_map(|d| {
                    Some(ScoredBox {
                        image: *image_index.get(&d.image_id)?,
                        bbox: d.bbox,
                        score: d.score,
                    })
                })
                .collect();
            let m = match_detections(&gt, &dets, iou_threshold);
            let curve = precision_recall(&m);
            let (recall, precision, scores) = match &curve {
                Some(c) => (c.recall.clone(), c.precision.clone(), c.scores.clone()),
                None => (vec![], vec![], vec![]),
            };
            let operating_points = thresholds
                .iter()
                .map(|&t| {
                    // The last detection scoring at least t (scores fall along the curve).
                    let k = scores.iter().take_while(|&&s| s >= t).count();
                    (t, (k > 0).then(|| (recall[k - 1], precision[k - 1])))
                })
                .collect();
            let ap = (m.num_positives > 0)
                .then(|| crate::detection::ap::ap_all_point(&recall, &precision));
            ClassCurve {
                name: data.category_name(cat).unwrap_or("?").to_string(),
                class,
                recall,
                precision,
                operating_points,
                ap,
            }
        })
        .collect()
}

struct Curves<'a> {
    curves: &'a [ClassCurve],
    cols: usize,
    iou: f64,
}

const MARKERS: [&str; 3] = ["circle", "square", "triangle"];

impl super::picture::Draw for Curves<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let (w, _) = root.dim_in_pixel();
        text_centered(
            root,
            &format!(
                "Precision against recall per class (IoU >= {}); marks: confidence thresholds",
                self.iou
            ),
            (w as i32 / 2, 6),
            &font(16.0),
        )?;
        let body = root.margin(GRID_TITLE as u32, 0, 0, 0);
        let rows = self.curves.len().div_ceil(self.cols);
        let cells = body.split_evenly((rows, self.cols));
        for (cell, c) in cells.iter().zip(self.curves) {
            let color = class_color(c.class);
            let caption = match c.ap {
                Some(ap) => format!("{}: AP {:.3}", c.name, ap),
                None => format!("{}: no ground truth", c.name),
            };
            let mut chart = ChartBuilder::on(cell)
                .caption(caption, font(14.0))
                .margin(6)
                .x_label_area_size(28)
                .y_label_area_size(36)
                .build_cartesian_2d(0.0f64..1.0, 0.0f64..1.02)?;
            chart
                .configure_mesh()
                .x_desc("recall")
                .y_desc("precision")
                .x_labels(6)
                .y_labels(6)
                .label_style(font(10.0))
                .axis_desc_style(font(11.0))
                .draw()?;
            chart.draw_series(LineSeries::new(
                c.recall.iter().copied().zip(c.precision.iter().copied()),
                color.stroke_width(2),
            ))?;
            for (i, (t, p)) in c.operating_points.iter().enumerate() {
                let Some((r, pr)) = p else { continue };
                let style = BLACK.filled();
                let at = (*r, *pr);
                match MARKERS[i % MARKERS.len()] {
                    "circle" => {
                        chart.draw_series(std::iter::once(Circle::new(at, 5, style)))?;
                    }
                    "square" => {
                        chart.draw_series(std::iter::once(
                            EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], style),
                        ))?;
                    }
                    _ => {
                        chart.draw_series(std::iter::once(TriangleMarker::new(at, 6, style)))?;
                    }
                }
                chart.draw_series(std::iter::once(Text::new(
                    format!("{t}"),
                    at,
                    font(10.0).pos(Pos::new(HPos::Left, VPos::Bottom)),
                )))?;
            }
        }
        Ok(())
    }
}

/// The PR curves of the classes, `cols` per row.
pub fn pr_curves_picture(
    name: &str,
    curves: &[ClassCurve],
    iou: f64,
    cols: usize,
) -> Result<Picture> {
    let cols = cols.max(1).min(curves.len().max(1));
    let rows = curves.len().div_ceil(cols).max(1);
    render(
        name,
        (cols as u32 * 260, GRID_TITLE as u32 + rows as u32 * 230),
        &Curves { curves, cols, iou },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::{Category, ImageRecord, Object};

    fn data() -> DetectionDataset {
        let obj = |id, cat, x: f64| Object {
            id,
            category_id: cat,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            crowd: false,
            area: 100.0,
        };
        DetectionDataset {
            images: vec![ImageRecord {
                id: 7,
                path: "a.png".into(),
                width: 40,
                height: 16,
                objects: vec![obj(1, 3, 0.0), obj(2, 3, 20.0), obj(3, 5, 10.0)],
            }],
            categories: vec![
                Category {
                    id: 3,
                    name: "a".into(),
                },
                Category {
                    id: 5,
                    name: "b".into(),
                },
                Category {
                    id: 9,
                    name: "c".into(),
                },
            ],
        }
    }

    #[test]
    fn curves_and_operating_points_follow_the_scores() {
        let det = |cat, x: f64, score| Detection {
            image_id: 7,
            category_id: cat,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
            score,
        };
        // Class a: a hit at 0.9, a miss at 0.6, a hit at 0.3.
        let dets = [det(3, 0.0, 0.9), det(3, 30.0, 0.6), det(3, 20.0, 0.3)];
        let curves = class_curves(&data(), &dets, &[3, 5, 9], 0.5, &[0.25, 0.5, 0.75]);
        let a = &curves[0];
        assert_eq!(a.recall, [0.5, 0.5, 1.0]);
        assert_eq!(a.precision[0], 1.0);
        assert!((a.precision[2] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(a.operating_points[0], (0.25, Some((1.0, 2.0 / 3.0))));
        assert_eq!(a.operating_points[1], (0.5, Some((0.5, 0.5))));
        assert_eq!(a.operating_points[2], (0.75, Some((0.5, 1.0))));
        // Class b: ground truth, no detection: AP 0, no operating point.
        assert_eq!(curves[1].ap, Some(0.0));
        assert_eq!(curves[1].operating_points[0].1, None);
        // Class c: no ground truth.
        assert_eq!(curves[2].ap, None);
        let p = pr_curves_picture("pr", &curves, 0.5, 3).unwrap();
        assert!(p.png.starts_with(b"\x89PNG") && p.svg.contains("<svg"));
    }

    #[test]
    fn boxes_are_drawn_in_their_class_colour() {
        let mut im = BoxedImage::new(&vec![0.0; 16 * 40], (1, 16, 40), 4);
        im.predicted.push(LabelledBox {
            bbox: BBox::new(10.0, 4.0, 20.0, 14.0),
            class: 2,
            label: "b 0.9".into(),
        });
        im.truth.push(BBox::new(0.0, 0.0, 8.0, 8.0));
        let p = boxed_image_picture("one", &im).unwrap();
        let img = image::load_from_memory(&p.png).unwrap().to_rgb8();
        // The box's left edge at x = 1 + 40, halfway down.
        let c = class_color(2);
        assert_eq!(img.get_pixel(41, 1 + 40).0, [c.0, c.1, c.2]);
        // The true box's frame is white on the black image.
        assert_eq!(img.get_pixel(1, 1 + 20).0, [255, 255, 255]);
        let g = boxed_grid_picture("grid", "t", &[im], 4).unwrap();
        assert!(g.png.starts_with(b"\x89PNG"));
    }
}
