"""Grokking as the transition from lazy to rich (Kumar, Bordelon, Gershman & Pehlevan 2024).

`run(config, workdir)` trains the centered quadratic-activation network at each output scale alpha
(resumable engine runs from one initialisation), tracks the exact test loss and its three terms from
the summary statistics (`theory.lazy_rich.kumar`), checks that decomposition against Monte Carlo,
and compares the runs with kernel regression using the initial NTK (the alpha -> infinity limit).
Writes `config.json`, `metrics.jsonl`, `checkpoints/`, `figures/*.png`, `results.json`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.grokking import config as config_lib
from jaxlab import core
from jaxlab import lazy_rich as lr
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.lazy_rich import grokking as grok
from theory.lazy_rich import kumar as theory


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, [
      "dim", "n_train", "width", "epsilon", "base_learning_rate", "num_steps", "log_every",
      "checkpoint_every", "threshold", "monte_carlo_samples", "monte_carlo_se"])
  if len(config.alphas) < 2 or any(a <= 0 for a in config.alphas):
    raise ValueError(f"config.alphas needs at least two positive values, got {config.alphas}")
  if list(config.alphas) != sorted(config.alphas):
    raise ValueError("config.alphas must be increasing")


def monte_carlo_test_loss(key, w, w0, beta_star, alpha, epsilon, samples: int, chunk=100_000):
  """(mean, standard error) of (f~(x) - y(x))^2 over fresh x ~ N(0, I/D), in chunks."""
  dim = beta_star.shape[0]
  chunk = min(chunk, samples)

  def one(k):
    x = jax.random.normal(k, (chunk, dim)) / jnp.sqrt(dim)
    f = grok.apply(w, x, alpha, epsilon) - grok.apply(w0, x, alpha, epsilon)
    err = (f - grok.target(beta_star, x)) ** 2
    return jnp.sum(err), jnp.sum(err ** 2)

  sums, squares = jax.lax.map(one, jax.random.split(key, max(1, samples // chunk)))
  n = max(1, samples // chunk) * chunk
  mean = jnp.sum(sums) / n
  return mean, jnp.sqrt((jnp.sum(squares) / n - mean ** 2) / n)


def kernel_regression_loss(task, w0, alpha, epsilon):
  """Exact test loss of the min-norm interpolant of the network's linearization at w0
  (gradient descent on the linearized model run to t = infinity)."""
  f = lambda w, x: grok.apply(w, x, alpha, epsilon) - grok.apply(w0, x, alpha, epsilon)
  k = lr.empirical_ntk(f, w0, task.x)
  coefficients = jnp.linalg.lstsq(k, task.y)[0]
  _, vjp = jax.vjp(lambda w: f(w, task.x), w0)
  (dw,) = vjp(coefficients)  # J^T K^+ y
  v, q = grok.linearized_statistics(w0 + dw, w0)
  return theory.test_loss(v, q, task.beta_star, alpha, epsilon)


def _first_below(steps, values, level):
  below = np.nonzero(values < level)[0]
  return float(steps[below[0]]) if len(below) else float("inf")


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  k_task, k_init, k_mc = jax.random.split(jax.random.key(config.seed), 3)
  task = grok.make_task(k_task, config.dim, config.n_train)
  w0 = grok.init(k_init, config.width, config.dim)
  eps = config.epsilon
  initial_loss = float(theory.test_loss(jnp.zeros(config.dim), jnp.zeros((config.dim,) * 2),
                                        task.beta_star, 1.0, eps))
  runs, finals = {}, {}
  for alpha in config.alphas:
    optimizer = optax.sgd(config.base_learning_rate * config.width / alpha ** 2)

    def eval_fn(w, data, alpha=alpha):
      v, q = grok.centered_statistics(w, w0)
      variance, misalignment, linear = theory.test_loss_terms(v, q, task.beta_star, alpha, eps)
      return {"test_loss": variance + misalignment + linear, "variance": variance,
              "misalignment": misalignment, "linear_power": linear,
              "weight_change": lr.relative_weight_change(w0, w), "weight_norm": lr.parameter_norm(w)}

    state = core.init_train_state(w0, optimizer, jax.random.key(config.seed))
    result = core.train(
        core.make_train_step(grok.centered_loss, optimizer), state,
        (task.x, task.y, w0, jnp.asarray(alpha), jnp.asarray(eps)), num_steps=config.num_steps,
        log_every=config.log_every, checkpoint_every=config.checkpoint_every, workdir=workdir,
        run_name=f"alpha_{alpha:g}", eval_fn=eval_fn, progress=core.Progress(label=f"[alpha={alpha:g}] "))
    rows = result.history
    runs[alpha] = {name: np.array([r[name] for r in rows]) for name in rows[0] if name != "run"}
    runs[alpha]["train_mse"] = 2.0 * runs[alpha]["loss"]  # the loss is half the mean squared error
    finals[alpha] = result.state.params

  kernel_loss = float(kernel_regression_loss(task, w0, config.alphas[-1], eps))
  comparisons = _comparisons(config, runs, finals, task, w0, kernel_loss, initial_loss, k_mc)
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, runs, kernel_loss, initial_loss,
                                                  figdir))
  return {"comparisons": comparisons, "figures": figures, "runs": runs,
          "kernel_regression_loss": kernel_loss, "initial_loss": initial_loss}


def _comparisons(config, runs, finals, task, w0, kernel_loss, initial_loss, key):
  alphas = config.alphas
  rows = []
  middle = alphas[len(alphas) // 2]
  mc, se = monte_carlo_test_loss(key, finals[middle], w0, task.beta_star, middle, config.epsilon,
                                 config.monte_carlo_samples)
  exact = float(runs[middle]["test_loss"][-1])
  rows.append(common.Comparison(
      f"alpha={middle:g}, trained: exact test loss vs Monte Carlo ({config.monte_carlo_samples:.0e} "
      f"samples; tolerance {config.monte_carlo_se:g} s.e.)", exact, float(mc),
      config.monte_carlo_se * float(se) / exact))
  level = config.threshold * initial_loss
  final = {a: float(runs[a]["test_loss"][-1]) for a in alphas}
  delay, censored = {}, {}
  for a in alphas:
    t_train = _first_below(runs[a]["step"], runs[a]["train_mse"], level)
    t_test = _first_below(runs[a]["step"], runs[a]["test_loss"], level)
    censored[a] = not np.isfinite(t_test)  # then num_steps / t_train is a lower bound on the delay
    delay[a] = min(t_test, float(config.num_steps)) / t_train
  for lo, hi in zip(alphas[:-1], alphas[1:]):
    rows.append(common.Comparison(f"final test loss rises with alpha: alpha={hi:g} vs {lo:g}",
                                  final[lo], final[hi], relation=">="))
    if not censored[lo]:  # with both censored the two lower bounds say nothing about the order
      bound = " (test level never reached: a lower bound)" if censored[hi] else ""
      rows.append(common.Comparison(
          f"train-to-test delay t_test / t_train rises: alpha={hi:g} vs {lo:g}{bound}", delay[lo],
          delay[hi], relation=">="))
    rows.append(common.Comparison(
        f"relative weight change falls: alpha={hi:g} vs {lo:g}",
        float(runs[lo]["weight_change"][-1]), float(runs[hi]["weight_change"][-1]),
        relation="<="))
  rows.append(common.Comparison(
      f"final test loss at alpha={alphas[-1]:g} stays below initial-NTK kernel regression",
      kernel_loss, final[alphas[-1]], relation="<="))
  return rows


def _figures(config, runs, kernel_loss, initial_loss, figdir) -> dict[str, str]:
  colors = plotting.colors(len(config.alphas))
  fig, axes = plotting.figure_grid(3)
  for color, a in zip(colors, config.alphas):
    r = runs[a]
    axes[0].loglog(r["step"], r["train_mse"], color=color, linestyle=":", linewidth=1)
    axes[0].loglog(r["step"], r["test_loss"], color=color, label=f"alpha={a:g}")
    axes[2].semilogx(r["step"], r["weight_change"], color=color, label=f"alpha={a:g}")
  axes[0].axhline(kernel_loss, color="k", linestyle="--", linewidth=1, label="initial-NTK regression")
  axes[0].axhline(config.threshold * initial_loss, color="0.6", linewidth=0.8)
  axes[0].set_title("test (solid, exact) and train (dotted)")
  axes[0].set_xlabel("step")
  axes[0].legend(frameon=False, fontsize=7)
  middle = config.alphas[len(config.alphas) // 2]
  r = runs[middle]
  for name, style in (("variance", "-"), ("misalignment", "--"), ("linear_power", ":")):
    axes[1].loglog(r["step"], r[name], style, color="k", label=name)
  axes[1].set_title(f"test-loss terms, alpha={middle:g}")
  axes[1].set_xlabel("step")
  axes[1].legend(frameon=False, fontsize=7)
  axes[2].set_title("|W - W0| / |W0|")
  axes[2].set_xlabel("step")
  return {"grokking": plotting.save(fig, os.path.join(figdir, "grokking.png"))}
