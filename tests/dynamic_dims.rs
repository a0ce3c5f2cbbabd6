//! Dynamic (None) dimensions: a sequence model with a `None` time axis runs, trains and
//! gradient-checks on batches of different lengths, and keeps the `None` through its
//! saved config; an image model with `None` height and width resolves "same" padding
//! per batch; layers that need a fixed size say so at build.

use nabla::engine::gradcheck::DEFAULT_TOLERANCE;
use nabla::layers::keras::*;
use nabla::layers::{Dim, InterpolationMode};
use nabla::ops::elementwise::sum;
use nabla::training::gradcheck::check_model;
use nabla::training::{Model, ModelConfig};
use nabla::{KerasLoss, Optimizer, Rng, Sequential, Tensor, Var};

const SPARSE: KerasLoss = KerasLoss::SparseCategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};

fn sequence_model() -> Model {
    let inputs = Input(&[None, Some(8)]);
    let x = Dense(16).activation(Relu).call(&inputs).unwrap();
    assert_eq!(x.shape(), [Dim::NONE, Dim::known(16)]);
    let x = GlobalAveragePooling1D().call(&x).unwrap();
    let out = Dense(2).activation(Softmax).call(&x).unwrap();
    let mut m = Model::functional(&[&inputs], &[&out], 3).unwrap();
    m.compile(SPARSE, Optimizer::sgd(0.0), &[]).unwrap();
    m
}

fn batch(n: usize, t: usize, rng: &mut Rng) -> (Tensor, Tensor) {
    let x = Tensor::from_vec(
        (0..n * t * 8).map(|_| rng.uniform() * 2.0 - 1.0).collect(),
        &[n, t, 8],
    );
    let y = Tensor::from_vec((0..n).map(|i| (i % 2) as f32).collect(), &[n]);
    (x, y)
}

#[test]
fn a_none_time_axis_runs_batches_of_lengths_5_and_17() {
    let mut m = sequence_model();
    assert_eq!(m.input_shape(), [Dim::NONE, Dim::known(8)]);
    assert_eq!(m.output_shape(), &[2]);
    let mut rng = Rng::new(1);
    for t in [5, 17] {
        let (x, y) = batch(3, t, &mut rng);
        // Forward and backward: every weight gets a gradient.
        let xv = Var::parameter(x.clone());
        let out = m.forward(&xv, true).unwrap();
        assert_eq!(out.shape(), [3, 2]);
        sum(&out).backward();
        assert_eq!(xv.grad().unwrap().shape(), [3, t, 8]);
        for p in m.params() {
            assert!(
                p.var.grad().is_some(),
                "length {t}: no gradient for {}",
                p.name
            );
            p.var.zero_grad();
        }
        // Predict and evaluate at this length.
        let p = m.predict(&x, 2).unwrap();
        assert_eq!(p.shape(), [3, 2]);
        m.evaluate(&x, &y, 2).unwrap();
        // Gradient check of every weight at this length.
        for r in check_model(&mut m, &x, &y, 40, 1e-2).unwrap() {
            assert!(
                r.rel_error < DEFAULT_TOLERANCE,
                "length {t}: {} relative error {:.3e}",
                r.param,
                r.rel_error
            );
        }
    }
}

#[test]
fn wrong_feature_counts_are_errors_and_any_length_is_not() {
    let mut m = sequence_model();
    let bad = Var::constant(Tensor::zeros(&[2, 5, 7]));
    let e = m.forward(&bad, false).unwrap_err().to_string();
    assert!(
        e.contains("[batch, None, 8]") && e.contains("[2, 5, 7]"),
        "{e}"
    );
    let ok = Var::constant(Tensor::zeros(&[2, 1, 8]));
    assert_eq!(m.forward(&ok, false).unwrap().shape(), [2, 2]);
}

#[test]
fn saved_configs_keep_the_none_axis() {
    let m = sequence_model();
    let json = serde_json::to_string(&m.config()).unwrap();
    assert!(json.contains(r#""input_shape":[null,8]"#), "{json}");
    let cfg: ModelConfig = serde_json::from_str(&json).unwrap();
    let back = Model::from_config(&cfg, 0).unwrap();
    assert_eq!(back.config(), m.config());
    assert_eq!(back.input_shape(), [Dim::NONE, Dim::known(8)]);
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let mut loaded = Model::load(dir.path()).unwrap();
    assert_eq!(loaded.input_shape(), [Dim::NONE, Dim::known(8)]);
    let (x, _) = batch(2, 9, &mut Rng::new(4));
    let mut m = m;
    assert_eq!(
        loaded.predict(&x, 2).unwrap().data(),
        m.predict(&x, 2).unwrap().data()
    );
}

#[test]
fn layers_that_need_a_fixed_size_say_so_at_build() {
    let mut m = Sequential::new(&[None, Some(8)]);
    m.add(Flatten()).unwrap();
    assert_eq!(m.output_shape(), [Dim::NONE]);
    let e = m.add(Dense(2)).unwrap_err().to_string();
    assert!(
        e.contains("(Dense) needs a known number of input features") && e.contains("[batch, None]"),
        "{e}"
    );
    let x = Input(&[None, None, Some(3)]);
    let e = Conv2D(4, 3).call(&x).unwrap_err().to_string();
    assert!(
        e.contains("(Conv2D) needs a known number of channels"),
        "{e}"
    );
}

#[test]
fn same_padding_is_resolved_from_each_batch() {
    // Channels first: Keras' (None, None, 1) images.
    let mut m = Sequential::with_seed(&[Some(1), None, None], 2);
    m.add(Conv2D(4, 3).padding(Same).activation(Relu))
        .unwrap()
        .add(nabla::layers::Pool2dConfig::max(2).padding(Same))
        .unwrap()
        .add(Conv2D(4, 3).strides(2).padding(Same))
        .unwrap()
        .add(UpSampling2D(2).interpolation(InterpolationMode::Bilinear))
        .unwrap()
        .add(Conv2DTranspose(2, 3).strides(2).padding(Same))
        .unwrap();
    assert_eq!(m.output_shape(), [Dim::known(2), Dim::NONE, Dim::NONE]);
    let mut rng = Rng::new(6);
    for (h, w) in [(8, 8), (11, 7), (5, 13)] {
        let x = Tensor::from_vec(
            (0..2 * h * w).map(|_| rng.uniform()).collect(),
            &[2, 1, h, w],
        );
        let y = m.predict(&x, 2).unwrap();
        // same pool: ceil(h/2); strided same conv: ceil(./2); x2; transpose x2.
        let oh = h.div_ceil(2).div_ceil(2) * 2 * 2;
        let ow = w.div_ceil(2).div_ceil(2) * 2 * 2;
        assert_eq!(y.shape(), [2, 2, oh, ow], "{h}x{w}");
    }
}
