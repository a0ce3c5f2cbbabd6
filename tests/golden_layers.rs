//! UpSampling2D and Conv2DTranspose against PyTorch: outputs and gradients from
//! `tests/golden/upsample_convtranspose.json`, written by
//! `scripts/golden/upsample_convtranspose.py` (see there for what each case computes).

use nabla::layers::keras::*;
use nabla::layers::{InterpolationMode, LayerConfig};
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
