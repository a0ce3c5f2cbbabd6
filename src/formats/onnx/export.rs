//! A built graph to ONNX nodes: one walk over the layers in graph order (the order
//! `Graph::run` uses), one function per layer kind. Every tensor of the nabla graph
//! becomes an ONNX value; a tensor's mask (Keras' `[N, T]`, from `Embedding(mask_zero)`)
//! travels beside it as an int64 value, as `Graph::run` carries it. A layer that cannot
//! be exported records its problem and the walk goes on, so one error lists them all.

use super::builder::{attr_f, attr_i, attr_ints, attr_s, cast_to_f32, cast_to_i64, Builder};
use super::recurrent;
use crate::nn::layers::dims::Dim;
use crate::nn::layers::{
    Activation, ActivationConfig, BatchNormalizationConfig, BidirectionalConfig, ConcatenateConfig,
    Conv1DConfig, Conv2DConfig, Conv2DTransposeConfig, DenseConfig, DropoutConfig, EmbeddingConfig,
    FlattenConfig, GRUConfig, GlobalPool1DConfig, GlobalPoolConfig, InterpolationMode, LSTMConfig,
    LayerConfig, LeakyReLUConfig, MergeConfig, MergeKind, Padding1D, PaddingMode, Param,
    Pool1dConfig, Pool2dConfig, PoolKind, ReLUConfig, ReshapeConfig, SimpleRNNConfig,
    UpSampling2DConfig, ZeroPadding2DConfig,
};
use crate::nn::{Graph, ModelConfig};
use crate::ops::Padding2d;
use std::collections::HashMap;

/// An ONNX value standing for a nabla tensor, and the name of its mask (int64 `[N, T]`,
/// 1 = real step), if it has one.
#[derive(Clone, Debug)]
pub(super) struct Value {
    pub name: String,
    pub mask: Option<String>,
}

impl Value {
    pub fn plain(name: String) -> Value {
        Value { name, mask: None }
    }
}

/// Why a layer cannot be exported (one line of the error).
pub(super) type Problem = String;

/// One layer call as the exporters see it.
pub(super) struct Call<'a> {
    /// The layer's name in the ONNX value names (nested models prefixed).
    pub name: String,
    pub params: &'a [Param],
    /// Prefix of the weight cache keys (a nested model's name), so a shared layer's
    /// weights are written once.
    pub key: &'a str,
    pub inputs: &'a [Value],
    pub in_shapes: Vec<Vec<Dim>>,
    pub out_shapes: Vec<Vec<Dim>>,
}

impl Call<'_> {
    /// The weight whose name ends in `/what` (`kernel`, `bias`, `gamma`, ...).
    pub fn param(&self, what: &str) -> Option<&Param> {
        let suffix = format!("/{what}");
        self.params.iter().find(|p| p.name.ends_with(&suffix))
    }

    fn x(&self) -> &str {
        &self.inputs[0].name
    }

    fn mask(&self) -> Option<String> {
        self.inputs[0].mask.clone()
    }
}

/// The exporter's state: the graph being built, the weights written so far (by cache
/// key, so a shared layer's weights are written once), and the problems found.
#[derive(Default)]
pub(super) struct Exporter {
    pub b: Builder,
    weights: HashMap<String, String>,
    pub problems: Vec<String>,
}

/// A weight's values and shape.
pub(super) fn values_of(p: &Param) -> (Vec<f32>, Vec<usize>) {
    let t = p.var.value();
    (t.to_f32_vec(), t.shape().to_vec())
}

impl Exporter {
    /// An initializer made once per `key` (a weight, possibly re-laid out).
    pub fn cached(&mut self, key: String, make: impl FnOnce(&mut Builder) -> String) -> String {
        if let Some(name) = self.weights.get(&key) {
            return name.clone();
        }
        let name = make(&mut self.b);
        self.weights.insert(key, name.clone());
        name
    }

