r"""The lazy limit of Chizat, Oyallon & Bach (NeurIPS 2019), "On lazy training in differentiable programming".

A model $h(w, x)$ is rescaled and centered, $f_\alpha(w, x) = \alpha\,(h(w, x) - h(w_0, x))$, and trained by
gradient descent with step $\eta/\alpha^2$ on $R = \frac{c}{2}\|f - y\|^2$ (sec. 2, the objective
$F_\alpha = \alpha^{-2} R(\alpha h)$). As $\alpha \to \infty$ (Thm. 2.3) the function follows the tangent
model, i.e. kernel gradient descent with the initial tangent kernel $K = J J^\top$, $J = \partial_w h(w_0)$:

  $r_{k+1} = (I - \eta c K)\, r_k$ on the training inputs, $r = f - y$, $r_0 = -y$, and on any other input
  $f_{k+1}(x) = f_k(x) - \eta c\, K(x, X)\, r_k$;

and the gap between the network and this limit, $\|f_\alpha - \bar f\|$, is $O(1/\alpha)$.
The parameters move by (derived here from the same recursion)
$w_k - w_0 = -\frac{\eta c}{\alpha} J^\top \sum_{j<k} r_j$, so
$\alpha \|w_k - w_0\| = \sqrt{v^\top K v}$ with $v = \eta c \sum_{j<k} r_j$: the relative weight change
is exactly $C/\alpha$ in the limit, with $C$ computed below from $K$ alone.

These functions take the kernel as an input and iterate the recursion under `lax.scan`; they are an
independent computation from `jaxlab.lazy_rich.ntk_predict`, which uses the spectral closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def lazy_limit(k_train, k_test_train, y_train, *, step: float, steps: int, num_saves: int = 1):
  """Kernel gradient descent from f = 0, saved every steps // num_saves steps.

  Args:
    k_train: [N, N] initial tangent kernel of h on the training inputs; k_test_train: [M, N].
    y_train: [N] targets. step: eta * c (learning rate times the loss's 1/N, if a mean).

  Returns:
    (f_train [S, N], f_test [S, M], alpha * |w - w0| [S]) at the S = num_saves save points.
  """
  if steps % num_saves:
    raise ValueError(f"steps={steps} must be a multiple of num_saves={num_saves}")

  def one(carry, _):
    r, f_test, v = carry
    return (r - step * (k_train @ r), f_test - step * (k_test_train @ r), v + step * r), None

  def save(carry, _):
    carry, _ = jax.lax.scan(one, carry, length=steps // num_saves)
    r, f_test, v = carry
    return carry, (r + y_train, f_test, jnp.sqrt(v @ (k_train @ v)))

  r0 = -y_train
  init = (r0, jnp.zeros(k_test_train.shape[0], dtype=r0.dtype), jnp.zeros_like(r0))
  _, saved = jax.lax.scan(save, init, length=num_saves)
  return saved


def log_log_slope(alphas, values):
  """Least-squares slope of log(values) against log(alphas) (the scaling exponent)."""
  la, lv = jnp.log(jnp.asarray(alphas)), jnp.log(jnp.asarray(values))
  la = la - jnp.mean(la)
  return jnp.sum(la * (lv - jnp.mean(lv))) / jnp.sum(la * la)
