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
# # Associative recall against state expansion (the Dynamical Systems Framework)
#
# Sieber et al. 2024 (NeurIPS), "Understanding the differences in Foundation Models", sec. 2 (eq. 1)
# and sec. 5. In the DSF every causal mixer is a linear time-varying system
# $h_i = \Lambda_i h_{i-1} + B_i u_i$, $y_i = C_i h_i + D_i u_i$; linear attention has a state of
# $n \times d_v$ entries, softmax attention is the $n = \infty$ member. On multi-query associative recall
# (MQAR: $P = 8$ key-value pairs, then every key queried once) one linear-attention layer recalls more
# as its state expansion $n$ grows, and softmax attention is the ceiling. Every $n$ trains from the same
# initialisation on the same batches, in one vmapped call (feature masks keep the first $n$ channels of
# $q$ and $k$). Left: query accuracy during training; right: held-out accuracy against $n$, the softmax
# reference dashed. Before the figure, the trained layer is rewritten as a DSF and run through the
# generic scan, which must reproduce the layer's native output (the study checks this to $10^{-10}$).

# %%
import functools

import jax

jax.config.update("jax_enable_x64", True)  # for the float64 DSF identity; training is float32

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.dsf_recall import config as config_lib
from jaxlab import core
from jaxlab.attention_dynamics import dsf
from jaxlab.attention_dynamics import linear_attention as la

config = config_lib.get_config("quick")

# %%
dims = [int(n) for n in config.state_dims.split(",")]
k_init, k_train, k_eval, k_check = jax.random.split(jax.random.key(config.seed), 4)
dtype = jnp.dtype(config.param_dtype)
masks = jnp.asarray(np.arange(dims[-1])[None, :] < np.asarray(dims)[:, None], dtype)  # [S, K]
full = jnp.ones((1, dims[-1]), dtype)
optimizer = optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.num_steps))


def batch_fn(data, key):  # fresh MQAR sequences every step, the same for every state size
  batch = dsf.mqar_batch(key, config.batch_size, config.num_pairs, config.num_keys,
                         config.num_values)
  return {**batch, "mask": data["mask"]}


def train_all(masks_SxK, mixer):
  step_fn = core.make_train_step(functools.partial(dsf.recall_loss, mixer=mixer), optimizer)

  def one(mask_K):
    params = dsf.recall_init(k_init, config.num_keys + config.num_values, config.d_model,
                             masks_SxK.shape[1], dtype)
    return core.scan_train(step_fn, core.init_train_state(params, optimizer, k_train),
                           {"mask": mask_K}, num_steps=config.num_steps,
                           log_every=config.log_every, batch_fn=batch_fn)

  return jax.jit(jax.vmap(one))(masks_SxK)


states, history = train_all(masks, "linear")
soft_states, soft_history = train_all(full, "softmax")

# %% [markdown]
# The trained layer (here $n = 8$) as a DSF on $u_i = [e(x_i); e(x_{i-1})]$: $W_Q' = [mW_Q, 0]$,
# $W_K' = [0, mW_K]$, $W_V' = [W_V, 0]$, run through the generic scan in float64.

# %%
mid = len(dims) // 2
params = jax.tree.map(lambda x: jnp.asarray(x[mid], jnp.float64), states.params)
mask = jnp.asarray(masks[mid], jnp.float64)
tokens = dsf.mqar_batch(k_check, 1, config.num_pairs, config.num_keys, config.num_values)["tokens"][0]
q, k, v = dsf.recall_mixer_inputs(params, tokens, mask)
e = params["embed"][tokens]
u = jnp.concatenate([e, jnp.concatenate([jnp.zeros_like(e[:1]), e[:-1]])], axis=1)
zeros = jnp.zeros_like(params["w_q"])
p = {"w_q": jnp.concatenate([params["w_q"] * mask[:, None], zeros], axis=1),
     "w_k": jnp.concatenate([zeros, params["w_k"] * mask[:, None]], axis=1),
     "w_v": jnp.concatenate([params["w_v"], jnp.zeros_like(params["w_v"])], axis=1)}
system = dsf.linear_attention_dsf(p, u, feature_map=dsf.identity_feature_map, normalize=False)
error = jnp.max(jnp.abs(dsf.dsf_scan(system, u) - la.linear_attention_parallel(q, k, v,
                                                                                normalize=False)))
print(f"n={dims[mid]}: max |DSF scan - native linear attention| = {float(error):.1e}")

# %%
eval_batch = dsf.mqar_batch(k_eval, config.eval_sequences, config.num_pairs, config.num_keys,
                            config.num_values)
accuracy = lambda p, m, mixer: dsf.recall_loss(p, {**eval_batch, "mask": m}, None,
                                               mixer=mixer)[1]["accuracy"]
acc = np.asarray(jax.jit(jax.vmap(lambda p, m: accuracy(p, m, "linear")))(states.params, masks))
soft_acc = float(accuracy(jax.tree.map(lambda x: x[0], soft_states.params), full[0], "softmax"))
print("held-out query accuracy by state expansion:",
      ", ".join(f"n={n}: {a:.3f}" for n, a in zip(dims, acc)), f"| softmax: {soft_acc:.3f}")
print(f"gain acc(n={dims[-1]}) - acc(n={dims[0]}) = {acc[-1] - acc[0]:.3f} "
      f"(the study asks >= {config.min_gain:g})")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
steps = np.asarray(history["step"][0])
for color, n, curve in zip(plt.cm.viridis(np.linspace(0, 0.85, len(dims))), dims,
                           np.asarray(history["accuracy"])):
  axes[0].plot(steps, curve, color=color, label=f"linear, n={n}")
axes[0].plot(steps, np.asarray(soft_history["accuracy"][0]), "k--", label="softmax")
axes[0].set(xlabel="training step", ylabel="query accuracy (training batches)",
            title=f"MQAR, P={config.num_pairs} pairs")
axes[0].legend(fontsize=7)
axes[1].plot(dims, acc, "o-", label="linear attention (state n x d_v)")
axes[1].axhline(soft_acc, color="k", ls="--", lw=1, label="softmax (n = infinity)")
axes[1].axvline(config.num_pairs, color="gray", ls=":", lw=1, label="n = P")
axes[1].set_xscale("log", base=2)
axes[1].set_xticks(dims, [str(n) for n in dims])
axes[1].set(xlabel="state expansion n", ylabel="held-out query accuracy")
axes[1].legend(fontsize=7)
plt.show()