    /// A weight as it is (same shape, same order).
    pub fn weight(&mut self, call: &Call, p: &Param) -> String {
        let key = format!("{}{}", call.key, p.name);
        self.cached(key, |b| {
            let (v, shape) = values_of(p);
            b.f32s(&p.name, &shape, &v)
        })
    }

    /// Emits `g`'s layers reading `inputs` (one value per model input); returns the
    /// values of its outputs. `prefix` names a nested model's values.
    pub fn emit_graph(&mut self, g: &Graph, inputs: Vec<Value>, prefix: &str) -> Vec<Value> {
        let mut values: HashMap<String, Value> = g
            .inputs()
            .iter()
            .map(|i| i.name.clone())
            .zip(inputs)
            .collect();
        for (i, layer) in g.layers().iter().enumerate() {
            let (cfg, params) = match layer.as_shared() {
                Some(s) => (s.layer_config(), s.layer_params()),
                None => (layer.config(), layer.params()),
            };
            let ins: Vec<Value> = g
                .layer_inbound_names(i)
                .iter()
                .map(|n| values[*n].clone())
                .collect();
            let call = Call {
                name: format!("{prefix}{}", layer.name()),
                params: &params,
                key: prefix,
                inputs: &ins,
                in_shapes: g.layer_input_shapes(i).iter().map(|s| s.to_vec()).collect(),
                out_shapes: g
                    .layer_output_shapes_all(i)
                    .iter()
                    .map(|s| s.to_vec())
                    .collect(),
            };
            let n_out = call.out_shapes.len();
            let outs = match self.layer(&cfg, &call) {
                Ok(outs) if outs.len() == n_out => outs,
                Ok(_) => {
                    self.problems.push(format!(
                        "'{}' ({}): its {n_out} outputs (return_state) are not exported",
                        call.name,
                        cfg.class_name()
                    ));
                    vec![Value::plain(ins[0].name.clone()); n_out]
                }
                Err(problem) => {
                    self.problems.push(format!(
                        "'{}' ({}): {problem}",
                        call.name,
                        cfg.class_name()
                    ));
                    // The input stands in for the output (mask and all), so the walk
                    // goes on and finds the rest.
                    vec![ins[0].clone(); n_out]
                }
            };
            for (t, v) in g.layer_outputs(i).zip(outs) {
                values.insert(g.tensor_name(t).to_string(), v);
            }
        }
        g.output_ids()
            .iter()
            .map(|&t| values[g.tensor_name(t)].clone())
            .collect()
    }

