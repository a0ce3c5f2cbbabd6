//! The report of an autoencoder run (`nabla train --model autoencoder --report`,
//! `nabla report RUN`): test images above their reconstructions, a grid of images
//! decoded from random codes (drawn from the Gaussian of the training codes the run
//! saved), and the test set's code space projected on its first two principal axes,
//! coloured by class. One self-contained `report.html` of them, like the classifier's.

use super::html::escape;
use super::picture::{font, image_tile, render, Draw, DrawResult, Picture, Tile};
use crate::data::Dataset;
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::models::autoencoder::{decoder, encoder, CodeStats};
use crate::nn::Graph;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// How many test images the reconstruction picture shows.
const PAIRS: usize = 10;
/// The generated grid: `GRID` x `GRID` images.
const GRID: usize = 10;
/// Test images whose codes the code-space picture plots.
const CODE_POINTS: usize = 2000;

/// Images `[N, C, H, W]` (C = 1 or 3, values in [0, 1]) as one PNG grid of `cols`
/// columns, 2 pixels apart, on black: what `nabla generate` writes.
pub fn image_grid_png(images: &Tensor, cols: usize) -> Result<Vec<u8>> {
    let s = images.shape();
    if s.len() != 4 || !(s[1] == 1 || s[1] == 3) || s[0] == 0 || cols == 0 {
        return Err(Error::shape(format!(
            "an image grid needs [N >= 1, 1 or 3, H, W] images, got {s:?}"
        )));
    }
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let rows = n.div_ceil(cols);
    let gap = 2;
    let (gw, gh) = (cols * (w + gap) + gap, rows * (h + gap) + gap);
    let mut img = image::RgbImage::new(gw as u32, gh as u32);
    let v = images.to_f32_vec();
    let byte = |x: f32| (x.clamp(0.0, 1.0) * 255.0).round() as u8;
    for k in 0..n {
        let (x0, y0) = (gap + (k % cols) * (w + gap), gap + (k / cols) * (h + gap));
        let base = k * c * h * w;
        for y in 0..h {
            for x in 0..w {
                let at = |ch: usize| byte(v[base + ch * h * w + y * w + x]);
                let px = if c == 1 {
                    [at(0); 3]
                } else {
                    [at(0), at(1), at(2)]
                };
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb(px));
            }
        }
    }
    let mut png = Vec::new();
    use image::ImageEncoder;
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(
            img.as_raw(),
            gw as u32,
            gh as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::invalid(format!("encoding the image grid as PNG failed: {e}")))?;
    Ok(png)
}

/// Rows of tiles with a label before each row.
struct TileRows {
    rows: Vec<(String, Vec<Tile>)>,
}

impl Draw for TileRows {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        // Room for the row labels only when there are some.
        let left = if self.rows.iter().any(|(l, _)| !l.is_empty()) {
            130
        } else {
            10
        };
        for (r, (label, tiles)) in self.rows.iter().enumerate() {
            let y = 10 + r as i32 * 92;
            if !label.is_empty() {
                root.draw(&Text::new(label.clone(), (8, y + 36), font(15.0)))?;
            }
            for (k, t) in tiles.iter().enumerate() {
                t.draw_at(root, (left + k as i32 * 90, y))?;
            }
        }
        Ok(())
    }
}

/// The test set's codes on their first two principal axes, one colour per class.
struct CodeSpace {
    points: Vec<(f64, f64, usize)>,
    classes: Vec<String>,
}

impl Draw for CodeSpace {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let range = |f: fn(&(f64, f64, usize)) -> f64| {
            let lo = self.points.iter().map(f).fold(f64::INFINITY, f64::min);
            let hi = self.points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
            let pad = ((hi - lo) * 0.05).max(1e-6);
            (lo - pad)..(hi + pad)
        };
        let mut chart = ChartBuilder::on(root)
            .caption("Test codes, first two principal axes", font(18.0))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(range(|p| p.0), range(|p| p.1))?;
        chart
            .configure_mesh()
            .x_desc("PC 1")
            .y_desc("PC 2")
            .label_style(font(12.0))
            .draw()?;
        for (c, name) in self.classes.iter().enumerate() {
            let color = Palette99::pick(c).to_rgba();
            chart
                .draw_series(
                    self.points
                        .iter()
                        .filter(|p| p.2 == c)
                        .map(|p| Circle::new((p.0, p.1), 2, color.filled())),
                )?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(font(12.0))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        Ok(())
    }
}

/// The first two principal axes of `codes` (`[N, D]`) and each row's coordinates on
/// them (power iteration with deflation on the D x D covariance).
pub fn pca_2d(codes: &Tensor) -> Result<Vec<(f64, f64)>> {
    let stats = CodeStats::fit(codes)?;
    let d = stats.mean.len();
    let mut cov: Vec<f64> = stats.covariance.iter().map(|&c| c as f64).collect();
    let mut axes = Vec::new();
    for a in 0..2 {
        // A fixed, non-degenerate start: every coordinate, unequal.
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + (i + a) as f64 * 0.01).collect();
        let mut lambda = 0.0;
        for _ in 0..500 {
            let w: Vec<f64> = (0..d)
                .map(|i| (0..d).map(|j| cov[i * d + j] * v[j]).sum())
                .collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            lambda = norm;
            v = w.iter().map(|x| x / norm).collect();
        }
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] -= lambda * v[i] * v[j];
            }
        }
        axes.push(v);
    }
    let x = codes.to_f32_vec();
    Ok(x.chunks(d)
        .map(|row| {
            let proj = |ax: &[f64]| {
                row.iter()
                    .zip(&stats.mean)
                    .zip(ax)
                    .map(|((&r, &m), &a)| (r - m) as f64 * a)
                    .sum::<f64>()
            };
            (proj(&axes[0]), proj(&axes[1]))
        })
        .collect())
}

