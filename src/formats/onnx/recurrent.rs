//! Keras' recurrent layers as ONNX's `LSTM`, `GRU` and `RNN` ops.
//!
//! Layouts: Keras keeps `kernel [F, G*U]`, `recurrent_kernel [U, G*U]` with the gate
//! blocks side by side; ONNX wants `W [dirs, G*H, F]`, `R [dirs, G*H, H]` (transposed)
//! and `B [dirs, 2*G*H]` (input bias, then recurrent bias). Gate orders: Keras' LSTM is
//! i, f, c, o and ONNX's i, o, f, c; GRU is z, r, h in both, and Keras'
//! `reset_after=True` (the only GRU nabla has) is ONNX's `linear_before_reset=1`, with
//! Keras' two bias rows as ONNX's `Wb` and `Rb`. The ops run time-major (`[T, N, F]`),
//! so the sequence is transposed in and the outputs back.
//!
//! Masks (`Embedding(mask_zero)`): Keras' rule, which nabla follows, is that a masked
//! step carries the state, wherever it is; ONNX's ops take `sequence_lens` and run the
//! first `len` steps of each sequence. The two agree once the real steps are moved to
//! the front in their order: a stable compaction (each real step goes to the number of
//! real steps before it, each padded one after all real steps) done with CumSum and
//! ScatterElements, then `sequence_lens` = the number of real steps. That is exact for
//! any mask: padding at the end, at the start (what the CLI feeds the text models), or
//! in between. The final state is then each sequence's state after its last real step,
//! as Keras gives; the reverse direction runs the real steps last to first, as
//! Keras' `go_backwards` copy does with masked steps skipped. With `return_sequences`
//! Keras also defines an output at every padded step (the carried one, or zeros under
//! `Bidirectional`), which the compacted order does not give back: masked sequences
//! with `return_sequences` are listed as not exportable.

use super::builder::{attr_i, attr_ints, attr_s, cast_to_i32, Builder};
use super::export::{values_of, Call, Exporter, Problem, Value};
use crate::nn::layers::{
    Activation, BidirectionalConfig, GRUConfig, LSTMConfig, LayerConfig, MergeMode, Param,
    SimpleRNNConfig,
};

/// What differs between the three cells.
struct Cell {
    op: &'static str,
    /// Keras' gate block for each ONNX gate block.
    gate_order: &'static [usize],
    units: usize,
    return_sequences: bool,
    /// Extra attributes (GRU's `linear_before_reset`, RNN's activation).
    attrs: Vec<crate::formats::onnx::proto::AttributeProto>,
    /// Keras' bias is two rows (GRU `reset_after`), input then recurrent.
    two_bias_rows: bool,
}

const LSTM_ORDER: [usize; 4] = [0, 3, 1, 2]; // ONNX i, o, f, c from Keras i, f, c, o
const GRU_ORDER: [usize; 3] = [0, 1, 2]; // z, r, h in both
const RNN_ORDER: [usize; 1] = [0];

fn check_common(
    call: &Call,
    return_state: bool,
    activation: Activation,
    recurrent_activation: Option<Activation>,
) -> Result<(), Problem> {
    if call.inputs.len() != 1 {
        return Err("initial states given as further inputs are not exported".into());
    }
    if return_state {
        return Err("return_state (several outputs) is not exported".into());
    }
    if activation != Activation::Tanh {
        return Err(format!(
            "activation {activation:?} is not exported (tanh is)"
        ));
    }
    if let Some(a) = recurrent_activation {
        if a != Activation::Sigmoid {
            return Err(format!(
                "recurrent_activation {a:?} is not exported (sigmoid is)"
            ));
        }
    }
    Ok(())
}

pub(super) fn lstm(e: &mut Exporter, c: &LSTMConfig, call: &Call) -> Result<Vec<Value>, Problem> {
    check_common(
        call,
        c.return_state,
        c.activation,
        Some(c.recurrent_activation),
    )?;
    let cell = Cell {
        op: "LSTM",
        gate_order: &LSTM_ORDER,
        units: c.units,
        return_sequences: c.return_sequences,
        attrs: vec![],
        two_bias_rows: false,
    };
    run(e, &cell, &[call.params], call, None)
}

