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
# # Deep linear networks: exact learning dynamics
#
# Saxe, McClelland & Ganguli 2014. A balanced, decoupled two-layer linear network learns each
# singular mode of the input-output correlation on its own sigmoidal trajectory (eq. 7),
# $u(t) = s / (1 + (s/u_0 - 1)\, e^{-2st/\tau})$, strong modes first. Below: the quick config of
# `experiments/deep_linear`, the simulation from `jaxlab.deep_linear`, and the closed form from
# `theory/deep_linear.py` drawn dashed over it.

# %%
import jax

jax.config.update("jax_enable_x64", True)  # the comparison is at the 1e-3 level

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.deep_linear import config as config_lib
from jaxlab import core
from jaxlab import deep_linear as dl
from theory import deep_linear as theory

config = config_lib.get_config("quick")

# %% [markdown]
# The task: whitened inputs and a correlation matrix $U\,\mathrm{diag}(s)\,V^\top$. The network
# starts decoupled and balanced (every layer maps mode $\alpha$ to mode $\alpha$ with the same
# scale), which is the setting where eq. (7) is exact.

# %%
task = dl.make_task(jax.random.key(config.seed), config.n_in, config.n_out,
                    config.singular_values)
r = len(task.s)
u0 = config.u0_two_layer
params = dl.init_decoupled(task.U, task.V, jnp.full((2, r), u0 ** 0.5), [config.n_hidden],
                           key=jax.random.key(1))
optimizer = optax.sgd(config.learning_rate)
state = core.init_train_state(params, optimizer, jax.random.key(2))
result = core.train(
    core.make_train_step(dl.loss, optimizer), state, (task.x, task.y),
    num_steps=config.num_steps, log_every=config.log_every,
    eval_fn=lambda p, data: {"u": dl.mode_strengths(p, task.U, task.V, r)})
steps = np.array([row["step"] for row in result.history], dtype=float)
u_sim = np.array([row["u"] for row in result.history])

# %%
u_theory = np.asarray(theory.balanced_mode_strength(steps[:, None], task.s, u0,
                                                    1.0 / config.learning_rate))
error = np.max(np.abs(u_sim - u_theory) / np.asarray(task.s))
print(f"max over time and modes of |u - u_theory| / s = {error:.1e}")

fig, ax = plt.subplots(figsize=(6, 3.5))
for i, s in enumerate(np.asarray(task.s)):
  line, = ax.plot(steps, u_sim[:, i], label=f"s = {s:g}")
  ax.plot(steps, u_theory[:, i], "k--", lw=1)
ax.set(xlabel="step", ylabel="mode strength u", title="simulation (solid) vs eq. 7 (dashed)")
ax.legend()
plt.show()
