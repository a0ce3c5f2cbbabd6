//! Gradient check of every layer, activation and loss, through the model API: each case
//! builds a small model, and every trainable parameter's gradient (and so, through the
//! chain rule, every layer's input gradient below it) is compared with central
//! differences of the training loss. Tolerance: `DEFAULT_TOLERANCE` (1e-2, normwise
//! relative; see `engine::gradcheck` for why this separates f32 noise from real bugs).

use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::layers::keras::*;
use nabla::layers::{
    Conv2DConfig, LayerConfig, Padding1D, Padding2D, PaddingMode, Pool2dConfig, Regularizer,
};
use nabla::training::gradcheck::check_model;
use nabla::{KerasLoss, Optimizer, Rng, Sequential, Tensor};

/// The batch `run_case` checks on: uniform in [-1, 1].
fn inputs(input: &[usize], batch: usize, rng: &mut Rng) -> Tensor {
    let mut shape = vec![batch];
    shape.extend_from_slice(input);
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect(),
        &shape,
    )
}

fn run_case(name: &str, input: &[usize], layers: Vec<LayerConfig>, loss: KerasLoss) {
    let mut m = Sequential::with_seed(input, 7);
    for l in layers {
        m.add(l).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    m.compile(loss, Optimizer::sgd(0.0), &[]).unwrap();
    let batch = 3;
    let mut rng = Rng::new(3);
    let x = inputs(input, batch, &mut rng);
    let outputs: usize = nabla::layers::dims::numel(m.output_shape()).unwrap();
    let y = match loss {
        KerasLoss::SparseCategoricalCrossentropy { .. } => Tensor::from_vec(
            (0..batch).map(|_| rng.below(outputs) as f32).collect(),
            &[batch],
        ),
        KerasLoss::CategoricalCrossentropy { .. } => {
            let idx: Vec<f32> = (0..batch).map(|_| rng.below(outputs) as f32).collect();
            nabla::data::to_categorical(&Tensor::from_vec(idx, &[batch]), outputs).unwrap()
        }
        _ => Tensor::from_vec(
            (0..batch * outputs).map(|_| rng.below(2) as f32).collect(),
            &[batch, outputs],
        ),
    };
    let reports = check_model(&mut m, &x, &y, 40, 1e-2).unwrap();
    assert!(!reports.is_empty(), "{name}: nothing to check");
    for r in reports {
        assert!(
            r.rel_error < DEFAULT_TOLERANCE,
            "{name}: {} relative error {:.3e}",
            r.param,
            r.rel_error
        );
        // Compared on at least half of its sampled entries, not skipped.
        assert!(r.passed(), "{name}: {r:?}");
    }
}

const SPARSE: KerasLoss = KerasLoss::SparseCategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};

#[test]
fn dense_with_every_activation() {
    for act in [
        Linear, Relu, Sigmoid, Tanh, LeakyRelu, Softmax, Elu, Gelu, Swish,
    ] {
        run_case(
            &format!("dense {act:?}"),
            &[5],
            vec![
                Dense(4).activation(act).into(),
                Dense(3).activation(Softmax).into(),
            ],
            SPARSE,
        );
    }
}

#[test]
fn relu_and_leaky_relu_layers() {
    // Between two Dense layers, so the check covers the layer's input gradient too.
    // `check_model` freezes kinks (the piece each input falls on), so inputs near the
    // threshold or max_value do not make the numerical estimate jump pieces.
    let cases: Vec<(&str, LayerConfig)> = vec![
        ("ReLU()", ReLU().into()),
        ("ReLU(max_value=0.3)", ReLU().max_value(0.3).into()),
        (
            "ReLU(max_value=0.4, negative_slope=0.2, threshold=0.1)",
            ReLU()
                .max_value(0.4)
                .negative_slope(0.2)
                .threshold(0.1)
                .into(),
        ),
        ("ReLU(threshold=0.2)", ReLU().threshold(0.2).into()),
        ("LeakyReLU(0.3)", LeakyReLU(0.3)),
        ("LeakyReLU(0.01)", LeakyReLU(0.01)),
    ];
    // The cases are only worth something if the pre-activations they see fall on every
    // piece: the first Dense layer and the batch are the same in every case (same seeds).
    let mut first = Sequential::with_seed(&[5], 7);
    first.add(Dense(8)).unwrap();
    let pre = first
        .predict(&inputs(&[5], 3, &mut Rng::new(3)), 3)
        .unwrap();
    let count = |f: fn(f32) -> bool| pre.data().iter().filter(|&&v| f(v)).count();
    assert!(count(|v| v < 0.1) >= 3, "below the threshold: {pre:?}");
    assert!(
        count(|v| v > 0.1 && v < 0.3) >= 2,
        "on the identity: {pre:?}"
    );
    assert!(count(|v| v > 0.4) >= 2, "clipped: {pre:?}");
    for (name, layer) in cases {
        run_case(
            name,
            &[5],
            vec![Dense(8).into(), layer, Dense(3).activation(Softmax).into()],
            SPARSE,
        );
    }
}

