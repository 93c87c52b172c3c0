r"""Whitened regression tasks with a prescribed input-output correlation (Saxe et al. 2014, sec. 2).

Inputs are n_in orthonormal vectors, so $\Sigma^{11} = \sum_\mu x x^\top = I$, and targets are
$y = U S V^\top x$, so $\Sigma^{31} = \sum_\mu y x^\top = U S V^\top$ with random orthogonal U, V and the
chosen singular values.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp


class Task(NamedTuple):
  x: jax.Array  # [n_in, n_in] inputs, one per row, orthonormal
  y: jax.Array  # [n_in, n_out] targets
  U: jax.Array  # [n_out, n_out]
  s: jax.Array  # [r] singular values, r = len(singular_values)
  V: jax.Array  # [n_in, n_in]


def random_orthogonal(key: jax.Array, n: int, dtype=None) -> jax.Array:
  """A Haar-random orthogonal matrix (QR with the sign fix of Mezzadri 2007)."""
  q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), dtype=dtype or jnp.result_type(float)))
  return q * jnp.sign(jnp.diagonal(r))[None, :]


def make_task(key: jax.Array, n_in: int, n_out: int, singular_values: Sequence[float]) -> Task:
  """A task whose correlation matrix is U diag(s) V^T; len(s) <= min(n_in, n_out)."""
  s = jnp.asarray(singular_values, dtype=jnp.result_type(float))
  if s.ndim != 1 or len(s) > min(n_in, n_out):
    raise ValueError(f"need at most min(n_in, n_out) = {min(n_in, n_out)} singular values, "
                     f"got {len(s)}")
  k_u, k_v, k_x = jax.random.split(key, 3)
  U, V = random_orthogonal(k_u, n_out), random_orthogonal(k_v, n_in)
  r = len(s)
  target_map = (U[:, :r] * s[None, :]) @ V[:, :r].T  # [n_out, n_in]
  x = random_orthogonal(k_x, n_in)
  return Task(x=x, y=x @ target_map.T, U=U, s=s, V=V)
