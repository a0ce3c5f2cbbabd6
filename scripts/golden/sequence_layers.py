"""Golden values for Embedding, Conv1D, MaxPooling1D and AveragePooling1D from PyTorch.

Writes tests/golden/sequence_layers.json, read by tests/golden_layers.rs (which needs no
Python). Run: python scripts/golden/sequence_layers.py (torch, numpy).

Sequences are channels-last `[N, T, C]` as in Keras; weights are given in Keras' layouts
(what nabla stores and saves) and converted to PyTorch's here:
- Embedding: the table `[input_dim, output_dim]` is `nn.Embedding.weight` as is;
  `y = table[ids]`.
- Conv1D: Keras' kernel `[K, C, F]` is `F.conv1d`'s weight `[F, C, K]` after
  `permute(2, 1, 0)`. The sequence is transposed to `[N, C, T]`, zero padded explicitly
  (TensorFlow's "same": total = max((ceil(T/s) - 1)*s + (K-1)*d + 1 - T, 0), the odd
  cell after; "causal": (K-1)*d before, none after), convolved, transposed back.
- Pools: the same explicit padding; max pads with -inf (padding never wins), average
  divides each window's sum by its count of real cells (TensorFlow's rule), so
  asymmetric "same" windows are exact.
Every case also carries the gradients of sum(y * r) for a fixed random r: the input's
(not for Embedding: ids have none) and each weight's, in Keras' layout.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []


def t(x):
    return [round(v, 7) for v in x.detach().reshape(-1).tolist()]


def pads(padding, T, k, s, d):
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return (k - 1) * d, 0
    total = max((math.ceil(T / s) - 1) * s + (k - 1) * d + 1 - T, 0)
    return total // 2, total - total // 2


# Embedding: repeated ids, so the table's gradient sums rows.
table = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
ids = torch.tensor([[2, 5, 2, 0, 6], [6, 6, 1, 3, 2]])
y = F.embedding(ids, table)
r = torch.randn_like(y)
(y * r).sum().backward()
cases.append({"layer": "Embedding", "input_dim": 7, "output_dim": 3,
              "x_shape": list(ids.shape), "x": [float(v) for v in ids.reshape(-1).tolist()],
              "embeddings": t(table), "y_shape": list(y.shape), "y": t(y), "r": t(r),
              "dembeddings": t(table.grad)})

# Conv1D: (padding, kernel, stride, dilation, activation, T)
for padding, k, s, d, act, T in [("valid", 3, 1, 1, "linear", 9), ("same", 4, 1, 1, "linear", 9),
                                 ("same", 3, 2, 1, "linear", 8), ("causal", 3, 1, 2, "linear", 9),
                                 ("valid", 3, 2, 2, "linear", 10), ("causal", 2, 2, 1, "relu", 7),
                                 ("same", 5, 3, 2, "relu", 11)]:
    cin, f = 3, 4
    x = torch.randn(2, T, cin, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(k, cin, f, dtype=torch.float64, requires_grad=True)  # Keras
    b = torch.randn(f, dtype=torch.float64, requires_grad=True)
    left, right = pads(padding, T, k, s, d)
    xt = F.pad(x.transpose(1, 2), (left, right))
    y = F.conv1d(xt, kernel.permute(2, 1, 0), b, stride=s, dilation=d).transpose(1, 2)
    if act == "relu":
        y = F.relu(y)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    cases.append({"layer": "Conv1D", "padding": padding, "kernel_size": k, "strides": s,
                  "dilation_rate": d, "activation": act, "filters": f,
                  "x_shape": list(x.shape), "x": t(x), "kernel": t(kernel), "bias": t(b),
                  "y_shape": list(y.shape), "y": t(y), "r": t(r), "dx": t(x.grad),
                  "dkernel": t(kernel.grad), "dbias": t(b.grad)})

# Pools: (kind, pool_size, strides (None = pool_size), padding, T)
for kind, p, s, padding, T in [("max", 2, None, "valid", 9), ("max", 3, 2, "same", 8),
                               ("max", 2, 3, "valid", 10), ("average", 2, None, "same", 5),
                               ("average", 3, 1, "valid", 7), ("average", 4, 2, "same", 9)]:
    c = 3
    stride = s or p
    x = torch.randn(2, T, c, dtype=torch.float64, requires_grad=True)
    left, right = pads(padding, T, p, stride, 1)
    xt = x.transpose(1, 2)
    if kind == "max":
        y = F.max_pool1d(F.pad(xt, (left, right), value=-math.inf), p, stride)
    else:
        sums = F.avg_pool1d(F.pad(xt, (left, right)), p, stride) * p
        ones = F.pad(torch.ones(1, 1, T, dtype=torch.float64), (left, right))
        counts = F.avg_pool1d(ones, p, stride) * p
        y = sums / counts
    y = y.transpose(1, 2)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    cases.append({"layer": "MaxPooling1D" if kind == "max" else "AveragePooling1D",
                  "pool_size": p, "strides": s, "padding": padding,
                  "x_shape": list(x.shape), "x": t(x), "y_shape": list(y.shape), "y": t(y),
                  "r": t(r), "dx": t(x.grad)})

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden",
                   "sequence_layers.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {out}")
