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
    let rule = "_".repeat(65);
    let double = "=".repeat(65);
    let mut s = format!("Model: \"{}\"\n{rule}\n", model.name);
    s += &format!(
        " {:<28}{:<26}{}\n{double}\n",
        "Layer (type)", "Output Shape", "Param #"
    );
    let n = model.layers().len();
    for (i, (layer, shape)) in model
        .layers()
        .iter()
        .zip(model.layer_output_shapes())
        .enumerate()
    {
        let params: usize = layer
            .params()
            .iter()
            .map(|p| p.var.value_ref().numel())
            .sum();
        let label = format!("{} ({})", layer.name(), layer.config().class_name());
        s += &format!(
            " {:<28}{:<26}{}\n",
            label,
            shape_str(shape),
            thousands(params)
        );
        if i + 1 < n {
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
