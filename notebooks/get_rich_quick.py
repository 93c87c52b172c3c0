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
# # Get rich quick: lazy, rich and delayed-rich learning in a single neuron
#
# Kunin et al. 2024 (NeurIPS), "Get rich quick", sec. 3 and Fig. 3. The net $f(x) = a\,w^\top x$
# trained by gradient flow with layer learning rates conserves $\delta = \eta_w a^2 - \eta_a\|w\|^2$,
# and $\delta$ alone decides the regime: upstream ($\delta > 0$) stays lazy, balanced ($\delta = 0$)
# learns richly, downstream ($\delta < 0$) first stalls, then learns richly. `theory/lazy_rich/kunin.py`
# solves the flow exactly for every $\delta$ (the Riccati solution for $\nu = w^\top\beta_*/a$ plus two
# linear equations). Every net starts from the same function $\beta_0 = a w = (-1, 0)$ with target
# $\beta_* = (0, 1)$; only the split between the layers differs. Below: gradient descent with step
# $h = 10^{-3}$ (quick config) for each $\delta$, with the closed form dashed: the alignment
# $\phi = \cos(w, \beta_*)$, the kernel distance $S(0, t)$ of the $\eta$-weighted NTK (how far the
# network leaves its initial kernel), and the path in function space. The study also checks the closed
# form against RK4 of the flow and the $O(h)$ drift of $\delta$; those are left out here.

# %%
import jax

jax.config.update("jax_enable_x64", True)  # the closed forms are compared at the 1e-3 level and below

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.get_rich_quick import config as config_lib
from jaxlab import core
from jaxlab.lazy_rich import single_neuron as sn
from theory.lazy_rich import kunin as theory

config = config_lib.get_config("quick")

# %%
eta_a, eta_w = config.eta_a, config.eta_w
task = sn.make_task(config.beta_star, key=jax.random.key(config.seed))  # X^T X = I, beta_* = X^T y
deltas = np.asarray(config.deltas)
inits = [sn.init_from_function(jnp.asarray(config.beta0), d, eta_a, eta_w) for d in deltas]
num_steps = round(config.time / config.step_size)
optimizer = sn.layer_sgd(config.step_size, eta_a, eta_w)  # step h * eta on each layer
step_fn = core.make_train_step(sn.loss, optimizer)
eval_fn = lambda p, data: {**sn.observables(p, task.beta_star, eta_a, eta_w), "a": p["a"],
                           "w": p["w"]}
sim = {name: [] for name in ("mu", "phi", "a", "w")}
for params0 in inits:
  state = core.init_train_state(params0, optimizer, jax.random.key(config.seed))
  result = core.train(step_fn, state, (task.x, task.y), num_steps=num_steps,
                      log_every=config.log_every, eval_fn=eval_fn, progress=False)
  for name in sim:
    sim[name].append([row[name] for row in result.history])
sim = {name: np.array(v) for name, v in sim.items()}
t = np.array([row["step"] for row in result.history]) * config.step_size
kernel_distance = jax.jit(jax.vmap(  # S(0, t) of the eta-weighted empirical NTK, over logged times
    lambda p0, a, w: sn.kernel_distance_from_init(p0, {"a": a, "w": w}, task.x, eta_a, eta_w),
    in_axes=(None, 0, 0)))
sim["S"] = np.array([kernel_distance(p0, sim["a"][i], sim["w"][i]) for i, p0 in enumerate(inits)])

# %%
closed = [theory.closed_form(t, p0["a"], p0["w"], task.beta_star, eta_a, eta_w) for p0 in inits]
th = {name: np.array([getattr(c, name) for c in closed]) for name in ("mu", "phi", "a", "w")}
th["S"] = np.array([theory.kernel_distance_from_init(jnp.asarray(config.beta0),
                                                     c.a[:, None] * c.w, d, eta_a, eta_w)
                    for c, d in zip(closed, deltas)])
for name in ("mu", "phi"):
  rel = np.max(np.abs(sim[name] - th[name]), axis=1) / np.max(np.abs(th[name]), axis=1)
  print(f"GD vs closed form, max over delta and t of |{name} - theory| / max|theory| = {rel.max():.1e}")
print(f"max |S(0,t) - theory| = {np.max(np.abs(sim['S'] - th['S'])):.1e}")
print("S(0, T) per delta:", ", ".join(f"{d:+g}: {s:.3f}" for d, s in zip(deltas, sim["S"][:, -1])),
      "(decreasing in delta: upstream lazy)")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
colors = plt.cm.viridis(np.linspace(0, 0.85, len(deltas)))
for i, (d, color) in enumerate(zip(deltas, colors)):
  for ax, name in zip(axes[:2], ("phi", "S")):
    ax.plot(t, sim[name][i], color=color, lw=2, alpha=0.8, label=f"delta={d:+g}")
    ax.plot(t, th[name][i], "k--", lw=1)
  beta_sim, beta_th = sim["a"][i][:, None] * sim["w"][i], th["a"][i][:, None] * th["w"][i]
  axes[2].plot(*np.concatenate([[config.beta0], beta_sim]).T, color=color, lw=2, alpha=0.8)
  axes[2].plot(*np.concatenate([[config.beta0], beta_th]).T, "k--", lw=1)
axes[0].set(xlabel="time t = step * h", title="alignment phi = cos(w, beta*)")
axes[1].set(xlabel="time t = step * h", title="kernel distance S(0, t); exact flow dashed")
axes[2].plot(*config.beta_star, "r*", ms=12)
axes[2].set(xlabel="beta_1", ylabel="beta_2", title="function space beta = a w", aspect="equal")
axes[0].legend(fontsize=7)
plt.show()
