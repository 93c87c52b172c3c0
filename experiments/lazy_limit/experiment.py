"""The lazy limit (Chizat, Oyallon & Bach 2019): as the output scale alpha grows, a centered two-layer
tanh network trained with step eta / alpha^2 approaches its tangent model, and both the function gap and
the relative weight change fall as 1 / alpha.

`run(config, workdir)` trains one network per alpha (resumable engine runs, same initial weights),
compares each with the kernel-gradient-descent limit of `theory.lazy_rich.chizat` (computed from the
empirical NTK at initialisation), and fits the log-log slopes. Writes `config.json`, `metrics.jsonl`,
`checkpoints/`, `figures/*.png`, `results.json`.
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
from experiments.lazy_limit import config as config_lib
from jaxlab import core
from jaxlab import lazy_rich as lr
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.nn import mlp_apply, mlp_init
from theory.lazy_rich import chizat as theory

SLOPE_TOLERANCE = 0.15  # issue 3: log-log slope within [-1.15, -0.85]
DISPLACEMENT_TOLERANCE = 0.01  # alpha * |w - w0| / |w0| against its lazy-limit value


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, ["n_train", "n_test", "input_dim", "width", "teacher_width",
                                        "learning_rate", "num_steps", "log_every",
                                        "checkpoint_every", "slope_min_alpha"])
  if any(a <= 0 for a in config.alphas):
    raise ValueError(f"config.alphas must all be positive, got {config.alphas}")
  if sum(a >= config.slope_min_alpha for a in config.alphas) < 2:
    raise ValueError("need at least two alphas >= config.slope_min_alpha to fit a slope")


def make_problem(config):
  """Inputs on the sphere of radius sqrt(d), a ReLU teacher, and the student's initial weights."""
  k_x, k_test, k_teacher, k_student = jax.random.split(jax.random.key(config.seed), 4)
  d = config.input_dim

  def sphere(key, n):
    z = jax.random.normal(key, (n, d))
    return z / jnp.linalg.norm(z, axis=1, keepdims=True) * jnp.sqrt(d)

  x, x_test = sphere(k_x, config.n_train), sphere(k_test, config.n_test)
  teacher = mlp_init(k_teacher, (d, config.teacher_width, 1))
  target = lambda inputs: mlp_apply(teacher, inputs, jax.nn.relu)[:, 0]
  params0 = mlp_init(k_student, (d, config.width, 1))
  return x, target(x), x_test, target(x_test), params0


def student(params, x):
  return mlp_apply(params, x, jnp.tanh)[:, 0]


def centered_loss(params, batch, key):
  """R = 1/(2n) |alpha (h(w) - h(w0)) - y|^2; h(w0) rides in the batch so alpha can vary as data."""
  del key
  x, y, alpha, h0 = batch
  f = alpha * (student(params, x) - h0)
  return 0.5 * jnp.mean((f - y) ** 2), {}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  x, y, x_test, y_test, params0 = make_problem(config)
  h0, h0_test = student(params0, x), student(params0, x_test)
  num_saves = config.num_steps // config.log_every
  k = lr.empirical_ntk(student, params0, x)
  k_test = lr.empirical_ntk(student, params0, x_test, x)
  lazy_f, lazy_f_test, lazy_displacement = map(np.asarray, theory.lazy_limit(
      k, k_test, y, step=config.learning_rate / config.n_train, steps=config.num_steps,
      num_saves=num_saves))
  w0_norm = float(lr.parameter_norm(params0))

  def eval_fn(params, data):
    _, _, alpha, _ = data
    return {"f": alpha * (student(params, x) - h0),
            "f_test": alpha * (student(params, x_test) - h0_test),
            "weight_change": lr.relative_weight_change(params0, params),
            "linearization_gap": lr.linearization_gap(student, params0, params, x_test)}

  runs = {}
  for alpha in config.alphas:
    optimizer = optax.sgd(lr.lazy_learning_rate(config.learning_rate, alpha))
    state = core.init_train_state(params0, optimizer, jax.random.key(config.seed))
    result = core.train(core.make_train_step(centered_loss, optimizer), state,
                        (x, y, jnp.asarray(alpha), h0), num_steps=config.num_steps,
                        log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                        workdir=workdir, run_name=f"alpha_{alpha:g}", eval_fn=eval_fn,
                        progress=core.Progress(label=f"[alpha={alpha:g}] "))
    f = np.array([row["f"] for row in result.history])
    f_test = np.array([row["f_test"] for row in result.history])
    runs[alpha] = {
        "steps": np.array([row["step"] for row in result.history]),
        "gap": np.linalg.norm(f - lazy_f, axis=1) / np.linalg.norm(lazy_f, axis=1),
        "gap_test": np.linalg.norm(f_test - lazy_f_test, axis=1) / np.linalg.norm(lazy_f_test,
                                                                                 axis=1),
        "weight_change": np.array([row["weight_change"] for row in result.history]),
        "train_loss": 0.5 * np.mean((f[-1] - np.asarray(y)) ** 2),
        "test_loss": 0.5 * np.mean((f_test[-1] - np.asarray(y_test)) ** 2),
    }

  comparisons = _comparisons(config, runs, lazy_displacement[-1] / w0_norm)
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, runs, lazy_displacement / w0_norm, figdir))
  return {"comparisons": comparisons, "figures": figures, "runs": runs,
          "lazy_test_loss": 0.5 * float(np.mean((lazy_f_test[-1] - np.asarray(y_test)) ** 2))}


