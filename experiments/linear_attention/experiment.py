"""Linear attention (Katharopoulos et al. 2020) and gated linear attention (Yang et al. 2024) as one
causal map in three forms: parallel (masked T x T), recurrent (an RNN over a d_k x d_v state) and
chunked (parallel within chunks, recurrent across). `run(config, workdir)` checks that the forms agree
to 1e-10 and are causal at several lengths, and times them (the recurrent form costs O(T d_k d_v),
the parallel one O(T^2)). Writes `config.json`, `metrics.jsonl`, `figures/*.png`, `results.json`.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from experiments import common
from experiments.linear_attention import config as config_lib
from jaxlab import core
from jaxlab.attention_dynamics import linear_attention as la
from jaxlab.core import config as config_checks
from jaxlab.core import plotting

FORM_TOLERANCE = 1e-10  # float64, relative to the output scale


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, ["key_dim", "value_dim", "chunk_size", "timing_repeats"])
  if any(t <= 1 for t in config.lengths):
    raise ValueError("config.lengths must be > 1")


def _inputs(key, t, config):
  k_q, k_k, k_v, k_g = jax.random.split(key, 4)
  q = la.elu_feature_map(jax.random.normal(k_q, (t, config.key_dim)))
  k = la.elu_feature_map(jax.random.normal(k_k, (t, config.key_dim)))
  v = jax.random.normal(k_v, (t, config.value_dim))
  log_alpha = jax.nn.log_sigmoid(jax.random.normal(k_g, (t, config.key_dim)) + 3.0)
  return q, k, v, log_alpha


def _forms(config):
  c = config.chunk_size
  return {
      "linear attention": {
          "parallel": lambda q, k, v, g: la.linear_attention_parallel(q, k, v),
          "recurrent": lambda q, k, v, g: la.linear_attention_recurrent(q, k, v),
          "chunked": lambda q, k, v, g: la.linear_attention_chunked(q, k, v, chunk_size=c)},
      "gated linear attention": {
          "parallel": la.gla_parallel, "recurrent": la.gla_recurrent,
          "chunked": lambda q, k, v, g: la.gla_chunked(q, k, v, g, chunk_size=c)},
  }


def _seconds(fn, args, repeats):
  jax.block_until_ready(fn(*args))  # compile
  best = np.inf
  for _ in range(repeats):
    begin = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - begin)
  return best


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  key = jax.random.key(config.seed)
  writer = core.MetricWriter(os.path.join(workdir, "metrics.jsonl"), {"study": "linear_attention"})
  writer.clear()
  comparisons, timings = [], {}
  for model, forms in _forms(config).items():
    for t in config.lengths:
      args = _inputs(jax.random.fold_in(key, t), t, config)
      outputs = {name: np.asarray(fn(*args)) for name, fn in forms.items()}
      scale = np.abs(outputs["parallel"]).max()
      gap = max(np.abs(outputs[name] - outputs["parallel"]).max() for name in outputs) / scale
      comparisons.append(common.Comparison(
          f"{model}, T={t}: max |form - parallel| / max |output| (recurrent, chunked by "
          f"{config.chunk_size})", 0.0, float(gap), FORM_TOLERANCE))
      # Causality: change the last quarter of the sequence; the first three quarters must not move.
      cut = 3 * t // 4
      changed = tuple(a.at[cut:].set(a[cut:] * 2.0 + 1.0) for a in args[:3]) + (args[3],)
      moved = max(float(np.abs(np.asarray(fn(*changed))[:cut] - outputs[name][:cut]).max())
                  for name, fn in forms.items())
      comparisons.append(common.Comparison(
          f"{model}, T={t}: causality, largest change before a perturbed suffix", 0.0, moved,
          FORM_TOLERANCE))
      for name, fn in forms.items():
        timings[(model, name, t)] = _seconds(fn, args, config.timing_repeats)
        writer.write_rows([{"model": model, "form": name, "T": t,
                            "seconds": timings[(model, name, t)]}])
  writer.close()
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, timings, figdir))
  return {"comparisons": comparisons, "figures": figures, "timings": timings}


def _figures(config, timings, figdir) -> dict[str, str]:
  models = sorted({m for m, _, _ in timings})
  fig, axes = plotting.figure_grid(len(models))
  lengths = np.array(config.lengths)
  for ax, model in zip(axes, models):
    for name, marker in (("parallel", "o"), ("recurrent", "s"), ("chunked", "^")):
      ax.loglog(lengths, [timings[(model, name, t)] for t in lengths], marker + "-", label=name)
    ax.set_title(f"{model}: wall time per call")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel("seconds (best of repeats, this CPU)")
    ax.legend(frameon=False, fontsize=8)
  return {"timings": plotting.save(fig, os.path.join(figdir, "timings.png"))}
