//! ONNX export (`formats::onnx`, `nabla export`) of every built-in model: the recipes,
//! the autoencoders, the text models and a representative of each zoo family at small
//! input sizes, plus the Keras 3 `.keras` golden models.
//!
//! Always run: each model exports, the file decodes, and its op list is what the
//! model needs; the CLI writes a decodable file from a `.keras` file and from a
//! built-in name.
//!
//! The runtime check (`#[ignore]`d, as it needs Python with onnxruntime): each export,
//! run by onnxruntime through `scripts/onnx_check.py`, gives nabla's `predict` outputs
//! within rtol 1e-3, atol 1e-5. Run it with
//! `NABLA_ONNX_PYTHON=target/onnx-venv/bin/python cargo test --release --test
//! onnx_export -- --include-ignored` (`.ci/run` makes that pinned virtualenv); without
//! the variable the ignored test fails rather than passing unchecked.

use nabla::formats::onnx::{self, proto::ModelProto};
use nabla::layers::keras::*;
use nabla::layers::{
    InterpolationMode, LayerConfig, MergeMode, Padding1D, Padding2D, Pool1dConfig, Pool2dConfig,
};
use nabla::models::{self, text};
use nabla::training::Model;
use nabla::{Sequential, Tensor};
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A model with the inputs it is checked on.
struct Case {
    name: String,
    model: Sequential,
    x: Tensor,
    /// Operator types the export must use (the layers' own).
    needs: &'static [&'static str],
}

/// Uniform values in [0, 1) from a fixed linear congruential sequence.
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn images(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(uniform(shape.iter().product(), seed), shape)
}

