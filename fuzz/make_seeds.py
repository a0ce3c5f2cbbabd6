#!/usr/bin/env python3
"""Writes the starting corpus of each fuzz target (fuzz/corpus/<target>/seed-*): small
valid files of each format, so libFuzzer starts from inputs that reach deep into the
parsers. Run from the repository root: python3 fuzz/make_seeds.py (standard library only).
"""
import gzip, io, json, os, struct, tarfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def idx(dims, values):
    head = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + bytes(values)


images = idx([2, 3, 3], range(18))
labels = idx([4], [1, 7, 0, 9])
put("idx", "images", images)
put("idx", "labels", labels)
put("idx", "images.gz", gzip.compress(images, mtime=0))

record = bytes([3]) + bytes(i % 256 for i in range(3072))
put("cifar10_batch", "one", record)
put("cifar10_batch", "two", record + bytes([9]) + bytes(3072))

names = ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    for n in names:
        info = tarfile.TarInfo("cifar-10-batches-bin/" + n)
        info.size, info.mtime = len(record), 0
        tar.addfile(info, io.BytesIO(record))
put("cifar10_archive", "six-batches.tar.gz", gzip.compress(buf.getvalue(), mtime=0))


def safetensors(tensors):
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "dtypes", safetensors([
    ("w", "F32", [2, 2], struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)),
    ("h", "F16", [3], struct.pack("<3e", 1.0, 0.25, -8.0)),
    ("b", "BF16", [2], bytes([0x80, 0x3f, 0x00, 0xc0])),
    ("i", "I64", [2], struct.pack("<2q", -1, 7)),
    ("u", "U8", [3], bytes([0, 128, 255])),
    ("s", "I8", [1], bytes([0x80])),
]))
put("safetensors", "empty", safetensors([]))
