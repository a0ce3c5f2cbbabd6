//! The LSTM layer through the model API: a JSON config with `input_shape [null]`,
//! batches of two lengths, Keras' parameter count, save and reload, clear config
//! errors, a model-level gradient check, and (ignored by default) a timing.

use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::layers::keras::*;
use nabla::layers::MergeMode;
use nabla::training::gradcheck::check_model;
use nabla::training::ModelConfig;
use nabla::{KerasLoss, Optimizer, Sequential, Tensor};

/// Keras' `Sequential([Embedding(100, 8), LSTM(6), Dense(3, activation="softmax")])` on
/// `input_shape=(None,)`.
const TEXT_LSTM: &str = r#"{"name": "text-lstm", "input_shape": [null], "layers": [
    {"class_name": "Embedding", "config": {"input_dim": 100, "output_dim": 8}},
    {"class_name": "LSTM", "config": {"units": 6}},
    {"class_name": "Dense", "config": {"units": 3, "activation": "softmax"}}]}"#;

fn build(json: &str) -> nabla::Result<Sequential> {
    let cfg: ModelConfig = serde_json::from_str(json).expect("valid JSON");
    Sequential::from_config(&cfg, 1)
}

fn ids(n: usize, t: usize) -> Tensor {
    Tensor::from_vec(
        (0..n * t).map(|i| ((i * 37 + 11) % 100) as f32).collect(),
        &[n, t],
    )
}

