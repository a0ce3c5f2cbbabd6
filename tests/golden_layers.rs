//! Layers against PyTorch: outputs and gradients from JSON files written by scripts in
//! `scripts/golden/` (see there for what each case computes):
//! - UpSampling2D and Conv2DTranspose: `upsample_convtranspose.json`
//!   (`upsample_convtranspose.py`);
//! - Embedding, Conv1D, MaxPooling1D, AveragePooling1D: `sequence_layers.json`
//!   (`sequence_layers.py`), weights in Keras' layouts;
//! - LSTM: `lstm.json` (`lstm.py`), Keras' layouts set on a `torch.nn.LSTM`;
//! - GRU: `gru.json` (`gru.py`), Keras' layouts set on a `torch.nn.GRU` with its gate
//!   blocks permuted (Keras z, r, h; PyTorch r, z, n), compared in Keras' layout.
//! - Bidirectional(LSTM), concat: `bidirectional.json` (`bidirectional.py`), against
//!   `torch.nn.LSTM(bidirectional=True)`.

use nabla::layers::keras::*;
use nabla::layers::{InterpolationMode, LayerConfig, Padding1D, PaddingMode};
use nabla::ops::elementwise::{mul, sum};
use nabla::training::Sequential;
use nabla::{Tensor, Var};
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
            (g - w).abs() <= 1e-4 * scale,
            "{what}[{i}]: nabla {g}, PyTorch {w}"
        );
    }
}

#[test]
fn upsampling_and_conv_transpose_match_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/upsample_convtranspose.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for (k, c) in cases.iter().enumerate() {
        let xs = shape(&c["x_shape"]);
        let layer: LayerConfig = match c["layer"].as_str().unwrap() {
            "UpSampling2D" => {
                let size = shape(&c["size"]);
                let mode = match c["interpolation"].as_str().unwrap() {
                    "nearest" => InterpolationMode::Nearest,
                    _ => InterpolationMode::Bilinear,
                };
                let mut u = UpSampling2D(1).interpolation(mode);
                u.size = (size[0], size[1]);
                u.into()
            }
            _ => {
                let padding = match c["padding"].as_str().unwrap() {
                    "same" => Same,
                    _ => Valid,
                };
                Conv2DTranspose(
                    c["filters"].as_u64().unwrap() as usize,
                    c["kernel_size"].as_u64().unwrap() as usize,
                )
                .strides(c["strides"].as_u64().unwrap() as usize)
                .padding(padding)
                .into()
            }
        };
        let what = format!("case {k} ({} {})", c["layer"], c["padding"]);
        let mut m = Sequential::new(&xs[1..]);
        m.add(layer).unwrap();
        let params = m.params();
        if !params.is_empty() {
            let ks = params[0].var.shape();
            m.set_weights(&[
                Tensor::from_vec(floats(&c["kernel"]), &ks),
                Tensor::from_vec(floats(&c["bias"]), &[ks[1]]),
            ])
            .unwrap();
        }
        let x = Var::parameter(Tensor::from_vec(floats(&c["x"]), &xs));
        let y = m.forward(&x, true).unwrap();
        assert_eq!(y.shape(), shape(&c["y_shape"]), "{what}");
        close(&format!("{what} y"), y.value().data(), &floats(&c["y"]));
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        close(
            &format!("{what} dx"),
            x.grad().unwrap().data(),
            &floats(&c["dx"]),
        );
        if !params.is_empty() {
            let dk = params[0].var.grad().unwrap();
            close(
                &format!("{what} dkernel"),
                dk.data(),
                &floats(&c["dkernel"]),
            );
            let db = params[1].var.grad().unwrap();
            close(&format!("{what} dbias"), db.data(), &floats(&c["dbias"]));
        }
    }
}

