//! `fit`, `evaluate` and the gradient check of models with several inputs and outputs:
//! one loss per output with loss weights, per-output logs, validation over lists, and
//! clear errors when the data does not match the model.
//! Data: `$NABLA_DATA`, else `../shared/data` beside the crate.

use nabla::data::{self, datasets::Dataset};
use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::layers::keras::*;
use nabla::training::gradcheck::check_model_many;
use nabla::training::{FitArgs, Model, SymbolicTensor};
use nabla::{KerasLoss, Optimizer, Rng, Tensor};

const SPARSE: KerasLoss = KerasLoss::SparseCategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};
const BINARY: KerasLoss = KerasLoss::BinaryCrossentropy { from_logits: false };

mod common;

fn mnist() -> Dataset {
    // Fails naming every place it looked when the data set is missing.
    let dir = common::real_data("mnist");
    let _env = common::lock_env();
    std::env::set_var("NABLA_DATA", dir);
    data::load_data("mnist").unwrap_or_else(|e| panic!("mnist: {e}"))
}

fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect(),
        shape,
    )
}

/// The first `n` images split into their top and bottom halves (`[n, 1, 14, 28]` each).
fn halves(x: &Tensor, n: usize) -> (Tensor, Tensor) {
    let (mut top, mut bottom) = (Vec::new(), Vec::new());
    for img in x.data().chunks(28 * 28).take(n) {
        top.extend_from_slice(&img[..14 * 28]);
        bottom.extend_from_slice(&img[14 * 28..]);
    }
    (
        Tensor::from_vec(top, &[n, 1, 14, 28]),
        Tensor::from_vec(bottom, &[n, 1, 14, 28]),
    )
}

/// Labels of the two tasks: the digit (`[n]`) and whether it is 5 or more (`[n, 1]`).
fn tasks(y: &Tensor, n: usize) -> (Tensor, Tensor) {
    let digits = y.data()[..n].to_vec();
    let big = digits.iter().map(|&d| (d >= 5.0) as u8 as f32).collect();
    (
        Tensor::from_vec(digits, &[n]),
        Tensor::from_vec(big, &[n, 1]),
    )
}

/// Two image halves in, each through its own conv tower; the digit and "5 or more" out.
fn two_tower_net(seed: u64) -> Model {
    let top = NamedInput("top", &[1, 14, 28]);
    let bottom = NamedInput("bottom", &[1, 14, 28]);
    let tower = |x: &SymbolicTensor| -> nabla::Result<SymbolicTensor> {
        let x = Conv2D(8, 3).activation(Relu).call(x)?;
        let x = MaxPooling2D(2).call(&x)?;
        Flatten().call(&x)
    };
    let joined = Concatenate()
        .call_many(&[&tower(&top).unwrap(), &tower(&bottom).unwrap()])
        .unwrap();
    let h = Dense(64).activation(Relu).call(&joined).unwrap();
    let digit = Dense(10)
        .activation(Softmax)
        .named("digit")
        .call(&h)
        .unwrap();
    let big = Dense(1).activation(Sigmoid).named("big").call(&h).unwrap();
    Model::functional(&[&top, &bottom], &[&digit, &big], seed).unwrap()
}

