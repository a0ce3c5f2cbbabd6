//! Recurrent layers' states in whole models, against real Keras 3 (torch backend):
//! `return_state`, `initial_state` from model inputs, an encoder-decoder that hands its
//! final h and c to the decoder, and Bidirectional with `return_state` and initial
//! states. Golden values in `tests/golden/rnn_state_layers.json`, written by
//! `scripts/golden/rnn_state_layers.py` (see there for the models and the batch, which
//! has post- and pre-padding, a hole and an all-padding row). Every output, the
//! gradient of every weight and of every initial state are compared.
//!
//! Also here: recurrent dropout at the layer level (inference unaffected, training
//! draws one mask per sample that changes the output, the config round trip), and the
//! errors for wrong initial states.

use nabla::layers::keras::*;
use nabla::layers::{LayerConfig, MergeMode};
use nabla::ops::elementwise::{add, mul, sum};
use nabla::training::{Model, SymbolicTensor};
use nabla::{Rng, Tensor, Var};
use serde_json::Value;

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

/// The model of one golden case, its layers named as in the script.
fn build(kind: &str, v: usize, d: usize, u: usize, k: usize, t: usize) -> Model {
    let emb = |name: &str, x: &SymbolicTensor| {
        Embedding(v, d).mask_zero(true).named(name).call(x).unwrap()
    };
    let x = NamedInput("ids", &[t]);
    let e = emb("embedding", &x);
    let state = |name: &str| NamedInput(name, &[u]);
    let (inputs, outputs): (Vec<SymbolicTensor>, Vec<SymbolicTensor>) = match kind {
        "lstm_states" => {
            let (h0, c0) = (state("h0"), state("c0"));
            let outs = LSTM(u)
                .return_sequences(true)
                .return_state(true)
                .named("lstm")
                .call_outputs(&[&e, &h0, &c0])
                .unwrap();
            (vec![x, h0, c0], outs)
        }
        "gru_states" => {
            let h0 = state("h0");
            let outs = GRU(u)
                .return_state(true)
                .named("gru")
                .call_outputs(&[&e, &h0])
                .unwrap();
            (vec![x, h0], outs)
        }
        "simple_rnn_states" => {
            let h0 = state("h0");
            let outs = SimpleRNN(u)
                .return_sequences(true)
                .return_state(true)
                .named("simple_rnn")
                .call_outputs(&[&e, &h0])
                .unwrap();
            (vec![x, h0], outs)
        }
        "encoder_decoder" => {
            let y = NamedInput("ids2", &[t]);
            let enc = LSTM(u)
                .return_state(true)
                .named("encoder")
                .call_outputs(&[&e])
                .unwrap();
            let de = emb("embedding_1", &y);
            let s = LSTM(u)
                .return_sequences(true)
                .named("decoder")
                .call_outputs(&[&de, &enc[1], &enc[2]])
                .unwrap()
                .remove(0);
            let out = Dense(k).named("dense").call(&s).unwrap();
            (vec![x, y], vec![out])
        }
        "bilstm_states" => {
            let outs = Bidirectional(LSTM(u).return_state(true))
                .named("bidirectional")
                .call_outputs(&[&e])
                .unwrap();
            (vec![x], outs)
        }
        "bigru_states_seq" => {
            let (fh0, bh0) = (state("fh0"), state("bh0"));
            let outs = Bidirectional(GRU(u).return_sequences(true).return_state(true))
                .merge_mode(MergeMode::Sum)
                .named("bidirectional")
                .call_outputs(&[&e, &fh0, &bh0])
                .unwrap();
            (vec![x, fh0, bh0], outs)
        }
        _ => panic!("unknown model {kind}"),
    };
    let ins: Vec<&SymbolicTensor> = inputs.iter().collect();
    let outs: Vec<&SymbolicTensor> = outputs.iter().collect();
    Model::functional(&ins, &outs, 0).unwrap()
}

