"""Golden values for Keras' LSTM layer from PyTorch's torch.nn.LSTM.

Writes tests/golden/lstm.json, read by tests/golden_layers.rs (which needs no Python).
Run: /tmp/peers-venv/bin/python scripts/golden/lstm.py (torch, numpy).

Weights are drawn in Keras' layouts (what nabla stores and saves) and set on a
batch_first torch.nn.LSTM:
- kernel [F, 4U] is weight_ih_l0 transposed ([4U, F]); recurrent_kernel [U, 4U] is
  weight_hh_l0 transposed. PyTorch's gate blocks i, f, g, o are Keras' i, f, c, o in the
  same order, so no block is reordered.
- PyTorch has two biases that add up: bias_ih_l0 = Keras' bias, bias_hh_l0 = 0 (and
  bias=False when use_bias is off).
Both start from a zero state. Output: every step's h [N, T, U] (return_sequences) or
the last step's [N, U]. Gradients are of the loss sum(y * r) for a fixed random r (a
weighted sum of the outputs, so a wrong sign or a swapped gate cannot cancel out): the
input's and each weight's, in Keras' layout. Computed in float64.
"""
import json
import os

import torch

torch.manual_seed(0)
cases = []


def t(x):
    return [round(v, 8) for v in x.detach().reshape(-1).tolist()]


# (N, T, F, U, return_sequences, use_bias)
for n, steps, f, u, seq, use_bias in [(2, 5, 3, 4, True, True), (2, 5, 3, 4, False, True),
                                      (3, 7, 2, 5, True, True), (1, 4, 6, 3, False, False),
                                      (4, 1, 3, 2, False, True), (2, 9, 4, 3, True, False)]:
    kernel = (0.5 * torch.randn(f, 4 * u, dtype=torch.float64))
    recurrent = (0.5 * torch.randn(u, 4 * u, dtype=torch.float64))
    bias = 0.3 * torch.randn(4 * u, dtype=torch.float64)
    x = torch.randn(n, steps, f, dtype=torch.float64, requires_grad=True)
    lstm = torch.nn.LSTM(f, u, batch_first=True, bias=use_bias).double()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(kernel.T)
        lstm.weight_hh_l0.copy_(recurrent.T)
        if use_bias:
            lstm.bias_ih_l0.copy_(bias)
            lstm.bias_hh_l0.zero_()
    out, _ = lstm(x)
    y = out if seq else out[:, -1]
    r = torch.randn_like(y)
    (y * r).sum().backward()
    case = {"n": n, "t": steps, "f": f, "units": u, "return_sequences": seq,
            "use_bias": use_bias, "x": t(x), "kernel": t(kernel),
            "recurrent_kernel": t(recurrent), "y_shape": list(y.shape), "y": t(y),
            "r": t(r), "dx": t(x.grad), "dkernel": t(lstm.weight_ih_l0.grad.T),
            "drecurrent_kernel": t(lstm.weight_hh_l0.grad.T)}
    if use_bias:
        case["bias"] = t(bias)
        case["dbias"] = t(lstm.bias_ih_l0.grad)
    cases.append(case)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "lstm.json")
with open(path, "w") as fh:
    json.dump({"generator": "scripts/golden/lstm.py", "torch": torch.__version__,
               "cases": cases}, fh)
    fh.write("\n")
print("wrote", os.path.normpath(path), len(cases), "cases")
