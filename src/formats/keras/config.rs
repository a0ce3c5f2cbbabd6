//! A Keras 3 `config.json` (Sequential or Functional) as a nabla `ModelConfig`, plus
//! what loading the weights needs to know about each layer (`LayerPlan`).
//!
//! Keras' images are channels-last (`[H, W, C]`), nabla's channels-first (`[C, H, W]`):
//! an image input becomes `[C, H, W]`, a `Concatenate` or `BatchNormalization` over the
//! channels acts on nabla's channel axis, and the one place where the order of the
//! values themselves differs, the flatten of a feature map, is undone in the weights of
//! the `Dense` that reads it (`LayerPlan::row_perm`), so the model computes what Keras
//! computes. Every layer nabla cannot build is collected, and the error lists them all.
//!
//! A layer Keras calls several times (a shared layer, `inbound_nodes` with several
//! entries) becomes nabla's first call plus `Shared` calls named `LAYER:K` (Keras' node
//! `K`); a Functional or Sequential model used as a layer becomes a nested model
//! (class `Model`), converted by the same rules. Keras 3 writes the mask of an
//! `Embedding(mask_zero=True)` as a `NotEqual(ids, 0)` node passed to the layers that
//! take it; nabla carries that mask inside its layers, so such a node is checked (the
//! layer's input must carry the same mask in nabla) and not built.

use crate::nn::layers::dims::Dim;
use crate::nn::model_config::{InputConfig, ModelConfig, NodeConfig};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// What loading a layer's weights needs besides its class.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    pub name: String,
    pub class: String,
    /// The group Keras gives the layer in the weights file when it does not store the
    /// layer's name (`conv2d_1`: the class in snake case, numbered in model order).
    pub key: String,
    /// For a Dense reading the flatten of a `[H, W, C]` feature map: row `n` of nabla's
    /// kernel is row `row_perm[n]` of Keras'.
    pub row_perm: Option<Vec<usize>>,
    /// BatchNormalization's `center` and `scale` (a weight is absent when false).
    pub center: bool,
    pub scale: bool,
    /// A Bidirectional's two layers (forward, backward; named as nabla's params), or
    /// a nested model's layers (named within that model).
    pub sub: Vec<LayerPlan>,
}

impl LayerPlan {
    /// A plan with nothing to convert but the layout of the class.
    pub fn new(name: String, class: String, key: String) -> LayerPlan {
        LayerPlan {
            name,
            class,
            key,
            row_perm: None,
            center: true,
            scale: true,
            sub: Vec::new(),
        }
    }
}

/// The model's architecture for nabla and the plan for its weights; or every problem
/// found, one line each (`name (Class): why`).
pub fn convert(config: &Value) -> Result<(ModelConfig, Vec<LayerPlan>), Vec<String>> {
    let class = config
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let cfg = config.get("config").unwrap_or(&Value::Null);
    let model_name = cfg
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("keras_model")
        .to_string();
    let Some(layers) = cfg.get("layers").and_then(Value::as_array) else {
        return Err(vec![format!(
            "the model ({class}) has no \"layers\" list: only Sequential and Functional \
             models are read"
        )]);
    };
    let mut c = Converter::default();
    match class {
        "Sequential" => c.sequential(layers),
        "Functional" | "Model" => c.functional(cfg, layers),
        other => {
            return Err(vec![format!(
                "model class \"{other}\": only Sequential and Functional models are read \
                 (a subclassed model has no architecture in config.json)"
            )])
        }
    }
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let mc = ModelConfig {
        name: model_name,
        input_shape: if c.functional {
            Vec::new()
        } else {
            c.input_shape
        },
        inputs: c.inputs,
        layers: c.nodes,
        outputs: c.outputs,
        compile: None,
        class_names: Vec::new(),
    };
    Ok((mc, c.plans))
}

/// What the converter knows of a tensor: its Keras shape (without batch) and, for the
/// flatten of a feature map, the permutation from nabla's element order to Keras'.
#[derive(Clone, Debug, Default)]
struct TensorInfo {
    perm: Option<Vec<usize>>,
    /// nabla's shape (without batch), `None` after a layer that could not be built.
    shape: Option<Vec<Dim>>,
    /// The tensor of token ids whose zeros mask this one (after an
    /// `Embedding(mask_zero=True)`, through the layers that keep a mask).
    mask_of: Option<String>,
}

/// nabla's shape as Keras': `[C, H, W]` -> `[H, W, C]`.
fn to_keras_shape(s: &[Dim]) -> Vec<Option<usize>> {
    let v: Vec<Option<usize>> = s.iter().map(|d| d.get()).collect();
    if v.len() == 3 {
        vec![v[1], v[2], v[0]]
    } else {
        v
    }
}

#[derive(Default)]
struct Converter {
    functional: bool,
    input_shape: Vec<Dim>,
    inputs: Vec<InputConfig>,
    nodes: Vec<NodeConfig>,
    outputs: Vec<String>,
    plans: Vec<LayerPlan>,
    problems: Vec<String>,
    /// By tensor (layer name), what flows out of it.
    tensors: BTreeMap<String, TensorInfo>,
    /// Keys already given per snake-case class, to number them as Keras does.
    key_counts: BTreeMap<String, usize>,
    /// Keras' `NotEqual(ids, 0)` mask tensors: by name, the ids tensor.
    not_equal: BTreeMap<String, String>,
    /// The plan of each layer's first call, by layer name (for its further calls).
    first_plans: BTreeMap<String, LayerPlan>,
}

