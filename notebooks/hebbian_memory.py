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
# # Linear attention as a Hebbian associative memory
#
# After Qiao 2025 (arXiv:2508.08289), the "Pavlovian" view of linear attention; the statements in
# `theory/attention/hebbian.py` are derived there, not read from the paper. Storing $n$ pairs as
# $M = \sum_i v_i k_i^\top$ and reading $r_j = M k_j = \|k_j\|^2 v_j + \sum_{i\ne j}(k_i^\top k_j) v_i$
# gives a relative retrieval error $(n-1)/d_k$ for unit keys and $(n+1)/d_k$ for Gaussian keys,
# $(n-1)/(H d_k)$ when $H$ heads are averaged, $(1 + (n-1)/d_k)^L - 1$ for retrieval chained through
# $L$ memories, and a capacity at signal-to-noise ratio $\tau$ of $1 + d_k/\tau$ items: linear in
# $d_k$. Left: Monte Carlo errors (markers) against the closed forms (dashed). Middle: the error
# curve for $n = 1, 2, \dots$ at each key dimension, where it crosses $1/\tau$ is the capacity. Right:
# the capacity against $d_k$ with $1 + d_k/\tau$ dashed. (The study also checks the deterministic
# worst-case bound $\|\xi_j\| \le (n-1)\mu\max_i\|v_i\|$ in every trial; that is left out here.)

# %%
import jax

jax.config.update("jax_enable_x64", True)

import matplotlib.pyplot as plt
import numpy as np

from experiments.hebbian_memory import config as config_lib
from jaxlab import deep_linear as dl  # crossing_times
from jaxlab.attention_dynamics import hebbian
from theory.attention import hebbian as theory

config = config_lib.get_config("quick")
key = jax.random.key(config.seed)

# %%
forms = {"unit": theory.relative_error_unit_keys, "gaussian": theory.relative_error_gaussian_keys}
errors, worst_z = {}, 0.0
for i, (kind, n, d_k) in enumerate((kind, n, d_k) for kind in forms for n in config.item_counts
                                   for d_k in config.key_dims):
  mean, se = map(float, hebbian.monte_carlo_error(jax.random.fold_in(key, i), n, d_k,
                                                  config.value_dim, config.trials, kind))
  errors[kind, n, d_k] = mean
  worst_z = max(worst_z, abs(mean - forms[kind](n, d_k)) / se)
print(f"{len(errors)} (keys, n, d_k) cases: largest |Monte Carlo - closed form| = {worst_z:.1f} s.e.")

n, d_k = max(config.item_counts), max(config.key_dims)
for heads in config.heads:
  mean, se = hebbian.monte_carlo_error(jax.random.fold_in(key, 10_000 + heads), n, d_k,
                                       config.value_dim, config.trials, heads=heads)
  print(f"{heads} head(s), n={n}, d_k={d_k}: error {float(mean):.4f} +- {float(se):.4f}, "
        f"theory {theory.relative_error_heads(n, d_k, heads):.4f}")
for depth in config.depths:  # products of Gram matrices have heavy tails: more trials
  mean, se = hebbian.monte_carlo_chain_error(jax.random.fold_in(key, 40_000 + depth), n // 4,
                                             d_k // 4, depth, config.trials * config.depth_trial_factor)
  print(f"depth {depth} chain, n={n // 4}, d_k={d_k // 4}: error {float(mean):.4f} +- {float(se):.4f},"
        f" theory {theory.relative_error_chain(n // 4, d_k // 4, depth):.4f}")

# %%
curves, capacities = {}, {}
for d_k in config.capacity_key_dims:
  max_items = int(2 * d_k / config.snr) + 4
  curves[d_k] = np.asarray(hebbian.capacity_curve(jax.random.fold_in(key, 20_000 + d_k), d_k,
                                                  config.value_dim, max_items,
                                                  config.capacity_trials))
  # where the measured curve crosses 1 / snr (interpolated)
  capacities[d_k] = float(dl.crossing_times(np.arange(1, max_items + 1), curves[d_k][:, None],
                                            np.array([1.0 / config.snr]))[0])
dims = np.array(config.capacity_key_dims, float)
measured = np.array([capacities[d] for d in config.capacity_key_dims])
slope = np.polyfit(np.log(dims), np.log(measured - 1.0), 1)[0]
print(f"capacity at SNR {config.snr:g}: log-log slope of n* - 1 against d_k = {slope:.3f} (theory 1);",
      ", ".join(f"d_k={d:g}: {m:.2f} vs {1 + d / config.snr:g}" for d, m in zip(dims, measured)))

fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
colors = plt.cm.viridis(np.linspace(0, 0.85, len(config.key_dims)))
ns = np.array(config.item_counts)
grid = np.geomspace(ns.min(), ns.max(), 50)
for color, d_k in zip(colors, config.key_dims):
  for kind, marker in (("unit", "o"), ("gaussian", "s")):
    axes[0].loglog(ns, [errors[kind, n, d_k] for n in ns], marker, color=color,
                   label=f"{kind}, d_k={d_k}")
    axes[0].loglog(grid, forms[kind](grid, d_k), "--", color=color, lw=0.8)
axes[0].set_xticks(ns, [str(n) for n in ns])
axes[0].xaxis.set_minor_formatter(plt.NullFormatter())
axes[0].set(xlabel="stored associations n", ylabel="relative retrieval error",
            title="Monte Carlo vs (n - 1)/d_k, (n + 1)/d_k (dashed)")
axes[0].legend(fontsize=7)
for color, d_k in zip(plt.cm.viridis(np.linspace(0, 0.85, len(dims))), config.capacity_key_dims):
  items = np.arange(1, len(curves[d_k]) + 1)
  axes[1].plot(items, curves[d_k], color=color, lw=2, alpha=0.8, label=f"d_k={d_k}")
  axes[1].plot(items, theory.relative_error_unit_keys(items, d_k), "k--", lw=1)
axes[1].axhline(1.0 / config.snr, color="gray", lw=0.8)
axes[1].set(xlabel="stored associations n", ylabel="relative error (unit keys)",
            title=f"error curves; grey: 1/SNR = {1 / config.snr:g}")
axes[1].legend(fontsize=7)
axes[2].plot(dims, measured, "o-", label="measured")
axes[2].plot(dims, 1 + dims / config.snr, "k--", label="1 + d_k / SNR")
axes[2].set(xlabel="key dimension d_k", ylabel=f"capacity at SNR {config.snr:g}")
axes[2].legend(fontsize=8)
plt.show()
