//! Layers that return several tensors, end to end through the graph: a model with two
//! outputs used as one layer of another (`call_outputs`), its outputs read by name
//! (`LAYER[k]`) in the saved config, the summary listing every output shape, and clear
//! errors where a single output is expected.

use nabla::layers::keras::*;
use nabla::layers::LayerConfig;
use nabla::training::Model;
use nabla::{KerasLoss, Optimizer, Rng, Tensor};

fn random(shape: &[usize], rng: &mut Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect(),
        shape,
    )
}

/// A model with two outputs of different widths: `[N, 3]` and `[N, 5]`.
fn two_headed() -> Model {
    let x = Input(&[4]);
    let h = Dense(6).activation(Relu).call(&x).unwrap();
    let a = Dense(3).named("head_a").call(&h).unwrap();
    let b = Dense(5).named("head_b").call(&h).unwrap();
    let mut m = Model::functional(&[&x], &[&a, &b], 3).unwrap();
    m.name = "heads".into();
    m
}

#[test]
fn a_layer_with_two_outputs_feeds_both_onwards() {
    let mut heads = two_headed();
    let x = Input(&[4]);
    let outs = heads.call_outputs(&[&x]).unwrap();
    assert_eq!(outs.len(), 2);
    assert_eq!(outs[0].shape(), [3usize]);
    assert_eq!(outs[1].shape(), [5usize]);
    // The second output feeds a layer; both reach the model's outputs.
    let b2 = Dense(2).named("after_b").call(&outs[1]).unwrap();
    let mut m = Model::functional(&[&x], &[&outs[0], &b2], 9).unwrap();

    let xs = random(&[7, 4], &mut Rng::new(1));
    let inner = heads.predict_many(std::slice::from_ref(&xs), 7).unwrap();
    let got = m.predict_many(std::slice::from_ref(&xs), 7).unwrap();
    assert_eq!(
        got[0].data(),
        inner[0].data(),
        "first output passes through"
    );
    assert_eq!(got[1].shape(), &[7, 2]);

    // The config names the second output `heads[1]`, and a model rebuilt from it with
    // the same weights computes the same.
    let cfg = m.config();
    let reader = cfg
        .layers
        .iter()
        .find(|n| n.layer.name() == Some("after_b"))
        .unwrap();
    assert_eq!(reader.inbound, ["heads[1]"]);
    let json = serde_json::to_string(&cfg).unwrap();
    let back_cfg = serde_json::from_str(&json).unwrap();
    let mut back = Model::from_config(&back_cfg, 0).unwrap();
    back.set_weights(&m.get_weights()).unwrap();
    let again = back.predict_many(&[xs], 7).unwrap();
    assert_eq!(again[0].data(), got[0].data());
    assert_eq!(again[1].data(), got[1].data());

    // The summary lists both output shapes of the nested model.
    let s = m.summary();
    assert!(s.contains("[(None, 3), (None, 5)]"), "{s}");
}

#[test]
fn gradients_flow_through_every_output() {
    let heads = two_headed();
    let x = Input(&[4]);
    let outs = heads.call_outputs(&[&x]).unwrap();
    let joined = Concatenate().call_many(&[&outs[0], &outs[1]]).unwrap();
    let y = Dense(1).call(&joined).unwrap();
    let mut m = Model::functional(&[&x], &[&y], 2).unwrap();
    m.compile(KerasLoss::MeanSquaredError, Optimizer::sgd(0.05), &[])
        .unwrap();
    let xs = random(&[64, 4], &mut Rng::new(3));
    let ys = Tensor::from_vec(
        xs.data().chunks(4).map(|r| r[0] - 0.5 * r[3]).collect(),
        &[64, 1],
    );
    let before = m.get_weights();
    let first = m.evaluate(&xs, &ys, 64).unwrap().loss;
    for _ in 0..30 {
        m.train_step(std::slice::from_ref(&xs), &[ys.clone().into()])
            .unwrap();
    }
    let last = m.evaluate(&xs, &ys, 64).unwrap().loss;
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    // Both heads' weights moved: each output carried gradient back.
    let after = m.get_weights();
    let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
    for head in ["heads/head_a/kernel", "heads/head_b/kernel"] {
        let k = names.iter().position(|n| n == head).unwrap();
        assert_ne!(before[k].data(), after[k].data(), "{head} did not train");
    }
}

#[test]
fn a_single_output_is_asked_for_clearly() {
    let heads = two_headed();
    let x = Input(&[4]);
    let e = heads.call(&x).unwrap_err().to_string();
    assert!(
        e.contains("returns 2 tensors") && e.contains("call_outputs"),
        "{e}"
    );

    let mut seq = Model::new(&[4]);
    let e = seq
        .add(LayerConfig::new(heads.config()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("returns 2 tensors"), "{e}");
}
