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
# # Transformers learn in context by gradient descent
#
# von Oswald et al. 2023 (ICML), sec. 2 and Proposition 1. On in-context linear regression
# ($y_i = w^\top x_i$, $N$ context pairs, a query $x_q$), one step of gradient descent from 0 on the
# mean in-context loss with step $\eta$ has expected loss
# $\mathcal L(\eta) = \frac d2[1 - 2\eta + \eta^2 (N + d + 1)/N]$ (`theory/attention/icl_gd.py`), minimised
# at $\eta^* = N/(N + d + 1)$ with $\mathcal L^* = d(d+1)/(2(N + d + 1))$; a single linear self-attention
# (LSA) layer can do no better, and $K$ LSA layers can be set by hand to run $K$ GD steps exactly
# (Prop. 1). Below, an LSA layer trained with Adam on fresh tasks (quick config: $d = 5$, $N = 10$)
# learns the scalar preconditioner $\Gamma = \eta^* I$. Left: training loss, with $\mathcal L^*$ dashed.
# Middle: the learned step $\mathrm{tr}\,\Gamma/d$, with $\eta^*$ dashed. Right: one GD step of each size
# on held-out tasks against the closed-form parabola, and the trained layer (star).

# %%
import functools

import jax

jax.config.update("jax_enable_x64", True)  # the construction is checked against plain GD to 1e-10

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.icl_gd import config as config_lib
from jaxlab import core
from jaxlab.attention_dynamics import icl_gd
from theory.attention import icl_gd as theory

config = config_lib.get_config("quick")
d, n = config.input_dim, config.context_len
k_construct, k_init, k_train, k_eval = jax.random.split(jax.random.key(config.seed), 4)

# %% [markdown]
# Proposition 1: $K$ constructed LSA layers against $K$ steps of plain GD (autodiff), from a random
# $W_0$, on a batch of tasks.

# %%
k_tasks, k_w0 = jax.random.split(k_construct)
tasks = icl_gd.sample_tasks(k_tasks, 64, n, d)
w0 = jax.random.normal(k_w0, (d,))
eta, layers = config.construction_step_size, config.construction_layers
constructed = icl_gd.gd_construction(d, n, eta, layers, w0)
lsa = jax.vmap(lambda x, y, xq: icl_gd.lsa_predict(constructed, x, y, xq, w0))
gd = jax.vmap(lambda x, y, xq: icl_gd.gd_predict(x, y, xq, eta, layers, w0))
error = jnp.max(jnp.abs(lsa(tasks["x"], tasks["y"], tasks["xq"]) - gd(tasks["x"], tasks["y"], tasks["xq"])))
print(f"{layers} constructed layers vs {layers} GD steps: max |difference| = {float(error):.1e}")

# %%
optimizer = optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.num_steps,
                                                   alpha=config.final_lr_fraction))
state = core.init_train_state(icl_gd.init(k_init, d, 1, config.init_scale), optimizer, k_train)
result = core.train(
    core.make_train_step(icl_gd.lsa_loss, optimizer), state, None, num_steps=config.num_steps,
    log_every=config.log_every,
    batch_fn=lambda data, key: icl_gd.sample_tasks(key, config.batch_size, n, d),  # fresh tasks
    eval_fn=lambda p, data: {"step_size": icl_gd.effective_step_size(p, n)}, progress=False)
params = result.state.params
history = {name: np.array([row[name] for row in result.history])
           for name in ("step", "loss", "step_size")}

# %%
eta_star, loss_star = theory.optimal_step_size(n, d), theory.optimal_loss(n, d)
held_out = icl_gd.sample_tasks(k_eval, config.eval_tasks, n, d)
lsa_loss = float(jnp.mean(0.5 * (icl_gd.batch_predict(params, held_out) - held_out["yq"]) ** 2))
step_sizes = np.linspace(0.0, 2.0 * eta_star, 21)
one_step = jax.vmap(theory.gd_one_step_predict, in_axes=(0, 0, 0, None))
gd_losses = np.array([jnp.mean(0.5 * (one_step(held_out["x"], held_out["y"],
                                               held_out["xq"][:, None, :], s)[:, 0]
                                      - held_out["yq"]) ** 2) for s in step_sizes])
learned = float(icl_gd.effective_step_size(params, n))
print(f"learned step tr(Gamma)/d = {learned:.4f}, theory N/(N+d+1) = {eta_star:.4f}; "
      f"off-diagonal / diagonal = {float(icl_gd.off_diagonal_ratio(params, n)):.3f}")
print(f"held-out loss of the trained LSA = {lsa_loss:.4f}, optimal one-step loss = {loss_star:.4f}")

fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
axes[0].semilogy(history["step"], history["loss"], label="trained LSA (training batches)")
axes[0].axhline(loss_star, color="k", ls="--", lw=1, label="optimal one-step GD loss")
axes[0].axhline(theory.zero_predictor_loss(d), color="gray", ls=":", lw=1, label="zero predictor")
axes[0].set(xlabel="training step", title=f"loss (N={n}, d={d})")
axes[0].legend(fontsize=7)
axes[1].plot(history["step"], history["step_size"], color="C1", lw=2, label="tr(Gamma)/d")
axes[1].axhline(eta_star, color="k", ls="--", lw=1, label="N/(N+d+1)")
axes[1].set(xlabel="training step", title="learned step size")
axes[1].legend(fontsize=7)
fine = np.linspace(0.0, 2.0 * eta_star, 200)
axes[2].plot(step_sizes, gd_losses, "o", color="C2", ms=4, label="one GD step, held-out tasks")
axes[2].plot(fine, np.asarray(theory.one_step_loss(fine, n, d)), "k--", lw=1, label="closed form")
axes[2].plot([learned], [lsa_loss], "*", color="C1", ms=12, label="trained LSA")
axes[2].set(xlabel="step size eta", title="one-step loss vs step size")
axes[2].legend(fontsize=7)
plt.show()
