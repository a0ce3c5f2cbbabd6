"""Golden values for masked LSTM, GRU (reset_after=True) and SimpleRNN (tanh) from real
Keras 3.

Writes tests/golden/rnn_mask.json, read by tests/rnn_mask.rs (which needs no Python).
Run: KERAS_BACKEND=torch /tmp/peers-venv/bin/python scripts/golden/rnn_mask.py
(keras 3 with the torch backend, torch, numpy).

Keras' masking semantics, checked here rather than assumed: at a masked step the state
(h, and c for the LSTM) is carried unchanged; with return_sequences the output at a
masked step is the carried h (zeros before the first real step) under Keras' default
zero_output_for_mask=False, or zeros with zero_output_for_mask=True (what
Bidirectional forces on its layers when it returns sequences); the last output is h
after the last real step (zeros for a sample with no real step).

Weights are in Keras' own layouts (what nabla stores): LSTM kernel [F, 4U],
recurrent_kernel [U, 4U], bias [4U] (gates i, f, c, o); GRU kernel [F, 3U],
recurrent_kernel [U, 3U], bias [2, 3U] (gates z, r, h; row 0 input bias, row 1
recurrent bias); SimpleRNN kernel [F, U], recurrent_kernel [U, U], bias [U]. The mask [N, T] has a post-padded sample, a pre-padded one, one with a
hole in the middle and one all masked. Gradients are of loss = sum(y * R) for a fixed
random R, w.r.t. the input and every weight. Computed in float64.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

assert keras.backend.backend() == "torch", "run with KERAS_BACKEND=torch"
keras.config.set_floatx("float64")
rng = np.random.default_rng(0)


def flat(a):
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return [round(float(v), 10) for v in a.reshape(-1)]


N, T, F, U = 4, 6, 3, 4
MASK = np.array([
    [1, 1, 1, 1, 0, 0],  # post-padding
    [0, 0, 1, 1, 1, 1],  # pre-padding
    [1, 1, 0, 0, 1, 1],  # a hole in the middle
    [0, 0, 0, 0, 0, 0],  # all masked
], dtype=bool)

cases = []
# SimpleRNN last: the earlier cases keep their random draws.
for op in ["lstm", "gru", "simple_rnn"]:
    for seq, zero_output in [(True, False), (False, False), (True, True)]:
        gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[op]
        kernel = 0.5 * rng.standard_normal((F, gates * U))
        recurrent = 0.5 * rng.standard_normal((U, gates * U))
        bias = 0.3 * rng.standard_normal((gates * U,) if op != "gru" else (2, gates * U))
        if op == "lstm":
            layer = keras.layers.LSTM(U, return_sequences=seq)
        elif op == "simple_rnn":
            layer = keras.layers.SimpleRNN(U, return_sequences=seq)
        else:
            layer = keras.layers.GRU(U, return_sequences=seq, reset_after=True)
        layer.build((N, T, F))
        layer.set_weights([kernel, recurrent, bias])
        layer.zero_output_for_mask = zero_output
        x = torch.tensor(rng.standard_normal((N, T, F)), requires_grad=True)
        y = layer(x, mask=torch.tensor(MASK))
        r = torch.tensor(rng.standard_normal(tuple(y.shape)))
        (y * r).sum().backward()
        dk, drk, db = (w.value.grad for w in layer.weights)
        cases.append({
            "op": op, "n": N, "t": T, "f": F, "units": U, "return_sequences": seq,
            "zero_output_for_mask": zero_output, "mask": flat(MASK.astype(np.float64)),
            "x": flat(x), "kernel": flat(kernel), "recurrent_kernel": flat(recurrent),
            "bias": flat(bias), "y_shape": list(y.shape), "y": flat(y), "r": flat(r),
            "dx": flat(x.grad), "dkernel": flat(dk), "drecurrent_kernel": flat(drk),
            "dbias": flat(db),
        })

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "rnn_mask.json")
with open(path, "w") as fh:
    json.dump({"generator": "scripts/golden/rnn_mask.py", "keras": keras.__version__,
               "torch": torch.__version__, "cases": cases}, fh)
    fh.write("\n")
print("wrote", os.path.normpath(path), len(cases), "cases")
