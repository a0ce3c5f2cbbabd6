"""Golden values for Keras 3 masks: Embedding(mask_zero=True) feeding the layers after it.

Writes tests/golden/masking.json, read by tests/masking.rs (which needs no Python).
Run with Keras 3 on its torch backend (keras, torch, numpy):
    KERAS_BACKEND=torch python scripts/golden/masking.py

Three models on token ids `[N, T]` (0 = padding), all in real Keras:
- `gap`: Embedding(V, D, mask_zero=True) -> GlobalAveragePooling1D (mean over the real
  steps);
- `gmp`: Embedding(V, D, mask_zero=True) -> GlobalMaxPooling1D (Keras 3's max pool does
  not support masking: it drops the mask and takes the max over every step);
- `dense_gap`: Embedding(V, D, mask_zero=True) -> Dense(U) on the `[N, T, D]` sequence
  (the mask passes through Dense) -> GlobalAveragePooling1D.
The rows of the batch are one full row, one post-padded, one pre-padded and one all
padding. For the all-padding row Keras' average is 0/0 = NaN; nabla returns zeros there
(a NaN would poison the whole batch's loss), so the script checks that Keras gives NaN
and writes 0 in its place. The gradients are Keras' own (finite: the masked steps get
none). Every case carries the weights (Keras' layouts: embeddings `[V, D]`, kernel
`[D, U]`, bias `[U]`), the output and the gradients of sum(out * r) for a fixed random
r with respect to each weight.

`rnn_cases`: four models with recurrent layers after Embedding(V, D, mask_zero=True),
computed in float64 (so the reference adds no float32 error of its own):
- `lstm`: LSTM(U), the last output;
- `gru`: GRU(U, reset_after=True), the last output;
- `bilstm_gap`: Bidirectional(LSTM(U, return_sequences=True)), concat ->
  GlobalAveragePooling1D (Bidirectional forces zero_output_for_mask on both halves and
  passes the mask on to the pool);
- `bigru_sum`: Bidirectional(GRU(U), merge_mode="sum"), the last outputs.
Their batch adds a row with a hole in the middle (Keras' generic RNN loop carries the
state over any masked step, not only padding at the ends). The last output of the
all-padding row is the initial state, zeros; the bilstm_gap average there is 0/0 = NaN
in Keras and 0 in nabla, as above. Each case lists its weights in the order nabla's
model.params() gives them (Keras' trainable_weights order: embeddings, then per
recurrent layer kernel [D, gU], recurrent_kernel [U, gU], bias [gU] or [2, 3U] for the
GRU, forward copy before backward), each with its gradient of sum(out * r).
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

assert keras.backend.backend() == "torch", "run with KERAS_BACKEND=torch"
rng = np.random.default_rng(0)
V, D, U, T = 7, 3, 2, 5
ids = np.array(
    [
        [3, 1, 4, 6, 5],  # full
        [2, 5, 3, 0, 0],  # post-padded
        [0, 0, 6, 2, 1],  # pre-padded
        [0, 0, 0, 0, 0],  # all padding
    ],
    dtype="int32",
)


def build(kind):
    inp = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(V, D, mask_zero=True, name="embedding")(inp)
    if kind == "dense_gap":
        h = keras.layers.Dense(U, name="dense")(h)
    pool = keras.layers.GlobalMaxPooling1D if kind == "gmp" else keras.layers.GlobalAveragePooling1D
    return keras.Model(inp, pool(name="pool")(h))


cases = []
for kind in ["gap", "gmp", "dense_gap"]:
    model = build(kind)
    weights = {"embeddings": rng.uniform(-1, 1, (V, D)).astype("float32")}
    model.get_layer("embedding").set_weights([weights["embeddings"]])
    if kind == "dense_gap":
        weights["kernel"] = rng.uniform(-1, 1, (D, U)).astype("float32")
        weights["bias"] = rng.uniform(-1, 1, (U,)).astype("float32")
        model.get_layer("dense").set_weights([weights["kernel"], weights["bias"]])
    out = model(torch.tensor(ids))
    r = torch.tensor(rng.uniform(-1, 1, tuple(out.shape)).astype("float32"))
    (out * r).sum().backward()
    grads = {"embeddings": model.get_layer("embedding").embeddings.value.grad}
    if kind == "dense_gap":
        dense = model.get_layer("dense")
        grads["kernel"] = dense.kernel.value.grad
        grads["bias"] = dense.bias.value.grad
    y = out.detach().numpy().copy()
    if kind == "gmp":
        assert np.isfinite(y).all()
    else:
        assert np.isnan(y[3]).all() and np.isfinite(y[:3]).all(), y
        y[3] = 0.0  # nabla's choice for a row with no real step (see above)
    for g in grads.values():
        assert torch.isfinite(g).all(), g
    cases.append(
        {
            "model": kind,
            "vocab": V,
            "dim": D,
            "units": U,
            "ids": ids.flatten().tolist(),
            "ids_shape": list(ids.shape),
            "weights": {k: v.flatten().tolist() for k, v in weights.items()},
            "y": y.flatten().tolist(),
            "y_shape": list(y.shape),
            "r": r.flatten().tolist(),
            "grads": {k: g.detach().numpy().flatten().tolist() for k, g in grads.items()},
        }
    )

F64 = "float64"  # each layer's dtype (set_floatx comes too late: layers exist already)
ids_rnn = np.array(
    [
        [3, 1, 4, 6, 5],  # full
        [2, 5, 3, 0, 0],  # post-padded
        [0, 0, 6, 2, 1],  # pre-padded
        [4, 0, 0, 2, 3],  # a hole in the middle
        [0, 0, 0, 0, 0],  # all padding
    ],
    dtype="int32",
)


def build_rnn(kind):
    inp = keras.Input((T,), dtype="int32")
    L = keras.layers
    h = L.Embedding(V, D, mask_zero=True, dtype=F64)(inp)
    if kind == "lstm":
        h = L.LSTM(U, dtype=F64)(h)
    elif kind == "gru":
        h = L.GRU(U, reset_after=True, dtype=F64)(h)
    elif kind == "bilstm_gap":
        h = L.Bidirectional(L.LSTM(U, return_sequences=True, dtype=F64), dtype=F64)(h)
        h = L.GlobalAveragePooling1D(dtype=F64)(h)
    else:
        gru = L.GRU(U, reset_after=True, dtype=F64)
        h = L.Bidirectional(gru, merge_mode="sum", dtype=F64)(h)
    return keras.Model(inp, h)


rnn_cases = []
for kind in ["lstm", "gru", "bilstm_gap", "bigru_sum"]:
    model = build_rnn(kind)
    params = []
    for w in model.trainable_weights:
        # float32 values (what nabla holds), computed with in float64.
        v = (0.7 * rng.standard_normal(tuple(w.shape))).astype("float32").astype(F64)
        w.assign(v)
        assert w.dtype == F64, (w.path, w.dtype)
        params.append((w.path, w, v))
    out = model(torch.tensor(ids_rnn))
    r = torch.tensor(rng.uniform(-1, 1, tuple(out.shape)))
    (out * r).sum().backward()
    assert out.dtype == torch.float64, out.dtype
    y = out.detach().numpy().copy()
    if kind == "bilstm_gap":
        assert np.isnan(y[4]).all() and np.isfinite(y[:4]).all(), y
        y[4] = 0.0  # nabla's choice for a row with no real step (see above)
    else:
        assert (y[4] == 0).all() and np.isfinite(y).all(), y
    entries = []
    for name, w, v in params:
        g = w.value.grad
        assert g is not None and torch.isfinite(g).all(), (name, g)
        entries.append(
            {
                "name": name,
                "shape": list(v.shape),
                "value": v.flatten().tolist(),
                "grad": g.detach().numpy().flatten().tolist(),
            }
        )
    rnn_cases.append(
        {
            "model": kind,
            "vocab": V,
            "dim": D,
            "units": U,
            "ids": ids_rnn.flatten().tolist(),
            "ids_shape": list(ids_rnn.shape),
            "params": entries,
            "y": y.flatten().tolist(),
            "y_shape": list(y.shape),
            "r": r.flatten().tolist(),
        }
    )

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "masking.json")
with open(path, "w") as f:
    json.dump(
        {
            "keras": keras.__version__,
            "torch": torch.__version__,
            "cases": cases,
            "rnn_cases": rnn_cases,
        },
        f,
    )
print("wrote", len(cases), "+", len(rnn_cases), "cases to", os.path.normpath(path))
