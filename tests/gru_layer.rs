//! The GRU layer through the model API: a JSON config with `input_shape [null]`,
//! batches of two lengths, Keras' parameter count, save and reload, clear config
//! errors, a model-level gradient check, and (ignored by default) a timing.

use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::layers::keras::*;
use nabla::training::gradcheck::check_model;
use nabla::training::ModelConfig;
use nabla::{KerasLoss, Optimizer, Sequential, Tensor};

/// Keras' `Sequential([Embedding(100, 8), GRU(6), Dense(3, activation="softmax")])` on
/// `input_shape=(None,)`.
const TEXT_GRU: &str = r#"{"name": "text-gru", "input_shape": [null], "layers": [
    {"class_name": "Embedding", "config": {"input_dim": 100, "output_dim": 8}},
    {"class_name": "GRU", "config": {"units": 6}},
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
fn a_text_gru_from_json_runs_two_lengths_and_counts_params_as_keras() {
    let mut m = build(TEXT_GRU).unwrap();
    let counts: Vec<usize> = m
        .layers()
        .iter()
        .map(|l| l.params().iter().map(|p| p.var.value().numel()).sum())
        .collect();
    // Keras (reset_after=True): GRU 3 * (F*U + U*U + 2U) with F = 8, U = 6.
    assert_eq!(counts, [100 * 8, 3 * (8 * 6 + 6 * 6 + 2 * 6), 6 * 3 + 3]);
    assert_eq!(counts[1], 288);
    let shapes: Vec<(String, Vec<usize>)> = m
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.var.shape()))
        .collect();
    assert_eq!(shapes[1], ("gru/kernel".into(), vec![8, 18]));
    assert_eq!(shapes[2], ("gru/recurrent_kernel".into(), vec![6, 18]));
    assert_eq!(shapes[3], ("gru/bias".into(), vec![2, 18]));
    for t in [5, 17] {
        let p = m.predict(&ids(3, t), 2).unwrap();
        assert_eq!(p.shape(), [3, 3], "length {t}");
        for r in p.to_f32_vec().chunks(3) {
            assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{r:?}");
        }
    }
    // return_sequences keeps the None time axis.
    let seq = TEXT_GRU.replace(r#""units": 6}"#, r#""units": 6, "return_sequences": true}"#);
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
        .find(|(n, _)| n == "gru/recurrent_kernel")
        .unwrap();
    assert_eq!(rk.1.shape(), [6, 18]);
    let mut back = Sequential::load(&path).unwrap();
    let x = ids(2, 17);
    assert_eq!(
        back.predict(&x, 2).unwrap().to_f32_vec(),
        m.predict(&x, 2).unwrap().to_f32_vec()
    );
}

#[test]
fn bad_gru_configs_are_clear_errors() {
    let with = |gru: &str, input: &str, embed: bool| {
        let first = if embed {
            r#"{"class_name": "Embedding", "config": {"input_dim": 50, "output_dim": 4}},"#
        } else {
            ""
        };
        build(&format!(
            r#"{{"input_shape": {input}, "layers": [{first}
                {{"class_name": "GRU", "config": {gru}}}]}}"#
        ))
    };
    let cases = [
        (
            with(r#"{"units": 0}"#, "[null]", true),
            "layer 'gru' (GRU): units (0) must be positive",
        ),
        (
            with(r#"{"units": 4}"#, "[8]", false),
            "layer 'gru' (GRU) expects sequences [batch, steps, features], got [batch, 8]",
        ),
        (
            with(r#"{"units": 4, "reset_after": false}"#, "[null]", true),
            "layer 'gru' (GRU): only reset_after=true",
        ),
        (
            with(
                r#"{"units": 4, "recurrent_activation": "tanh"}"#,
                "[null]",
                true,
            ),
            "layer 'gru' (GRU): only activation \"tanh\" and recurrent_activation \"sigmoid\"",
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
    for field in ["go_backwards", "stateful", "unit_forget_bias"] {
        let cfg = format!(
            r#"{{"input_shape": [null, 3], "layers": [{{"class_name": "GRU", "config":
            {{"units": 4, "{field}": 0}}}}]}}"#
        );
        let e = serde_json::from_str::<ModelConfig>(&cfg)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{e}");
    }
}

