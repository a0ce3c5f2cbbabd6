//! The text layers (Embedding, Conv1D, MaxPooling1D, AveragePooling1D) through JSON
//! configs: a Sequential text CNN with a `None` time axis built from JSON runs batches of
//! two lengths, saves Conv1D's kernel in Keras' layout `[K, C, F]` and reloads;
//! `nabla summary config.json` counts parameters by Keras' formulas; bad configs and
//! bad ids are clear errors naming the layer. (Values against PyTorch:
//! `golden_layers.rs`; gradients: `gradcheck_layers.rs`.)

use nabla::training::ModelConfig;
use nabla::{Sequential, Tensor};
use std::process::Command;

/// Keras' `Sequential([Embedding(1000, 16), Conv1D(32, 5, activation="relu"),
/// MaxPooling1D(2), Conv1D(8, 3, padding="causal"), GlobalMaxPooling1D(),
/// Dense(4, activation="softmax")])` on `input_shape=(None,)`.
const TEXT_CNN: &str = r#"{"name": "text-cnn", "input_shape": [null], "layers": [
    {"class_name": "Embedding", "config": {"input_dim": 1000, "output_dim": 16}},
    {"class_name": "Conv1D", "config": {"filters": 32, "kernel_size": 5, "activation": "relu"}},
    {"class_name": "MaxPooling1D", "config": {"pool_size": 2}},
    {"class_name": "Conv1D", "config": {"filters": 8, "kernel_size": [3], "padding": "causal"}},
    {"class_name": "GlobalMaxPooling1D", "config": {}},
    {"class_name": "Dense", "config": {"units": 4, "activation": "softmax"}}]}"#;

/// Keras' counts: Embedding input_dim * output_dim; Conv1D K * C * F + F; Dense
/// in * out + out.
const PARAMS: [usize; 6] = [1000 * 16, 5 * 16 * 32 + 32, 0, 3 * 32 * 8 + 8, 0, 8 * 4 + 4];

fn build(json: &str) -> nabla::Result<Sequential> {
    let cfg: ModelConfig = serde_json::from_str(json).expect("valid JSON");
    Sequential::from_config(&cfg, 1)
}

/// `n` sequences of `t` ids, spread over the vocabulary.
fn ids(n: usize, t: usize) -> Tensor {
    Tensor::from_vec(
        (0..n * t).map(|i| ((i * 37 + 11) % 1000) as f32).collect(),
        &[n, t],
    )
}

#[test]
fn a_text_cnn_from_json_runs_two_lengths_and_saves_keras_layouts() {
    let m = build(TEXT_CNN).unwrap();
    let counts: Vec<usize> = m
        .layers()
        .iter()
        .map(|l| l.params().iter().map(|p| p.var.value().numel()).sum())
        .collect();
    assert_eq!(counts, PARAMS);
    let shapes: Vec<(String, Vec<usize>)> = m
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.var.shape()))
        .collect();
    assert_eq!(shapes[0], ("embedding/embeddings".into(), vec![1000, 16]));
    assert_eq!(shapes[1], ("conv1d/kernel".into(), vec![5, 16, 32]));
    assert_eq!(shapes[3], ("conv1d_1/kernel".into(), vec![3, 32, 8]));

    let mut m = m;
    for t in [12, 31] {
        let p = m.predict(&ids(3, t), 2).unwrap();
        assert_eq!(p.shape(), [3, 4], "length {t}");
        let rows = p.to_f32_vec();
        for r in rows.chunks(4) {
            assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{r:?}");
        }
    }

    // Saved and reloaded: same config, same Keras-layout weights, same predictions.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    m.save(&path).unwrap();
    let saved = nabla::formats::safetensors_io::load(&path.join("weights.safetensors")).unwrap();
    let kernel = saved.iter().find(|(n, _)| n == "conv1d/kernel").unwrap();
    assert_eq!(kernel.1.shape(), [5, 16, 32]);
    let mut back = Sequential::load(&path).unwrap();
    let x = ids(2, 17);
    assert_eq!(
        back.predict(&x, 2).unwrap().to_f32_vec(),
        m.predict(&x, 2).unwrap().to_f32_vec()
    );
}

#[test]
fn nabla_summary_of_a_text_cnn_config_counts_params_as_keras() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("text_cnn.json");
    std::fs::write(&path, TEXT_CNN).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["summary", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let total: usize = PARAMS.iter().sum();
    assert_eq!(total, 19_404);
    assert!(text.contains("Total params: 19,404"), "{text}");
    for (row, params) in [
        ("embedding (Embedding)", "16,000"),
        ("conv1d (Conv1D)", "2,592"),
        ("max_pooling1d (MaxPooling1D)", "0"),
        ("conv1d_1 (Conv1D)", "776"),
        ("dense (Dense)", "36"),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("{row}: {text}"));
        assert!(line.trim_end().ends_with(params), "{line}");
    }
    // The time axis stays None through the table.
    assert!(text.contains("(None, None, 16)"), "{text}");
}

