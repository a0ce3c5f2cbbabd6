//! Keras 3 masks through models: `Embedding(mask_zero=True)` makes one, layers pass it
//! on or drop it, `GlobalAveragePooling1D` reads it.
//! - Golden values from real Keras 3 (torch backend): `tests/golden/masking.json`, written
//!   by `scripts/golden/masking.py` (see there for the models and the batches): three
//!   pooling models, and four with recurrent layers (LSTM, GRU, Bidirectional LSTM with
//!   sequences then an average, Bidirectional GRU summed), whose batch also has a row
//!   with a hole in the middle.
//! - A probe layer (defined here, not registered) records the mask each call receives,
//!   so the tests see where a mask arrives: in a Sequential model, in a functional model
//!   with branches and merges, and inside and after a nested model.

use nabla::layers::keras::*;
use nabla::layers::{Dim, ForwardCtx, Layer, LayerConfig, LayerKind, MergeMode, Param};
use nabla::ops::elementwise::{mul, sum};
use nabla::training::{Model, Sequential};
use nabla::{Result, Rng, Tensor, Var};
use serde::Serialize;
use serde_json::Value;
use std::cell::RefCell;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn shape(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: nabla {g}, Keras {w}"
        );
    }
}

#[test]
fn embedding_mask_zero_pools_match_keras() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/masking.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        let kind = c["model"].as_str().unwrap();
        let int = |k: &str| c[k].as_u64().unwrap() as usize;
        let (v, d, u) = (int("vocab"), int("dim"), int("units"));
        // The time axis is None: the mask comes with each batch's length.
        let mut m = Sequential::new(&[None][..]);
        m.add(Embedding(v, d).mask_zero(true)).unwrap();
        let w = &c["weights"];
        let mut weights = vec![Tensor::from_vec(floats(&w["embeddings"]), &[v, d])];
        if kind == "dense_gap" {
            m.add(Dense(u)).unwrap();
            weights.push(Tensor::from_vec(floats(&w["kernel"]), &[d, u]));
            weights.push(Tensor::from_vec(floats(&w["bias"]), &[u]));
        }
        m.add(match kind {
            "gmp" => GlobalMaxPooling1D(),
            _ => GlobalAveragePooling1D(),
        })
        .unwrap();
        m.set_weights(&weights).unwrap();
        let ids = Var::constant(Tensor::from_vec(floats(&c["ids"]), &shape(&c["ids_shape"])));
        let y = m.forward(&ids, true).unwrap();
        assert_eq!(y.shape(), shape(&c["y_shape"]), "{kind}");
        let yv = y.value().to_f32_vec();
        assert!(yv.iter().all(|v| v.is_finite()), "{kind}: {yv:?}");
        close(&format!("{kind} y"), &yv, &floats(&c["y"]));
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        let params = m.params();
        let g = &c["grads"];
        let names = ["embeddings", "kernel", "bias"];
        for (p, name) in params.iter().zip(names) {
            close(
                &format!("{kind} d{name}"),
                &p.var.grad().unwrap().to_f32_vec(),
                &floats(&g[name]),
            );
        }
    }
}

#[test]
fn embedding_mask_zero_recurrent_models_match_keras() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/masking.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["rnn_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for c in cases {
        let kind = c["model"].as_str().unwrap();
        let int = |k: &str| c[k].as_u64().unwrap() as usize;
        let (v, d, u) = (int("vocab"), int("dim"), int("units"));
        let mut m = Sequential::new(&[None][..]);
        m.add(Embedding(v, d).mask_zero(true)).unwrap();
        let layers: Vec<LayerConfig> = match kind {
            "lstm" => vec![LSTM(u).into()],
            "gru" => vec![GRU(u).into()],
            "bilstm_gap" => vec![
                Bidirectional(LSTM(u).return_sequences(true)).into(),
                GlobalAveragePooling1D(),
            ],
            "bigru_sum" => vec![Bidirectional(GRU(u)).merge_mode(MergeMode::Sum).into()],
            _ => panic!("unknown model {kind}"),
        };
        for l in layers {
            m.add(l).unwrap();
        }
        // Keras' trainable_weights order, which is nabla's params() order.
        let entries = c["params"].as_array().unwrap();
        let weights: Vec<Tensor> = entries
            .iter()
            .map(|e| Tensor::from_vec(floats(&e["value"]), &shape(&e["shape"])))
            .collect();
        m.set_weights(&weights).unwrap();
        let ids = Var::constant(Tensor::from_vec(floats(&c["ids"]), &shape(&c["ids_shape"])));
        let y = m.forward(&ids, true).unwrap();
        assert_eq!(y.shape(), shape(&c["y_shape"]), "{kind}");
        let yv = y.value().to_f32_vec();
        assert!(yv.iter().all(|v| v.is_finite()), "{kind}: {yv:?}");
        close(&format!("{kind} y"), &yv, &floats(&c["y"]));
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        let params = m.params();
        assert_eq!(params.len(), entries.len(), "{kind}");
        for (p, e) in params.iter().zip(entries) {
            let name = e["name"].as_str().unwrap();
            assert_eq!(p.var.shape(), shape(&e["shape"]), "{kind} {name}");
            close(
                &format!("{kind} d{name} (nabla {})", p.name),
                &p.var.grad().unwrap().to_f32_vec(),
                &floats(&e["grad"]),
            );
        }
    }
}

