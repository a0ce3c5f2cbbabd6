#!/usr/bin/env python3
"""Runs an .onnx file in onnxruntime on inputs from .npy files and compares each output
with nabla's (also .npy): |onnx - nabla| <= atol + rtol * |nabla| everywhere.

    onnx_check.py model.onnx --input input=x.npy --expect dense_1=y.npy [--rtol 1e-3 --atol 1e-5]

Prints the opset, the largest absolute and relative error of each output, and exits 1
when an output is off (or missing), 0 when all agree. Used by tests/onnx_export.rs.
"""
import argparse
import sys

import numpy as np
import onnxruntime as ort


def pairs(items, what):
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            sys.exit(f"{what} '{item}': expected NAME=FILE.npy")
        out[name] = path
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--input", action="append", default=[])
    p.add_argument("--expect", action="append", default=[])
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-5)
    a = p.parse_args()
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta()
    feeds = {n: np.load(f).astype(np.float32) for n, f in pairs(a.input, "--input").items()}
    names = [o.name for o in sess.get_outputs()]
    expect = pairs(a.expect, "--expect")
    missing = set(expect) - set(names)
    if missing:
        print(f"FAIL: outputs {sorted(missing)} not in the model (it has {names})")
        return 1
    got = dict(zip(names, sess.run(names, feeds)))
    ok = True
    for name, path in expect.items():
        want = np.load(path)
        out = got[name]
        if out.shape != want.shape:
            print(f"FAIL {name}: shape {out.shape}, nabla {want.shape}")
            ok = False
            continue
        err = np.abs(out.astype(np.float64) - want.astype(np.float64))
        rel = err / np.maximum(np.abs(want), 1e-30)
        bad = err > a.atol + a.rtol * np.abs(want)
        print(
            f"{'ok  ' if not bad.any() else 'FAIL'} {name} {list(out.shape)}: max abs error "
            f"{err.max():.3e}, max rel error {rel.max():.3e}, {int(bad.sum())} of {err.size} "
            f"outside rtol {a.rtol:g} / atol {a.atol:g} (onnxruntime {ort.__version__}, "
            f"producer {meta.producer_name})"
        )
        ok &= not bad.any()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
