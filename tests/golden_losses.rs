//! Huber, log-cosh, KL divergence and the hinges against Keras 3: values and gradients
//! from `tests/golden/losses.json`, written by `scripts/golden/losses.py` (Keras on JAX).

use nabla::losses::{Loss, Target};
use nabla::{KerasLoss, Tensor, Var};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn losses_match_keras() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/losses.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for c in cases {
        let name = c["loss"].as_str().unwrap();
        let loss = match name {
            "huber" => KerasLoss::Huber {
                delta: c["config"]["delta"].as_f64().unwrap() as f32,
            },
            other => KerasLoss::from_name(other).unwrap(),
        };
        let shape: Vec<usize> = c["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let p = Var::parameter(Tensor::from_vec(floats(&c["p"]), &shape));
        let y = Target::from(Tensor::from_vec(floats(&c["y"]), &shape));
        let l = loss.compute(&p, &y, false).unwrap();
        let want = c["value"].as_f64().unwrap() as f32;
        let got = l.value().item();
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{name} {}: nabla {got}, Keras {want}",
            c["config"]
        );
        l.backward();
        let dp = p.grad().unwrap().to_f32_vec();
        for (i, (g, w)) in dp.iter().zip(floats(&c["dp"])).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5,
                "{name} {} dp[{i}]: nabla {g}, Keras {w}",
                c["config"]
            );
        }
    }
}