/// Token ids `[5, L]` from a vocabulary of `vocab`, with real padding (id 0): at the
/// end, at the start (what the CLI feeds the recurrent models), a hole in the middle,
/// none, and (for `all_pad`) a row of padding only.
fn ids(len: usize, vocab: usize, all_pad: bool) -> Tensor {
    let r = uniform(5 * len, 7);
    let mut v: Vec<f32> = r
        .iter()
        .map(|u| 1.0 + (u * (vocab - 1) as f32).floor())
        .collect();
    let row = |v: &mut Vec<f32>, i: usize, keep: &dyn Fn(usize) -> bool| {
        for t in 0..len {
            if !keep(t) {
                v[i * len + t] = 0.0;
            }
        }
    };
    row(&mut v, 0, &|t| t < len / 2); // padded at the end
    row(&mut v, 1, &|t| t >= len - 3); // padded at the start
    row(&mut v, 2, &|t| !(3..6).contains(&t)); // a hole
    if all_pad {
        row(&mut v, 4, &|_| false);
    }
    Tensor::from_vec(v, &[5, len])
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut add = |name: &str, model: Sequential, x: Tensor, needs: &'static [&'static str]| {
        out.push(Case {
            name: name.to_string(),
            model,
            x,
            needs,
        })
    };
    let seed = 5;
    add(
        "perceptron",
        models::build("perceptron", seed).unwrap(),
        images(&[4, 2], 1),
        &["MatMul", "Sigmoid"],
    );
    add(
        "xor-mlp",
        models::build("xor-mlp", seed).unwrap(),
        images(&[4, 2], 2),
        &["MatMul", "Sigmoid"],
    );
    let mnist = |s| images(&[3, 1, 28, 28], s);
    add(
        "mlp",
        models::build("mlp", seed).unwrap(),
        mnist(3),
        &["Flatten", "MatMul", "Relu", "Softmax"],
    );
    add(
        "simple-convnet",
        models::build("simple-convnet", seed).unwrap(),
        mnist(4),
        &["Conv", "MaxPool"],
    );
    add(
        "deep-convnet",
        models::build("deep-convnet", seed).unwrap(),
        mnist(5),
        &["Conv", "MaxPool", "Softmax"],
    );
    add(
        "keras-cnn",
        models::build("keras-cnn", seed).unwrap(),
        mnist(6),
        &["Conv", "MaxPool"],
    );
    // Trained-looking batch-norm statistics, so the moving mean and variance matter.
    let bn = models::build("mlp-bn", seed).unwrap();
    for p in bn.params() {
        if p.name.ends_with("moving_mean") || p.name.ends_with("moving_variance") {
            let t = p.var.value();
            let v = uniform(t.numel(), 11).iter().map(|u| 0.2 + u).collect();
            p.var.set_value(Tensor::from_vec(v, t.shape()));
        }
    }
    add(
        "mlp-bn",
        bn,
        images(&[3, 1, 28, 28], 7),
        &["BatchNormalization"],
    );
    add(
        "autoencoder",
        models::build("autoencoder", seed).unwrap(),
        mnist(8),
        &["Reshape", "Sigmoid"],
    );
    add(
        "conv-autoencoder",
        models::build("conv-autoencoder", seed).unwrap(),
        mnist(9),
        &["ConvTranspose", "Resize"],
    );
    let (vocab, len, classes) = (40, 12, 5);
    let bow_x = Tensor::from_vec(
        uniform(3 * vocab, 12)
            .iter()
            .map(|u| (*u > 0.7) as u8 as f32)
            .collect(),
        &[3, vocab],
    );
    add(
        "text-bow",
        text::build("text-bow", vocab, len, classes, seed).unwrap(),
        bow_x,
        &["MatMul"],
    );
    add(
        "text-cnn",
        text::build("text-cnn", vocab, len, classes, seed).unwrap(),
        ids(len, vocab, false),
        &["Gather", "Conv", "ReduceMax"],
    );
    for (name, op) in [
        ("text-lstm", "LSTM"),
        ("text-bilstm", "LSTM"),
        ("text-gru", "GRU"),
    ] {
        let needs: &'static [&'static str] = match op {
            "LSTM" => &["Gather", "LSTM", "ScatterElements"],
            _ => &["Gather", "GRU", "ScatterElements"],
        };
        add(
            name,
            text::build(name, vocab, len, classes, seed).unwrap(),
            ids(len, vocab, true),
            needs,
        );
    }
    let cifar = |s| images(&[2, 3, 32, 32], s);
    for (name, needs) in [
        (
            "resnet20",
            &["Conv", "BatchNormalization", "Sum", "GlobalAveragePool"][..],
        ),
        ("se-resnet20", &["Mul", "Sigmoid", "GlobalAveragePool"][..]),
        ("resnet18", &["Conv", "MaxPool", "Sum"][..]),
        ("vgg-small", &["Conv", "MaxPool"][..]),
        ("inception-mini", &["Concat", "Conv"][..]),
    ] {
        let m = models::build_for(name, &[3, 32, 32], 10, seed).unwrap();
        add(name, m, cifar(13), needs);
    }
    let yolo = models::build_for("tiny-yolo", &[1, 64, 64], 3, seed).unwrap();
    add("tiny-yolo", yolo, images(&[2, 1, 64, 64], 14), &["Conv"]);
    let image_layers = image_layers().unwrap();
    add(
        "image-layers",
        image_layers,
        images(&[3, 3, 9, 9], 15),
        &["ConvTranspose", "Pad", "Where", "Erf", "Resize"],
    );
    add(
        "sequence-layers",
        sequence_layers().unwrap(),
        images(&[3, 7, 3], 16),
        &["RNN", "GRU", "LSTM", "Split"],
    );
    add(
        "masked-layers",
        masked_layers().unwrap(),
        ids(8, 20, true),
        &["RNN", "GRU", "LSTM", "ReduceSum"],
    );
    add(
        "nested-shared",
        nested_shared().unwrap(),
        images(&[4, 6], 17),
        &["Tanh"],
    );
    out
}

