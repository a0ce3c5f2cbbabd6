//! The functional API end to end: merges and blocks pass gradient checks, a residual
//! block's identity path carries gradient, graphs save and load, several inputs and
//! outputs, nested models, and clear errors for broken graphs.

use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::layers::keras::*;
use nabla::layers::LayerConfig;
use nabla::models::blocks;
use nabla::training::gradcheck::check_model;
use nabla::training::{Model, SymbolicTensor};
use nabla::{KerasLoss, Loss, Optimizer, Rng, Tensor, Var};

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

/// Gradient check of every trainable weight of a model built from `body` on `input`.
fn check(
    name: &str,
    input: &[usize],
    body: impl Fn(&SymbolicTensor) -> nabla::Result<SymbolicTensor>,
) {
    let inputs = Input(input);
    let x = body(&inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = if x.shape().len() > 1 {
        Flatten().call(&x).unwrap()
    } else {
        x
    };
    let out = Dense(3).activation(Softmax).call(&x).unwrap();
    let mut m = Model::functional(&[&inputs], &[&out], 7).unwrap();
    m.compile(SPARSE, Optimizer::sgd(0.0), &[]).unwrap();
    let mut rng = Rng::new(3);
    let mut shape = vec![3];
    shape.extend_from_slice(input);
    let x = random(&shape, &mut rng);
    let y = Tensor::from_vec(vec![0.0, 2.0, 1.0], &[3]);
    let reports = check_model(&mut m, &x, &y, 30, 1e-2).unwrap();
    assert!(!reports.is_empty());
    for r in reports {
        assert!(r.checked > 0, "{name}: every entry of {} skipped", r.param);
        assert!(
            r.rel_error < DEFAULT_TOLERANCE,
            "{name}: {} relative error {:.3e}",
            r.param,
            r.rel_error
        );
    }
}

#[test]
fn merge_layers_pass_the_gradient_check() {
    type Merge = fn() -> LayerConfig;
    let merges: Vec<(&str, Merge)> = vec![
        ("add", Add),
        ("subtract", Subtract),
        ("multiply", Multiply),
        ("average", Average),
        ("maximum", Maximum),
        ("minimum", Minimum),
        ("concatenate", || {
            LayerConfig::new(nabla::layers::ConcatenateConfig::default())
        }),
    ];
    for (name, merge) in merges {
        check(name, &[6], |x| {
            let a = Dense(4).activation(Tanh).call(x)?;
            let b = Dense(4).activation(Tanh).call(x)?;
            merge().call_many(&[&a, &b])
        });
    }
    // Three-way merges and channel concatenation of conv branches.
    check("add3", &[6], |x| {
        let a = Dense(4).call(x)?;
        let b = Dense(4).activation(Tanh).call(x)?;
        let c = Dense(4).activation(Sigmoid).call(x)?;
        Add().call_many(&[&a, &b, &c])
    });
    check("concat-conv", &[2, 5, 5], |x| {
        let a = Conv2D(2, 3).padding(Same).call(x)?;
        let b = Conv2D(3, 1).activation(Tanh).call(x)?;
        Concatenate().call_many(&[&a, &b, x])
    });
    check("reshape", &[6], |x| {
        let a = Dense(8).activation(Tanh).call(x)?;
        Reshape(&[2, -1]).call(&a)
    });
}

#[test]
fn blocks_pass_the_gradient_check() {
    check("basic block, identity", &[4, 5, 5], |x| {
        blocks::basic_block(x, 4, 1, None, "b")
    });
    check("basic block, projection", &[3, 6, 6], |x| {
        blocks::basic_block(x, 4, 2, None, "b")
    });
    check("bottleneck block", &[4, 5, 5], |x| {
        blocks::bottleneck_block(x, 2, 2, None, "b")
    });
    check("squeeze-and-excitation", &[4, 4, 4], |x| {
        let x = Conv2D(4, 3).padding(Same).call(x)?;
        blocks::se_block(&x, 2, "se")
    });
    check("se basic block", &[4, 5, 5], |x| {
        blocks::basic_block(x, 4, 1, Some(2), "b")
    });
    let f = blocks::InceptionFilters {
        b1x1: 2,
        b3x3_reduce: 2,
        b3x3: 3,
        b5x5_reduce: 2,
        b5x5: 2,
        pool_proj: 2,
    };
    check("inception module", &[3, 5, 5], |x| {
        let y = blocks::inception_module(x, f, "inc")?;
        assert_eq!(y.shape(), [f.out_channels(), 5, 5]);
        Ok(y)
    });
}

#[test]
fn the_identity_path_of_a_residual_block_carries_gradient() {
    let inputs = Input(&[4, 5, 5]);
    let out = blocks::basic_block(&inputs, 4, 1, None, "b").unwrap();
    let m = Model::functional(&[&inputs], &[&out], 1).unwrap();
    let mut m = m;
    // Kill the residual branch: with its convs at zero (and BN's beta at 0) the block is
    // relu(x + 0), and the only way gradient reaches x is the shortcut.
    for p in m.params() {
        if p.name.ends_with("conv/kernel") {
            p.var.set_value(Tensor::zeros(&p.var.shape()));
        }
    }
    let mut rng = Rng::new(5);
    let x = Var::parameter(random(&[2, 4, 5, 5], &mut rng));
    let y = m.forward(&x, false).unwrap();
    nabla::ops::elementwise::sum(&y).backward();
    let g = x.grad().expect("the input gets a gradient");
    let want: Vec<f32> = x
        .value()
        .data()
        .iter()
        .map(|&v| (v > 0.0) as u8 as f32)
        .collect();
    assert_eq!(g.data(), &want[..]);
    assert!(g.data().iter().filter(|&&v| v == 1.0).count() > 40);
}

fn residual_cnn(seed: u64) -> Model {
    let inputs = Input(&[1, 28, 28]);
    let x = blocks::conv_bn_relu(&inputs, 16, 3, 2, "stem").unwrap(); // [16, 14, 14]
    let x = blocks::basic_block(&x, 16, 1, None, "res1").unwrap();
    let x = blocks::basic_block(&x, 32, 2, Some(4), "res2").unwrap(); // [32, 7, 7]
    let x = Flatten().call(&x).unwrap();
    let out = Dense(10).activation(Softmax).call(&x).unwrap();
    let mut m = Model::functional(&[&inputs], &[&out], seed).unwrap();
    m.name = "residual-cnn".into();
    m
}

#[test]
fn a_residual_net_learns_mnist_and_round_trips_through_disk() {
    let ds = nabla::data::load_data("mnist").unwrap();
    let (x, y) = (
        ds.x_train.slice_rows(0, 6000),
        ds.y_train.slice_rows(0, 6000),
    );
    let mut m = residual_cnn(3);
    m.compile(SPARSE, Optimizer::adam(0.003), &["accuracy"])
        .unwrap();
    let summary = m.summary();
    assert!(summary.contains("Connected to"), "{summary}");
    assert!(summary.contains("res1_add (Add)"), "{summary}");
    m.fit(
        &x,
        &y,
        nabla::FitArgs::new().epochs(3).batch_size(64).verbose(0),
    )
    .unwrap();
    let (xt, yt) = (ds.x_test.slice_rows(0, 2000), ds.y_test.slice_rows(0, 2000));
    let acc = m.evaluate(&xt, &yt, 500).unwrap().accuracy().unwrap();
    assert!(acc > 0.93, "accuracy {acc}");

    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let json = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
    assert!(json.contains("\"inbound\""), "{json}");
    let mut back = Model::load(dir.path()).unwrap();
    assert!(!back.is_sequential());
    assert_eq!(back.summary(), m.summary());
    let p1 = m.predict(&xt, 500).unwrap();
    let p2 = back.predict(&xt, 500).unwrap();
    assert_eq!(p1.data(), p2.data());
}

#[test]
fn several_inputs_and_outputs() {
    let image = NamedInput("image", &[1, 6, 6]);
    let meta = NamedInput("meta", &[3]);
    let a = Flatten().call(&image).unwrap();
    let a = Dense(4).activation(Relu).call(&a).unwrap();
    let joined = Concatenate().call_many(&[&a, &meta]).unwrap();
    let class = Dense(5)
        .activation(Softmax)
        .named("class")
        .call(&joined)
        .unwrap();
    let score = Dense(1).named("score").call(&joined).unwrap();
    let mut m = Model::functional(&[&image, &meta], &[&class, &score], 0).unwrap();
    assert_eq!(m.output_shapes(), vec![&[5][..], &[1][..]]);
    let mut rng = Rng::new(1);
    let xs = [random(&[7, 1, 6, 6], &mut rng), random(&[7, 3], &mut rng)];
    let out = m.predict_many(&xs, 3).unwrap();
    assert_eq!(out[0].shape(), [7, 5]);
    assert_eq!(out[1].shape(), [7, 1]);
    // The same graph from its saved config computes the same thing (with the same batch
    // size: a batch's last row alone takes the one-row GEMV, which rounds differently).
    let mut back = Model::from_config(&m.config(), 9).unwrap();
    back.set_weights(&m.get_weights()).unwrap();
    assert_eq!(back.predict_many(&xs, 3).unwrap()[1].data(), out[1].data());
    // One-input one-output calls say what to use instead.
    let e = m.predict(&xs[0], 3).unwrap_err().to_string();
    assert!(e.contains("2 inputs and 2 outputs"), "{e}");
    let e = m.predict_many(&xs[..1], 3).unwrap_err().to_string();
    assert!(e.contains("has 2 inputs, got 1"), "{e}");
}

#[test]
fn a_model_used_as_a_layer_keeps_its_weights() {
    let inputs = Input(&[1, 28, 28]);
    let x = Flatten().call(&inputs).unwrap();
    let code = Dense(16).activation(Relu).call(&x).unwrap();
    let mut encoder = Model::functional(&[&inputs], &[&code], 4).unwrap();
    encoder.name = "encoder".into();

    let outer_in = Input(&[1, 28, 28]);
    let h = encoder.call(&outer_in).unwrap();
    let out = Dense(10).activation(Softmax).call(&h).unwrap();
    let mut m = Model::functional(&[&outer_in], &[&out], 5).unwrap();
    assert!(m.params().iter().any(|p| p.name == "encoder/dense/kernel"));
    let mut rng = Rng::new(2);
    let x = random(&[4, 1, 28, 28], &mut rng);
    // The nested layer computes what the encoder computes.
    let trace = m.forward_trace(&x).unwrap();
    let inner = encoder.predict(&x, 4).unwrap();
    assert_eq!(trace[0].0, "encoder");
    assert_eq!(trace[0].1.data(), inner.data());
    // Saved and loaded, nested weights included.
    m.compile(SPARSE, Optimizer::adam(0.001), &["accuracy"])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let mut back = Model::load(dir.path()).unwrap();
    assert_eq!(
        back.predict(&x, 4).unwrap().data(),
        m.predict(&x, 4).unwrap().data()
    );
}

#[test]
fn broken_graphs_get_clear_errors() {
    let a = Input(&[4]);
    let b = Input(&[5]);
    let e = Add().call_many(&[&a, &b]).unwrap_err().to_string();
    assert!(e.contains("'add' (Add)") && e.contains("one shape"), "{e}");
    let e = Add().call(&a).unwrap_err().to_string();
    assert!(e.contains("at least 2 inputs"), "{e}");
    let e = Dense(3).call_many(&[&a, &a]).unwrap_err().to_string();
    assert!(e.contains("takes one input"), "{e}");
    let y = Concatenate()
        .call_many(&[&Dense(2).call(&a).unwrap(), &Dense(2).call(&b).unwrap()])
        .unwrap();
    let e = Model::functional(&[&a], &[&y], 0).unwrap_err().to_string();
    assert!(e.contains("graph disconnected"), "{e}");
    let d = Dense(2).named("twin").call(&a).unwrap();
    let d2 = Dense(2).named("twin").call(&d).unwrap();
    let e = Model::functional(&[&a], &[&d2], 0).unwrap_err().to_string();
    assert!(e.contains("two layers are named 'twin'"), "{e}");
    let e = Model::functional(&[&d], &[&d2], 0).unwrap_err().to_string();
    assert!(e.contains("not an Input"), "{e}");
}

#[test]
fn json_configs_name_each_layers_inputs() {
    let json = r#"{
        "name": "tiny-resnet",
        "input_shape": [4],
        "layers": [
            {"class_name": "Dense", "config": {"name": "a", "units": 4, "activation": "relu"}},
            {"class_name": "Dense", "config": {"name": "b", "units": 4}},
            {"class_name": "Add", "config": {"name": "skip"}, "inbound": ["input", "b"]},
            {"class_name": "Dense", "config": {"units": 2, "activation": "softmax"}}
        ]
    }"#;
    let cfg: nabla::training::ModelConfig = serde_json::from_str(json).unwrap();
    let m = Model::from_config(&cfg, 0).unwrap();
    assert_eq!(m.layer_inbound_names(2), ["input", "b"]);
    assert_eq!(m.layer_inbound_names(3), ["skip"]);
    assert_eq!(m.output_shape(), &[2]);
    let bad = json.replace("\"input\", \"b\"", "\"input\", \"nope\"");
    let cfg: nabla::training::ModelConfig = serde_json::from_str(&bad).unwrap();
    let e = Model::from_config(&cfg, 0).unwrap_err().to_string();
    assert!(
        e.contains("no input or earlier layer is named 'nope'"),
        "{e}"
    );
    let bad = json.replace("\"inbound\"", "\"inbund\"");
    assert!(serde_json::from_str::<nabla::training::ModelConfig>(&bad).is_err());
}

