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
# # Linear attention and gated linear attention: one map, three forms
#
# Katharopoulos et al. 2020 (ICML), "Transformers are RNNs", eqs. 4-6 (parallel) and 16-20
# (recurrent); Yang et al. 2024 (ICML), "Gated Linear Attention Transformers", eq. 2 (chunked) and
# eq. 3 (GLA). Causal linear attention $o_t = S_t^\top q_t / (q_t^\top z_t)$, $S_t = S_{t-1} + k_t v_t^\top$,
# can be computed in parallel as $\mathrm{tril}(QK^\top)V$ (cost $O(T^2)$), as an RNN over a
# $d_k \times d_v$ state ($O(T\,d_k d_v)$), or in chunks (parallel within, recurrent across); GLA adds a
# per-step, per-channel decay $S_t = \mathrm{diag}(\alpha_t) S_{t-1} + k_t v_t^\top$. The forms must
# agree to $10^{-10}$ in float64 and be causal. The figure times each form against the sequence length
# (best of a few repeats on this CPU), with the $T$ and $T^2$ scalings dashed; at these short lengths
# fixed overheads still hide part of the asymptotic scaling.

# %%
import time

import jax

jax.config.update("jax_enable_x64", True)  # the forms must agree to 1e-10

import matplotlib.pyplot as plt
import numpy as np

from experiments.linear_attention import config as config_lib
from jaxlab.attention_dynamics import linear_attention as la

config = config_lib.get_config("quick")

# %%
c = config.chunk_size
forms = {
    "linear attention": {
        "parallel": lambda q, k, v, g: la.linear_attention_parallel(q, k, v),
        "recurrent": lambda q, k, v, g: la.linear_attention_recurrent(q, k, v),
        "chunked": lambda q, k, v, g: la.linear_attention_chunked(q, k, v, chunk_size=c)},
    "gated linear attention": {
        "parallel": la.gla_parallel, "recurrent": la.gla_recurrent,
        "chunked": lambda q, k, v, g: la.gla_chunked(q, k, v, g, chunk_size=c)},
}


def inputs(t):  # positive features (Katharopoulos eq. 7), gates alpha = sigmoid(z + 3)
  k_q, k_k, k_v, k_g = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), t), 4)
  q = la.elu_feature_map(jax.random.normal(k_q, (t, config.key_dim)))
  k = la.elu_feature_map(jax.random.normal(k_k, (t, config.key_dim)))
  v = jax.random.normal(k_v, (t, config.value_dim))
  return q, k, v, jax.nn.log_sigmoid(jax.random.normal(k_g, (t, config.key_dim)) + 3.0)


def seconds(fn, args):
  jax.block_until_ready(fn(*args))  # compile
  best = np.inf
  for _ in range(config.timing_repeats):
    begin = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - begin)
  return best


timings = {}
for model, fns in forms.items():
  for t in config.lengths:
    args = inputs(t)
    out = {name: np.asarray(fn(*args)) for name, fn in fns.items()}
    gap = max(np.abs(o - out["parallel"]).max() for o in out.values()) / np.abs(out["parallel"]).max()
    cut = 3 * t // 4  # change the last quarter: the first three quarters must not move
    changed = tuple(a.at[cut:].set(2.0 * a[cut:] + 1.0) for a in args[:3]) + (args[3],)
    moved = max(np.abs(np.asarray(fn(*changed))[:cut] - out[name][:cut]).max()
                for name, fn in fns.items())
    print(f"{model}, T={t}: max |form - parallel| / max|o| = {gap:.1e}, causality leak {moved:.1e}")
    for name, fn in fns.items():
      timings[model, name, t] = seconds(fn, args)

# %%
lengths = np.array(config.lengths)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, model in zip(axes, forms):
  for name, marker in (("parallel", "o"), ("recurrent", "s"), ("chunked", "^")):
    ax.loglog(lengths, [timings[model, name, t] for t in lengths], marker + "-", label=name)
  for power, anchor in ((1, "recurrent"), (2, "parallel")):
    top = timings[model, anchor, lengths[-1]]
    ax.loglog(lengths, top * (lengths / lengths[-1]) ** power, "k--", lw=1)
  ax.set(xlabel="sequence length T", ylabel="seconds per call (best of repeats)",
         title=f"{model}; dashed: T and T^2")
  ax.legend(fontsize=8)
plt.show()
