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
# # Critical learning periods in deep linear networks
#
# Kleinman, Achille & Soatto 2024 (ICLR). Two depth-$D$ linear pathways $a$ and $b$ add their outputs;
# pathway $b$ is frozen for 500 steps (a "deficit") while its output still enters the loss. With a
# whitened task and a balanced decoupled start each mode's strength $K_p = p^D$ follows
# $\dot K_p = \eta D K_p^{2-2/D}(s - K_a - K_b)$ (their eq. 3; `theory/lazy_rich/kleinman.py` also gives
# the exact per-mode recursion of gradient descent). After the deficit $K_a - K_b$ is invariant at
# $D = 1$, $K_a/K_b$ at $D = 2$, and at $D \ge 3$ the pathway ahead takes more: an early deficit is
# permanent for $D \ge 2$, and sharper with depth; the same deficit after learning does nothing. First
# three panels: $K_a$ (solid) and $K_b$ (dash-dot) for each mode after an early deficit (grey), the
# gradient-flow ODE dashed. Last panel (their sec. 4): deep linear matrix completion, trained first for
# $T_c$ steps on a higher-rank "deficit" matrix observed on the same entries, then on the target; the
# test error on unobserved entries is hurt only at depth $> 1$.

# %%
import dataclasses

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.critical_periods import config as config_lib
from jaxlab import core
from jaxlab import deep_linear as dl
from jaxlab.lazy_rich import critical_periods as cp
from theory.lazy_rich import kleinman as theory

config = config_lib.get_config("quick")

# %%
task = dl.make_task(jax.random.key(config.seed), config.width, config.width, config.singular_values)
s, r = np.asarray(task.s), len(task.s)


def pathway_run(depth, deficit_start):
  p0 = jnp.full(r, config.layer_weight0)
  key = jax.random.fold_in(jax.random.key(config.seed), depth)
  params = cp.init_pathways(task.U, task.V, p0, p0, depth, config.width, key=key)
  frozen = {"a": [False] * depth, "b": [True] * depth}  # pathway b's layers stop during the deficit
  optimizer = optax.chain(optax.sgd(config.learning_rate),
                          cp.freeze_during(deficit_start, config.deficit_length, frozen))
  result = core.train(core.make_train_step(cp.loss, optimizer),
                      core.init_train_state(params, optimizer, key), (task.x, task.y),
                      num_steps=config.num_steps, log_every=config.log_every, progress=False,
                      eval_fn=lambda p, d: cp.mode_strengths(p, task.U, task.V, r))
  rows = result.history
  return {name: np.array([row[name] for row in rows]) for name in ("step", "K_a", "K_b")}


def theory_curves(depth, deficit_start, num_saves):
  window = dict(depth=depth, learning_rate=config.learning_rate, deficit_start=deficit_start,
                deficit_length=config.deficit_length)
  _, gd_a, gd_b = theory.pathway_gd(task.s, config.layer_weight0, config.layer_weight0,
                                    num_steps=config.num_steps, save_every=config.log_every, **window)
  _, flow_a, flow_b = theory.pathway_flow(task.s, config.layer_weight0 ** depth,
                                          config.layer_weight0 ** depth,
                                          duration=float(config.num_steps), num_saves=num_saves,
                                          **window)
  return map(np.asarray, (gd_a, gd_b, flow_a, flow_b))


early, late = {}, {}
for depth in config.depths:
  early[depth] = run = pathway_run(depth, config.early_deficit_start)
  gd_a, gd_b, run["flow_a"], run["flow_b"] = theory_curves(depth, config.early_deficit_start,
                                                           len(run["step"]))
  exact = max(np.abs(run["K_a"] - gd_a).max(), np.abs(run["K_b"] - gd_b).max())
  flow = max((np.abs(run["K_a"] - run["flow_a"]) / s).max(), (np.abs(run["K_b"] - run["flow_b"]) / s).max())
  late[depth] = pathway_run(depth, config.late_deficit_start)
  share = lambda run: run["K_b"][-1, 0] / (run["K_a"][-1, 0] + run["K_b"][-1, 0])
  print(f"D={depth}: |K - recursion| = {exact:.1e}, |K - flow| / s = {flow:.1e}; pathway b's share "
        f"of the top mode: early deficit {share(run):.4f}, late deficit {share(late[depth]):.4f}")

# %%
c = config.completion
ctask = cp.completion_task(jax.random.fold_in(jax.random.key(config.seed), 7), c.size, c.rank,
                           c.deficit_rank, c.observed)
ctask = cp.CompletionTask(*(jnp.asarray(a, jnp.float32) for a in ctask))  # float32, as the study
optimizer = optax.sgd(c.learning_rate)
step = core.make_train_step(cp.completion_loss, optimizer)
test_mse = {}
for depth in c.depths:
  for t_c in c.deficit_steps:
    params = cp.completion_init(jax.random.fold_in(jax.random.key(config.seed), 100 + depth), c.size,
                                depth, c.init_scale)
    state = core.init_train_state(jax.tree.map(lambda w: w.astype(jnp.float32), params), optimizer,
                                  jax.random.key(config.seed))
    if t_c:  # the deficit phase: a higher-rank matrix on the same observed entries
      state = core.train(step, state, (ctask.deficit, ctask.observed), num_steps=t_c,
                         log_every=t_c, progress=False).state
    state = dataclasses.replace(state, step=jnp.zeros((), jnp.int32))
    state = core.train(step, state, (ctask.target, ctask.observed), num_steps=c.target_steps,
                       log_every=c.target_steps, progress=False).state
    test_mse[depth, t_c] = float(cp.completion_test_mse(state.params, ctask))
longest = max(c.deficit_steps)
for depth in c.depths:
  print(f"completion D={depth}: test MSE {test_mse[depth, 0]:.2e} without deficit, "
        f"{test_mse[depth, longest]:.2e} after T_c={longest} "
        f"(ratio {test_mse[depth, longest] / test_mse[depth, 0]:.3g})")

# %%
fig, axes = plt.subplots(1, len(config.depths) + 1, figsize=(4 * len(config.depths) + 4, 3.4))
colors = plt.cm.viridis(np.linspace(0, 0.85, r))
for ax, depth in zip(axes, config.depths):
  run, t = early[depth], early[depth]["step"] * config.learning_rate
  for i in range(r):
    ax.plot(t, run["K_a"][:, i], color=colors[i], lw=2, alpha=0.8, label=f"s={s[i]:g}")
    ax.plot(t, run["K_b"][:, i], color=colors[i], lw=1, ls="-.")
    ax.plot(t, run["flow_a"][:, i], "k--", lw=1)
    ax.plot(t, run["flow_b"][:, i], "k--", lw=1)
  start = config.early_deficit_start * config.learning_rate
  ax.axvspan(start, start + config.deficit_length * config.learning_rate, color="0.85")
  ax.set(title=f"D={depth}", xlabel="t = eta k  (grey: b frozen)")
axes[0].set_ylabel("K_a (solid), K_b (dash-dot); flow dashed")
axes[0].legend(fontsize=7)
for color, depth in zip(plt.cm.viridis(np.linspace(0, 0.85, len(c.depths))), c.depths):
  axes[-1].semilogy(c.deficit_steps, [test_mse[depth, t] for t in c.deficit_steps], "o-",
                    color=color, label=f"depth {depth}")
axes[-1].set(xlabel="deficit steps T_c", ylabel="test MSE (unobserved)", title="matrix completion")
axes[-1].legend(fontsize=8)
fig.tight_layout()
plt.show()
