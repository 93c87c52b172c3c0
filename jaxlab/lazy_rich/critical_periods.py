r"""Critical learning periods in deep linear networks (Kleinman, Achille & Soatto, ICLR 2024).

Two models:
  * two pathways, $\Omega = \Omega_a + \Omega_b$ with $\Omega_p = W_p^D \cdots W_p^1$ (their sec. 3, the
    "multi-pathway" model), trained on a whitened regression task; a deficit freezes pathway b for a
    window of steps while its output stays in the loss (their `gate_path`);
  * deep linear matrix completion (their sec. 4): a deficit task of higher rank observed on the same
    entries for the first $T_c$ steps, then the target.
The deficit is an optax transform (`freeze_during`) so the engine's training step is unchanged.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab import deep_linear as dl

PyTree = Any


def init_pathways(U: jax.Array, V: jax.Array, p0_a, p0_b, depth: int, hidden: int,
                  key: jax.Array | None = None) -> dict[str, list[jax.Array]]:
  """Balanced decoupled pathways: every layer of pathway p carries weight p0_p on every mode.

  p0_a, p0_b: [r] per-mode layer weights (mode strength K_p = p0_p ** depth).
  """
  keys = jax.random.split(key, 2) if key is not None else (None, None)
  scales = lambda p0: jnp.broadcast_to(jnp.asarray(p0), (depth, len(jnp.atleast_1d(p0))))
  hidden_widths = [hidden] * (depth - 1)
  return {"a": dl.init_decoupled(U, V, scales(p0_a), hidden_widths, key=keys[0]),
          "b": dl.init_decoupled(U, V, scales(p0_b), hidden_widths, key=keys[1])}


def pathway_maps(params) -> tuple[jax.Array, jax.Array]:
  return dl.end_to_end(params["a"]), dl.end_to_end(params["b"])


def apply(params, x_BxI: jax.Array) -> jax.Array:
  omega_a, omega_b = pathway_maps(params)
  return x_BxI @ (omega_a + omega_b).T


def loss(params, batch, key=None):
  """Saxe's summed squared error of the summed pathways."""
  del key
  x, y = batch
  err = apply(params, x) - y
  return 0.5 * jnp.sum(err ** 2), {}


def mode_strengths(params, U: jax.Array, V: jax.Array, r: int) -> dict[str, jax.Array]:
  """Per-mode strength of each pathway, diag(U^T Omega_p V)[:r]."""
  omega_a, omega_b = pathway_maps(params)
  strength = lambda omega: jnp.diagonal(U.T @ omega @ V)[:r]
  return {"K_a": strength(omega_a), "K_b": strength(omega_b)}


class FreezeState(NamedTuple):
  count: jax.Array


def freeze_during(start: int, length: int, frozen: PyTree) -> optax.GradientTransformation:
  """Zeroes the updates of the leaves marked True in `frozen` for steps start <= t < start + length.

  Chain it after the optimizer: `optax.chain(optax.sgd(lr), freeze_during(...))`. A frozen leaf
  keeps its value, and since it still enters the loss, this is the paper's detached pathway.
  """

  def init_fn(params):
    del params
    return FreezeState(count=jnp.zeros((), jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    open_now = (state.count < start) | (state.count >= start + length)
    updates = jax.tree.map(lambda u, f: jnp.where(open_now | (not f), u, jnp.zeros_like(u)), updates,
                           frozen)
    return updates, FreezeState(count=state.count + 1)

  return optax.GradientTransformation(init_fn, update_fn)


class CompletionTask(NamedTuple):
  target: jax.Array  # [n, n], rank `rank`
  deficit: jax.Array  # [n, n], higher rank, same observed entries
  observed: jax.Array  # [n, n] 0/1 mask


def completion_task(key: jax.Array, n: int, rank: int, deficit_rank: int,
                    n_observed: int) -> CompletionTask:
  """Random low-rank n x n matrices with unit-variance entries, observed on n_observed entries."""
  k_t, k_d, k_mask = jax.random.split(key, 3)

  def low_rank(k, r):
    k1, k2 = jax.random.split(k)
    return jax.random.normal(k1, (n, r)) @ jax.random.normal(k2, (r, n)) / jnp.sqrt(r)

  flat = jnp.zeros(n * n).at[jax.random.permutation(k_mask, n * n)[:n_observed]].set(1.0)
  return CompletionTask(low_rank(k_t, rank), low_rank(k_d, deficit_rank), flat.reshape(n, n))


def completion_init(key: jax.Array, n: int, depth: int, end_to_end_scale: float) -> list[jax.Array]:
  """Gaussian layers scaled so the end-to-end map has entries of size ~end_to_end_scale."""
  per_layer = end_to_end_scale ** (1.0 / depth) / jnp.sqrt(n) ** ((depth - 1) / depth)
  return [per_layer * jax.random.normal(k, (n, n)) for k in jax.random.split(key, depth)]


def completion_loss(params, batch, key=None):
  """0.5 * mean over observed entries of (W - M)^2; batch = (matrix, mask)."""
  del key
  matrix, mask = batch
  err = (dl.end_to_end(params) - matrix) * mask
  return 0.5 * jnp.sum(err ** 2) / jnp.sum(mask), {}


def completion_test_mse(params, task: CompletionTask) -> jax.Array:
  """Mean squared error on the unobserved entries of the target."""
  hidden = 1.0 - task.observed
  return jnp.sum(((dl.end_to_end(params) - task.target) * hidden) ** 2) / jnp.sum(hidden)
