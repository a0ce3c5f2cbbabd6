//! Keras' `model.summary()` table. Shapes are channels-first, as nabla computes them.

use super::model::Sequential;

fn shape_str(shape: &[usize]) -> String {
    let dims: Vec<String> = std::iter::once("None".to_string())
        .chain(shape.iter().map(|d| d.to_string()))
        .collect();
    format!("({})", dims.join(", "))
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn summary(model: &Sequential) -> String {
    let rows: Vec<(String, String, String)> = model
        .layers()
        .iter()
        .zip(model.layer_output_shapes())
        .map(|(layer, shape)| {
            let params: usize = layer
                .params()
                .iter()
                .map(|p| p.var.value_ref().numel())
                .sum();
            (
                format!("{} ({})", layer.name(), layer.config().class_name()),
                shape_str(shape),
                thousands(params),
            )
        })
        .collect();
    // Keras' column widths, widened so long layer names never run into the shapes.
    let w1 = rows
        .iter()
        .map(|r| r.0.len() + 2)
        .max()
        .unwrap_or(0)
        .max(28);
    let w2 = rows
        .iter()
        .map(|r| r.1.len() + 2)
        .max()
        .unwrap_or(0)
        .max(26);
    let width = (w1 + w2 + 11).max(65);
    let rule = "_".repeat(width);
    let double = "=".repeat(width);
    let mut s = format!("Model: \"{}\"\n{rule}\n", model.name);
    s += &format!(
        " {:<w1$}{:<w2$}{}\n{double}\n",
        "Layer (type)", "Output Shape", "Param #"
    );
    for (i, (label, shape, params)) in rows.iter().enumerate() {
        s += &format!(" {label:<w1$}{shape:<w2$}{params}\n");
        if i + 1 < rows.len() {
            s += "\n";
        }
    }
    let (trainable, fixed) = model.count_params();
    s += &format!("{double}\n");
    s += &format!("Total params: {}\n", thousands(trainable + fixed));
    s += &format!("Trainable params: {}\n", thousands(trainable));
    s += &format!("Non-trainable params: {}\n{rule}\n", thousands(fixed));
    s
}
