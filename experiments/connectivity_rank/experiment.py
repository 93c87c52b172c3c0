"""Connectivity rank and lazy vs rich learning (Liu et al., ICLR 2024).

`run(config, workdir)`:
  1. Two-layer linear networks f = w2^T W1 x start from W1 of rank 1, 5 or 20 at one Frobenius norm,
     or from a rank-1 W1 aligned with the task; over many random tasks (one vmapped call per norm) it
     measures how much the tangent kernel turns during training, KA(K0, KT) = 1 - kernel distance
     (lower = richer), the initial kernel-target alignment against the closed form of
     `theory.lazy_rich.liu`, and the separations in standard errors.
  2. The recurrent variant: rate RNNs with recurrent weights of rank 1, 8 or 64 (same norm) trained on
     a two-alternative decision task; KA of the tangent kernel with respect to W_h, and |dW_h| / |W_h|.
Writes `config.json`, `metrics.jsonl` (one row per condition), `figures/*.png`, `results.json`.
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
from experiments.connectivity_rank import config as config_lib
from jaxlab import core
from jaxlab import deep_linear as dl
from jaxlab import lazy_rich as lr
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.lazy_rich import connectivity as conn
from theory.lazy_rich import liu as theory

INITIAL_ALIGNMENT_SE = 4.0  # closed-form E[KTA] vs the mean over tasks, in standard errors


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, [
      "input_dim", "hidden", "n_samples", "num_tasks", "learning_rate", "num_steps",
      "min_separation", "rnn.hidden", "rnn.seeds", "rnn.trial_steps", "rnn.batch",
      "rnn.learning_rate", "rnn.num_steps", "rnn.probe_trials", "rnn.clip_norm"])
  if config.rnn.num_steps % 4:
    raise ValueError("config.rnn.num_steps must be a multiple of 4 (each RNN run logs 4 rows)")
  if config.n_samples < config.input_dim:
    raise ValueError("config.n_samples must be >= config.input_dim to whiten the inputs")
  if any(not 1 <= r <= min(config.input_dim, config.hidden) for r in config.ranks):
    raise ValueError(f"config.ranks must lie in [1, min(input_dim, hidden)], got {config.ranks}")
  if not config.rich_norms or any(v <= 0 for v in config.rich_norms + config.lazy_norms):
    raise ValueError("config.rich_norms needs at least one norm, and all norms must be positive")
  if config.num_tasks < 2 or config.rnn.seeds < 2:
    raise ValueError("need at least two tasks and two RNN seeds for standard errors")


def _scalar(params, x):
  return dl.apply(params, x)[:, 0]


def linear_population(config, x, sigma, conditions):
  """Trains every (condition, task) pair; returns per-condition arrays over tasks."""
  d, h = config.input_dim, config.hidden
  optimizer = optax.sgd(config.learning_rate)
  step = core.make_train_step(
      lambda p, batch, key: (0.5 * jnp.mean((_scalar(p, batch[0]) - batch[1]) ** 2), {}), optimizer)

  def one_task(key, rank, aligned):
    k_task, k_w1, k_aligned, k_w2 = jax.random.split(key, 4)
    beta = jax.random.normal(k_task, (d,))
    beta = beta / jnp.linalg.norm(beta)
    y = x @ beta
    w1 = jnp.where(aligned, conn.aligned_rank_one(k_aligned, h, beta, sigma),
                   conn.low_rank_normal(k_w1, (h, d), rank, sigma))
    params0 = [w1, sigma / jnp.sqrt(h) * jax.random.normal(k_w2, (1, h))]
    final, history = core.scan_train(step, core.init_train_state(params0, optimizer, key), (x, y),
                                     num_steps=config.num_steps, log_every=config.num_steps)
    k0 = lr.empirical_ntk(_scalar, params0, x)
    k_end = lr.empirical_ntk(_scalar, final.params, x)
    residual = jnp.mean((_scalar(final.params, x) - y) ** 2) / jnp.mean(y ** 2)
    return {"kernel_alignment": 1.0 - lr.kernel_distance(k0, k_end),
            "initial_kta": lr.kernel_target_alignment(k0, y),
            "initial_kta_theory": theory.expected_initial_alignment(
                jnp.linalg.svd(w1, compute_uv=False), jnp.sum(params0[1] ** 2), d),
            "weight_change": lr.relative_weight_change(params0, final.params),
            "effective_rank": conn.effective_rank(w1), "final_residual": residual}

  keys = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 1), config.num_tasks)
  run_tasks = jax.jit(jax.vmap(one_task, in_axes=(0, None, None)))
  return {name: jax.tree.map(np.asarray, run_tasks(keys, rank, aligned))
          for name, (rank, aligned) in conditions.items()}


def rnn_population(config):
  """`ranks -> {rank: results}`: trains `rnn.seeds` RNNs per rank; one compile for all ranks."""
  c = config.rnn
  # Clipping: a rank-1 W_h carrying the full-rank norm can have a recurrent gain well above 1.
  optimizer = optax.chain(optax.clip_by_global_norm(c.clip_norm),
                          optax.sgd(c.learning_rate, momentum=c.momentum))

  def loss(params, batch, key):
    x, label = batch
    logits = conn.rnn_apply(params, x)
    return (optax.softmax_cross_entropy_with_integer_labels(logits, label).mean(),
            {"accuracy": jnp.mean(jnp.argmax(logits, -1) == label)})

  step = core.make_train_step(loss, optimizer)
  batch_fn = lambda data, key: conn.two_alternative_batch(key, c.batch, c.trial_steps, c.coherence)
  probe, _ = conn.two_alternative_batch(jax.random.key(config.seed + 7), c.probe_trials,
                                        c.trial_steps, c.coherence)
  recurrent_only = {"W_h": 1.0, "W_in": 0.0, "W_out": 0.0}  # the kernel of W_h, as in the paper

  def one_seed(key, rank):
    params0 = conn.rnn_init(key, c.hidden, 1, 2, rank)
    final, history = core.scan_train(step, core.init_train_state(params0, optimizer, key), None,
                                     num_steps=c.num_steps, log_every=c.num_steps // 4,
                                     batch_fn=batch_fn)
    k0 = lr.empirical_ntk(conn.rnn_apply, params0, probe, param_weights=recurrent_only)
    k_end = lr.empirical_ntk(conn.rnn_apply, final.params, probe, param_weights=recurrent_only)
    return {"kernel_alignment": 1.0 - lr.kernel_distance(k0, k_end),
            "weight_change": jnp.linalg.norm(final.params["W_h"] - params0["W_h"])
                             / jnp.linalg.norm(params0["W_h"]),
            "accuracy": history["accuracy"][-1]}

  keys = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 2), c.seeds)
  population = jax.jit(jax.vmap(one_seed, in_axes=(0, None)))  # the rank is traced: one compile
  return {rank: jax.tree.map(np.asarray, population(keys, rank)) for rank in c.ranks}


def _mean_se(values):
  values = np.asarray(values)
  return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def _separation(a, b):
  """(mean(a) - mean(b)) in standard errors of the difference (independent samples)."""
  (ma, sa), (mb, sb) = _mean_se(a), _mean_se(b)
  return (ma - mb) / np.hypot(sa, sb)


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(config.seed),
                                         (config.n_samples, config.input_dim)))
  x = jnp.sqrt(config.n_samples) * q  # exactly whitened: X^T X = n I
  conditions = {f"rank {r}": (r, False) for r in config.ranks}
  conditions["aligned rank 1"] = (1, True)
  full, low = f"rank {max(config.ranks)}", f"rank {min(config.ranks)}"
  # Populations are recomputed in full (one compiled call each, no checkpoints): start the file clean.
  writer = core.MetricWriter(os.path.join(workdir, "metrics.jsonl"), {"study": "connectivity_rank"})
  writer.clear()
  comparisons, linear = [], {}
  for sigma in tuple(config.rich_norms) + tuple(config.lazy_norms):
    out = linear_population(config, x, sigma, conditions)
    linear[sigma] = out
    for name, values in out.items():
      writer.write_rows([{"run": "linear", "sigma": sigma, "condition": name,
                          **{k: _mean_se(v)[0] for k, v in values.items()}}])
    ka = {name: values["kernel_alignment"] for name, values in out.items()}
    for name in (low, full):
      measured, se = _mean_se(out[name]["initial_kta"])
      predicted = float(np.mean(out[name]["initial_kta_theory"]))
      comparisons.append(common.Comparison(
          f"sigma={sigma:g}, {name}: initial kernel-target alignment, mean over tasks (tolerance "
          f"{INITIAL_ALIGNMENT_SE:g} s.e. = {INITIAL_ALIGNMENT_SE * se / predicted:.2g} relative)",
          predicted, measured, INITIAL_ALIGNMENT_SE * se / predicted))
    if sigma in config.lazy_norms:
      comparisons.append(common.Comparison(
          f"sigma={sigma:g} (lazy): smallest mean KA(K0, K_T) over the starts", config.lazy_alignment,
          min(_mean_se(v)[0] for v in ka.values()), relation=">="))
      continue
    comparisons += [
        common.Comparison(f"sigma={sigma:g}: KA({full}) - KA({low}) in standard errors (low rank "
                          f"richer)", config.min_separation, _separation(ka[full], ka[low]),
                          relation=">="),
        common.Comparison(f"sigma={sigma:g}: KA(aligned rank 1) - KA({full}) in standard errors "
                          f"(aligned laziest)", config.min_separation,
                          _separation(ka["aligned rank 1"], ka[full]), relation=">="),
    ]

  rnn = rnn_population(config)
  for rank, values in rnn.items():
    writer.write_rows([{"run": "rnn", "rank": rank,
                        **{k: _mean_se(v)[0] for k, v in values.items()}}])
  writer.close()
  lo_r, hi_r = min(config.rnn.ranks), max(config.rnn.ranks)
  rnn_separation = _separation(rnn[hi_r]["kernel_alignment"], rnn[lo_r]["kernel_alignment"])
  comparisons.append(common.Comparison(
      f"RNN: KA(rank {hi_r}) - KA(rank {lo_r}) of the W_h tangent kernel, in standard errors "
      f"({config.rnn.seeds} seeds; observed, the paper's direction)", 2.0, float(rnn_separation),
      relation=">="))
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, linear, rnn, figdir))
  return {"comparisons": comparisons, "figures": figures, "linear": linear, "rnn": rnn}


def _figures(config, linear, rnn, figdir) -> dict[str, str]:
  fig, axes = plotting.figure_grid(len(linear) + 1)
  for ax, (sigma, out) in zip(axes, linear.items()):
    names = list(out)
    means = [_mean_se(out[n]["kernel_alignment"]) for n in names]
    ax.bar(range(len(names)), [m for m, _ in means], yerr=[s for _, s in means], capsize=3,
           color=plotting.colors(len(names)))
    lo = min(m - 3 * s for m, s in means)
    ax.set_ylim(max(0.0, lo - 0.02), 1.0)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    ax.set_title(f"two-layer linear, |W1| = {sigma:g}: {config.num_tasks} tasks")
    ax.set_ylabel("KA(K0, K_T)  (lower = richer)")
  ax = axes[-1]
  ranks = list(rnn)
  means = [_mean_se(rnn[r]["kernel_alignment"]) for r in ranks]
  ax.bar(range(len(ranks)), [m for m, _ in means], yerr=[s for _, s in means], capsize=3,
         color=plotting.colors(len(ranks)))
  ax.set_xticks(range(len(ranks)), [f"rank {r}" for r in ranks])
  ax.set_title(f"RNN (W_h kernel): {config.rnn.seeds} seeds")
  return {"connectivity_rank": plotting.save(fig, os.path.join(figdir, "connectivity_rank.png"))}
