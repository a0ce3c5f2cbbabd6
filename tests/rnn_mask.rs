//! Masked LSTM, GRU and SimpleRNN ops against real Keras 3 (torch backend): outputs and gradients
//! from `tests/golden/rnn_mask.json`, written by `scripts/golden/rnn_mask.py` (see there
//! for the cases: post-padding, pre-padding, a hole and an all-masked sample; both
//! output forms; `zero_output_for_mask` as Keras' Bidirectional sets it).

use nabla::ops::elementwise::{mul, sum};
use nabla::ops::gru::gru_masked;
use nabla::ops::lstm::lstm_masked;
use nabla::ops::simple_rnn::simple_rnn_masked;
use nabla::{Tensor, Var};
use serde_json::Value;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * scale,
            "{what}[{i}]: nabla {g}, Keras {w}"
        );
    }
}

#[test]
fn masked_lstm_gru_and_simple_rnn_match_keras() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/rnn_mask.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    let int = |c: &Value, k: &str| c[k].as_u64().unwrap() as usize;
    for (k, c) in cases.iter().enumerate() {
        let (n, t, f, u) = (int(c, "n"), int(c, "t"), int(c, "f"), int(c, "units"));
        let op = c["op"].as_str().unwrap();
        let seq = c["return_sequences"].as_bool().unwrap();
        let zero = c["zero_output_for_mask"].as_bool().unwrap();
        let what = format!("case {k} ({op}, seq {seq}, zero_output {zero})");
        let g = match op {
            "lstm" => 4 * u,
            "gru" => 3 * u,
            _ => u,
        };
        let bshape: &[usize] = if op == "gru" { &[2, g] } else { &[g] };
        let x = Var::parameter(Tensor::from_vec(floats(&c["x"]), &[n, t, f]));
        let w = Var::parameter(Tensor::from_vec(floats(&c["kernel"]), &[f, g]));
        let rw = Var::parameter(Tensor::from_vec(floats(&c["recurrent_kernel"]), &[u, g]));
        let b = Var::parameter(Tensor::from_vec(floats(&c["bias"]), bshape));
        let mask = Tensor::from_vec(floats(&c["mask"]), &[n, t]);
        let y = match op {
            "lstm" => lstm_masked(&x, &w, &rw, Some(&b), seq, Some(&mask), zero),
            "gru" => gru_masked(&x, &w, &rw, Some(&b), seq, Some(&mask), zero),
            _ => simple_rnn_masked(&x, &w, &rw, Some(&b), seq, Some(&mask), zero),
        }
        .unwrap();
        close(
            &format!("{what} y"),
            &y.value().to_f32_vec(),
            &floats(&c["y"]),
        );
        let r = Var::constant(Tensor::from_vec(floats(&c["r"]), &y.shape()));
        sum(&mul(&y, &r).unwrap()).backward();
        let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
        for (v, name) in [
            (&x, "dx"),
            (&w, "dkernel"),
            (&rw, "drecurrent_kernel"),
            (&b, "dbias"),
        ] {
            close(&format!("{what} {name}"), &grad(v), &floats(&c[name]));
        }
    }
}

/// `cargo test --release --test rnn_mask -- --ignored --nocapture`: forward + backward
/// of the LSTM and GRU ops at the text recipes' sizes (N=64, T=24, F=64, U=64), with
/// no mask (every step runs) and with a mask of realistic sentence lengths (median 7
/// of 24, post-padded): the packed execution skips the padding.
#[test]
#[ignore]
fn time_masked_vs_unmasked() {
    use nabla::ops::gru::gru;
    use nabla::ops::lstm::lstm;
    use nabla::Rng;
    let (n, t, f, u) = (64, 24, 64, 64);
    let mut rng = Rng::new(1);
    let mut rand = |shape: &[usize], s: f32| {
        let k: usize = shape.iter().product();
        Var::parameter(Tensor::from_vec(
            (0..k).map(|_| rng.uniform_range(-s, s)).collect(),
            shape,
        ))
    };
    // Lengths: 80% in 2..=10, 20% in 12..=24 (median 7).
    let lens: Vec<usize> = (0..n)
        .map(|s| {
            let h = (s * 7919 + 13) % 101;
            if s % 5 == 4 {
                12 + h % 13
            } else {
                2 + h % 9
            }
        })
        .collect();
    let mut sorted = lens.clone();
    sorted.sort();
    let mask = Tensor::from_vec(
        (0..n * t).map(|i| f32::from(i % t < lens[i / t])).collect(),
        &[n, t],
    );
    let x = rand(&[n, t, f], 1.0);
    for op in ["lstm", "gru"] {
        let g = if op == "lstm" { 4 * u } else { 3 * u };
        let w = rand(&[f, g], 0.1);
        let rw = rand(&[u, g], 0.1);
        let bshape = if op == "lstm" { vec![g] } else { vec![2, g] };
        let b = rand(&bshape, 0.1);
        for m in [None, Some(&mask)] {
            let mut times = vec![];
            for _ in 0..20 {
                let start = std::time::Instant::now();
                let y = match op {
                    "lstm" => lstm(&x, &w, &rw, Some(&b), false, m),
                    _ => gru(&x, &w, &rw, Some(&b), false, m),
                }
                .unwrap();
                y.backward_with(Tensor::ones(&y.shape()));
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{op} N={n} T={t} F={f} U={u} mask {} (median length {}): forward+backward \
                 {:.2} ms (median of 20)",
                m.is_some(),
                sorted[n / 2],
                times[10]
            );
        }
    }
}
