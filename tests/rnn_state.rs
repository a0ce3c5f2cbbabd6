//! The recurrent ops' initial states, final states and recurrent dropout against real
//! Keras 3 (torch backend): outputs, final states and gradients (input, weights and
//! initial states) from `tests/golden/rnn_state.json`, written by
//! `scripts/golden/rnn_state.py` (see there for the cases: no mask, post- and
//! pre-padding with an all-masked sample, both output forms; recurrent dropout with
//! Keras' masks fixed), calling `ops::{lstm,gru,simple_rnn}::*_call` directly.

use nabla::ops::elementwise::{add, mul, sum};
use nabla::ops::gru::gru_call;
use nabla::ops::lstm::lstm_call;
use nabla::ops::rnn_driver::RnnArgs;
use nabla::ops::simple_rnn::simple_rnn_call;
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
fn initial_states_final_states_and_recurrent_dropout_match_keras() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/rnn_state.json"
    ))
    .unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 30);
    let int = |c: &Value, k: &str| c[k].as_u64().unwrap() as usize;
    let mut with_dropout = 0;
    for (k, c) in cases.iter().enumerate() {
        let (n, t, f, u) = (int(c, "n"), int(c, "t"), int(c, "f"), int(c, "units"));
        let op = c["op"].as_str().unwrap();
        let seq = c["return_sequences"].as_bool().unwrap();
        let what = format!(
            "case {k} ({op}, seq {seq}, mask {}, dropout {})",
            c["mask_name"],
            !c["recurrent_dropout"].is_null()
        );
        let g = match op {
            "lstm" => 4 * u,
            "gru" => 3 * u,
            _ => u,
        };
        let bshape: &[usize] = if op == "gru" { &[2, g] } else { &[g] };
        let p =
            |key: &str, shape: &[usize]| Var::parameter(Tensor::from_vec(floats(&c[key]), shape));
        let x = p("x", &[n, t, f]);
        let w = p("kernel", &[f, g]);
        let rw = p("recurrent_kernel", &[u, g]);
        let b = p("bias", bshape);
        let init: Vec<Var> = c["initial_state"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Var::parameter(Tensor::from_vec(floats(s), &[n, u])))
            .collect();
        let mask = (!c["mask"].is_null()).then(|| Tensor::from_vec(floats(&c["mask"]), &[n, t]));
        let rd = (!c["recurrent_dropout"].is_null())
            .then(|| Tensor::from_vec(floats(&c["recurrent_dropout"]), &[n, g]));
        with_dropout += usize::from(rd.is_some());
        let args = RnnArgs {
            return_sequences: seq,
            mask: mask.as_ref(),
            zero_output_for_mask: false,
            initial_state: &init,
            recurrent_dropout: rd.as_ref(),
            return_state: true,
        };
        let outs = match op {
            "lstm" => lstm_call(&x, &w, &rw, Some(&b), &args),
            "gru" => gru_call(&x, &w, &rw, Some(&b), &args),
            _ => simple_rnn_call(&x, &w, &rw, Some(&b), &args),
        }
        .unwrap();
        let want = c["outputs"].as_array().unwrap();
        let rs = c["r"].as_array().unwrap();
        assert_eq!(outs.len(), want.len(), "{what}: outputs");
        let mut loss: Option<Var> = None;
        for (i, (o, (wv, r))) in outs.iter().zip(want.iter().zip(rs)).enumerate() {
            close(
                &format!("{what} output {i}"),
                &o.value().to_f32_vec(),
                &floats(wv),
            );
            let r = Var::constant(Tensor::from_vec(floats(r), &o.shape()));
            let term = sum(&mul(o, &r).unwrap());
            loss = Some(match loss {
                None => term,
                Some(l) => add(&l, &term).unwrap(),
            });
        }
        loss.unwrap().backward();
        let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
        for (v, name) in [
            (&x, "dx"),
            (&w, "dkernel"),
            (&rw, "drecurrent_kernel"),
            (&b, "dbias"),
        ] {
            close(&format!("{what} {name}"), &grad(v), &floats(&c[name]));
        }
        for (i, (s, want)) in init
            .iter()
            .zip(c["dinitial_state"].as_array().unwrap())
            .enumerate()
        {
            close(
                &format!("{what} dinitial_state {i}"),
                &grad(s),
                &floats(want),
            );
        }
    }
    assert_eq!(with_dropout, 12);
}

/// `cargo test --release --test rnn_state -- --ignored --nocapture`: forward + backward
/// of the three ops at the text recipes' sizes (N=64, T=24, F=64, U=64, no mask): plain
/// (the path every layer takes today), with initial states, with final states too, and with
/// recurrent dropout (one GEMM per gate instead of one in all).
#[test]
#[ignore]
fn time_options() {
    use nabla::ops::rnn_driver::{rnn_call, Cell};
    use nabla::Rng;
    let (n, t, f, u) = (64, 24, 64, 64);
    let mut rng = Rng::new(1);
    let mut rand = |shape: &[usize], s: f32| {
        let k: usize = shape.iter().product();
        Tensor::from_vec((0..k).map(|_| rng.uniform_range(-s, s)).collect(), shape)
    };
    let x = Var::parameter(rand(&[n, t, f], 1.0));
    for cell in [Cell::Lstm, Cell::Gru, Cell::SimpleRnn] {
        let g = cell.gates() * u;
        let w = Var::parameter(rand(&[f, g], 0.1));
        let rw = Var::parameter(rand(&[u, g], 0.1));
        let init: Vec<Var> = (0..cell.states())
            .map(|_| Var::parameter(rand(&[n, u], 0.5)))
            .collect();
        let rd = Tensor::from_vec(
            (0..n * g)
                .map(|i| if i % 3 == 0 { 0.0 } else { 1.5 })
                .collect(),
            &[n, g],
        );
        for (name, with_init, drop, rs) in [
            ("plain", false, false, false),
            ("h0", true, false, false),
            ("h0 + return_state", true, false, true),
            ("recurrent dropout", false, true, false),
        ] {
            let args = RnnArgs {
                return_sequences: true,
                initial_state: if with_init { &init } else { &[] },
                recurrent_dropout: drop.then_some(&rd),
                return_state: rs,
                ..RnnArgs::default()
            };
            let mut times = vec![];
            for _ in 0..20 {
                let start = std::time::Instant::now();
                let outs = rnn_call(cell, &x, &w, &rw, None, &args).unwrap();
                let mut loss = sum(&outs[0]);
                for o in &outs[1..] {
                    loss = add(&loss, &sum(o)).unwrap();
                }
                loss.backward();
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{} N={n} T={t} F={f} U={u} {name}: forward+backward {:.2} ms (median of 20)",
                cell.name(),
                times[10]
            );
        }
    }
}
