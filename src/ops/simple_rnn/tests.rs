use super::*;
use crate::engine::{gradcheck, Rng};

fn random(n: usize, rng: &mut Rng, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform_range(-scale, scale)).collect()
}

/// A random mask `[n, t]`: sample 0 all real, sample 1 (if any) all masked, the
/// rest random with about 40% masked (holes, pre- and post-padding alike).
fn random_mask(n: usize, t: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n * t)
        .map(|i| match i / t {
            0 => 1.0,
            1 => 0.0,
            _ => f32::from(rng.uniform_range(0.0, 1.0) > 0.4),
        })
        .collect()
}

/// The fast kernels against the naive reference, forward and backward, on shapes with
/// odd sizes, one step, one sample, a batch larger than the units and batches that do
/// not divide between threads; with no mask and random masks (all-masked samples
/// included), both output forms, both `zero_output_for_mask` values.
#[test]
fn fast_matches_naive() {
    let mut rng = Rng::new(5);
    for (n, t, f, u) in [
        (1, 1, 1, 1),
        (2, 3, 4, 5),
        (3, 7, 2, 3),
        (5, 1, 3, 8),
        (4, 9, 11, 6),
        (17, 4, 5, 2),
        (9, 24, 3, 4),
    ] {
        let d = SimpleRnnDims { n, t, f, u };
        let g = u;
        let x = random(n * t * f, &mut rng, 1.0);
        let w = random(f * g, &mut rng, 0.7);
        let rw = random(u * g, &mut rng, 0.7);
        let b = random(g, &mut rng, 0.5);
        let m = random_mask(n, t, &mut rng);
        let m1 = vec![1.0; n * t];
        for mask in [None, Some(&m[..]), Some(&m1[..])] {
            for (seq, zero) in [(true, false), (true, true), (false, false)] {
                for bias in [Some(&b[..]), None] {
                    let what = format!(
                        "{d:?} seq {seq} zero {zero} bias {} mask {mask:?}",
                        bias.is_some()
                    );
                    let xs = Var::parameter(Tensor::from_vec(x.clone(), &[n, t, f]));
                    let ws = Var::parameter(Tensor::from_vec(w.clone(), &[f, g]));
                    let rws = Var::parameter(Tensor::from_vec(rw.clone(), &[u, g]));
                    let bs = bias.map(|b| Var::parameter(Tensor::from_vec(b.to_vec(), &[g])));
                    let mt = mask.map(|m| Tensor::from_vec(m.to_vec(), &[n, t]));
                    let y = simple_rnn_masked(&xs, &ws, &rws, bs.as_ref(), seq, mt.as_ref(), zero)
                        .unwrap();
                    let want = naive::simple_rnn_forward(&x, &w, &rw, bias, seq, mask, zero, &d);
                    close(&format!("{what} y"), &y.value().to_f32_vec(), &want);
                    let dy = random(want.len(), &mut rng, 1.0);
                    y.backward_with(Tensor::from_vec(dy.clone(), &y.shape()));
                    let (dx, dw, drw, db) =
                        naive::simple_rnn_backward(&dy, &x, &w, &rw, bias, seq, mask, zero, &d);
                    let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
                    close(&format!("{what} dx"), &grad(&xs), &dx);
                    close(&format!("{what} dw"), &grad(&ws), &dw);
                    close(&format!("{what} drw"), &grad(&rws), &drw);
                    if let Some(bs) = &bs {
                        close(&format!("{what} db"), &grad(bs), &db);
                    }
                }
            }
        }
    }
}

/// A mask of the wrong shape is an error naming both shapes, not a panic.
#[test]
fn mask_shape_error() {
    let v = |s: &[usize]| Var::constant(Tensor::zeros(s));
    let g = 2;
    let bad = Tensor::zeros(&[2, 4]);
    let msg = simple_rnn(
        &v(&[2, 3, 4]),
        &v(&[4, g]),
        &v(&[2, g]),
        None,
        true,
        Some(&bad),
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("mask [2, 4]") && msg.contains("[2, 3]"),
        "{msg}"
    );
}