def _comparisons(config, runs, displacement_limit) -> list[common.Comparison]:
  fit = [a for a in config.alphas if a >= config.slope_min_alpha]
  slope = lambda key: float(theory.log_log_slope(fit, [runs[a][key][-1] for a in fit]))
  rows = [
      common.Comparison(f"log-log slope of |f - f_lazy| / |f_lazy| (train) vs alpha, alpha >= "
                        f"{config.slope_min_alpha:g}", -1.0, slope("gap"), SLOPE_TOLERANCE),
      common.Comparison("same on held-out inputs", -1.0, slope("gap_test"), SLOPE_TOLERANCE),
      common.Comparison("log-log slope of the relative weight change vs alpha", -1.0,
                        slope("weight_change"), SLOPE_TOLERANCE),
  ]
  for a in fit:
    rows.append(common.Comparison(f"alpha={a:g}: alpha * |w - w0| / |w0| vs its lazy limit",
                                  float(displacement_limit), float(a * runs[a]["weight_change"][-1]),
                                  DISPLACEMENT_TOLERANCE))
  return rows


def _figures(config, runs, displacement_limit, figdir) -> dict[str, str]:
  alphas = np.array(config.alphas)
  colors = plotting.colors(len(alphas))
  fig, axes = plotting.figure_grid(3)
  ax = axes[0]
  gaps = np.array([runs[a]["gap"][-1] for a in alphas])
  changes = np.array([runs[a]["weight_change"][-1] for a in alphas])
  ax.loglog(alphas, gaps, "o-", label="|f - f_lazy| / |f_lazy|")
  ax.loglog(alphas, changes, "s-", label="|w - w0| / |w0|")
  ax.loglog(alphas, displacement_limit[-1] / alphas, "k--", linewidth=1,
            label="lazy limit C / alpha")
  ax.loglog(alphas, gaps[-1] * alphas[-1] / alphas, "k:", linewidth=1, label="slope -1")
  ax.set_xlabel("output scale alpha")
  ax.set_title(f"at T = {config.learning_rate * config.num_steps:g}")
  ax.legend(frameon=False, fontsize=7)
  t = runs[alphas[0]]["steps"] * config.learning_rate
  for color, a in zip(colors, alphas):
    axes[1].plot(t, a * runs[a]["gap"], color=color, label=f"alpha={a:g}")
    plotting.theory_over_simulation(axes[2], t, a * runs[a]["weight_change"], displacement_limit,
                                    color=color, label=f"alpha={a:g}")
  axes[1].set_title("alpha x gap collapses as alpha grows")
  axes[1].set_xlabel("time t = eta k")
  axes[1].legend(frameon=False, fontsize=7)
  axes[2].set_title("alpha x weight change; lazy limit dashed")
  axes[2].set_xlabel("time t = eta k")
  return {"lazy_limit": plotting.save(fig, os.path.join(figdir, "lazy_limit.png"))}
