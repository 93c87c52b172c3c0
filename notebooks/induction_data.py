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
# # Which data make in-context vs in-weights learning
#
# Reddy 2024 (ICLR), sec. 3 and fig. 2; Chan et al. 2022 (NeurIPS), figs. 2-4. Reddy's minimal
# two-layer attention network reads $N = 8$ item-label pairs and a query; $K$ classes map onto
# $L = 32$ labels. With *bursty* sequences (the query's class appears $B$ times in the context) over
# many classes, the network learns in context: it labels queries of novel classes correctly (IC),
# even when the context's labels are flipped (IC2), and its in-weights accuracy (IW: the query's
# class absent from the context) stays low. Without bursts it memorises the class → label map
# instead: IW → 1, IC at chance $1/L$. There is no closed form: the references are chance and the
# study's thresholds (IC > 0.9 and IW < 0.15 with bursts; IW > 0.9 and IC < 0.1 without). Below, the
# quick config's two corners ($K = 1024$, $B = 2$ and $B = 0$, one seed, 1000 Adam steps): the three
# accuracies over training, with chance dashed. The full config fills the $(B, K)$ phase diagram and
# adds a Zipfian class distribution, where both strategies coexist
# (`python -m experiments.induction_data.main --config=experiments/induction_data/config.py --workdir=/tmp/x`).

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.induction_data import config as config_lib
from jaxlab import core
from jaxlab.induction import data, model

config = config_lib.get_config("quick")

# %% [markdown]
# One cell $(B, K)$: a task (class centroids, the class → label map, novel classes), three fixed
# evaluation sets, and every seed trained in one vmapped call (`core.train_population`).

# %%
def accuracy(params, batch):
  logits, _ = model.reddy_apply(params, batch.inputs)
  return (logits.argmax(-1) == batch.target).mean()


def train_cell(burstiness, num_classes):
  cfg = data.ReddyConfig(
      num_classes=num_classes, num_labels=config.num_labels, context_pairs=config.context_pairs,
      burstiness=max(burstiness, 1), p_bursty=config.p_bursty if burstiness else 0.0,
      within_class_noise=config.within_class_noise, dim=config.dim,
      num_novel_classes=4 * config.num_labels)
  k_task, k_ic, k_ic2, k_iw, k_seeds = jax.random.split(jax.random.key(config.seed), 5)
  task = data.make_task(k_task, cfg)
  evals = {"task": task, "ic": data.novel_icl_set(k_ic, task, cfg, config.eval_size),
           "ic2": data.flipped_label_set(k_ic2, task, cfg, config.eval_size),
           "iw": data.in_weights_set(k_iw, task, cfg, config.eval_size)}
  net = model.ReddyNetConfig(cfg.input_dim, config.num_labels)
  _, history = core.train_population(
      lambda k: model.reddy_init(k, net), model.reddy_loss, optax.adam(config.learning_rate),
      jax.random.split(k_seeds, config.seeds), data=evals, num_steps=config.num_steps,
      log_every=config.log_every,
      batch_fn=lambda d, k: data.sample_batch(k, d["task"], cfg, config.batch_size),
      eval_fn=lambda p, d: {name: accuracy(p, d[name]) for name in ("ic", "ic2", "iw")})
  return {k: np.asarray(v) for k, v in history.items()}


# %%
results = {}
for b in config.burstiness_values:
  for k in config.num_classes_values:
    h = results[(b, k)] = train_cell(b, k)
    final = {name: h[name][:, -2:].mean() for name in ("ic", "ic2", "iw")}
    print(f"B={b} K={k}: final IC {final['ic']:.3f}, IC2 {final['ic2']:.3f}, IW {final['iw']:.3f} "
          f"(chance 1/L = {1 / config.num_labels:.3f})")

# %%
fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.6), squeeze=False)
for ax, ((b, k), h) in zip(axes[0], results.items()):
  steps = h["step"][0]
  for name, color in (("ic", "C0"), ("ic2", "C1"), ("iw", "C2")):
    for s in range(h[name].shape[0]):
      ax.plot(steps, h[name][s], color=color, label=name.upper() if not s else None)
  ax.axhline(1 / config.num_labels, color="k", ls="--", lw=1, label="chance 1/L")
  ax.set(ylim=(-0.02, 1.02), xlabel="training step", ylabel="accuracy",
         title=f"B={b}{' (no bursts)' if not b else ''}, K={k}")
  ax.legend(fontsize=7)
plt.tight_layout()
plt.show()