    /// One layer: its nodes, and the value (with mask) of each output.
    fn layer(&mut self, cfg: &LayerConfig, call: &Call) -> Result<Vec<Value>, Problem> {
        let one = |v: Value| Ok(vec![v]);
        if let Some(c) = cfg.downcast_ref::<DenseConfig>() {
            return one(self.dense(c, call)?);
        }
        if let Some(c) = cfg.downcast_ref::<Conv2DConfig>() {
            return one(Value::plain(self.conv2d(c, call)?));
        }
        if let Some(c) = cfg.downcast_ref::<Conv1DConfig>() {
            return one(Value::plain(self.conv1d(c, call)?));
        }
        if let Some(c) = cfg.downcast_ref::<Conv2DTransposeConfig>() {
            return one(Value::plain(self.conv2d_transpose(c, call)?));
        }
        if let Some(c) = cfg.downcast_ref::<Pool2dConfig>() {
            return one(Value::plain(self.pool2d(c, call)?));
        }
        if let Some(c) = cfg.downcast_ref::<Pool1dConfig>() {
            return one(Value::plain(self.pool1d(c, call)?));
        }
        if let Some(c) = cfg.downcast_ref::<GlobalPoolConfig>() {
            let op = match c.kind {
                PoolKind::Max => "GlobalMaxPool",
                PoolKind::Average => "GlobalAveragePool",
            };
            let pooled = self.b.op(op, &[call.x()], &call.name, vec![]);
            let flat = self
                .b
                .op("Flatten", &[&pooled], &call.name, vec![attr_i("axis", 1)]);
            return one(Value::plain(flat));
        }
        if let Some(c) = cfg.downcast_ref::<GlobalPool1DConfig>() {
            return one(Value::plain(self.global_pool1d(c, call)));
        }
        if cfg.is::<FlattenConfig>() {
            let y = self
                .b
                .op("Flatten", &[call.x()], &call.name, vec![attr_i("axis", 1)]);
            return one(Value::plain(y));
        }
        if let Some(c) = cfg.downcast_ref::<ReshapeConfig>() {
            // 0 copies the batch axis; the target may hold one -1 of its own.
            let shape: Vec<i64> = std::iter::once(0)
                .chain(c.target_shape.iter().copied())
                .collect();
            let s = self.b.i64_vec(&format!("{}/shape", call.name), &shape);
            let y = self.b.op("Reshape", &[call.x(), &s], &call.name, vec![]);
            return one(Value::plain(y));
        }
        if cfg.is::<DropoutConfig>() {
            // Inference: the identity (no node), the mask passed on as Keras does.
            return one(call.inputs[0].clone());
        }
        if let Some(c) = cfg.downcast_ref::<BatchNormalizationConfig>() {
            return one(Value {
                name: self.batch_norm(c, call)?,
                mask: call.mask(),
            });
        }
        if let Some(c) = cfg.downcast_ref::<ActivationConfig>() {
            let y = self.activation(call.x(), c.activation, &call.name);
            return one(Value {
                name: y,
                mask: call.mask(),
            });
        }
        if let Some(c) = cfg.downcast_ref::<ReLUConfig>() {
            return one(Value {
                name: self.relu(c, call),
                mask: call.mask(),
            });
        }
        if let Some(c) = cfg.downcast_ref::<LeakyReLUConfig>() {
            let y = self.b.op(
                "LeakyRelu",
                &[call.x()],
                &call.name,
                vec![attr_f("alpha", c.alpha)],
            );
            return one(Value {
                name: y,
                mask: call.mask(),
            });
        }
        if let Some(c) = cfg.downcast_ref::<MergeConfig>() {
            return one(self.merge(c.kind, call)?);
        }
        if let Some(c) = cfg.downcast_ref::<ConcatenateConfig>() {
            let rank = call.in_shapes[0].len() as i64 + 1;
            let axis = if c.axis < 0 { c.axis + rank } else { c.axis };
            let ins: Vec<&str> = call.inputs.iter().map(|v| v.name.as_str()).collect();
            let y = self
                .b
                .op("Concat", &ins, &call.name, vec![attr_i("axis", axis)]);
            return one(Value::plain(y));
        }
        if let Some(c) = cfg.downcast_ref::<EmbeddingConfig>() {
            return one(self.embedding(c, call)?);
        }
        if let Some(c) = cfg.downcast_ref::<UpSampling2DConfig>() {
            return one(Value::plain(self.upsampling(c, call)));
        }
        if let Some(c) = cfg.downcast_ref::<ZeroPadding2DConfig>() {
            let p = &c.padding;
            let pads = [0, 0, p.top, p.left, 0, 0, p.bottom, p.right].map(|v| v as i64);
            let pads = self.b.i64_vec(&format!("{}/pads", call.name), &pads);
            let y = self.b.op(
                "Pad",
                &[call.x(), &pads],
                &call.name,
                vec![attr_s("mode", "constant")],
            );
            return one(Value::plain(y));
        }
        if let Some(c) = cfg.downcast_ref::<LSTMConfig>() {
            return recurrent::lstm(self, c, call);
        }
        if let Some(c) = cfg.downcast_ref::<GRUConfig>() {
            return recurrent::gru(self, c, call);
        }
        if let Some(c) = cfg.downcast_ref::<SimpleRNNConfig>() {
            return recurrent::simple_rnn(self, c, call);
        }
        if let Some(c) = cfg.downcast_ref::<BidirectionalConfig>() {
            return recurrent::bidirectional(self, c, call);
        }
        if let Some(c) = cfg.downcast_ref::<ModelConfig>() {
            return self.nested(c, call);
        }
        Err(format!(
            "no ONNX export for layer class {} (exported: {})",
            cfg.class_name(),
            super::EXPORTED_CLASSES.join(", ")
        ))
    }