/// Keras' `to_snake_case` of a class name: `MaxPooling2D` -> `max_pooling2d`,
/// `ReLU` -> `re_lu`.
pub fn snake_case(name: &str) -> String {
    let c: Vec<char> = name.chars().collect();
    // (.)([A-Z][a-z]+) -> \1_\2
    let mut a = String::new();
    for i in 0..c.len() {
        if i > 0
            && c[i].is_ascii_uppercase()
            && c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
        {
            a.push('_');
        }
        a.push(c[i]);
    }
    // ([a-z])([A-Z]) -> \1_\2
    let c: Vec<char> = a.chars().collect();
    let mut b = String::new();
    for i in 0..c.len() {
        if i > 0 && c[i].is_ascii_uppercase() && c[i - 1].is_ascii_lowercase() {
            b.push('_');
        }
        b.push(c[i]);
    }
    b.to_lowercase()
}

fn shape_of(v: &Value) -> Option<Vec<Option<usize>>> {
    v.as_array()?
        .iter()
        .map(|d| {
            if d.is_null() {
                Some(None)
            } else {
                d.as_u64().map(|x| Some(x as usize))
            }
        })
        .collect()
}

/// Keras' shape without batch as nabla's: an image `[H, W, C]` becomes `[C, H, W]`.
fn to_nabla_shape(s: &[Option<usize>]) -> Vec<Dim> {
    let d = |x: Option<usize>| x.map_or(Dim::NONE, Dim::from);
    if s.len() == 3 {
        vec![d(s[2]), d(s[0]), d(s[1])]
    } else {
        s.iter().map(|&x| d(x)).collect()
    }
}