#[test]
fn states_match_keras() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/rnn_state_layers.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for c in cases {
        let kind = c["model"].as_str().unwrap();
        let int = |key: &str| c[key].as_u64().unwrap() as usize;
        let ids_shape = shape(&c["ids_shape"]);
        let (n, t) = (ids_shape[0], ids_shape[1]);
        let (v, d, u, k) = (int("vocab"), int("dim"), int("units"), int("classes"));
        let mut m = build(kind, v, d, u, k, t);

        // Weights by name (nabla's names are Keras' paths without the `*_cell` part).
        let entries = c["params"].as_array().unwrap();
        let params = m.params();
        assert_eq!(params.len(), entries.len(), "{kind}: weight count");
        for e in entries {
            let name = e["name"].as_str().unwrap();
            let p = params
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("{kind}: no weight {name}"));
            p.var
                .set_value(Tensor::from_vec(floats(&e["value"]), &shape(&e["shape"])));
        }

        let mut xs = vec![Var::constant(Tensor::from_vec(floats(&c["ids"]), &[n, t]))];
        if kind == "encoder_decoder" {
            xs.push(Var::constant(Tensor::from_vec(floats(&c["ids2"]), &[n, t])));
        }
        let states: Vec<Var> = c["states"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Var::parameter(Tensor::from_vec(floats(&s["value"]), &[n, u])))
            .collect();
        xs.extend(states.iter().cloned());
        let outs = m.call_many(&xs, false).unwrap();
        let want = c["outputs"].as_array().unwrap();
        assert_eq!(outs.len(), want.len(), "{kind}: outputs");
        let mut total: Option<Var> = None;
        for (j, (o, w)) in outs.iter().zip(want).enumerate() {
            assert_eq!(o.shape(), shape(&w["shape"]), "{kind} output {j}");
            close(
                &format!("{kind} output {j}"),
                &o.value().to_f32_vec(),
                &floats(&w["value"]),
            );
            let r = Var::constant(Tensor::from_vec(floats(&w["r"]), &o.shape()));
            let term = sum(&mul(o, &r).unwrap());
            total = Some(match total {
                None => term,
                Some(acc) => add(&acc, &term).unwrap(),
            });
        }
        total.unwrap().backward();
        for e in entries {
            let name = e["name"].as_str().unwrap();
            let p = params.iter().find(|p| p.name == name).unwrap();
            close(
                &format!("{kind} d{name}"),
                &p.var.grad().unwrap().to_f32_vec(),
                &floats(&e["grad"]),
            );
        }
        for (s, w) in states.iter().zip(c["states"].as_array().unwrap()) {
            let name = w["name"].as_str().unwrap();
            close(
                &format!("{kind} d{name}"),
                &s.grad().unwrap().to_f32_vec(),
                &floats(&w["grad"]),
            );
        }
    }
}

fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect(),
        shape,
    )
}