/// The image layers and options the built-in models leave out: asymmetric zero
/// padding, strided "same" convs, Conv2DTranspose with kernel < stride and "same",
/// pools with "same" padding, bilinear upsampling, every activation but step, ReLU's
/// options, LeakyReLU, and each merge.
fn image_layers() -> nabla::Result<Sequential> {
    let x = Input(&[3, 9, 9]);
    let flat = |t: &nabla::training::SymbolicTensor| -> nabla::Result<_> {
        Dense(5).call(&Flatten().call(t)?)
    };
    let a = ZeroPadding2D(Padding2D::symmetric(1, 2)).call(&x)?;
    let a = Conv2D(4, 3)
        .strides(2)
        .padding(Same)
        .activation(Elu)
        .call(&a)?;
    let a = GlobalMaxPooling2D().call(&a)?;
    let b = Conv2DTranspose(3, 2).strides(3).call(&x)?; // [3, 27, 27], kernel < stride
    let b = Pool2dConfig::average(3).strides(2).padding(Same).call(&b)?;
    let c = UpSampling2D(2)
        .interpolation(InterpolationMode::Bilinear)
        .call(&x)?;
    let c = Conv2D(2, 3).activation(Gelu).call(&c)?;
    let c = Pool2dConfig::max(3).strides(2).padding(Same).call(&c)?;
    let d = Conv2D(4, 3).activation(Swish).call(&x)?;
    let d = LeakyReLU(0.1).call(&d)?;
    let d = ReLU()
        .max_value(0.5)
        .threshold(0.1)
        .negative_slope(0.2)
        .call(&d)?;
    let e = Conv2DTranspose(3, 3)
        .strides(2)
        .padding(Same)
        .activation(Tanh)
        .call(&x)?;
    let e = GlobalAveragePooling2D().call(&e)?;
    let f = Conv2D(3, 1).activation(LeakyRelu).call(&x)?;
    let f = ReLU().max_value(6.0).call(&f)?;
    let f = Reshape(&[3, 81]).call(&f)?;
    let (a, b, c, d, e, f) = (
        flat(&a)?,
        flat(&b)?,
        flat(&c)?,
        flat(&d)?,
        flat(&e)?,
        flat(&f)?,
    );
    let m1 = Subtract().call_many(&[&a, &b])?;
    let m2 = Maximum().call_many(&[&b, &c, &d])?;
    let m3 = Minimum().call_many(&[&c, &d])?;
    let m4 = Average().call_many(&[&d, &e, &f])?;
    let m5 = Multiply().call_many(&[&a, &e, &f])?;
    let m6 = Add().call_many(&[&a, &f])?;
    let all = Concatenate().call_many(&[&m1, &m2, &m3, &m4, &m5, &m6])?;
    let all = BatchNormalization().call(&all)?;
    let y = Dense(4)
        .activation(Softmax)
        .call(&Activation(Sigmoid).call(&all)?)?;
    Model::functional(&[&x], &[&y], 3)
}

/// Sequences `[7, 3]` without a mask: Conv1D (causal, dilated; "same", strided), the
/// 1-D pools, SimpleRNN/GRU/LSTM returning sequences, Bidirectional with every merge.
fn sequence_layers() -> nabla::Result<Sequential> {
    let x = Input(&[7, 3]);
    let a = Conv1D(4, 3)
        .padding(Padding1D::Causal)
        .dilation_rate(2)
        .activation(Relu)
        .call(&x)?;
    let a = Pool1dConfig::max(2).padding(Same).call(&a)?; // [4, 4]
    let a = GlobalAveragePooling1D().call(&a)?;
    let b = Conv1D(3, 2).padding(Padding1D::Same).strides(2).call(&x)?;
    let b = Pool1dConfig::average(2).strides(1).call(&b)?;
    let b = GlobalMaxPooling1D().call(&b)?;
    let s = SimpleRNN(5).return_sequences(true).call(&x)?;
    let s = GRU(4).return_sequences(true).call(&s)?;
    let s = Bidirectional(LSTM(3).return_sequences(true))
        .merge_mode(MergeMode::Sum)
        .call(&s)?;
    let s1 = Bidirectional(GRU(3)).merge_mode(MergeMode::Ave).call(&s)?;
    let s2 = Bidirectional(SimpleRNN(2))
        .merge_mode(MergeMode::Mul)
        .call(&s)?;
    let s3 = Bidirectional(LSTM(2).return_sequences(true)).call(&s)?;
    let s3 = Flatten().call(&s3)?;
    let all = Concatenate().call_many(&[&a, &b, &s1, &s2, &s3])?;
    let y = Dense(3).activation(Softmax).call(&all)?;
    Model::functional(&[&x], &[&y], 4)
}

