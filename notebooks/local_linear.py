# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Local linear attention as test-time regression
#
# Zuo et al. 2025 (arXiv:2510.01450), with the bias formulas of Fan 1992. Softmax attention is the
# Nadaraya-Watson (local constant) regression of values on keys at the query; local linear attention
# fits an affine model around the query, $\min_{b,W}\frac12\sum_j w_j\|v_j - b - W(k_j - q)\|^2 + \lambda
# \|W\|_F^2$, and outputs $\hat b = \sum_j s_j v_j$ with closed-form weights $s_j$ (`jaxlab`, derived
# there). The statistical payoff (`theory/attention/local_linear.py`): for a Gaussian kernel of
# bandwidth $h$, at the boundary $x = 0$ of a uniform design with $m(x) = x$ the local constant fit has
# bias $h(\varphi(0) - \varphi(1/h))/(\Phi(1/h) - 1/2) \approx h\sqrt{2/\pi}$ while the local linear fit has
# none; in the interior the NW bias is $h^2(m''/2 + m'f'/f)$ and the local linear one $h^2 m''/2$.
# Left: the population biases (quadrature on $[0, 1]$) against $h$, formulas dashed/dotted. Right:
# both regressors on noisy samples of $\sin 3x$ at $h = 0.1$: the local constant fit bends at the edges.

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.local_linear import config as config_lib
from jaxlab.attention_dynamics import local_linear as lla
from theory.attention import local_linear as theory

config = config_lib.get_config("quick")
key = jax.random.key(config.seed)

# %% [markdown]
# The closed-form weights on a random attention problem: they match a direct weighted ridge solve,
# reproduce affine targets exactly, and tend to the softmax weights as the ridge grows.

# %%
k_k, k_v, k_q, k_a = jax.random.split(jax.random.fold_in(key, 0), 4)
keys = jax.random.normal(k_k, (config.n_keys, config.key_dim))
values = jax.random.normal(k_v, (config.n_keys, config.value_dim))
q = jax.random.normal(k_q, (config.key_dim,))
w = lla.softmax_kernel_weights(q, keys)
s = lla.local_linear_weights(q, keys, w, config.ridge)
direct = lla.weighted_ridge_intercept(q, keys, values, w, config.ridge)
print(f"closed form vs direct solve: {float(jnp.max(jnp.abs(s @ values - direct))):.1e}; "
      f"|sum s - 1| = {float(abs(jnp.sum(s) - 1)):.1e}; ridge 1e12 vs softmax weights: "
      f"{float(jnp.max(jnp.abs(lla.local_linear_weights(q, keys, w, 1e12) - w / jnp.sum(w)))):.1e}")
a = jax.random.normal(k_a, (config.key_dim, config.value_dim))
affine, exact = keys @ a + 0.7, q @ a + 0.7
for kind in ("local_linear", "softmax"):
  out = lla.attention(q[None], keys, affine, ridge=0.0, kind=kind)[0]
  print(f"affine targets, {kind} attention: max error {float(jnp.max(jnp.abs(out - exact))):.1e}")

# %%
x = jnp.linspace(0.0, 1.0, config.quadrature_points)  # population integrals by quadrature
h = np.array(config.bandwidths)


def interior(h, local_linear):  # m(x) = x^2, design density f(x) = 2x, at x = 0.5
  w = jnp.exp(-0.5 * ((x - 0.5) / h) ** 2) * 2.0 * x
  if local_linear:
    return lla.local_linear_weights(jnp.array([0.5]), x[:, None], w, 0.0) @ x ** 2 - 0.25
  return jnp.sum(w * x ** 2) / jnp.sum(w) - 0.25


boundary = {ll: np.array([float(lla.kernel_regression(jnp.zeros(1), x, x, b, local_linear=ll)[0])
                          for b in h]) for ll in (False, True)}  # m(x) = x, uniform design, at 0
inner = {ll: np.array([float(interior(b, ll)) for b in h]) for ll in (False, True)}
for i, b in enumerate(h):
  print(f"h={b:g}: boundary bias NW {boundary[False][i]:.5f} (theory "
        f"{float(theory.boundary_bias_constant(b)):.5f}), local linear {boundary[True][i]:.0e}; "
        f"interior NW {inner[False][i]:.2e} (leading order "
        f"{float(theory.interior_bias_constant(b, 1.0, 2.0, 1.0, 2.0)):.2e}), local linear "
        f"{inner[True][i]:.2e} (leading order {float(theory.interior_bias_linear(b, 2.0)):.2e})")


def sample_bias(k, b=0.05):  # one sample of uniform design points: the NW fit of m(x) = x at 0
  points = jax.random.uniform(k, (config.sample_size,))
  return lla.kernel_regression(jnp.zeros(1), points, points, b, local_linear=False)[0]


estimates = jax.lax.map(sample_bias, jax.random.split(jax.random.fold_in(key, 1),
                                                      config.sample_repeats))
print(f"sample level (n={config.sample_size}, {config.sample_repeats} draws), h=0.05: NW boundary bias "
      f"{float(jnp.mean(estimates)):.5f}, theory {float(theory.boundary_bias_constant(0.05)):.5f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].loglog(h, boundary[False], "o-", label="softmax / NW, boundary")
axes[0].loglog(h, theory.boundary_bias_constant(h), "k--", lw=1)
axes[0].loglog(h, inner[False], "s-", label="softmax / NW, interior")
axes[0].loglog(h, theory.interior_bias_constant(h, 1.0, 2.0, 1.0, 2.0), "k--", lw=1)
axes[0].loglog(h, inner[True], "^-", label="local linear, interior")
axes[0].loglog(h, theory.interior_bias_linear(h, 2.0), "k:", lw=1)
axes[0].set(xlabel="bandwidth h", ylabel="bias (local linear at the boundary: 0)",
            title="population bias; Fan (1992) dashed")
axes[0].legend(fontsize=7)
k_x, k_noise = jax.random.split(jax.random.fold_in(key, 2))
xs = jax.random.uniform(k_x, (400,))
ys = jnp.sin(3 * xs) + 0.1 * jax.random.normal(k_noise, (400,))
grid = jnp.linspace(0, 1, 200)
axes[1].plot(xs, ys, ".", color="0.7", ms=2)
axes[1].plot(grid, jnp.sin(3 * grid), "k--", lw=1, label="truth")
for local, label in ((False, "softmax / NW"), (True, "local linear")):
  axes[1].plot(grid, lla.kernel_regression(grid, xs, ys, 0.1, local_linear=local), label=label)
axes[1].set(title="test-time regression, h = 0.1", xlabel="x")
axes[1].legend(fontsize=7)
plt.show()
