"""Golden values for recurrent layers' states in whole Keras 3 models: `return_state`,
`initial_state`, an encoder-decoder that hands its final states on, and Bidirectional
with `return_state`.

Writes tests/golden/rnn_state_layers.json, read by tests/rnn_state_layers.rs (which
needs no Python). Run with Keras 3 on its torch backend (keras, torch, numpy):
    KERAS_BACKEND=torch python scripts/golden/rnn_state_layers.py

Every model reads token ids `[N, T]` through Embedding(V, D, mask_zero=True), so the
masks of padded steps flow too (rows: full, post-padded, pre-padded, a hole, all
padding). Keras 3 drops that mask when a layer gets `initial_state` as tensors (its
`Layer.__call__` passes a mask on by itself only to calls with one tensor argument), so
the script passes `mask=` explicitly there; nabla always carries the sequence's mask. Computed in float64 from float32 weights (the reference adds no float32
error of its own). Models:
- `lstm_states`: LSTM(U, return_sequences=True, return_state=True) with
  initial_state=[h0, c0] from two more model inputs; outputs [sequence, h, c].
- `gru_states`: GRU(U, return_state=True), initial_state=[h0]; outputs [last, h].
- `simple_rnn_states`: SimpleRNN(U, return_sequences=True, return_state=True),
  initial_state=[h0]; outputs [sequence, h].
- `encoder_decoder`: the seq2seq shape: LSTM(U, return_state=True) over the first id
  sequence, its final [h, c] as the initial state of LSTM(U, return_sequences=True)
  over a second id sequence (its own embedding), then Dense(K) on every step.
- `bilstm_states`: Bidirectional(LSTM(U, return_state=True)); outputs [merged last,
  forward h, forward c, backward h, backward c].
- `bigru_states_seq`: Bidirectional(GRU(U, return_sequences=True, return_state=True),
  merge_mode="sum") with initial_state=[fh0, bh0] (the first half to the forward layer);
  outputs [sequence, forward h, backward h].
Each case lists the model's inputs (ids as floats, states), its outputs, fixed random
weights r_k per output, the gradient of sum_k sum(out_k * r_k) with respect to every
weight (named as nabla names them: Keras' path without the `*_cell` part) and with
respect to each state input.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

assert keras.backend.backend() == "torch", "run with KERAS_BACKEND=torch"
rng = np.random.default_rng(3)
V, D, U, T, K = 7, 3, 2, 5, 4
F64 = "float64"
L = keras.layers
ids = np.array(
    [
        [3, 1, 4, 6, 5],  # full
        [2, 5, 3, 0, 0],  # post-padded
        [0, 0, 6, 2, 1],  # pre-padded
        [4, 0, 0, 2, 3],  # a hole in the middle
        [0, 0, 0, 0, 0],  # all padding
    ],
    dtype="int32",
)
ids2 = np.array(
    [
        [1, 2, 3, 0, 0],
        [6, 5, 4, 3, 2],
        [0, 2, 2, 2, 2],
        [3, 0, 0, 0, 0],
        [5, 5, 0, 0, 0],
    ],
    dtype="int32",
)
N = ids.shape[0]


def emb(name):
    return L.Embedding(V, D, mask_zero=True, dtype=F64, name=name)


def build(kind):
    """(model, list of (input name, kind, value)) for one case."""
    x = keras.Input((T,), dtype="int32", name="ids")
    e = emb("embedding")(x)
    # Keras 3 forwards a mask on its own only to a call with one tensor argument: with
    # initial_state it silently drops the sequence's mask. nabla keeps it (what a user
    # of mask_zero means), so the mask goes in explicitly here.
    mask = keras.ops.not_equal(x, 0)
    if kind == "lstm_states":
        h0, c0 = keras.Input((U,), dtype=F64, name="h0"), keras.Input((U,), dtype=F64, name="c0")
        rnn = L.LSTM(U, return_sequences=True, return_state=True, dtype=F64, name="lstm")
        outs = rnn(e, initial_state=[h0, c0], mask=mask)
        return keras.Model([x, h0, c0], outs), ["h0", "c0"]
    if kind == "gru_states":
        h0 = keras.Input((U,), dtype=F64, name="h0")
        outs = L.GRU(U, return_state=True, dtype=F64, name="gru")(e, initial_state=[h0], mask=mask)
        return keras.Model([x, h0], outs), ["h0"]
    if kind == "simple_rnn_states":
        h0 = keras.Input((U,), dtype=F64, name="h0")
        rnn = L.SimpleRNN(U, return_sequences=True, return_state=True, dtype=F64, name="simple_rnn")
        outs = rnn(e, initial_state=[h0], mask=mask)
        return keras.Model([x, h0], outs), ["h0"]
    if kind == "encoder_decoder":
        y = keras.Input((T,), dtype="int32", name="ids2")
        _, h, c = L.LSTM(U, return_state=True, dtype=F64, name="encoder")(e)
        d = emb("embedding_1")(y)
        dec = L.LSTM(U, return_sequences=True, dtype=F64, name="decoder")
        s = dec(d, initial_state=[h, c], mask=keras.ops.not_equal(y, 0))
        out = L.Dense(K, dtype=F64, name="dense")(s)
        return keras.Model([x, y], [out]), []
    if kind == "bilstm_states":
        bi = L.Bidirectional(L.LSTM(U, return_state=True, dtype=F64), dtype=F64, name="bidirectional")
        return keras.Model([x], bi(e)), []
    if kind == "bigru_states_seq":
        fh0, bh0 = keras.Input((U,), dtype=F64, name="fh0"), keras.Input((U,), dtype=F64, name="bh0")
        gru = L.GRU(U, return_sequences=True, return_state=True, dtype=F64)
        bi = L.Bidirectional(gru, merge_mode="sum", dtype=F64, name="bidirectional")
        outs = bi(e, initial_state=[fh0, bh0], mask=mask)
        return keras.Model([x, fh0, bh0], outs), ["fh0", "bh0"]
    raise ValueError(kind)


def nabla_name(path):
    return "/".join(p for p in path.split("/") if not p.endswith("_cell"))


cases = []
for kind in [
    "lstm_states",
    "gru_states",
    "simple_rnn_states",
    "encoder_decoder",
    "bilstm_states",
    "bigru_states_seq",
]:
    model, state_names = build(kind)
    params = []
    for w in model.trainable_weights:
        v = (0.7 * rng.standard_normal(tuple(w.shape))).astype("float32").astype(F64)
        w.assign(v)
        assert w.dtype == F64, (w.path, w.dtype)
        params.append((nabla_name(w.path), w, v))
    inputs = [torch.tensor(ids)]
    if kind == "encoder_decoder":
        inputs.append(torch.tensor(ids2))
    states = []
    for _ in state_names:
        s = rng.uniform(-1, 1, (N, U)).astype("float32").astype(F64)
        states.append(torch.tensor(s, requires_grad=True))
    outs = model(inputs + states)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    rs = [torch.tensor(rng.uniform(-1, 1, tuple(o.shape))) for o in outs]
    sum((o * r).sum() for o, r in zip(outs, rs)).backward()
    for o in outs:
        assert o.dtype == torch.float64 and torch.isfinite(o).all(), o
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
    cases.append(
        {
            "model": kind,
            "vocab": V,
            "dim": D,
            "units": U,
            "classes": K,
            "ids": ids.flatten().tolist(),
            "ids2": ids2.flatten().tolist() if kind == "encoder_decoder" else [],
            "ids_shape": list(ids.shape),
            "states": [
                {
                    "name": n,
                    "value": s.detach().numpy().flatten().tolist(),
                    "grad": s.grad.detach().numpy().flatten().tolist(),
                }
                for n, s in zip(state_names, states)
            ],
            "params": entries,
            "outputs": [
                {
                    "shape": list(o.shape),
                    "value": o.detach().numpy().flatten().tolist(),
                    "r": r.numpy().flatten().tolist(),
                }
                for o, r in zip(outs, rs)
            ],
        }
    )

path = os.path.join(
    os.path.dirname(__file__), "..", "..", "tests", "golden", "rnn_state_layers.json"
)
with open(path, "w") as f:
    json.dump({"keras": keras.__version__, "torch": torch.__version__, "cases": cases}, f)
print("wrote", len(cases), "cases to", os.path.normpath(path))
