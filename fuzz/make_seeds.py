#!/usr/bin/env python3
"""Writes the starting corpus of each fuzz target (fuzz/corpus/<target>/seed-*): small
valid files of each format, so libFuzzer starts from inputs that reach deep into the
parsers. Run from the repository root: python3 fuzz/make_seeds.py (standard library only).
"""
import gzip, io, json, os, struct, tarfile, zlib

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


def npy(descr, shape, raw, fortran=False):
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", "".join("%d," % d for d in shape))
    h += " " * (-(10 + len(h) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + raw


u8 = npy("|u1", [2, 3], bytes([0, 1, 2, 250, 254, 255]))
f8 = npy("<f8", [2, 2], struct.pack("<4d", 1.5, -2.0, 0.0, 8.0), fortran=True)
i4 = npy(">i4", [3], struct.pack(">3i", -1, 0, 7))
put("npy", "u8", u8)
put("npy", "f8-fortran", f8)
put("npy", "i4-big", i4)

import zipfile
for mode, name in [(zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", mode) as z:
        for member, raw in [("images.npy", u8), ("labels.npy", i4)]:
            info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = mode
            z.writestr(info, raw)
    put("npz", name, buf.getvalue())


def mat_element(kind, raw):
    """A MAT v5 data element: tag (type, bytes) and data padded to 8 bytes."""
    return struct.pack("<II", kind, len(raw)) + raw + bytes(-len(raw) % 8)


def mat_matrix(name, dims, values):
    flags = mat_element(6, struct.pack("<II", 6, 0))  # miUINT32: mxDOUBLE_CLASS
    body = (flags + mat_element(5, struct.pack("<%di" % len(dims), *dims))
            + mat_element(1, name.encode())
            + mat_element(9, struct.pack("<%dd" % len(values), *values)))
    return mat_element(14, body)


header = b"MATLAB 5.0 MAT-file, written by nabla's fuzz/make_seeds.py".ljust(116)
header += bytes(8) + struct.pack("<H", 0x0100) + b"IM"
images = mat_matrix("images", [2, 2, 3], [i / 12 for i in range(12)])
labels = mat_matrix("labels", [3, 1], [1.0, 0.0, 2.0])
put("mat", "plain", header + images + labels)
put("mat", "compressed",
    header + b"".join(struct.pack("<II", 15, len(z)) + z
                      for z in (zlib.compress(images), zlib.compress(labels))))

put("csv", "numbers", b"a,b,target\n1.5,2,0\n-3,4e2,1\n0,0.25,1\n")
put("csv", "text-and-gaps", b'colour,size,price\nred,1,10\n"blue, dark",2,\ngreen,,30\n')

put("model_json", "sequential", json.dumps({
    "input_shape": [1, 8, 8],
    "layers": [
        {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "padding": "same",
                                            "activation": "relu"}},
        {"class_name": "MaxPooling2D", "config": {"pool_size": 2}},
        {"class_name": "BatchNormalization", "config": {}},
        {"class_name": "Flatten", "config": {}},
        {"class_name": "Dropout", "config": {"rate": 0.5}},
        {"class_name": "Dense", "config": {"units": 3, "activation": "softmax"}},
    ],
}).encode())


def png(width, height, colour_type, rows):
    def chunk(kind, raw):
        return struct.pack(">I", len(raw)) + kind + raw + struct.pack(">I", zlib.crc32(kind + raw))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


put("image", "gray-4x4", png(4, 4, 0, [bytes([x * 60 for x in range(4)])] * 4))
put("image", "rgb-2x3", png(2, 3, 2, [bytes(range(y * 6, y * 6 + 6)) for y in range(3)]))

# label<TAB>text files: a plain one, and one with a byte-order mark, CRLF line ends, an
# empty text and a blank line.
put("text_tsv", "plain", b"label\ttext\ngames\tReal-time strategy game\nutils\tfile manager, tools!\n")
put("text_tsv", "bom-crlf", b"\xef\xbb\xbflabel\ttext\r\ngames\tA game\r\n\r\nnet\t\r\nnet\tweb\tserver\r\n")

# Saved vocabularies (TextVectorization::save): an int one and a tf_idf one.
def vocabulary(mode, tokens, idf=None, length=None):
    reserved = ["", "[UNK]"] if mode == "int" else ["[UNK]"]
    saved = {
        "format": "nabla.TextVectorization",
        "version": 1,
        "config": {"max_tokens": 10, "standardize": "lower_and_strip_punctuation",
                   "output_mode": mode, "output_sequence_length": length,
                   "pad_to_max_tokens": False},
        "vocabulary": reserved + tokens,
    }
    if idf is not None:
        saved["idf_weights"] = idf
    return json.dumps(saved).encode()


put("vocabulary_json", "int", vocabulary("int", ["the", "fox", "jumps"], length=4))
put("vocabulary_json", "tf_idf", vocabulary("tf_idf", ["the", "fox"], idf=[0.9, 0.7, 1.1]))

# Keras' text data set files: the tiny npz files scripts/golden/keras_text_datasets.py
# writes (object arrays pickled by numpy), and the bare pickle of one member.
FIXTURES = os.path.join(os.path.dirname(ROOT), "..", "tests", "fixtures")
for name in ["imdb", "reuters"]:
    with open(os.path.join(FIXTURES, f"tiny_{name}.npz"), "rb") as f:
        raw = f.read()
    put("keras_npz", name, raw)
import zipfile
with zipfile.ZipFile(os.path.join(FIXTURES, "tiny_reuters.npz")) as z:
    member = z.read("x.npy")
header_len = struct.unpack("<H", member[8:10])[0]
put("keras_npz", "pickle", member[10 + header_len:])
