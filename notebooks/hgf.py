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
# # Hierarchical Gaussian filters
#
# Mathys et al. 2011 (Front. Hum. Neurosci. 5:39) and 2014, with the eHGF update order of Weber et
# al. 2024. Each level is a Gaussian random walk whose step variance
# $e^{\kappa\mu_{j+1} + \omega_j}$ is set by the level above; one trial updates the levels bottom-up
# with precision-weighted prediction errors. `theory/hgf.py` derives one trial in closed form (its
# derivations 1-3), and for $\kappa = 0$ the first level of the continuous HGF is a Kalman filter:
# its precision goes to $p^* = \pi_u/2 + \sqrt{\pi_u^2/4 + \pi_u e^{-\omega_1}}$ with the error
# shrinking by $(1 - K^*)^2$ per trial, $K^* = \pi_u/p^*$ (derivation 4), and its surprises sum to
# the exact Gaussian random-walk negative log-likelihood (derivation 5). Below, the quick config:
# the one-step updates against the closed forms, then the filters in volatile environments. Left: a
# binary HGF tracking a reversing probability; middle: the continuous HGF's learning rate
# $\pi_u/\pi_1$ rises when the walk turns volatile, while the $\kappa = 0$ Kalman gain sits at $K^*$
# (dashed); right: $|\pi_1 - p^*|/p^*$ against the rate $(1 - K^*)^2$ (dashed).

# %%
import jax

jax.config.update("jax_enable_x64", True)  # the one-step updates are checked to 1e-10

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.hgf import config as config_lib
from experiments.hgf import experiment
from jaxlab.predictive_coding import hgf
from theory import hgf as theory

# %matplotlib inline
# (importing an experiment module selects matplotlib's Agg backend; the line above restores inline)

config = config_lib.get_config("quick")

# %% [markdown]
# One trial from random previous posteriors, parameters and inputs (3 levels, both orders), jaxlab
# against `theory/hgf.py` (`one_step_check` of the experiment; setting 0 of the binary HGF is the
# hand-derived trial from $\mu = 0$, $\pi = 1$, $\omega = 0$, $\kappa = 1$, $u = 1$).

# %%
rng = np.random.default_rng(config.seed)
for kind in ("binary", "continuous"):
  check = experiment.one_step_check(rng, kind, 3, config.one_step_settings)
  print(f"{kind}: max relative error vs theory {check['max_error']:.1e}, order gap error "
        f"{check['order_gap_error']:.1e}")
  if kind == "binary":
    hand = max(abs(check["hand"][name] - exact) for name, exact in experiment.HAND_DERIVED)
    print(f"  hand-derived trial (pi_2 = 3/4, mu_2 = 2/3, ...): max |jaxlab - exact| {hand:.1e}")

# %% [markdown]
# The environments: binary observations whose probability reverses every 20 trials between two
# stable phases, and a Gaussian random walk whose log step variance jumps from −4 to −2.

# %%
probabilities, lengths, volatile = hgf.stable_volatile_schedule(
    config.stable_trials, config.block_length, config.num_blocks, config.p_high, 1 - config.p_high)
k_binary, k_walk = jax.random.split(jax.random.key(config.seed))
u_bin, p_true = jax.jit(lambda k: hgf.volatile_binary_sequence(k, probabilities, lengths,
                                                                config.sequences))(k_binary)
t = config.walk_trials
u_walk, x_walk = jax.jit(lambda k: hgf.volatile_gaussian_walk(
    k, config.walk_log_step_variances, [t, t], config.pi_u, config.sequences))(k_walk)

binary_params = hgf.binary_params(3, config.binary_omega, config.binary_kappa, config.binary_mu0,
                                  config.binary_pi0)
walk_params = hgf.continuous_params(2, config.continuous_omega, config.pi_u,
                                    config.continuous_kappa, mu0=0.0, pi0=1.0)
walk_control = walk_params._replace(kappa=jnp.zeros_like(walk_params.kappa))  # a Kalman filter
binary = {order: hgf.binary_hgf(binary_params, u_bin[0], order) for order in hgf.ORDERS}
walk = {order: experiment.run_each(hgf.continuous_hgf, walk_params, u_walk, order,
                                   batched_params=False) for order in hgf.ORDERS}
kalman = experiment.run_each(hgf.continuous_hgf, walk_control, u_walk, batched_params=False)

stable = slice(config.burn_in, t)
for order in hgf.ORDERS:
  ratio = experiment.phase_ratio(walk[order].learning_rate, slice(t, 2 * t), stable)
  print(f"continuous HGF, {order}: learning rate volatile / stable, min over "
        f"{config.sequences} sequences = {ratio.min():.2f} (the study asks >= "
        f"{config.min_learning_rate_ratio})")

# %%
omega, pi_u = config.continuous_omega[0], config.pi_u
p_star = theory.steady_state_precision(pi_u, omega)
contraction = theory.steady_state_contraction(pi_u, omega)
pi_1 = np.asarray(kalman.pi[0, :, 0])
nll = theory.random_walk_negative_log_likelihood(np.asarray(u_walk[0]), 0.0, 1.0, omega, pi_u)
print(f"kappa = 0: pi_1 after {pi_1.size} trials = {pi_1[-1]:.10f}, fixed point p* = {p_star:.10f}")
err = pi_1 - p_star
near = np.flatnonzero((np.abs(err[:-1]) < 1e-4 * p_star) & (np.abs(err[:-1]) > 1e-9 * p_star))
measured = np.median(err[near + 1] / err[near])  # linear regime, above round-off
print(f"kappa = 0: error contraction per trial {measured:.6f}, theory (1 - K*)^2 = "
      f"{contraction:.6f}")
print(f"kappa = 0: sum of surprises = {float(kalman.surprise[0].sum()):.8f}, exact random-walk NLL "
      f"= {nll:.8f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
trials = np.arange(u_bin.shape[1])
axes[0].axvspan(volatile.start, volatile.stop, color="0.92")
axes[0].plot(trials, np.asarray(u_bin[0]) * 1.04 - 0.02, "|", color="0.5", ms=3)
axes[0].plot(trials, p_true, "k-", lw=0.8, label="true p")
for order in hgf.ORDERS:
  axes[0].plot(trials, jax.nn.sigmoid(binary[order].mu[:, 0]), label=f"s(mu_2), {order}")
axes[0].set(xlabel="trial", ylabel="probability", title="binary HGF (shaded: reversals)")
axes[0].legend(fontsize=7)
trials = np.arange(2 * t)
axes[1].axvspan(t, 2 * t, color="0.92")
for order in hgf.ORDERS:
  axes[1].plot(trials, walk[order].learning_rate[0], label=order)
axes[1].plot(trials, kalman.learning_rate[0], color="0.4", label="kappa = 0 (Kalman)")
axes[1].axhline(pi_u / p_star, color="k", ls="--", lw=1, label="K* = pi_u / p*")
axes[1].set(xlabel="trial", ylabel="learning rate pi_u / pi_1",
            title="continuous HGF (shaded: volatile)")
axes[1].legend(fontsize=7)
err = np.abs(pi_1 - p_star) / p_star
k = np.arange(1, np.argmax(err < 1e-13) + 1)  # until round-off
k0 = int(np.argmax(err < 1e-6))  # anchor the rate where the error is already small (linear regime)
axes[2].semilogy(k, err[k - 1], label="|pi_1 - p*| / p*, kappa = 0")
axes[2].semilogy(k, err[k0] * contraction ** (k - 1.0 - k0), "k--", lw=1, label="(1 - K*)^2 rate")
axes[2].set(xlabel="trial", title="Kalman precision to its fixed point")
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()
