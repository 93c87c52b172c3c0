r"""Local linear attention as test-time regression (Zuo et al. 2025, arXiv:2510.01450; the closed form
is derived here since their code is unreleased).

Softmax attention is the Nadaraya-Watson (local constant) regressor of values on keys at the query,
with weights $w_j = \exp(q^\top k_j/\sqrt d)$. Local linear attention fits an affine model around the
query, $\min_{b, W} \frac12\sum_j w_j\|v_j - b - W(k_j - q)\|^2 + \lambda\|W\|_F^2$, and outputs $\hat b$.
With $D_j = k_j - q$, $\omega = \sum_j w_j$, $\mu = \sum_j w_j D_j$, $\Sigma = \sum_j w_j D_j D_j^\top + 2\lambda I$
(the 2 from the 1/2 in the loss), eliminating $W$ gives $\hat b = \sum_j s_j v_j$ with

  $s_j = w_j\,(1 - D_j^\top\Sigma^{-1}\mu) / (\omega - \mu^\top\Sigma^{-1}\mu)$,  $\sum_j s_j = 1$.

As $\lambda \to \infty$, $s_j \to w_j/\omega$ (softmax); with $w \equiv 1$, $\lambda = 0$ it is ordinary least
squares evaluated at $q$, and affine targets are reproduced exactly, which removes the first-order
boundary bias of the local-constant fit (Fan 1992).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def softmax_kernel_weights(q_D: jax.Array, k_NxD: jax.Array) -> jax.Array:
  """Unnormalised softmax-attention weights exp(q.k_j / sqrt(d)), max-shifted for stability."""
  logits = k_NxD @ q_D / jnp.sqrt(q_D.shape[-1])
  return jnp.exp(logits - jnp.max(logits))


def local_linear_weights(q_D: jax.Array, k_NxD: jax.Array, w_N: jax.Array, ridge) -> jax.Array:
  """The equivalent-kernel weights s_j of the local linear fit at q (module docstring)."""
  d_NxD = k_NxD - q_D[None, :]
  omega = jnp.sum(w_N)
  mu = d_NxD.T @ w_N
  sigma = (d_NxD * w_N[:, None]).T @ d_NxD + 2.0 * ridge * jnp.eye(q_D.shape[-1], dtype=k_NxD.dtype)
  sigma_inv_mu = jnp.linalg.solve(sigma, mu)
  return w_N * (1.0 - d_NxD @ sigma_inv_mu) / (omega - mu @ sigma_inv_mu)


def weighted_ridge_intercept(q_D, k_NxD, v_NxV, w_N, ridge) -> jax.Array:
  """b_hat from a direct solve of the weighted, W-ridge-penalised affine least squares (reference)."""
  n, d = k_NxD.shape
  design = jnp.concatenate([jnp.ones((n, 1), k_NxD.dtype), k_NxD - q_D[None, :]], axis=1)
  penalty = 2.0 * ridge * jnp.diag(jnp.concatenate([jnp.zeros(1), jnp.ones(d)]))
  gram = (design * w_N[:, None]).T @ design + penalty
  coefficients = jnp.linalg.solve(gram, (design * w_N[:, None]).T @ v_NxV)
  return coefficients[0]


def attention(q_QxD, k_NxD, v_NxV, *, ridge, kind: str = "local_linear"):
  """Outputs [Q, V] of softmax ("softmax") or local linear ("local_linear") attention."""
  if kind not in ("softmax", "local_linear"):
    raise ValueError(f"kind must be 'softmax' or 'local_linear', got {kind!r}")

  def one(q):
    w = softmax_kernel_weights(q, k_NxD)
    s = w / jnp.sum(w) if kind == "softmax" else local_linear_weights(q, k_NxD, w, ridge)
    return s @ v_NxV

  return jax.vmap(one)(q_QxD)


def kernel_regression(x_query, x_N, y_N, bandwidth, *, local_linear: bool):
  """1-D Gaussian-kernel regression (Nadaraya-Watson or local linear) at each query point."""

  def one(x0):
    w = jnp.exp(-0.5 * ((x_N - x0) / bandwidth) ** 2)
    if not local_linear:
      return jnp.sum(w * y_N) / jnp.sum(w)
    s = local_linear_weights(jnp.atleast_1d(x0), x_N[:, None], w, 0.0)
    return s @ y_N

  return jax.vmap(one)(jnp.asarray(x_query))
