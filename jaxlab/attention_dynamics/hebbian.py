r"""Linear attention as a Hebbian associative memory (the "Pavlovian conditioning" view; Qiao 2025,
arXiv:2508.08289): keys are conditioned stimuli, values unconditioned ones, and the state of
unnormalised linear attention $M = \sum_i v_i k_i^\top$ is the memory; a query retrieves $M q$.
Closed forms for the retrieval error and capacity are in `theory/attention/hebbian.py`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def store(keys_NxK: jax.Array, values_NxV: jax.Array) -> jax.Array:
  """The memory M [V, K] = sum_i v_i k_i^T (one Hebbian outer product per association)."""
  if keys_NxK.shape[0] != values_NxV.shape[0]:
    raise ValueError(f"{keys_NxK.shape[0]} keys but {values_NxV.shape[0]} values")
  return values_NxV.T @ keys_NxK


def retrieve(memory_VxK: jax.Array, queries_QxK: jax.Array) -> jax.Array:
  """Readouts [Q, V] = M q for each query."""
  return queries_QxK @ memory_VxK.T


def unit_keys(key: jax.Array, n: int, d_k: int) -> jax.Array:
  """n keys uniform on the unit sphere in d_k dimensions."""
  k = jax.random.normal(key, (n, d_k))
  return k / jnp.linalg.norm(k, axis=1, keepdims=True)


def gaussian_keys(key: jax.Array, n: int, d_k: int) -> jax.Array:
  """n keys with i.i.d. N(0, 1/d_k) entries (unit norm on average)."""
  return jax.random.normal(key, (n, d_k)) / jnp.sqrt(d_k)


def retrieval_sq_error(keys_NxK: jax.Array, values_NxV: jax.Array) -> jax.Array:
  """sum_j |M k_j - v_j|^2 for the memory built from the same pairs."""
  readout = retrieve(store(keys_NxK, values_NxV), keys_NxK)
  return jnp.sum((readout - values_NxV) ** 2)


def crosstalk_and_coherence(keys_NxK: jax.Array, values_NxV: jax.Array):
  """(max_j |xi_j|, mu = max_{i != j} |k_i.k_j|, max_i |v_i|): the quantities of the worst-case bound."""
  gram = keys_NxK @ keys_NxK.T
  off = gram - jnp.diag(jnp.diagonal(gram))
  crosstalk = off @ values_NxV  # xi_j = sum_{i != j} (k_i.k_j) v_i
  return (jnp.max(jnp.linalg.norm(crosstalk, axis=1)), jnp.max(jnp.abs(off)),
          jnp.max(jnp.linalg.norm(values_NxV, axis=1)))


def multi_head_sq_error(key: jax.Array, values_NxV: jax.Array, d_k: int, heads: int) -> jax.Array:
  """sum_j |r_j - v_j|^2 when `heads` memories store the same values under independent unit keys
  and their readouts are averaged."""
  n = values_NxV.shape[0]
  keys = jax.vmap(lambda k: unit_keys(k, n, d_k))(jax.random.split(key, heads))  # [H, N, K]
  readouts = jax.vmap(lambda k: retrieve(store(k, values_NxV), k))(keys)
  return jnp.sum((jnp.mean(readouts, axis=0) - values_NxV) ** 2)


def chain_sq_error(key: jax.Array, n: int, d_k: int, depth: int) -> jax.Array:
  """sum_j |r_L - k^(L+1)_j|^2 for retrieval chained through `depth` memories, layer l storing
  (k^(l)_i -> k^(l+1)_i) for every item, all keys unit and independent across layers."""
  keys = jax.vmap(lambda k: unit_keys(k, n, d_k))(jax.random.split(key, depth + 1))  # [L+1, N, K]
  readout = keys[0]
  for layer in range(depth):
    readout = retrieve(store(keys[layer], keys[layer + 1]), readout)
  return jnp.sum((readout - keys[depth]) ** 2)


def monte_carlo_chain_error(key: jax.Array, n: int, d_k: int, depth: int,
                            trials: int) -> tuple[jax.Array, jax.Array]:
  """(estimate, standard error) of the relative error of `depth`-hop chained retrieval (unit keys,
  so E|target|^2 = 1 per item)."""
  errors = jax.vmap(lambda k: chain_sq_error(k, n, d_k, depth))(jax.random.split(key, trials)) / n
  return jnp.mean(errors), jnp.std(errors) / jnp.sqrt(trials)


def monte_carlo_error(key: jax.Array, n: int, d_k: int, d_v: int, trials: int, key_kind: str = "unit",
                      heads: int = 1) -> tuple[jax.Array, jax.Array]:
  """(estimate, standard error) of E|r_j - v_j|^2 / E|v_j|^2 with standard normal values.

  E|v_j|^2 = d_v is known exactly, so the estimate is the mean squared error over trials / (n d_v):
  unbiased, unlike a per-trial ratio.
  """
  if key_kind not in ("unit", "gaussian"):
    raise ValueError(f"key_kind must be 'unit' or 'gaussian', got {key_kind!r}")
  make_keys = unit_keys if key_kind == "unit" else gaussian_keys

  def one(k):
    k_keys, k_values = jax.random.split(k)
    values = jax.random.normal(k_values, (n, d_v))
    if heads > 1:
      return multi_head_sq_error(k_keys, values, d_k, heads)
    return retrieval_sq_error(make_keys(k_keys, n, d_k), values)

  errors = jax.vmap(one)(jax.random.split(key, trials)) / (n * d_v)
  return jnp.mean(errors), jnp.std(errors) / jnp.sqrt(trials)


def capacity_curve(key: jax.Array, d_k: int, d_v: int, max_items: int, trials: int) -> jax.Array:
  """Mean relative retrieval error for n = 1..max_items unit-key associations: [max_items].

  One compiled call: n is a mask over `max_items` stored pairs, so it vmaps.
  """

  def one(k, n):
    k_keys, k_values = jax.random.split(k)
    active = (jnp.arange(max_items) < n).astype(jnp.result_type(float))
    keys = unit_keys(k_keys, max_items, d_k)
    values = jax.random.normal(k_values, (max_items, d_v)) * active[:, None]
    readout = retrieve(store(keys, values), keys) * active[:, None]
    return jnp.sum((readout - values) ** 2) / (n * d_v)

  ns = jnp.arange(1, max_items + 1)
  keys = jax.random.split(key, trials)
  return jnp.mean(jax.vmap(lambda n: jax.vmap(lambda k: one(k, n))(keys))(ns), axis=1)
