//! Keras 3 files in (`formats::keras`): `.keras` models saved by real Keras 3 load and
//! give Keras' outputs on fixed inputs; a `.weights.h5` loads into the same network built
//! in nabla; bad files give errors naming the file and the layer or tensor. Covered:
//! CNNs, BatchNormalization, Dense and conv autoencoders, Embedding(mask_zero) with
//! LSTM / GRU / SimpleRNN / Bidirectional on zero-padded ids, Conv1D and 1-D pools, a
//! frozen nested base with a Sequential head, a shared (siamese) tower.
//!
//! The files and expected outputs come from `scripts/golden/keras_models.py` (Keras
//! 3.15, fixed seeds) under `tests/golden/keras/`; this test needs no Python.

use nabla::data::npy::load_npy;
use nabla::formats::keras::keras_from_bytes;
use nabla::formats::model_dir::parse_config;
use nabla::{Sequential, Tensor};
use std::io::Write;
use std::path::{Path, PathBuf};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/keras")
        .join(name)
}

/// Keras' channels-last input as nabla's channels-first (`[N, H, W, C]` ->
/// `[N, C, H, W]`); other ranks as they are.
fn input(name: &str) -> Tensor {
    let a = load_npy(golden(&format!("{name}_input.npy"))).unwrap();
    let t = Tensor::from_vec(a.data, &a.shape);
    if a.shape.len() == 4 {
        t.permute(&[0, 3, 1, 2]).unwrap().contiguous()
    } else {
        t
    }
}

fn max_abs_diff(got: &Tensor, name: &str) -> f32 {
    let want = load_npy(golden(&format!("{name}_expected.npy"))).unwrap();
    assert_eq!(got.shape(), want.shape.as_slice(), "{name}: output shape");
    got.to_f32_vec()
        .iter()
        .zip(&want.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn check_keras_file(name: &str) -> f32 {
    let mut model = Sequential::load(&golden(&format!("{name}.keras"))).unwrap();
    let out = model.predict(&input(name), 8).unwrap();
    let d = max_abs_diff(&out, name);
    eprintln!("{name}.keras: max |nabla - keras| = {d:.2e}");
    assert!(d <= 1e-5, "{name}: max abs difference {d}");
    d
}

#[test]
fn sequential_cnn_matches_keras() {
    check_keras_file("cnn");
    // A Keras image model takes nabla's channels-first images: MNIST's [1, 28, 28].
    let model = Sequential::load(&golden("cnn.keras")).unwrap();
    let dims: Vec<Option<usize>> = model.input_shape().iter().map(|d| d.get()).collect();
    assert_eq!(dims, vec![Some(1), Some(28), Some(28)]);
}

#[test]
fn functional_resnet_with_batch_norm_matches_keras() {
    check_keras_file("resnet");
    let model = Sequential::load(&golden("resnet.keras")).unwrap();
    // Keras' BN epsilon (1e-3 by default, 2e-5 set on one layer) and momentum survive.
    let cfg = serde_json::to_value(model.config()).unwrap();
    let bn = |name: &str, key: &str| {
        let layers = cfg["layers"].as_array().unwrap();
        let l = layers.iter().find(|l| l["config"]["name"] == name).unwrap();
        l["config"][key].as_f64().unwrap()
    };
    assert!((bn("block_bn1", "epsilon") - 2e-5).abs() < 1e-9);
    assert!((bn("block_bn1", "momentum") - 0.9).abs() < 1e-6);
    assert!((bn("stem_bn", "epsilon") - 1e-3).abs() < 1e-9);
}

#[test]
fn dense_autoencoder_matches_keras() {
    check_keras_file("autoencoder");
}

/// The CNN of `keras_models.py` written in nabla (channels-first), with Keras' layer
/// names, takes `cnn.weights.h5` and gives the `.keras` file's outputs.
#[test]
fn weights_h5_loads_into_a_nabla_built_model() {
    let cfg = parse_config(
        r#"{"name": "cnn", "input_shape": [1, 28, 28], "layers": [
            {"class_name": "Conv2D", "config": {"name": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"}},
            {"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "pool_size": 2}},
            {"class_name": "Conv2D", "config": {"name": "conv2d_1", "filters": 8, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}},
            {"class_name": "Flatten", "config": {"name": "flatten"}},
            {"class_name": "Dense", "config": {"name": "dense", "units": 10, "activation": "softmax"}}
        ]}"#,
    )
    .unwrap();
    let mut model = Sequential::from_config(&cfg, 7).unwrap();
    let before = model.predict(&input("cnn"), 8).unwrap();
    assert!(
        max_abs_diff(&before, "cnn") > 1e-2,
        "fresh weights already match?"
    );
    model.load_keras_weights(golden("cnn.weights.h5")).unwrap();
    let out = model.predict(&input("cnn"), 8).unwrap();
    let d = max_abs_diff(&out, "cnn");
    eprintln!("cnn.weights.h5: max |nabla - keras| = {d:.2e}");
    assert!(d <= 1e-5, "{d}");

    // A layer of another size: the error names the file, the tensor and both shapes,
    // and the model keeps its weights.
    let wide = cfg_text_with_dense_units(11);
    let mut other = Sequential::from_config(&parse_config(&wide).unwrap(), 7).unwrap();
    let kept = other.get_weights();
    let e = other
        .load_keras_weights(golden("cnn.weights.h5"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cnn.weights.h5"), "{e}");
    assert!(e.contains("tensor 'dense/kernel'"), "{e}");
    assert!(e.contains("[392, 10]") && e.contains("[392, 11]"), "{e}");
    let now = other.get_weights();
    assert!(kept
        .iter()
        .zip(&now)
        .all(|(a, b)| a.to_f32_vec() == b.to_f32_vec()));
}

fn cfg_text_with_dense_units(units: usize) -> String {
    format!(
        r#"{{"name": "cnn", "input_shape": [1, 28, 28], "layers": [
            {{"class_name": "Conv2D", "config": {{"name": "conv2d", "filters": 4, "kernel_size": 3, "activation": "relu"}}}},
            {{"class_name": "MaxPooling2D", "config": {{"name": "max_pooling2d", "pool_size": 2}}}},
            {{"class_name": "Conv2D", "config": {{"name": "conv2d_1", "filters": 8, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}}}},
            {{"class_name": "Flatten", "config": {{"name": "flatten"}}}},
            {{"class_name": "Dense", "config": {{"name": "dense", "units": {units}, "activation": "softmax"}}}}
        ]}}"#
    )
}

/// The members of a golden `.keras`, to write altered copies.
fn members(name: &str) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(golden(name)).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut v).unwrap();
            (f.name().to_string(), v)
        })
        .collect()
}