#[test]
fn every_loss() {
    let two_layer = |out_act| {
        vec![
            Dense(4).activation(Tanh).into(),
            Dense(3).activation(out_act).into(),
        ]
    };
    run_case(
        "sparse ce (fused softmax)",
        &[5],
        two_layer(Softmax),
        SPARSE,
    );
    run_case(
        "categorical ce",
        &[5],
        two_layer(Softmax),
        KerasLoss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
    );
    run_case(
        "ce from logits",
        &[5],
        two_layer(Linear),
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: true,
            label_smoothing: 0.0,
        },
    );
    run_case(
        "binary ce (fused sigmoid)",
        &[5],
        two_layer(Sigmoid),
        KerasLoss::BinaryCrossentropy { from_logits: false },
    );
    run_case(
        "binary ce from logits",
        &[5],
        two_layer(Linear),
        KerasLoss::BinaryCrossentropy { from_logits: true },
    );
    // Label smoothing: fused (softmax output or logits) and unfused (probabilities).
    for (name, out_act, from_logits) in [("fused", Softmax, false), ("from logits", Linear, true)] {
        run_case(
            &format!("sparse ce smoothed 0.1 {name}"),
            &[5],
            two_layer(out_act),
            KerasLoss::SparseCategoricalCrossentropy {
                from_logits,
                label_smoothing: 0.1,
            },
        );
        run_case(
            &format!("categorical ce smoothed 0.3 {name}"),
            &[5],
            two_layer(out_act),
            KerasLoss::CategoricalCrossentropy {
                from_logits,
                label_smoothing: 0.3,
            },
        );
    }
    run_case("mse", &[5], two_layer(Tanh), KerasLoss::MeanSquaredError);
    // Softmax output with MSE is not fused: the softmax backward itself is checked.
    run_case(
        "softmax + mse",
        &[5],
        two_layer(Softmax),
        KerasLoss::MeanSquaredError,
    );
}

#[test]
fn conv2d_variants() {
    let head = || -> Vec<LayerConfig> { vec![Flatten(), Dense(3).activation(Softmax).into()] };
    let cases: Vec<(&str, Conv2DConfig)> = vec![
        ("valid", Conv2D(3, 3)),
        ("same", Conv2D(3, 3).padding(PaddingMode::Same)),
        (
            "same stride 2 even kernel",
            Conv2DConfig::new(2, (2, 2))
                .padding(PaddingMode::Same)
                .strides(2),
        ),
        ("pad 2", Conv2D(2, 3).pad(2)),
        ("groups 2", Conv2D(4, 3).groups(2)),
        (
            "depthwise",
            Conv2D(2, 3).groups(2).padding(PaddingMode::Same),
        ),
        ("dilation 2", Conv2D(2, 2).dilation_rate(2)),
        (
            "no bias + l2",
            Conv2D(2, 3)
                .use_bias(false)
                .kernel_regularizer(Regularizer::L2 { l2: 0.01 }),
        ),
    ];
    for (name, c) in cases {
        let mut layers: Vec<LayerConfig> = vec![c.activation(Tanh).into()];
        layers.extend(head());
        run_case(name, &[2, 7, 6], layers, SPARSE);
    }
    // ZeroPadding2D between convolutions: its backward crops dy for the conv below.
    let paddings: Vec<(&str, LayerConfig)> = vec![
        ("zero padding 1", ZeroPadding2D(1)),
        (
            "zero padding asymmetric",
            ZeroPadding2D(Padding2D::explicit((0, 2), (1, 0))),
        ),
    ];
    for (name, zp) in paddings {
        let mut layers: Vec<LayerConfig> = vec![
            Conv2D(2, 2).activation(Gelu).into(),
            zp,
            Conv2D(2, 3).activation(Swish).into(),
        ];
        layers.extend(head());
        run_case(name, &[2, 5, 4], layers, SPARSE);
    }
}

#[test]
fn pooling_layers() {
    let conv = || -> LayerConfig { Conv2D(2, 2).activation(Tanh).into() };
    let head = || -> Vec<LayerConfig> { vec![Flatten(), Dense(3).activation(Softmax).into()] };
    let pools: Vec<(&str, LayerConfig)> = vec![
        ("max 2", MaxPooling2D(2)),
        (
            "max 3 stride 2 overlapping",
            Pool2dConfig::max(3).strides(2).into(),
        ),
        ("avg 2", AveragePooling2D(2)),
        (
            "avg 3 same",
            Pool2dConfig {
                padding: PaddingMode::Same,
                ..Pool2dConfig::average(3).strides(2)
            }
            .into(),
        ),
        ("global avg", GlobalAveragePooling2D()),
        ("global max", GlobalMaxPooling2D()),
    ];
    for (name, p) in pools {
        let mut layers = vec![conv(), p];
        layers.extend(head());
        run_case(name, &[1, 8, 9], layers, SPARSE);
    }
}

