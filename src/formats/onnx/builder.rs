//! The ONNX graph under construction: nodes in order, weights as initializers, names
//! made unique, and the set of operator types used (for the export's report).

use super::proto::{
    AttributeProto, NodeProto, TensorProto, ATTR_FLOAT, ATTR_INT, ATTR_INTS, ATTR_STRING, FLOAT,
    INT32, INT64,
};
use std::collections::{BTreeSet, HashSet};

/// Nodes and initializers of one graph, with unique value names.
#[derive(Default)]
pub struct Builder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    used: HashSet<String>,
    /// Every operator type a node uses, sorted.
    pub op_types: BTreeSet<String>,
}

impl Builder {
    /// Reserves `name` (a graph input's or output's) so no value takes it.
    pub fn reserve(&mut self, name: &str) {
        self.used.insert(name.to_string());
    }

    /// A value name not used yet: `base`, or `base_2`, `base_3`, ...
    pub fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 2;
        while self.used.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Adds a node with one output named after `base`; returns that output's name.
    pub fn op(
        &mut self,
        op: &str,
        inputs: &[&str],
        base: &str,
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.op_n(op, inputs, base, 1, attrs).remove(0)
    }

    /// Adds a node with `n` outputs named after `base`; returns their names.
    pub fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        base: &str,
        n: usize,
        attrs: Vec<AttributeProto>,
    ) -> Vec<String> {
        let outputs: Vec<String> = (0..n)
            .map(|k| match k {
                0 => self.fresh(&format!("{base}/{op}")),
                _ => self.fresh(&format!("{base}/{op}:{k}")),
            })
            .collect();
        self.push(op, inputs, outputs.clone(), attrs);
        outputs
    }

    /// Adds a node writing exactly the value names `outputs` (already reserved).
    pub fn push(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) {
        let name = self.fresh(&format!("{}/node", outputs[0]));
        self.op_types.insert(op.to_string());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs,
            name,
            op_type: op.to_string(),
            attribute: attrs,
        });
    }

    /// A float initializer of shape `dims` named after `base`.
    pub fn f32s(&mut self, base: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(base, dims, FLOAT, raw)
    }

    /// An int64 initializer (shapes, axes, pads) of shape `dims`.
    pub fn i64s(&mut self, base: &str, dims: &[usize], data: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(base, dims, INT64, raw)
    }

    /// A one-dimensional int64 initializer.
    pub fn i64_vec(&mut self, base: &str, data: &[i64]) -> String {
        self.i64s(base, &[data.len()], data)
    }

    /// A float scalar initializer.
    pub fn scalar(&mut self, base: &str, v: f32) -> String {
        self.f32s(base, &[], &[v])
    }

    fn tensor(&mut self, base: &str, dims: &[usize], data_type: i32, raw_data: Vec<u8>) -> String {
        let name = self.fresh(base);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.clone(),
            raw_data,
        });
        name
    }
}

/// An int attribute.
pub fn attr_i(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: ATTR_INT,
        ..Default::default()
    }
}

/// A float attribute.
pub fn attr_f(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: ATTR_FLOAT,
        ..Default::default()
    }
}

/// An ints attribute.
pub fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: ints.to_vec(),
        r#type: ATTR_INTS,
        ..Default::default()
    }
}

/// A string attribute.
pub fn attr_s(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: s.as_bytes().to_vec(),
        r#type: ATTR_STRING,
        ..Default::default()
    }
}

/// The `to` attribute of `Cast` to int32 (an RNN's `sequence_lens`).
pub fn cast_to_i32() -> AttributeProto {
    attr_i("to", INT32 as i64)
}

/// The `to` attribute of `Cast` to int64 (ids, masks).
pub fn cast_to_i64() -> AttributeProto {
    attr_i("to", INT64 as i64)
}

/// The `to` attribute of `Cast` to float.
pub fn cast_to_f32() -> AttributeProto {
    attr_i("to", FLOAT as i64)
}
