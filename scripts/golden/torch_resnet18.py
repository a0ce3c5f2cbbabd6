"""Golden values for loading PyTorch weights (tests/torch_weights.rs, which needs no
Python). Run: python scripts/golden/torch_resnet18.py (torch, torchvision).

Writes:
- tests/golden/torch_weights.json: for torchvision's resnet18 (10 classes, 2x3x64x64
  input) and vgg11 (10 classes, 2x3x32x32 input), the state dict's keys, shapes and
  dtypes, and the logits PyTorch gives with the weights set by `formula` below. The
  Rust test computes the same weights from the same formula, writes them as
  .safetensors and .pth itself (a 45 MB or 500 MB file is not kept in the repository),
  loads them into nabla's zoo model and compares the logits.
- tests/fixtures/torch/*.pth, *.pt: tiny files written by torch itself, for the reader:
  checkpoint.pth (a nested dict with views, offsets, f16/bf16/f64/int64 tensors and a
  Parameter, its expected values in the JSON), evil.pth (a pickle that would run
  os.system), legacy.pth (the pre-1.6 format), scripted.pt (a TorchScript archive).

The formula: tensor number k of the state dict (in order), element j (row-major), a
32-bit integer hash of (k, j) made uniform in [-1, 1) (exact in any language: `hash`
below), then
  running_var: 1 + 0.5 b^2;  running_mean: 0.1 b;  1-D weight (batch norm's gamma):
  1 + 0.2 b;  bias: 0.1 b;  conv / linear weight: b * sqrt(3 / fan_in);
  num_batches_tracked: 7;
rounded to float32. The input: element j of the batch is hash(1000, j), as float32.
"""
import json
import math
import os
import sys
from collections import OrderedDict

import torch
import torchvision

torch.set_grad_enabled(False)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "torch")
os.makedirs(FIXTURES, exist_ok=True)


def hash(k, n):
    """Uniform in [-1, 1) from a 32-bit mix of (k, j), j < n: every step is exact in
    int64 (each product stays below 2^63)."""
    m = 1 << 32
    x = (torch.arange(n, dtype=torch.int64) * 2654435761 + k * 40503 + 1) % m
    x = x ^ (x >> 15)
    x = (x * 1540483477) % m
    x = x ^ (x >> 13)
    return x.to(torch.float64) / m * 2 - 1


def formula(key, k, shape):
    n = math.prod(shape)
    b = hash(k, n)
    if key.endswith("running_var"):
        v = 1 + 0.5 * b * b
    elif key.endswith("running_mean"):
        v = 0.1 * b
    elif key.endswith("weight") and len(shape) == 1:
        v = 1 + 0.2 * b
    elif key.endswith("bias"):
        v = 0.1 * b
    else:
        v = b * math.sqrt(3.0 / (n // shape[0]))
    return v.reshape(shape).to(torch.float32)


def fill(model):
    sd = OrderedDict()
    for k, (key, t) in enumerate(model.state_dict().items()):
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(7, dtype=torch.int64)
        else:
            sd[key] = formula(key, k, list(t.shape))
    model.load_state_dict(sd)
    return sd


def batch(shape):
    return hash(1000, math.prod(shape)).to(torch.float32).reshape(shape)


def case(name, model, input_shape):
    model.eval()
    sd = fill(model)
    x = batch(input_shape)
    logits = model(x)
    # The same weights and input run in double precision: float32's own rounding is
    # far below the test's 1e-4, so the golden is not noise.
    exact = model.double()(x.double())
    drift = (logits.double() - exact).abs().max().item()
    print(f"{name}: logits std {logits.std().item():.3f}, f32 vs f64 {drift:.2e}")
    assert drift < 1e-5
    return {
        "input_shape": input_shape,
        "keys": [[k, list(t.shape), str(t.dtype).replace("torch.", "")] for k, t in sd.items()],
        "logits": [round(v, 7) for v in logits.reshape(-1).tolist()],
    }


if "--full-pth" in sys.argv:
    # Only the 45 MB resnet18 file torch.save writes, for the ignored test
    # real_torch_save_resnet18_gives_torchs_logits; the committed files are untouched.
    m = torchvision.models.resnet18(num_classes=10)
    torch.save(fill(m), sys.argv[sys.argv.index("--full-pth") + 1])
    sys.exit(0)

golden = {
    "torch": torch.__version__,
    "torchvision": torchvision.__version__,
    "resnet18": case("resnet18", torchvision.models.resnet18(num_classes=10), [2, 3, 64, 64]),
    "vgg11": case("vgg11", torchvision.models.vgg11(num_classes=10), [2, 3, 32, 32]),
}

# checkpoint.pth: what a training script saves, views and all.
a = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4
state = OrderedDict(
    [
        ("a", a),
        ("a_t", a.t()),  # the same storage, transposed: strides (1, 4)
        ("row", a[1]),  # the same storage at offset 4
        ("col", a[:, 2]),  # offset 2, stride 4
        ("half", torch.tensor([0.5, -2.0, 65504.0], dtype=torch.float16)),
        ("bf16", torch.tensor([1.5, -3.0], dtype=torch.bfloat16)),
        ("double", torch.tensor([[0.1, 0.2]], dtype=torch.float64)),
        ("steps", torch.tensor(7, dtype=torch.int64)),
        ("param", torch.nn.Parameter(torch.tensor([2.0, 4.0]))),
    ]
)
torch.save({"epoch": 3, "state_dict": state}, os.path.join(FIXTURES, "checkpoint.pth"))
golden["checkpoint"] = {
    k: {"shape": list(v.shape), "values": v.double().reshape(-1).tolist()} for k, v in state.items()
}


class Evil:
    """Unpickled by Python, this runs a shell command; nabla must refuse the file."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/nabla_torch_evil_ran",))


torch.save({"weight": torch.ones(2), "evil": Evil()}, os.path.join(FIXTURES, "evil.pth"))
torch.save(
    {"w": torch.ones(2)},
    os.path.join(FIXTURES, "legacy.pth"),
    _use_new_zipfile_serialization=False,
)
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(FIXTURES, "scripted.pt"))

with open(os.path.join(ROOT, "tests", "golden", "torch_weights.json"), "w") as f:
    json.dump(golden, f)
    f.write("\n")