/// Writes the autoencoder report of `model` (saved in `run`, with its code statistics)
/// on `ds`'s test split (`y_test`: class labels) into `out`; returns the page's path.
pub fn write_autoencoder_report(
    model: &mut Graph,
    run: &Path,
    ds: &Dataset,
    out: &Path,
) -> Result<PathBuf> {
    let codes_path = run.join(crate::models::autoencoder::CODES_FILE);
    let text = std::fs::read_to_string(&codes_path).map_err(|e| Error::io(&codes_path, e))?;
    let stats = CodeStats::from_json(&codes_path, &text)?;
    let n = ds.x_test.shape()[0];
    if n == 0 {
        return Err(Error::invalid(format!(
            "data set '{}' has no test images",
            ds.name
        )));
    }
    let mut enc = encoder(model)?;
    let mut dec = decoder(model)?;
    let shown = ds.x_test.slice_rows(0, PAIRS.min(n));
    let recon = model.predict(&shown, 256)?;
    let row = |x: &Tensor| -> Vec<Tile> {
        (0..x.shape()[0])
            .filter_map(|i| image_tile(x, i, 3))
            .collect()
    };
    let pairs = render(
        "reconstructions",
        (130 + 90 * PAIRS as u32, 200),
        &TileRows {
            rows: vec![
                ("input".into(), row(&shown)),
                ("reconstruction".into(), row(&recon)),
            ],
        },
    )?;
    let codes = stats.sample(GRID * GRID, 0)?;
    let generated = dec.predict(&codes, 256)?;
    let grid_rows: Vec<(String, Vec<Tile>)> = (0..GRID)
        .map(|r| {
            let part = generated.slice_rows(r * GRID, (r + 1) * GRID);
            (String::new(), row(&part))
        })
        .collect();
    let grid = render(
        "generated",
        (20 + 90 * GRID as u32, 20 + 92 * GRID as u32),
        &TileRows { rows: grid_rows },
    )?;
    let m = CODE_POINTS.min(n);
    let test_codes = enc.predict(&ds.x_test.slice_rows(0, m), 256)?;
    let labels: Vec<usize> = ds
        .y_test
        .slice_rows(0, m)
        .to_f32_vec()
        .iter()
        .map(|&c| c as usize)
        .collect();
    let k = labels.iter().max().map_or(0, |&c| c + 1);
    let classes: Vec<String> = (0..k)
        .map(|c| ds.class_names.get(c).cloned().unwrap_or(c.to_string()))
        .collect();
    let points = pca_2d(&test_codes)?
        .into_iter()
        .zip(&labels)
        .map(|((x, y), &c)| (x, y, c))
        .collect();
    let space = render("code_space", (720, 560), &CodeSpace { points, classes })?;
    // The reconstruction loss on the whole test set, the number the training minimised.
    let full = model.predict(&ds.x_test, 256)?;
    let (a, b) = (full.to_f32_vec(), ds.x_test.to_f32_vec());
    let mse = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q) * (p - q))
        .sum::<f32>()
        / a.len() as f32;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let pictures = [&pairs, &grid, &space];
    for p in pictures {
        p.save(out)?;
    }
    let data = serde_json::json!({
        "model": model.name,
        "dataset": ds.name,
        "test_images": n,
        "test_reconstruction_mse": mse,
        "code_size": stats.mean.len(),
        "code_statistics_from": stats.samples,
        "generated_shown": GRID * GRID,
        "code_space_points": m,
        "pictures": ["reconstructions", "generated", "code_space"],
    });
    let json = serde_json::to_string_pretty(&data).expect("json");
    crate::formats::atomic::write_bytes_atomic(out.join("report.json"), json.as_bytes())?;
    let figure = |p: &Picture, caption: &str| {
        format!(
            "<figure><img alt=\"{}\" src=\"{}\" width=\"{}\"><figcaption>{}</figcaption></figure>",
            p.name,
            p.png_data_uri(),
            p.width,
            escape(caption)
        )
    };
    let page = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}\
         img{{max-width:100%}}pre{{background:#f4f4f4;padding:1em}}</style></head><body>\
         <h1>{title}</h1><p>Test reconstruction MSE {mse:.5} over {n} images; code of {d} \
         numbers.</p><h2>Inputs and reconstructions</h2>{pairs}<h2>Generated images</h2>\
         <p>{g} random codes drawn from the Gaussian (mean and full covariance) of the {s} \
         training codes, decoded by the decoder, which shares the autoencoder's \
         weights.</p>{grid}<h2>Code space</h2>{space}<h2>Model</h2><pre>{summary}</pre>\
         </body></html>",
        title = escape(&format!("{} on {}", model.name, ds.name)),
        d = stats.mean.len(),
        pairs = figure(&pairs, "top: test images; bottom: their reconstructions"),
        g = GRID * GRID,
        s = stats.samples,
        grid = figure(&grid, "decoded random codes"),
        space = figure(
            &space,
            &format!("the codes of the first {m} test images on their first two principal axes")
        ),
        summary = escape(&model.summary()),
    );
    let path = out.join("report.html");
    crate::formats::atomic::write_bytes_atomic(&path, page.as_bytes())?;
    Ok(path)
}