/// Central differences with a mask (a hole, pre- and post-padding, an all-masked
/// sample), both output forms.
#[test]
fn gradcheck_with_mask() {
    let (n, t, f, u) = (4, 4, 2, 3);
    let g = u;
    let mask = Tensor::from_vec(
        vec![
            1.0, 0.0, 1.0, 1.0, //
            0.0, 0.0, 1.0, 1.0, //
            1.0, 1.0, 0.0, 0.0, //
            0.0, 0.0, 0.0, 0.0,
        ],
        &[n, t],
    );
    for seq in [true, false] {
        let mut rng = Rng::new(if seq { 21 } else { 22 });
        let x = gradcheck::random_away_from_zero(&[n, t, f], &mut rng, 0.1);
        let w = Tensor::from_vec(random(f * g, &mut rng, 0.8), &[f, g]);
        let rw = Tensor::from_vec(random(u * g, &mut rng, 0.8), &[u, g]);
        let b = Tensor::from_vec(random(g, &mut rng, 0.5), &[g]);
        let r = gradcheck::check(
            |v| simple_rnn(&v[0], &v[1], &v[2], Some(&v[3]), seq, Some(&mask)).unwrap(),
            &[x, w, rw, b],
            gradcheck::DEFAULT_STEP,
            3,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "seq {seq}: {r:?}");
    }
}

fn close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * scale,
            "{what}[{i}]: fast {a}, naive {b}"
        );
    }
}

/// Central differences for the input, kernel, recurrent kernel and bias, both
/// output forms. Weights of about 0.5 keep tanh off its flat tails, so every gradient is
/// well above f32's resolution.
#[test]
fn gradcheck_all_inputs_both_outputs() {
    let (n, t, f, u) = (2, 4, 3, 3);
    for seq in [true, false] {
        let mut rng = Rng::new(if seq { 11 } else { 12 });
        let x = gradcheck::random_away_from_zero(&[n, t, f], &mut rng, 0.1);
        let w = Tensor::from_vec(random(f * u, &mut rng, 0.8), &[f, u]);
        let rw = Tensor::from_vec(random(u * u, &mut rng, 0.8), &[u, u]);
        let b = Tensor::from_vec(random(u, &mut rng, 0.5), &[u]);
        let r = gradcheck::check(
            |v| simple_rnn(&v[0], &v[1], &v[2], Some(&v[3]), seq, None).unwrap(),
            &[x, w, rw, b],
            gradcheck::DEFAULT_STEP,
            3,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "seq {seq}: {r:?}");
        assert!(r.grad_scale.iter().all(|&s| s > 1e-3), "seq {seq}: {r:?}");
    }
}

#[test]
fn shape_errors_name_both_shapes() {
    let v = |s: &[usize]| Var::constant(Tensor::zeros(s));
    let e = |r: Result<Var>| r.unwrap_err().to_string();
    let msg = e(simple_rnn(
        &v(&[2, 3]),
        &v(&[3, 2]),
        &v(&[2, 2]),
        None,
        false,
        None,
    ));
    assert!(
        msg.contains("[batch, steps, features], got [2, 3]"),
        "{msg}"
    );
    let msg = e(simple_rnn(
        &v(&[2, 3, 4]),
        &v(&[3, 2]),
        &v(&[2, 2]),
        None,
        false,
        None,
    ));
    assert!(
        msg.contains("kernel [3, 2] does not fit input [2, 3, 4]"),
        "{msg}"
    );
    let msg = e(simple_rnn(
        &v(&[2, 3, 4]),
        &v(&[4, 2]),
        &v(&[2, 3]),
        None,
        false,
        None,
    ));
    assert!(msg.contains("recurrent_kernel must be"), "{msg}");
    let msg = e(simple_rnn(
        &v(&[2, 3, 4]),
        &v(&[4, 2]),
        &v(&[2, 2]),
        Some(&v(&[2, 2])),
        true,
        None,
    ));
    assert!(
        msg.contains("bias [2, 2] for 2 units (expected [2]"),
        "{msg}"
    );
    let msg = e(simple_rnn(
        &v(&[2, 0, 4]),
        &v(&[4, 2]),
        &v(&[2, 2]),
        None,
        true,
        None,
    ));
    assert!(msg.contains("no steps"), "{msg}");
}
