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
# # What needs to go right for an induction head?
#
# Singh, Moskovitz, Hill, Chan & Saxe 2024 (ICML), secs. 3-5. A 2-layer, 8-head attention-only
# transformer sees two (exemplar, label) pairs and a query whose label is one of the two, with
# labels re-drawn per sequence, so only the context tells. The loss sits near $\ln 2$ (pick one of
# the two context labels) and then falls abruptly (the phase change: loss < $0.4\ln 2$) as layer-2
# heads attend from the query to the correct label token; the heads come out diverse in strength.
# Clamping a subcircuit on every training step (here the *match* pattern: every layer-2 head's query
# attends to the correct label) removes part of what must co-evolve and the phase change comes
# earlier. Sec. 5's toy model says why: gradient flow on
# $\tfrac12\,\mathrm{mean}(a^*\otimes b^*\otimes c^* - a\otimes b\otimes c)^2$, three factors for
# the three subcircuits; from an aligned start $s$ it is the scalar flow $u' = (1 - u^k)u^{k-1}$
# with $k$ free factors, whose escape time $T_k(s)$ is $O(s^{2-k})$ for $k \ge 3$, $\log(1/s)$ for
# $k = 2$ and $O(1)$ for $k = 1$ (`theory/induction.py`). Below, the quick config (no clamp and the
# match clamp, one seed, 2500 Adam steps): left, the loss of both networks; middle, each layer-2
# head's induction strength (no clamp); right, the toy model's loss with 0, 1 and 2 factors clamped,
# with the closed-form escape times $d\,T_k(s)$ dashed. Left out: the head ablations (redundancy)
# and the previous-token clamp of the full config.

# %%
import functools
import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.induction_singh import config as config_lib
from experiments.induction_singh import experiment
from jaxlab import core
from jaxlab.induction import fewshot, metrics, model
from theory import induction as theory

# %matplotlib inline
# (importing an experiment module selects matplotlib's Agg backend; the line above restores inline)

config = config_lib.get_config("quick")

# %% [markdown]
# One network per clamp; the clamp is an intervention on the attention pattern
# (`experiment.clamp_interventions`), applied in the loss and in the evaluation.

# %%
cfg = fewshot.FewShotConfig(
    num_classes=config.num_classes, num_test_classes=config.num_test_classes, dim=config.dim,
    within_class_noise=config.within_class_noise, num_labels=config.num_labels,
    context_len=config.context_len, heldout_label_sets=config.heldout_label_sets)
net = model.TransformerConfig(num_outputs=cfg.num_labels, input_dim=cfg.input_dim,
                              num_layers=config.num_layers, num_heads=config.num_heads,
                              d_model=config.d_model, positions=config.positions)
k_world, k_init, k_train, k_heldout, k_test = jax.random.split(jax.random.key(config.seed), 5)
world = fewshot.make_world(k_world, cfg)
evals = {"world": world, "train": fewshot.sample(k_train, world, cfg, config.eval_size),
         "test_classes": fewshot.sample(k_test, world, cfg, config.eval_size, "test_classes")}


def loss_fn(params, batch, key, clamp):
  ivs = experiment.clamp_interventions(clamp, batch, net.num_heads)
  logits, _ = model.transformer_apply(params, batch.inputs, net, ivs)
  logp = jax.nn.log_softmax(logits[:, -1])
  return -jnp.take_along_axis(logp, batch.target[:, None], axis=1).mean(), {}


def eval_fn(params, d, clamp):
  row = {}
  for split in ("train", "test_classes"):
    ivs = experiment.clamp_interventions(clamp, d[split], net.num_heads)
    row.update({f"{split}_{k}": v
                for k, v in experiment.evaluate(params, d[split], net, ivs).items()})
  return row


