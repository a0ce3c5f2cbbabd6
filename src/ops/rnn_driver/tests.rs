//! The recurrent ops, one table over the cells: the fast kernels against the naive
//! references (every option), central-difference gradient checks and the errors.

use super::naive::{RefArgs, RefGrads, RefOut};
use super::*;
use crate::engine::{gradcheck, Rng};
use crate::ops::elementwise::{add, mul, sum};
use crate::ops::gru::{self, GruDims};
use crate::ops::lstm::{self, LstmDims};
use crate::ops::simple_rnn::{self, SimpleRnnDims};

const CELLS: [Cell; 3] = [Cell::Lstm, Cell::Gru, Cell::SimpleRnn];

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

/// Pre-padding: sample `s` has its first `s % t` steps masked.
fn pre_padding(n: usize, t: usize) -> Vec<f32> {
    (0..n * t)
        .map(|i| f32::from(i % t >= (i / t) % t))
        .collect()
}

/// Keras-like recurrent dropout masks `[n, g]`: 0 or `1 / (1 - 0.3)`.
fn dropout_masks(n: usize, g: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n * g)
        .map(|_| {
            if rng.uniform_range(0.0, 1.0) < 0.3 {
                0.0
            } else {
                1.0 / 0.7
            }
        })
        .collect()
}