    /// A nested model: rebuilt from its config with its weights, its layers emitted
    /// inline under its name.
    fn nested(&mut self, cfg: &ModelConfig, call: &Call) -> Result<Vec<Value>, Problem> {
        let mut g = Graph::from_config(cfg, 0).map_err(|e| e.to_string())?;
        let weights: Vec<_> = call.params.iter().map(|p| p.var.value()).collect();
        g.set_weights(&weights).map_err(|e| e.to_string())?;
        let prefix = format!("{}/", call.name);
        Ok(self.emit_graph(&g, call.inputs.to_vec(), &prefix))
    }

    /// `act(x)`, or `x` itself for `linear`.
    pub fn activation(&mut self, x: &str, act: Activation, base: &str) -> String {
        let b = &mut self.b;
        match act {
            Activation::Linear => x.to_string(),
            Activation::Relu => b.op("Relu", &[x], base, vec![]),
            Activation::Sigmoid => b.op("Sigmoid", &[x], base, vec![]),
            Activation::Tanh => b.op("Tanh", &[x], base, vec![]),
            // nabla's softmax is over the last axis, whatever the rank.
            Activation::Softmax => b.op("Softmax", &[x], base, vec![attr_i("axis", -1)]),
            Activation::LeakyRelu => b.op("LeakyRelu", &[x], base, vec![attr_f("alpha", 0.2)]),
            Activation::Elu => b.op("Elu", &[x], base, vec![attr_f("alpha", 1.0)]),
            Activation::Step => {
                // 1 where x > 0, else 0.
                let zero = b.scalar(&format!("{base}/zero"), 0.0);
                let gt = b.op("Greater", &[x, &zero], base, vec![]);
                b.op("Cast", &[&gt], base, vec![cast_to_f32()])
            }
            Activation::Gelu => {
                // The exact form x * (1 + erf(x / sqrt 2)) / 2 (Gelu is an op from
                // opset 20 only).
                let r = b.scalar(
                    &format!("{base}/inv_sqrt2"),
                    std::f32::consts::FRAC_1_SQRT_2,
                );
                let half = b.scalar(&format!("{base}/half"), 0.5);
                let one = b.scalar(&format!("{base}/one"), 1.0);
                let xs = b.op("Mul", &[x, &r], base, vec![]);
                let e = b.op("Erf", &[&xs], base, vec![]);
                let e1 = b.op("Add", &[&e, &one], base, vec![]);
                let xe = b.op("Mul", &[x, &e1], base, vec![]);
                b.op("Mul", &[&xe, &half], base, vec![])
            }
            Activation::Swish => {
                let s = b.op("Sigmoid", &[x], base, vec![]);
                b.op("Mul", &[x, &s], base, vec![])
            }
        }
    }

    /// `x @ kernel + bias` on the last axis, then the activation; the mask passes.
    fn dense(&mut self, c: &DenseConfig, call: &Call) -> Result<Value, Problem> {
        let k = call.param("kernel").ok_or("no kernel weight")?;
        let k = self.weight(call, k);
        let mut y = self.b.op("MatMul", &[call.x(), &k], &call.name, vec![]);
        if let Some(bias) = call.param("bias") {
            let bias = self.weight(call, bias);
            y = self.b.op("Add", &[&y, &bias], &call.name, vec![]);
        }
        Ok(Value {
            name: self.activation(&y, c.activation, &call.name),
            mask: call.mask(),
        })
    }

    /// A conv's inputs `ins` (x, W) with the layer's bias appended if it has one (ONNX's
    /// optional third input B).
    fn with_bias(&mut self, call: &Call, mut ins: Vec<String>) -> Vec<String> {
        if let Some(bias) = call.param("bias") {
            ins.push(self.weight(call, bias));
        }
        ins
    }