fn write_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        for (n, v) in files {
            z.start_file(n.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(v).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

#[test]
fn unsupported_layers_are_all_listed_in_one_error() {
    let mut files = members("resnet.keras");
    let (_, cfg) = files.iter_mut().find(|(n, _)| n == "config.json").unwrap();
    let text = String::from_utf8(cfg.clone()).unwrap();
    // Two layers nabla has no such class for, and one it has with an option it lacks.
    let text = text
        .replacen("\"class_name\": \"ReLU\"", "\"class_name\": \"PReLU\"", 1)
        .replacen(
            "\"class_name\": \"AveragePooling2D\"",
            "\"class_name\": \"MyCustomPool\"",
            1,
        );
    // block_bn1 normalising another axis than the channels.
    let at = text.find("\"name\": \"block_bn1\"").unwrap();
    let text = format!(
        "{}{}",
        &text[..at],
        text[at..].replacen("\"axis\": -1", "\"axis\": 1", 1)
    );
    *cfg = text.into_bytes();
    let bytes = write_zip(&files);
    let e = keras_from_bytes(&bytes, Path::new("bad.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.keras"), "{e}");
    assert!(e.contains("3 layer(s) nabla cannot build"), "{e}");
    assert!(e.contains("stem_relu (PReLU)"), "{e}");
    assert!(e.contains("pool (MyCustomPool)"), "{e}");
    assert!(
        e.contains("block_bn1 (BatchNormalization): axis Some(1)"),
        "{e}"
    );
}

#[test]
fn a_truncated_h5_is_an_error_naming_the_file() {
    let full = std::fs::read(golden("cnn.weights.h5")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut model =
        Sequential::from_config(&parse_config(&cfg_text_with_dense_units(10)).unwrap(), 1).unwrap();
    for cut in [0, 8, 100, 1000, full.len() / 2, full.len() - 100] {
        let p = dir.path().join(format!("cut{cut}.weights.h5"));
        std::fs::write(&p, &full[..cut]).unwrap();
        let e = model.load_keras_weights(&p).unwrap_err().to_string();
        assert!(e.contains(&format!("cut{cut}.weights.h5")), "{cut}: {e}");
    }
    // Truncated inside a .keras: the member is named.
    let mut files = members("cnn.keras");
    let (_, h5) = files
        .iter_mut()
        .find(|(n, _)| n == "model.weights.h5")
        .unwrap();
    h5.truncate(h5.len() / 3);
    let e = keras_from_bytes(&write_zip(&files), Path::new("cut.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cut.keras/model.weights.h5"), "{e}");
}

#[test]
fn a_corrupt_zip_is_an_error_naming_the_file() {
    let mut bytes = std::fs::read(golden("cnn.keras")).unwrap();
    for (i, b) in bytes.iter_mut().enumerate().skip(30).step_by(97) {
        *b ^= (i % 251) as u8 | 1;
    }
    let e = keras_from_bytes(&bytes, Path::new("corrupt.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("corrupt.keras"), "{e}");
    let e = keras_from_bytes(b"not a zip at all", Path::new("text.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("text.keras") && e.contains("zip"), "{e}");
    // A zip without the weights.
    let files: Vec<_> = members("cnn.keras")
        .into_iter()
        .filter(|(n, _)| n != "model.weights.h5")
        .collect();
    let e = keras_from_bytes(&write_zip(&files), Path::new("noweights.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no model.weights.h5"), "{e}");
}

#[test]
fn a_weight_of_the_wrong_shape_names_the_layer_and_tensor() {
    // config.json says 12 units where the weights have 10: every shape that differs is
    // named, with both shapes.
    let mut files = members("cnn.keras");
    let (_, cfg) = files.iter_mut().find(|(n, _)| n == "config.json").unwrap();
    let text = String::from_utf8(cfg.clone())
        .unwrap()
        .replace("\"units\": 10", "\"units\": 12");
    *cfg = text.into_bytes();
    let e = keras_from_bytes(&write_zip(&files), Path::new("shape.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape.keras/model.weights.h5"), "{e}");
    assert!(
        e.contains("tensor 'dense/kernel'") && e.contains("[392, 12]"),
        "{e}"
    );
    assert!(e.contains("tensor 'dense/bias'"), "{e}");
}

#[test]
fn arbitrary_bytes_never_panic() {
    // Cheap stand-in for the fuzz target: many mutations of a real file.
    let base = std::fs::read(golden("cnn.keras")).unwrap();
    let h5 = members("cnn.keras")
        .into_iter()
        .find(|(n, _)| n == "model.weights.h5")
        .unwrap()
        .1;
    let mut rng = nabla::Rng::new(15);
    for i in 0..300 {
        let mut b = if i % 2 == 0 { base.clone() } else { h5.clone() };
        for _ in 0..1 + i % 8 {
            let at = (rng.uniform_range(0.0, 1.0) * b.len() as f32) as usize % b.len();
            b[at] = (rng.uniform_range(0.0, 256.0)) as u8;
        }
        if i % 2 == 0 {
            let _ = keras_from_bytes(&b, Path::new("fuzz.keras"));
        } else {
            let _ = nabla::formats::keras::hdf5::parse_weights(b, Path::new("fuzz.h5"));
        }
    }
}

/// The CLI takes a `.keras` file where it takes a saved run (`summary`, `evaluate`,
/// `predict`, `train --model`); `summary` needs no data set.
#[test]
fn the_cli_reads_a_keras_file() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nabla"))
        .arg("summary")
        .arg(golden("resnet.keras"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("block_bn1 (BatchNormalization)"), "{text}");
    assert!(text.contains("(None, 5)"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["evaluate", "/nonexistent/x.keras", "--dataset", "xor"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("x.keras"), "{err}");
}

/// The input fuzz/keras_h5 found (rustyhdf5 1.93 panics in its v1 B-tree reader): an
/// error naming the file, not a panic.
#[test]
fn the_fuzzer_s_hdf5_crash_is_an_error() {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/keras_h5/regress-btree-v1-slice");
    let bytes = std::fs::read(&p).unwrap();
    let e = nabla::formats::keras::hdf5::parse_weights(bytes, Path::new("crash.weights.h5"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("crash.weights.h5"), "{e}");
}

#[test]
fn text_models_with_masks_match_keras() {
    // Embedding(mask_zero) -> LSTM / GRU / SimpleRNN x2 / Bidirectional(LSTM) -> Dense,
    // ids zero padded (one row with a single id, one with a zero inside): a reader that
    // dropped the mask, swapped gates or biases, or mixed up the two directions would
    // be off by far more than 1e-5.
    for name in [
        "text_lstm",
        "text_gru",
        "text_rnn",
        "text_bilstm",
        "text_conv1d",
    ] {
        // (the ids load as nabla's float ids)
        check_keras_file(name);
    }
    // The mask matters: the same LSTM without it gives other outputs.
    let mut files = members("text_lstm.keras");
    let (_, cfg) = files.iter_mut().find(|(n, _)| n == "config.json").unwrap();
    let text = String::from_utf8(cfg.clone())
        .unwrap()
        .replace("\"mask_zero\": true", "\"mask_zero\": false");
    *cfg = text.into_bytes();
    // Without mask_zero, the LSTM's explicit mask (Keras' NotEqual node) has no source
    // in nabla: an error naming the layer.
    let e = keras_from_bytes(&write_zip(&files), Path::new("nomask.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lstm (LSTM): takes the mask 'not_equal'"), "{e}");
}

#[test]
fn a_nested_model_loads_frozen_and_matches_keras() {
    check_keras_file("nested");
    let model = Sequential::load(&golden("nested.keras")).unwrap();
    let cfg = serde_json::to_value(model.config()).unwrap();
    let layers = cfg["layers"].as_array().unwrap();
    let base = layers
        .iter()
        .find(|l| l["config"]["name"] == "base")
        .unwrap();
    assert_eq!(base["class_name"], "Model", "{base}");
    assert_eq!(
        base["trainable"], false,
        "the frozen base stays frozen: {base}"
    );
    let names: Vec<String> = model.params().iter().map(|p| p.name.clone()).collect();
    assert!(
        names.contains(&"base/base_conv/kernel".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"head/dense_3/bias".to_string()),
        "{names:?}"
    );
}

#[test]
fn a_shared_layer_loads_once_and_matches_keras() {
    let mut model = Sequential::load(&golden("shared.keras")).unwrap();
    let left = load_npy(golden("shared_input.npy")).unwrap();
    let right = load_npy(golden("shared_input2.npy")).unwrap();
    let l = Tensor::from_vec(left.data, &left.shape);
    let r = Tensor::from_vec(right.data, &right.shape);
    let out = model.predict_many(&[l, r], 8).unwrap().remove(0);
    let d = max_abs_diff(&out, "shared");
    eprintln!("shared.keras: max |nabla - keras| = {d:.2e}");
    assert!(d <= 1e-5, "{d}");
    // One set of weights per tower: 7*6+6 + 6*4+4 + 8+1.
    let count: usize = model
        .params()
        .iter()
        .map(|p| p.var.shape().iter().product::<usize>())
        .sum();
    assert_eq!(count, 48 + 28 + 9);
}

#[test]
fn a_conv_autoencoder_matches_keras() {
    // Conv2D + MaxPooling2D encoder, Conv2DTranspose + UpSampling2D decoder, sigmoid.
    let mut model = Sequential::load(&golden("conv_autoencoder.keras")).unwrap();
    let out = model.predict(&input("conv_autoencoder"), 8).unwrap();
    // nabla gives [N, 1, 8, 8]; Keras [N, 8, 8, 1].
    let out = out.permute(&[0, 2, 3, 1]).unwrap().contiguous();
    let d = max_abs_diff(&out, "conv_autoencoder");
    eprintln!("conv_autoencoder.keras: max |nabla - keras| = {d:.2e}");
    assert!(d <= 1e-5, "{d}");
}

/// The weights inside `text_bilstm.keras` (what `save_weights` writes) load into the
/// same network written in nabla: the Bidirectional's two LSTMs by their groups.
#[test]
fn a_bidirectional_lstm_s_weights_load_into_a_nabla_built_model() {
    let cfg = parse_config(
        r#"{"name": "text_bilstm", "input_shape": [6], "layers": [
            {"class_name": "Embedding", "config": {"name": "embed", "input_dim": 20, "output_dim": 4, "mask_zero": true}},
            {"class_name": "Bidirectional", "config": {"name": "bi", "layer": {"class_name": "LSTM", "config": {"units": 3}}}},
            {"class_name": "Dense", "config": {"name": "probs", "units": 3, "activation": "softmax"}}
        ]}"#,
    )
    .unwrap();
    let mut model = Sequential::from_config(&cfg, 3).unwrap();
    let h5 = members("text_bilstm.keras")
        .into_iter()
        .find(|(n, _)| n == "model.weights.h5")
        .unwrap()
        .1;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bilstm.weights.h5");
    std::fs::write(&p, h5).unwrap();
    model.load_keras_weights(&p).unwrap();
    let out = model.predict(&input("text_bilstm"), 8).unwrap();
    let d = max_abs_diff(&out, "text_bilstm");
    assert!(d <= 1e-5, "{d}");
}

#[test]
fn unsupported_layers_inside_nested_models_and_rnns_are_listed() {
    let mut files = members("nested.keras");
    let (_, cfg) = files.iter_mut().find(|(n, _)| n == "config.json").unwrap();
    let text = String::from_utf8(cfg.clone())
        .unwrap()
        .replacen(
            "\"class_name\": \"MaxPooling2D\"",
            "\"class_name\": \"MyPool\"",
            1,
        )
        .replacen(
            "\"class_name\": \"Dropout\"",
            "\"class_name\": \"SpatialDrop\"",
            1,
        );
    *cfg = text.into_bytes();
    let e = keras_from_bytes(&write_zip(&files), Path::new("nested_bad.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("2 layer(s) nabla cannot build"), "{e}");
    assert!(e.contains("base/base_pool (MyPool)"), "{e}");
    assert!(e.contains("drop (SpatialDrop)"), "{e}");

    let mut files = members("text_gru.keras");
    let (_, cfg) = files.iter_mut().find(|(n, _)| n == "config.json").unwrap();
    let text = String::from_utf8(cfg.clone())
        .unwrap()
        .replacen("\"go_backwards\": false", "\"go_backwards\": true", 1)
        .replacen("\"reset_after\": true", "\"reset_after\": false", 1);
    *cfg = text.into_bytes();
    let e = keras_from_bytes(&write_zip(&files), Path::new("gru_bad.keras"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gru (GRU): go_backwards=True"), "{e}");
}

/// The weights inside `nested.keras` and `shared.keras` load into the same networks
/// built in nabla (from the configs the reader made, with fresh weights): a nested
/// model's layers are matched inside its group, a shared layer's weights once.
#[test]
fn nested_and_shared_weights_load_into_nabla_built_models() {
    for name in ["nested", "shared"] {
        let loaded = Sequential::load(&golden(&format!("{name}.keras"))).unwrap();
        let mut model = Sequential::from_config(&loaded.config(), 5).unwrap();
        let h5 = members(&format!("{name}.keras"))
            .into_iter()
            .find(|(n, _)| n == "model.weights.h5")
            .unwrap()
            .1;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(format!("{name}.weights.h5"));
        std::fs::write(&p, h5).unwrap();
        let inputs = if name == "shared" {
            ["shared_input.npy", "shared_input2.npy"]
                .iter()
                .map(|f| {
                    let a = load_npy(golden(f)).unwrap();
                    Tensor::from_vec(a.data, &a.shape)
                })
                .collect()
        } else {
            vec![input(name)]
        };
        let before = model.predict_many(&inputs, 8).unwrap().remove(0);
        assert!(
            max_abs_diff(&before, name) > 1e-3,
            "{name}: fresh weights match?"
        );
        model.load_keras_weights(&p).unwrap();
        let out = model.predict_many(&inputs, 8).unwrap().remove(0);
        let d = max_abs_diff(&out, name);
        assert!(d <= 1e-5, "{name}: {d}");
    }
}
