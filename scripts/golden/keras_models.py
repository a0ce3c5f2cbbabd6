"""Golden files for nabla's Keras 3 reader (tests/keras_files.rs).

Builds three small models with real Keras 3, fixed seeds:
- cnn.keras: a Sequential CNN (Conv2D, MaxPooling2D, a strided "same" Conv2D, Flatten,
  Dense softmax), channels-last input [28, 28, 1] like Keras' MNIST examples;
- resnet.keras: a functional ResNet-style net (Conv2D, BatchNormalization with
  non-trivial moving statistics and a non-default epsilon, ReLU, Add, Concatenate,
  AveragePooling2D, GlobalAveragePooling2D, Dropout, Dense);
- autoencoder.keras: a Dense autoencoder 784-32-784 (relu code, sigmoid output);
- text_lstm / text_gru / text_rnn / text_bilstm.keras: Embedding(mask_zero=True) ->
  LSTM / GRU / SimpleRNN / Bidirectional(LSTM) -> Dense, on id sequences with zero
  padding (at the end, and one row all padding but one id) so the masks matter;
- text_conv1d.keras: Embedding -> Conv1D -> MaxPooling1D -> GlobalAveragePooling1D ->
  Dense (1-D layers, channels-last like nabla's);
- nested.keras: a pretrained-base pattern: a functional CNN "base" (frozen) used as a
  layer of a classifier, and a Sequential "head" used as a layer after it;
- shared.keras: a siamese net: one Dense tower called on two inputs, then subtracted;
- conv_autoencoder.keras: Conv2D + MaxPooling2D encoder, Conv2DTranspose and
  UpSampling2D decoder, sigmoid output, on [8, 8, 1] images;
and cnn.weights.h5 (model.save_weights of the CNN) for loading into a model built in
Rust. Inputs are fixed random arrays; the expected outputs are Keras' predictions
(inference mode). Everything goes to tests/golden/keras/ as .keras/.h5 and .npy files,
so the Rust test needs no Python.

Run: KERAS_BACKEND=jax /tmp/peers-venv/bin/python scripts/golden/keras_models.py
(the files do not depend on the backend; torch works too where it is installed).
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import keras
from keras import layers

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "keras")


def cnn():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2),
            # stride 2 with "same" padding: Keras pads more at the bottom/right.
            layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )


def resnet():
    inp = keras.Input((12, 12, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inp)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(8, 3, padding="same", name="block_conv1")(x)
    y = layers.BatchNormalization(epsilon=2e-5, momentum=0.9, name="block_bn1")(y)
    y = layers.Activation("relu", name="block_relu1")(y)
    y = layers.Conv2D(8, 3, padding="same", name="block_conv2")(y)
    y = layers.BatchNormalization(name="block_bn2")(y)
    x = layers.Add(name="block_add")([x, y])
    x = layers.Activation("relu", name="block_out")(x)
    z = layers.Conv2D(4, 1, name="side_conv")(x)
    x = layers.Concatenate(name="concat")([x, z])
    x = layers.AveragePooling2D(2, name="pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="drop")(x)
    out = layers.Dense(5, name="logits")(x)
    return keras.Model(inp, out, name="resnet")


def autoencoder():
    inp = keras.Input((784,), name="pixels")
    code = layers.Dense(32, activation="relu", name="code")(inp)
    out = layers.Dense(784, activation="sigmoid", name="reconstruction")(code)
    return keras.Model(inp, out, name="autoencoder")


VOCAB, STEPS = 20, 6


def text(rnn, name):
    inp = keras.Input((STEPS,), dtype="int32", name="ids")
    x = layers.Embedding(VOCAB, 4, mask_zero=True, name="embed")(inp)
    x = rnn(x)
    out = layers.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name=name)


def text_models():
    return {
        "text_lstm": text(lambda x: layers.LSTM(5, name="lstm")(x), "text_lstm"),
        "text_gru": text(lambda x: layers.GRU(5, name="gru")(x), "text_gru"),
        # return_sequences, then a second RNN: the mask passes through the first.
        "text_rnn": text(
            lambda x: layers.SimpleRNN(3, name="rnn2")(
                layers.SimpleRNN(5, return_sequences=True, name="rnn1")(x)
            ),
            "text_rnn",
        ),
        "text_bilstm": text(
            lambda x: layers.Bidirectional(layers.LSTM(3), name="bi")(x), "text_bilstm"
        ),
    }


def text_conv1d():
    return keras.Sequential(
        [
            keras.Input((STEPS,), dtype="int32"),
            layers.Embedding(VOCAB, 4),
            layers.Conv1D(5, 3, padding="same", activation="relu"),
            layers.MaxPooling1D(2),
            layers.Conv1D(4, 2, activation="relu"),
            layers.GlobalAveragePooling1D(),
            layers.Dense(2),
        ],
        name="text_conv1d",
    )


def nested():
    """A base model inside a classifier (transfer learning), frozen like a pretrained
    base, and a Sequential head used as a layer."""
    bin_ = keras.Input((10, 10, 2), name="base_in")
    b = layers.Conv2D(4, 3, activation="relu", name="base_conv")(bin_)
    b = layers.MaxPooling2D(2, name="base_pool")(b)
    b = layers.Conv2D(6, 3, padding="same", name="base_conv2")(b)
    b = layers.GlobalAveragePooling2D(name="base_gap")(b)
    base = keras.Model(bin_, b, name="base")
    base.trainable = False
    head = keras.Sequential(
        [keras.Input((6,)), layers.Dense(5, activation="relu"), layers.Dense(3)],
        name="head",
    )
    inp = keras.Input((10, 10, 2), name="image")
    x = base(inp)
    x = layers.Dropout(0.2, name="drop")(x)
    out = head(x)
    return keras.Model(inp, out, name="nested")


def shared():
    """One tower (two Dense layers) called on two inputs; the distance of the codes."""
    a = keras.Input((7,), name="left")
    b = keras.Input((7,), name="right")
    t1 = layers.Dense(6, activation="tanh", name="tower1")
    t2 = layers.Dense(4, name="tower2")
    ca = t2(t1(a))
    cb = t2(t1(b))
    d = layers.Subtract(name="diff")([ca, cb])
    both = layers.Concatenate(name="both")([d, ca])
    out = layers.Dense(1, activation="sigmoid", name="same")(both)
    return keras.Model([a, b], out, name="shared")


def conv_autoencoder():
    inp = keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="enc1")(inp)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(2, 3, padding="same", activation="relu", name="enc2")(x)
    x = layers.MaxPooling2D(2, name="code")(x)
    x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", name="dec1")(x)
    x = layers.UpSampling2D(2, name="up")(x)
    out = layers.Conv2D(1, 3, padding="same", activation="sigmoid", name="pixels")(x)
    return keras.Model(inp, out, name="conv_autoencoder")


def padded_ids(rng, n):
    """Id sequences of random lengths, zero padded at the end; one row has a single id,
    one has none before its end (padding in the middle: Keras skips those steps too)."""
    ids = rng.integers(1, VOCAB, (n, STEPS)).astype("int32")
    lengths = rng.integers(2, STEPS + 1, n)
    for i, l in enumerate(lengths):
        ids[i, l:] = 0
    ids[0, 1:] = 0
    ids[1, 2] = 0
    return ids


def randomize_bn(model, rng):
    """Moving statistics far from 0/1, gamma and beta away from 1/0, so that a reader
    that drops or swaps any of them is caught."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c).astype("float32"),
                    rng.normal(0, 0.3, c).astype("float32"),
                    rng.normal(0, 0.5, c).astype("float32"),
                    rng.uniform(0.3, 2.0, c).astype("float32"),
                ]
            )


