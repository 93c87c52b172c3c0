r"""Multilayer perceptrons in the NTK parameterisation (Jacot et al. 2018, eq. 1).

$h^{l+1} = W^{l} \sigma(h^{l}) / \sqrt{n_l}$ with $W^l_{ij} \sim N(0, 1)$ and no biases, so the output and
the tangent kernel stay O(1) as widths grow, and scaling every weight by $\lambda$ scales a depth-L
ReLU/linear network's output by $\lambda^L$ (the homogeneity Chizat et al. 2019 use to relate init
scale to the lazy output scale).
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp


def mlp_init(key: jax.Array, widths: Sequence[int], scale: float = 1.0) -> list[jax.Array]:
  """Weights [widths[l+1], widths[l]] with i.i.d. N(0, scale^2) entries."""
  keys = jax.random.split(key, len(widths) - 1)
  return [scale * jax.random.normal(k, (n_out, n_in))
          for k, n_in, n_out in zip(keys, widths[:-1], widths[1:])]


def mlp_apply(params: list[jax.Array], x_BxI: jax.Array,
              activation: Callable[[jax.Array], jax.Array] = jnp.tanh) -> jax.Array:
  """Outputs [B, widths[-1]]; the activation acts on every hidden layer, not on the output."""
  h = x_BxI
  for i, w in enumerate(params):
    if i:
      h = activation(h)
    h = h @ w.T / jnp.sqrt(w.shape[1])
  return h