#[test]
fn a_two_input_two_output_model_trains_with_a_custom_loop() {
    // Besides fit_many (tests/multi_io.rs), any graph trains with a loop of one's own
    // over call_many, the losses and an optimizer. Task: class = which of the two inputs has the larger sum, and
    // score = the difference of the sums.
    let a_in = NamedInput("a", &[4]);
    let b_in = NamedInput("b", &[4]);
    let joined = Concatenate().call_many(&[&a_in, &b_in]).unwrap();
    let h = Dense(16).activation(Tanh).call(&joined).unwrap();
    let class = Dense(2)
        .activation(Softmax)
        .named("class")
        .call(&h)
        .unwrap();
    let score = Dense(1).named("score").call(&h).unwrap();
    let mut m = Model::functional(&[&a_in, &b_in], &[&class, &score], 1).unwrap();
    let mut opt = Optimizer::adam(0.01);
    let params: Vec<_> = m.params().into_iter().filter(|p| p.trainable).collect();
    let mut rng = Rng::new(4);
    let batch = |rng: &mut Rng| {
        let (a, b) = (random(&[64, 4], rng), random(&[64, 4], rng));
        let diff: Vec<f32> = (0..64)
            .map(|i| {
                (0..4)
                    .map(|j| a.data()[i * 4 + j] - b.data()[i * 4 + j])
                    .sum()
            })
            .collect();
        let labels: Vec<f32> = diff.iter().map(|&d| (d > 0.0) as u8 as f32).collect();
        (
            a,
            b,
            Tensor::from_vec(labels, &[64]),
            Tensor::from_vec(diff, &[64, 1]),
        )
    };
    let ce = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    for _ in 0..300 {
        let (a, b, labels, diff) = batch(&mut rng);
        let out = m
            .call_many(&[Var::constant(a), Var::constant(b)], true)
            .unwrap();
        let loss = nabla::ops::elementwise::add(
            &ce.compute(&out[0], &labels.clone().into(), false).unwrap(),
            &KerasLoss::MeanSquaredError
                .compute(&out[1], &diff.clone().into(), false)
                .unwrap(),
        )
        .unwrap();
        for p in &params {
            p.var.zero_grad();
        }
        loss.backward();
        opt.step(&params);
    }
    let (a, b, labels, diff) = batch(&mut rng);
    let out = m.predict_many(&[a, b], 64).unwrap();
    let correct = out[0]
        .argmax_rows()
        .iter()
        .zip(labels.data())
        .filter(|(&p, &l)| p as f32 == l)
        .count();
    assert!(correct >= 58, "{correct}/64");
    let mse: f32 = out[1]
        .data()
        .iter()
        .zip(diff.data())
        .map(|(p, d)| (p - d) * (p - d))
        .sum::<f32>()
        / 64.0;
    assert!(mse < 0.05, "mse {mse}");
}

