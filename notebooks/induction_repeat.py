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
# # Induction heads on repeated random tokens
#
# Olsson et al. 2022 (Transformer Circuits Thread) and Elhage et al. 2021. An induction head
# completes [A][B] … [A] → [B]: it attends from the current token to the one that *followed* its
# earlier occurrence (prefix matching) and copies it. Elhage et al. show it needs two layers: a
# previous-token head in layer 0 writes $t_{j-1}$ into position $j$ and the layer-1 head's key reads
# that write (K-composition). `jaxlab.induction.repeated` builds this circuit by hand (prefix
# matching 1, loss on the repeats $\approx e^{-s}$ at sharpness $s$): the reference drawn dashed
# below. Trained on sequences of random tokens repeated with a period that varies per sequence, a
# 2-layer attention-only transformer forms such a head in an abrupt phase change (its repeat loss
# drops where its prefix-matching score jumps), and a 1-layer one of the same width stays near the
# chance prefix score of content-blind attention. Below, the quick config (one seed, 500 Adam steps
# per depth): left, the held-out loss on the repeats and on first occurrences; right, the best
# last-layer head's prefix-matching score (red line: the 2-layer model's steepest loss drop). The
# full config runs two seeds for 1500 steps.

# %%
import functools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.induction_repeat import config as config_lib
from jaxlab import core
from jaxlab.induction import metrics, model, repeated

config = config_lib.get_config("quick")
tokens_fn = functools.partial(repeated.periodic_tokens, vocab=config.vocab, seq_len=config.seq_len,
                              min_period=config.min_period, max_period=config.max_period)
eval_tokens = jax.jit(tokens_fn, static_argnums=1)(
    jax.random.fold_in(jax.random.key(config.seed), 10 ** 6), config.eval_size)
chance = float(repeated.chance_prefix_matching(eval_tokens))

# %% [markdown]
# The hand-built circuit, and the same with its layer-0 (previous-token) head ablated.

# %%
built_cfg, built = repeated.induction_head_construction(config.vocab, config.seq_len,
                                                        config.construction_sharpness)
clean = repeated.evaluate_repeats(built, built_cfg, eval_tokens)
ablated = repeated.evaluate_repeats(built, built_cfg, eval_tokens,
                                    {"layer0/head_out": model.ablate()}, copying=False)
print(f"hand-built: prefix score {float(clean['prefix_matching'][1, 0]):.4f}, copying "
      f"{float(clean['copying'][1, 0]):.4f}, repeat loss {float(clean['repeat_loss']):.1e} nats")
print(f"hand-built, layer 0 ablated: prefix score {float(ablated['prefix_matching'][1, 0]):.3f} "
      f"(chance {chance:.3f})")

# %% [markdown]
# Training: attention-only, pre-LN, RoPE transformers of 1 and 2 layers, next-token loss on every
# position, fresh sequences every step, held-out losses and head scores every 25 steps.

# %%
def train(num_layers):
  cfg = model.TransformerConfig(
      num_outputs=config.vocab, num_layers=num_layers, num_heads=config.num_heads,
      d_model=config.d_model, vocab_size=config.vocab, positions=config.positions,
      max_len=config.seq_len, layer_norm=config.layer_norm)
  optimizer = optax.adam(config.learning_rate)
  state = core.init_run(lambda k: model.transformer_init(k, cfg), optimizer,
                        jax.random.fold_in(jax.random.key(config.seed), 0))
  loss = lambda p, tokens, key: repeated.next_token_loss(p, tokens, cfg, train_on=config.train_on)
  result = core.train(
      core.make_train_step(loss, optimizer), state, eval_tokens, num_steps=config.num_steps,
      log_every=config.log_every, progress=False,
      batch_fn=lambda d, k: tokens_fn(k, config.batch_size),
      eval_fn=lambda p, tokens: repeated.evaluate_repeats(p, cfg, tokens, copying=False))
  h = {k: np.array([row[k] for row in result.history]) for k in result.history[0]}
  h["best_prefix"] = h["prefix_matching"][:, -1].max(axis=-1)  # best last-layer head
  return h


runs = {num_layers: train(num_layers) for num_layers in (1, 2)}
for num_layers, h in runs.items():
  print(f"{num_layers}-layer: best prefix score {h['best_prefix'][-1]:.3f}, repeat loss "
        f"{h['repeat_loss'][-1]:.3f} nats, repeat accuracy {h['repeat_accuracy'][-1]:.3f}, "
        f"first - repeat loss {h['first_loss'][-1] - h['repeat_loss'][-1]:.2f} nats")
h = runs[2]
t_low, t_high = metrics.jump_window(h["step"], h["best_prefix"], 0.3, 0.8)
t_drop, _ = metrics.steepest_rise(h["step"], -h["repeat_loss"])
t_rise, _ = metrics.steepest_rise(h["step"], h["best_prefix"])
print(f"2-layer phase change: prefix score < 0.3 until step {t_low:.0f}, > 0.8 at {t_high:.0f}; "
      f"steepest loss drop at {t_drop:.0f}, steepest prefix rise at {t_rise:.0f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for num_layers, h in runs.items():
  axes[0].plot(h["step"], h["repeat_loss"], color=f"C{num_layers - 1}",
               label=f"{num_layers}-layer: repeats")
  axes[0].plot(h["step"], h["first_loss"], color=f"C{num_layers - 1}", lw=0.7, alpha=0.6,
               label=f"{num_layers}-layer: first occurrences")
  axes[1].plot(h["step"], h["best_prefix"], color=f"C{num_layers - 1}", label=f"{num_layers}-layer")
axes[0].axhline(np.log(config.vocab), color="gray", ls=":", lw=1, label="uniform guess, log V")
axes[0].set(yscale="log", xlabel="training step", ylabel="held-out loss (nats)",
            title="hand-built circuit: ~0 on the repeats")
axes[1].axhline(float(clean["prefix_matching"][1, 0]), color="k", ls="--", lw=1,
                label="hand-built circuit")
axes[1].axhline(chance, color="gray", ls=":", lw=1, label="chance (uniform attention)")
axes[1].set(xlabel="training step", ylabel="prefix-matching score", title="best last-layer head")
for ax in axes:
  ax.axvline(t_drop, color="C3", lw=0.8, alpha=0.7)
  ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
