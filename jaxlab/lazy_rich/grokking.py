r"""Grokking as the transition from lazy to rich (Kumar, Bordelon, Gershman & Pehlevan, ICLR 2024).

A two-layer network with quadratic-plus-linear activation and fixed unit readouts,
$f(x) = \frac{\alpha}{N}\sum_i \phi(w_i\cdot x)$, $\phi(h) = h + \frac\epsilon2 h^2$, learns the quadratic target
$y = \frac12(\beta_*\cdot x)^2$ from P samples $x \sim N(0, I/D)$. Training is centered,
$\tilde f = f(w) - f(w_0)$, with learning rate $\eta_0 N/\alpha^2$ (their App. 8.1), so $\alpha$ sets how lazy
the run is without changing its initial function-space speed. The summary statistics
$\bar w$ and $M$ (`summary`) make the test loss exact (`theory.lazy_rich.kumar.test_loss`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Task(NamedTuple):
  x: jax.Array  # [P, D] training inputs, rows ~ N(0, I/D)
  y: jax.Array  # [P]
  beta_star: jax.Array  # [D], |beta_star|^2 = D


def make_task(key: jax.Array, dim: int, n_train: int) -> Task:
  k_beta, k_x = jax.random.split(key)
  beta = jax.random.normal(k_beta, (dim,))
  beta = beta * jnp.sqrt(dim) / jnp.linalg.norm(beta)
  x = jax.random.normal(k_x, (n_train, dim)) / jnp.sqrt(dim)
  return Task(x, target(beta, x), beta)


def target(beta_star: jax.Array, x_BxD: jax.Array) -> jax.Array:
  return 0.5 * (x_BxD @ beta_star) ** 2


def init(key: jax.Array, width: int, dim: int) -> jax.Array:
  """First-layer weights W [N, D] with i.i.d. N(0, 1) entries (the readouts are fixed to 1)."""
  return jax.random.normal(key, (width, dim))


def apply(w_NxD: jax.Array, x_BxD: jax.Array, alpha, epsilon) -> jax.Array:
  h = x_BxD @ w_NxD.T
  return alpha * jnp.mean(h + 0.5 * epsilon * h ** 2, axis=-1)


def centered_loss(w, batch, key=None):
  """0.5 * mean over the training set of (f(w) - f(w0) - y)^2 (alpha is inside f);
  batch = (x, y, w0, alpha, eps)."""
  del key
  x, y, w0, alpha, epsilon = batch
  f = apply(w, x, alpha, epsilon) - apply(w0, x, alpha, epsilon)
  return 0.5 * jnp.mean((f - y) ** 2), {}


def summary(w_NxD: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(w_bar [D], M [D, D]) = (mean_i w_i, mean_i w_i w_i^T)."""
  return jnp.mean(w_NxD, axis=0), w_NxD.T @ w_NxD / w_NxD.shape[0]


def centered_statistics(w, w0):
  """(v, Q) of the centered network: f~ = alpha v.x + (alpha eps / 2) x^T Q x."""
  (m1, q1), (m0, q0) = summary(w), summary(w0)
  return m1 - m0, q1 - q0


def linearized_statistics(w, w0):
  """(v, Q) of the network's linearization at w0, evaluated at w."""
  dw = w - w0
  cross = w0.T @ dw / w0.shape[0]
  return jnp.mean(dw, axis=0), cross + cross.T