/// A mask from `Embedding(mask_zero)` through Dense and Dropout (which pass it), the
/// masked average pool, SimpleRNN, Bidirectional GRU, and an Add of two masked
/// sequences (the OR of their masks) into an LSTM.
fn masked_layers() -> nabla::Result<Sequential> {
    let x = Input(&[8]);
    let e = Embedding(20, 4).mask_zero(true).call(&x)?;
    let e = Dense(4).activation(Relu).call(&e)?;
    let e = Dropout(0.3).call(&e)?;
    let a = GlobalAveragePooling1D().call(&e)?;
    let b = SimpleRNN(3).call(&e)?;
    let c = Bidirectional(GRU(3)).call(&e)?;
    let d = Add().call_many(&[&e, &Dense(4).call(&e)?])?;
    let d = LSTM(2).call(&d)?;
    let all = Concatenate().call_many(&[&a, &b, &c, &d])?;
    let y = Dense(3).activation(Softmax).call(&all)?;
    Model::functional(&[&x], &[&y], 5)
}

/// A nested model and a shared layer called twice (its weights written once).
fn nested_shared() -> nabla::Result<Sequential> {
    let inner_x = Input(&[6]);
    let h = Dense(4).activation(Tanh).call(&inner_x)?;
    let h = Dense(6).call(&h)?;
    let mut inner = Model::functional(&[&inner_x], &[&h], 6)?;
    inner.name = "inner".into();
    let x = Input(&[6]);
    let shared = LayerConfig::from(Dense(6).activation(Relu)).shared();
    let a = shared.call(&x)?;
    let b = inner.call(&a)?;
    let c = shared.call(&b)?;
    let y = Dense(2)
        .activation(Softmax)
        .call(&Add().call_many(&[&a, &c])?)?;
    Model::functional(&[&x], &[&y], 7)
}

fn decode(bytes: &[u8]) -> ModelProto {
    ModelProto::decode(bytes).expect("the export decodes as an ONNX ModelProto")
}

#[test]
fn every_builtin_model_exports_and_decodes() {
    for c in cases() {
        let m = onnx::to_onnx(&c.model).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let back = decode(&m.to_bytes());
        assert_eq!(back.ir_version, 8, "{}", c.name);
        assert_eq!(back.opset_import[0].version, 17, "{}", c.name);
        let g = back.graph.unwrap();
        assert_eq!(g.input[0].name, c.model.inputs()[0].name, "{}", c.name);
        assert_eq!(g.output[0].name, c.model.output_names()[0], "{}", c.name);
        for op in c.needs {
            assert!(
                m.op_types.iter().any(|o| o == op),
                "{}: no {op} in {:?}",
                c.name,
                m.op_types
            );
        }
        // Every weight is in the file, once (shared layers too).
        let weights: usize = c.model.params().iter().map(|p| p.var.value().numel()).sum();
        let written: usize = g
            .initializer
            .iter()
            .filter(|t| t.data_type == 1)
            .map(|t| t.raw_data.len() / 4)
            .sum();
        assert!(
            written >= weights,
            "{}: {written} floats written, {weights} weights",
            c.name
        );
    }
}

fn nabla_bin() -> &'static str {
    env!("CARGO_BIN_EXE_nabla")
}

fn golden_keras(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/keras")
        .join(name)
}