    /// Pads (begin, end) of each spatial axis for nabla's `"same"`: TensorFlow's rule
    /// from the input's size; `None` where an axis is unknown until a batch arrives.
    fn same_pads(
        shape: &[Dim],
        kernel: &[usize],
        stride: &[usize],
        dilation: &[usize],
    ) -> Option<Vec<i64>> {
        let mut begin = Vec::new();
        let mut end = Vec::new();
        for (k, d) in shape.iter().enumerate() {
            let (b, e) = Padding2d::same_1d(d.get()?, kernel[k], stride[k], dilation[k]);
            begin.push(b as i64);
            end.push(e as i64);
        }
        begin.extend(end);
        Some(begin)
    }

    /// The padding attribute: explicit pads, or TensorFlow's "same" (`SAME_UPPER`: the
    /// odd cell after) where the size is unknown.
    fn pad_attr(pads: Option<Vec<i64>>) -> crate::formats::onnx::proto::AttributeProto {
        match pads {
            Some(p) => attr_ints("pads", &p),
            None => attr_s("auto_pad", "SAME_UPPER"),
        }
    }

    fn conv2d(&mut self, c: &Conv2DConfig, call: &Call) -> Result<String, Problem> {
        let hw = &call.in_shapes[0][1..];
        let kernel = [c.kernel_size.0, c.kernel_size.1];
        let strides = [c.strides.0, c.strides.1];
        let dil = [c.dilation_rate.0, c.dilation_rate.1];
        let pads = match (c.explicit_padding, c.padding) {
            (Some(p), _) => Some(vec![p as i64; 4]),
            (None, PaddingMode::Valid) => Some(vec![0; 4]),
            (None, PaddingMode::Same) => Self::same_pads(hw, &kernel, &strides, &dil),
        };
        let k = call.param("kernel").ok_or("no kernel weight")?;
        // nabla's kernel is ONNX's W: [M, C/group, kH, kW].
        let w = self.weight(call, k);
        let ins = self.with_bias(call, vec![call.x().to_string(), w]);
        let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        let attrs = vec![
            attr_ints("kernel_shape", &kernel.map(|v| v as i64)),
            attr_ints("strides", &strides.map(|v| v as i64)),
            attr_ints("dilations", &dil.map(|v| v as i64)),
            attr_i("group", c.groups as i64),
            Self::pad_attr(pads),
        ];
        let y = self.b.op("Conv", &ins, &call.name, attrs);
        Ok(self.activation(&y, c.activation, &call.name))
    }

    /// Conv1D reads `[N, T, C]` (channels last) with a `[K, C, F]` kernel: transposed to
    /// `[N, C, T]` and `[F, C, K]` around an ONNX Conv.
    fn conv1d(&mut self, c: &Conv1DConfig, call: &Call) -> Result<String, Problem> {
        let k = call.param("kernel").ok_or("no kernel weight")?;
        let (kv, ks) = values_of(k);
        let (kk, cin, f) = (ks[0], ks[1], ks[2]);
        let key = format!("{}{}/FCK", call.key, k.name);
        let w = self.cached(key, |b| {
            let mut w = vec![0.0; kv.len()];
            for t in 0..kk {
                for ci in 0..cin {
                    for fo in 0..f {
                        w[(fo * cin + ci) * kk + t] = kv[(t * cin + ci) * f + fo];
                    }
                }
            }
            b.f32s(&format!("{}/FCK", k.name), &[f, cin, kk], &w)
        });
        let d = c.dilation_rate;
        let pads = match c.padding {
            Padding1D::Valid => Some(vec![0, 0]),
            Padding1D::Causal => Some(vec![((kk - 1) * d) as i64, 0]),
            Padding1D::Same => Self::same_pads(&call.in_shapes[0][..1], &[kk], &[c.strides], &[d]),
        };
        let xt = self.b.op(
            "Transpose",
            &[call.x()],
            &call.name,
            vec![attr_ints("perm", &[0, 2, 1])],
        );
        let ins = self.with_bias(call, vec![xt, w]);
        let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        let attrs = vec![
            attr_ints("kernel_shape", &[kk as i64]),
            attr_ints("strides", &[c.strides as i64]),
            attr_ints("dilations", &[d as i64]),
            Self::pad_attr(pads),
        ];
        let y = self.b.op("Conv", &ins, &call.name, attrs);
        let y = self.activation(&y, c.activation, &call.name);
        Ok(self.b.op(
            "Transpose",
            &[&y],
            &call.name,
            vec![attr_ints("perm", &[0, 2, 1])],
        ))
    }

