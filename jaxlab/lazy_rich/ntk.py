r"""Empirical neural tangent kernels, linearized models, and their closed-form training.

For a model $f(w, x)$ with parameters $w$, the empirical NTK is $K(x, x') = \sum_p \eta_p\,
\partial_p f(x) \cdot \partial_p f(x')$ (Jacot et al. 2018; with per-parameter learning rates $\eta_p$
as in Kunin et al. 2024, eq. 2). The linearized model is $\bar f(w, x) = f(w_0, x) + \partial_w f(w_0,
x)(w - w_0)$ (Lee et al. 2019, eq. 5; Chizat et al. 2019). Trained by gradient descent with step
$\eta$ on $L = \frac{c}{2}\|\bar f(X) - Y\|^2$, its training outputs evolve exactly as
$\bar f_k(X) = Y + (I - \eta c K)^k (f_0(X) - Y)$, and any other input follows through the kernel
(Lee et al. 2019, eqs. 8-9, here in discrete time):
$\bar f_k(x) = f_0(x) - K(x, X)\, \phi_k(K) (f_0(X) - Y)$ with $\phi_k(K) = K^{-1}(I - (I - \eta c K)^k)$,
$\phi_\infty(K) = K^{+}$ and, for gradient flow, $\phi_t(K) = K^{-1}(I - e^{-\eta c K t})$.
Built on `jax.jacrev`/`jax.jvp` + `vmap`, without neural-tangents (which needs TensorFlow).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

PyTree = Any
ApplyFn = Callable[[PyTree, jax.Array], jax.Array]


def _per_example_jacobian(apply_fn: ApplyFn, params: PyTree, x_N: jax.Array) -> PyTree:
  """Leaves [N, O, *param_shape]: the Jacobian of each example's (flattened) output."""
  return jax.vmap(jax.jacrev(lambda p, x: jnp.reshape(apply_fn(p, x[None])[0], (-1,))),
                  in_axes=(None, 0))(params, x_N)


def empirical_ntk(apply_fn: ApplyFn, params: PyTree, x1: jax.Array, x2: jax.Array | None = None,
                  *, param_weights: PyTree | None = None, trace_outputs: bool = True,
                  chunk_size: int | None = None) -> jax.Array:
  """The empirical NTK between two batches of inputs.

  Args:
    apply_fn: `apply(params, x_B...) -> outputs [B, ...]`.
    params: where the kernel is taken.
    x1, x2: inputs [N1, ...] and [N2, ...] (x2 defaults to x1).
    param_weights: optional pytree of per-leaf scalars eta_p (layer learning rates).
    trace_outputs: sum over output units (K [N1, N2]); otherwise K [N1, N2, O, O].
    chunk_size: compute the Jacobians of at most this many examples at a time (memory).

  Returns:
    The kernel, [N1, N2] or [N1, N2, O, O].
  """
  x2_given = x2 is not None
  x2 = x2 if x2_given else x1
  weights = param_weights if param_weights is not None else jax.tree.map(lambda _: 1.0, params)

  def contract(j1, j2):
    terms = jax.tree.map(
        lambda a, b, w: w * jnp.einsum("iop,jqp->ijoq", a.reshape(a.shape[:2] + (-1,)),
                                       b.reshape(b.shape[:2] + (-1,))), j1, j2, weights)
    k = sum(jax.tree.leaves(terms))
    return jnp.einsum("ijoo->ij", k) if trace_outputs else k

  jac = lambda x: _per_example_jacobian(apply_fn, params, x)
  if chunk_size is None or chunk_size >= max(len(x1), len(x2)):
    j1 = jac(x1)
    return contract(j1, jac(x2) if x2_given else j1)
  rows = []
  for i in range(0, len(x1), chunk_size):
    j1 = jac(x1[i:i + chunk_size])
    rows.append(jnp.concatenate([contract(j1, jac(x2[j:j + chunk_size]))
                                 for j in range(0, len(x2), chunk_size)], axis=1))
  return jnp.concatenate(rows, axis=0)


def linearize(apply_fn: ApplyFn, params0: PyTree) -> ApplyFn:
  """The first-order Taylor model around params0: f(w0, x) + J(w0, x)(w - w0), via `jax.jvp`."""

  def apply_linear(params, x):
    delta = jax.tree.map(jnp.subtract, params, params0)
    f0, df = jax.jvp(lambda p: apply_fn(p, x), (params0,), (delta,))
    return f0 + df

  return apply_linear