#[test]
fn the_cli_exports_a_keras_file_and_a_builtin() {
    let dir = tempfile::tempdir().unwrap();
    for (model, file) in [
        (golden_keras("cnn.keras").display().to_string(), "cnn.onnx"),
        ("mlp".into(), "mlp.onnx"),
    ] {
        let out = dir.path().join(file);
        let o = Command::new(nabla_bin())
            .args(["export", &model])
            .arg(&out)
            .output()
            .unwrap();
        let said =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{said}");
        assert!(said.contains("opset 17") && said.contains("IR 8"), "{said}");
        let g = decode(&std::fs::read(&out).unwrap()).graph.unwrap();
        assert!(!g.node.is_empty());
    }
    let o = Command::new(nabla_bin())
        .args(["export", "mlp"])
        .arg(dir.path().join("x.txt"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(".onnx"));
}

/// A `.npy` file (format 1.0, little-endian f32, C order).
fn write_npy(path: &Path, t: &Tensor) {
    let shape: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!("({})", shape.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(t.to_f32_vec().iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// Runs `scripts/onnx_check.py` on `file` with input `x` against nabla's `y`.
fn check_in_onnxruntime(
    python: &str,
    dir: &Path,
    name: &str,
    file: &Path,
    model: &Sequential,
    x: &Tensor,
    y: &Tensor,
) -> Result<String, String> {
    let xp = dir.join(format!("{name}_x.npy"));
    let yp = dir.join(format!("{name}_y.npy"));
    write_npy(&xp, x);
    write_npy(&yp, y);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/onnx_check.py");
    let o = Command::new(python)
        .arg(script)
        .arg(file)
        .arg("--input")
        .arg(format!("{}={}", model.inputs()[0].name, xp.display()))
        .arg("--expect")
        .arg(format!("{}={}", model.output_names()[0], yp.display()))
        .output()
        .map_err(|e| format!("{name}: cannot run {python}: {e}"))?;
    let said = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    if o.status.success() {
        Ok(format!("{name}: {}", said.trim()))
    } else {
        Err(format!("{name}: {}", said.trim()))
    }
}

#[test]
#[ignore = "needs Python with onnxruntime: set NABLA_ONNX_PYTHON (.ci/run makes target/onnx-venv)"]
fn onnxruntime_gives_nablas_outputs_for_every_builtin_model() {
    let python = std::env::var("NABLA_ONNX_PYTHON").expect(
        "set NABLA_ONNX_PYTHON to a Python with onnxruntime and numpy (e.g. \
         target/onnx-venv/bin/python, which .ci/run makes)",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    let mut failed = Vec::new();
    let mut all: Vec<(String, Sequential, Tensor)> = cases()
        .into_iter()
        .map(|c| (c.name, c.model, c.x))
        .collect();
    // The Keras 3 golden models, exported through the CLI as a user would.
    for name in ["cnn", "resnet", "autoencoder"] {
        let path = golden_keras(&format!("{name}.keras"));
        let model = Sequential::load(&path).unwrap();
        let shape: Vec<usize> = std::iter::once(2)
            .chain(model.input_shape().iter().map(|d| d.get().unwrap()))
            .collect();
        all.push((format!("{name}.keras"), model, images(&shape, 21)));
    }
    for (name, mut model, x) in all {
        let file = dir.path().join(format!("{name}.onnx"));
        if name.ends_with(".keras") {
            let src = golden_keras(&name);
            let o = Command::new(nabla_bin())
                .arg("export")
                .arg(&src)
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        } else {
            onnx::export(&model, &file).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let y = model.predict(&x, 64).unwrap();
        match check_in_onnxruntime(&python, dir.path(), &name, &file, &model, &x, &y) {
            Ok(line) => report.push(line),
            Err(line) => failed.push(line),
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        failed.is_empty(),
        "onnxruntime disagrees with nabla:\n{}",
        failed.join("\n")
    );
    assert_eq!(report.len(), cases().len() + 3, "every model checked");
}