#[test]
fn a_text_lstm_from_json_runs_two_lengths_and_counts_params_as_keras() {
    let mut m = build(TEXT_LSTM).unwrap();
    let counts: Vec<usize> = m
        .layers()
        .iter()
        .map(|l| l.params().iter().map(|p| p.var.value().numel()).sum())
        .collect();
    // Keras: LSTM 4 * (F*U + U*U + U) with F = 8, U = 6.
    assert_eq!(counts, [100 * 8, 4 * (8 * 6 + 6 * 6 + 6), 6 * 3 + 3]);
    let shapes: Vec<(String, Vec<usize>)> = m
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.var.shape()))
        .collect();
    assert_eq!(shapes[1], ("lstm/kernel".into(), vec![8, 24]));
    assert_eq!(shapes[2], ("lstm/recurrent_kernel".into(), vec![6, 24]));
    assert_eq!(shapes[3], ("lstm/bias".into(), vec![24]));
    for t in [5, 17] {
        let p = m.predict(&ids(3, t), 2).unwrap();
        assert_eq!(p.shape(), [3, 3], "length {t}");
        for r in p.to_f32_vec().chunks(3) {
            assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{r:?}");
        }
    }
    // return_sequences keeps the None time axis.
    let seq = TEXT_LSTM.replace(r#""units": 6}"#, r#""units": 6, "return_sequences": true}"#);
    let seq = seq.replace(
        r#"{"class_name": "Dense""#,
        r#"{"class_name": "GlobalAveragePooling1D", "config": {}},
    {"class_name": "Dense""#,
    );
    let mut s = build(&seq).unwrap();
    assert_eq!(s.predict(&ids(2, 17), 2).unwrap().shape(), [2, 3]);

    // Saved and reloaded: same Keras-layout weights, same predictions.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    m.save(&path).unwrap();
    let saved = nabla::formats::safetensors_io::load(&path.join("weights.safetensors")).unwrap();
    let rk = saved
        .iter()
        .find(|(n, _)| n == "lstm/recurrent_kernel")
        .unwrap();
    assert_eq!(rk.1.shape(), [6, 24]);
    let mut back = Sequential::load(&path).unwrap();
    let x = ids(2, 17);
    assert_eq!(
        back.predict(&x, 2).unwrap().to_f32_vec(),
        m.predict(&x, 2).unwrap().to_f32_vec()
    );
}

#[test]
fn bad_lstm_configs_are_clear_errors() {
    let with = |lstm: &str, input: &str, embed: bool| {
        let first = if embed {
            r#"{"class_name": "Embedding", "config": {"input_dim": 50, "output_dim": 4}},"#
        } else {
            ""
        };
        build(&format!(
            r#"{{"input_shape": {input}, "layers": [{first}
                {{"class_name": "LSTM", "config": {lstm}}}]}}"#
        ))
    };
    let cases = [
        (
            with(r#"{"units": 0}"#, "[null]", true),
            "layer 'lstm' (LSTM): units (0) must be positive",
        ),
        (
            with(r#"{"units": 4}"#, "[8]", false),
            "layer 'lstm' (LSTM) expects sequences [batch, steps, features], got [batch, 8]",
        ),
    ];
    for (got, needle) in cases {
        let Err(e) = got else {
            panic!("no error for {needle:?}")
        };
        let e = e.to_string();
        assert!(e.contains(needle), "{needle:?} not in: {e}");
    }
    // Options nabla does not have yet are refused, never ignored.
    for field in ["go_backwards", "stateful"] {
        let cfg = format!(
            r#"{{"input_shape": [null, 3], "layers": [{{"class_name": "LSTM", "config":
            {{"units": 4, "{field}": 0}}}}]}}"#
        );
        let e = serde_json::from_str::<ModelConfig>(&cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn gradcheck_embedding_lstm_dense() {
    let sparse = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    for seq in [false, true] {
        let mut m = Sequential::with_seed(&[None], 7);
        m.add(Embedding(10, 4)).unwrap();
        m.add(LSTM(5).return_sequences(seq)).unwrap();
        if seq {
            m.add(GlobalAveragePooling1D()).unwrap();
        }
        m.add(Dense(3).activation(Softmax)).unwrap();
        m.compile(sparse, Optimizer::sgd(0.0), &[]).unwrap();
        let x = ids(3, 6).map(|v| (v as usize % 10) as f32);
        let y = Tensor::from_vec(vec![0., 2., 1.], &[3]);
        let reports = check_model(&mut m, &x, &y, 40, 1e-2).unwrap();
        assert!(reports.iter().any(|r| r.param == "lstm/recurrent_kernel"));
        for r in reports {
            assert!(
                r.rel_error < DEFAULT_TOLERANCE,
                "seq {seq}: {} relative error {:.3e}",
                r.param,
                r.rel_error
            );
            assert!(r.passed(), "seq {seq}: {r:?}");
        }
    }
}

/// Keras' `Bidirectional(LSTM(6))` in its JSON form: built through the registry,
/// Keras' weight names, twice the LSTM's parameters; bad wrappers are clear errors.
#[test]
fn bidirectional_from_json_and_its_errors() {
    let bi = |inner: &str, extra: &str| {
        let cfg = format!(
            r#"{{"input_shape": [null], "layers": [
            {{"class_name": "Embedding", "config": {{"input_dim": 100, "output_dim": 8}}}},
            {{"class_name": "Bidirectional", "config": {{"layer": {inner}{extra}}}}},
            {{"class_name": "Dense", "config": {{"units": 3, "activation": "softmax"}}}}]}}"#
        );
        serde_json::from_str::<ModelConfig>(&cfg)
            .map_err(|e| e.to_string())
            .and_then(|c| Sequential::from_config(&c, 1).map_err(|e| e.to_string()))
    };
    let lstm = r#"{"class_name": "LSTM", "config": {"units": 6}}"#;
    let mut m = bi(lstm, r#", "merge_mode": "concat""#).unwrap();
    let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
    assert_eq!(names[1], "bidirectional/forward_lstm/kernel");
    assert_eq!(names[4], "bidirectional/backward_lstm/kernel");
    let count: usize = m.layers()[1]
        .params()
        .iter()
        .map(|p| p.var.value().numel())
        .sum();
    assert_eq!(count, 2 * 4 * (8 * 6 + 6 * 6 + 6));
    assert_eq!(m.predict(&ids(2, 9), 2).unwrap().shape(), [2, 3]);
    // The inner layer's own name is kept: forward_enc, backward_enc.
    let named = bi(
        r#"{"class_name": "LSTM", "config": {"units": 6, "name": "enc"}}"#,
        "",
    )
    .unwrap();
    assert_eq!(named.params()[4].name, "bidirectional/backward_enc/kernel");
    // Saved and reloaded: the same predictions.
    let dir = tempfile::tempdir().unwrap();
    m.save(&dir.path().join("m")).unwrap();
    let mut back = Sequential::load(&dir.path().join("m")).unwrap();
    assert_eq!(
        back.predict(&ids(2, 9), 2).unwrap().to_f32_vec(),
        m.predict(&ids(2, 9), 2).unwrap().to_f32_vec()
    );

    let dense = r#"{"class_name": "Dense", "config": {"units": 6}}"#;
    for (got, needle) in [
        (
            bi(dense, ""),
            "layer 'bidirectional' (Bidirectional) wraps a recurrent layer (one with \
             return_sequences, e.g. LSTM), got Dense",
        ),
        (
            bi(lstm, r#", "merge_mode": "max""#),
            "unknown variant `max`",
        ),
        (bi(r#"{"class_name": "LSTX", "config": {}}"#, ""), "LSTX"),
        (
            bi(r#"{"class_name": "LSTM", "config": {"units": 0}}"#, ""),
            "units (0) must be positive",
        ),
    ] {
        let e = got
            .err()
            .unwrap_or_else(|| panic!("no error for {needle:?}"));
        assert!(e.contains(needle), "{needle:?} not in: {e}");
    }
}

#[test]
fn gradcheck_embedding_bidirectional_lstm_dense() {
    let sparse = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    // concat without sequences (the text-bilstm shape) and every other merge mode with
    // sequences (the backward output is reversed back there).
    for (seq, mode) in [
        (false, MergeMode::Concat),
        (true, MergeMode::Concat),
        (true, MergeMode::Sum),
        (true, MergeMode::Ave),
        (true, MergeMode::Mul),
    ] {
        let mut m = Sequential::with_seed(&[None], 7);
        m.add(Embedding(10, 4)).unwrap();
        m.add(Bidirectional(LSTM(3).return_sequences(seq)).merge_mode(mode))
            .unwrap();
        if seq {
            m.add(GlobalAveragePooling1D()).unwrap();
        }
        m.add(Dense(3).activation(Softmax)).unwrap();
        m.compile(sparse, Optimizer::sgd(0.0), &[]).unwrap();
        let x = ids(3, 5).map(|v| (v as usize % 10) as f32);
        let y = Tensor::from_vec(vec![0., 2., 1.], &[3]);
        let reports = check_model(&mut m, &x, &y, 40, 1e-2).unwrap();
        assert!(reports
            .iter()
            .any(|r| r.param == "bidirectional/backward_lstm/recurrent_kernel"));
        for r in reports {
            assert!(
                r.rel_error < DEFAULT_TOLERANCE,
                "{seq} {mode:?}: {} relative error {:.3e}",
                r.param,
                r.rel_error
            );
            assert!(r.passed(), "{seq} {mode:?}: {r:?}");
        }
    }
}

/// `cargo test --release --test lstm_layer -- --ignored --nocapture`: forward + backward
/// of one LSTM op, N=64, T=32, F=64, U=128.
#[test]
#[ignore]
fn time_forward_backward() {
    use nabla::ops::lstm::lstm;
    use nabla::{Rng, Var};
    let (n, t, f, u) = (64, 32, 64, 128);
    let mut rng = Rng::new(1);
    let mut rand = |shape: &[usize], s: f32| {
        let k: usize = shape.iter().product();
        Var::parameter(Tensor::from_vec(
            (0..k).map(|_| rng.uniform_range(-s, s)).collect(),
            shape,
        ))
    };
    let x = rand(&[n, t, f], 1.0);
    let w = rand(&[f, 4 * u], 0.1);
    let rw = rand(&[u, 4 * u], 0.1);
    let b = rand(&[4 * u], 0.1);
    let mut times = vec![];
    for _ in 0..6 {
        let start = std::time::Instant::now();
        let y = lstm(&x, &w, &rw, Some(&b), true, None).unwrap();
        let fwd = start.elapsed();
        y.backward_with(Tensor::ones(&y.shape()));
        times.push((fwd.as_secs_f64() * 1e3, start.elapsed().as_secs_f64() * 1e3));
    }
    times.sort_by(|a, b| a.1.total_cmp(&b.1));
    println!(
        "LSTM N={n} T={t} F={f} U={u}: forward {:.1} ms, forward+backward {:.1} ms (best of 6)",
        times[0].0, times[0].1
    );
}

/// Keras' `dropout` of LSTM and GRU: training forwards differ from inference (and from
/// each other), inference equals the same weights without dropout, out-of-range rates
/// are refused, and the rate round-trips through the JSON.
#[test]
fn recurrent_input_dropout_trains_only() {
    for class in ["LSTM", "GRU"] {
        let json = TEXT_LSTM.replace(
            r#""class_name": "LSTM""#,
            &format!(r#""class_name": "{class}""#),
        );
        let with = json.replace(r#""units": 6}"#, r#""units": 6, "dropout": 0.5}"#);
        assert_ne!(with, json, "{class}: the test's JSON changed");
        let mut plain = build(&json).unwrap();
        let mut dropped = build(&with).unwrap();
        let saved = |m: &Sequential| serde_json::to_string(&m.config()).unwrap();
        assert!(saved(&dropped).contains(r#""dropout":0.5"#), "{class}");
        assert!(!saved(&plain).contains(r#""dropout""#), "{class}");
        let x = nabla::Var::constant(ids(4, 7));
        let eval_plain = plain.forward(&x, false).unwrap().value().to_f32_vec();
        let eval_dropped = dropped.forward(&x, false).unwrap().value().to_f32_vec();
        assert_eq!(
            eval_plain, eval_dropped,
            "{class}: inference ignores dropout"
        );
        let a = dropped.forward(&x, true).unwrap().value().to_f32_vec();
        let b = dropped.forward(&x, true).unwrap().value().to_f32_vec();
        assert_ne!(a, eval_dropped, "{class}: training drops");
        assert_ne!(a, b, "{class}: a new mask each call");
        for bad in ["1.0", "-0.1"] {
            let e = build(&json.replace(
                r#""units": 6}"#,
                &format!(r#""units": 6, "dropout": {bad}}}"#),
            ))
            .err()
            .unwrap()
            .to_string();
            assert!(
                e.contains("dropout must be in [0, 1)"),
                "{class} {bad}: {e}"
            );
        }
    }
}
