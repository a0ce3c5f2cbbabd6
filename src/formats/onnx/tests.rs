//! The encoder: a small model decoded back through prost, and the encodings of
//! attributes and tensors checked byte for byte against onnx.proto's wire format.

use super::builder::{attr_f, attr_i, attr_ints};
use super::proto::*;
use super::*;
use crate::nn::layers::keras::*;
use crate::nn::layers::{Activation, Dim, LayerConfig};

fn small() -> Graph {
    let mut g = Graph::with_seed(&[1, 6, 6], 3);
    g.name = "small".into();
    g.add(Conv2D(2, 3).activation(Activation::Relu)).unwrap();
    g.add(Flatten()).unwrap();
    g.add(Dense(3).activation(Activation::Softmax)).unwrap();
    g
}

#[test]
fn a_small_model_round_trips_through_the_encoding() {
    let g = small();
    let m = to_onnx(&g).unwrap();
    let back = ModelProto::decode(m.to_bytes().as_slice()).unwrap();
    assert_eq!(back, m.proto);
    assert_eq!(back.ir_version, 8);
    assert_eq!(back.opset_import.len(), 1);
    assert_eq!(back.opset_import[0].version, 17);
    assert_eq!(back.opset_import[0].domain, "");
    let graph = back.graph.unwrap();
    let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(
        ops,
        ["Conv", "Relu", "Flatten", "MatMul", "Add", "Softmax", "Identity"]
    );
    assert_eq!(
        m.op_types,
        ["Add", "Conv", "Flatten", "Identity", "MatMul", "Relu", "Softmax"]
    );
    // Input "input" [N, 1, 6, 6]; output named after the last layer.
    let dims = |v: &ValueInfoProto| -> Vec<DimValue> {
        let t = v.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
        assert_eq!(t.elem_type, FLOAT);
        t.shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| d.value.clone().unwrap())
            .collect()
    };
    assert_eq!(graph.input[0].name, "input");
    assert_eq!(
        dims(&graph.input[0]),
        [
            DimValue::DimParam("N".into()),
            DimValue::DimValue(1),
            DimValue::DimValue(6),
            DimValue::DimValue(6)
        ]
    );
    assert_eq!(graph.output[0].name, g.output_names()[0]);
    assert_eq!(
        dims(&graph.output[0]),
        [DimValue::DimParam("N".into()), DimValue::DimValue(3)]
    );
    // The weights, raw little-endian f32 in nabla's layout.
    let kernel = graph
        .initializer
        .iter()
        .find(|t| t.name.ends_with("/kernel") && t.dims.len() == 4)
        .unwrap();
    assert_eq!(kernel.dims, [2, 1, 3, 3]);
    assert_eq!(kernel.data_type, FLOAT);
    let want: Vec<u8> = g.params()[0]
        .var
        .value()
        .to_f32_vec()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(kernel.raw_data, want);
}

#[test]
fn attributes_and_tensors_encode_as_onnx_proto_says() {
    // AttributeProto{name: "axis" (field 1, bytes), i: 2 (field 3, varint), type: INT=2
    // (field 20, varint: tag (20 << 3) | 0 = 160 = 0xA0 0x01)}.
    let a = attr_i("axis", 2).encode_to_vec();
    assert_eq!(a, [0x0A, 4, b'a', b'x', b'i', b's', 0x18, 2, 0xA0, 0x01, 2]);
    // f: field 2, fixed32 (tag 0x15), 0.5 = 0x3F000000 little-endian; type FLOAT = 1.
    let f = attr_f("alpha", 0.5).encode_to_vec();
    assert_eq!(
        f,
        [0x0A, 5, b'a', b'l', b'p', b'h', b'a', 0x15, 0, 0, 0, 0x3F, 0xA0, 0x01, 1]
    );
    // ints: field 8, packed (tag 0x42), length 2, values 1 and 3; type INTS = 7.
    let i = attr_ints("pads", &[1, 3]).encode_to_vec();
    assert_eq!(
        i,
        [0x0A, 4, b'p', b'a', b'd', b's', 0x42, 2, 1, 3, 0xA0, 0x01, 7]
    );
    // TensorProto: dims (field 1, packed), data_type (field 2), name (8), raw_data (9).
    let t = TensorProto {
        dims: vec![2],
        data_type: FLOAT,
        name: "w".into(),
        raw_data: [1.0f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    }
    .encode_to_vec();
    assert_eq!(
        t,
        [0x0A, 1, 2, 0x10, 1, 0x42, 1, b'w', 0x4A, 8, 0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0]
    );
    // A dimension of size 0 is still written (a oneof member always is).
    let d = Dimension {
        value: Some(DimValue::DimValue(0)),
    }
    .encode_to_vec();
    assert_eq!(d, [0x08, 0]);
}

#[test]
fn open_axes_are_symbolic() {
    let mut g = Graph::with_seed(vec![Dim::NONE, Dim::known(4)], 0);
    g.add(Dense(2)).unwrap();
    let m = to_onnx(&g).unwrap();
    let graph = m.proto.graph.unwrap();
    let t = graph.input[0].r#type.clone().unwrap().tensor_type.unwrap();
    let d: Vec<_> = t
        .shape
        .unwrap()
        .dim
        .into_iter()
        .map(|d| d.value.unwrap())
        .collect();
    assert_eq!(
        d,
        [
            DimValue::DimParam("N".into()),
            DimValue::DimParam("input_d1".into()),
            DimValue::DimValue(4)
        ]
    );
}

#[test]
fn every_layer_that_cannot_be_exported_is_listed_at_once() {
    let mut g = Graph::with_seed(&[5, 3], 0);
    g.name = "bad".into();
    g.add(LSTM(4).return_sequences(true).return_state(false))
        .unwrap();
    g.add(LayerConfig::from(GRU(3).return_sequences(true)).named("g1"))
        .unwrap();
    g.add(LayerConfig::from(SimpleRNN(2)).named("s1")).unwrap();
    // Masked return_sequences is the unsupported case; build one with a mask.
    let mut h = Graph::with_seed(&[6], 0);
    h.name = "masked".into();
    h.add(Embedding(10, 4).mask_zero(true)).unwrap();
    h.add(LayerConfig::from(LSTM(3).return_sequences(true)).named("seq1"))
        .unwrap();
    h.add(LayerConfig::from(GRU(3).return_sequences(true)).named("seq2"))
        .unwrap();
    h.add(LSTM(2)).unwrap();
    let e = to_onnx(&h)
        .err()
        .expect("masked return_sequences is refused")
        .to_string();
    assert!(e.contains("2 layers cannot"), "{e}");
    assert!(
        e.contains("'seq1' (LSTM)") && e.contains("'seq2' (GRU)"),
        "{e}"
    );
    assert!(e.contains("return_sequences"), "{e}");
    // Without a mask the same layers export.
    to_onnx(&g).unwrap();
}
