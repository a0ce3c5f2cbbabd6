//! `nabla predict DIR image.png`: class probabilities for one image.

use super::common;
use clap::Args;
use nabla::data::image::{load_image, ImageOptions};
use nabla::error::{Error, Result};
use nabla::layers::Dim;
use std::path::PathBuf;

#[derive(Args)]
pub struct PredictArgs {
    /// A directory written by `nabla train`.
    dir: PathBuf,
    /// PNG or JPEG, any size: converted to the model's input like the training data.
    image: PathBuf,
    /// Invert the grey levels (for dark digits on a light background; MNIST is light on dark).
    #[arg(long)]
    invert: bool,
    /// How many classes to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

pub fn run(a: PredictArgs) -> Result<i32> {
    let mut model = common::load_saved(&a.dir)?;
    let shape = model.input_shape().to_vec();
    let [Dim(Some(c)), Dim(Some(h)), Dim(Some(w))] = shape[..] else {
        return Err(Error::invalid(format!(
            "model '{}' takes inputs {:?}, not images",
            model.name, shape
        )));
    };
    let x = load_image(&a.image, &ImageOptions::new(c, h, w).invert(a.invert))?;
    let probs = model.predict(&x, 1)?;
    let p = probs.to_f32_vec();
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&i, &j| p[j].total_cmp(&p[i]));
    let name = |i: usize| {
        model
            .class_names
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.to_string())
    };
    println!("{}: {}", a.image.display(), name(order[0]));
    for &i in order.iter().take(a.top) {
        println!("  {:>12}  {:.4}", name(i), p[i]);
    }
    Ok(0)
}
