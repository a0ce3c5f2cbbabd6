//! `nabla export MODEL OUT.onnx`: a saved run (or a `.keras` file, a built-in model, a
//! JSON config) as an ONNX file (IR 8, opset 17; `formats/onnx`).

use super::common;
use clap::Args;
use nabla::error::{Error, Result};
use nabla::formats::onnx;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// A saved run directory, a Keras 3 .keras file, a built-in model (fresh weights
    /// from --seed) or a JSON model config.
    model: String,
    /// The .onnx file to write.
    out: PathBuf,
    /// Seed of the weights of a built-in model or config (a saved run has its own).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: ExportArgs) -> Result<i32> {
    if a.out.extension().and_then(|e| e.to_str()) != Some("onnx") {
        return Err(Error::invalid(format!(
            "{}: the output file must end in .onnx",
            a.out.display()
        )));
    }
    let model = common::build_model(&a.model, a.seed)?;
    let exported = onnx::export(&model, &a.out)?;
    println!(
        "wrote {} (ONNX IR {}, opset {}): inputs {}, outputs {}; ops: {}",
        a.out.display(),
        onnx::IR_VERSION,
        onnx::OPSET,
        model
            .inputs()
            .iter()
            .map(|i| i.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
        model.output_names().join(", "),
        exported.op_types.join(", ")
    );
    Ok(0)
}
