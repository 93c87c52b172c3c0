"""Deep linear networks (Saxe, McClelland & Ganguli 2014): simulation over the exact solutions.

`run(config, workdir)` trains
  1. decoupled, balanced nets at each N_l in `config.layer_counts` (resumable runs of the engine), and
     compares their mode strengths with Saxe eq. (7) (N_l = 3) and the eq. (15) ODE (all N_l);
  2. a vmapped population of small random inits (N_l = 3), comparing learning half-times with the
     sigmoid started from each seed's effective initial strength (see theory.deep_linear).
It writes `config.json`, `metrics.jsonl`, `checkpoints/`, `figures/*.png` and `results.json` into
`workdir` and returns the comparisons and figure paths. Importable from a notebook.
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
from experiments.deep_linear import config as config_lib
from jaxlab import core
from jaxlab import deep_linear as dl
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from theory import deep_linear as theory

DECOUPLED_TOLERANCE = 0.01  # max |u_sim - u_theory| / s over time and modes (issue 2, Saxe test 1)
HALF_TIME_TOLERANCE = 0.10  # two strongest modes, small random init (issue 2)


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, [
      "n_in", "n_hidden", "n_out", "learning_rate", "u0_two_layer", "u0_deep", "num_steps",
      "log_every", "checkpoint_every", "population.num_seeds", "population.init_scale",
      "population.num_steps", "population.log_every"])
  if any(n < 2 for n in config.layer_counts):
    raise ValueError(f"config.layer_counts must be >= 2 (layers of units), got {config.layer_counts}")
  if len(config.singular_values) > min(config.n_in, config.n_hidden, config.n_out):
    raise ValueError("config.singular_values has more modes than the narrowest layer can carry")


def _mode_eval(task: dl.Task):
  r = len(task.s)
  return lambda params, data: {"u": dl.mode_strengths(params, task.U, task.V, r)}


def _decoupled_run(config, task, n_layers, workdir) -> tuple[np.ndarray, np.ndarray, float]:
  """Trains one balanced decoupled net; returns (steps, u[steps, modes], u0)."""
  u0 = config.u0_two_layer if n_layers == 3 else config.u0_deep
  r = len(task.s)
  scales = jnp.full((n_layers - 1, r), u0 ** (1.0 / (n_layers - 1)))
  hidden = [config.n_hidden] * (n_layers - 2)
  key = jax.random.fold_in(jax.random.key(config.seed), n_layers)
  params = dl.init_decoupled(task.U, task.V, scales, hidden, key=jax.random.fold_in(key, 0))
  optimizer = optax.sgd(config.learning_rate)
  state = core.init_train_state(params, optimizer, jax.random.fold_in(key, 1))
  result = core.train(
      core.make_train_step(dl.loss, optimizer), state, (task.x, task.y),
      num_steps=config.num_steps, log_every=config.log_every,
      checkpoint_every=config.checkpoint_every, workdir=workdir, run_name=f"decoupled_L{n_layers}",
      eval_fn=_mode_eval(task), progress=core.Progress(label=f"[N_l={n_layers}] "))
  steps = np.array([row["step"] for row in result.history], dtype=float)
  u = np.array([row["u"] for row in result.history])
  return steps, u, u0


def decoupled_theory(config, task, n_layers, u0, steps) -> np.ndarray:
  """Theory for the decoupled runs at the logged steps: eq. (7) for N_l = 3, the eq. (15) ODE else."""
  tau = 1.0 / config.learning_rate
  if n_layers == 3:
    return np.asarray(theory.balanced_mode_strength(steps[:, None], task.s, u0, tau))
  times, u = theory.deep_mode_strength(task.s, u0, tau, n_layers, num_saves=len(steps),
                                       save_every=float(config.log_every))
  np.testing.assert_allclose(times, steps)
  return np.asarray(u)


def population_run(config, task) -> dict[str, np.ndarray]:
  """Small random inits, one per seed, trained in one vmapped call; half-times vs theory."""
  pop = config.population
  net = dl.DeepLinearConfig((config.n_in, config.n_hidden, config.n_out), pop.init_scale)
  init_fn = lambda key: dl.init(key, net)
  keys = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 1000), pop.num_seeds)
  _, history = core.train_population(
      init_fn, dl.loss, optax.sgd(config.learning_rate), keys, None, (task.x, task.y),
      num_steps=pop.num_steps, log_every=pop.log_every, eval_fn=_mode_eval(task))
  steps = np.asarray(history["step"][0], dtype=float)
  u = np.asarray(history["u"])  # [seeds, rows, modes]
  # Each seed's initial params, rebuilt exactly as core.init_run builds them.
  params0 = jax.vmap(lambda k: init_fn(jax.random.split(k)[0]))(keys)
  a0, b0 = jax.vmap(lambda p: dl.two_layer_mode_vectors(p, task.U, task.V, len(task.s)))(params0)
  u0_eff = np.asarray(theory.effective_initial_strength(a0, b0))  # [seeds, modes]
  tau = 1.0 / config.learning_rate
  return {
      "steps": steps, "u": u, "u0_eff": u0_eff,
      "half_time_sim": dl.crossing_times(steps, u, np.asarray(task.s) / 2),
      "half_time_theory": np.asarray(theory.half_time(task.s, u0_eff, tau)),
      "u_theory": np.asarray(theory.balanced_mode_strength(
          steps[None, :, None], task.s, u0_eff[:, None, :], tau)),
  }


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  task = dl.make_task(jax.random.key(config.seed), config.n_in, config.n_out,
                      config.singular_values)
  s = np.asarray(task.s)
  comparisons: list[common.Comparison] = []

  decoupled = {}
  for n_layers in config.layer_counts:
    steps, u, u0 = _decoupled_run(config, task, n_layers, workdir)
    u_theory = decoupled_theory(config, task, n_layers, u0, steps)
    decoupled[n_layers] = (steps, u, u_theory)
    comparisons.append(common.Comparison(
        f"N_l={n_layers} decoupled: max_t,alpha |u - u_theory| / s_alpha", 0.0,
        float(np.max(np.abs(u - u_theory) / s)), DECOUPLED_TOLERANCE))
    half_sim = dl.crossing_times(steps, u, s / 2)
    half_theory = dl.crossing_times(steps, u_theory, s / 2)
    comparisons.append(common.Comparison(
        f"N_l={n_layers} decoupled: half-time of mode s={s[0]:g} (steps)",
        float(half_theory[0]), float(half_sim[0]), DECOUPLED_TOLERANCE))

  pop = population_run(config, task)
  mean_sim, mean_theory = pop["half_time_sim"].mean(0), pop["half_time_theory"].mean(0)
  for alpha in range(min(2, len(s))):
    comparisons.append(common.Comparison(
        f"N_l=3 random init ({config.population.num_seeds} seeds): mean half-time, s={s[alpha]:g}",
        float(mean_theory[alpha]), float(mean_sim[alpha]), HALF_TIME_TOLERANCE))
  ordered = np.all(np.diff(pop["half_time_sim"], axis=1) > 0, axis=1).mean()
  comparisons.append(common.Comparison(
      "N_l=3 random init: fraction of seeds whose half-times are ordered by s", 1.0,
      float(ordered), 0.0))

  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, task, decoupled, pop, figdir))
  return {"comparisons": comparisons, "figures": figures, "decoupled": decoupled,
          "population": pop}


def _figures(config, task, decoupled, pop, figdir) -> dict[str, str]:
  s = np.asarray(task.s)
  tau = 1.0 / config.learning_rate
  colors = plotting.colors(len(s))
  fig, axes = plotting.figure_grid(len(decoupled))
  for ax, (n_layers, (steps, u, u_theory)) in zip(axes, decoupled.items()):
    for alpha in range(len(s)):
      plotting.theory_over_simulation(ax, steps / tau, u[:, alpha], u_theory[:, alpha],
                                      color=colors[alpha], label=f"s={s[alpha]:g}")
    learned = np.all(u >= 0.99 * s, axis=1)
    if learned.any():  # the sigmoids are over by then; the flat tail says nothing
      ax.set_xlim(0, 1.3 * steps[np.argmax(learned)] / tau)
    ax.set_title(f"N_l = {n_layers} layers, decoupled init")
    ax.set_xlabel("t / tau")
  axes[0].set_ylabel("mode strength u_alpha")
  axes[0].legend(frameon=False, fontsize=8, loc="lower right")
  paths = {"mode_strengths": plotting.save(fig, os.path.join(figdir, "mode_strengths.png"))}

  fig, axes = plotting.figure_grid(1, width=5.0)
  ax = axes[0]
  steps = pop["steps"] / tau
  for alpha in range(len(s)):
    lo, hi = np.percentile(pop["u"][:, :, alpha], [5, 95], axis=0)
    plotting.theory_over_simulation(ax, steps, np.median(pop["u"][:, :, alpha], 0),
                                    np.median(pop["u_theory"][:, :, alpha], 0), color=colors[alpha],
                                    band=(lo, hi), label=f"s={s[alpha]:g}")
  ax.set_title(f"N_l = 3, small random init: {config.population.num_seeds} seeds (5-95%)")
  ax.set_xlabel("t / tau")
  ax.set_ylabel("mode strength u_alpha")
  ax.legend(frameon=False, fontsize=8, loc="lower right")
  paths["population"] = plotting.save(fig, os.path.join(figdir, "population.png"))
  return paths