thread_local! {
    /// What each probe received: (probe name, the mask as a flat vector, if any).
    static SEEN: RefCell<Vec<(String, Option<Vec<f32>>)>> = const { RefCell::new(Vec::new()) };
}

fn seen() -> Vec<(String, Option<Vec<f32>>)> {
    SEEN.with(|s| s.borrow_mut().drain(..).collect())
}

/// A layer that records the mask it is given and passes value and mask on.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct ProbeConfig {
    name: String,
    /// Only set to wrap the probe in Bidirectional (which reads this field).
    #[serde(skip_serializing_if = "Option::is_none")]
    return_sequences: Option<bool>,
}

fn probe(name: &str) -> LayerConfig {
    LayerConfig::new(ProbeConfig {
        name: name.to_string(),
        return_sequences: None,
    })
}

impl LayerKind for ProbeConfig {
    fn class_name(&self) -> &'static str {
        "Probe"
    }
    fn base_name(&self) -> &'static str {
        "probe"
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn output_shape(&self, _name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Ok(inputs[0].to_vec())
    }
    fn build(&self, name: String, _: &[&[Dim]], _: &mut Rng) -> Result<Box<dyn Layer>> {
        Ok(Box::new(Probe {
            name,
            cfg: self.clone(),
        }))
    }
}

struct Probe {
    name: String,
    cfg: ProbeConfig,
}

impl Layer for Probe {
    fn name(&self) -> &str {
        &self.name
    }
    fn forward(&mut self, x: &Var, ctx: &mut ForwardCtx) -> Result<Var> {
        self.forward_masked(x, None, ctx)
    }
    fn forward_masked(
        &mut self,
        x: &Var,
        mask: Option<&Tensor>,
        _: &mut ForwardCtx,
    ) -> Result<Var> {
        let m = mask.map(|m| m.to_f32_vec());
        SEEN.with(|s| s.borrow_mut().push((self.name.clone(), m)));
        Ok(x.clone())
    }
    fn compute_mask(&self, _x: &Var, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
        Ok(mask.cloned())
    }
    fn params(&self) -> Vec<Param> {
        vec![]
    }
    fn config(&self) -> LayerConfig {
        LayerConfig::new(ProbeConfig {
            name: self.name.clone(),
            ..self.cfg.clone()
        })
    }
}

const IDS: [f32; 8] = [5., 2., 0., 0., 0., 3., 1., 0.]; // [2, 4]
const MASK: [f32; 8] = [1., 1., 0., 0., 0., 1., 1., 0.];

fn ids() -> Var {
    Var::constant(Tensor::from_vec(IDS.to_vec(), &[2, 4]))
}

fn masked(name: &str) -> (String, Option<Vec<f32>>) {
    (name.to_string(), Some(MASK.to_vec()))
}

fn unmasked(name: &str) -> (String, Option<Vec<f32>>) {
    (name.to_string(), None)
}

#[test]
fn sequential_carries_the_mask_until_a_layer_drops_it() {
    let mut m = Sequential::new(&[None][..]);
    m.add(Embedding(8, 3).mask_zero(true)).unwrap();
    m.add(probe("after_embedding")).unwrap();
    m.add(Dense(4)).unwrap();
    m.add(Dropout(0.5)).unwrap();
    m.add(Activation(nabla::Activation::Relu)).unwrap();
    m.add(probe("after_dense_dropout_relu")).unwrap();
    m.add(LSTM(3).return_sequences(true)).unwrap();
    m.add(probe("after_lstm_sequences")).unwrap();
    m.add(Bidirectional(GRU(2).return_sequences(true))).unwrap();
    m.add(probe("after_bigru_sequences")).unwrap();
    m.add(Conv1D(2, 1)).unwrap();
    m.add(probe("after_conv1d")).unwrap();
    m.add(GlobalAveragePooling1D()).unwrap();
    m.forward(&ids(), true).unwrap();
    assert_eq!(
        seen(),
        [
            masked("after_embedding"),
            masked("after_dense_dropout_relu"),
            masked("after_lstm_sequences"),
            masked("after_bigru_sequences"),
            unmasked("after_conv1d"),
        ]
    );
    // The last step only: no mask after it.
    let mut m = Sequential::new(&[None][..]);
    m.add(Embedding(8, 3).mask_zero(true)).unwrap();
    m.add(LSTM(3)).unwrap();
    m.add(probe("after_lstm_last")).unwrap();
    m.forward(&ids(), false).unwrap();
    assert_eq!(seen(), [unmasked("after_lstm_last")]);
    // Without mask_zero there is no mask at all.
    let mut m = Sequential::new(&[None][..]);
    m.add(Embedding(8, 3)).unwrap();
    m.add(probe("no_mask_zero")).unwrap();
    m.forward(&ids(), false).unwrap();
    assert_eq!(seen(), [unmasked("no_mask_zero")]);
}

