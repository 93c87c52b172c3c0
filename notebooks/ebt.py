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
# # Energy-based transformers think longer
#
# Gladstone et al. 2025 (arXiv 2507.02092), sec. 3.2 eqs. 1-2 and sec. 3.3. An energy-based
# transformer (EBT) scores a candidate next-token distribution with a scalar energy $E(x, p)$ and
# predicts by descending it: from noise $y_0$, $p_k = \mathrm{softmax}(y_k)$,
# $y_{k+1} = p_k - \alpha\,\partial E/\partial p_k$. The S2 recipe (random $\alpha$ and number of
# steps $K \in \{2, 3\}$, Langevin noise, a replay buffer) trains an energy landscape rather than a
# fixed unrolled map, so more descent steps at inference ("thinking longer") keep lowering the
# cross-entropy, and the energy falls along the descent. There is no closed form here: the reference
# is an equal-size standard transformer trained for as many steps, which at this small scale is
# ahead per step (the paper's Table 3). Below, characters of CPython's help pages, windows of 32, 2
# layers, $D = 128$, the quick config's 500 AdamW steps for S2 and the baseline (about 3 minutes on
# 2 CPU cores). Left: cross-entropy after $k$ descent steps on held-out text and on
# out-of-distribution text (the `email` package's sources), the baseline dashed; right: the mean
# energy the $k$-th step starts from. Left out (quick study: S1 EBT, best-of-N self-verification;
# full study: 3 seeds, ablations, equal wall-clock baseline, Dyck-3):
# `python -m experiments.ebt.main --config=experiments/ebt/config.py:quick --workdir=/tmp/x`.

# %%
import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.ebt import config as config_lib
from jaxlab import core
from jaxlab.ebt import data, metrics, model, thinking

config = config_lib.get_config("quick")
corpus = data.TextCorpus()
windows = {split: jnp.asarray(data.fixed_windows(corpus.split(split), config.eval_windows,
                                                 config.seq_len))
           for split in ("validation", "ood")}

# %% [markdown]
# Both models share the transformer trunk (`jaxlab.ebt.model`); the EBT reads the candidate
# probabilities as extra inputs and outputs an energy per position. Same optimiser for both: AdamW,
# linear warmup then cosine to lr / 10, gradient clipping.

# %%
cfg = model.EBTConfig(vocab_size=corpus.vocab.size, d_model=config.d_model,
                      num_heads=config.num_heads, num_layers=config.num_layers,
                      max_len=config.seq_len)
s2 = dataclasses.replace(thinking.S2, step_size=float(config.s2_step_size))
schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps,
                                              config.num_steps, config.learning_rate / 10)
optimizer = optax.chain(optax.clip_by_global_norm(config.clip_norm),
                        optax.adamw(schedule, weight_decay=config.weight_decay))
key = jax.random.fold_in(jax.random.key(config.seed), 0)
batch_fn = lambda stream, k: data.sample_windows(stream, k, config.batch_size, config.seq_len)
train = lambda step_fn, state: core.train(step_fn, state, jnp.asarray(corpus.train),
                                          num_steps=config.num_steps, log_every=config.log_every,
                                          batch_fn=batch_fn, progress=False)

state = core.init_run(lambda k: thinking.init(k, cfg, s2), optimizer, key)
state = dataclasses.replace(state, extra=thinking.init_extra(cfg, s2, config.seq_len))  # replay
ebt = train(core.make_train_step(thinking.make_loss(cfg, s2), optimizer, carries_extra=True),
            state)
base_state = core.init_run(lambda k: model.baseline_init(k, cfg), optimizer, key)
base = train(core.make_train_step(thinking.baseline_loss(cfg), optimizer), base_state)

# %% [markdown]
# Evaluation on fixed windows: the descent run for 8 steps without noise, from the same noise for
# every step count.

# %%
eval_key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), 10 ** 6), 0)
horizon, max_steps = s2.num_steps, config.max_think_steps
results = {}
for split, w in windows.items():
  curve = metrics.thinking_curve(ebt.state.params, w, eval_key, cfg, s2.for_inference(0.0),
                                 max_steps)
  logits = model.baseline_apply(base.state.params, w[:, :-1], cfg)
  results[split] = {
      "ce": np.asarray(curve.cross_entropy).mean(axis=(1, 2)),
      "energy": np.asarray(curve.energy).mean(axis=(1, 2)),
      "descent": float(np.mean(np.asarray(curve.energy)[horizon] < np.asarray(curve.energy)[0])),
      "baseline": float(thinking.cross_entropy(logits, w[:, 1:]).mean())}
  r = results[split]
  print(f"{split}: S2 CE@1 {r['ce'][0]:.3f}, CE@{horizon} {r['ce'][horizon - 1]:.3f}, "
        f"CE@{max_steps} {r['ce'][-1]:.3f}; baseline {r['baseline']:.3f} nats/char")
r = results["validation"]
print(f"thinking longer: CE@{horizon} / CE@1 = {r['ce'][horizon - 1] / r['ce'][0]:.3f} "
      f"(the study asks <= 0.90); CE@{max_steps} / CE@{horizon} = "
      f"{r['ce'][-1] / r['ce'][horizon - 1]:.3f} (<= 1.03)")
print(f"energy falls over {horizon} steps for {100 * r['descent']:.1f}% of tokens (>= 90%); "
      f"S2 CE@{horizon} - baseline = {r['ce'][horizon - 1] - r['baseline']:.3f} nats (<= 0.6)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
ks = np.arange(1, max_steps + 1)
for i, (split, r) in enumerate(results.items()):
  axes[0].plot(ks, r["ce"], "o-", color=f"C{i}", label=f"S2 EBT ({split})")
  axes[0].axhline(r["baseline"], color=f"C{i}", ls="--", lw=1, label=f"transformer ({split})")
  axes[1].plot(np.arange(max_steps), r["energy"], "o-", color=f"C{i}", label=split)
for ax in axes:
  ax.axvline(horizon, color="gray", ls=":", lw=1)
axes[0].set(xlabel="inference (descent) steps", ylabel="cross-entropy (nats/char)",
            title=f"thinking longer (dotted: trained horizon K = {horizon})")
axes[0].legend(fontsize=7)
axes[1].set(xlabel="descent step (0: noise)", ylabel="mean energy",
            title="energy along the descent")
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()
