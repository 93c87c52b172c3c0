"""Small classification datasets that need no download.

- `digits`: scikit-learn's bundled 8x8 handwritten digits (Alpaydin & Kaynak 1998; 1797 images, the
  UCI test set shipped inside the package), an optional extra: `pip install 'jaxlab[data]'`.
- `teacher_task`: a synthetic task, labels = argmax of a random tanh teacher network's outputs.

Both return `Dataset(train_inputs, train_targets, test_inputs, test_targets)` with one-hot targets,
split deterministically by `seed`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Dataset(NamedTuple):
  train_inputs: jax.Array
  train_targets: jax.Array  # one-hot
  test_inputs: jax.Array
  test_targets: jax.Array


def digits(seed: int = 0, test_fraction: float = 0.2, images: bool = False) -> Dataset:
  """Pixels scaled to [0, 1]; `images=True` gives (n, 8, 8, 1) arrays for conv networks."""
  try:
    from sklearn.datasets import load_digits
  except ImportError as e:
    raise ImportError("the digits dataset ships with scikit-learn: pip install 'jaxlab[data]' "
                      "(or pip install scikit-learn)") from e
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
  bunch = load_digits()
  inputs = bunch.data / 16.0
  if images:
    inputs = inputs.reshape(-1, 8, 8, 1)
  return _split(inputs, bunch.target, 10, seed, test_fraction)


def teacher_task(seed: int = 0, num_examples: int = 2000, input_dim: int = 20, num_classes: int = 4,
                 teacher_width: int = 32, test_fraction: float = 0.2) -> Dataset:
  """Gaussian inputs labelled by the argmax of a random one-hidden-layer tanh teacher."""
  k_x, k_w1, k_w2 = jax.random.split(jax.random.key(seed), 3)
  x = jax.random.normal(k_x, (num_examples, input_dim))
  w1 = jax.random.normal(k_w1, (input_dim, teacher_width)) / np.sqrt(input_dim)
  w2 = jax.random.normal(k_w2, (teacher_width, num_classes)) / np.sqrt(teacher_width)
  labels = jnp.argmax(jnp.tanh(3.0 * x @ w1) @ w2, axis=-1)
  return _split(np.asarray(x), np.asarray(labels), num_classes, seed, test_fraction)


def _split(inputs, labels, num_classes, seed, test_fraction) -> Dataset:
  order = np.random.default_rng(seed).permutation(len(labels))
  num_test = int(round(test_fraction * len(labels)))
  test, train = order[:num_test], order[num_test:]
  onehot = np.eye(num_classes)[labels]
  as_array = lambda a: jnp.asarray(a, dtype=float)  # jax's default float: float64 under x64
  return Dataset(as_array(inputs[train]), as_array(onehot[train]), as_array(inputs[test]),
                 as_array(onehot[test]))


def accuracy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  return jnp.mean(jnp.argmax(logits, axis=-1) == jnp.argmax(targets, axis=-1))