fn layer_name(layer: &Value) -> String {
    layer
        .get("config")
        .and_then(|c| c.get("name"))
        .or_else(|| layer.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

/// The input shape(s) Keras built the layer for, without batch.
fn build_shapes(layer: &Value) -> Option<Vec<Vec<Option<usize>>>> {
    let s = layer.get("build_config")?.get("input_shape")?;
    if let Some(one) = shape_of(s) {
        return Some(vec![one[1..].to_vec()]);
    }
    s.as_array()?
        .iter()
        .map(|x| {
            shape_of(x)
                .filter(|v| !v.is_empty())
                .map(|v| v[1..].to_vec())
        })
        .collect()
}

/// nabla's name of a Keras activation given as a string.
fn activation(v: Option<&Value>) -> Result<String, String> {
    let name = match v {
        None | Some(Value::Null) => return Ok("linear".into()),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(format!("activation {other} is not a plain name")),
    };
    match name {
        "linear" | "relu" | "sigmoid" | "tanh" | "softmax" | "elu" | "gelu" | "swish" => {
            Ok(name.into())
        }
        "silu" => Ok("swish".into()),
        "leaky_relu" => Ok("leaky_relu".into()),
        other => Err(format!("activation \"{other}\" is not one nabla has")),
    }
}

/// The flatten of a `[H, W, C]` map: nabla's element `c*H*W + h*W + w` is Keras' element
/// `(h*W + w)*C + c`.
pub fn flatten_perm(s: &[Option<usize>]) -> Option<Vec<usize>> {
    let (h, w, c) = (s[0]?, s[1]?, s[2]?);
    let mut p = Vec::with_capacity(h * w * c);
    for ci in 0..c {
        for hi in 0..h {
            for wi in 0..w {
                p.push((hi * w + wi) * c + ci);
            }
        }
    }
    Some(p)
}

impl Converter {
    fn sequential(&mut self, layers: &[Value]) {
        let mut prev: Option<String> = None;
        let mut first = true;
        for layer in layers {
            let class = layer
                .get("class_name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if class == "InputLayer" {
                let cfg = &layer["config"];
                match cfg
                    .get("batch_shape")
                    .or_else(|| cfg.get("batch_input_shape"))
                    .and_then(shape_of)
                {
                    Some(s) if !s.is_empty() => self.set_sequential_input(&s[1..]),
                    _ => self.problems.push(format!(
                        "{} (InputLayer): no batch_shape",
                        layer_name(layer)
                    )),
                }
                continue;
            }
            if first && self.input_shape.is_empty() {
                match build_shapes(layer) {
                    Some(s) if s.len() == 1 => self.set_sequential_input(&s[0]),
                    _ => self.problems.push(format!(
                        "{} ({class}): the model has no input shape (build it before saving)",
                        layer_name(layer)
                    )),
                }
            }
            first = false;
            // The first layer reads the input, held under the name "" here.
            let reads = vec![prev.clone().unwrap_or_default()];
            let name = layer_name(layer);
            self.layer(layer, &reads, Vec::new());
            prev = Some(name);
        }
        if let Some(p) = prev {
            self.check_output(&p);
        }
    }

    fn functional(&mut self, cfg: &Value, layers: &[Value]) {
        self.functional = true;
        // Each layer, its calls, and how many of them are converted.
        let mut pending: Vec<(&Value, Vec<Value>, usize)> = Vec::new();
        for layer in layers {
            let class = layer
                .get("class_name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let name = layer_name(layer);
            if class == "InputLayer" {
                let c = &layer["config"];
                match c
                    .get("batch_shape")
                    .or_else(|| c.get("batch_input_shape"))
                    .and_then(shape_of)
                {
                    Some(s) if !s.is_empty() => {
                        let shape = to_nabla_shape(&s[1..]);
                        self.inputs.push(InputConfig {
                            name: name.clone(),
                            shape: shape.clone(),
                        });
                        self.tensors.insert(
                            name.clone(),
                            TensorInfo {
                                shape: Some(shape),
                                ..TensorInfo::default()
                            },
                        );
                    }
                    _ => self
                        .problems
                        .push(format!("{name} (InputLayer): no batch_shape")),
                }
                // Keras numbers the input layer's weights group too.
                self.next_key(class);
                continue;
            }
            let nodes = layer
                .get("inbound_nodes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if nodes.is_empty() {
                self.next_key(class);
                self.problems
                    .push(format!("{name} ({class}): never called (no inbound_nodes)"));
            }
            pending.push((layer, nodes, 0));
        }
        // Calls in an order where every call's inputs come first: Keras lists layers by
        // their first call, and a later call may read a layer listed after it.
        loop {
            let mut progress = false;
            for (layer, nodes, next) in pending.iter_mut() {
                while let Some(node) = nodes.get(*next) {
                    let mut reads = Vec::new();
                    collect_history(&node["args"], &mut reads);
                    let mut mask = Vec::new();
                    collect_history(&node["kwargs"]["mask"], &mut mask);
                    let known =
                        |t: &String| self.tensors.contains_key(t) || self.not_equal.contains_key(t);
                    if !reads.iter().chain(&mask).all(known) {
                        break;
                    }
                    self.call(layer, node, &reads, mask.first(), *next);
                    *next += 1;
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        for (layer, nodes, next) in &pending {
            if *next < nodes.len() {
                self.problems.push(format!(
                    "{} ({}): reads tensors no layer of the model gives",
                    layer_name(layer),
                    layer
                        .get("class_name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ));
            }
        }
        let mut outs = Vec::new();
        collect_refs(cfg.get("output_layers").unwrap_or(&Value::Null), &mut outs);
        for o in &outs {
            self.check_output(o);
        }
        self.outputs = outs;
        let mut ins = Vec::new();
        collect_refs(cfg.get("input_layers").unwrap_or(&Value::Null), &mut ins);
        // nabla's inputs in Keras' order.
        let mut ordered = Vec::new();
        for i in &ins {
            if let Some(pos) = self.inputs.iter().position(|x| &x.name == i) {
                ordered.push(self.inputs.remove(pos));
            }
        }
        ordered.append(&mut self.inputs);
        self.inputs = ordered;
    }

    fn set_sequential_input(&mut self, keras: &[Option<usize>]) {
        self.input_shape = to_nabla_shape(keras);
        self.tensors.insert(
            String::new(),
            TensorInfo {
                shape: Some(self.input_shape.clone()),
                ..TensorInfo::default()
            },
        );
    }

    fn check_output(&mut self, name: &str) {
        if self.tensors.get(name).is_some_and(|t| t.perm.is_some()) {
            self.problems.push(format!(
                "{name}: a model output that is the flatten of a channels-last feature map \
                 (its element order differs from nabla's channels-first flatten)"
            ));
        }
    }

    fn next_key(&mut self, class: &str) -> String {
        let base = snake_case(class);
        let n = self.key_counts.entry(base.clone()).or_insert(0);
        let key = if *n == 0 { base } else { format!("{base}_{n}") };
        *n += 1;
        key
    }

    /// Call `k` of a functional model's layer: a `NotEqual` mask, the layer (its first
    /// call), or a further call of it (nabla's `Shared`, named `LAYER:K`).
    fn call(
        &mut self,
        layer: &Value,
        node: &Value,
        reads: &[String],
        mask: Option<&String>,
        k: usize,
    ) {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let name = tensor_name(&layer_name(layer), k, 0);
        if class == "NotEqual" {
            let args = node["args"].as_array().cloned().unwrap_or_default();
            let zero = args.get(1).and_then(Value::as_f64) == Some(0.0);
            match (reads, zero) {
                ([ids], true) if node["kwargs"].as_object().is_none_or(|o| o.is_empty()) => {
                    self.not_equal.insert(name, ids.clone());
                }
                _ => self.problems.push(format!(
                    "{name} (NotEqual): only Keras' mask of an Embedding(mask_zero=True), \
                     ids != 0, is read"
                )),
            }
            return;
        }
        let problem = |what: String| format!("{name} ({class}): {what}");
        if let Some(r) = reads.iter().find(|r| self.not_equal.contains_key(*r)) {
            self.problems.push(problem(format!(
                "reads the mask '{r}' as data; nabla keeps masks inside its layers"
            )));
            self.tensors.insert(name, TensorInfo::default());
            return;
        }
        if let Some(m) = mask {
            let ids = self.not_equal.get(m);
            let carried = reads
                .first()
                .and_then(|r| self.tensors.get(r))
                .and_then(|t| t.mask_of.as_ref());
            if ids.is_none() || ids != carried {
                self.problems.push(problem(format!(
                    "takes the mask '{m}', which its input does not carry in nabla (nabla's \
                     masks come from Embedding(mask_zero=True) through layers that keep them)"
                )));
            }
        }
        if k == 0 {
            self.layer(layer, reads, reads.to_vec());
        } else {
            self.shared_call(layer, reads, k);
        }
    }

    /// Call `k > 0` of a layer: checked as the layer on these inputs (shapes, the
    /// flatten order), built as nabla's `Shared` call of its first.
    fn shared_call(&mut self, layer: &Value, reads: &[String], k: usize) {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let base = layer_name(layer);
        let name = tensor_name(&base, k, 0);
        let Some(first) = self.first_plans.get(&base).cloned() else {
            // The first call could not be converted (said already).
            self.tensors.insert(name, TensorInfo::default());
            return;
        };
        let Some(first_node) = self
            .nodes
            .iter()
            .find(|n| n.layer.name() == Some(base.as_str()))
            .cloned()
        else {
            self.tensors.insert(name, TensorInfo::default());
            return;
        };
        let ins: Vec<TensorInfo> = reads
            .iter()
            .map(|r| self.tensors.get(r).cloned().unwrap_or_default())
            .collect();
        let nabla_in: Option<Vec<Vec<Dim>>> = ins.iter().map(|t| t.shape.clone()).collect();
        let shapes: Vec<Vec<Option<usize>>> = nabla_in
            .as_ref()
            .map(|v| v.iter().map(|s| to_keras_shape(s)).collect())
            .unwrap_or_default();
        let cfg = layer.get("config").cloned().unwrap_or(Value::Null);
        let mut plan = LayerPlan::new(name.clone(), class.clone(), String::new());
        let mut out = match self.translate(&class, layer, &cfg, &shapes, &ins, &mut plan) {
            Ok((_, out)) => out,
            Err(why) => {
                if !why.is_empty() {
                    self.problems.push(format!("{name} ({class}): {why}"));
                }
                self.tensors.insert(name, TensorInfo::default());
                return;
            }
        };
        if plan.row_perm != first.row_perm {
            self.problems.push(format!(
                "{name} ({class}): a further call of '{base}' reading another flatten order \
                 than its first call"
            ));
        }
        if class == "Embedding" && cfg["mask_zero"].as_bool() == Some(true) {
            out.mask_of = reads.first().cloned();
        }
        out.shape = nabla_in.and_then(|v| {
            let refs: Vec<&[Dim]> = v.iter().map(Vec::as_slice).collect();
            match first_node.layer.output_shape_of(&name, &refs) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.problems.push(format!("{name} ({class}): {e}"));
                    None
                }
            }
        });
        let node: Result<NodeConfig, _> = serde_json::from_value(json!({
            "class_name": "Shared",
            "config": {"name": name, "layer": base},
        }));
        match node {
            Ok(mut node) => {
                node.inbound = reads.to_vec();
                self.nodes.push(node);
                self.tensors.insert(name, out);
            }
            Err(e) => self.problems.push(format!("{name} ({class}): {e}")),
        }
    }

    /// One layer: its nabla config and weight plan, or a problem.
    fn layer(&mut self, layer: &Value, reads: &[String], inbound: Vec<String>) {
        let class = layer
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let name = layer_name(layer);
        let key = self.next_key(&class);
        let cfg = layer.get("config").cloned().unwrap_or(Value::Null);
        let ins: Vec<TensorInfo> = reads
            .iter()
            .map(|r| self.tensors.get(r).cloned().unwrap_or_default())
            .collect();
        // Input shapes as Keras sees them, from what the layers before give.
        let nabla_in: Option<Vec<Vec<Dim>>> = ins.iter().map(|t| t.shape.clone()).collect();
        let shapes: Option<Vec<Vec<Option<usize>>>> = nabla_in
            .as_ref()
            .map(|v| v.iter().map(|s| to_keras_shape(s)).collect())
            .or_else(|| build_shapes(layer));
        let known_inputs = shapes.is_some();
        let shapes = shapes.unwrap_or_default();
        let mut plan = LayerPlan::new(name.clone(), class.clone(), key);
        match self.translate(&class, layer, &cfg, &shapes, &ins, &mut plan) {
            Ok((nabla_cfg, mut out)) => {
                let trainable = cfg
                    .get("trainable")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                let mut map = Map::new();
                map.insert("class_name".into(), json!(nabla_cfg.0));
                let mut c = nabla_cfg.1;
                c.insert("name".into(), json!(name));
                map.insert("config".into(), Value::Object(c));
                match serde_json::from_value::<NodeConfig>(Value::Object(map)) {
                    Ok(mut node) => {
                        node.inbound = inbound;
                        node.trainable = trainable;
                        out.shape = nabla_in.and_then(|v| {
                            let refs: Vec<&[Dim]> = v.iter().map(Vec::as_slice).collect();
                            match node.layer.output_shape_of(&name, &refs) {
                                Ok(s) => Some(s),
                                Err(e) => {
                                    self.problems.push(format!("{name} ({class}): {e}"));
                                    None
                                }
                            }
                        });
                        if class == "Embedding" && cfg["mask_zero"].as_bool() == Some(true) {
                            out.mask_of = reads.first().cloned();
                        }
                        self.nodes.push(node);
                        self.first_plans.insert(name.clone(), plan.clone());
                        self.plans.push(plan);
                        self.tensors.insert(name, out);
                    }
                    Err(e) => self.problems.push(format!("{name} ({class}): {e}")),
                }
            }
            Err(why) => {
                // After a layer that could not be built, shapes are unknown: only a
                // class nabla lacks is worth saying (the cause is listed already).
                if !why.is_empty() && (known_inputs || why.starts_with("layer class")) {
                    self.problems.push(format!("{name} ({class}): {why}"));
                }
                self.tensors.insert(name, TensorInfo::default());
            }
        }
    }

    /// The nabla class and config of one Keras layer, and what its output carries.
    #[allow(clippy::type_complexity)]
    fn translate(
        &mut self,
        class: &str,
        layer: &Value,
        cfg: &Value,
        shapes: &[Vec<Option<usize>>],
        ins: &[TensorInfo],
        plan: &mut LayerPlan,
    ) -> Result<((String, Map<String, Value>), TensorInfo), String> {
        let rank = shapes.first().map(Vec::len);
        let mut out = TensorInfo::default();
        let carried = ins.iter().any(|t| t.perm.is_some());
        let mut m = Map::new();
        let get = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
        let channels_last = || match cfg.get("data_format").and_then(Value::as_str) {
            None | Some("channels_last") => Ok(()),
            Some(f) => Err(format!("data_format \"{f}\"; only channels_last is read")),
        };
        let image = |what: &str| {
            if rank == Some(3) {
                Ok(())
            } else {
                Err(format!(
                    "{what} on an input of shape {:?}; nabla takes images [H, W, C] here",
                    shapes.first()
                ))
            }
        };
        // Layers that act element by element keep the flatten order of their input.
        let elementwise = matches!(class, "Dropout" | "Activation" | "ReLU" | "LeakyReLU");
        if elementwise {
            out.mask_of = ins.first().and_then(|t| t.mask_of.clone());
        }
        if carried && !(elementwise || class == "Dense") {
            return Err(
                "reads the flatten of a channels-last feature map other than through Dense \
                 (its element order differs from nabla's channels-first flatten)"
                    .into(),
            );
        }
        let nabla_class = match class {
            "Dense" => {
                if rank != Some(1) {
                    return Err(format!(
                        "Dense on an input of shape {:?}; nabla's Keras reader takes Dense \
                         on vectors",
                        shapes.first()
                    ));
                }
                plan.row_perm = ins.first().and_then(|t| t.perm.clone());
                m.insert("units".into(), get("units"));
                dense_like(cfg, &mut m)?;
                "Dense"
            }
            "Conv2D" | "Conv2DTranspose" => {
                channels_last()?;
                image(class)?;
                let pad = get("padding");
                if !matches!(pad.as_str(), Some("valid") | Some("same")) {
                    return Err(format!("padding {pad}; nabla takes \"valid\" and \"same\""));
                }
                for k in ["filters", "kernel_size", "strides"] {
                    m.insert(k.into(), get(k));
                }
                m.insert("padding".into(), pad);
                let dil = get("dilation_rate");
                if class == "Conv2D" {
                    m.insert("dilation_rate".into(), dil);
                    m.insert("groups".into(), json!(get("groups").as_u64().unwrap_or(1)));
                } else {
                    if !get("output_padding").is_null() {
                        return Err(
                            "output_padding is set; nabla's Conv2DTranspose has none".into()
                        );
                    }
                    if !(dil.is_null() || dil == json!([1, 1]) || dil == json!(1)) {
                        return Err(format!(
                            "dilation_rate {dil}; nabla's Conv2DTranspose has none"
                        ));
                    }
                }
                dense_like(cfg, &mut m)?;
                class
            }
            "MaxPooling2D" | "AveragePooling2D" => {
                channels_last()?;
                image(class)?;
                m.insert("pool_size".into(), get("pool_size"));
                let s = get("strides");
                if !s.is_null() {
                    m.insert(
                        "strides".into(),
                        if let Some(n) = s.as_u64() {
                            json!([n, n])
                        } else {
                            s
                        },
                    );
                }
                m.insert("padding".into(), get("padding"));
                class
            }
            "GlobalAveragePooling2D" | "GlobalMaxPooling2D" => {
                channels_last()?;
                image(class)?;
                if get("keepdims").as_bool() == Some(true) {
                    return Err("keepdims=True; nabla's global pools drop the axes".into());
                }
                class
            }
            "Flatten" => {
                if rank == Some(3) {
                    out.perm = flatten_perm(&shapes[0]);
                    if out.perm.is_none() {
                        return Err("Flatten of a feature map of unknown size".into());
                    }
                } else if rank != Some(1) {
                    return Err(format!("Flatten of shape {:?}", shapes.first()));
                }
                "Flatten"
            }
            "Reshape" => {
                let target = shape_of(&get("target_shape")).unwrap_or_default();
                if target.len() != 1 {
                    return Err(format!(
                        "Reshape to {target:?}; nabla's Keras reader takes Reshape to a \
                         vector only (a channels-last target has another element order)"
                    ));
                }
                if rank == Some(3) {
                    out.perm = flatten_perm(&shapes[0]);
                } else if rank != Some(1) {
                    return Err(format!("Reshape of shape {:?}", shapes.first()));
                }
                m.insert("target_shape".into(), json!([-1]));
                "Reshape"
            }
            "Dropout" => {
                m.insert("rate".into(), get("rate"));
                out.perm = ins.first().and_then(|t| t.perm.clone());
                "Dropout"
            }
            "Activation" => {
                let a = activation(cfg.get("activation"))?;
                if a == "softmax" && rank != Some(1) {
                    return Err("softmax over a tensor of rank > 1 (Keras' last axis is \
                                nabla's channel axis)"
                        .into());
                }
                m.insert("activation".into(), json!(a));
                out.perm = ins.first().and_then(|t| t.perm.clone());
                "Activation"
            }
            "ReLU" => {
                if let Some(v) = cfg.get("max_value").filter(|v| !v.is_null()) {
                    m.insert("max_value".into(), v.clone());
                }
                m.insert(
                    "negative_slope".into(),
                    json!(get("negative_slope").as_f64().unwrap_or(0.0)),
                );
                m.insert(
                    "threshold".into(),
                    json!(get("threshold").as_f64().unwrap_or(0.0)),
                );
                out.perm = ins.first().and_then(|t| t.perm.clone());
                "ReLU"
            }
            "LeakyReLU" => {
                let s = cfg.get("negative_slope").or_else(|| cfg.get("alpha"));
                m.insert(
                    "alpha".into(),
                    json!(s.and_then(Value::as_f64).unwrap_or(0.3)),
                );
                out.perm = ins.first().and_then(|t| t.perm.clone());
                "LeakyReLU"
            }
            "BatchNormalization" => {
                let axis = get("axis");
                let axis = axis.as_i64().or_else(|| {
                    axis.as_array()
                        .filter(|a| a.len() == 1)
                        .and_then(|a| a[0].as_i64())
                });
                let r = rank.unwrap_or(0) as i64;
                let last = axis == Some(-1) || axis == Some(r);
                if !(last && (r == 1 || r == 3)) {
                    return Err(format!(
                        "axis {axis:?} on an input of rank {r}; nabla normalises the \
                         channels of images and the features of vectors"
                    ));
                }
                if get("renorm").as_bool() == Some(true) {
                    return Err("renorm=True is not in nabla's BatchNormalization".into());
                }
                plan.center = get("center").as_bool().unwrap_or(true);
                plan.scale = get("scale").as_bool().unwrap_or(true);
                m.insert(
                    "momentum".into(),
                    json!(get("momentum").as_f64().unwrap_or(0.99)),
                );
                m.insert(
                    "epsilon".into(),
                    json!(get("epsilon").as_f64().unwrap_or(1e-3)),
                );
                "BatchNormalization"
            }
            "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" => class,
            "Concatenate" => {
                let axis = get("axis").as_i64().unwrap_or(-1);
                let r = rank.unwrap_or(0) as i64;
                let a = if axis < 0 { axis + r + 1 } else { axis };
                let nabla_axis = match (r, a) {
                    (1, 1) => 1,
                    (3, 3) => 1,
                    (3, 1) => 2,
                    (3, 2) => 3,
                    _ => return Err(format!("axis {axis} on inputs of rank {r}")),
                };
                m.insert("axis".into(), json!(nabla_axis));
                "Concatenate"
            }
            "UpSampling2D" => {
                channels_last()?;
                image(class)?;
                m.insert("size".into(), get("size"));
                let i = get("interpolation");
                m.insert(
                    "interpolation".into(),
                    if i.is_null() { json!("nearest") } else { i },
                );
                "UpSampling2D"
            }
            "ZeroPadding2D" => {
                channels_last()?;
                image(class)?;
                m.insert("padding".into(), get("padding"));
                "ZeroPadding2D"
            }
            "Embedding" => {
                if rank != Some(1) {
                    return Err(format!(
                        "Embedding on an input of shape {:?}; nabla takes token ids [steps]",
                        shapes.first()
                    ));
                }
                m.insert("input_dim".into(), get("input_dim"));
                m.insert("output_dim".into(), get("output_dim"));
                m.insert(
                    "mask_zero".into(),
                    json!(get("mask_zero").as_bool().unwrap_or(false)),
                );
                "Embedding"
            }
            "LSTM" | "GRU" | "SimpleRNN" => {
                sequences(rank, shapes)?;
                m = recurrent_config(class, cfg)?;
                if get("zero_output_for_mask").as_bool() == Some(true)
                    && m["return_sequences"] == true
                {
                    return Err(
                        "zero_output_for_mask=True; nabla's masked steps output the \
                                carried state (Keras' default)"
                            .into(),
                    );
                }
                if m["return_sequences"] == true {
                    out.mask_of = ins.first().and_then(|t| t.mask_of.clone());
                }
                class
            }
            "Bidirectional" => {
                sequences(rank, shapes)?;
                let (inner, merge) = bidirectional(cfg)?;
                let inner_class = inner["class_name"].as_str().unwrap_or("").to_string();
                let base = inner["config"]["name"].as_str().unwrap_or("").to_string();
                if inner["config"]["return_sequences"] == true {
                    out.mask_of = ins.first().and_then(|t| t.mask_of.clone());
                }
                plan.sub = ["forward", "backward"]
                    .iter()
                    .map(|d| {
                        LayerPlan::new(
                            format!("{}/{d}_{base}", plan.name),
                            inner_class.clone(),
                            format!("{d}_layer"),
                        )
                    })
                    .collect();
                m.insert("layer".into(), inner);
                m.insert("merge_mode".into(), json!(merge));
                "Bidirectional"
            }
            "Conv1D" => {
                channels_last()?;
                sequences(rank, shapes)?;
                let pad = get("padding");
                if !matches!(pad.as_str(), Some("valid" | "same" | "causal")) {
                    return Err(format!(
                        "padding {pad}; nabla takes \"valid\", \"same\" and \"causal\""
                    ));
                }
                if get("groups").as_u64().unwrap_or(1) != 1 {
                    return Err(format!("groups {}; nabla's Conv1D has one", get("groups")));
                }
                for k in ["filters", "kernel_size", "strides", "dilation_rate"] {
                    m.insert(k.into(), get(k));
                }
                m.insert("padding".into(), pad);
                dense_like(cfg, &mut m)?;
                "Conv1D"
            }
            "MaxPooling1D" | "AveragePooling1D" => {
                channels_last()?;
                sequences(rank, shapes)?;
                m.insert("pool_size".into(), get("pool_size"));
                m.insert("strides".into(), get("strides"));
                m.insert("padding".into(), get("padding"));
                class
            }
            "GlobalAveragePooling1D" | "GlobalMaxPooling1D" => {
                channels_last()?;
                sequences(rank, shapes)?;
                if get("keepdims").as_bool() == Some(true) {
                    return Err("keepdims=True; nabla's global pools drop the axis".into());
                }
                class
            }
            "Functional" | "Sequential" | "Model" => {
                let inner = json!({"class_name": class, "config": cfg});
                match convert(&inner) {
                    Ok((mc, plans)) => {
                        plan.sub = plans;
                        match serde_json::to_value(&mc) {
                            Ok(Value::Object(o)) => m = o,
                            _ => return Err("the nested model's config does not serialize".into()),
                        }
                    }
                    Err(problems) => {
                        let name = layer_name(layer);
                        self.problems
                            .extend(problems.into_iter().map(|p| format!("{name}/{p}")));
                        // Said above, one line per inner layer.
                        return Err(String::new());
                    }
                }
                "Model"
            }
            other => {
                return Err(format!(
                    "layer class \"{other}\" is not one nabla's Keras reader builds"
                ))
            }
        };
        Ok(((nabla_class.to_string(), m), out))
    }
}

/// nabla's name of output `t` of call `k` of the layer `layer`: `layer`, `layer:K` for
/// a further call (a `Shared` node), `NAME[t]` for a layer's further outputs.
fn tensor_name(layer: &str, k: usize, t: usize) -> String {
    let call = match k {
        0 => layer.to_string(),
        k => format!("{layer}:{k}"),
    };
    match t {
        0 => call,
        t => format!("{call}[{t}]"),
    }
}

/// The tensors in `keras_history` of an inbound node's `args` (a tensor, a list of
/// tensors, nested), as nabla names them (`tensor_name`).
fn collect_history(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if let Some(h) = o
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .and_then(Value::as_array)
            {
                if let Some(n) = h.first().and_then(Value::as_str) {
                    let at = |i: usize| h.get(i).and_then(Value::as_u64).unwrap_or(0) as usize;
                    out.push(tensor_name(n, at(1), at(2)));
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_history(x, out)),
        _ => {}
    }
}

/// The check that a layer reads sequences `[steps, features]`.
fn sequences(rank: Option<usize>, shapes: &[Vec<Option<usize>>]) -> Result<(), String> {
    if rank == Some(2) {
        Ok(())
    } else {
        Err(format!(
            "on an input of shape {:?}; nabla takes sequences [steps, features] here",
            shapes.first()
        ))
    }
}

/// The `activation` and `use_bias` of a layer with a kernel (Dense, Conv).
fn dense_like(cfg: &Value, m: &mut Map<String, Value>) -> Result<(), String> {
    m.insert(
        "activation".into(),
        json!(activation(cfg.get("activation"))?),
    );
    m.insert(
        "use_bias".into(),
        json!(cfg.get("use_bias").and_then(Value::as_bool).unwrap_or(true)),
    );
    Ok(())
}

/// nabla's config of a Keras LSTM, GRU or SimpleRNN (the gate orders are Keras' in
/// nabla, so the weights need no change). Initializers are left out: the weights come
/// from the file.
fn recurrent_config(class: &str, cfg: &Value) -> Result<Map<String, Value>, String> {
    let get = |k: &str| cfg.get(k).cloned().unwrap_or(Value::Null);
    for k in ["go_backwards", "stateful"] {
        if get(k).as_bool() == Some(true) {
            return Err(format!("{k}=True is not in nabla's {class}"));
        }
    }
    let mut m = Map::new();
    m.insert("units".into(), get("units"));
    m.insert(
        "activation".into(),
        json!(activation(cfg.get("activation"))?),
    );
    if class != "SimpleRNN" {
        let a = cfg
            .get("recurrent_activation")
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(json!("sigmoid"));
        m.insert("recurrent_activation".into(), json!(activation(Some(&a))?));
    }
    m.insert(
        "use_bias".into(),
        json!(get("use_bias").as_bool().unwrap_or(true)),
    );
    for k in ["return_sequences", "return_state"] {
        m.insert(k.into(), json!(get(k).as_bool().unwrap_or(false)));
    }
    for k in ["dropout", "recurrent_dropout"] {
        m.insert(k.into(), json!(get(k).as_f64().unwrap_or(0.0)));
    }
    match class {
        "LSTM" => {
            m.insert(
                "unit_forget_bias".into(),
                json!(get("unit_forget_bias").as_bool().unwrap_or(true)),
            );
        }
        "GRU" => {
            m.insert(
                "reset_after".into(),
                json!(get("reset_after").as_bool().unwrap_or(true)),
            );
        }
        _ => {}
    }
    Ok(m)
}

/// A Keras Bidirectional as nabla's: the wrapped layer's config (named as Keras names
/// it without the `forward_` Keras adds, so nabla's `forward_NAME` is Keras' name) and
/// the merge mode. Keras writes the backward layer too; nabla runs one layer both ways,
/// so it must be the forward one reading backwards.
fn bidirectional(cfg: &Value) -> Result<(Value, String), String> {
    let inner = &cfg["layer"];
    let class = inner["class_name"].as_str().unwrap_or("?");
    if !matches!(class, "LSTM" | "GRU" | "SimpleRNN") {
        return Err(format!(
            "wraps a {class}; nabla's Keras reader takes LSTM, GRU and SimpleRNN"
        ));
    }
    let fname = inner["config"]["name"].as_str().unwrap_or(class);
    let mut m = recurrent_config(class, &inner["config"])?;
    if let Some(b) = cfg.get("backward_layer").filter(|b| !b.is_null()) {
        let mut bc = b["config"].clone();
        if let Some(o) = bc.as_object_mut() {
            o.insert("go_backwards".into(), json!(false));
        }
        let same = b["class_name"] == inner["class_name"]
            && recurrent_config(class, &bc).ok().as_ref() == Some(&m);
        if !same {
            return Err(
                "backward_layer is not the wrapped layer run backwards; nabla's \
                        Bidirectional runs one layer both ways"
                    .into(),
            );
        }
    }
    let merge = match cfg.get("merge_mode").and_then(Value::as_str) {
        Some(mode @ ("concat" | "sum" | "ave" | "mul")) => mode.to_string(),
        None if cfg.get("merge_mode").is_none() => "concat".into(),
        _ => {
            return Err(format!(
                "merge_mode {}; nabla takes concat, sum, ave and mul",
                cfg["merge_mode"]
            ))
        }
    };
    let base = fname.strip_prefix("forward_").unwrap_or(fname);
    m.insert("name".into(), json!(base));
    Ok((json!({"class_name": class, "config": m}), merge))
}

/// Layer names of `input_layers` / `output_layers`: `[name, 0, 0]` or a list of them.
fn collect_refs(v: &Value, out: &mut Vec<String>) {
    if let Some(a) = v.as_array() {
        if let Some(Value::String(s)) = a.first() {
            out.push(s.clone());
        } else {
            a.iter().for_each(|x| collect_refs(x, out));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras() {
        for (c, s) in [
            ("Conv2D", "conv2d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("BatchNormalization", "batch_normalization"),
            ("ReLU", "re_lu"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("InputLayer", "input_layer"),
            ("Dense", "dense"),
            ("Conv2DTranspose", "conv2d_transpose"),
            ("UpSampling2D", "up_sampling2d"),
        ] {
            assert_eq!(snake_case(c), s, "{c}");
        }
    }

    /// A Keras inbound node reading `(layer, node, tensor)` triples.
    fn node(reads: &[(&str, u64)]) -> Value {
        let t: Vec<Value> = reads
            .iter()
            .map(|(l, k)| {
                json!({"class_name": "__keras_tensor__",
                       "config": {"keras_history": [l, k, 0]}})
            })
            .collect();
        let args = if t.len() == 1 {
            json!([t[0]])
        } else {
            json!([t])
        };
        json!({"args": args, "kwargs": {}})
    }

    fn dense(name: &str, units: usize, nodes: Vec<Value>) -> Value {
        json!({"class_name": "Dense", "name": name,
               "config": {"name": name, "units": units, "activation": "linear"},
               "inbound_nodes": nodes})
    }

    fn input(name: &str) -> Value {
        json!({"class_name": "InputLayer", "name": name,
               "config": {"name": name, "batch_shape": [null, 3]}, "inbound_nodes": []})
    }

    #[test]
    fn a_shared_layer_s_later_call_may_read_a_layer_listed_after_it() {
        // `tower` is listed first, but its second call reads `pre`, listed after it:
        // the calls are ordered so that every call's inputs come first.
        let cfg = json!({"class_name": "Functional", "config": {
            "name": "m",
            "layers": [
                input("a"),
                input("b"),
                dense("tower", 3, vec![node(&[("a", 0)]), node(&[("pre", 0)])]),
                dense("pre", 3, vec![node(&[("b", 0)])]),
                {"class_name": "Add", "name": "sum", "config": {"name": "sum"},
                 "inbound_nodes": [node(&[("tower", 0), ("tower", 1)])]},
            ],
            "input_layers": [["a", 0, 0], ["b", 0, 0]],
            "output_layers": [["sum", 0, 0]],
        }});
        let (mc, plans) = convert(&cfg).unwrap();
        let order: Vec<String> = mc
            .layers
            .iter()
            .map(|n| n.layer.name().unwrap().to_string())
            .collect();
        assert_eq!(order, ["tower", "pre", "tower:1", "sum"]);
        let shared = &mc.layers[2];
        assert_eq!(shared.layer.class_name(), "Shared");
        assert_eq!(shared.inbound, ["pre"]);
        assert_eq!(mc.layers[3].inbound, ["tower", "tower:1"]);
        // One weight plan per layer, not per call.
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["tower", "pre", "sum"]);
        assert_eq!(mc.output_shapes().unwrap().len(), 1);
    }

    #[test]
    fn calls_that_read_nothing_known_are_a_problem_not_a_hang() {
        let cfg = json!({"class_name": "Functional", "config": {
            "name": "m",
            "layers": [input("a"), dense("d", 2, vec![node(&[("ghost", 0)])])],
            "input_layers": [["a", 0, 0]],
            "output_layers": [["d", 0, 0]],
        }});
        let e = convert(&cfg).unwrap_err();
        assert!(
            e.iter()
                .any(|p| p.contains("d (Dense): reads tensors no layer")),
            "{e:?}"
        );
    }

    #[test]
    fn flatten_perm_maps_chw_to_hwc() {
        // H=2, W=1, C=3: Keras order (h, w, c) = 0:(0,0,0) 1:(0,0,1) 2:(0,0,2) 3:(1,0,0)...
        // nabla order (c, h, w): (0,0,0)=0 (0,1,0)=3 (1,0,0)=1 (1,1,0)=4 (2,0,0)=2 (2,1,0)=5
        assert_eq!(
            flatten_perm(&[Some(2), Some(1), Some(3)]).unwrap(),
            vec![0, 3, 1, 4, 2, 5]
        );
    }
}
