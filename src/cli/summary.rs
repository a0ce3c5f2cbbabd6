//! `nabla summary NAME|DIR|config.json`.

use super::common;
use clap::Args;
use nabla::error::{Error, Result};
use nabla::models;

#[derive(Args)]
pub struct SummaryArgs {
    /// A built-in model, a saved model directory, or a JSON model config.
    model: String,
    /// For the deep nets (vgg16, resnet50, ...): the input shape, channels first, e.g.
    /// 3,32,32. Default: 3,224,224 for the ImageNet definitions, 3,32,32 for the others.
    #[arg(long, value_delimiter = ',')]
    input_shape: Option<Vec<usize>>,
    /// For the deep nets: the number of classes (default 1000 for the ImageNet
    /// definitions, 10 for the others).
    #[arg(long)]
    classes: Option<usize>,
}

pub fn run(a: SummaryArgs) -> Result<i32> {
    let model = if models::text::is_text_model(&a.model) {
        // The vocabulary and classes come from the data; the defaults' shapes.
        if a.input_shape.is_some() {
            return Err(Error::invalid(
                "--input-shape does not apply to a text model (its input is the vocabulary)",
            ));
        }
        let classes = a.classes.unwrap_or(models::text::DEFAULT_CLASSES);
        models::text::build(
            &a.model,
            models::text::DEFAULT_MAX_TOKENS,
            models::text::DEFAULT_SEQUENCE_LENGTH,
            classes,
            0,
        )?
    } else if models::is_zoo(&a.model) {
        let (shape, classes) = models::default_shape(&a.model);
        models::build_for(
            &a.model,
            a.input_shape.as_deref().unwrap_or(&shape),
            a.classes.unwrap_or(classes),
            0,
        )?
    } else {
        if a.input_shape.is_some() || a.classes.is_some() {
            return Err(Error::invalid(format!(
                "--input-shape and --classes apply to the deep nets ({}), not '{}'",
                models::ZOO.join(", "),
                a.model
            )));
        }
        common::build_model(&a.model, 0)?
    };
    print!("{}", model.summary());
    Ok(0)
}