#[test]
fn recurrent_dropout_acts_only_while_training() {
    let layers: Vec<(&str, LayerConfig)> = vec![
        ("LSTM", LSTM(6).recurrent_dropout(0.5).into()),
        ("GRU", GRU(6).recurrent_dropout(0.5).into()),
        (
            "SimpleRNN",
            SimpleRNN(6).recurrent_dropout(0.5).dropout(0.2).into(),
        ),
    ];
    for (what, layer) in layers {
        let x = Input(&[7, 3]);
        let y = layer.clone().call(&x).unwrap();
        let mut m = Model::functional(&[&x], &[&y], 1).unwrap();
        let mut plain = Model::functional(
            &[&x],
            &[&layer_without_dropout(&layer).call(&x).unwrap()],
            1,
        )
        .unwrap();
        plain.set_weights(&m.get_weights()).unwrap();
        let xs = random(&[4, 7, 3], &mut Rng::new(5));
        let infer = m.call_many(&[Var::constant(xs.clone())], false).unwrap();
        let want = plain
            .call_many(&[Var::constant(xs.clone())], false)
            .unwrap();
        assert_eq!(
            infer[0].value().to_f32_vec(),
            want[0].value().to_f32_vec(),
            "{what}: inference must not drop"
        );
        let train = m.call_many(&[Var::constant(xs.clone())], true).unwrap();
        assert_ne!(
            train[0].value().to_f32_vec(),
            want[0].value().to_f32_vec(),
            "{what}: training must drop"
        );
        // The rate is saved with the model and read back.
        let cfg = serde_json::to_string(&m.config()).unwrap();
        assert!(cfg.contains(r#""recurrent_dropout":0.5"#), "{what}: {cfg}");
        let back = Model::from_config(&serde_json::from_str(&cfg).unwrap(), 0).unwrap();
        assert_eq!(back.config(), m.config(), "{what}");
    }
}

/// The same layer config with both dropouts off.
fn layer_without_dropout(layer: &LayerConfig) -> LayerConfig {
    let mut v = serde_json::to_value(layer).unwrap();
    let cfg = v["config"].as_object_mut().unwrap();
    cfg.remove("dropout");
    cfg.remove("recurrent_dropout");
    serde_json::from_value(v).unwrap()
}

#[test]
fn wrong_states_get_clear_errors() {
    let x = Input(&[5, 3]);
    let h = Input(&[4]);
    let wide = Input(&[6]);
    let e = LSTM(4).call_outputs(&[&x, &h]).unwrap_err().to_string();
    assert!(
        e.contains("(LSTM) takes the sequence and 2 initial states (h, c), got 2 inputs"),
        "{e}"
    );
    let e = GRU(4).call_outputs(&[&x, &wide]).unwrap_err().to_string();
    assert!(
        e.contains("(GRU): initial state 1 must be [batch, 4], got [batch, 6]"),
        "{e}"
    );
    let e = LSTM(4).return_state(true).call(&x).unwrap_err().to_string();
    assert!(
        e.contains("returns 3 tensors") && e.contains("call_outputs"),
        "{e}"
    );
    let e = Bidirectional(GRU(4))
        .call_outputs(&[&x, &h])
        .unwrap_err()
        .to_string();
    assert!(e.contains("two equal halves"), "{e}");
    let e = LSTM(4)
        .recurrent_dropout(1.0)
        .call(&x)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("recurrent_dropout must be in [0, 1), got 1"),
        "{e}"
    );
    // A sequential model takes layers with one output.
    let mut seq = Model::new(&[5, 3]);
    let e = seq.add(LSTM(4).return_state(true)).unwrap_err().to_string();
    assert!(e.contains("returns 3 tensors"), "{e}");
}

/// The README's encoder-decoder, small: the decoder reads tokens that say nothing, so
/// its only way to know the first source token is the encoder's final h and c handed
/// over as its initial state; it learns to name that token (1.0 by epoch 18), which
/// the decoder alone cannot.
#[test]
fn an_encoder_decoder_learns_through_its_states() {
    let with_states = encoder_decoder_accuracy(true);
    assert!(
        *with_states.last().unwrap() > 0.9,
        "accuracy by epoch {with_states:?}"
    );
    // The control: the decoder alone, starting from zeros, has nothing to go on and
    // only memorises some of the 512 samples (about a quarter after 20 epochs).
    let alone = encoder_decoder_accuracy(false);
    assert!(*alone.last().unwrap() < 0.5, "accuracy by epoch {alone:?}");
}

/// Training accuracy by epoch of the encoder-decoder (`hand_over`), or of its decoder
/// alone.
fn encoder_decoder_accuracy(hand_over: bool) -> Vec<f32> {
    let (v, t, n) = (10, 5, 512);
    let (src, dst) = (Input(&[None]), Input(&[None]));
    let enc = Embedding(v, 8).mask_zero(true).call(&src).unwrap();
    let states = LSTM(24).return_state(true).call_outputs(&[&enc]).unwrap();
    let dec = Embedding(v, 8).mask_zero(true).call(&dst).unwrap();
    let dec_inputs = match hand_over {
        true => vec![&dec, &states[1], &states[2]],
        false => vec![&dec],
    };
    let last = LSTM(24).call_outputs(&dec_inputs).unwrap().remove(0);
    let word = Dense(v).activation(Softmax).call(&last).unwrap();
    let mut model = match hand_over {
        true => Model::functional(&[&src, &dst], &[&word], 0).unwrap(),
        false => Model::functional(&[&dst], &[&word], 0).unwrap(),
    };
    model
        .compile(
            nabla::KerasLoss::SparseCategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            nabla::Optimizer::adam(0.01),
            &["accuracy"],
        )
        .unwrap();
    let mut rng = Rng::new(11);
    let mut ids =
        |k: usize| -> Vec<f32> { (0..k).map(|_| 1.0 + (rng.next_u64() % 9) as f32).collect() };
    let a = Tensor::from_vec(ids(n * t), &[n, t]);
    let b = Tensor::from_vec(ids(n * t), &[n, t]);
    let first: Vec<f32> = a.data().chunks(t).map(|r| r[0]).collect();
    let y = Tensor::from_vec(first, &[n]);
    let history = model
        .fit_many(
            &if hand_over { vec![a, b] } else { vec![b] },
            &[y],
            nabla::training::FitArgs::new()
                .epochs(20)
                .batch_size(64)
                .verbose(0),
        )
        .unwrap();
    history.get("accuracy").unwrap().to_vec()
}
