"""Golden values for the recurrent ops' initial states, final states and recurrent
dropout (LSTM, GRU with reset_after=True, SimpleRNN with tanh) from real Keras 3.

Writes tests/golden/rnn_state.json, read by tests/rnn_state.rs (which needs no Python
and calls nabla's ops::{lstm,gru,simple_rnn}::*_call directly).
Run: KERAS_BACKEND=torch /tmp/peers-venv/bin/python scripts/golden/rnn_state.py
(keras 3 with the torch backend, torch, numpy).

Every case passes `initial_state` ([h0, c0] for the LSTM, [h0] otherwise) and
`return_state=True`, so it records the output and the final states. Cases: no mask; a
post-padded batch; a pre-padded one (each with an all-masked sample); both
return_sequences settings. Then recurrent dropout with training=True and dropout=0:
Keras draws its masks at random, so the cell's get_recurrent_dropout_mask is replaced by
a function returning fixed masks (per gate [N, U] arrays of 0 and 1/(1-rate): a list of
4 for the LSTM, 3 for the GRU, one array for SimpleRNN), which the JSON holds side by
side as [N, gates * U] (nabla's layout). Keras 3 runs a cell with recurrent_dropout > 0
as "implementation 1" (one product per gate, (h * m_k) @ U_k).

Gradients (every case) are of loss = sum(y * R) + sum(h_T * RH) (+ sum(c_T * RC)) for
fixed random R, RH, RC, w.r.t. the input, every weight and the initial states.
Computed in float64.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

assert keras.backend.backend() == "torch", "run with KERAS_BACKEND=torch"
keras.config.set_floatx("float64")
rng = np.random.default_rng(7)
RATE = 0.4


def flat(a):
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return [round(float(v), 10) for v in a.reshape(-1)]


N, T, F, U = 4, 5, 3, 3
MASKS = {
    "none": None,
    "post": np.array([
        [1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],  # all masked: the final states are the initial ones
    ], dtype=bool),
    "pre": np.array([
        [1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ], dtype=bool),
    "hole": np.array([
        [1, 1, 0, 1, 1],
        [0, 1, 1, 1, 0],
        [1, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ], dtype=bool),
}
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}

cases = []
plan = [(m, seq, False) for m in ["none", "post", "pre"] for seq in [True, False]]
plan += [(m, seq, True) for m in ["none", "hole"] for seq in [True, False]]
for op in ["lstm", "gru", "simple_rnn"]:
    gates = GATES[op]
    for mask_name, seq, drop in plan:
        kernel = 0.5 * rng.standard_normal((F, gates * U))
        recurrent = 0.5 * rng.standard_normal((U, gates * U))
        bias = 0.3 * rng.standard_normal((gates * U,) if op != "gru" else (2, gates * U))
        kw = dict(return_sequences=seq, return_state=True,
                  recurrent_dropout=RATE if drop else 0.0)
        if op == "lstm":
            layer = keras.layers.LSTM(U, **kw)
        elif op == "simple_rnn":
            layer = keras.layers.SimpleRNN(U, **kw)
        else:
            layer = keras.layers.GRU(U, reset_after=True, **kw)
        layer.build((N, T, F))
        layer.set_weights([kernel, recurrent, bias])
        rd = None
        if drop:
            keep = rng.random((gates, N, U)) >= RATE
            per_gate = keep.astype(np.float64) / (1.0 - RATE)
            rd = np.concatenate(list(per_gate), axis=1)  # [N, gates * U]
            fixed = [torch.tensor(m) for m in per_gate]
            layer.cell.get_recurrent_dropout_mask = (
                (lambda _x, fixed=fixed: fixed) if gates > 1
                else (lambda _x, fixed=fixed: fixed[0])
            )
        x = torch.tensor(rng.standard_normal((N, T, F)), requires_grad=True)
        states = [torch.tensor(0.8 * rng.standard_normal((N, U)), requires_grad=True)
                  for _ in range(2 if op == "lstm" else 1)]
        mask = MASKS[mask_name]
        outs = layer(x, mask=None if mask is None else torch.tensor(mask),
                     initial_state=states, training=drop)
        rs = [torch.tensor(rng.standard_normal(tuple(o.shape))) for o in outs]
        sum((o * r).sum() for o, r in zip(outs, rs)).backward()
        dk, drk, db = (w.value.grad for w in layer.weights)
        cases.append({
            "op": op, "n": N, "t": T, "f": F, "units": U, "return_sequences": seq,
            "mask": None if mask is None else flat(mask.astype(np.float64)),
            "mask_name": mask_name,
            "recurrent_dropout": None if rd is None else flat(rd),
            "x": flat(x), "kernel": flat(kernel), "recurrent_kernel": flat(recurrent),
            "bias": flat(bias), "initial_state": [flat(s) for s in states],
            "y_shape": list(outs[0].shape), "outputs": [flat(o) for o in outs],
            "r": [flat(r) for r in rs],
            "dx": flat(x.grad), "dkernel": flat(dk), "drecurrent_kernel": flat(drk),
            "dbias": flat(db), "dinitial_state": [flat(s.grad) for s in states],
        })

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "rnn_state.json")
with open(path, "w") as fh:
    json.dump({"generator": "scripts/golden/rnn_state.py", "keras": keras.__version__,
               "torch": torch.__version__, "cases": cases}, fh)
    fh.write("\n")
print("wrote", os.path.normpath(path), len(cases), "cases")
