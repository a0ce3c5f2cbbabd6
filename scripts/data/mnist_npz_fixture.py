"""Writes tests/fixtures/mnist_small.npz with NumPy: the first 300 MNIST test digits as
NumPy users save them, for tests/user_data_files.rs (which checks them against the IDX
originals) and the CLI run that trains on them.

Members (np.savez_compressed, so deflated):
  images        uint8 (300, 28, 28), C order
  labels        uint8 (300,)
  images_f      the same images, Fortran order
  images_be     the first 20 images as float32 big-endian (>f4), values / 255
  labels_i64    int64 labels

Run: python3 scripts/data/mnist_npz_fixture.py [NABLA_DATA folder, default ../shared/data]
"""
import gzip
import os
import sys

import numpy as np

N = 300
root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("NABLA_DATA", "../shared/data")
with gzip.open(os.path.join(root, "mnist", "t10k-images-idx3-ubyte.gz")) as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:N]
with gzip.open(os.path.join(root, "mnist", "t10k-labels-idx1-ubyte.gz")) as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)[:N]

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "mnist_small.npz")
np.savez_compressed(
    out,
    images=images,
    labels=labels,
    images_f=np.asfortranarray(images),
    images_be=(images[:20] / 255.0).astype(">f4"),
    labels_i64=labels.astype(np.int64),
)
print("wrote", os.path.normpath(out), os.path.getsize(out), "bytes")