#[test]
fn batch_norm_dropout_flatten() {
    run_case(
        "bn dense",
        &[6],
        vec![
            Dense(5).activation(Tanh).into(),
            BatchNormalization(),
            Dropout(0.3),
            Dense(3).activation(Softmax).into(),
        ],
        SPARSE,
    );
    run_case(
        "bn conv",
        &[2, 5, 5],
        vec![
            // No bias: batch norm subtracts any per-channel constant, so a conv bias
            // before it has gradient exactly 0 and f32 noise alone decides whether the
            // checker can resolve it (it flipped when the statistics' summation order
            // changed). Every zoo net drops that bias for the same reason.
            Conv2D(3, 3).use_bias(false).into(),
            BatchNormalization(),
            Activation(Tanh),
            Flatten(),
            Dense(3).activation(Softmax).into(),
        ],
        SPARSE,
    );
}

#[test]
fn upsampling_and_conv_transpose() {
    use nabla::layers::InterpolationMode::{Bilinear, Nearest};
    let head = || -> Vec<LayerConfig> { vec![Flatten(), Dense(3).activation(Softmax).into()] };
    let cases: Vec<(&str, LayerConfig)> = vec![
        ("upsample nearest 2", UpSampling2D(2).into()),
        (
            "upsample bilinear 2",
            UpSampling2D(2).interpolation(Bilinear).into(),
        ),
        (
            "upsample nearest 3",
            UpSampling2D(3).interpolation(Nearest).into(),
        ),
        ("conv transpose valid", Conv2DTranspose(2, 3).into()),
        (
            "conv transpose same stride 2",
            Conv2DTranspose(2, 3).strides(2).padding(Same).into(),
        ),
        (
            "conv transpose valid stride 2 tanh",
            Conv2DTranspose(2, 2).strides(2).activation(Tanh).into(),
        ),
    ];
    for (name, layer) in cases {
        // A conv first, so the layer's input gradient is checked through its weights.
        let mut layers = vec![Conv2D(2, 3).into(), layer];
        layers.extend(head());
        run_case(name, &[1, 6, 5], layers, SPARSE);
    }
}

#[test]
fn conv1d_and_pools_1d() {
    // Sequences [T = 7, C = 3], channels-last; each case ends in Flatten + Dense so the
    // check also covers the layers' input gradients.
    let head = || -> Vec<LayerConfig> { vec![Flatten(), Dense(3).activation(Softmax).into()] };
    let cases: Vec<(&str, Vec<LayerConfig>)> = vec![
        (
            "Conv1D valid tanh + MaxPooling1D(2)",
            vec![Conv1D(4, 3).activation(Tanh).into(), MaxPooling1D(2).into()],
        ),
        (
            "Conv1D same stride 2 + AveragePooling1D(2) same",
            vec![
                Conv1D(4, 3).padding(Padding1D::Same).strides(2).into(),
                AveragePooling1D(2).padding(Same).into(),
            ],
        ),
        (
            "Conv1D causal dilation 2 relu + MaxPooling1D(3) stride 1 same",
            vec![
                Conv1D(4, 2)
                    .padding(Padding1D::Causal)
                    .dilation_rate(2)
                    .activation(Relu)
                    .into(),
                MaxPooling1D(3).strides(1).padding(Same).into(),
            ],
        ),
        (
            "Conv1D no bias + AveragePooling1D(3) stride 2",
            vec![
                Conv1D(3, 3).use_bias(false).into(),
                AveragePooling1D(3).strides(2).into(),
            ],
        ),
    ];
    for (name, mut layers) in cases {
        layers.extend(head());
        run_case(name, &[7, 3], layers, SPARSE);
    }
}

#[test]
fn embedding_in_a_text_cnn() {
    // Token ids in, so not `run_case` (its inputs are uniform in [-1, 1]). Repeated ids
    // make the table's gradient a scatter-add of several rows.
    let mut m = Sequential::with_seed(&[6], 7);
    m.add(Embedding(10, 4)).unwrap();
    m.add(Conv1D(5, 3).activation(Relu)).unwrap();
    m.add(GlobalMaxPooling1D()).unwrap();
    m.add(Dense(3).activation(Softmax)).unwrap();
    m.compile(SPARSE, Optimizer::sgd(0.0), &[]).unwrap();
    let ids = [
        1., 4., 4., 9., 0., 2., 7., 7., 3., 1., 1., 8., 5., 6., 0., 2., 4., 9.,
    ];
    let x = Tensor::from_vec(ids.to_vec(), &[3, 6]);
    let y = Tensor::from_vec(vec![0., 2., 1.], &[3]);
    let reports = check_model(&mut m, &x, &y, 40, 1e-2).unwrap();
    assert!(reports.iter().any(|r| r.param.ends_with("/embeddings")));
    for r in reports {
        assert!(
            r.rel_error < DEFAULT_TOLERANCE,
            "text cnn: {} relative error {:.3e}",
            r.param,
            r.rel_error
        );
        assert!(r.passed(), "text cnn: {r:?}");
    }
}
