"""Golden values for UpSampling2D and Conv2DTranspose from PyTorch.

Writes tests/golden/upsample_convtranspose.json, read by tests/golden_layers.rs (which
needs no Python). Run: python scripts/golden/upsample_convtranspose.py (torch, numpy).

- UpSampling2D: F.interpolate(mode="nearest") and mode="bilinear", align_corners=False
  (half-pixel centres, what Keras 3 / tf.image.resize use for bilinear upsampling).
- Conv2DTranspose: F.conv_transpose2d with padding 0 (weights [in, out, kh, kw], nabla's
  layout), then cropped as Keras does: "valid" keeps (H-1)*s + k rows; "same" keeps
  H*s rows starting at the top padding of TensorFlow's "same" rule for that size
  (total = max((H-1)*s + k - H*s, 0), top = total // 2).
Every case also carries the gradients of sum(y * r) for a fixed random r.
"""
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []


def t(x):
    return [round(v, 7) for v in x.detach().reshape(-1).tolist()]


for mode, size in [("nearest", (2, 2)), ("bilinear", (2, 2)), ("bilinear", (3, 2))]:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = F.interpolate(x, scale_factor=size, mode=mode,
                      **({"align_corners": False} if mode == "bilinear" else {}))
    r = torch.randn_like(y)
    (y * r).sum().backward()
    cases.append({"layer": "UpSampling2D", "interpolation": mode, "size": list(size),
                  "x_shape": list(x.shape), "x": t(x), "y_shape": list(y.shape), "y": t(y),
                  "r": t(r), "dx": t(x.grad)})

for padding, k, s, h, w in [("valid", 3, 2, 4, 5), ("same", 3, 2, 4, 5), ("same", 4, 2, 3, 3),
                            ("valid", 2, 1, 3, 4), ("same", 3, 1, 5, 4)]:
    cin, cout = 3, 2
    x = torch.randn(2, cin, h, w, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(cin, cout, k, k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True)
    full = F.conv_transpose2d(x, wt, b, stride=s)
    if padding == "valid":
        y = full
    else:
        oh, ow = h * s, w * s
        top = max((h - 1) * s + k - oh, 0) // 2
        left = max((w - 1) * s + k - ow, 0) // 2
        y = full[:, :, top:top + oh, left:left + ow]
    r = torch.randn_like(y)
    (y * r).sum().backward()
    cases.append({"layer": "Conv2DTranspose", "padding": padding, "kernel_size": k,
                  "strides": s, "filters": cout, "x_shape": list(x.shape), "x": t(x),
                  "kernel": t(wt), "bias": t(b), "y_shape": list(y.shape), "y": t(y),
                  "r": t(r), "dx": t(x.grad), "dkernel": t(wt.grad), "dbias": t(b.grad)})

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden",
                   "upsample_convtranspose.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {out}")