#[test]
fn functional_branches_merges_and_nested_models_carry_the_mask() {
    // A nested model: its inner layers see the outer mask, its output keeps it.
    let inner_in = Input(&[None, Some(3)]);
    let h = Dense(3).call(&inner_in).unwrap();
    let h = probe("inside_nested").call(&h).unwrap();
    let inner = Model::functional(&[&inner_in], &[&h], 1).unwrap();

    let x = Input(&[None]);
    let e = Embedding(8, 3).mask_zero(true).call(&x).unwrap();
    let a = Dense(3).call(&e).unwrap();
    let a = probe("branch_dense").call(&a).unwrap();
    let b = Conv1D(3, 1).call(&e).unwrap();
    let b = probe("branch_conv").call(&b).unwrap();
    let c = inner.call(&e).unwrap();
    let c = probe("after_nested").call(&c).unwrap();
    // Both masked: the OR; one unmasked: none (Keras' merge rule).
    let both = Add().call_many(&[&a, &c]).unwrap();
    let both = probe("add_masked_masked").call(&both).unwrap();
    let one = Add().call_many(&[&a, &b]).unwrap();
    let one = probe("add_masked_unmasked").call(&one).unwrap();
    let joined = Add().call_many(&[&both, &one]).unwrap();
    let out = GlobalAveragePooling1D().call(&joined).unwrap();
    let mut m = Model::functional(&[&x], &[&out], 2).unwrap();
    m.forward(&ids(), false).unwrap();
    let mut got = seen();
    got.sort_by(|p, q| p.0.cmp(&q.0));
    let mut want = vec![
        masked("branch_dense"),
        unmasked("branch_conv"),
        masked("inside_nested"),
        masked("after_nested"),
        masked("add_masked_masked"),
        unmasked("add_masked_unmasked"),
    ];
    want.sort_by(|p, q| p.0.cmp(&q.0));
    assert_eq!(got, want);
}

#[test]
fn masked_average_ignores_padding_and_all_padding_gives_zeros() {
    // Embedding -> GlobalAveragePooling1D: the mean of the real steps' rows.
    let mut m = Sequential::new(&[None][..]);
    m.add(Embedding(8, 2).mask_zero(true)).unwrap();
    m.add(GlobalAveragePooling1D()).unwrap();
    let table: Vec<f32> = (0..16).map(|i| i as f32).collect();
    m.set_weights(&[Tensor::from_vec(table, &[8, 2])]).unwrap();
    let ids = Var::constant(Tensor::from_vec(vec![5., 2., 0., 0., 0., 0.], &[2, 3]));
    let y = m.forward(&ids, false).unwrap().value().to_f32_vec();
    // Row 0: mean of rows 5 and 2 of the table = ((10+4)/2, (11+5)/2); row 1: zeros.
    assert_eq!(y, [7.0, 8.0, 0.0, 0.0]);
}

#[test]
fn mask_zero_round_trips_through_the_model_json() {
    let mut m = Sequential::new(&[None][..]);
    m.add(Embedding(8, 3).mask_zero(true)).unwrap();
    m.add(GlobalAveragePooling1D()).unwrap();
    let json = serde_json::to_string(&m.config()).unwrap();
    assert!(json.contains(r#""mask_zero":true"#), "{json}");
    let back =
        nabla::training::Model::from_config(&serde_json::from_str(&json).unwrap(), 0).unwrap();
    assert_eq!(serde_json::to_string(&back.config()).unwrap(), json);
    // The rebuilt model masks: the padded row's mean is over its one real step.
    let mut back = back;
    let w = m.get_weights();
    back.set_weights(&w).unwrap();
    let ids = Var::constant(Tensor::from_vec(vec![4., 0., 0.], &[1, 3]));
    let (a, b) = (
        m.forward(&ids, false).unwrap().value().to_f32_vec(),
        back.forward(&ids, false).unwrap().value().to_f32_vec(),
    );
    assert_eq!(a, b);
    assert_eq!(a, w[0].to_f32_vec()[12..15]);
}

#[test]
fn bidirectional_reverses_the_mask_for_its_backward_copy() {
    let inner = LayerConfig::new(ProbeConfig {
        name: "p".into(),
        return_sequences: Some(true),
    });
    let mut m = Sequential::new(&[None][..]);
    m.add(Embedding(8, 3).mask_zero(true)).unwrap();
    m.add(Bidirectional(inner)).unwrap();
    m.add(probe("after_bidirectional")).unwrap();
    m.forward(&ids(), false).unwrap();
    // Each row's steps reversed, as the backward copy's input is.
    let reversed: Vec<f32> = MASK
        .chunks(4)
        .flat_map(|r| r.iter().rev().copied())
        .collect();
    let got = seen();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].0.ends_with("forward_p"), "{got:?}");
    assert_eq!(got[0].1.as_deref(), Some(&MASK[..]));
    assert!(got[1].0.ends_with("backward_p"), "{got:?}");
    assert_eq!(got[1].1.as_deref(), Some(&reversed[..]));
    assert_eq!(got[2], masked("after_bidirectional"));
}
