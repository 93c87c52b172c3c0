# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # An RNN driven by noise emulates a hidden Markov model
#
# Torre, Viscione, Pompe, Grewe & Mante 2025 (NeurIPS; arXiv 2510.25674), sec. 2-3. A vanilla RNN
# receives only Gaussian noise and emits a symbol per step (straight-through Gumbel); it is trained
# so that batches of its sequences match batches of an HMM's under the debiased Sinkhorn divergence.
# Nothing tells it the HMM's statistics, yet a trained network reproduces the closed forms of
# `theory/hmm.py`: the output marginal $\pi E$, the repeat probabilities
# $P(y' = a \mid y = a) = B_{aa}/(\pi E)_a$ with $B = E^\top \mathrm{diag}(\pi) A E$, and the law of
# the number of output changes per sequence (a forward recursion; mean
# $(T - 1)(1 - \mathrm{tr} B)$). Below, the quick config (the two-state chain "two", $T = 30$, 150
# hidden units, 1000 Adam steps at batch 512; about 3 minutes on 2 CPU cores). Left: the loss falls
# to the noise floor (two independent HMM batches), far below a time-shuffled control; middle:
# repeat probabilities, RNN against the closed form; right: output changes per sequence, RNN
# histogram against the exact law (dashed). Left out: the reverse engineering of the trained network
# (orbits, fixed point, kick neurons in `experiments/hmm_emulation/mechanism.py`); the whole study
# runs with
# `python -m experiments.hmm_emulation.main --config=experiments/hmm_emulation/config.py:quick --workdir=/tmp/x`.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.hmm_emulation import config as config_lib
from experiments.hmm_emulation import experiment
from jaxlab import core
from jaxlab.hmm_rnn import analysis, emulation, model, planted, statistics
from jaxlab.hmm_rnn import hmm as hmm_lib
from theory import hmm as theory

config = config_lib.get_config("quick")
name = config.hmms[0]
hmm = hmm_lib.by_name(name)
num_symbols = hmm.emission.shape[1]
sinkhorn = experiment.sinkhorn_config(config)
key = jax.random.fold_in(jax.random.key(config.seed), 1000)

# %% [markdown]
# The closed forms (stationary start), and the loss's floor: the divergence between two independent
# HMM batches, and between an HMM batch and a time-shuffled one.

# %%
transition, emission = np.asarray(hmm.transition), np.asarray(hmm.emission)
stationary = theory.stationary_distribution(transition)
exact_marginal = theory.output_marginal(stationary, emission)
exact_repeat = theory.repeat_probabilities(stationary, transition, emission)
exact_law = theory.changes_distribution(stationary, transition, emission, config.length)
exact_changes = theory.expected_changes(stationary, transition, emission, config.length)
floor = emulation.noise_floor(key, hmm, config.batch_size, config.length, config.floor_repeats,
                              sinkhorn)
print(f"noise floor {floor.noise_floor_mean:.3f} +- {floor.noise_floor_std:.3f}, time-shuffled "
      f"control {floor.shuffled_mean:.3f}")

# %%
optimizer = experiment.make_optimizer(config)  # Adam, clipped, cosine-decayed learning rate
k_init = jax.random.key(config.seed)
params = model.init(k_init, config.hidden_size, config.input_dim, num_symbols)
state = core.init_train_state(params, optimizer, jax.random.fold_in(k_init, 1))
loss = emulation.make_loss(config.batch_size, config.length,
                           initial_state_std=config.initial_state_std, burn_in=config.burn_in,
                           sinkhorn=sinkhorn)
result = core.train(
    core.make_train_step(loss, optimizer), state,
    emulation.EmulationTask(hmm, jnp.asarray(config.noise_std)),
    num_steps=config.num_steps, log_every=config.log_every, progress=False,
    batch_fn=lambda data, k: emulation.hmm_batches(data, k, config.batch_size, config.length))
params = result.state.params
steps = np.array([row["step"] for row in result.history])
losses = np.array([row["loss"] for row in result.history])

# %% [markdown]
# The trained network: the divergence on fresh batches, and the statistics of 20 000 of its
# sequences.

# %%
emit = lambda k, n: model.emit(params, k, n, config.length, noise_std=config.noise_std,
                               initial_state_std=config.initial_state_std, burn_in=config.burn_in)


@jax.jit
def divergence(k):
  k_rnn, k_hmm = jax.random.split(k)
  data = jax.nn.one_hot(hmm_lib.sample(k_hmm, hmm, config.batch_size, config.length)[1],
                        num_symbols)
  return emulation.sequence_divergence(emit(k_rnn, config.batch_size).symbols, data, sinkhorn)


k_div, k_rnn = jax.random.split(jax.random.fold_in(key, 7))
final = np.mean([float(divergence(k)) for k in jax.random.split(k_div, config.eval_batches)])
symbols = jnp.argmax(emit(k_rnn, config.stats_sequences).symbols, axis=-1)
rnn_marginal = np.asarray(statistics.symbol_frequencies(symbols, num_symbols))
rnn_repeat = np.asarray(statistics.repeat_probabilities(symbols, num_symbols))
rnn_changes = np.asarray(statistics.changes_per_sequence(symbols))
print(f"trained divergence {final:.3f} (floor + 3 s.d. = "
      f"{floor.noise_floor_mean + 3 * floor.noise_floor_std:.3f})")