    /// Keras' sizes: "valid" `H * s + max(K - s, 0)`, "same" `H * s` (the full
    /// transposed output cropped as a "same" conv with this kernel would pad, odd cell
    /// after). Where `K < s` the cells past the kernel's reach get `output_padding`.
    fn conv2d_transpose(
        &mut self,
        c: &Conv2DTransposeConfig,
        call: &Call,
    ) -> Result<String, Problem> {
        let kernel = [c.kernel_size.0, c.kernel_size.1];
        let strides = [c.strides.0, c.strides.1];
        let mut begin = Vec::new();
        let mut end = Vec::new();
        let mut out_pad = Vec::new();
        for a in 0..2 {
            let (k, s) = (kernel[a], strides[a]);
            out_pad.push(s.saturating_sub(k) as i64);
            let crop = match c.padding {
                PaddingMode::Valid => 0,
                PaddingMode::Same => k.saturating_sub(s),
            };
            begin.push((crop / 2) as i64);
            end.push((crop - crop / 2) as i64);
        }
        begin.extend(end);
        let k = call.param("kernel").ok_or("no kernel weight")?;
        // nabla's kernel [C, filters, kH, kW] is ONNX's W [C, M/group, kH, kW].
        let w = self.weight(call, k);
        let ins = self.with_bias(call, vec![call.x().to_string(), w]);
        let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        let attrs = vec![
            attr_ints("kernel_shape", &kernel.map(|v| v as i64)),
            attr_ints("strides", &strides.map(|v| v as i64)),
            attr_ints("pads", &begin),
            attr_ints("output_padding", &out_pad),
        ];
        let y = self.b.op("ConvTranspose", &ins, &call.name, attrs);
        Ok(self.activation(&y, c.activation, &call.name))
    }

