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
# # JEPA vs MAE: deep self-distillation learns influential features first
#
# Littwin et al. 2024 (NeurIPS), "How JEPA avoids noisy features". Two views share features $i$ of
# variance $\lambda_i$ and regression coefficient $\rho_i$. From a balanced init with end-to-end encoder
# gain $\varepsilon$, each feature's encoder gain $\bar w_i = \|\bar W q_i\|$ follows its own ODE
# (`theory/lazy_rich/jepa.py`): JEPA $\dot u = \lambda u^{2L}(\rho - u)$, MAE
# $\dot u = \lambda u^L(\rho - u^{L+1})$ with $\bar w = u^L$, so JEPA's encoder converges to $\rho^L$
# and MAE's to $\rho^{L/(L+1)}$, with closed-form learning times. MAE learns in the order of
# $\lambda\rho$ at every depth; deep JEPA's order depends more steeply on $\rho$, so at depth 3 it
# learns the influential feature A ($\lambda = 1, \rho = 0.9$) before the noisy, highly covarying
# feature B ($\lambda = 3, \rho = 0.4$). Each panel: full-matrix gradient descent (solid) against the
# ODE (dashed), gains over their fixed points, for the quick config's depths 1 and 3.

# %%
import math

import jax

jax.config.update("jax_enable_x64", True)  # the ODE comparisons are at the 1e-3 level

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.jepa_vs_mae import config as config_lib
from jaxlab import core
from jaxlab import deep_linear as dl
from jaxlab.lazy_rich import jepa as jm
from theory.lazy_rich import jepa as theory

config = config_lib.get_config("quick")

# %%
views = jm.make_views(jax.random.key(config.seed), config.lambdas, config.rhos, config.n_samples)
lam, rho = jnp.asarray(config.lambdas), jnp.asarray(config.rhos)
runs = {}
for depth in config.depths:
  for objective in ("jepa", "mae"):
    lr = config.jepa_learning_rate if objective == "jepa" else config.mae_learning_rate
    # Run until theory puts every feature within `converged` of its fixed point, in log_rows rows.
    t_end = float(jnp.max(theory.learning_time(1.0 - config.converged, lam, rho, config.eps, depth,
                                               objective)))
    log_every = math.ceil(t_end / (lr * config.log_rows))
    cfg = jm.JepaConfig(len(config.lambdas), depth, config.width, objective)
    params = jm.init_balanced(jax.random.key(depth), cfg, views.Q, config.eps)
    optimizer = optax.sgd(lr)
    result = core.train(core.make_train_step(jm.loss_fn(cfg), optimizer),
                        core.init_train_state(params, optimizer, jax.random.key(0)),
                        (views.x, views.y), num_steps=config.log_rows * log_every,
                        log_every=log_every, progress=False,
                        eval_fn=lambda p, data: {"wbar": jm.feature_strengths(p, views.Q)})
    times, wbar_ode = theory.encoder_strength(lam, rho, config.eps, depth, objective,
                                              num_saves=config.log_rows, save_every=lr * log_every,
                                              substeps=max(20, math.ceil(lr * log_every / 0.05)))
    runs[depth, objective] = {
        "t": np.asarray(times), "wbar": np.array([row["wbar"] for row in result.history]),
        "ode": np.asarray(wbar_ode), "star": np.asarray(theory.fixed_point(rho, depth, objective)[1]),
        "half_theory": np.asarray(theory.half_time(lam, rho, config.eps, depth, objective))}

# %%
a, b = config.feature_names
for (depth, objective), r in runs.items():
  half = dl.crossing_times(r["t"], r["wbar"] / r["star"], np.full(len(r["star"]), 0.5))
  error = np.max(np.abs(r["wbar"] - r["ode"]) / r["star"])
  print(f"L={depth} {objective.upper():4s}: max |wbar - ode| / wbar* = {error:.1e}; half-time ratio "
        f"t_{a} / t_{b} = {half[0] / half[1]:.4f} (closed form "
        f"{r['half_theory'][0] / r['half_theory'][1]:.4f}); final wbar / fixed point - 1 = "
        f"{np.max(np.abs(r['wbar'][-1] / r['star'] - 1)):.1e}")

fig, axes = plt.subplots(2, len(config.depths), figsize=(4 * len(config.depths), 6), squeeze=False)
colors = plt.cm.viridis([0.0, 0.7])
for col, depth in enumerate(config.depths):
  for row, objective in enumerate(("jepa", "mae")):
    r, ax = runs[depth, objective], axes[row, col]
    for i, name in enumerate(config.feature_names):
      ax.plot(r["t"], r["wbar"][:, i] / r["star"][i], color=colors[i], lw=2, alpha=0.8,
              label=f"{name}: λ={config.lambdas[i]:g}, ρ={config.rhos[i]:g}")
      ax.plot(r["t"], r["ode"][:, i] / r["star"][i], "k--", lw=1)
    ax.set(title=f"{objective.upper()}, L = {depth}", xlabel="t = learning rate x steps",
           ylabel="|W q_i| / fixed point")
axes[0, 0].legend(fontsize=8)
fig.tight_layout()
plt.show()
