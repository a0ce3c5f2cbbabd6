"""Golden values for Keras' Bidirectional(LSTM) (merge_mode "concat") from PyTorch's
torch.nn.LSTM(bidirectional=True).

Writes tests/golden/bidirectional.json, read by tests/golden_layers.rs (which needs no
Python). Run: /tmp/peers-venv/bin/python scripts/golden/bidirectional.py (torch).

Each direction's weights are drawn in Keras' layouts (kernel [F, 4U], recurrent_kernel
[U, 4U], bias [4U]; see lstm.py for how they map onto PyTorch's): the forward
direction is PyTorch's `*_l0`, the backward one `*_l0_reverse`. PyTorch's output
[N, T, 2U] is the forward h then the reverse direction's h of the same input step,
which is Keras' concat with return_sequences. Without return_sequences Keras
concatenates the forward's last step (out[:, -1, :U]) and the backward's output after
reading the whole reversed sequence, which is PyTorch's h_n of the reverse direction
(out[:, 0, U:]). Gradients are of sum(y * r) for a fixed random r, in float64.
"""
import json
import os

import torch

torch.manual_seed(0)
cases = []


def t(x):
    return [round(v, 8) for v in x.detach().reshape(-1).tolist()]


# (N, T, F, U, return_sequences)
for n, steps, f, u, seq in [(2, 5, 3, 4, True), (2, 5, 3, 4, False), (3, 7, 2, 3, False),
                            (1, 1, 3, 2, True)]:
    w = {}
    for d in ["forward", "backward"]:
        w[d] = (0.5 * torch.randn(f, 4 * u, dtype=torch.float64),
                0.5 * torch.randn(u, 4 * u, dtype=torch.float64),
                0.3 * torch.randn(4 * u, dtype=torch.float64))
    x = torch.randn(n, steps, f, dtype=torch.float64, requires_grad=True)
    lstm = torch.nn.LSTM(f, u, batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        for d, sfx in [("forward", "l0"), ("backward", "l0_reverse")]:
            k, rk, b = w[d]
            getattr(lstm, f"weight_ih_{sfx}").copy_(k.T)
            getattr(lstm, f"weight_hh_{sfx}").copy_(rk.T)
            getattr(lstm, f"bias_ih_{sfx}").copy_(b)
            getattr(lstm, f"bias_hh_{sfx}").zero_()
    out, (h_n, _) = lstm(x)
    if seq:
        y = out
    else:
        y = torch.cat([out[:, -1, :u], out[:, 0, u:]], dim=1)
        assert torch.allclose(y, torch.cat([h_n[0], h_n[1]], dim=1))
    r = torch.randn_like(y)
    (y * r).sum().backward()
    case = {"n": n, "t": steps, "f": f, "units": u, "return_sequences": seq, "x": t(x),
            "y_shape": list(y.shape), "y": t(y), "r": t(r), "dx": t(x.grad)}
    for d, sfx in [("forward", "l0"), ("backward", "l0_reverse")]:
        k, rk, b = w[d]
        case[d] = {"kernel": t(k), "recurrent_kernel": t(rk), "bias": t(b),
                   "dkernel": t(getattr(lstm, f"weight_ih_{sfx}").grad.T),
                   "drecurrent_kernel": t(getattr(lstm, f"weight_hh_{sfx}").grad.T),
                   "dbias": t(getattr(lstm, f"bias_ih_{sfx}").grad)}
    cases.append(case)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden",
                    "bidirectional.json")
with open(path, "w") as fh:
    json.dump({"generator": "scripts/golden/bidirectional.py", "torch": torch.__version__,
               "cases": cases}, fh)
    fh.write("\n")
print("wrote", os.path.normpath(path), len(cases), "cases")