pub(super) fn gru(e: &mut Exporter, c: &GRUConfig, call: &Call) -> Result<Vec<Value>, Problem> {
    check_common(
        call,
        c.return_state,
        c.activation,
        Some(c.recurrent_activation),
    )?;
    if !c.reset_after {
        return Err("reset_after=false is not exported".into());
    }
    let cell = Cell {
        op: "GRU",
        gate_order: &GRU_ORDER,
        units: c.units,
        return_sequences: c.return_sequences,
        attrs: vec![attr_i("linear_before_reset", 1)],
        two_bias_rows: true,
    };
    run(e, &cell, &[call.params], call, None)
}

pub(super) fn simple_rnn(
    e: &mut Exporter,
    c: &SimpleRNNConfig,
    call: &Call,
) -> Result<Vec<Value>, Problem> {
    check_common(call, c.return_state, c.activation, None)?;
    let cell = Cell {
        op: "RNN",
        gate_order: &RNN_ORDER,
        units: c.units,
        return_sequences: c.return_sequences,
        attrs: vec![],
        two_bias_rows: false,
    };
    run(e, &cell, &[call.params], call, None)
}

/// Both directions as one ONNX op with `direction = "bidirectional"`; the weights are
/// the forward copy's, then the backward copy's (`Bidirectional::params`).
pub(super) fn bidirectional(
    e: &mut Exporter,
    c: &BidirectionalConfig,
    call: &Call,
) -> Result<Vec<Value>, Problem> {
    let inner: &LayerConfig = &c.layer;
    let half = call.params.len() / 2;
    let (fwd, bwd) = call.params.split_at(half);
    let cell = if let Some(l) = inner.downcast_ref::<LSTMConfig>() {
        check_common(
            call,
            l.return_state,
            l.activation,
            Some(l.recurrent_activation),
        )?;
        Cell {
            op: "LSTM",
            gate_order: &LSTM_ORDER,
            units: l.units,
            return_sequences: l.return_sequences,
            attrs: vec![],
            two_bias_rows: false,
        }
    } else if let Some(l) = inner.downcast_ref::<GRUConfig>() {
        check_common(
            call,
            l.return_state,
            l.activation,
            Some(l.recurrent_activation),
        )?;
        if !l.reset_after {
            return Err("reset_after=false is not exported".into());
        }
        Cell {
            op: "GRU",
            gate_order: &GRU_ORDER,
            units: l.units,
            return_sequences: l.return_sequences,
            attrs: vec![attr_i("linear_before_reset", 1)],
            two_bias_rows: true,
        }
    } else if let Some(l) = inner.downcast_ref::<SimpleRNNConfig>() {
        check_common(call, l.return_state, l.activation, None)?;
        Cell {
            op: "RNN",
            gate_order: &RNN_ORDER,
            units: l.units,
            return_sequences: l.return_sequences,
            attrs: vec![],
            two_bias_rows: false,
        }
    } else {
        return Err(format!("a wrapped {} is not exported", inner.class_name()));
    };
    run(e, &cell, &[fwd, bwd], call, Some(c.merge_mode))
}

/// `[dirs, G*H, cols]` from Keras' `[cols, G*U]` matrices, one per direction, the gate
/// blocks reordered.
fn stack_transposed(
    mats: &[(Vec<f32>, Vec<usize>)],
    order: &[usize],
    h: usize,
) -> (Vec<f32>, Vec<usize>) {
    let cols = mats[0].1[0];
    let g = order.len();
    let mut out = Vec::with_capacity(mats.len() * g * h * cols);
    for (v, shape) in mats {
        let width = shape[1];
        for &kg in order {
            for u in 0..h {
                for r in 0..cols {
                    out.push(v[r * width + kg * h + u]);
                }
            }
        }
    }
    (out, vec![mats.len(), g * h, cols])
}