def randomize_biases(models, rng):
    """Keras starts biases at zero (an LSTM's forget gate at one): random ones, so that
    a reader that drops or misplaces a bias, or a gate block, is caught."""
    for name, model in models.items():
        if name in ("cnn", "resnet", "autoencoder"):
            continue  # their files stay as they were
        for w in model.weights:
            if w.path.endswith("bias"):
                w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))


def main():
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(15)
    rng = np.random.default_rng(15)
    models = {"cnn": cnn(), "resnet": resnet(), "autoencoder": autoencoder()}
    models.update(text_models())
    models["text_conv1d"] = text_conv1d()
    models["nested"] = nested()
    models["shared"] = shared()
    models["conv_autoencoder"] = conv_autoencoder()
    # One training step of the ResNet on random data moves the moving statistics the
    # way Keras does; then they are set to values far from their starting point.
    r = models["resnet"]
    r.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    r.fit(
        rng.normal(size=(16, 12, 12, 3)).astype("float32"),
        rng.integers(0, 5, 16),
        batch_size=16,
        epochs=1,
        verbose=0,
    )
    randomize_bn(r, rng)
    inputs = {
        "cnn": rng.uniform(0, 1, (4, 28, 28, 1)).astype("float32"),
        "resnet": rng.normal(size=(3, 12, 12, 3)).astype("float32"),
        "autoencoder": rng.uniform(0, 1, (3, 784)).astype("float32"),
        "nested": rng.normal(size=(3, 10, 10, 2)).astype("float32"),
        "conv_autoencoder": rng.uniform(0, 1, (3, 8, 8, 1)).astype("float32"),
    }
    for name in list(text_models()) + ["text_conv1d"]:
        inputs[name] = padded_ids(rng, 5)
    randomize_biases(models, rng)
    shared_in = [rng.normal(size=(4, 7)).astype("float32") for _ in range(2)]
    models_out = dict(models)
    for name, model in models_out.items():
        model.save(os.path.join(OUT, f"{name}.keras"))
        if name == "shared":
            np.save(os.path.join(OUT, "shared_input.npy"), shared_in[0])
            np.save(os.path.join(OUT, "shared_input2.npy"), shared_in[1])
            out = np.asarray(model.predict(shared_in, verbose=0), dtype="float32")
            np.save(os.path.join(OUT, "shared_expected.npy"), out)
            print(name, "->", out.shape)
            continue
        np.save(os.path.join(OUT, f"{name}_input.npy"), inputs[name])
        out = np.asarray(model.predict(inputs[name], verbose=0), dtype="float32")
        np.save(os.path.join(OUT, f"{name}_expected.npy"), out)
        print(name, inputs[name].shape, "->", out.shape)
    models["cnn"].save_weights(os.path.join(OUT, "cnn.weights.h5"))
    print("keras", keras.__version__, "backend", keras.backend.backend(), file=sys.stderr)


if __name__ == "__main__":
    main()