#[test]
fn a_two_input_two_output_net_learns_mnist_with_fit() {
    let ds = mnist();
    let (top, bottom) = halves(&ds.x_train, 30_000);
    let (digits, big) = tasks(&ds.y_train, 30_000);
    let mut m = two_tower_net(1);
    m.compile_outputs(
        [SPARSE, BINARY],
        Some(&[1.0, 0.5]),
        Optimizer::adam(0.002),
        &["accuracy"],
    )
    .unwrap();
    let history = m
        .fit_many(
            &[top, bottom],
            &[digits, big],
            FitArgs::new()
                .epochs(2)
                .batch_size(64)
                .validation_split(0.1)
                .verbose(0),
        )
        .unwrap();
    for key in [
        "loss",
        "digit_loss",
        "big_loss",
        "digit_accuracy",
        "big_accuracy",
        "val_loss",
        "val_digit_accuracy",
        "val_big_accuracy",
    ] {
        assert!(history.get(key).is_some(), "history lacks {key}");
    }
    let loss = history.get("loss").unwrap();
    assert!(loss[1] < loss[0], "the loss did not fall: {loss:?}");

    let (top, bottom) = halves(&ds.x_test, 10_000);
    let (digits, big) = tasks(&ds.y_test, 10_000);
    let ev = m
        .evaluate_many(&[top.clone(), bottom.clone()], &[digits, big], 500)
        .unwrap();
    let digit_acc = ev.metrics["digit_accuracy"];
    let big_acc = ev.metrics["big_accuracy"];
    assert!(digit_acc >= 0.95, "digit accuracy {digit_acc}");
    assert!(big_acc >= 0.95, "5-or-more accuracy {big_acc}");
    // The total is the loss-weighted sum of the outputs' losses (no weight penalties).
    let total = ev.metrics["digit_loss"] + 0.5 * ev.metrics["big_loss"];
    assert!(
        (ev.loss - total).abs() <= 1e-4 * total,
        "loss {} but 1.0 * digit_loss + 0.5 * big_loss = {total}",
        ev.loss
    );
    // The outputs predict_many gives are those evaluate judged.
    let out = m.predict_many(&[top, bottom], 500).unwrap();
    let agree = out[0]
        .argmax_rows()
        .iter()
        .zip(ds.y_test.data())
        .filter(|(&p, &l)| p as f32 == l)
        .count();
    assert_eq!(agree as f32 / 10_000.0, digit_acc);
}

#[test]
fn multi_output_training_is_reproducible_and_survives_save_and_load() {
    let ds = mnist();
    let (top, bottom) = halves(&ds.x_train, 1_000);
    let (digits, big) = tasks(&ds.y_train, 1_000);
    let (xs, ys) = (vec![top, bottom], vec![digits, big]);
    let train = || {
        let mut m = two_tower_net(3);
        m.compile_outputs(
            [SPARSE, BINARY],
            Some(&[0.7, 2.0]),
            Optimizer::adam(0.001),
            &["accuracy"],
        )
        .unwrap();
        let h = m
            .fit_many(&xs, &ys, FitArgs::new().epochs(1).batch_size(50).verbose(0))
            .unwrap();
        (m, h)
    };
    let (mut m, h1) = train();
    let (_, h2) = train();
    assert_eq!(h1.get("loss"), h2.get("loss"));
    assert_eq!(h1.get("big_accuracy"), h2.get("big_accuracy"));

    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let json = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
    assert!(json.contains("\"loss_weights\""), "{json}");
    assert!(json.contains("binary_crossentropy"), "{json}");
    let mut back = Model::load(dir.path()).unwrap();
    assert_eq!(back.config().compile, m.config().compile);
    assert_eq!(
        back.evaluate_many(&xs, &ys, 100).unwrap(),
        m.evaluate_many(&xs, &ys, 100).unwrap()
    );
}