#[test]
fn bad_configs_and_ids_are_clear_errors() {
    let with = |layers: &str, input: &str| {
        build(&format!(
            r#"{{"input_shape": {input}, "layers": [
                {{"class_name": "Embedding", "config": {{"input_dim": 50, "output_dim": 4}}}},
                {layers}]}}"#
        ))
    };
    let conv = |cfg: &str| format!(r#"{{"class_name": "Conv1D", "config": {cfg}}}"#);
    let cases = [
        (
            with(&conv(r#"{"filters": 2, "kernel_size": 5}"#), "[4]"),
            vec![
                "layer 'conv1d' (Conv1D): kernel_size 5",
                "[batch, 4, 4] input with padding \"valid\"",
            ],
        ),
        (
            with(&conv(r#"{"filters": 0, "kernel_size": 3}"#), "[null]"),
            vec!["layer 'conv1d' (Conv1D)", "filters (0)"],
        ),
        (
            with(
                r#"{"class_name": "MaxPooling1D", "config": {"pool_size": 6}}"#,
                "[5]",
            ),
            vec!["layer 'max_pooling1d' (MaxPooling1D): pool_size 6"],
        ),
        (
            with(&conv(r#"{"filters": 2, "kernel_size": 3}"#), "[null, 3]"),
            vec!["layer 'embedding' (Embedding) expects token ids"],
        ),
    ];
    for (got, needles) in cases {
        let Err(e) = got else {
            panic!("no error for {needles:?}")
        };
        let e = e.to_string();
        for n in needles {
            assert!(e.contains(n), "{n:?} not in: {e}");
        }
    }
    // mask_zero must be a boolean (tests/masking.rs covers what it does).
    let cfg = r#"{"input_shape": [null], "layers": [{"class_name": "Embedding", "config":
        {"input_dim": 50, "output_dim": 4, "mask_zero": "yes"}}]}"#;
    assert!(serde_json::from_str::<ModelConfig>(cfg).is_err());

    // At run time: an id outside the vocabulary, and a batch shorter than the kernel.
    let mut m = with(&conv(r#"{"filters": 2, "kernel_size": 3}"#), "[null]").unwrap();
    let bad = Tensor::from_vec(vec![1., 2., 3., 4., 50., 6.], &[2, 3]);
    let e = m.predict(&bad, 2).unwrap_err().to_string();
    assert!(
        e.contains("layer 'embedding' (Embedding)") && e.contains("id 50 at [1, 1]"),
        "{e}"
    );
    let short = Tensor::from_vec(vec![1., 2., 3., 4.], &[2, 2]);
    let e = m.predict(&short, 2).unwrap_err().to_string();
    assert!(e.contains("layer 'conv1d' (Conv1D): kernel_size 3"), "{e}");
    assert!(m
        .predict(&Tensor::from_vec(vec![1., 2., 3.], &[1, 3]), 1)
        .is_ok());
}

/// A half-precision model leaves an Embedding's ids unrounded: bf16 holds whole numbers
/// exactly only up to 256, so rounding the input would read row 256 for id 257 and
/// read row 1000 for id 999, and f16 row 2048 for 2049. Each id reads its own row, rounded.
#[test]
fn half_precision_keeps_token_ids_whole() {
    let json = r#"{"input_shape": [null], "layers": [
        {"class_name": "Embedding", "config": {"input_dim": 3000, "output_dim": 4}}]}"#;
    for dtype in [nabla::DType::BF16, nabla::DType::F16] {
        let mut m = build(json).unwrap();
        let table = m.params()[0].var.value().to_f32_vec();
        m.set_dtype(dtype).unwrap();
        let x = Tensor::from_vec(vec![257.0, 999.0, 2049.0], &[1, 3]);
        let got = m.predict(&x, 1).unwrap().to_f32_vec();
        for (k, id) in [257usize, 999, 2049].into_iter().enumerate() {
            let want: Vec<f32> = table[id * 4..id * 4 + 4]
                .iter()
                .map(|&v| Tensor::from_vec(vec![v], &[1]).to_dtype(dtype).to_f32_vec()[0])
                .collect();
            assert_eq!(got[k * 4..k * 4 + 4], want[..], "{dtype} id {id}");
        }
    }
}

/// The text CNN (Embedding, Conv1D through permute and reshape, a max over time, Dense)
/// runs in bf16 and f16 and stays near its f32 probabilities: every op converts a
/// half-precision input to f32 at its entry (permute once read bf16 values as f32 and
/// panicked).
#[test]
fn a_text_cnn_runs_in_half_precision_near_f32() {
    let x = ids(4, 20);
    let full = build(TEXT_CNN)
        .unwrap()
        .predict(&x, 4)
        .unwrap()
        .to_f32_vec();
    for (dtype, tol) in [(nabla::DType::BF16, 2e-2), (nabla::DType::F16, 2e-3)] {
        let mut m = build(TEXT_CNN).unwrap();
        m.set_dtype(dtype).unwrap();
        let half = m.predict(&x, 4).unwrap().to_f32_vec();
        for (a, b) in half.iter().zip(&full) {
            assert!((a - b).abs() <= tol, "{dtype}: {a} vs f32 {b}");
        }
    }
}