def centered(apply_fn: ApplyFn, params0: PyTree, alpha) -> ApplyFn:
  """Chizat et al. (2019) output scaling: alpha * (h(w, x) - h(w0, x)), zero at initialisation.

  Train it with learning rate lr / alpha^2 (`lazy_learning_rate`) so that the function-space dynamics
  do not depend on alpha to first order; alpha may be a traced array (vmappable).
  """

  def apply_centered(params, x):
    return alpha * (apply_fn(params, x) - apply_fn(params0, x))

  return apply_centered


def lazy_learning_rate(learning_rate, alpha):
  """The learning rate that keeps alpha-scaled models on one function-space time scale."""
  return learning_rate / alpha ** 2


def _spectral_filter(eigenvalues, learning_rate_c, steps, mode: str):
  """phi(lambda) = (1 - decay(lambda)) / lambda, finite at lambda = 0."""
  lam = jnp.maximum(eigenvalues, 0.0)
  tiny = 1e-12 * jnp.max(lam)
  if mode == "infinity":
    return jnp.where(lam > tiny, 1.0 / jnp.where(lam > tiny, lam, 1.0), 0.0)
  if mode == "flow":
    z = learning_rate_c * steps
    exact = -jnp.expm1(-z * lam) / jnp.where(lam > tiny, lam, 1.0)
    return jnp.where(lam > tiny, exact, z)
  # Gradient descent: (1 - (1 - x)^k) / lam with x = eta c lam; log1p keeps small x accurate, and
  # for 1 <= x < 2 (still convergent) (1 - x)^k = (-1)^k |1 - x|^k.
  x = learning_rate_c * lam
  small = x < 1.0
  log_abs = jnp.where(small, jnp.log1p(-jnp.where(small, x, 0.0)), jnp.log(jnp.abs(1.0 - x)))
  sign = jnp.where(small | (steps % 2 == 0), 1.0, -1.0)
  decay = sign * jnp.exp(steps * log_abs)
  exact = (1.0 - decay) / jnp.where(lam > tiny, lam, 1.0)
  return jnp.where(lam > tiny, exact, learning_rate_c * steps)


def ntk_predict(k_train_train: jax.Array, k_test_train: jax.Array, y_train: jax.Array,
                f0_train: jax.Array, f0_test: jax.Array, *, learning_rate: float = 1.0,
                loss_scale: float = 1.0, steps=None, mode: str = "gd") -> tuple[jax.Array, jax.Array]:
  """Outputs of the linearized model after training on MSE (see module docstring).

  Args:
    k_train_train: [N, N] NTK on the training inputs; k_test_train: [M, N].
    y_train, f0_train: [N, O] (or [N]) targets and initial outputs; f0_test: [M, O] (or [M]).
    learning_rate: the step eta; loss_scale: c in L = c/2 |f - y|^2 (1/N for a mean).
    steps: number of GD steps ("gd"), time t ("flow"); ignored for "infinity".
    mode: "gd" (discrete gradient descent), "flow" (gradient flow) or "infinity" (t -> inf).

  Returns:
    (f_train, f_test) after training.

  With several outputs (y [N, O]) the kernel is the output-traced one: exact when the tangent
  kernel is the same for every output and zero across outputs (e.g. a trained linear readout);
  otherwise treat each output as its own scalar model.
  """
  if mode not in ("gd", "flow", "infinity"):
    raise ValueError(f"mode must be 'gd', 'flow' or 'infinity', got {mode!r}")
  if mode != "infinity" and steps is None:
    raise ValueError(f"mode {mode!r} needs `steps`")
  eigenvalues, vectors = jnp.linalg.eigh(k_train_train)
  if mode == "gd" and not isinstance(eigenvalues, jax.core.Tracer):
    top = float(learning_rate * loss_scale * jnp.max(eigenvalues))
    if top >= 2.0:
      raise ValueError(f"gradient descent diverges: learning_rate * loss_scale * max eigenvalue "
                       f"= {top:.3g} >= 2")
  phi = _spectral_filter(eigenvalues, learning_rate * loss_scale, steps, mode)
  residual = f0_train - y_train
  residual_2d = residual.reshape(residual.shape[0], -1)
  coefficients = vectors @ (phi[:, None] * (vectors.T @ residual_2d))  # phi(K) (f0 - y)
  f_train = f0_train - (k_train_train @ coefficients).reshape(residual.shape)
  f_test = f0_test - (k_test_train @ coefficients).reshape(f0_test.shape)
  return f_train, f_test
