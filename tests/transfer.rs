//! Transfer learning, the library side: freezing layers (Keras' `trainable`), frozen
//! BatchNormalization in inference mode, the flag in saved models, nested models, and
//! `load_weights(path, by_name, skip_mismatch)` with its report.

use nabla::layers::keras::*;
use nabla::training::FitArgs;
use nabla::{KerasLoss, Optimizer, Rng, Sequential, Tensor};

const SPARSE: KerasLoss = KerasLoss::SparseCategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};

fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect(),
        shape,
    )
}

/// 4 features -> Dense(8) "feat" -> BN "bn" -> Dense(3) "head", softmax.
fn net(seed: u64, head: usize, head_name: &str) -> Sequential {
    let mut m = Sequential::with_seed(&[4], seed);
    m.add(Dense(8).activation(Relu).name("feat"))
        .unwrap()
        .add(nabla::layers::BatchNormalizationConfig {
            name: Some("bn".into()),
            ..Default::default()
        })
        .unwrap()
        .add(Dense(head).activation(Softmax).name(head_name))
        .unwrap();
    m.compile(SPARSE, Optimizer::adam(0.01), &["accuracy"])
        .unwrap();
    m
}

fn data(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let x = random(&[n, 4], &mut rng);
    let xs = x.to_f32_vec();
    // A learnable rule: the class is which of the first three features is largest.
    let y: Vec<f32> = xs
        .chunks(4)
        .map(|r| {
            let mut best = 0;
            for k in 1..3 {
                if r[k] > r[best] {
                    best = k;
                }
            }
            best as f32
        })
        .collect();
    (x, Tensor::from_vec(y, &[n]))
}

fn weight(m: &Sequential, name: &str) -> Vec<f32> {
    let p = m.params().into_iter().find(|p| p.name == name);
    p.unwrap_or_else(|| panic!("no weight {name}"))
        .var
        .value()
        .to_f32_vec()
}

fn fit(m: &mut Sequential, epochs: usize) {
    let (x, y) = data(64, 1);
    m.fit(
        &x,
        &y,
        FitArgs::new().epochs(epochs).batch_size(16).verbose(0),
    )
    .unwrap();
}

#[test]
fn a_frozen_dense_keeps_its_weights_while_the_others_train() {
    let mut m = net(1, 3, "head");
    m.set_trainable("feat", false).unwrap();
    let (feat, head) = (weight(&m, "feat/kernel"), weight(&m, "head/kernel"));
    fit(&mut m, 3);
    assert_eq!(weight(&m, "feat/kernel"), feat);
    assert_eq!(weight(&m, "feat/bias"), vec![0.0; 8]);
    assert_ne!(weight(&m, "head/kernel"), head);
    // Unfrozen again, without re-compiling: it trains (Adam's state is by name).
    m.set_trainable("feat", true).unwrap();
    fit(&mut m, 1);
    assert_ne!(weight(&m, "feat/kernel"), feat);
}

#[test]
fn a_frozen_weight_gets_no_gradient_at_all() {
    let mut m = net(2, 3, "head");
    m.freeze_until("bn").unwrap();
    let (x, y) = data(16, 2);
    m.train_step(&[x], &[y.into()]).unwrap();
    for p in m.params() {
        let frozen = !p.name.starts_with("head/");
        assert_eq!(p.trainable, !frozen, "{}", p.name);
        assert_eq!(p.var.grad().is_none(), frozen || p.buffer, "{}", p.name);
        assert_eq!(p.var.requires_grad(), !frozen && !p.buffer, "{}", p.name);
    }
}

#[test]
fn summary_counts_frozen_weights_as_non_trainable() {
    // feat: 4*8+8 = 40; bn: gamma+beta 16 (+16 statistics, a line of their own); head:
    // 8*3+3 = 27. Keras: a frozen Dense's 40 are non-trainable; a BN's moving statistics
    // are always non-trainable in Keras, nabla counts them apart as PyTorch does.
    let mut m = net(3, 3, "head");
    assert_eq!(m.count_params(), (83, 0));
    m.set_trainable("feat", false).unwrap();
    assert_eq!(m.count_params(), (43, 40));
    m.set_trainable(1usize, false).unwrap(); // bn, by index
    assert_eq!(m.count_params(), (27, 56));
    let s = m.summary();
    assert!(s.contains("Trainable params: 27\n"), "{s}");
    assert!(s.contains("Non-trainable params: 56\n"), "{s}");
    assert!(s.contains("Batch-norm statistics (not params): 16"), "{s}");
    m.set_model_trainable(false);
    assert_eq!(m.count_params(), (0, 83));
    m.fine_tune_from("bn").unwrap();
    assert_eq!(m.count_params(), (43, 40));
    assert!(!m.is_trainable("feat").unwrap() && m.is_trainable("head").unwrap());
}

#[test]
fn a_frozen_batch_norm_runs_in_inference_mode_and_keeps_its_statistics() {
    let mut m = net(4, 3, "head");
    fit(&mut m, 1);
    let xv = nabla::Var::constant(random(&[5, 4], &mut Rng::new(9)));
    // Trainable: training mode normalizes with the batch's statistics.
    let train = m.forward(&xv, true).unwrap().value().to_f32_vec();
    let infer = m.forward(&xv, false).unwrap().value().to_f32_vec();
    assert_ne!(train, infer);
    m.set_trainable("bn", false).unwrap();
    let stats = |m: &Sequential| {
        let names = [
            "bn/moving_mean",
            "bn/moving_variance",
            "bn/gamma",
            "bn/beta",
        ];
        names.map(|n| weight(m, n))
    };
    let before = stats(&m);
    // Frozen: the same output in training mode as in inference mode.
    let train = m.forward(&xv, true).unwrap().value().to_f32_vec();
    let infer = m.forward(&xv, false).unwrap().value().to_f32_vec();
    assert_eq!(train, infer);
    fit(&mut m, 2);
    assert_eq!(stats(&m), before);
}

