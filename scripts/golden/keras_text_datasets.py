"""Golden values for nabla's Keras text data sets (src/data/text/keras_datasets.rs): the
ids `keras.datasets.imdb.load_data` / `keras.datasets.reuters.load_data` return, for
several option settings, on small synthetic files laid out like Keras' own.

Writes (run from the repository root: python scripts/golden/keras_text_datasets.py,
numpy only; generated with numpy 2.x):
- tests/fixtures/tiny_imdb.npz: `x_train`, `x_test` object arrays of lists of word
  ranks (ints, 1 = most frequent), `y_train`, `y_test` int64 labels (0/1), as Keras'
  imdb.npz;
- tests/fixtures/tiny_reuters.npz: `x` (object array of lists), `y` (int64, 0..45), as
  Keras' reuters.npz;
- tests/fixtures/tiny_imdb_word_index.json, tiny_reuters_word_index.json: word -> rank;
- tests/golden/keras_text_datasets.json: for each case, its options and the expected
  x_train, y_train, x_test, y_test.

The loading code below is Keras' own `load_data` (keras/src/datasets/imdb.py and
reuters.py, Keras 3, with `remove_long_seq` from keras/src/utils/python_utils.py),
copied so the script needs no Keras install: the shuffle is numpy's
`np.random.RandomState(seed).shuffle`, which is what nabla must reproduce bit for bit.
The object arrays are written with `np.savez`, so each member is an `.npy` whose data is
a pickle stream, as in the real files.
"""
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
GOLD = os.path.join(ROOT, "tests", "golden")


def remove_long_seq(maxlen, seq, label):
    # keras/src/utils/python_utils.py
    new_seq, new_label = [], []
    for x, y in zip(seq, label):
        if len(x) < maxlen:
            new_seq.append(x)
            new_label.append(y)
    return new_seq, new_label