#[test]
fn sequence_layers_match_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/sequence_layers.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    let int = |c: &Value, k: &str| c[k].as_u64().unwrap() as usize;
    for (k, c) in cases.iter().enumerate() {
        let xs = shape(&c["x_shape"]);
        let class = c["layer"].as_str().unwrap();
        let pool_padding = || match c["padding"].as_str().unwrap() {
            "same" => PaddingMode::Same,
            _ => PaddingMode::Valid,
        };
        let layer: LayerConfig = match class {
            "Embedding" => Embedding(int(c, "input_dim"), int(c, "output_dim")).into(),
            "Conv1D" => Conv1D(int(c, "filters"), int(c, "kernel_size"))
                .strides(int(c, "strides"))
                .dilation_rate(int(c, "dilation_rate"))
                .padding(match c["padding"].as_str().unwrap() {
                    "same" => Padding1D::Same,
                    "causal" => Padding1D::Causal,
                    _ => Padding1D::Valid,
                })
                .activation(match c["activation"].as_str().unwrap() {
                    "relu" => Relu,
                    _ => Linear,
                })
                .into(),
            _ => {
                let p = int(c, "pool_size");
                let mut pool = if class == "MaxPooling1D" {
                    MaxPooling1D(p)
                } else {
                    AveragePooling1D(p)
                };
                if let Some(s) = c["strides"].as_u64() {
                    pool = pool.strides(s as usize);
                }
                pool.padding(pool_padding()).into()
            }
        };
        let what = format!("case {k} ({class} {})", c["padding"]);
        // The time axis is None: every case also runs the per-batch shape path.
        let input: Vec<Option<usize>> = std::iter::once(None)
            .chain(xs[2..].iter().map(|&d| Some(d)))
            .collect();
        let mut m = Sequential::new(&input[..]);
        m.add(layer).unwrap();
        let params = m.params();
        match class {
            "Embedding" => m
                .set_weights(&[Tensor::from_vec(
                    floats(&c["embeddings"]),
                    &params[0].var.shape(),
                )])
                .unwrap(),
            "Conv1D" => {
                let ks = params[0].var.shape(); // [K, C, F], Keras' layout
                m.set_weights(&[
                    Tensor::from_vec(floats(&c["kernel"]), &ks),
                    Tensor::from_vec(floats(&c["bias"]), &[ks[2]]),
                ])
                .unwrap()
            }
            _ => assert!(params.is_empty()),
        }
        let x = Tensor::from_vec(floats(&c["x"]), &xs);
        let x = if class == "Embedding" {
            Var::constant(x)
        } else {
            Var::parameter(x)
        };
        let y = m.forward(&x, true).unwrap();
        assert_eq!(y.shape(), shape(&c["y_shape"]), "{what}");
        close(
            &format!("{what} y"),
            &y.value().to_f32_vec(),
            &floats(&c["y"]),
        );
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
        match class {
            "Embedding" => close(
                &format!("{what} dembeddings"),
                &grad(&params[0].var),
                &floats(&c["dembeddings"]),
            ),
            "Conv1D" => {
                close(&format!("{what} dx"), &grad(&x), &floats(&c["dx"]));
                close(
                    &format!("{what} dkernel"),
                    &grad(&params[0].var),
                    &floats(&c["dkernel"]),
                );
                close(
                    &format!("{what} dbias"),
                    &grad(&params[1].var),
                    &floats(&c["dbias"]),
                );
            }
            _ => close(&format!("{what} dx"), &grad(&x), &floats(&c["dx"])),
        }
    }
}

#[test]
fn lstm_matches_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/lstm.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    let int = |c: &Value, k: &str| c[k].as_u64().unwrap() as usize;
    for (k, c) in cases.iter().enumerate() {
        let (n, t, f, u) = (int(c, "n"), int(c, "t"), int(c, "f"), int(c, "units"));
        let seq = c["return_sequences"].as_bool().unwrap();
        let use_bias = c["use_bias"].as_bool().unwrap();
        let what = format!("case {k} (seq {seq}, bias {use_bias})");
        // The time axis is None: each batch brings its own length.
        let mut m = Sequential::new(&[None, Some(f)][..]);
        m.add(LSTM(u).return_sequences(seq).use_bias(use_bias))
            .unwrap();
        let mut weights = vec![
            Tensor::from_vec(floats(&c["kernel"]), &[f, 4 * u]),
            Tensor::from_vec(floats(&c["recurrent_kernel"]), &[u, 4 * u]),
        ];
        if use_bias {
            weights.push(Tensor::from_vec(floats(&c["bias"]), &[4 * u]));
        }
        m.set_weights(&weights).unwrap();
        let params = m.params();
        let x = Var::parameter(Tensor::from_vec(floats(&c["x"]), &[n, t, f]));
        let y = m.forward(&x, true).unwrap();
        assert_eq!(y.shape(), shape(&c["y_shape"]), "{what}");
        close(
            &format!("{what} y"),
            &y.value().to_f32_vec(),
            &floats(&c["y"]),
        );
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
        close(&format!("{what} dx"), &grad(&x), &floats(&c["dx"]));
        let names = ["dkernel", "drecurrent_kernel", "dbias"];
        assert_eq!(params.len(), if use_bias { 3 } else { 2 }, "{what}");
        for (p, name) in params.iter().zip(names) {
            close(&format!("{what} {name}"), &grad(&p.var), &floats(&c[name]));
        }
    }
}

