"""Golden values for Keras' GRU layer (reset_after=True) from PyTorch's torch.nn.GRU.

Writes tests/golden/gru.json, read by tests/golden_layers.rs (which needs no Python).
Run: /tmp/peers-venv/bin/python scripts/golden/gru.py (torch, numpy).

Weights are drawn in Keras' layouts (what nabla stores and saves) and set on a
batch_first torch.nn.GRU. Keras' gate blocks along the 3U axis are z, r, h (update,
reset, candidate); PyTorch's are r, z, n. So every 3U axis is permuted: the first two
blocks swap, the third stays (`perm` below; the permutation is its own inverse):
- weight_ih_l0 [3U, F] = kernel[:, perm].T; weight_hh_l0 [3U, U] = recurrent_kernel[:, perm].T
- bias_ih_l0 = bias[0][perm]; bias_hh_l0 = bias[1][perm] (Keras' reset_after=True keeps
  the two biases apart, as PyTorch does; r multiplies the recurrent term with its bias
  in both), and bias=False when use_bias is off.
Both start from a zero state. Output: every step's h [N, T, U] (return_sequences) or
the last step's [N, U]. Gradients are of the loss sum(y * r) for a fixed random r (a
weighted sum of the outputs, so a wrong sign or a swapped gate cannot cancel out): the
input's and each weight's, permuted back to Keras' layout. Computed in float64.
"""
import json
import os

import torch

torch.manual_seed(0)
cases = []


def t(x):
    return [round(v, 8) for v in x.detach().reshape(-1).tolist()]


def perm(u):
    """Keras z|r|h <-> PyTorch r|z|n along a 3U axis."""
    return torch.cat([torch.arange(u, 2 * u), torch.arange(0, u), torch.arange(2 * u, 3 * u)])


# (N, T, F, U, return_sequences, use_bias)
for n, steps, f, u, seq, use_bias in [(2, 5, 3, 4, True, True), (2, 5, 3, 4, False, True),
                                      (3, 7, 2, 5, True, True), (1, 4, 6, 3, False, False),
                                      (4, 1, 3, 2, False, True), (2, 9, 4, 3, True, False)]:
    p = perm(u)
    kernel = 0.5 * torch.randn(f, 3 * u, dtype=torch.float64)
    recurrent = 0.5 * torch.randn(u, 3 * u, dtype=torch.float64)
    bias = 0.3 * torch.randn(2, 3 * u, dtype=torch.float64)
    x = torch.randn(n, steps, f, dtype=torch.float64, requires_grad=True)
    gru = torch.nn.GRU(f, u, batch_first=True, bias=use_bias).double()
    with torch.no_grad():
        gru.weight_ih_l0.copy_(kernel[:, p].T)
        gru.weight_hh_l0.copy_(recurrent[:, p].T)
        if use_bias:
            gru.bias_ih_l0.copy_(bias[0][p])
            gru.bias_hh_l0.copy_(bias[1][p])
    out, _ = gru(x)
    y = out if seq else out[:, -1]
    r = torch.randn_like(y)
    (y * r).sum().backward()
    case = {"n": n, "t": steps, "f": f, "units": u, "return_sequences": seq,
            "use_bias": use_bias, "x": t(x), "kernel": t(kernel),
            "recurrent_kernel": t(recurrent), "y_shape": list(y.shape), "y": t(y),
            "r": t(r), "dx": t(x.grad), "dkernel": t(gru.weight_ih_l0.grad.T[:, p]),
            "drecurrent_kernel": t(gru.weight_hh_l0.grad.T[:, p])}
    if use_bias:
        case["bias"] = t(bias)
        case["dbias"] = t(torch.stack([gru.bias_ih_l0.grad[p], gru.bias_hh_l0.grad[p]]))
    cases.append(case)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "gru.json")
with open(path, "w") as fh:
    json.dump({"generator": "scripts/golden/gru.py", "torch": torch.__version__,
               "cases": cases}, fh)
    fh.write("\n")
print("wrote", os.path.normpath(path), len(cases), "cases")
