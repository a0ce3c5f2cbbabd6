//! `nabla summary NAME|DIR|config.json`.

use super::common;
use clap::Args;
use nabla::error::Result;

#[derive(Args)]
pub struct SummaryArgs {
    /// A built-in model, a saved model directory, or a JSON model config.
    model: String,
}

pub fn run(a: SummaryArgs) -> Result<i32> {
    let model = common::build_model(&a.model, 0)?;
    print!("{}", model.summary());
    Ok(0)
}