#[test]
fn gradcheck_embedding_gru_dense() {
    let sparse = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    for seq in [false, true] {
        let mut m = Sequential::with_seed(&[None], 7);
        m.add(Embedding(10, 4)).unwrap();
        m.add(GRU(5).return_sequences(seq)).unwrap();
        if seq {
            m.add(GlobalAveragePooling1D()).unwrap();
        }
        m.add(Dense(3).activation(Softmax)).unwrap();
        m.compile(sparse, Optimizer::sgd(0.0), &[]).unwrap();
        let x = ids(3, 6).map(|v| (v as usize % 10) as f32);
        let y = Tensor::from_vec(vec![0., 2., 1.], &[3]);
        let reports = check_model(&mut m, &x, &y, 40, 1e-2).unwrap();
        assert!(reports.iter().any(|r| r.param == "gru/recurrent_kernel"));
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

/// `Bidirectional` wraps a GRU with no change to either file (the wrapper builds its
/// layer through the registry): twice the GRU's parameters, named as Keras names them,
/// batches of two lengths, and a model-level gradient check through both directions.
#[test]
fn bidirectional_gru_runs_and_its_gradients_check() {
    let mut m = Sequential::with_seed(&[None], 5);
    m.add(Embedding(10, 4)).unwrap();
    m.add(Bidirectional(GRU(3))).unwrap();
    m.add(Dense(3).activation(Softmax)).unwrap();
    let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
    assert!(names.contains(&"bidirectional/backward_gru/recurrent_kernel".to_string()));
    let gru_params = 3 * (4 * 3 + 3 * 3 + 2 * 3);
    let counted: usize = m.layers()[1]
        .params()
        .iter()
        .map(|p| p.var.value().numel())
        .sum();
    assert_eq!(counted, 2 * gru_params);
    for t in [5, 9] {
        let p = m
            .predict(&ids(2, t).map(|v| (v as usize % 10) as f32), 2)
            .unwrap();
        assert_eq!(p.shape(), [2, 3], "length {t}");
    }
    let sparse = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    m.compile(sparse, Optimizer::sgd(0.0), &[]).unwrap();
    let x = ids(3, 6).map(|v| (v as usize % 10) as f32);
    let y = Tensor::from_vec(vec![0., 2., 1.], &[3]);
    let reports = check_model(&mut m, &x, &y, 40, 1e-2).unwrap();
    assert!(reports
        .iter()
        .any(|r| r.param == "bidirectional/backward_gru/kernel"));
    for r in reports {
        assert!(r.passed(), "{r:?}");
    }
}

/// `cargo test --release --test gru_layer -- --ignored --nocapture`: forward + backward
/// of one GRU op, N=64, T=32, F=64, U=128.
#[test]
#[ignore]
fn time_forward_backward() {
    use nabla::ops::gru::gru;
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
    let w = rand(&[f, 3 * u], 0.1);
    let rw = rand(&[u, 3 * u], 0.1);
    let b = rand(&[2, 3 * u], 0.1);
    let mut times = vec![];
    for _ in 0..6 {
        let start = std::time::Instant::now();
        let y = gru(&x, &w, &rw, Some(&b), true, None).unwrap();
        let fwd = start.elapsed();
        y.backward_with(Tensor::ones(&y.shape()));
        times.push((fwd.as_secs_f64() * 1e3, start.elapsed().as_secs_f64() * 1e3));
    }
    times.sort_by(|a, b| a.1.total_cmp(&b.1));
    println!(
        "GRU N={n} T={t} F={f} U={u}: forward {:.1} ms, forward+backward {:.1} ms (best of 6)",
        times[0].0, times[0].1
    );
}