fn naive_forward(
    cell: Cell,
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    (n, t, f, u): (usize, usize, usize, usize),
) -> RefOut {
    match cell {
        Cell::Lstm => lstm::naive::lstm_forward(x, w, rw, b, a, &LstmDims { n, t, f, u }),
        Cell::Gru => gru::naive::gru_forward(x, w, rw, b, a, &GruDims { n, t, f, u }),
        Cell::SimpleRnn => {
            simple_rnn::naive::simple_rnn_forward(x, w, rw, b, a, &SimpleRnnDims { n, t, f, u })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn naive_backward(
    cell: Cell,
    dy: &[f32],
    dh: &[f32],
    dc: &[f32],
    x: &[f32],
    w: &[f32],
    rw: &[f32],
    b: Option<&[f32]>,
    a: &RefArgs,
    (n, t, f, u): (usize, usize, usize, usize),
) -> RefGrads {
    match cell {
        Cell::Lstm => {
            lstm::naive::lstm_backward(dy, dh, dc, x, w, rw, b, a, &LstmDims { n, t, f, u })
        }
        Cell::Gru => gru::naive::gru_backward(dy, dh, x, w, rw, b, a, &GruDims { n, t, f, u }),
        Cell::SimpleRnn => simple_rnn::naive::simple_rnn_backward(
            dy,
            dh,
            x,
            w,
            rw,
            b,
            a,
            &SimpleRnnDims { n, t, f, u },
        ),
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

/// `f` run on a pool of `threads` threads (the op splits the batch by thread count).
fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// The fast kernels against the naive reference, forward (output and final states) and
/// backward (input, weights, initial states), for every cell, on shapes with odd
/// sizes, one step, one sample, a batch larger than the units and batches that do not
/// divide between threads; with no mask, random masks (all-masked samples included),
/// pre-padding and all-real masks; both output forms, both `zero_output_for_mask`
/// values, with and without bias, initial states, recurrent dropout and final states;
/// on 1 and 2 threads.
#[test]
fn fast_matches_naive() {
    let mut rng = Rng::new(5);
    for cell in CELLS {
        for (n, t, f, u) in [
            (1, 1, 1, 1),
            (2, 3, 4, 5),
            (3, 7, 2, 3),
            (5, 1, 3, 8),
            (4, 9, 11, 6),
            (17, 4, 5, 2),
            (9, 24, 3, 4),
        ] {
            let g = cell.gates() * u;
            let blen: usize = cell.bias_shape(g).iter().product();
            let x = random(n * t * f, &mut rng, 1.0);
            let w = random(f * g, &mut rng, 0.7);
            let rw = random(u * g, &mut rng, 0.7);
            let b = random(blen, &mut rng, 0.5);
            let h0 = random(n * u, &mut rng, 0.8);
            let c0 = random(n * u, &mut rng, 0.8);
            let rd = dropout_masks(n, g, &mut rng);
            let m = random_mask(n, t, &mut rng);
            let m1 = vec![1.0; n * t];
            let mp = pre_padding(n, t);
            // (initial states, dropout, return_state)
            let variants = [
                (false, false, false),
                (true, false, true),
                (false, true, false),
                (true, true, true),
            ];
            for mask in [None, Some(&m[..]), Some(&m1[..]), Some(&mp[..])] {
                for (seq, zero) in [(true, false), (true, true), (false, false)] {
                    for bias in [Some(&b[..]), None] {
                        for (init, drop, rs) in variants {
                            let threads = 1 + (n + t) % 2;
                            let what = format!(
                                "{cell:?} {n}x{t}x{f}x{u} seq {seq} zero {zero} bias {} \
                                 init {init} drop {drop} state {rs} threads {threads} \
                                 mask {mask:?}",
                                bias.is_some()
                            );
                            let a = RefArgs {
                                seq,
                                mask,
                                zero,
                                h0: init.then_some(&h0[..]),
                                c0: (init && cell == Cell::Lstm).then_some(&c0[..]),
                                rd: drop.then_some(&rd[..]),
                            };
                            let case = Case {
                                cell,
                                dims: (n, t, f, u),
                                x: &x,
                                w: &w,
                                rw: &rw,
                                b: bias,
                                a,
                                return_state: rs,
                            };
                            with_threads(threads, || case.check(&what, &mut Rng::new(7)));
                        }
                    }
                }
            }
        }
    }
}

/// One fast-vs-naive comparison.
struct Case<'a> {
    cell: Cell,
    dims: (usize, usize, usize, usize),
    x: &'a [f32],
    w: &'a [f32],
    rw: &'a [f32],
    b: Option<&'a [f32]>,
    a: RefArgs<'a>,
    return_state: bool,
}

impl Case<'_> {
    fn check(&self, what: &str, rng: &mut Rng) {
        let (cell, a) = (self.cell, &self.a);
        let (n, t, f, u) = self.dims;
        let g = cell.gates() * u;
        let p = |v: &[f32], s: &[usize]| Var::parameter(Tensor::from_vec(v.to_vec(), s));
        let xs = p(self.x, &[n, t, f]);
        let ws = p(self.w, &[f, g]);
        let rws = p(self.rw, &[u, g]);
        let bs = self.b.map(|b| p(b, &cell.bias_shape(g)));
        let mut init = vec![];
        init.extend(a.h0.map(|h| p(h, &[n, u])));
        init.extend(a.c0.map(|c| p(c, &[n, u])));
        let mt = a.mask.map(|m| Tensor::from_vec(m.to_vec(), &[n, t]));
        let rdt = a.rd.map(|m| Tensor::from_vec(m.to_vec(), &[n, g]));
        let args = RnnArgs {
            return_sequences: a.seq,
            mask: mt.as_ref(),
            zero_output_for_mask: a.zero,
            initial_state: &init,
            recurrent_dropout: rdt.as_ref(),
            return_state: self.return_state,
        };
        let outs = rnn_call(cell, &xs, &ws, &rws, bs.as_ref(), &args).unwrap();
        let want = naive_forward(cell, self.x, self.w, self.rw, self.b, a, self.dims);
        let states = if self.return_state { cell.states() } else { 0 };
        assert_eq!(outs.len(), 1 + states, "{what}");
        close(&format!("{what} y"), &outs[0].value().to_f32_vec(), &want.y);
        // A random weighting of every output: the loss whose gradients we compare.
        let dy = random(want.y.len(), rng, 1.0);
        let dh = random(n * u, rng, 1.0);
        let dc = random(n * u, rng, 1.0);
        let zeros = vec![0.0; n * u];
        let c = |v: &[f32], s: &[usize]| Var::constant(Tensor::from_vec(v.to_vec(), s));
        let mut loss = sum(&mul(&outs[0], &c(&dy, &outs[0].shape())).unwrap());
        let (mut dh_t, mut dc_t) = (&zeros[..], &zeros[..]);
        if states > 0 {
            close(
                &format!("{what} h_T"),
                &outs[1].value().to_f32_vec(),
                &want.h,
            );
            loss = add(&loss, &sum(&mul(&outs[1], &c(&dh, &[n, u])).unwrap())).unwrap();
            dh_t = &dh;
        }
        if states > 1 {
            close(
                &format!("{what} c_T"),
                &outs[2].value().to_f32_vec(),
                &want.c,
            );
            loss = add(&loss, &sum(&mul(&outs[2], &c(&dc, &[n, u])).unwrap())).unwrap();
            dc_t = &dc;
        }
        loss.backward();
        let r = naive_backward(
            cell, &dy, dh_t, dc_t, self.x, self.w, self.rw, self.b, a, self.dims,
        );
        let grad = |v: &Var| v.grad().unwrap().to_f32_vec();
        close(&format!("{what} dx"), &grad(&xs), &r.dx);
        close(&format!("{what} dw"), &grad(&ws), &r.dw);
        close(&format!("{what} drw"), &grad(&rws), &r.drw);
        if let Some(bs) = &bs {
            close(&format!("{what} db"), &grad(bs), &r.db);
        }
        if a.h0.is_some() {
            close(&format!("{what} dh0"), &grad(&init[0]), &r.dh0);
        }
        if a.c0.is_some() {
            close(&format!("{what} dc0"), &grad(&init[1]), &r.dc0);
        }
    }
}

/// The summed outputs of a call as one Var, for `gradcheck` (which weights it).
fn joined(outs: Vec<Var>) -> Var {
    let mut it = outs.iter();
    let mut acc = sum(it.next().unwrap());
    for (i, o) in it.enumerate() {
        // Different weights per output so that no gradient cancels by symmetry.
        let w = Var::constant(Tensor::full(&o.shape(), 0.5 + i as f32));
        acc = add(&acc, &sum(&mul(o, &w).unwrap())).unwrap();
    }
    acc
}

/// Central differences for the input, kernel, recurrent kernel, bias and initial
/// states, for every cell: no mask; a mask with a hole, pre- and post-padding and an
/// all-masked sample; with recurrent dropout; through the final states; both output
/// forms. Weights of about 0.5 keep the gates off their flat tails, so every gradient
/// is well above f32's resolution.
#[test]
fn gradcheck_all_inputs() {
    let (n, t, f, u) = (4, 4, 2, 3);
    let mask = Tensor::from_vec(
        vec![
            1.0, 0.0, 1.0, 1.0, //
            0.0, 0.0, 1.0, 1.0, //
            1.0, 1.0, 0.0, 0.0, //
            0.0, 0.0, 0.0, 0.0,
        ],
        &[n, t],
    );
    for cell in CELLS {
        let g = cell.gates() * u;
        let bshape = cell.bias_shape(g);
        let mut rng = Rng::new(11);
        let rd = Tensor::from_vec(dropout_masks(n, g, &mut rng), &[n, g]);
        // (mask, initial states, dropout, return_state)
        for (masked, init, drop, rs) in [
            (false, false, false, false),
            (true, false, false, false),
            (true, true, false, true),
            (false, true, true, true),
            (true, true, true, true),
        ] {
            for seq in [true, false] {
                let what =
                    format!("{cell:?} mask {masked} init {init} drop {drop} state {rs} seq {seq}");
                let x = gradcheck::random_away_from_zero(&[n, t, f], &mut rng, 0.1);
                let w = Tensor::from_vec(random(f * g, &mut rng, 0.8), &[f, g]);
                let rw = Tensor::from_vec(random(u * g, &mut rng, 0.8), &[u, g]);
                let b = Tensor::from_vec(random(bshape.iter().product(), &mut rng, 0.5), &bshape);
                let mut inputs = vec![x, w, rw, b];
                if init {
                    for _ in 0..cell.states() {
                        inputs.push(Tensor::from_vec(random(n * u, &mut rng, 0.8), &[n, u]));
                    }
                }
                let r = gradcheck::check(
                    |v| {
                        let args = RnnArgs {
                            return_sequences: seq,
                            mask: masked.then_some(&mask),
                            initial_state: &v[4..],
                            recurrent_dropout: drop.then_some(&rd),
                            return_state: rs,
                            ..RnnArgs::default()
                        };
                        joined(rnn_call(cell, &v[0], &v[1], &v[2], Some(&v[3]), &args).unwrap())
                    },
                    &inputs,
                    gradcheck::DEFAULT_STEP,
                    3,
                );
                assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{what}: {r:?}");
                if !masked && !drop {
                    assert!(r.grad_scale.iter().all(|&s| s > 1e-3), "{what}: {r:?}");
                }
            }
        }
    }
}

/// Bad shapes are errors naming the op and the expected shape, not panics.
#[test]
fn shape_errors_name_the_op_and_the_expected_shape() {
    let v = |s: &[usize]| Var::constant(Tensor::zeros(s));
    for cell in CELLS {
        let op = cell.name();
        let u = 2;
        let g = cell.gates() * u;
        let call = |x: &[usize], w: &[usize], rw: &[usize], b: Option<&[usize]>, a: &RnnArgs| {
            let b = b.map(v);
            rnn_call(cell, &v(x), &v(w), &v(rw), b.as_ref(), a)
                .unwrap_err()
                .to_string()
        };
        let none = RnnArgs::default();
        let ok = |m: String, want: &str| {
            assert!(
                m.contains(&format!("{op}: ")) && m.contains(want),
                "{op}: {m}"
            );
        };
        ok(
            call(&[2, 3], &[3, g], &[u, g], None, &none),
            "[batch, steps, features], got [2, 3]",
        );
        ok(
            call(&[2, 3, 4], &[3, g], &[u, g], None, &none),
            &format!("kernel [3, {g}] does not fit input [2, 3, 4]"),
        );
        ok(
            call(&[2, 3, 4], &[4, g], &[u, g + 1], None, &none),
            "recurrent_kernel must be",
        );
        ok(
            call(&[2, 3, 4], &[4, g], &[u, g], Some(&[4]), &none),
            "bias [4] for 2 units",
        );
        ok(call(&[2, 0, 4], &[4, g], &[u, g], None, &none), "no steps");
        let bad_mask = Tensor::zeros(&[2, 4]);
        let a = RnnArgs {
            mask: Some(&bad_mask),
            ..RnnArgs::default()
        };
        ok(call(&[2, 3, 4], &[4, g], &[u, g], None, &a), "mask [2, 4]");
        ok(call(&[2, 3, 4], &[4, g], &[u, g], None, &a), "[2, 3]");
        let three = vec![v(&[2, u]), v(&[2, u]), v(&[2, u])];
        let a = RnnArgs {
            initial_state: &three,
            ..RnnArgs::default()
        };
        ok(
            call(&[2, 3, 4], &[4, g], &[u, g], None, &a),
            &format!("initial_state has 3 states, expected {}", cell.states()),
        );
        let wrong: Vec<Var> = (0..cell.states()).map(|_| v(&[3, u])).collect();
        let a = RnnArgs {
            initial_state: &wrong,
            ..RnnArgs::default()
        };
        ok(
            call(&[2, 3, 4], &[4, g], &[u, g], None, &a),
            "initial_state[0] is [3, 2], expected [2, 2]",
        );
        let rd = Tensor::zeros(&[2, u]);
        let a = RnnArgs {
            recurrent_dropout: Some(&rd),
            ..RnnArgs::default()
        };
        if cell != Cell::SimpleRnn {
            ok(
                call(&[2, 3, 4], &[4, g], &[u, g], None, &a),
                &format!("recurrent_dropout masks [2, 2], expected [2, {g}]"),
            );
        }
    }
}

/// Without dropout and initial states, `*_call` gives what the old entry points gave
/// (they are wrappers over it), and the final states equal the last output.
#[test]
fn final_state_is_the_last_output() {
    let mut rng = Rng::new(3);
    let (n, t, f, u) = (3, 5, 2, 4);
    let m = Tensor::from_vec(pre_padding(n, t), &[n, t]);
    for cell in CELLS {
        let g = cell.gates() * u;
        let x = Var::constant(Tensor::from_vec(
            random(n * t * f, &mut rng, 1.0),
            &[n, t, f],
        ));
        let w = Var::constant(Tensor::from_vec(random(f * g, &mut rng, 0.5), &[f, g]));
        let rw = Var::constant(Tensor::from_vec(random(u * g, &mut rng, 0.5), &[u, g]));
        let args = RnnArgs {
            mask: Some(&m),
            return_state: true,
            ..RnnArgs::default()
        };
        let outs = rnn_call(cell, &x, &w, &rw, None, &args).unwrap();
        assert_eq!(outs[0].shape(), [n, u]);
        assert_eq!(outs[0].value().to_f32_vec(), outs[1].value().to_f32_vec());
    }
}
