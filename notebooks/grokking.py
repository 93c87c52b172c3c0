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
# # Grokking as the transition from lazy to rich
#
# Kumar, Bordelon, Gershman & Pehlevan 2024 (ICLR). A width-$N$ network with activation
# $\phi(h) = h + \frac\epsilon2 h^2$ learns the quadratic target $y = \frac12(\beta_*\cdot x)^2$ from
# $P = 110$ samples in $D = 20$ dimensions, fewer than the initial kernel needs. It depends on its
# weights only through $\bar w$ and $M = \frac1N\sum_i w_i w_i^\top$, so the test loss is exact (their
# eq. 6): a variance, a misalignment $\frac{1}{2D^2}\|\alpha\epsilon Q - \beta_*\beta_*^\top\|_F^2$ and a
# linear-power term (`theory/lazy_rich/kumar.py`). The output scale $\alpha$ (step $\eta_0 N/\alpha^2$)
# sets how lazy the run is. Left: train loss (dotted) and exact test loss (solid) per $\alpha$; the
# training loss falls first, the test loss later (grokking), with a delay and a final test loss that
# grow with $\alpha$; dashed is the $\alpha \to \infty$ limit, kernel regression with the initial NTK,
# which even the laziest run here ends below; the dot is a Monte Carlo estimate of the test loss,
# checking the closed form. Right: the relative weight change, which shrinks with $\alpha$.

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from experiments.grokking import config as config_lib
from experiments.grokking import experiment  # the Monte Carlo and kernel-regression helpers
from jaxlab import core
from jaxlab import lazy_rich as lr
from jaxlab.lazy_rich import grokking as grok
from theory.lazy_rich import kumar as theory

# %matplotlib inline
# (importing an experiment module selects matplotlib's Agg backend; the line above restores inline)

config = config_lib.get_config("quick")

# %%
k_task, k_init, k_mc = jax.random.split(jax.random.key(config.seed), 3)
task = grok.make_task(k_task, config.dim, config.n_train)
w0 = grok.init(k_init, config.width, config.dim)
eps = config.epsilon
zero_v, zero_q = jnp.zeros(config.dim), jnp.zeros((config.dim, config.dim))
initial_loss = float(theory.test_loss(zero_v, zero_q, task.beta_star, 1.0, eps))  # f~ = 0 at w0

runs, finals = {}, {}
for alpha in config.alphas:
  optimizer = optax.sgd(config.base_learning_rate * config.width / alpha ** 2)

  def eval_fn(w, data, alpha=alpha):  # the exact test loss from the summary statistics
    v, q = grok.centered_statistics(w, w0)
    return {"test_loss": theory.test_loss(v, q, task.beta_star, alpha, eps),
            "weight_change": lr.relative_weight_change(w0, w)}

  state = core.init_train_state(w0, optimizer, jax.random.key(config.seed))
  result = core.train(core.make_train_step(grok.centered_loss, optimizer), state,
                      (task.x, task.y, w0, jnp.asarray(alpha), jnp.asarray(eps)),
                      num_steps=config.num_steps, log_every=config.log_every, eval_fn=eval_fn,
                      progress=False)
  runs[alpha] = {name: np.array([row[name] for row in result.history])
                 for name in ("step", "loss", "test_loss", "weight_change")}
  runs[alpha]["train_mse"] = 2.0 * runs[alpha]["loss"]  # the loss is half the mean squared error
  finals[alpha] = result.state.params

# %%
middle = config.alphas[len(config.alphas) // 2]
mc, se = experiment.monte_carlo_test_loss(k_mc, finals[middle], w0, task.beta_star, middle, eps,
                                          config.monte_carlo_samples)
print(f"alpha={middle:g}: exact test loss {runs[middle]['test_loss'][-1]:.5f}, "
      f"Monte Carlo {float(mc):.5f} +- {float(se):.5f}")
kernel_loss = float(experiment.kernel_regression_loss(task, w0, config.alphas[-1], eps))
print(f"initial-NTK kernel regression (alpha -> infinity): test loss {kernel_loss:.4f}")
level = config.threshold * initial_loss
first_below = lambda r, key: r["step"][np.argmax(r[key] < level)] if np.any(r[key] < level) else None
for a, r in runs.items():
  print(f"alpha={a:>5g}: final test loss {r['test_loss'][-1]:.4f}, |W - W0|/|W0| = "
        f"{r['weight_change'][-1]:.3f}, train / test below {config.threshold:g} x initial at steps "
        f"{first_below(r, 'train_mse')} / {first_below(r, 'test_loss')}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for color, (a, r) in zip(plt.cm.viridis(np.linspace(0, 0.85, len(runs))), runs.items()):
  axes[0].loglog(r["step"], r["train_mse"], ":", color=color, lw=1)
  axes[0].loglog(r["step"], r["test_loss"], color=color, label=f"alpha={a:g}")
  axes[1].semilogx(r["step"], r["weight_change"], color=color, label=f"alpha={a:g}")
axes[0].axhline(kernel_loss, color="k", ls="--", lw=1, label="initial-NTK regression")
axes[0].errorbar(config.num_steps, float(mc), yerr=float(se), fmt="ko", ms=4, label="Monte Carlo")
axes[0].set(xlabel="step", title="test (solid, exact) and train (dotted)")
axes[0].legend(fontsize=7)
axes[1].set(xlabel="step", title="|W - W0| / |W0|")
plt.show()
