"""Golden files for nabla's Keras 3 reader (tests/keras_files.rs).

Builds three small models with real Keras 3, fixed seeds:
- cnn.keras: a Sequential CNN (Conv2D, MaxPooling2D, a strided "same" Conv2D, Flatten,
  Dense softmax), channels-last input [28, 28, 1] like Keras' MNIST examples;
- resnet.keras: a functional ResNet-style net (Conv2D, BatchNormalization with
  non-trivial moving statistics and a non-default epsilon, ReLU, Add, Concatenate,
  AveragePooling2D, GlobalAveragePooling2D, Dropout, Dense);
- autoencoder.keras: a Dense autoencoder 784-32-784 (relu code, sigmoid output);
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


def main():
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(15)
    rng = np.random.default_rng(15)
    models = {"cnn": cnn(), "resnet": resnet(), "autoencoder": autoencoder()}
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
    }
    for name, model in models.items():
        model.save(os.path.join(OUT, f"{name}.keras"))
        np.save(os.path.join(OUT, f"{name}_input.npy"), inputs[name])
        out = np.asarray(model.predict(inputs[name], verbose=0), dtype="float32")
        np.save(os.path.join(OUT, f"{name}_expected.npy"), out)
        print(name, inputs[name].shape, "->", out.shape)
    models["cnn"].save_weights(os.path.join(OUT, "cnn.weights.h5"))
    print("keras", keras.__version__, "backend", keras.backend.backend(), file=sys.stderr)


if __name__ == "__main__":
    main()
