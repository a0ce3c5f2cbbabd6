//! Keras' `model.summary()` table. Shapes are channels-first, as nabla computes them.

use super::graph::Graph;
use super::layers::Dim;

fn shape_str(shape: &[Dim]) -> String {
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

/// Keras' table (totals count weights as PyTorch and the papers do: batch norm's moving
/// statistics, which Keras lists as non-trainable params, get their own line): `Layer (type)`, `Output Shape`, `Param #`, and for a model that is not
/// a simple chain, `Connected to` (the tensors each layer reads), with the inputs listed
/// first as `InputLayer` rows.
pub fn summary(model: &Graph) -> String {
    let graph = !model.is_sequential();
    let mut rows: Vec<[String; 4]> = Vec::new();
    if graph {
        for input in model.inputs() {
            rows.push([
                format!("{} (InputLayer)", input.name),
                shape_str(&input.shape),
                "0".into(),
                String::new(),
            ]);
        }
    }
    for (i, (layer, shape)) in model
        .layers()
        .iter()
        .zip(model.layer_output_shapes())
        .enumerate()
    {
        let params: usize = layer
            .params()
            .iter()
            .filter(|p| !p.buffer)
            .map(|p| p.var.value_ref().numel())
            .sum();
        rows.push([
            match layer.as_shared().filter(|s| !s.is_view()) {
                Some(s) => format!(
                    "{} ({}, shared)",
                    layer.name(),
                    s.layer_config().class_name()
                ),
                None => format!("{} ({})", layer.name(), layer.config().class_name()),
            },
            // Keras lists every output of a layer that returns several.
            match model.layer_output_shapes_all(i)[..] {
                [_] | [] => shape_str(shape),
                ref all => format!(
                    "[{}]",
                    all.iter()
                        .map(|s| shape_str(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            thousands(params),
            model.layer_inbound_names(i).join(", "),
        ]);
    }
    // Keras' column widths, widened so long layer names never run into the shapes.
    let width_of = |k: usize, min: usize| {
        rows.iter()
            .map(|r| r[k].len() + 2)
            .max()
            .unwrap_or(0)
            .max(min)
    };
    let (w1, w2) = (width_of(0, 28), width_of(1, 26));
    let w3 = if graph { width_of(2, 11) } else { 0 };
    let connected = if graph { width_of(3, 12) } else { 0 };
    let width = (w1 + w2 + w3 + connected + 11).max(65);
    let rule = "_".repeat(width);
    let double = "=".repeat(width);
    let mut s = format!("Model: \"{}\"\n{rule}\n", model.name);
    if graph {
        s += &format!(
            " {:<w1$}{:<w2$}{:<w3$}{}\n{double}\n",
            "Layer (type)", "Output Shape", "Param #", "Connected to"
        );
    } else {
        s += &format!(
            " {:<w1$}{:<w2$}{}\n{double}\n",
            "Layer (type)", "Output Shape", "Param #"
        );
    }
    for (i, [label, shape, params, inbound]) in rows.iter().enumerate() {
        if graph {
            s += &format!(" {label:<w1$}{shape:<w2$}{params:<w3$}{inbound}\n");
        } else {
            s += &format!(" {label:<w1$}{shape:<w2$}{params}\n");
        }
        if i + 1 < rows.len() {
            s += "\n";
        }
    }
    let (trainable, fixed) = model.count_params();
    s += &format!("{double}\n");
    s += &format!("Total params: {}\n", thousands(trainable + fixed));
    s += &format!("Trainable params: {}\n", thousands(trainable));
    s += &format!("Non-trainable params: {}\n", thousands(fixed));
    let buffers = model.count_buffers();
    if buffers > 0 {
        s += &format!(
            "Batch-norm statistics (not params): {}\n",
            thousands(buffers)
        );
    }
    // Keras prints the size beside the counts; the element types are what
    // `Model::set_dtype` can store the weights in.
    let size = |d: crate::engine::DType| thousands(model.size_in_bytes(d));
    s += &format!(
        "Size in bytes: {} as f32, {} as f16 or bf16\n",
        size(crate::engine::DType::F32),
        size(crate::engine::DType::F16)
    );
    s += &format!("{rule}\n");
    s
}
