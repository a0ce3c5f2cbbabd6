//! Keras 3 models and weights in: a `.keras` file (a zip of `config.json`,
//! `metadata.json` and `model.weights.h5`) becomes a nabla model with Keras' weights
//! (`load_keras`, what `Model::load` does for a path ending in `.keras`), and a
//! `.weights.h5` (`model.save_weights`) loads into a model built in nabla
//! (`Model::load_keras_weights`).
//!
//! - `hdf5.rs`: the weights file, read with a pure-Rust HDF5 reader;
//! - `config.rs`: `config.json` as a nabla `ModelConfig`, channels-last to
//!   channels-first (every layer nabla cannot build is listed in one error);
//! - here: the zip, and Keras' weights in nabla's layouts (Conv2D kernels HWIO -> OIHW,
//!   Conv2DTranspose `[kh, kw, out, in]` -> `[in, out, kh, kw]`, the rows of a Dense that
//!   reads a flattened feature map, BatchNormalization without `center`/`scale`; LSTM,
//!   GRU and SimpleRNN weights are their cell's, in Keras' gate order in both; a
//!   Bidirectional's are its forward and backward layers'; a nested model's, its own
//!   layers', matched within it).
//!
//! The model comes compiled (`compile.rs`), from Keras' `compile_config` where nabla
//! has its loss and optimizer. A Keras image model takes `[N, C, H, W]` in nabla (MNIST's `[N, 1, 28, 28]`, what
//! the CLI feeds), not Keras' `[N, H, W, C]`; its outputs are Keras' outputs.

pub mod compile;
pub mod config;
pub mod hdf5;

use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::training::Sequential;
use config::LayerPlan;
use hdf5::{StoredLayer, StoredTensor};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The largest member of a `.keras` zip we inflate (a corrupt size must not exhaust
/// memory): 4 GB of weights, 64 MB of JSON.
const MAX_WEIGHTS_BYTES: u64 = 4 << 30;
const MAX_CONFIG_BYTES: u64 = 64 << 20;

impl Sequential {
    /// Loads a Keras 3 `.weights.h5` file (`model.save_weights`) into this model, built
    /// in nabla with the same layer names and classes (images channels-first); see the
    /// module docs for the layout conversions. Nothing is changed on error.
    pub fn load_keras_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let stored = hdf5::parse_weights(bytes, path)?;
        let plans = plans_from_model(self);
        assign(self, &plans, &stored, path)
    }
}

/// True for a path nabla reads as a Keras model (`*.keras`).
pub fn is_keras_model(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("keras"))
}

/// Reads a `.keras` file into a nabla model (uncompiled, weights from the file).
pub fn load_keras(path: &Path) -> Result<Sequential> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    keras_from_bytes(&bytes, path)
}

/// `load_keras` on bytes; `path` names the file in errors (the fuzz target's entry).
pub fn keras_from_bytes(bytes: &[u8], path: &Path) -> Result<Sequential> {
    let bad = |what: String| Error::format(path, what);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("not a .keras file (a zip archive): {e}")))?;
    let mut member = |name: &str, max: u64| -> Result<Vec<u8>> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| bad(format!("no {name} in the archive: {e}")))?;
        if f.size() > max {
            return Err(bad(format!(
                "{name} claims {} bytes, more than {max}",
                f.size()
            )));
        }
        let mut out = Vec::with_capacity(f.size() as usize);
        (&mut f)
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("{name}: cannot inflate: {e}")))?;
        if out.len() as u64 > max {
            return Err(bad(format!("{name} is larger than {max} bytes")));
        }
        Ok(out)
    };
    let config_bytes = member("config.json", MAX_CONFIG_BYTES)?;
    let weights_bytes = member("model.weights.h5", MAX_WEIGHTS_BYTES)?;
    let config: serde_json::Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| bad(format!("config.json: invalid JSON: {e}")))?;
    let (cfg, plans) = config::convert(&config).map_err(|problems| {
        bad(format!(
            "config.json: {} layer(s) nabla cannot build:\n  {}",
            problems.len(),
            problems.join("\n  ")
        ))
    })?;
    let mut model = Sequential::from_config(&cfg, 0).map_err(|e| {
        bad(format!(
            "config.json: the converted model does not build: {e}"
        ))
    })?;
    let h5_name = path.join("model.weights.h5");
    let stored = hdf5::parse_weights(weights_bytes, &h5_name)?;
    assign(&mut model, &plans, &stored, &h5_name)?;
    let softmax = cfg
        .layers
        .last()
        .and_then(|n| serde_json::to_value(&n.layer).ok())
        .is_some_and(|v| v["config"]["activation"] == "softmax");
    if let Some(note) = compile::compile(&mut model, &config, softmax) {
        eprintln!("note: {}: {note}", path.display());
    }
    Ok(model)
}