#[test]
fn config_shapes_match_the_built_models() {
    // ModelConfig::output_shapes walks the configs without building weights (nested
    // models' shape check); it must agree with the built graph.
    let mut cfgs = vec![
        nabla::models::build("resnet20", 0).unwrap().config(),
        nabla::models::build("keras-cnn", 0).unwrap().config(),
    ];
    let a = NamedInput("a", &[4]);
    let b = NamedInput("b", &[3]);
    let h = Dense(5).call(&a).unwrap();
    let j = Concatenate().call_many(&[&h, &b]).unwrap();
    let o = Dense(2).call(&j).unwrap();
    cfgs.push(Model::functional(&[&a, &b], &[&o, &h], 0).unwrap().config());
    for cfg in cfgs {
        let built = Model::from_config(&cfg, 0).unwrap();
        let want: Vec<Vec<nabla::layers::Dim>> =
            built.output_shapes().iter().map(|s| s.to_vec()).collect();
        assert_eq!(cfg.output_shapes().unwrap(), want, "{}", cfg.name);
    }
}

#[test]
fn a_shared_layer_is_one_set_of_weights() {
    // A siamese pair: one tower called on both inputs.
    let a = NamedInput("a", &[3]);
    let b = NamedInput("b", &[3]);
    let tower = Dense(4).activation(Tanh).named("tower").shared();
    let ta = tower.call(&a).unwrap();
    let tb = tower.call(&b).unwrap();
    let d = Subtract().call_many(&[&ta, &tb]).unwrap();
    let out = Dense(1).named("out").call(&d).unwrap();
    let mut m = Model::functional(&[&a, &b], &[&out], 3).unwrap();
    let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
    assert_eq!(
        names,
        ["tower/kernel", "tower/bias", "out/kernel", "out/bias"]
    );
    assert_eq!(m.count_params().0, 3 * 4 + 4 + 4 + 1);
    assert_eq!(m.layer_inbound_names(1), ["b"]);
    let summary = m.summary();
    assert!(summary.contains("tower:1 (Dense, shared)"), "{summary}");
    assert!(summary.contains("Total params: 21"), "{summary}");
    // One function on both sides: equal inputs give 0 difference, swapped inputs give
    // the opposite difference.
    let mut rng = Rng::new(8);
    let x = random(&[5, 3], &mut rng);
    let y = random(&[5, 3], &mut rng);
    let bias = m.get_layer("out").unwrap().params()[1].var.value().data()[0];
    let same = m.predict_many(&[x.clone(), x.clone()], 5).unwrap();
    assert!(same[0].data().iter().all(|&v| v == bias), "{:?}", same[0]);
    let xy = m.predict_many(&[x.clone(), y.clone()], 5).unwrap();
    let yx = m.predict_many(&[y.clone(), x.clone()], 5).unwrap();
    for (p, q) in xy[0].data().iter().zip(yx[0].data()) {
        assert!(((p - bias) + (q - bias)).abs() < 1e-6, "{p} {q}");
    }
    // The gradient of both calls reaches the one kernel.
    m.compile(KerasLoss::MeanSquaredError, Optimizer::sgd(0.0), &[])
        .unwrap();
    let target = random(&[5, 1], &mut rng);
    let reports = nabla::training::gradcheck::check_model_many(
        &mut m,
        &[x.clone(), y.clone()],
        std::slice::from_ref(&target),
        30,
        1e-2,
    )
    .unwrap();
    for r in reports {
        assert!(r.checked > 0 && r.rel_error < DEFAULT_TOLERANCE, "{r:?}");
    }
    // Saved as one layer and a call of it; loaded, it computes the same.
    let json = serde_json::to_string(&m.config()).unwrap();
    assert!(
        json.contains(r#"{"class_name":"Shared","config":{"name":"tower:1","layer":"tower"}"#),
        "{json}"
    );
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let mut back = Model::load(dir.path()).unwrap();
    assert_eq!(back.count_params(), m.count_params());
    let again = back.predict_many(&[x.clone(), y.clone()], 5).unwrap();
    assert_eq!(again[0].data(), xy[0].data());
    assert_eq!(
        m.config().output_shapes().unwrap(),
        vec![vec![1usize]],
        "the config walk resolves Shared calls"
    );
}

#[test]
fn a_layer_applied_twice_in_a_row_passes_the_gradient_check() {
    check("dense applied twice", &[4], |x| {
        let step = Dense(4).activation(Tanh).shared();
        let h = step.call(x)?;
        let h = step.call(&h)?;
        step.call(&h)
    });
}

#[test]
fn shared_layers_get_clear_errors() {
    let a = Input(&[3]);
    let b = Input(&[5]);
    let tower = Dense(4).named("tower").shared();
    let ta = tower.call(&a).unwrap();
    let tb = tower.call(&b).unwrap(); // the symbolic call cannot know the weights yet
    let j = Concatenate().call_many(&[&ta, &tb]).unwrap();
    let e = Model::functional(&[&a, &b], &[&j], 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'tower:1' calls 'tower' again on inputs [[5]]")
            && e.contains("built for inputs [[3]]"),
        "{e}"
    );
    let json = r#"{
        "input_shape": [4],
        "layers": [
            {"class_name": "Dense", "config": {"name": "d", "units": 4}},
            {"class_name": "Shared", "config": {"layer": "nope"}}
        ]
    }"#;
    let cfg: nabla::training::ModelConfig = serde_json::from_str(json).unwrap();
    let e = Model::from_config(&cfg, 0).unwrap_err().to_string();
    assert!(e.contains("names the layer 'nope'"), "{e}");
    assert!(cfg.output_shapes().is_err());
    let ok = json.replace("nope", "d");
    let cfg: nabla::training::ModelConfig = serde_json::from_str(&ok).unwrap();
    let m = Model::from_config(&cfg, 0).unwrap();
    assert_eq!(m.layers()[1].name(), "d:1");
    assert_eq!(cfg.output_shapes().unwrap(), vec![vec![4usize]]);
}