#[test]
fn loss_weights_pass_the_gradient_check() {
    // Two inputs, two outputs; the second output is read again by a layer (so it must
    // not be turned into logits during training); weights 0.3 and 2.0.
    let a = NamedInput("a", &[3]);
    let b = NamedInput("b", &[2]);
    let joined = Concatenate().call_many(&[&a, &b]).unwrap();
    let h = Dense(5).activation(Tanh).call(&joined).unwrap();
    let probs = Dense(3)
        .activation(Softmax)
        .named("probs")
        .call(&h)
        .unwrap();
    let score = Dense(1).named("score").call(&probs).unwrap();
    let mut m = Model::functional(&[&a, &b], &[&probs, &score], 2).unwrap();
    m.compile_outputs(
        [SPARSE, KerasLoss::MeanSquaredError],
        Some(&[0.3, 2.0]),
        Optimizer::sgd(0.0),
        &[],
    )
    .unwrap();
    let mut rng = Rng::new(5);
    let xs = [random(&[4, 3], &mut rng), random(&[4, 2], &mut rng)];
    let ys = [
        Tensor::from_vec(vec![0.0, 2.0, 1.0, 2.0], &[4]),
        random(&[4, 1], &mut rng),
    ];
    let reports = check_model_many(&mut m, &xs, &ys, 30, 1e-2).unwrap();
    assert!(!reports.is_empty());
    for r in reports {
        assert!(r.checked > 0, "every entry of {} skipped", r.param);
        assert!(
            r.rel_error < DEFAULT_TOLERANCE,
            "{} relative error {:.3e}",
            r.param,
            r.rel_error
        );
    }
    // And evaluate reports that objective, computed here by hand from the outputs (not
    // with the library's losses): the mean of -ln p[label] over the rows of `probs`, and
    // the mean of (score - y)^2.
    let out = m.predict_many(&xs, 4).unwrap();
    let probs = out[0].data();
    let ce = ys[0]
        .data()
        .iter()
        .enumerate()
        .map(|(row, &label)| -(probs[row * 3 + label as usize] as f64).ln())
        .sum::<f64>()
        / 4.0;
    let mse = out[1]
        .data()
        .iter()
        .zip(ys[1].data())
        .map(|(&s, &y)| (s as f64 - y as f64).powi(2))
        .sum::<f64>()
        / 4.0;
    let (ce, mse) = (ce as f32, mse as f32);
    let ev = m.evaluate_many(&xs, &ys, 4).unwrap();
    assert!(
        (ev.metrics["probs_loss"] - ce).abs() < 1e-5,
        "{ev:?} vs {ce}"
    );
    assert!(
        (ev.metrics["score_loss"] - mse).abs() < 1e-5,
        "{ev:?} vs {mse}"
    );
    assert!((ev.loss - (0.3 * ce + 2.0 * mse)).abs() < 1e-5, "{ev:?}");
}

#[test]
fn data_that_does_not_match_the_model_gets_clear_errors() {
    let mut m = two_tower_net(0);
    let e = m
        .compile_outputs([SPARSE], None, Optimizer::adam(0.001), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("has 2 outputs, got 1 losses"), "{e}");
    let e = m
        .compile_outputs([SPARSE, BINARY], Some(&[1.0]), Optimizer::adam(0.001), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("got 1 loss weights"), "{e}");
    let e = m
        .compile_outputs(
            [SPARSE, BINARY],
            Some(&[1.0, f32::NAN]),
            Optimizer::adam(0.001),
            &[],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("loss weight is NaN"), "{e}");
    let e = m
        .fit_many(&[], &[], FitArgs::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not compiled"), "{e}");

    m.compile_outputs([SPARSE, BINARY], None, Optimizer::adam(0.001), &[])
        .unwrap();
    let mut rng = Rng::new(0);
    let x = || random(&[6, 1, 14, 28], &mut Rng::new(1));
    let digits = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[6]);
    let big = random(&[6, 1], &mut rng);
    let fit = |m: &mut Model, xs: &[Tensor], ys: &[Tensor], args: FitArgs| {
        m.fit_many(xs, ys, args.verbose(0)).unwrap_err().to_string()
    };
    let e = fit(
        &mut m,
        &[x()],
        &[digits.clone(), big.clone()],
        FitArgs::new(),
    );
    assert!(e.contains("has 2 inputs, got 1"), "{e}");
    let e = fit(
        &mut m,
        &[x(), x()],
        std::slice::from_ref(&digits),
        FitArgs::new(),
    );
    assert!(e.contains("has 2 outputs, got 1 label tensors"), "{e}");
    let e = fit(
        &mut m,
        &[x(), x()],
        &[digits.slice_rows(0, 5), big.clone()],
        FitArgs::new(),
    );
    assert!(
        e.contains("6 inputs but 5 labels for output 'digit'"),
        "{e}"
    );
    let e = fit(
        &mut m,
        &[x(), x()],
        &[big.clone(), big.clone()],
        FitArgs::new(),
    );
    assert!(
        e.contains("for output 'digit'") && e.contains("class indices"),
        "{e}"
    );
    let aug = nabla::data::augment::Augmentation::parse("flip").unwrap();
    let e = fit(
        &mut m,
        &[x(), x()],
        &[digits.clone(), big.clone()],
        FitArgs::new().augmentation(aug),
    );
    assert!(e.contains("augmentation takes a model with one"), "{e}");
    let e = fit(
        &mut m,
        &[x(), x()],
        &[digits.clone(), big.clone()],
        FitArgs::new().validation_data_many(vec![x()], vec![digits.clone(), big.clone()]),
    );
    assert!(
        e.contains("validation data") && e.contains("has 2 inputs, got 1"),
        "{e}"
    );
    let e = m
        .evaluate_many(&[x(), x()], &[digits], 3)
        .unwrap_err()
        .to_string();
    assert!(e.contains("evaluate: model 'model' has 2 outputs"), "{e}");
}

