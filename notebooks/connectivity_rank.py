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
# # Connectivity rank: low-rank starts learn richly
#
# Liu et al. 2024 (ICLR), "How connectivity structure shapes rich and lazy learning in neural
# circuits". A two-layer linear network $f(x) = w_2^\top W_1 x$ on whitened inputs has the initial
# tangent kernel $K_0 = X A X^\top$, $A = W_1^\top W_1 + \|w_2\|^2 I$, so over random tasks
# $y = \beta^\top x$ the expected initial kernel-target alignment is
# $E[\mathrm{KTA}] = \mathrm{tr}(A) / (d\,\|A\|_F)$ (`theory/lazy_rich/liu.py`): at a fixed norm a full-rank
# $W_1$ starts best aligned (their Theorem 1), a rank-1 $W_1$ worst, and a rank-1 $W_1$ aligned with
# the task near 1 (Proposition 1). Left: the measured initial alignment, mean over 50 tasks with
# standard errors, with the closed form dashed. Middle: how much the kernel turns during training,
# $\mathrm{KA}(K_0, K_T)$ (lower = richer): low-rank random starts move their kernel most, the aligned
# start least. Right: the same measure for the recurrent variant (rate RNNs on a two-alternative task,
# kernel of $W_h$), 8 seeds per rank; this is an observation, not a closed form.

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.connectivity_rank import config as config_lib
from experiments.connectivity_rank import experiment  # for the RNN population helper
from jaxlab import core
from jaxlab import deep_linear as dl
from jaxlab import lazy_rich as lr
from jaxlab.lazy_rich import connectivity as conn
from theory.lazy_rich import liu as theory

# %matplotlib inline
# (importing an experiment module selects matplotlib's Agg backend; the line above restores inline)

config = config_lib.get_config("quick")

# %% [markdown]
# One training run per (start, task): $W_1$ of rank 1, 5 or 20 (or rank 1 aligned with $\beta$) at
# Frobenius norm $\sigma = 0.1$ (the rich regime), $w_2 \sim N(0, \sigma^2/h)$, plain gradient descent
# on the mean squared error. All tasks of one start run in one vmapped call.

# %%
d, h, sigma = config.input_dim, config.hidden, config.rich_norms[0]
q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(config.seed), (config.n_samples, d)))
x = jnp.sqrt(config.n_samples) * q  # exactly whitened: X^T X = n I
scalar = lambda params, inputs: dl.apply(params, inputs)[:, 0]
optimizer = optax.sgd(config.learning_rate)
step = core.make_train_step(
    lambda p, batch, key: (0.5 * jnp.mean((scalar(p, batch[0]) - batch[1]) ** 2), {}), optimizer)


def one_task(key, rank, aligned):
  k_task, k_w1, k_aligned, k_w2 = jax.random.split(key, 4)
  beta = jax.random.normal(k_task, (d,))
  beta = beta / jnp.linalg.norm(beta)
  y = x @ beta
  w1 = jnp.where(aligned, conn.aligned_rank_one(k_aligned, h, beta, sigma),
                 conn.low_rank_normal(k_w1, (h, d), rank, sigma))
  params0 = [w1, sigma / jnp.sqrt(h) * jax.random.normal(k_w2, (1, h))]
  final, _ = core.scan_train(step, core.init_train_state(params0, optimizer, key), (x, y),
                             num_steps=config.num_steps, log_every=config.num_steps)
  k0, k_end = lr.empirical_ntk(scalar, params0, x), lr.empirical_ntk(scalar, final.params, x)
  c = jnp.sum(params0[1] ** 2)
  kta_theory = jnp.where(aligned, theory.aligned_rank_one_alignment(sigma, c, d),
                         theory.expected_initial_alignment(jnp.linalg.svd(w1, compute_uv=False), c, d))
  return {"ka": 1.0 - lr.kernel_distance(k0, k_end), "kta": lr.kernel_target_alignment(k0, y),
          "kta_theory": kta_theory}


conditions = {f"rank {r}": (r, False) for r in config.ranks} | {"aligned rank 1": (1, True)}
keys = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 1), config.num_tasks)
run_tasks = jax.jit(jax.vmap(one_task, in_axes=(0, None, None)))
linear = {name: jax.tree.map(np.asarray, run_tasks(keys, r, a)) for name, (r, a) in conditions.items()}

# %%
rnn = experiment.rnn_population(config)  # rank-1/8/64 recurrent weights, config.rnn.seeds each

# %%
mean_se = lambda v: (np.mean(v), np.std(v, ddof=1) / np.sqrt(len(v)))


def separation(a, b):  # difference of means in standard errors
  (ma, sa), (mb, sb) = mean_se(a), mean_se(b)
  return (ma - mb) / np.hypot(sa, sb)


full, low = f"rank {max(config.ranks)}", f"rank {min(config.ranks)}"
for name in (low, full):
  m, se = mean_se(linear[name]["kta"])
  print(f"{name}: initial KTA {m:.4f} +- {se:.4f}, closed form {linear[name]['kta_theory'].mean():.4f}")
print(f"KA({full}) - KA({low}) = {separation(linear[full]['ka'], linear[low]['ka']):.1f} s.e. "
      f"(low rank richer; the study asks >= {config.min_separation:g})")
print(f"KA(aligned rank 1) - KA({full}) = "
      f"{separation(linear['aligned rank 1']['ka'], linear[full]['ka']):.1f} s.e. (aligned laziest)")
lo_r, hi_r = min(config.rnn.ranks), max(config.rnn.ranks)
print(f"RNN: KA(rank {hi_r}) - KA(rank {lo_r}) = "
      f"{separation(rnn[hi_r]['kernel_alignment'], rnn[lo_r]['kernel_alignment']):.1f} s.e.")

fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
names = list(linear)
for ax, key, title in ((axes[0], "kta", "initial KTA(K0, y); closed form dashed"),
                       (axes[1], "ka", f"KA(K0, K_T), |W1| = {sigma:g} (lower = richer)")):
  stats = [mean_se(linear[n][key]) for n in names]
  ax.bar(range(len(names)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3,
         color=plt.cm.viridis(np.linspace(0, 0.85, len(names))))
  ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
  ax.set_title(title, fontsize=9)
axes[1].set_ylim(min(mean_se(linear[n]["ka"])[0] for n in names) - 0.03, 1.0)
for i, n in enumerate(names):
  axes[0].hlines(linear[n]["kta_theory"].mean(), i - 0.4, i + 0.4, colors="k", linestyles="--")
stats = [mean_se(rnn[r]["kernel_alignment"]) for r in config.rnn.ranks]
axes[2].bar(range(len(stats)), [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3,
            color=plt.cm.viridis(np.linspace(0, 0.85, len(stats))))
axes[2].set_xticks(range(len(stats)), [f"rank {r}" for r in config.rnn.ranks])
axes[2].set_title(f"RNN, W_h kernel: KA(K0, K_T), {config.rnn.seeds} seeds", fontsize=9)
plt.show()
