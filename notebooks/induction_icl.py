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
# # Abrupt in-context learning in a minimal attention network
#
# Reddy 2024 (ICLR), secs. 3-5. Sequences of $N = 8$ item-label pairs and a query item; the labels
# come from $L = 32$, and every sequence is drawn from novel classes, so the only way to answer is
# in context. A two-layer attention network first learns only to output *some* label of the context
# (context-label accuracy CLA → 1, ICL accuracy stuck near $1/N$: the slow phase), then jumps
# abruptly to > 0.95 as an induction head forms: layer-1 label→item attention (ILA1) and layer-2
# query→correct-label attention rise together. Reddy's phenomenological model of sec. 5 is three
# nested logits, $a_1 = \sigma(\beta_1)$, $a_2 = e^{\alpha a_1}/(e^{\alpha a_1} + N - 1)$,
# $p = e^{\xi a_2}/(e^{\xi a_2} + (N-1)e^{\xi(1-a_2)/(N-1)} + L - N)$ (`theory/induction.py`); its
# gradient flow from the origin learns $\xi$ first ($p$: $1/L \to 1/N$), then $\alpha$ and
# $\beta_1$. Below, the quick config (one seed, $L = 32$, 1200 Adam steps): left, the network's
# accuracies; right, its progress measures (solid) against the nested-logit flow (dashed), each in
# units of its own time to accuracy 1/2 (the model's time unit is arbitrary). The full config adds
# two seeds and the $L = N$ control, where no head forms.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.induction_icl import config as config_lib
from jaxlab import core
from jaxlab.induction import data, metrics, model
from theory import induction as theory

config = config_lib.get_config("quick")
n, num_labels = config.context_pairs, config.label_counts[0]

# %%
cfg = data.ReddyConfig(
    num_classes=num_labels * max(1, config.num_classes // num_labels), num_labels=num_labels,
    context_pairs=n, burstiness=config.burstiness, p_bursty=1.0,
    within_class_noise=config.within_class_noise, dim=config.dim, p_novel=config.p_novel,
    num_novel_classes=4 * num_labels)
k_task, k_init, k_ic, k_ic2 = jax.random.split(jax.random.key(config.seed), 4)
task = data.make_task(k_task, cfg)
evals = {"task": task, "ic": data.novel_icl_set(k_ic, task, cfg, config.eval_size),
         "ic2": data.flipped_label_set(k_ic2, task, cfg, config.eval_size)}


def eval_fn(params, d):
  logits, acts = model.reddy_apply(params, d["ic"].inputs)
  row = dict(metrics.reddy_progress(logits, acts, d["ic"]))
  flipped, _ = model.reddy_apply(params, d["ic2"].inputs)
  row["ic2_accuracy"] = (flipped.argmax(-1) == d["ic2"].target).mean()
  return row


optimizer = optax.adam(config.learning_rate)
net = model.ReddyNetConfig(cfg.input_dim, num_labels)
state = core.init_run(lambda k: model.reddy_init(k, net), optimizer, k_init)
result = core.train(core.make_train_step(model.reddy_loss, optimizer), state, evals,
                    num_steps=config.num_steps, log_every=config.log_every, eval_fn=eval_fn,
                    batch_fn=lambda d, k: data.sample_batch(k, d["task"], cfg, config.batch_size),
                    progress=False)
h = {k: np.array([row[k] for row in result.history]) for k in result.history[0]}

# %% [markdown]
# The phase measures the study checks, and the nested-logit flow from the origin (RK4).

# %%
steps, acc = h["step"], h["accuracy"]
t_cla = metrics.first_crossing(steps, h["cla"], 0.9)
t_low, t_high = metrics.jump_window(steps, acc, 0.3, 0.9)
print(f"slow phase: ICL accuracy when CLA first > 0.9 = {acc[np.argmax(steps >= t_cla)]:.3f} "
      f"(1/N = {1 / n:.3f}, 1/L = {1 / num_labels:.3f})")
print(f"jump: accuracy from < 0.3 to > 0.9 in {t_high - t_low:.0f} steps; final ICL accuracy "
      f"{acc[-2:].mean():.3f}, IC2 {h['ic2_accuracy'][-2:].mean():.3f}, ILA1 "
      f"{h['ila1'][-2:].mean():.3f}, IH2 {h['ih2'][-2:].mean():.3f}")

times, thetas = theory.nested_logit_flow(np.zeros(3), n, num_labels, config.theory_dt, 300,
                                         config.theory_steps // 300)
a1, a2 = jax.vmap(lambda t: theory.nested_attention(t, n))(thetas)
p = jax.vmap(lambda t: theory.nested_logit_probability(t, n, num_labels))(thetas)
times, p = np.asarray(times), np.asarray(p)
slow = lambda t, y: 1 - metrics.first_crossing(t, y, 0.9 / n) / metrics.first_crossing(t, y, 0.5)
print(f"plateau at 1/N, share of the time to accuracy 1/2: network {slow(steps, acc):.2f}, "
      f"nested-logit model {slow(times, p):.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(steps, acc, label="ICL accuracy (novel classes)")
axes[0].plot(steps, h["cla"], label="context-label accuracy CLA")
axes[0].plot(steps, h["ic2_accuracy"], lw=0.8, label="IC2 (flipped labels)")
for level, style in ((1 / n, ":"), (1 / num_labels, "-.")):
  axes[0].axhline(level, color="gray", ls=style, lw=1)
axes[0].set(xlabel="training step", title=f"L={num_labels}, N={n} (gray: 1/N, 1/L)")
axes[0].legend(fontsize=7)
t_net = metrics.first_crossing(steps, acc, 0.5)
t_model = metrics.first_crossing(times, p, 0.5)
for i, (net, model_curve, name) in enumerate((("accuracy", p, "accuracy / p"),
                                              ("ila1", a1, "ILA1 / a1"),
                                              ("tila2", a2, "TILA2 / a2"))):
  axes[1].plot(steps / t_net, h[net], color=f"C{i}", label=name)
  axes[1].plot(times / t_model, np.asarray(model_curve), "--", color=f"C{i}")
axes[1].set(xlim=(0, 2), xlabel="time / time to accuracy 1/2",
            title="network (solid), nested-logit flow (dashed)")
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()