#[test]
fn the_flag_round_trips_through_save_and_load() {
    let mut m = net(5, 3, "head");
    m.freeze_until("bn").unwrap();
    let cfg = serde_json::to_string(&m.config()).unwrap();
    assert_eq!(cfg.matches("\"trainable\":false").count(), 2, "{cfg}");
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let back = Sequential::load(dir.path()).unwrap();
    assert!(!back.is_trainable("feat").unwrap());
    assert!(!back.is_trainable("bn").unwrap());
    assert!(back.is_trainable("head").unwrap());
    assert_eq!(back.count_params(), m.count_params());
    let json = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
    assert_eq!(json.matches("\"trainable\": false").count(), 2, "{json}");
    // A model that freezes nothing writes no flag at all (old files read the same).
    let plain = serde_json::to_string(&net(5, 3, "head").config()).unwrap();
    assert!(!plain.contains("trainable"), "{plain}");
}

#[test]
fn freezing_a_nested_model_freezes_all_its_layers() {
    let inputs = Input(&[4]);
    let h = Dense(8)
        .activation(Relu)
        .name("inner")
        .call(&inputs)
        .unwrap();
    let h = BatchNormalization().call(&h).unwrap();
    let mut base = nabla::Model::functional(&[&inputs], &[&h], 1).unwrap();
    base.name = "base".into();
    let outer_in = Input(&[4]);
    let f = base.call(&outer_in).unwrap();
    let out = Dense(3).activation(Softmax).name("top").call(&f).unwrap();
    let mut m = nabla::Model::functional(&[&outer_in], &[&out], 2).unwrap();
    m.compile(SPARSE, Optimizer::adam(0.01), &["accuracy"])
        .unwrap();
    m.set_trainable("base", false).unwrap();
    for p in m.params().iter().filter(|p| p.name.starts_with("base/")) {
        assert!(!p.trainable, "{}", p.name);
    }
    let before = weight(&m, "base/inner/kernel");
    let stats = weight(&m, "base/batch_normalization/moving_mean");
    fit(&mut m, 2);
    assert_eq!(weight(&m, "base/inner/kernel"), before);
    // The inner BN is frozen too: inference mode, statistics kept.
    assert_eq!(weight(&m, "base/batch_normalization/moving_mean"), stats);
    // Unfrozen: every inner layer trains again.
    m.set_trainable("base", true).unwrap();
    assert!(m.params().iter().all(|p| p.trainable || p.buffer));
    fit(&mut m, 1);
    assert_ne!(weight(&m, "base/inner/kernel"), before);
}

#[test]
fn load_by_name_takes_matching_layers_and_reports_the_rest() {
    let mut base = net(6, 3, "head");
    fit(&mut base, 1);
    let dir = tempfile::tempdir().unwrap();
    base.save(dir.path()).unwrap();

    // A new top with another number of classes, same name: skipped by shape.
    let mut m = net(7, 5, "head");
    let head = weight(&m, "head/kernel");
    let r = m.load_weights(dir.path(), true, true).unwrap();
    assert_eq!(
        r.loaded,
        [
            "feat/kernel",
            "feat/bias",
            "bn/gamma",
            "bn/beta",
            "bn/moving_mean",
            "bn/moving_variance"
        ]
    );
    let skipped: Vec<&str> = r.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["head/kernel", "head/bias"]);
    assert!(r.skipped[0].1.contains("[8, 3]") && r.skipped[0].1.contains("[8, 5]"));
    assert!(r.missing.is_empty() && r.unused.is_empty());
    assert_eq!(weight(&m, "feat/kernel"), weight(&base, "feat/kernel"));
    assert_eq!(
        weight(&m, "bn/moving_mean"),
        weight(&base, "bn/moving_mean")
    );
    assert_eq!(weight(&m, "head/kernel"), head);
    assert!(r.describe().contains("skipped head/kernel"));

    // Without skip_mismatch: an error naming the file and the weight; nothing changed.
    let mut m = net(7, 5, "head");
    let feat = weight(&m, "feat/kernel");
    let e = m
        .load_weights(dir.path(), true, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("weights.safetensors") && e.contains("head/kernel"),
        "{e}"
    );
    assert_eq!(weight(&m, "feat/kernel"), feat);

    // A renamed top: its weights are missing from the file, the old top's unused.
    let mut m = net(7, 3, "new_head");
    let r = m
        .load_weights(dir.path().join("weights.safetensors"), true, false)
        .unwrap();
    assert_eq!(r.loaded.len(), 6);
    assert_eq!(r.missing, ["new_head/kernel", "new_head/bias"]);
    assert_eq!(r.unused, ["head/bias", "head/kernel"]);
    // Not by name, the file must be the model's own.
    let e = m
        .load_weights(dir.path(), false, true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("new_head/kernel") && e.contains("head/kernel"),
        "{e}"
    );
    // A folder without weights.
    let empty = tempfile::tempdir().unwrap();
    let e = m
        .load_weights(empty.path(), true, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("weights.safetensors"), "{e}");
}