def imdb_load_data(path, num_words=None, skip_top=0, maxlen=None, seed=113,
                   start_char=1, oov_char=2, index_from=3):
    # keras/src/datasets/imdb.py load_data, after get_file.
    with np.load(path, allow_pickle=True) as f:
        x_train, labels_train = f["x_train"], f["y_train"]
        x_test, labels_test = f["x_test"], f["y_test"]
    rng = np.random.RandomState(seed)
    indices = np.arange(len(x_train))
    rng.shuffle(indices)
    x_train = x_train[indices]
    labels_train = labels_train[indices]
    indices = np.arange(len(x_test))
    rng.shuffle(indices)
    x_test = x_test[indices]
    labels_test = labels_test[indices]
    if start_char is not None:
        x_train = [[start_char] + [w + index_from for w in x] for x in x_train]
        x_test = [[start_char] + [w + index_from for w in x] for x in x_test]
    elif index_from:
        x_train = [[w + index_from for w in x] for x in x_train]
        x_test = [[w + index_from for w in x] for x in x_test]
    else:
        x_train = [[w for w in x] for x in x_train]
        x_test = [[w for w in x] for x in x_test]
    if maxlen:
        x_train, labels_train = remove_long_seq(maxlen, x_train, labels_train)
        x_test, labels_test = remove_long_seq(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise ValueError("no sequence kept")
    xs = x_train + x_test
    labels = np.concatenate([labels_train, labels_test])
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        xs = [[w if (skip_top <= w < num_words) else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    idx = len(x_train)
    return (xs[:idx], labels[:idx]), (xs[idx:], labels[idx:])


def reuters_load_data(path, num_words=None, skip_top=0, maxlen=None, test_split=0.2,
                      seed=113, start_char=1, oov_char=2, index_from=3):
    # keras/src/datasets/reuters.py load_data, after get_file.
    with np.load(path, allow_pickle=True) as f:
        xs, labels = f["x"], f["y"]
    rng = np.random.RandomState(seed)
    indices = np.arange(len(xs))
    rng.shuffle(indices)
    xs = xs[indices]
    labels = labels[indices]
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    if maxlen:
        xs, labels = remove_long_seq(maxlen, xs, labels)
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    idx = int(len(xs) * (1 - test_split))
    return (xs[:idx], labels[:idx]), (xs[idx:], labels[idx:])


WORDS = ("the and a of to is film movie good bad great awful plot acting it was "
         "fun boring love hate story actor music scene end best worst funny dull "
         "oil wheat grain trade dollar bank").split()


def object_array(seqs):
    a = np.empty(len(seqs), dtype=object)
    for i, s in enumerate(seqs):
        a[i] = list(s)
    return a


def sequences(rng, n, vocab, lo, hi):
    return [[int(w) for w in rng.integers(1, vocab + 1, size=int(rng.integers(lo, hi)))]
            for _ in range(n)]


def main():
    os.makedirs(FIX, exist_ok=True)
    os.makedirs(GOLD, exist_ok=True)
    rng = np.random.default_rng(0)
    vocab = len(WORDS)
    word_index = {w: i + 1 for i, w in enumerate(WORDS)}

    imdb = os.path.join(FIX, "tiny_imdb.npz")
    x_train = sequences(rng, 24, vocab, 3, 14)
    x_test = sequences(rng, 12, vocab, 3, 14)
    y_train = np.array([i % 2 for i in range(24)], dtype=np.int64)
    y_test = np.array([(i + 1) % 2 for i in range(12)], dtype=np.int64)
    np.savez(imdb, x_train=object_array(x_train), y_train=y_train,
             x_test=object_array(x_test), y_test=y_test)

    reuters = os.path.join(FIX, "tiny_reuters.npz")
    xs = sequences(rng, 30, vocab, 2, 16)
    ys = np.array([(7 * i) % 46 for i in range(30)], dtype=np.int64)
    np.savez(reuters, x=object_array(xs), y=ys)

    for name in ["imdb", "reuters"]:
        with open(os.path.join(FIX, f"tiny_{name}_word_index.json"), "w") as f:
            json.dump(word_index, f)

    def case(name, fn, path, **opts):
        (xa, ya), (xb, yb) = fn(path, **opts)
        return {
            "name": name,
            "options": opts,
            "x_train": [list(map(int, x)) for x in xa],
            "y_train": [int(v) for v in ya],
            "x_test": [list(map(int, x)) for x in xb],
            "y_test": [int(v) for v in yb],
        }

    cases = {
        "imdb": [
            case("defaults", imdb_load_data, imdb),
            case("num_words_skip_top_maxlen", imdb_load_data, imdb,
                 num_words=20, skip_top=5, maxlen=10),
            case("seed_index_from", imdb_load_data, imdb, seed=7, index_from=2),
            case("no_start_no_oov", imdb_load_data, imdb,
                 num_words=15, start_char=None, oov_char=None),
        ],
        "reuters": [
            case("defaults", reuters_load_data, reuters),
            case("num_words_test_split_maxlen_seed", reuters_load_data, reuters,
                 num_words=15, test_split=0.3, maxlen=12, seed=5),
            case("skip_top_oov", reuters_load_data, reuters, skip_top=8, oov_char=3),
        ],
    }
    # The shuffle alone, for longer arrays than the fixtures: numpy's legacy
    # RandomState(seed).shuffle of arange(n).
    shuffles = []
    for seed, n in [(113, 1), (113, 2), (113, 25000), (0, 1000), (4294967295, 70000)]:
        idx = np.arange(n)
        np.random.RandomState(seed).shuffle(idx)
        shuffles.append({"seed": seed, "n": n, "first": [int(v) for v in idx[:20]],
                         "last": [int(v) for v in idx[-5:]]})
    cases["shuffles"] = shuffles
    cases["numpy"] = np.__version__
    with open(os.path.join(GOLD, "keras_text_datasets.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
