//! `nabla gradcheck NAME`: every parameter's gradient against central differences on a
//! small batch, with the worst relative error per layer.

use super::common;
use clap::Args;
use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::error::Result;
use nabla::training::gradcheck::check_model;
use nabla::{models, KerasLoss, Optimizer, Rng, Tensor};

#[derive(Args)]
pub struct GradcheckArgs {
    /// A built-in model or a JSON model config.
    model: String,
    /// Samples in the batch.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Entries checked per parameter tensor (sampled at random).
    #[arg(long, default_value_t = 25)]
    entries: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Central-difference step.
    #[arg(long, default_value_t = 1e-2)]
    step: f32,
}

pub fn run(a: GradcheckArgs) -> Result<i32> {
    let mut model = common::build_model(&a.model, a.seed)?;
    let loss = models::recipe(&a.model).map(|r| r.loss).unwrap_or(
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
    );
    model.compile(loss, Optimizer::sgd(0.0), &[])?;
    let mut rng = Rng::new(a.seed + 1);
    let known = |s: &[nabla::layers::Dim], what: &str| {
        nabla::layers::dims::known(s).ok_or_else(|| {
            nabla::Error::invalid(format!(
                "gradcheck: model '{}' has an {what} axis known only per batch ({s:?})",
                model.name
            ))
        })
    };
    let input_shape = known(model.input_shape(), "input")?;
    let output_shape = known(model.output_shape(), "output")?;
    let mut shape = vec![a.batch];
    shape.extend_from_slice(&input_shape);
    let n: usize = shape.iter().product();
    let x = Tensor::from_vec((0..n).map(|_| rng.uniform()).collect(), &shape);
    let outputs: usize = output_shape.iter().product();
    let y = match loss {
        KerasLoss::SparseCategoricalCrossentropy { .. } => Tensor::from_vec(
            (0..a.batch).map(|_| rng.below(outputs) as f32).collect(),
            &[a.batch],
        ),
        _ => {
            let mut s = vec![a.batch];
            s.extend_from_slice(&output_shape);
            Tensor::from_vec(
                (0..a.batch * outputs)
                    .map(|_| rng.below(2) as f32)
                    .collect(),
                &s,
            )
        }
    };
    let reports = check_model(&mut model, &x, &y, a.entries, a.step)?;
    println!(
        "{:<36}{:<18}{:>8}{:>8}{:>12}{:>12}",
        "parameter", "shape", "checked", "skipped", "max |grad|", "rel. error"
    );
    let mut worst_by_layer: Vec<(String, f32)> = Vec::new();
    let mut failed = false;
    for r in &reports {
        let ok = r.passed();
        failed |= !ok;
        println!(
            "{:<36}{:<18}{:>8}{:>8}{:>12.2e}{:>12.2e}  {}",
            r.param,
            format!("{:?}", r.shape),
            r.checked,
            r.skipped_near_kink,
            r.grad_scale,
            r.rel_error,
            if ok { "ok" } else { "FAIL" }
        );
        let layer = r.param.split('/').next().unwrap_or("").to_string();
        match worst_by_layer.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, w)) => *w = w.max(r.rel_error),
            None => worst_by_layer.push((layer, r.rel_error)),
        }
    }
    println!("\nWorst relative error per layer (tolerance {DEFAULT_TOLERANCE:.0e}):");
    for (layer, w) in &worst_by_layer {
        println!("  {layer:<30}{w:.2e}");
    }
    if failed {
        eprintln!("error: gradient check failed");
        return Ok(1);
    }
    println!("All gradients agree with central differences.");
    Ok(0)
}
