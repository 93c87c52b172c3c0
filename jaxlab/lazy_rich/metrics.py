r"""Measures of laziness and richness on a fixed probe set.

* Relative weight change $\|w_t - w_0\| / \|w_0\|$, in total and per layer (Chizat et al. 2019: it is
  $O(1/\alpha)$ in the lazy limit).
* Kernel distance $S(K_1, K_2) = 1 - \langle K_1, K_2\rangle_F / (\|K_1\|_F \|K_2\|_F)$ (Fort et al. 2020;
  Kunin et al. 2024, sec. 2) and relative kernel change $\|K_t - K_0\|_F / \|K_0\|_F$.
* Kernel-target alignment $\langle K, yy^\top\rangle_F / (\|K\|_F \|yy^\top\|_F)$ (Cristianini et al. 2002),
  and its centered version with $HKH$, $H = I - \frac1n 11^\top$ (Cortes et al. 2012).
* Linear CKA of two representations $X$ [n, p], $Y$ [n, q] (Kornblith et al. 2019, eq. 5 with a linear
  kernel): $\|Y_c^\top X_c\|_F^2 / (\|X_c^\top X_c\|_F \|Y_c^\top Y_c\|_F)$ on column-centered features.
* Parameter norm, and the linearization gap $\|f(w) - \bar f(w)\| / \|f(w) - f(w_0)\|$: the share of the
  function's change that the first-order model around $w_0$ does not explain.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxlab.lazy_rich.ntk import ApplyFn, linearize

PyTree = Any


def _sq_norm(tree: PyTree) -> jax.Array:
  return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree))


def parameter_norm(params: PyTree) -> jax.Array:
  """The Euclidean norm of all parameters together."""
  return jnp.sqrt(_sq_norm(params))


def relative_weight_change(params0: PyTree, params: PyTree) -> jax.Array:
  """|w - w0| / |w0| over all parameters together."""
  return jnp.sqrt(_sq_norm(jax.tree.map(jnp.subtract, params, params0)) / _sq_norm(params0))


def relative_weight_change_per_layer(params0: PyTree, params: PyTree) -> PyTree:
  """|w_l - w0_l| / |w0_l| for each leaf (layer) of the parameter pytree."""
  return jax.tree.map(lambda a, b: jnp.linalg.norm(b - a) / jnp.linalg.norm(a), params0, params)


def kernel_distance(k1: jax.Array, k2: jax.Array) -> jax.Array:
  """1 - <K1, K2>_F / (|K1|_F |K2|_F): 0 for proportional kernels, 1 for orthogonal ones."""
  return 1.0 - jnp.vdot(k1, k2) / (jnp.linalg.norm(k1) * jnp.linalg.norm(k2))


def relative_kernel_change(k0: jax.Array, k: jax.Array) -> jax.Array:
  """|K - K0|_F / |K0|_F."""
  return jnp.linalg.norm(k - k0) / jnp.linalg.norm(k0)


def _center(k: jax.Array) -> jax.Array:
  return k - jnp.mean(k, axis=0, keepdims=True) - jnp.mean(k, axis=1, keepdims=True) + jnp.mean(k)


def kernel_target_alignment(k: jax.Array, y: jax.Array, *, centered: bool = False) -> jax.Array:
  """<K, yy^T>_F / (|K|_F |yy^T|_F), with both Gram matrices double-centered if `centered`.

  y: targets [n] or [n, o] (Y Y^T is then the target kernel).
  """
  y = y.reshape(y.shape[0], -1)
  target = y @ y.T
  if centered:
    k, target = _center(k), _center(target)
  return jnp.vdot(k, target) / (jnp.linalg.norm(k) * jnp.linalg.norm(target))


def linear_cka(x: jax.Array, y: jax.Array) -> jax.Array:
  """Linear centered kernel alignment between representations x [n, p] and y [n, q]."""
  x = x - jnp.mean(x, axis=0, keepdims=True)
  y = y - jnp.mean(y, axis=0, keepdims=True)
  cross = jnp.linalg.norm(y.T @ x) ** 2
  return cross / (jnp.linalg.norm(x.T @ x) * jnp.linalg.norm(y.T @ y))


def linearization_gap(apply_fn: ApplyFn, params0: PyTree, params: PyTree,
                      x: jax.Array) -> jax.Array:
  """|f(w, x) - f_lin(w, x)| / |f(w, x) - f(w0, x)| on probe inputs x (0 for a linear model)."""
  f = apply_fn(params, x)
  f_lin = linearize(apply_fn, params0)(params, x)
  return jnp.linalg.norm(f - f_lin) / jnp.linalg.norm(f - apply_fn(params0, x))
