//! ONNX export: a model (its graph and weights) as an `.onnx` file that onnxruntime and
//! other ONNX runtimes run, giving what `predict` gives.
//!
//! The file is ONNX IR version 8 with the default domain at opset 17, both written
//! explicitly (`IR_VERSION`, `OPSET`). The graph's inputs are named as the model's, of
//! type float with a symbolic batch axis `N` (an axis nabla leaves open is symbolic
//! too); its outputs are named as the model's output layers and hold what `predict`
//! returns (after the final softmax or sigmoid). Layout is nabla's, channels first.
//!
//! `proto.rs` holds the protobuf messages, `builder.rs` the graph under construction,
//! `export.rs` one function per layer kind, `recurrent.rs` the LSTM/GRU/SimpleRNN
//! layers and masks. A layer that cannot be exported does not stop the walk: the error
//! lists every such layer (name, class, why) at once.

mod builder;
mod export;
pub mod proto;
mod recurrent;

use crate::error::{Error, Result};
use crate::nn::layers::dims::Dim;
use crate::nn::Graph;
use export::{Exporter, Value};
use prost::Message;
use proto::{
    DimValue, Dimension, GraphProto, ModelProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    TypeProtoTensor, ValueInfoProto, FLOAT,
};
use std::path::Path;

/// The ONNX IR version written (ONNX 1.13+ reads it; onnxruntime 1.14+).
pub const IR_VERSION: i64 = 8;
/// The default-domain opset the graph uses.
pub const OPSET: i64 = 17;

/// The layer classes with an export (their options permitting; see the README).
pub const EXPORTED_CLASSES: [&str; 31] = [
    "Dense",
    "Conv1D",
    "Conv2D",
    "Conv2DTranspose",
    "MaxPooling1D",
    "AveragePooling1D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "Flatten",
    "Reshape",
    "Dropout",
    "BatchNormalization",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Embedding",
    "UpSampling2D",
    "ZeroPadding2D",
    "LSTM, GRU, SimpleRNN, Bidirectional",
    "Shared calls and nested models of these",
];

/// An exported model: the protobuf message and the operator types it uses.
pub struct OnnxModel {
    pub proto: ModelProto,
    /// Every ONNX operator type in the graph, sorted.
    pub op_types: Vec<String>,
}

impl OnnxModel {
    /// The protobuf encoding (what the `.onnx` file holds).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }
}

/// The value info of a float tensor: batch axis `N`, then the sample's axes (an open
/// one named `{name}_d{k}`).
fn value_info(name: &str, shape: &[Dim]) -> ValueInfoProto {
    let batch = Dimension {
        value: Some(DimValue::DimParam("N".into())),
    };
    let dims = std::iter::once(batch)
        .chain(shape.iter().enumerate().map(|(k, d)| Dimension {
            value: Some(match d.get() {
                Some(n) => DimValue::DimValue(n as i64),
                None => DimValue::DimParam(format!("{name}_d{}", k + 1)),
            }),
        }))
        .collect();
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    }
}

/// The model as ONNX, or an error listing every layer that cannot be exported.
pub fn to_onnx(g: &Graph) -> Result<OnnxModel> {
    let mut e = Exporter::default();
    let out_names = g.output_names();
    for i in g.inputs() {
        e.b.reserve(&i.name);
    }
    for n in &out_names {
        e.b.reserve(n);
    }
    let inputs: Vec<Value> = g
        .inputs()
        .iter()
        .map(|i| Value::plain(i.name.clone()))
        .collect();
    let outs = e.emit_graph(g, inputs, "");
    if !e.problems.is_empty() {
        return Err(Error::invalid(format!(
            "model '{}' cannot be exported to ONNX; {} layer{} cannot:\n  {}",
            g.name,
            e.problems.len(),
            if e.problems.len() == 1 { "" } else { "s" },
            e.problems.join("\n  ")
        )));
    }
    // Each output under its layer's name (an output may also be read inside the graph,
    // or be an input itself, so it is a node of its own).
    let mut seen = std::collections::HashSet::new();
    for (v, name) in outs.iter().zip(&out_names) {
        if !seen.insert(name.clone()) {
            return Err(Error::invalid(format!(
                "model '{}' names output '{name}' twice; ONNX outputs need distinct names",
                g.name
            )));
        }
        e.b.push("Identity", &[&v.name], vec![name.clone()], vec![]);
    }
    let graph = GraphProto {
        node: std::mem::take(&mut e.b.nodes),
        name: g.name.clone(),
        initializer: std::mem::take(&mut e.b.initializers),
        input: g
            .inputs()
            .iter()
            .map(|i| value_info(&i.name, &i.shape))
            .collect(),
        output: out_names
            .iter()
            .zip(g.output_shapes())
            .map(|(n, s)| value_info(n, s))
            .collect(),
    };
    let proto = ModelProto {
        ir_version: IR_VERSION,
        producer_name: "nabla".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("nabla model '{}'", g.name),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    };
    Ok(OnnxModel {
        proto,
        op_types: e.b.op_types.into_iter().collect(),
    })
}

/// Exports the model to `path` (written atomically: the old file, if any, stays until
/// the new one is complete).
pub fn export(g: &Graph, path: impl AsRef<Path>) -> Result<OnnxModel> {
    let model = to_onnx(g)?;
    super::atomic::write_bytes_atomic(path.as_ref(), &model.to_bytes())?;
    Ok(model)
}

#[cfg(test)]
mod tests;
