r"""Bias of local constant (softmax / Nadaraya-Watson) vs local linear regression (Fan 1992), the
statistical content of local linear attention (Zuo et al. 2025).

Population quantities for a Gaussian kernel of bandwidth h, regression function m and design
density f on [0, 1]:
  * at the boundary x = 0 with uniform f and m(x) = x, the local-constant estimate is the mean of a
    normal(0, h) truncated to [0, 1]:  bias = h (phi(0) - phi(1/h)) / (Phi(1/h) - 1/2)
    -> h sqrt(2/pi) for small h; the local linear fit reproduces m exactly (bias 0);
  * in the interior (to leading order in h): NW bias = h^2 (m''/2 + m' f'/f), local linear bias =
    h^2 m''/2 (the design term m' f'/f disappears).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.stats import norm


def boundary_bias_constant(h):
  """Exact NW bias at x = 0 for m(x) = x, uniform design on [0, 1]."""
  h = jnp.asarray(h)
  return h * (norm.pdf(0.0) - norm.pdf(1.0 / h)) / (norm.cdf(1.0 / h) - 0.5)


def interior_bias_constant(h, m1, m2, f, f1):
  """Leading-order NW bias h^2 (m''/2 + m' f'/f)."""
  return h ** 2 * (m2 / 2.0 + m1 * f1 / f)


def interior_bias_linear(h, m2):
  """Leading-order local linear bias h^2 m''/2."""
  return h ** 2 * m2 / 2.0