/// `B [dirs, 2*G*H]`: Keras' bias (one row, or GRU's input and recurrent rows), gate
/// blocks reordered; zeros for the recurrent half where Keras has one row.
fn stack_bias(
    biases: &[Option<&Param>],
    order: &[usize],
    h: usize,
    two_rows: bool,
) -> (Vec<f32>, Vec<usize>) {
    let g = order.len();
    let mut out = Vec::with_capacity(biases.len() * 2 * g * h);
    for b in biases {
        let v = b
            .map(|p| values_of(p).0)
            .unwrap_or_else(|| vec![0.0; if two_rows { 2 } else { 1 } * g * h]);
        let rows = if two_rows { 2 } else { 1 };
        for row in 0..2 {
            for &kg in order {
                for u in 0..h {
                    out.push(if row < rows {
                        v[row * g * h + kg * h + u]
                    } else {
                        0.0
                    });
                }
            }
        }
    }
    (out, vec![biases.len(), 2 * g * h])
}

fn find<'p>(params: &'p [Param], what: &str) -> Option<&'p Param> {
    let suffix = format!("/{what}");
    params.iter().find(|p| p.name.ends_with(&suffix))
}

/// The op over `call`'s sequence, one weight set per direction, and the output as nabla
/// gives it (`[N, U]` or `[N, T, U]`, the directions merged by `merge`).
fn run(
    e: &mut Exporter,
    cell: &Cell,
    dirs: &[&[Param]],
    call: &Call,
    merge: Option<MergeMode>,
) -> Result<Vec<Value>, Problem> {
    let mask = call.inputs[0].mask.clone();
    if mask.is_some() && cell.return_sequences {
        return Err(
            "return_sequences over a masked sequence (Embedding mask_zero) is not \
                    exported: ONNX's ops give no output at padded steps"
                .into(),
        );
    }
    let h = cell.units;
    let mut kernels = Vec::new();
    let mut recurrents = Vec::new();
    let mut biases = Vec::new();
    for params in dirs {
        kernels.push(values_of(find(params, "kernel").ok_or("no kernel weight")?));
        recurrents.push(values_of(
            find(params, "recurrent_kernel").ok_or("no recurrent_kernel weight")?,
        ));
        biases.push(find(params, "bias"));
    }
    let base = call.name.clone();
    let key = format!("{}{}", call.key, dirs[0][0].name);
    let (wv, ws) = stack_transposed(&kernels, cell.gate_order, h);
    let w = e.cached(format!("{key}/onnx_W"), |b| {
        b.f32s(&format!("{base}/W"), &ws, &wv)
    });
    let (rv, rs) = stack_transposed(&recurrents, cell.gate_order, h);
    let r = e.cached(format!("{key}/onnx_R"), |b| {
        b.f32s(&format!("{base}/R"), &rs, &rv)
    });
    let (bv, bs) = stack_bias(&biases, cell.gate_order, h, cell.two_bias_rows);
    let bias = e.cached(format!("{key}/onnx_B"), |b| {
        b.f32s(&format!("{base}/B"), &bs, &bv)
    });

    let b = &mut e.b;
    let (x, lens) = match &mask {
        Some(m) => {
            let (x, lens) = compact(b, &call.inputs[0].name, m, &base);
            (x, lens)
        }
        None => (call.inputs[0].name.clone(), String::new()),
    };
    let xt = b.op(
        "Transpose",
        &[&x],
        &base,
        vec![attr_ints("perm", &[1, 0, 2])],
    );
    let mut attrs = cell.attrs.clone();
    attrs.push(attr_i("hidden_size", h as i64));
    if dirs.len() == 2 {
        attrs.push(attr_s("direction", "bidirectional"));
    }
    let ins = [xt.as_str(), &w, &r, &bias, &lens];
    let ins: &[&str] = if lens.is_empty() { &ins[..4] } else { &ins };
    let outs = b.op_n(cell.op, ins, &base, 2, attrs);
    let ndir = dirs.len() as i64;
    let y = if cell.return_sequences {
        // Y [T, dirs, N, H] -> [N, T, dirs, H]
        b.op(
            "Transpose",
            &[&outs[0]],
            &base,
            vec![attr_ints("perm", &[2, 0, 1, 3])],
        )
    } else {
        // Y_h [dirs, N, H] -> [N, dirs, H]
        b.op(
            "Transpose",
            &[&outs[1]],
            &base,
            vec![attr_ints("perm", &[1, 0, 2])],
        )
    };
    let dir_axis = if cell.return_sequences { 2 } else { 1 };
    let merged = match (ndir, merge.unwrap_or(MergeMode::Concat)) {
        (1, _) | (_, MergeMode::Concat) => {
            // Concatenation of the directions is a reshape of the last two axes.
            let shape: Vec<i64> = if cell.return_sequences {
                vec![0, 0, -1]
            } else {
                vec![0, -1]
            };
            let s = b.i64_vec(&format!("{base}/shape"), &shape);
            b.op("Reshape", &[&y, &s], &base, vec![])
        }
        (_, mode) => {
            let halves = b.op_n("Split", &[&y], &base, 2, vec![attr_i("axis", dir_axis)]);
            let op = match mode {
                MergeMode::Mul => "Mul",
                _ => "Add",
            };
            let joined = b.op(op, &[&halves[0], &halves[1]], &base, vec![]);
            let ax = b.i64_vec(&format!("{base}/dir_axis"), &[dir_axis]);
            let joined = b.op("Squeeze", &[&joined, &ax], &base, vec![]);
            match mode {
                MergeMode::Ave => {
                    let half = b.scalar(&format!("{base}/half"), 0.5);
                    b.op("Mul", &[&joined, &half], &base, vec![])
                }
                _ => joined,
            }
        }
    };
    Ok(vec![Value::plain(merged)])
}

