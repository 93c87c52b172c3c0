"""What the theory talks about, read off a deep linear network's parameters (Saxe et al. 2014).

Mode strengths are the diagonal of U^T W V (sec. 2); off-diagonal entries measure mode coupling.
For a two-layer net, mode alpha's input-side vector is a = W21 v_alpha and its output-side vector is
b = (u_alpha^T W32)^T; decoupled gradient flow conserves a.a - b.b (sec. 2), and for any init it
conserves W21 W21^T - W32^T W32 (the balancedness matrix).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.deep_linear.model import Params, end_to_end


def mode_matrix(params: Params, U: jax.Array, V: jax.Array) -> jax.Array:
  """U^T W V for the end-to-end map W: [n_out, n_in]."""
  return U.T @ end_to_end(params) @ V


def mode_strengths(params: Params, U: jax.Array, V: jax.Array, r: int) -> jax.Array:
  """u_alpha = u_alpha^T W v_alpha for the first r modes."""
  return jnp.diagonal(mode_matrix(params, U, V))[:r]


def two_layer_mode_vectors(params: Params, U: jax.Array, V: jax.Array, r: int):
  """(a [r, hidden], b [r, hidden]): each mode's input- and output-side weight vectors."""
  if len(params) != 2:
    raise ValueError(f"mode vectors are defined for two weight matrices, got {len(params)}")
  w21, w32 = params
  return (w21 @ V[:, :r]).T, (U[:, :r].T @ w32)


def balancedness(params: Params) -> list[jax.Array]:
  """W_l W_l^T - W_{l+1}^T W_{l+1} for each hidden layer: constant under gradient flow."""
  return [params[l] @ params[l].T - params[l + 1].T @ params[l + 1] for l in range(len(params) - 1)]


def crossing_times(times, curves, levels) -> np.ndarray:
  """First time each curve reaches its level, linearly interpolated; NaN if it never does.

  times: [T]; curves: [T, m] (or [..., T, m] batched); levels: [m].
  """
  times, curves, levels = np.asarray(times), np.asarray(curves), np.asarray(levels)
  if curves.ndim > 2:
    return np.stack([crossing_times(times, c, levels) for c in curves])
  out = np.full(curves.shape[1], np.nan)
  for j in range(curves.shape[1]):
    above = np.nonzero(curves[:, j] >= levels[j])[0]
    if len(above) == 0:
      continue
    i = above[0]
    if i == 0:
      out[j] = times[0]
      continue
    u0, u1 = curves[i - 1, j], curves[i, j]
    out[j] = times[i - 1] + (levels[j] - u0) / (u1 - u0) * (times[i] - times[i - 1])
  return out