/// Pairs of images (`i`, `n + i`) of the first `2n` and the sums of their digits.
fn digit_pairs(x: &Tensor, y: &Tensor, n: usize) -> (Tensor, Tensor, Tensor) {
    let px = 28 * 28;
    let first = Tensor::from_vec(x.data()[..n * px].to_vec(), &[n, 1, 28, 28]);
    let second = Tensor::from_vec(x.data()[n * px..2 * n * px].to_vec(), &[n, 1, 28, 28]);
    let sums = (0..n).map(|i| y.data()[i] + y.data()[n + i]).collect();
    (first, second, Tensor::from_vec(sums, &[n]))
}

#[test]
fn a_shared_conv_tower_learns_to_add_two_digits() {
    // The siamese pattern: one tower (one set of weights) reads both images; the head
    // sees both codes and names their sum, 0..=18.
    let ds = mnist();
    let first = NamedInput("first", &[1, 28, 28]);
    let second = NamedInput("second", &[1, 28, 28]);
    let conv1 = Conv2D(16, 3).activation(Relu).named("conv1").shared();
    let conv2 = Conv2D(32, 3).activation(Relu).named("conv2").shared();
    let code = Dense(64).activation(Relu).named("code").shared();
    let encode = |x: &SymbolicTensor| -> nabla::Result<SymbolicTensor> {
        let x = conv1.call(x)?;
        let x = MaxPooling2D(2).call(&x)?;
        let x = conv2.call(&x)?;
        let x = MaxPooling2D(2).call(&x)?;
        let x = Flatten().call(&x)?;
        code.call(&x)
    };
    let both = Concatenate()
        .call_many(&[&encode(&first).unwrap(), &encode(&second).unwrap()])
        .unwrap();
    let h = Dense(64).activation(Relu).call(&both).unwrap();
    let sum = Dense(19).activation(Softmax).named("sum").call(&h).unwrap();
    let mut m = Model::functional(&[&first, &second], &[&sum], 2).unwrap();
    // The tower's weights exist once.
    let towers = m
        .params()
        .iter()
        .filter(|p| p.name.starts_with("conv1/kernel"))
        .count();
    assert_eq!(towers, 1);
    m.compile(SPARSE, Optimizer::adam(0.002), &["accuracy"])
        .unwrap();
    let (a, b, sums) = digit_pairs(&ds.x_train, &ds.y_train, 30_000);
    m.fit_many(
        &[a, b],
        &[sums],
        FitArgs::new().epochs(3).batch_size(64).verbose(0),
    )
    .unwrap();
    let (a, b, sums) = digit_pairs(&ds.x_test, &ds.y_test, 5_000);
    let ev = m.evaluate_many(&[a, b], &[sums], 500).unwrap();
    let acc = ev.accuracy().unwrap();
    assert!(acc >= 0.94, "sum accuracy {acc}");
}
