"""Golden values for nabla's Keras losses, from Keras 3 itself (JAX backend).

Writes tests/golden/losses.json, read by tests/golden_losses.rs (which needs no Python).
Run: KERAS_BACKEND=jax python scripts/golden/losses.py (keras, jax, numpy).

Each case: predictions p [4, 3], labels y, the loss as Keras computes it
(keras.losses.X()(y, p), reduction "sum_over_batch_size") and its gradient with respect
to p (jax.grad), in float64 inputs rounded to float32.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
import jax
import jax.numpy as jnp
import keras
import numpy as np

jax.config.update("jax_enable_x64", False)
rng = np.random.default_rng(0)
cases = []


def r(x):
    return [round(float(v), 7) for v in np.asarray(x, dtype=np.float64).reshape(-1)]


def case(name, loss, y, p, **config):
    y = y.astype(np.float32)
    p = p.astype(np.float32)
    f = lambda pp: loss(jnp.asarray(y), pp)
    value = f(jnp.asarray(p))
    grad = jax.grad(f)(jnp.asarray(p))
    cases.append({"loss": name, "config": config, "shape": list(p.shape), "y": r(y),
                  "p": r(p), "value": float(value), "dp": r(grad)})


shape = (4, 3)
reg_y = rng.normal(size=shape) * 2
reg_p = rng.normal(size=shape) * 2
case("huber", keras.losses.Huber(delta=1.0), reg_y, reg_p, delta=1.0)
case("huber", keras.losses.Huber(delta=0.5), reg_y, reg_p, delta=0.5)
case("log_cosh", keras.losses.LogCosh(), reg_y, reg_p)
dist = lambda: (lambda e: e / e.sum(axis=1, keepdims=True))(rng.uniform(0.05, 1, size=shape))
case("kl_divergence", keras.losses.KLDivergence(), dist(), dist())
signs = rng.choice([-1.0, 1.0], size=shape)
zero_one = rng.choice([0.0, 1.0], size=shape)
scores = rng.normal(size=shape)
case("hinge", keras.losses.Hinge(), signs, scores)
case("hinge", keras.losses.Hinge(), zero_one, scores)
case("squared_hinge", keras.losses.SquaredHinge(), signs, scores)
case("squared_hinge", keras.losses.SquaredHinge(), zero_one, scores)
onehot = np.eye(3)[rng.integers(0, 3, size=4)]
case("categorical_hinge", keras.losses.CategoricalHinge(), onehot, scores)

out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "losses.json")
with open(out, "w") as fh:
    json.dump({"keras": keras.__version__, "backend": keras.backend.backend(),
               "cases": cases}, fh)
print("wrote", os.path.normpath(out), len(cases), "cases")