    /// Max or average pooling; padded cells never win a max and are not counted in a
    /// mean (Keras), which is ONNX's `count_include_pad = 0`.
    fn pool(
        &mut self,
        x: &str,
        kind: PoolKind,
        kernel: &[usize],
        strides: &[usize],
        pads: Option<Vec<i64>>,
        base: &str,
    ) -> String {
        let op = match kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Average => "AveragePool",
        };
        let attrs = vec![
            attr_ints(
                "kernel_shape",
                &kernel.iter().map(|&v| v as i64).collect::<Vec<_>>(),
            ),
            attr_ints(
                "strides",
                &strides.iter().map(|&v| v as i64).collect::<Vec<_>>(),
            ),
            Self::pad_attr(pads),
        ];
        self.b.op(op, &[x], base, attrs)
    }

    fn pool2d(&mut self, c: &Pool2dConfig, call: &Call) -> Result<String, Problem> {
        let kernel = [c.pool_size.0, c.pool_size.1];
        let strides = c.strides.unwrap_or(kernel);
        let pads = match c.padding {
            PaddingMode::Valid => Some(vec![0; 4]),
            PaddingMode::Same => {
                Self::same_pads(&call.in_shapes[0][1..], &kernel, &strides, &[1, 1])
            }
        };
        Ok(self.pool(call.x(), c.kind, &kernel, &strides, pads, &call.name))
    }

    /// Pooling over the steps of `[N, T, C]`: transposed to `[N, C, T]` and back.
    fn pool1d(&mut self, c: &Pool1dConfig, call: &Call) -> Result<String, Problem> {
        let k = c.pool_size;
        let s = c.strides.unwrap_or(k);
        let pads = match c.padding {
            PaddingMode::Valid => Some(vec![0, 0]),
            PaddingMode::Same => Self::same_pads(&call.in_shapes[0][..1], &[k], &[s], &[1]),
        };
        let perm = vec![attr_ints("perm", &[0, 2, 1])];
        let xt = self
            .b
            .op("Transpose", &[call.x()], &call.name, perm.clone());
        let y = self.pool(&xt, c.kind, &[k], &[s], pads, &call.name);
        Ok(self.b.op("Transpose", &[&y], &call.name, perm))
    }

    /// Over the steps of `[N, T, F]`. With a mask the average is over the real steps
    /// only, zeros where there is none (nabla's rule); the max ignores masks (Keras 3).
    fn global_pool1d(&mut self, c: &GlobalPool1DConfig, call: &Call) -> String {
        let axes = vec![attr_ints("axes", &[1]), attr_i("keepdims", 0)];
        let b = &mut self.b;
        let base = &call.name;
        match (c.kind, call.mask()) {
            (PoolKind::Max, _) => b.op("ReduceMax", &[call.x()], base, axes),
            (PoolKind::Average, None) => b.op("ReduceMean", &[call.x()], base, axes),
            (PoolKind::Average, Some(m)) => {
                let mf = b.op("Cast", &[&m], base, vec![cast_to_f32()]);
                let ax2 = b.i64_vec(&format!("{base}/axis2"), &[2]);
                let m3 = b.op("Unsqueeze", &[&mf, &ax2], base, vec![]);
                let xm = b.op("Mul", &[call.x(), &m3], base, vec![]);
                let ax1 = b.i64_vec(&format!("{base}/axis1"), &[1]);
                let sum = b.op("ReduceSum", &[&xm, &ax1], base, vec![attr_i("keepdims", 0)]);
                let count = b.op("ReduceSum", &[&mf, &ax1], base, vec![attr_i("keepdims", 1)]);
                let one = b.scalar(&format!("{base}/one"), 1.0);
                let count = b.op("Max", &[&count, &one], base, vec![]);
                b.op("Div", &[&sum, &count], base, vec![])
            }
        }
    }

    /// Inference form: the moving statistics and epsilon, over axis 1 (nabla's channel
    /// axis), which is ONNX's.
    fn batch_norm(&mut self, c: &BatchNormalizationConfig, call: &Call) -> Result<String, Problem> {
        let mut ins = vec![call.x().to_string()];
        for what in ["gamma", "beta", "moving_mean", "moving_variance"] {
            let p = call
                .param(what)
                .ok_or_else(|| format!("no {what} weight"))?;
            ins.push(self.weight(call, p));
        }
        let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        Ok(self.b.op(
            "BatchNormalization",
            &ins,
            &call.name,
            vec![attr_f("epsilon", c.epsilon)],
        ))
    }

    /// Keras' `ReLU(max_value, negative_slope, threshold)`: `max_value` where
    /// `x >= max_value`, `x` where `threshold <= x < max_value`, else
    /// `negative_slope * (x - threshold)`.
    fn relu(&mut self, c: &ReLUConfig, call: &Call) -> String {
        let b = &mut self.b;
        let base = &call.name;
        let x = call.x();
        if c.negative_slope == 0.0 && c.threshold == 0.0 {
            let y = b.op("Relu", &[x], base, vec![]);
            return match c.max_value {
                None => y,
                Some(m) => {
                    let m = b.scalar(&format!("{base}/max_value"), m);
                    b.op("Min", &[&y, &m], base, vec![])
                }
            };
        }
        let t = b.scalar(&format!("{base}/threshold"), c.threshold);
        let slope = b.scalar(&format!("{base}/negative_slope"), c.negative_slope);
        let below = b.op("Less", &[x, &t], base, vec![]);
        let xt = b.op("Sub", &[x, &t], base, vec![]);
        let low = b.op("Mul", &[&xt, &slope], base, vec![]);
        let high = match c.max_value {
            None => x.to_string(),
            Some(m) => {
                let m = b.scalar(&format!("{base}/max_value"), m);
                b.op("Min", &[x, &m], base, vec![])
            }
        };
        b.op("Where", &[&below, &low, &high], base, vec![])
    }

    /// The arithmetic merges (inputs broadcast, as `Multiply`'s channel rescale needs);
    /// the output mask is the OR of the inputs' when every input has one (Keras).
    fn merge(&mut self, kind: MergeKind, call: &Call) -> Result<Value, Problem> {
        let ins: Vec<&str> = call.inputs.iter().map(|v| v.name.as_str()).collect();
        let b = &mut self.b;
        let base = &call.name;
        let y = match kind {
            MergeKind::Add => b.op("Sum", &ins, base, vec![]),
            MergeKind::Subtract => b.op("Sub", &ins, base, vec![]),
            MergeKind::Multiply => b.op("Mul", &ins[..2], base, vec![]),
            MergeKind::Average => b.op("Mean", &ins, base, vec![]),
            MergeKind::Maximum => b.op("Max", &ins, base, vec![]),
            MergeKind::Minimum => b.op("Min", &ins, base, vec![]),
            MergeKind::Concatenate(axis) => {
                b.op("Concat", &ins, base, vec![attr_i("axis", axis as i64 + 1)])
            }
        };
        // Mul takes two inputs: fold the rest in.
        let y = match kind {
            MergeKind::Multiply => ins[2..]
                .iter()
                .fold(y, |acc, x| b.op("Mul", &[&acc, x], base, vec![])),
            _ => y,
        };
        let masks: Option<Vec<&str>> = call.inputs.iter().map(|v| v.mask.as_deref()).collect();
        let mask = match (kind, masks) {
            (MergeKind::Concatenate(_), _) | (_, None) => None,
            (_, Some(ms)) if ms.len() == 1 => Some(ms[0].to_string()),
            (_, Some(ms)) => Some(b.op("Max", &ms, &format!("{base}/mask"), vec![])),
        };
        Ok(Value { name: y, mask })
    }

    /// Ids (float in nabla's inputs) to rows of the table; `mask_zero` makes the mask
    /// `ids != 0`.
    fn embedding(&mut self, c: &EmbeddingConfig, call: &Call) -> Result<Value, Problem> {
        let table = call.param("embeddings").ok_or("no embeddings weight")?;
        let table = self.weight(call, table);
        let b = &mut self.b;
        let base = &call.name;
        let ids = b.op("Cast", &[call.x()], base, vec![cast_to_i64()]);
        let y = b.op("Gather", &[&table, &ids], base, vec![attr_i("axis", 0)]);
        let mask = c.mask_zero.then(|| {
            let zero = b.i64s(&format!("{base}/zero"), &[], &[0]);
            let eq = b.op("Equal", &[&ids, &zero], base, vec![]);
            let ne = b.op("Not", &[&eq], base, vec![]);
            b.op("Cast", &[&ne], &format!("{base}/mask"), vec![cast_to_i64()])
        });
        Ok(Value { name: y, mask })
    }

    /// Nearest: `y[o] = x[o / s]` (ONNX's asymmetric coordinates, floor); bilinear:
    /// half-pixel centres (Keras 3, TensorFlow's `half_pixel_centers`).
    fn upsampling(&mut self, c: &UpSampling2DConfig, call: &Call) -> String {
        let base = &call.name;
        let scales = [1.0, 1.0, c.size.0 as f32, c.size.1 as f32];
        let scales = self.b.f32s(&format!("{base}/scales"), &[4], &scales);
        let attrs = match c.interpolation {
            InterpolationMode::Nearest => vec![
                attr_s("mode", "nearest"),
                attr_s("coordinate_transformation_mode", "asymmetric"),
                attr_s("nearest_mode", "floor"),
            ],
            InterpolationMode::Bilinear => vec![
                attr_s("mode", "linear"),
                attr_s("coordinate_transformation_mode", "half_pixel"),
            ],
        };
        self.b.op("Resize", &[call.x(), "", &scales], base, attrs)
    }
}
