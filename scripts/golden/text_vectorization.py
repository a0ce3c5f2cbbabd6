"""Golden values for nabla's data::text, from Keras 3 itself (TensorFlow backend, since
TextVectorization's string ops are TensorFlow's).

Writes tests/golden/text_vectorization.json, read by tests/text_data.rs (which needs no
Python). Run: python scripts/golden/text_vectorization.py (tensorflow-cpu, keras, numpy;
generated with TensorFlow 2.21.0, keras 3.15.1).

Cases:
- "vectorization": keras.layers.TextVectorization adapted on CORPUS with several
  max_tokens / output_mode / output_sequence_length / pad_to_max_tokens settings; the
  vocabulary (get_vocabulary()), the idf weights (tf_idf), and the layer's output on
  QUERIES (float32 values, row-major, with the shape).
- "pad_sequences": keras.utils.pad_sequences on small integer sequences.

The corpus is ASCII only: nabla lower-cases Unicode letters and Keras lower-cases ASCII
letters only (tf.strings.lower), a difference documented in src/data/text/standardize.rs.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import numpy as np
import tensorflow as tf

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A lazy dog; a LAZY cat!",
    "Don't panic: it's only a test-suite (v2.0).",
    "tabs\tand\nnewlines\x0band\x0cform feeds\rtoo",
    "the the the fox",
    "",
    "C++ & C# are [UNK] languages",
    "e-mail: user@example.com, 100% #1",
    "dog cat fox",
    "zebra yak xylophone",
]
QUERIES = [
    "the lazy fox",
    "unknown words only",
    "",
    "!!! ...",
    "THE DOG, THE CAT, THE FOX, the zebra and a yak",
    "don't e-mail",
]
SETTINGS = [
    dict(output_mode="int"),
    dict(output_mode="int", max_tokens=8),
    dict(output_mode="int", max_tokens=12, output_sequence_length=4),
    dict(output_mode="int", output_sequence_length=12),
    dict(output_mode="multi_hot", max_tokens=10),
    dict(output_mode="multi_hot", max_tokens=60, pad_to_max_tokens=True),
    dict(output_mode="count", max_tokens=10),
    dict(output_mode="count"),
    dict(output_mode="tf_idf", max_tokens=10),
    dict(output_mode="tf_idf"),
]

vectorization = []
for s in SETTINGS:
    layer = keras.layers.TextVectorization(**s)
    layer.adapt(CORPUS)
    out = np.asarray(layer(QUERIES), dtype=np.float32)
    case = dict(
        settings=s,
        vocabulary=[str(t) for t in layer.get_vocabulary()],
        output_shape=list(out.shape),
        output=[float(v) for v in out.reshape(-1)],
    )
    if s["output_mode"] == "tf_idf":
        case["idf_weights"] = [float(v) for v in np.asarray(layer._lookup_layer.idf_weights)]
    vectorization.append(case)

SEQS = [[1], [2, 3], [4, 5, 6], [], [7, 8, 9, 10, 11]]
pads = []
for maxlen in [None, 0, 1, 3, 7]:
    for padding in ["pre", "post"]:
        for truncating in ["pre", "post"]:
            for value in [0, -1]:
                if maxlen == 0:
                    continue  # Keras fails (s[-0:] is the whole sequence); nabla gives [N, 0]
                out = keras.utils.pad_sequences(
                    SEQS, maxlen=maxlen, padding=padding, truncating=truncating, value=value
                )
                pads.append(
                    dict(
                        maxlen=maxlen,
                        padding=padding,
                        truncating=truncating,
                        value=value,
                        output=out.tolist(),
                    )
                )

golden = dict(
    generator="scripts/golden/text_vectorization.py",
    versions=dict(tensorflow=tf.__version__, keras=keras.__version__),
    corpus=CORPUS,
    queries=QUERIES,
    vectorization=vectorization,
    pad_sequences=dict(sequences=SEQS, cases=pads),
)
path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "text_vectorization.json")
with open(path, "w") as f:
    json.dump(golden, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(path), len(vectorization), "vectorization cases,", len(pads), "pad cases")
