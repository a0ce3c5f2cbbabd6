//! `nabla generate RUN`: new images from an autoencoder run. Random codes are drawn
//! from the Gaussian (mean, full covariance) of the training codes that `nabla train`
//! saved in RUN/codes.json, and decoded by the decoder, a sub-model sharing the run's
//! weights; the images are written as one PNG grid (and optionally a `.npy` array).

use super::common;
use clap::Args;
use nabla::error::{Error, Result};
use nabla::models::autoencoder::{decoder, is_autoencoder, CodeStats, CODES_FILE};
use std::path::PathBuf;

/// More images than this would be a mistake (a 10^6 grid is gigabytes).
const MAX_COUNT: usize = 100_000;

#[derive(Args)]
pub struct GenerateArgs {
    /// A run folder written by `nabla train --model autoencoder` (or conv-autoencoder).
    run: PathBuf,
    /// How many images.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// The PNG grid. Default: RUN/generated.png.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the images as a float32 `.npy` array [COUNT, C, H, W].
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// Seed of the random codes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: GenerateArgs) -> Result<i32> {
    if a.count == 0 || a.count > MAX_COUNT {
        return Err(Error::invalid(format!(
            "--count must be between 1 and {MAX_COUNT}, got {}",
            a.count
        )));
    }
    let mut model = common::load_saved(&a.run)?;
    let codes_path = a.run.join(CODES_FILE);
    if !is_autoencoder(&model) || !codes_path.exists() {
        return Err(Error::invalid(format!(
            "{}: not an autoencoder run (model '{}'; generate needs a '{}' layer and {} \
             from `nabla train --model autoencoder`)",
            a.run.display(),
            model.name,
            nabla::models::autoencoder::CODE_LAYER,
            CODES_FILE
        )));
    }
    let text = std::fs::read_to_string(&codes_path).map_err(|e| Error::io(&codes_path, e))?;
    let stats = CodeStats::from_json(&codes_path, &text)?;
    let mut dec = decoder(&mut model)?;
    let want = dec
        .input_shape()
        .iter()
        .map(|d| d.get())
        .collect::<Vec<_>>();
    if want != [Some(stats.mean.len())] {
        return Err(Error::format(
            &codes_path,
            format!(
                "codes of {} numbers, but the decoder takes {:?}",
                stats.mean.len(),
                dec.input_shape()
            ),
        ));
    }
    let codes = stats.sample(a.count, a.seed)?;
    let images = dec.predict(&codes, 256)?;
    let out = a.out.unwrap_or_else(|| a.run.join("generated.png"));
    let cols = (a.count as f64).sqrt().ceil() as usize;
    let png = nabla::report::autoencoder::image_grid_png(&images, cols)?;
    nabla::formats::atomic::write_bytes_atomic(&out, &png)?;
    println!("Wrote {} generated images to {}", a.count, out.display());
    if let Some(npy) = &a.npy {
        nabla::formats::atomic::write_bytes_atomic(npy, &npy_f32(&images))?;
        println!(
            "Wrote the images as {:?} float32 to {}",
            images.shape(),
            npy.display()
        );
    }
    Ok(0)
}

/// A tensor as a NumPy `.npy` file (format 1.0, little-endian float32, C order).
fn npy_f32(x: &nabla::Tensor) -> Vec<u8> {
    let shape: Vec<String> = x.shape().iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        shape.join(", ")
    );
    // The header (with the 10 bytes before it) ends on a multiple of 64, in a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in x.to_f32_vec() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
