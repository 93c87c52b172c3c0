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
# # The lazy limit: a scaled network follows its tangent model
#
# Chizat, Oyallon & Bach 2019 (Thm. 2.3). The centered model $f_\alpha(w,x) = \alpha\,(h(w,x) -
# h(w_0,x))$ trained with step $\eta/\alpha^2$ approaches kernel gradient descent with the initial
# tangent kernel $K = J J^\top$, $r_{k+1} = (I - \eta c K)\, r_k$, and the gap to that limit is
# $O(1/\alpha)$; the weights move by $\|w - w_0\| = C/\alpha$ with $C$ computed from $K$ alone
# (`theory/lazy_rich/chizat.py`). Below: a width-50 tanh student on a ReLU teacher, one run per
# $\alpha$ of the quick config from the same initial weights. Left: the function gap and the relative
# weight change at $T = \eta k = 100$ against $\alpha$, with the lazy limit $C/\alpha$ dashed. Right:
# $\alpha\,\|w - w_0\|/\|w_0\|$ over time for each $\alpha$ against its limit (dashed): small $\alpha$
# (the rich side) moves its weights by $O(1)$ and leaves the kernel regime.

# %%
import jax

jax.config.update("jax_enable_x64", True)  # gaps down to ~1e-4 relative are measured

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.lazy_limit import config as config_lib
from experiments.lazy_limit import experiment  # the study's problem: data, teacher, student
from jaxlab import core
from jaxlab import lazy_rich as lr
from theory.lazy_rich import chizat as theory

# %matplotlib inline
# (importing an experiment module selects matplotlib's Agg backend; the line above restores inline)

config = config_lib.get_config("quick")

# %% [markdown]
# Inputs on the sphere of radius $\sqrt d$, a 3-unit ReLU teacher, and the student's initial weights
# $w_0$. The lazy limit needs only the empirical NTK of the student at $w_0$.

# %%
x, y, x_test, y_test, params0 = experiment.make_problem(config)
h0 = experiment.student(params0, x)
k = lr.empirical_ntk(experiment.student, params0, x)
k_test = lr.empirical_ntk(experiment.student, params0, x_test, x)
num_saves = config.num_steps // config.log_every
f_lazy, f_lazy_test, displacement = map(np.asarray, theory.lazy_limit(
    k, k_test, y, step=config.learning_rate / config.n_train, steps=config.num_steps,
    num_saves=num_saves))
w0_norm = float(lr.parameter_norm(params0))
limit = displacement / w0_norm  # alpha * |w - w0| / |w0| in the lazy limit

# %%
# Loss 1/(2n) |alpha (h(w) - h(w0)) - y|^2 (the study's `centered_loss`, alpha carried in the batch),
# plain gradient descent with step eta / alpha^2, the same w0 for every alpha.
gap, change = {}, {}
for alpha in config.alphas:
  optimizer = optax.sgd(lr.lazy_learning_rate(config.learning_rate, alpha))
  step_fn = core.make_train_step(experiment.centered_loss, optimizer)
  state = core.init_train_state(params0, optimizer, jax.random.key(config.seed))
  eval_fn = lambda p, data, a=alpha: {"f": a * (experiment.student(p, x) - h0),
                                      "change": lr.relative_weight_change(params0, p)}
  result = core.train(step_fn, state, (x, y, jnp.asarray(alpha), h0),
                      num_steps=config.num_steps, log_every=config.log_every,
                      eval_fn=eval_fn, progress=False)
  f = np.array([row["f"] for row in result.history])
  gap[alpha] = np.linalg.norm(f - f_lazy, axis=1) / np.linalg.norm(f_lazy, axis=1)
  change[alpha] = np.array([row["change"] for row in result.history])
steps = np.array([row["step"] for row in result.history])

# %%
alphas = np.array(config.alphas)
fit = alphas[alphas >= config.slope_min_alpha]
for name, values in (("function gap", gap), ("relative weight change", change)):
  slope = float(theory.log_log_slope(fit, [values[a][-1] for a in fit]))
  print(f"log-log slope of the {name} vs alpha (alpha >= {config.slope_min_alpha:g}): "
        f"{slope:.3f} (theory -1)")
a = alphas[-1]
print(f"alpha={a:g}: alpha |w - w0| / |w0| = {a * change[a][-1]:.4f}, lazy limit {limit[-1]:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].loglog(alphas, [gap[a][-1] for a in alphas], "o-", label="|f - f_lazy| / |f_lazy|")
axes[0].loglog(alphas, [change[a][-1] for a in alphas], "s-", label="|w - w0| / |w0|")
axes[0].loglog(alphas, limit[-1] / alphas, "k--", lw=1, label="lazy limit C / alpha")
axes[0].set(xlabel="output scale alpha", title=f"at T = {config.learning_rate * config.num_steps:g}")
axes[0].legend(fontsize=8)
t = steps * config.learning_rate
for color, a in zip(plt.cm.viridis(np.linspace(0, 0.85, len(alphas))), alphas):
  axes[1].plot(t, a * change[a], color=color, label=f"alpha={a:g}")
axes[1].plot(t, limit, "k--", lw=1, label="lazy limit")
axes[1].set(xlabel="time t = eta k", ylabel="alpha |w - w0| / |w0|",
            title="simulation (solid) vs lazy limit (dashed)")
axes[1].legend(fontsize=7)
plt.show()