for a in np.flatnonzero(exact_marginal > 0.05):
  print(f"P(y'=y | y={a}): RNN {rnn_repeat[a]:.4f}, exact {exact_repeat[a]:.4f}")
print(f"output changes per sequence: RNN {rnn_changes.mean():.3f}, exact {exact_changes:.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
axes[0].plot(steps, losses, label="RNN vs HMM (training)")
axes[0].axhspan(floor.noise_floor_mean - 3 * floor.noise_floor_std,
                floor.noise_floor_mean + 3 * floor.noise_floor_std, color="0.8",
                label="noise floor +- 3 s.d.")
axes[0].axhline(floor.shuffled_mean, color="k", ls=":", lw=1, label="time-shuffled HMM")
axes[0].set(yscale="log", xlabel="training step", ylabel="Sinkhorn divergence", title=name)
axes[0].legend(fontsize=7)
symbol_ids = np.arange(num_symbols)
axes[1].bar(symbol_ids - 0.2, rnn_marginal, 0.4, color="C0", alpha=0.5, label="marginal, RNN")
axes[1].bar(symbol_ids + 0.2, rnn_repeat, 0.4, color="C1", alpha=0.5, label="P(y'=y|y), RNN")
axes[1].hlines(exact_marginal, symbol_ids - 0.4, symbol_ids, colors="k", linestyles="--",
               label="closed form")
axes[1].hlines(exact_repeat, symbol_ids, symbol_ids + 0.4, colors="k", linestyles="--")
axes[1].set(xticks=symbol_ids, xlabel="symbol", title="marginals and repeat probabilities")
axes[1].legend(fontsize=7)
counts = np.arange(config.length)
axes[2].hist(rnn_changes, np.arange(config.length + 1) - 0.5, density=True, alpha=0.6,
             label="RNN")
axes[2].plot(counts, exact_law, "k--", lw=1.5, label="exact law")
axes[2].set(xlim=(-0.5, max(rnn_changes.max(), 8) + 0.5), xlabel="output changes per sequence",
            ylabel="probability")
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# The RNN never emits the 1% noise symbol, and the loss does not ask it to. An emulator without
# the symbol is the HMM with that symbol's mass moved to each state's frequent symbol; moving a
# one-hot sequence to it costs one Hamming unit per noise symbol, so the unregularised transport
# between the two laws costs exactly $E\,\#\{\text{noise symbols}\} = 0.01\,T$
# (`theory.rare_symbol_transport_cost`). On the exact laws of short sequences (all $3^T$ of them,
# weighted) the loss's divergence tends to it as $\varepsilon \to 0$. A finite batch, though, leaves
# a floor far above it: at $T = 30$ the symbol-free HMM scores *below* the floor
# (`experiments/hmm_emulation/resolution.py` sweeps batches up to the paper's 4096 and $T = 100$).

# %%
free = hmm_lib.without_rare_symbols(hmm)
noise_symbols = np.flatnonzero(exact_marginal < 0.05)
for length in (3, 4):
  cost = theory.rare_symbol_transport_cost(stationary, transition, emission, length, noise_symbols)
  at_blur = emulation.population_divergence(hmm, free, length,
                                            emulation.CONVERGED_SINKHORN._replace(blur=config.blur))
  small = emulation.population_divergence(
      hmm, free, length, emulation.CONVERGED_SINKHORN._replace(blur=config.blur / 4))
  print(f"T = {length}: transport cost {cost:.4f}; S_eps at blur {config.blur / 4:g}: {small:.4f}, "
        f"at the loss's blur {config.blur:g}: {at_blur:.4f}")
without = emulation.divergence_between(key, hmm, free, config.batch_size, config.length,
                                       config.floor_repeats, sinkhorn)
cost = theory.rare_symbol_transport_cost(stationary, transition, emission, config.length,
                                         noise_symbols)
print(f"T = {config.length}, batch {config.batch_size}: floor {floor.noise_floor_mean:.3f}, "
      f"symbol-free HMM {without[0]:.3f} +- {without[1]:.3f}, transport cost {cost:.2f}")

# %% [markdown]
# Kick neurons. Torre et al. find small groups of units whose firing kicks the state from one
# cluster to the other. `analysis.kick_neurons_by_ablation` silences each unit's recurrent output
# in turn and counts the switching that is left. On `planted.kick_network`, a hand-built network
# with that mechanism, two units stand out; in the trained network none does (README).

# %%
planted_params, planted_units = planted.kick_network()
fig, ax = plt.subplots(figsize=(5, 3))
for name, net in (("planted kick network", planted_params), ("trained RNN", params)):
  ablation = analysis.kick_neurons_by_ablation(net, jax.random.key(3), top_k=2, batch=256,
                                               length=config.length)
  ratios = np.sort(ablation.changes) / ablation.baseline
  ax.plot(np.arange(1, len(ratios) + 1), ratios, ".-", label=name)
  print(f"{name}: strongest units {ablation.units.tolist()} leave "
        f"{ratios[0]:.2f} of {ablation.baseline:.2f} changes per sequence")
print(f"planted kick units: {planted_units.kick.tolist()}")
ax.set_xscale("log")
ax.set_xlabel("unit, by the effect of silencing it")
ax.set_ylabel("switching / intact")
ax.legend(frameon=False)
plt.show()
