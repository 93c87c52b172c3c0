"""Linear attention as a Hebbian associative memory: Monte-Carlo retrieval error against the closed
forms of `theory.attention.hebbian` (unit and Gaussian keys, several heads), the capacity at a fixed
signal-to-noise ratio growing linearly in d_k, and the worst-case coherence bound in every trial.
Writes `config.json`, `metrics.jsonl`, `figures/*.png`, `results.json`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import numpy as np

from experiments import common
from experiments.hebbian_memory import config as config_lib
from jaxlab import core
from jaxlab import deep_linear as dl  # crossing_times
from jaxlab.attention_dynamics import hebbian
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from theory.attention import hebbian as theory

SLOPE_TOLERANCE = 0.05  # log-log slope of (n_max - 1) against d_k: 1 +- 0.05
CAPACITY_TOLERANCE = 0.05  # relative, against the continuous capacity 1 + d_k / snr


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, ["value_dim", "trials", "tolerance_se", "snr",
                                        "capacity_trials"])
  if len(config.capacity_key_dims) < 2:
    raise ValueError("config.capacity_key_dims needs at least two dimensions to fit a slope")
  if any(n < 2 for n in config.item_counts) or any(h < 1 for h in config.heads):
    raise ValueError("config.item_counts must be >= 2 and config.heads >= 1")


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  key = jax.random.key(config.seed)
  writer = core.MetricWriter(os.path.join(workdir, "metrics.jsonl"), {"study": "hebbian_memory"})
  writer.clear()
  comparisons, errors = [], {}
  forms = {"unit": theory.relative_error_unit_keys, "gaussian": theory.relative_error_gaussian_keys}
  cases = [(kind, n, d_k) for kind in forms for n in config.item_counts for d_k in config.key_dims]
  for case_index, (kind, n, d_k) in enumerate(cases):
    mean, se = map(float, hebbian.monte_carlo_error(
        jax.random.fold_in(key, case_index), n, d_k, config.value_dim, config.trials, kind))
    predicted = float(forms[kind](n, d_k))
    errors[(kind, n, d_k)] = (mean, se)
    writer.write_rows([{"keys": kind, "n": n, "d_k": d_k, "error": mean, "se": se,
                        "theory": predicted}])
    comparisons.append(common.Comparison(f"{kind} keys, n={n}, d_k={d_k}: relative retrieval error",
                                         predicted, mean, config.tolerance_se * se / predicted))
  n_heads, d_heads = max(config.item_counts), max(config.key_dims)
  for heads in config.heads:
    mean, se = map(float, hebbian.monte_carlo_error(jax.random.fold_in(key, 10_000 + heads), n_heads,
                                                    d_heads, config.value_dim, config.trials,
                                                    heads=heads))
    predicted = float(theory.relative_error_heads(n_heads, d_heads, heads))
    comparisons.append(common.Comparison(
        f"{heads} head(s) averaged, n={n_heads}, d_k={d_heads}: relative error (n-1)/(H d_k)",
        predicted, mean, config.tolerance_se * se / predicted))

  chain_trials = config.trials * config.depth_trial_factor  # products of Grams: heavy tails
  for depth in config.depths:
    mean, se = map(float, hebbian.monte_carlo_chain_error(
        jax.random.fold_in(key, 40_000 + depth), n_heads // 4, d_heads // 4, depth, chain_trials))
    predicted = float(theory.relative_error_chain(n_heads // 4, d_heads // 4, depth))
    comparisons.append(common.Comparison(
        f"depth {depth} (chained retrieval), n={n_heads // 4}, d_k={d_heads // 4}: (1 + (n-1)/d_k)^L"
        f" - 1", predicted, mean, config.tolerance_se * se / predicted))

  capacities = {}
  for d_k in config.capacity_key_dims:
    max_items = int(2 * d_k / config.snr) + 4
    curve = np.asarray(hebbian.capacity_curve(jax.random.fold_in(key, 20_000 + d_k), d_k,
                                              config.value_dim, max_items, config.capacity_trials))
    # The continuous capacity: where the measured error curve crosses 1 / snr (interpolated), to
    # compare with 1 + d_k / snr without the integer rounding at the threshold.
    n_star = float(dl.crossing_times(np.arange(1, max_items + 1), curve[:, None],
                                     np.array([1.0 / config.snr]))[0])
    capacities[d_k] = (n_star, curve)
  dims = np.array(config.capacity_key_dims, float)
  measured = np.array([capacities[d][0] for d in config.capacity_key_dims], float)
  slope = float(np.polyfit(np.log(dims), np.log(measured - 1.0), 1)[0])
  comparisons.append(common.Comparison(
      f"capacity at SNR {config.snr:g}: log-log slope of n* - 1 against d_k", 1.0, slope,
      SLOPE_TOLERANCE))
  for d_k in (config.capacity_key_dims[0], config.capacity_key_dims[-1]):
    comparisons.append(common.Comparison(
        f"capacity at d_k={d_k}: n where the error reaches 1/SNR (interpolated) vs 1 + d_k/SNR",
        1.0 + d_k / config.snr, capacities[d_k][0], CAPACITY_TOLERANCE))

  def worst(k):
    k_keys, k_values = jax.random.split(k)
    n = max(config.item_counts)
    crosstalk, mu, vmax = hebbian.crosstalk_and_coherence(
        hebbian.unit_keys(k_keys, n, min(config.key_dims)),
        jax.random.normal(k_values, (n, config.value_dim)))
    return crosstalk / theory.coherence_bound(n, mu, vmax)

  ratios = np.asarray(jax.vmap(worst)(jax.random.split(jax.random.fold_in(key, 30_000),
                                                        config.trials)))
  comparisons.append(common.Comparison(
      f"worst case: max over {config.trials} trials of |xi_j| / ((n-1) mu max|v|)", 1.0,
      float(ratios.max()), relation="<="))
  writer.close()
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, errors, capacities, figdir))
  return {"comparisons": comparisons, "figures": figures, "errors": errors,
          "capacities": capacities, "bound_ratios": ratios}


def _figures(config, errors, capacities, figdir) -> dict[str, str]:
  fig, axes = plotting.figure_grid(2)
  colors = plotting.colors(len(config.key_dims))
  for color, d_k in zip(colors, config.key_dims):
    for kind, marker, formula in (("unit", "o", theory.relative_error_unit_keys),
                                  ("gaussian", "s", theory.relative_error_gaussian_keys)):
      ns = np.array(config.item_counts)
      axes[0].loglog(ns, [errors[(kind, n, d_k)][0] for n in ns], marker, color=color,
                     label=f"{kind}, d_k={d_k}")
      axes[0].loglog(ns, formula(ns, d_k), "--", color=color, linewidth=0.8)
  axes[0].set_xlabel("stored associations n")
  axes[0].set_ylabel("relative retrieval error")
  axes[0].set_title("Monte Carlo (markers) vs (n -+ 1)/d_k (dashed)")
  axes[0].legend(frameon=False, fontsize=6)
  dims = np.array(config.capacity_key_dims)
  axes[1].plot(dims, [capacities[d][0] for d in dims], "o-", label="measured")
  axes[1].plot(dims, 1 + dims / config.snr, "k--", label="1 + d_k / SNR")
  axes[1].set_xlabel("key dimension d_k")
  axes[1].set_ylabel(f"capacity at SNR {config.snr:g}")
  axes[1].legend(frameon=False, fontsize=8)
  return {"hebbian_memory": plotting.save(fig, os.path.join(figdir, "hebbian_memory.png"))}
