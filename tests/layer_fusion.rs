//! Layer fusion (`nn::Graph::relu_fusions`): batch norm + ReLU and Add + ReLU run as one
//! fused op each, and at inference batch norm is folded into the conv before it.
//! Against the unfused layers (`set_layer_fusion(false)`): training gives the same
//! outputs and weights bit for bit on every zoo net that has the pairs, inference the
//! same predictions within f32 rounding; the profile shows where each fused ReLU's time
//! went.

use nabla::nn::set_layer_fusion;
use nabla::training::profile_training;
use nabla::{models, KerasLoss, Optimizer, Rng, Tensor};

const SHAPE: [usize; 3] = [1, 16, 16];

fn batch(seed: u64, n: usize) -> (Tensor, Tensor) {
    let mut rng = Rng::new(seed);
    let numel = n * SHAPE.iter().product::<usize>();
    let x = Tensor::from_vec(
        (0..numel).map(|_| rng.uniform_range(0.0, 1.0)).collect(),
        &[n, SHAPE[0], SHAPE[1], SHAPE[2]],
    );
    let y = Tensor::from_vec((0..n).map(|i| (i % 10) as f32).collect(), &[n]);
    (x, y)
}

/// Three Adam steps: the weights' bits, and the training-mode output of a fourth batch.
fn train(name: &str, fused: bool) -> (Vec<Vec<u32>>, Vec<u32>) {
    set_layer_fusion(fused);
    let mut model = models::build_for(name, &SHAPE, 10, 3).unwrap();
    let loss = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    model.compile(loss, Optimizer::adam(1e-2), &[]).unwrap();
    for step in 0..3 {
        let (x, y) = batch(step, 8);
        model.train_step(&[x], &[y.into()]).unwrap();
    }
    let (x, _) = batch(9, 5);
    let out = model
        .forward(&nabla::Var::constant(x), true)
        .unwrap()
        .value();
    set_layer_fusion(true);
    let bits = |t: &Tensor| t.to_f32_vec().iter().map(|v| v.to_bits()).collect();
    let weights = model
        .params()
        .iter()
        .map(|p| bits(&p.var.value()))
        .collect();
    (weights, bits(&out))
}

#[test]
fn fused_nets_train_exactly_as_unfused() {
    for name in ["resnet20", "se-resnet20", "vgg-small", "inception-mini"] {
        let model = models::build_for(name, &SHAPE, 10, 3).unwrap();
        assert!(
            model.relu_fusions().iter().any(Option::is_some),
            "{name} has batch norm + ReLU pairs"
        );
        let (w_fused, p_fused) = train(name, true);
        let (w_plain, p_plain) = train(name, false);
        assert_eq!(p_fused, p_plain, "{name}: training-mode outputs");
        assert_eq!(w_fused.len(), w_plain.len());
        for (k, (a, b)) in w_fused.iter().zip(&w_plain).enumerate() {
            assert_eq!(a, b, "{name}: weight {k} after 3 steps");
        }
    }
}

#[test]
fn resnet_fuses_every_bn_relu_and_add_relu_pair() {
    let model = models::build_for("resnet20", &SHAPE, 10, 0).unwrap();
    let fusions = model.relu_fusions();
    let layers = model.layers();
    let pairs: Vec<(String, String)> = fusions
        .iter()
        .enumerate()
        .filter_map(|(j, p)| {
            p.map(|i| (layers[i].name().to_string(), layers[j].name().to_string()))
        })
        .collect();
    // 1 stem + 9 blocks' first BN+ReLU, and 9 blocks' Add+ReLU.
    assert_eq!(pairs.len(), 19, "{pairs:?}");
    assert!(
        pairs.contains(&("conv1_bn".into(), "conv1_relu".into())),
        "{pairs:?}"
    );
    assert!(
        pairs.contains(&("conv2_block1_add".into(), "conv2_block1_out".into())),
        "{pairs:?}"
    );
    // A block's second BN feeds the Add, not a ReLU: not fused.
    assert!(
        !pairs.iter().any(|(a, _)| a == "conv2_block1_2_bn"),
        "{pairs:?}"
    );
}

#[test]
fn the_profile_names_the_fused_layers() {
    let mut model = models::build_for("resnet20", &SHAPE, 10, 0).unwrap();
    let loss = KerasLoss::SparseCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    };
    model.compile(loss, Optimizer::adam(1e-3), &[]).unwrap();
    let (x, y) = batch(1, 16);
    let p = profile_training(&mut model, &x, &y, 8, 1, 2).unwrap();
    let row = |name: &str| p.layers.iter().find(|l| l.name == name).unwrap();
    assert_eq!(row("conv1_bn").class_name, "BatchNormalization+ReLU");
    assert_eq!(
        row("conv1_relu").class_name,
        "Activation, fused into conv1_bn"
    );
    assert_eq!(row("conv2_block1_add").class_name, "Add+ReLU");
    assert_eq!(row("conv2_block1_2_bn").class_name, "BatchNormalization");
    assert!(row("conv1_bn").forward_ms > 0.0);
    // Fusion off: every layer is its own row again.
    set_layer_fusion(false);
    let p = profile_training(&mut model, &x, &y, 8, 1, 2).unwrap();
    set_layer_fusion(true);
    let row = |name: &str| p.layers.iter().find(|l| l.name == name).unwrap();
    assert_eq!(row("conv1_bn").class_name, "BatchNormalization");
    assert_eq!(row("conv1_relu").class_name, "Activation");
    assert!(row("conv1_relu").forward_ms > 0.0);
}

/// At inference a conv's batch norm (and the ReLU after it) is folded into the conv's
/// weights: not bit-identical (the products round differently), so within f32 noise of
/// the unfolded layers, on trained weights and moving statistics.
#[test]
fn batch_norm_folded_into_conv_predicts_as_unfolded() {
    for name in ["resnet20", "vgg-small", "inception-mini"] {
        set_layer_fusion(true);
        let mut model = models::build_for(name, &SHAPE, 10, 5).unwrap();
        let loss = KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        };
        // A small step: moved moving statistics, outputs not saturated at 0 or 1.
        model.compile(loss, Optimizer::adam(1e-4), &[]).unwrap();
        for step in 0..3 {
            let (x, y) = batch(step, 8);
            model.train_step(&[x], &[y.into()]).unwrap();
        }
        let (x, _) = batch(9, 6);
        let folded = model.predict(&x, 6).unwrap().to_f32_vec();
        set_layer_fusion(false);
        let plain = model.predict(&x, 6).unwrap().to_f32_vec();
        set_layer_fusion(true);
        let worst = folded
            .iter()
            .zip(&plain)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "{name}: max |folded - plain| = {worst}");
        assert!(
            folded != plain,
            "{name}: folding ran (the rounding differs)"
        );
    }
}