#[test]
fn gru_matches_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/gru.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    let int = |c: &Value, k: &str| c[k].as_u64().unwrap() as usize;
    for (k, c) in cases.iter().enumerate() {
        let (n, t, f, u) = (int(c, "n"), int(c, "t"), int(c, "f"), int(c, "units"));
        let seq = c["return_sequences"].as_bool().unwrap();
        let use_bias = c["use_bias"].as_bool().unwrap();
        let what = format!("case {k} (seq {seq}, bias {use_bias})");
        // The time axis is None: each batch brings its own length.
        let mut m = Sequential::new(&[None, Some(f)][..]);
        m.add(GRU(u).return_sequences(seq).use_bias(use_bias))
            .unwrap();
        let mut weights = vec![
            Tensor::from_vec(floats(&c["kernel"]), &[f, 3 * u]),
            Tensor::from_vec(floats(&c["recurrent_kernel"]), &[u, 3 * u]),
        ];
        if use_bias {
            weights.push(Tensor::from_vec(floats(&c["bias"]), &[2, 3 * u]));
        }
        m.set_weights(&weights).unwrap();
        let params = m.params();
        let x = Var::parameter(Tensor::from_vec(floats(&c["x"]), &[n, t, f]));
        let y = m.forward(&x, true).unwrap();
        assert_eq!(y.shape(), shape(&c["y_shape"]), "{what}");
        close(
            &format!("{what} y"),
            &y.value().to_f32_vec(),
            &floats(&c["y"]),
        );
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
        close(&format!("{what} dx"), &grad(&x), &floats(&c["dx"]));
        let names = ["dkernel", "drecurrent_kernel", "dbias"];
        assert_eq!(params.len(), if use_bias { 3 } else { 2 }, "{what}");
        for (p, name) in params.iter().zip(names) {
            close(&format!("{what} {name}"), &grad(&p.var), &floats(&c[name]));
        }
    }
}

#[test]
fn bidirectional_lstm_matches_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/bidirectional.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    let int = |c: &Value, k: &str| c[k].as_u64().unwrap() as usize;
    for (k, c) in cases.iter().enumerate() {
        let (n, t, f, u) = (int(c, "n"), int(c, "t"), int(c, "f"), int(c, "units"));
        let seq = c["return_sequences"].as_bool().unwrap();
        let what = format!("case {k} (seq {seq})");
        let mut m = Sequential::new(&[None, Some(f)][..]);
        m.add(Bidirectional(LSTM(u).return_sequences(seq))).unwrap();
        let dirs = ["forward", "backward"];
        let mut weights = vec![];
        for d in dirs {
            weights.push(Tensor::from_vec(floats(&c[d]["kernel"]), &[f, 4 * u]));
            weights.push(Tensor::from_vec(
                floats(&c[d]["recurrent_kernel"]),
                &[u, 4 * u],
            ));
            weights.push(Tensor::from_vec(floats(&c[d]["bias"]), &[4 * u]));
        }
        m.set_weights(&weights).unwrap();
        let params = m.params();
        assert_eq!(params[3].name, "bidirectional/backward_lstm/kernel");
        let x = Var::parameter(Tensor::from_vec(floats(&c["x"]), &[n, t, f]));
        let y = m.forward(&x, true).unwrap();
        assert_eq!(y.shape(), shape(&c["y_shape"]), "{what}");
        close(
            &format!("{what} y"),
            &y.value().to_f32_vec(),
            &floats(&c["y"]),
        );
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
        close(&format!("{what} dx"), &grad(&x), &floats(&c["dx"]));
        let names = ["dkernel", "drecurrent_kernel", "dbias"];
        for (i, p) in params.iter().enumerate() {
            let (d, name) = (dirs[i / 3], names[i % 3]);
            close(
                &format!("{what} {d} {name}"),
                &grad(&p.var),
                &floats(&c[d][name]),
            );
        }
    }
}