/// Weight plans for a model built in nabla: each layer's class, and for a Dense that
/// reads (through element-wise layers) a Flatten of a `[C, H, W]` map, the permutation
/// from Keras' channels-last flatten.
fn plans_from_model(model: &Sequential) -> Vec<LayerPlan> {
    let layers = model.layers();
    let index: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name(), i))
        .collect();
    let mut plans = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        let class = layer.config().class_name().to_string();
        let base = config::snake_case(&class);
        let n = counts.entry(base.clone()).or_insert(0);
        let key = if *n == 0 { base } else { format!("{base}_{n}") };
        *n += 1;
        let mut row_perm = None;
        if class == "Dense" {
            // Walk back over element-wise layers to a Flatten, if any.
            let mut at = i;
            while let Some(&prev) = model
                .layer_inbound_names(at)
                .first()
                .and_then(|n| index.get(n))
            {
                let c = layers[prev].config().class_name();
                if c == "Flatten" {
                    if let [&[c, h, w]] = model.layer_input_shapes(prev).as_slice() {
                        if let (Some(c), Some(h), Some(w)) = (c.get(), h.get(), w.get()) {
                            row_perm = config::flatten_perm(&[Some(h), Some(w), Some(c)]);
                        }
                    }
                    break;
                }
                if !matches!(c, "Dropout" | "Activation" | "ReLU" | "LeakyReLU") {
                    break;
                }
                at = prev;
            }
        }
        let mut plan = LayerPlan::new(layer.name().to_string(), class, key);
        plan.row_perm = row_perm;
        if plan.class == "Bidirectional" {
            // Its two layers, named as nabla names them (`forward_NAME`).
            let v = serde_json::to_value(layer.config()).unwrap_or_default();
            let inner = &v["config"]["layer"];
            let class = inner["class_name"].as_str().unwrap_or("");
            let base = inner["config"]["name"]
                .as_str()
                .map_or_else(|| config::snake_case(class), str::to_string);
            plan.sub = ["forward", "backward"]
                .iter()
                .map(|d| {
                    LayerPlan::new(
                        format!("{}/{d}_{base}", plan.name),
                        class.to_string(),
                        format!("{d}_layer"),
                    )
                })
                .collect();
        }
        if let Some(inner) = layer
            .config()
            .downcast_ref::<crate::nn::model_config::ModelConfig>()
        {
            // A nested model: the plans of its own layers, from the model it builds.
            if let Ok(m) = Sequential::from_config(inner, 0) {
                plan.sub = plans_from_model(&m);
            }
        }
        plans.push(plan);
    }
    plans
}

