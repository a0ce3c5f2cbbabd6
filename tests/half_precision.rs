//! Half-precision inference (`Model::set_dtype`): a small conv net trained on MNIST keeps
//! its accuracy within 0.3 points in f16 and bf16, with its weights really stored in 2
//! bytes each. Needs MNIST (NABLA_DATA or the download cache), as the other MNIST tests.

use nabla::models;
use nabla::{DType, KerasLoss, Optimizer};

#[test]
fn f16_and_bf16_inference_keep_the_accuracy_of_a_trained_convnet() {
    let ds = nabla::data::load_data("mnist").unwrap();
    let (x, y) = (
        ds.x_train.slice_rows(0, 6000),
        ds.y_train.slice_rows(0, 6000),
    );
    let (xt, yt) = (ds.x_test.slice_rows(0, 2000), ds.y_test.slice_rows(0, 2000));
    let mut m = models::simple_convnet(1).unwrap();
    m.compile(
        KerasLoss::SparseCategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        Optimizer::adam(0.002),
        &["accuracy"],
    )
    .unwrap();
    m.fit(
        &x,
        &y,
        nabla::FitArgs::new().epochs(3).batch_size(100).verbose(0),
    )
    .unwrap();
    let f32_acc = m.evaluate(&xt, &yt, 500).unwrap().accuracy().unwrap();
    assert!(f32_acc > 0.9, "the net did not learn: {f32_acc}");
    let f32_probs = m.predict(&xt, 500).unwrap();
    let f32_bytes = m.size_in_bytes(DType::F32);
    let weights = m.get_weights();

    for dtype in [DType::F16, DType::BF16] {
        m.set_dtype(dtype).unwrap();
        assert_eq!(m.dtype(), dtype);
        for p in m.params() {
            let v = p.var.value();
            assert_eq!(v.dtype(), dtype, "{}", p.name);
            assert_eq!(v.size_in_bytes(), 2 * v.numel(), "{}", p.name);
        }
        assert_eq!(m.size_in_bytes(dtype) * 2, f32_bytes);
        let acc = m.evaluate(&xt, &yt, 500).unwrap().accuracy().unwrap();
        assert!(
            (acc - f32_acc).abs() <= 0.003,
            "{dtype}: accuracy {acc} vs f32 {f32_acc}"
        );
        // The outputs really went through half precision: close to f32's, not equal.
        let probs = m.predict(&xt, 500).unwrap().to_f32_vec();
        let diff = probs
            .iter()
            .zip(f32_probs.to_f32_vec())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff > 0.0 && diff < 0.05, "{dtype}: largest change {diff}");
        // Training a half-precision model is refused with a clear message.
        let err = m
            .fit(&x, &y, nabla::FitArgs::new().epochs(1).verbose(0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("set_dtype"), "{err}");
        // Back to the trained f32 weights for the next type.
        m.set_weights(&weights).unwrap();
        m.set_dtype(DType::F32).unwrap();
    }
    assert!(m.set_dtype(DType::I8).is_err());
}
