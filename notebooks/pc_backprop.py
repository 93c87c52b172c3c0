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
# # Predictive coding vs backprop, gradient by gradient
#
# Whittington & Bogacz 2017 (Neural Computation), sec. 2.3: relax the hidden nodes of a network on
# the energy $F = \tfrac12\sum_l \pi_l |x_l - \mu_l(x_{l-1})|^2$ (eq. 9), then take the local weight
# update $\partial F/\partial\theta$ (eq. 12). As the output precision $\pi_L \to 0$ and the nodes
# reach equilibrium, that update divided by $\pi_L$ becomes backprop's gradient; at $\pi_L = 1$ the
# equilibrium moves away from the feedforward pass and the last layer disagrees (the negative
# control). Z-IL (Song et al. 2020, Thm. 1) and the fixed-prediction assumption (Millidge, Tschantz
# & Buckley 2022, sec. 3) equal backprop exactly. For a *linear* network, the equilibrium has a
# closed form $z^* = (M^\top\Pi M)^{-1}M^\top\Pi c$ (`theory/predictive_coding.py`). Below, on a
# batch of 64 digits and a tanh MLP (quick config: 500 inference steps): left, $1 - \cos$(PC update,
# backprop) in the worst layer over inference steps, for each output precision (dashed: the
# $10^{-4}$ bound); middle, the norm ratio per layer after relaxation, against backprop's 1
# (dashed); right, the relaxed nodes of a linear network against the closed-form equilibrium (dashed
# diagonal).

# %%
import jax

jax.config.update("jax_enable_x64", True)  # Z-IL and the fixed-prediction assumption: 1e-10 checks

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.pc_backprop import config as config_lib
from experiments.pc_backprop import experiment
from jaxlab.predictive_coding import data as pc_data
from jaxlab.predictive_coding import inference as pci
from jaxlab.predictive_coding import network as pcn
from theory import predictive_coding as theory

# %matplotlib inline
# (importing an experiment module selects matplotlib's Agg backend; the line above restores inline)

config = config_lib.get_config("quick")

# %% [markdown]
# For each output precision, relax the nodes from the feedforward pass with SGD and measure, at
# every step, each layer's cosine and norm ratio between (PC update / $\pi_L$) and backprop's
# gradient (`alignment_trajectory` of the experiment, one `lax.scan`).

# %%
dataset = pc_data.digits(config.seed)
inputs = dataset.train_inputs[:config.batch_size].astype(jnp.float64)
targets = dataset.train_targets[:config.batch_size].astype(jnp.float64)
network = pcn.mlp(config.sizes, config.activation, "squared")
params = pcn.init(jax.random.key(config.seed), network, (config.sizes[0],))
trajectory = jax.jit(experiment.alignment_trajectory, static_argnums=(0, 6))
curves = {}
for gamma in config.output_precisions:
  cosines, ratios = trajectory(network, params, inputs, targets, gamma, config.node_learning_rate,
                               config.num_inference_steps)
  curves[gamma] = (np.asarray(cosines), np.asarray(ratios))
smallest, largest = min(config.output_precisions), max(config.output_precisions)
print(f"precision {smallest:g}: smallest cosine over layers = {curves[smallest][0][-1].min():.6f}, "
      f"largest |ratio - 1| = {np.abs(curves[smallest][1][-1] - 1).max():.1e}")
print(f"precision {largest:g} (control): last-layer cosine = {curves[largest][0][-1, -1]:.4f}")

# %%
backprop = jax.grad(lambda p: pcn.feedforward_loss(network, p, inputs, targets))(params)
gamma = 0.01
zil = pci.zero_divergence_gradients(network, params, inputs, targets, gamma)
fixed = pci.fixed_prediction_gradients(network, params, inputs, targets,
                                       pcn.precisions(network, gamma), pci.FIXED_PREDICTION_STEP,
                                       config.fixed_prediction_steps)[0]
flat = lambda tree: jnp.concatenate([leaf.ravel() for leaf in jax.tree.leaves(tree)])
for name, grads in (("Z-IL", zil), ("fixed prediction", fixed)):
  error = jnp.linalg.norm(flat(grads) / gamma - flat(backprop)) / jnp.linalg.norm(flat(backprop))
  print(f"{name} / precision vs backprop: relative error {float(error):.1e}")

# %% [markdown]
# The linear network: relax with plain gradient descent at 0.45 × the critical step
# $2/\lambda_{\max}(M^\top\Pi M)$ and compare with the closed-form equilibrium.

# %%
linear = pcn.mlp(config.linear_sizes, activation="linear")
k_p, k_x, k_y = jax.random.split(jax.random.key(config.seed + 1), 3)
lin_params = pcn.init(k_p, linear, (config.linear_sizes[0],))
x0 = jax.random.normal(k_x, (4, config.linear_sizes[0]))
y = jax.random.normal(k_y, (4, config.linear_sizes[-1]))
node_precisions = jnp.linspace(0.5, 2.0, linear.num_layers)
weights = [np.asarray(p["w"]).T for p in lin_params]  # theory uses column vectors: A = W^T
biases = [np.asarray(p["b"]) for p in lin_params]
critical = theory.critical_step_size(weights, np.asarray(node_precisions))
nodes, _ = pci.infer(linear, lin_params, x0, y, node_precisions, optax.sgd(0.45 * critical),
                     config.linear_inference_steps)
relaxed = np.concatenate([np.concatenate([np.asarray(n[i]) for n in nodes]) for i in range(4)])
closed = np.concatenate([np.concatenate(theory.linear_equilibrium(
    weights, biases, np.asarray(node_precisions), np.asarray(x0[i]), np.asarray(y[i])))
    for i in range(4)])
print(f"linear network: max |relaxed - closed form| = {np.abs(relaxed - closed).max():.1e}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
steps = np.arange(1, config.num_inference_steps + 1)
colors = plt.cm.viridis(np.linspace(0, 0.9, len(config.output_precisions)))
for gamma, color in zip(config.output_precisions, colors):
  cosines, ratios = curves[gamma]
  worst = np.nan_to_num(cosines[1:], nan=0.0).min(axis=1)  # 0/0 before the error reaches layer 1
  axes[0].loglog(steps, 1 - worst, color=color, label=f"precision {gamma:g}")
  axes[1].plot(np.arange(1, len(ratios[-1]) + 1), ratios[-1], "o-", color=color,
               label=f"precision {gamma:g}")
axes[0].axhline(1 - experiment.COSINE_BOUND, color="k", ls="--", lw=1)
axes[0].set(xlabel="inference steps", ylabel="1 - cosine(PC, backprop)", title="worst layer")
axes[0].legend(fontsize=7)
axes[1].axhline(1.0, color="k", ls="--", lw=1)
axes[1].set_xticks(np.arange(1, len(config.sizes)))
axes[1].set(xlabel="layer", ylabel="|PC update| / (precision |backprop|)",
            title=f"after {config.num_inference_steps} steps")
axes[1].legend(fontsize=7)
axes[2].plot(closed, relaxed, "o", ms=3)
lim = np.abs(closed).max() * 1.1
axes[2].plot([-lim, lim], [-lim, lim], "k--", lw=1)
axes[2].set(xlabel="closed-form equilibrium node", ylabel="relaxed node", title="linear network")
plt.tight_layout()
plt.show()