/// Keras' vars of one layer as nabla's weights (`LAYER/kernel`, ...), converted.
fn convert_layer(
    plan: &LayerPlan,
    stored: &StoredLayer,
) -> std::result::Result<Vec<(String, Tensor)>, String> {
    // A recurrent layer's weights are its cell's.
    let vars: &[StoredTensor] = match stored.part("cell") {
        Some(cell) if stored.vars.is_empty() => &cell.vars,
        _ => &stored.vars,
    };
    let t = |s: &StoredTensor| Tensor::from_vec(s.values.clone(), &s.shape);
    let named = |w: &str, x: Tensor| (format!("{}/{w}", plan.name), x);
    let want = |n: &[usize]| {
        if n.contains(&vars.len()) {
            Ok(())
        } else {
            Err(format!(
                "the file holds {} weight(s) for it, a {} has {n:?}",
                vars.len(),
                plan.class
            ))
        }
    };
    let mut out = Vec::new();
    match plan.class.as_str() {
        "Dense" => {
            want(&[1, 2])?;
            let k = &vars[0];
            let kernel = match &plan.row_perm {
                Some(p) => {
                    let [rows, cols] = k.shape[..] else {
                        return Err(format!("kernel of shape {:?}, expected 2-D", k.shape));
                    };
                    if rows != p.len() {
                        return Err(format!(
                            "kernel has {rows} rows, the flattened feature map {} values",
                            p.len()
                        ));
                    }
                    let mut v = Vec::with_capacity(rows * cols);
                    for &r in p {
                        v.extend_from_slice(&k.values[r * cols..(r + 1) * cols]);
                    }
                    Tensor::from_vec(v, &[rows, cols])
                }
                None => t(k),
            };
            out.push(named("kernel", kernel));
            if let Some(b) = vars.get(1) {
                out.push(named("bias", t(b)));
            }
        }
        "Conv2D" | "Conv2DTranspose" => {
            want(&[1, 2])?;
            if vars[0].shape.len() != 4 {
                return Err(format!("kernel of shape {:?}, expected 4-D", vars[0].shape));
            }
            let k = t(&vars[0])
                .permute(&[3, 2, 0, 1])
                .map_err(|e| e.to_string())?
                .contiguous();
            out.push(named("kernel", k));
            if let Some(b) = vars.get(1) {
                out.push(named("bias", t(b)));
            }
        }
        "BatchNormalization" => {
            let n = 2 + plan.center as usize + plan.scale as usize;
            want(&[n])?;
            let c = vars[0].shape.iter().product::<usize>();
            let mut it = vars.iter();
            let mut next = || t(it.next().expect("counted above"));
            let gamma = if plan.scale {
                next()
            } else {
                Tensor::from_vec(vec![1.0; c], &[c])
            };
            let beta = if plan.center {
                next()
            } else {
                Tensor::from_vec(vec![0.0; c], &[c])
            };
            out.push(named("gamma", gamma));
            out.push(named("beta", beta));
            out.push(named("moving_mean", next()));
            out.push(named("moving_variance", next()));
        }
        "Conv1D" => {
            // nabla's Conv1D kernel is Keras' [K, C, filters].
            want(&[1, 2])?;
            out.push(named("kernel", t(&vars[0])));
            if let Some(b) = vars.get(1) {
                out.push(named("bias", t(b)));
            }
        }
        "LSTM" | "GRU" | "SimpleRNN" => {
            // The same layouts and gate orders in both (see nn/layers/lstm.rs, gru.rs).
            want(&[2, 3])?;
            out.push(named("kernel", t(&vars[0])));
            out.push(named("recurrent_kernel", t(&vars[1])));
            if let Some(b) = vars.get(2) {
                out.push(named("bias", t(b)));
            }
        }
        "Bidirectional" => {
            want(&[0])?;
            if plan.sub.len() != 2 {
                return Err("its forward and backward layers are unknown".into());
            }
            for sub in &plan.sub {
                let part = stored
                    .part(&sub.key)
                    .ok_or_else(|| format!("no {} group", sub.key))?;
                // The sub plans carry nabla's full names already.
                out.extend(convert_layer(sub, part).map_err(|e| format!("{}: {e}", sub.key))?);
            }
        }
        "Embedding" => {
            want(&[1])?;
            out.push(named("embeddings", t(&vars[0])));
        }
        _ => want(&[0])?,
    }
    Ok(out)
}

/// Whether a Keras class is a model (nested inside another, its layers are in `sub`).
fn is_model(class: &str) -> bool {
    matches!(class, "Functional" | "Sequential" | "Model")
}

