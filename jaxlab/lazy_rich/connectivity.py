r"""Initial connectivity of controlled effective rank at a fixed norm (Liu et al., ICLR 2024, sec. 3).

A Gaussian matrix is truncated to its top-r singular directions and rescaled to a chosen Frobenius
norm; a rank-1 matrix can instead be aligned with the task. The rank is an array (a mask on the
spectrum), so populations over ranks vmap. Effective rank: Roy & Vetterli (2007),
$\exp(-\sum_i p_i \ln p_i)$ with $p_i = \sigma_i / \sum_j \sigma_j$; participation ratio
$(\sum_i \sigma_i^2)^2 / \sum_i \sigma_i^4$.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def low_rank_normal(key: jax.Array, shape: tuple[int, int], rank, frobenius_norm) -> jax.Array:
  """A Gaussian matrix truncated to its top `rank` singular values, rescaled to `frobenius_norm`."""
  u, s, vt = jnp.linalg.svd(jax.random.normal(key, shape), full_matrices=False)
  s = jnp.where(jnp.arange(s.shape[0]) < rank, s, 0.0)
  w = (u * s[None, :]) @ vt
  return w * (frobenius_norm / jnp.linalg.norm(w))


def aligned_rank_one(key: jax.Array, n_out: int, direction: jax.Array, frobenius_norm) -> jax.Array:
  """frobenius_norm * u direction_hat^T with a random unit u: rank 1, aligned with `direction`."""
  u = jax.random.normal(key, (n_out,))
  return frobenius_norm * jnp.outer(u / jnp.linalg.norm(u), direction / jnp.linalg.norm(direction))


def effective_rank(w: jax.Array) -> jax.Array:
  """Roy-Vetterli effective rank exp(H(p)), p = normalised singular values (0 log 0 = 0)."""
  s = jnp.linalg.svd(w, compute_uv=False)
  p = s / jnp.sum(s)
  return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def participation_ratio(w: jax.Array) -> jax.Array:
  """(sum s^2)^2 / sum s^4 over the singular values s of w."""
  s2 = jnp.linalg.svd(w, compute_uv=False) ** 2
  return jnp.sum(s2) ** 2 / jnp.sum(s2 ** 2)


# The recurrent variant (Liu et al., sec. 5): a rate RNN whose recurrent weights start at a chosen rank.
# h_t = relu(W_h h_{t-1} + W_in x_t) (their CTRNN with alpha = 1), logits = W_out h_T.


def rnn_init(key: jax.Array, n_hidden: int, n_in: int, n_out: int, rank, gain: float = 1.25):
  """W_h: Gaussian with the given gain, truncated to `rank` and rescaled to its full-rank norm."""
  k_h, k_in, k_out = jax.random.split(key, 3)
  full = gain * jax.random.normal(k_h, (n_hidden, n_hidden)) / jnp.sqrt(n_hidden)
  return {"W_h": low_rank_normal(k_h, (n_hidden, n_hidden), rank, jnp.linalg.norm(full)),
          "W_in": jax.random.normal(k_in, (n_hidden, n_in)),
          "W_out": jax.random.normal(k_out, (n_out, n_hidden)) / jnp.sqrt(n_hidden)}


def rnn_apply(params, x_BxTxI: jax.Array) -> jax.Array:
  """Logits [B, n_out] read out from the last hidden state."""

  def step(h_BxH, x_BxI):
    return jax.nn.relu(h_BxH @ params["W_h"].T + x_BxI @ params["W_in"].T), None

  h0 = jnp.zeros((x_BxTxI.shape[0], params["W_h"].shape[0]), x_BxTxI.dtype)
  h_BxH, _ = jax.lax.scan(step, h0, jnp.swapaxes(x_BxTxI, 0, 1))
  return h_BxH @ params["W_out"].T


def two_alternative_batch(key: jax.Array, batch: int, steps: int, coherence: float):
  """A perceptual decision: a noisy scalar stream with mean +-coherence; the label is its sign."""
  k_sign, k_noise = jax.random.split(key)
  label = jax.random.bernoulli(k_sign, 0.5, (batch,)).astype(jnp.int32)
  mean = coherence * (2.0 * label - 1.0)
  return mean[:, None, None] + jax.random.normal(k_noise, (batch, steps, 1)), label