runs = {}
for clamp in config.clamps:
  optimizer = optax.adam(config.learning_rate)
  state = core.init_run(lambda k: model.transformer_init(k, net), optimizer, k_init)
  result = core.train(
      core.make_train_step(functools.partial(loss_fn, clamp=clamp), optimizer), state, evals,
      num_steps=config.num_steps, log_every=config.log_every, progress=False,
      batch_fn=lambda d, k: fewshot.sample(k, d["world"], cfg, config.batch_size),
      eval_fn=functools.partial(eval_fn, clamp=clamp))
  h = runs[clamp] = {k: np.array([row[k] for row in result.history]) for k in result.history[0]}
  t_phase = metrics.first_crossing(h["step"], h["train_loss"], 0.4 * math.log(2), above=False)
  h["t_phase"] = t_phase
  print(f"clamp {clamp!r}: phase change (loss < 0.4 ln 2) at step {t_phase:.0f}; final accuracy "
        f"train {h['train_accuracy'][-2:].mean():.3f}, held-out classes "
        f"{h['test_classes_accuracy'][-2:].mean():.3f}")
strengths = runs["none"]["train_strength"][-1]
h = runs["none"]
print(f"no clamp, half-way to the phase change: loss "
      f"{np.interp(h['t_phase'] / 2, h['step'], h['train_loss']):.3f} (ln 2 = {math.log(2):.3f})")
print(f"layer-2 induction strengths: {np.round(strengths, 2)}; heads > 0.25: "
      f"{(strengths > 0.25).sum()}, spread {strengths.max() - strengths.min():.2f}")
print(f"phase-change step, match clamp / no clamp = "
      f"{runs['match']['t_phase'] / runs['none']['t_phase']:.2f} (the study asks <= 0.5)")

# %% [markdown]
# The toy model: aligned start $s\,a^*$ (and so on) with $|a^*|^2 = d$, where the tensor flow is the
# scalar one slowed by $d$: the loss reaches 1% of its unclamped start at $d\,T_k(s, u_1)$.

# %%
d, s, frac = 4, 0.1, 0.01
rng = np.random.default_rng(0)
targets = [v * math.sqrt(d) / np.linalg.norm(v) for v in rng.normal(size=(3, d))]
factors0 = [s * t for t in targets]
loss0 = float(theory.tensor_loss(factors0, targets))  # the unclamped start: a common scale
toy = {}
for k, clamped in ((3, (False,) * 3), (2, (False, False, True)), (1, (False, True, True))):
  times, losses = theory.tensor_flow(factors0, targets, clamped, 0.02, 300, 10)
  u_end = (1.0 - math.sqrt(frac) * (1.0 - s ** 3)) ** (1.0 / k)
  toy[k] = (np.asarray(times), np.asarray(losses), d * theory.product_escape_time(k, s, u_end))
  t_flow = theory.first_time_below(times, losses, frac * loss0)
  print(f"toy model, {k} free factor(s): 1%-loss time {t_flow:.2f}, closed form d T_k = "
        f"{toy[k][2]:.2f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for i, (clamp, h) in enumerate(runs.items()):
  axes[0].plot(h["step"], h["train_loss"], color=f"C{i}", label=f"clamp: {clamp}")
  axes[0].axvline(h["t_phase"], color=f"C{i}", lw=0.6)
axes[0].axhline(math.log(2), color="gray", ls=":", lw=1)
axes[0].axhline(0.4 * math.log(2), color="gray", ls="--", lw=1)
axes[0].set(yscale="log", xlabel="training step", ylabel="loss",
            title="network (ln 2 dotted, 0.4 ln 2 dashed)")
axes[0].legend(fontsize=7)
h = runs["none"]
for j in range(net.num_heads):
  axes[1].plot(h["step"], h["train_strength"][:, j], label=f"head {j}")
axes[1].set(xlabel="training step", title="layer-2 induction strength per head (no clamp)")
axes[1].legend(fontsize=6, ncol=2)
for i, (k, (times, losses, t_theory)) in enumerate(toy.items()):
  axes[2].plot(times, losses / loss0, color=f"C{i}", label=f"{k} free factor(s)")
  axes[2].axvline(t_theory, color=f"C{i}", ls="--", lw=1)
axes[2].axhline(frac, color="gray", ls=":", lw=1)
axes[2].set(yscale="log", ylim=(1e-5, 2), xlabel="time", ylabel="loss / initial loss",
            title="toy model (dashed: d T_k(s))")
axes[2].legend(fontsize=7)
plt.tight_layout()
plt.show()