/// Puts the file's weights into the model, all or nothing; every problem (a layer the
/// file lacks, a shape that differs, weights nobody takes) is listed, naming the layer
/// and the tensor.
fn assign(
    model: &mut Sequential,
    plans: &[LayerPlan],
    stored: &[StoredLayer],
    file: &Path,
) -> Result<()> {
    let mut problems = Vec::new();
    let mut failed = Vec::new();
    let mut values: BTreeMap<String, Tensor> = BTreeMap::new();
    gather(
        plans,
        stored,
        "",
        "layers",
        &mut problems,
        &mut failed,
        &mut values,
    );
    let params = model.params();
    let mut ordered = Vec::with_capacity(params.len());
    for p in &params {
        let want = p.var.shape();
        match values.remove(&p.name) {
            // A layer with a problem said already is not listed again per tensor.
            None if failed.iter().any(|f| p.name.starts_with(&format!("{f}/"))) => {}
            None => problems.push(format!("tensor '{}' {want:?}: no value in the file", p.name)),
            Some(t) if t.shape() != want.as_slice() => problems.push(format!(
                "tensor '{}': the file has shape {:?} (converted to nabla's layout), the model needs {want:?}",
                p.name,
                t.shape()
            )),
            Some(t) => ordered.push(t),
        }
    }
    if !problems.is_empty() {
        return Err(Error::format(file, problems.join("; ")));
    }
    model.set_weights(&ordered)
}

/// The weights of `plans` (layers of the model, or of a nested model named `prefix`)
/// from the file's groups `stored` (at `path`), as nabla's named tensors.
fn gather(
    plans: &[LayerPlan],
    stored: &[StoredLayer],
    prefix: &str,
    path: &str,
    problems: &mut Vec<String>,
    failed: &mut Vec<String>,
    values: &mut BTreeMap<String, Tensor>,
) {
    let by_name: BTreeMap<&str, &StoredLayer> = stored
        .iter()
        .filter_map(|s| s.name.as_deref().map(|n| (n, s)))
        .collect();
    let by_key: BTreeMap<&str, &StoredLayer> = stored.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut used = std::collections::BTreeSet::new();
    let empty = StoredLayer {
        key: String::new(),
        name: None,
        vars: Vec::new(),
        parts: Vec::new(),
    };
    for plan in plans {
        let full = format!("{prefix}{}", plan.name);
        // A file with names is matched by name only; an older one by Keras' keys.
        let found = if by_name.is_empty() {
            by_key.get(plan.key.as_str())
        } else {
            by_name.get(plan.name.as_str())
        };
        let Some(s) = found else {
            // A layer without weights need not be in the file.
            if is_model(&plan.class) || convert_layer(plan, &empty).is_err() {
                failed.push(full.clone());
                problems.push(format!(
                    "layer '{full}' ({}): not in the file (looked for {path}/{}/vars{})",
                    plan.class,
                    plan.key,
                    if by_name.is_empty() {
                        String::new()
                    } else {
                        format!(" named '{}'", plan.name)
                    }
                ));
            }
            continue;
        };
        used.insert(s.key.as_str());
        if is_model(&plan.class) {
            let inner: &[StoredLayer] = s.part("layers").map_or(&[], |l| &l.parts);
            gather(
                &plan.sub,
                inner,
                &format!("{full}/"),
                &format!("{path}/{}/layers", s.key),
                problems,
                failed,
                values,
            );
            continue;
        }
        match convert_layer(plan, s) {
            Ok(ws) => values.extend(ws.into_iter().map(|(n, t)| (format!("{prefix}{n}"), t))),
            Err(why) => {
                failed.push(full.clone());
                problems.push(format!(
                    "layer '{full}' ({}), {path}/{}/vars: {why}",
                    plan.class, s.key
                ))
            }
        }
    }
    for s in stored {
        if !used.contains(s.key.as_str()) && s.weight_count() > 0 {
            problems.push(format!(
                "{path}/{}{}: {} weight(s) that no layer of the model takes",
                s.key,
                s.name
                    .as_ref()
                    .map_or(String::new(), |n| format!(" ('{n}')")),
                s.weight_count()
            ));
        }
    }
}