/// Moves each sequence's real steps to the front, in order (see the module docs), and
/// counts them: `(x compacted [N, T, F], sequence_lens int32 [N])`.
fn compact(b: &mut Builder, x: &str, m: &str, base: &str) -> (String, String) {
    let base = format!("{base}/compact");
    let base = base.as_str();
    let one = b.i64s(&format!("{base}/one"), &[], &[1]);
    let axis1 = b.i64s(&format!("{base}/axis"), &[], &[1]);
    let axes1 = b.i64_vec(&format!("{base}/axes1"), &[1]);
    let axes2 = b.i64_vec(&format!("{base}/axes2"), &[2]);
    // real: number of real steps up to and including t; pad: the same for padded ones.
    let real = b.op("CumSum", &[m, &axis1], base, vec![]);
    let inv = b.op("Sub", &[&one, m], base, vec![]);
    let pad = b.op("CumSum", &[&inv, &axis1], base, vec![]);
    let len = b.op("ReduceSum", &[m, &axes1], base, vec![attr_i("keepdims", 1)]);
    // A real step goes to real - 1, a padded one to len + pad - 1.
    let real_pos = b.op("Sub", &[&real, &one], base, vec![]);
    let pad_pos = b.op("Add", &[&len, &pad], base, vec![]);
    let pad_pos = b.op("Sub", &[&pad_pos, &one], base, vec![]);
    let a = b.op("Mul", &[m, &real_pos], base, vec![]);
    let c = b.op("Mul", &[&inv, &pad_pos], base, vec![]);
    let pos = b.op("Add", &[&a, &c], base, vec![]);
    let pos = b.op("Unsqueeze", &[&pos, &axes2], base, vec![]);
    let shape = b.op("Shape", &[x], base, vec![]);
    let idx = b.op("Expand", &[&pos, &shape], base, vec![]);
    let moved = b.op(
        "ScatterElements",
        &[x, &idx, x],
        base,
        vec![attr_i("axis", 1)],
    );
    let lens = b.op("Squeeze", &[&len, &axes1], base, vec![]);
    let lens = b.op("Cast", &[&lens], base, vec![cast_to_i32()]);
    (moved, lens)
}
