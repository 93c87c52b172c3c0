"""In-context vs in-weights learning as a function of the training data (Reddy 2024, ICLR, sec. 3 and
fig. 2; Chan et al. 2022, NeurIPS, figs. 2-4), in Reddy's minimal attention network.

Bursty sequences (the query's class appears in the context) over many classes make the network
learn in context (ICL on novel classes > 0.9, in-weights accuracy low); without bursts, or with
few classes, it memorises the class -> label map instead (in-weights > 0.9, ICL near chance); a
Zipfian class distribution (alpha ~ 1) lets both coexist.

`run(config, workdir)` trains, for every cell (B, K) of the phase diagram and for the Zipf pair,
all seeds in one vmapped compiled call (`core.train_population`), evaluates the novel-class (IC),
flipped-label (IC2) and in-weights (IW) accuracies every `log_every` steps, and draws the phase
diagrams. Each finished cell is written to `cells/<name>.json`; re-running skips those.
Writes `config.json`, `cells/`, `figures/*.png`, `results.json`.
"""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.induction_data import config as config_lib
from jaxlab import core
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.induction import data, model

# Acceptance (issue 4; the numbers measured on 2-core CPU when set are in each row's comment).
ICL_WINS_IC, ICL_WINS_IW = 0.9, 0.15  # B=2, K=1024: IC 0.98, IW 0.06
IWL_WINS_IW, IWL_WINS_IC = 0.9, 0.1  # no bursts or K=64: IW 0.97-0.99, IC 0.03-0.05
MIN_K_EFFECT = 0.5  # IC(K = max) - IC(K = min) at B = 2
ZIPF_IC, ZIPF_IW = 0.5, 0.5  # both above at alpha = 1


class Cell(NamedTuple):
  burstiness: int  # 0: no bursty sequences
  num_classes: int
  p_bursty: float
  zipf_alpha: float

  @property
  def name(self) -> str:
    return f"B{self.burstiness}_K{self.num_classes}_p{self.p_bursty:g}_a{self.zipf_alpha:g}"


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, ["num_labels", "context_pairs", "dim", "seeds",
                                        "batch_size", "learning_rate", "num_steps", "log_every",
                                        "eval_size"])
  for b in config.burstiness_values:
    if b < 0 or (b and config.context_pairs % b):
      raise ValueError(f"config.burstiness_values: B={b} must be 0 or divide N="
                       f"{config.context_pairs}")
  for k in config.num_classes_values:
    if k % config.num_labels:
      raise ValueError(f"config.num_classes_values: K={k} must be a multiple of L="
                       f"{config.num_labels}")
  if config.zipf_cell and len(config.zipf_cell) != 3:
    raise ValueError("config.zipf_cell must be () or (B, K, p_bursty)")
  if config.num_steps % config.log_every:
    raise ValueError("config.num_steps must be a multiple of config.log_every")


def cells(config) -> list[Cell]:
  grid = [Cell(b, k, config.p_bursty if b else 0.0, 0.0)
          for b in config.burstiness_values for k in config.num_classes_values]
  if config.zipf_cell:
    b, k, p = config.zipf_cell
    grid += [Cell(b, k, p, 0.0), Cell(b, k, p, config.zipf_alpha)]
  return list(dict.fromkeys(grid))


def task_config(config, cell: Cell) -> data.ReddyConfig:
  return data.ReddyConfig(
      num_classes=cell.num_classes, num_labels=config.num_labels,
      context_pairs=config.context_pairs, burstiness=max(cell.burstiness, 1),
      p_bursty=cell.p_bursty, zipf_alpha=cell.zipf_alpha,
      within_class_noise=config.within_class_noise, dim=config.dim,
      num_novel_classes=4 * config.num_labels)


def _accuracy(params, batch):
  logits, _ = model.reddy_apply(params, batch.inputs)
  return jnp.mean(jnp.argmax(logits, -1) == batch.target)


def _eval_fn(params, d):
  return {name: _accuracy(params, d[name]) for name in ("ic", "ic2", "iw")}


def train_cell(config, cell: Cell) -> dict[str, Any]:
  """All seeds of one cell in one compiled call; returns the histories [seeds, rows] and finals."""
  cfg = task_config(config, cell)
  k_task, k_ic, k_ic2, k_iw, k_seeds = jax.random.split(jax.random.key(config.seed), 5)
  task = data.make_task(k_task, cfg)
  evals = {"task": task, "ic": data.novel_icl_set(k_ic, task, cfg, config.eval_size),
           "ic2": data.flipped_label_set(k_ic2, task, cfg, config.eval_size),
           "iw": data.in_weights_set(k_iw, task, cfg, config.eval_size)}
  net = model.ReddyNetConfig(cfg.input_dim, config.num_labels)
  _, history = core.train_population(
      lambda k: model.reddy_init(k, net), model.reddy_loss, optax.adam(config.learning_rate),
      jax.random.split(k_seeds, config.seeds), data=evals, num_steps=config.num_steps,
      log_every=config.log_every,
      batch_fn=lambda d, k: data.sample_batch(k, d["task"], cfg, config.batch_size),
      eval_fn=_eval_fn)
  h = {k: np.asarray(v).tolist() for k, v in history.items()
       if k in ("step", "loss", "ic", "ic2", "iw")}
  final = {k: float(np.mean(np.asarray(history[k])[:, -2:])) for k in ("ic", "ic2", "iw")}
  return {"cell": cell._asdict(), "history": h, "final": final}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  os.makedirs(os.path.join(workdir, "cells"), exist_ok=True)
  results = {}
  for i, cell in enumerate(cells(config)):
    path = os.path.join(workdir, "cells", cell.name + ".json")
    if os.path.exists(path):  # finished before a crash or in an earlier run
      with open(path) as f:
        results[cell] = json.load(f)
      continue
    (res, seconds) = core.wall_time(lambda: train_cell(config, cell))
    res["seconds"] = seconds
    print(f"[cell {i + 1}/{len(cells(config))}] {cell.name}: IC {res['final']['ic']:.3f} "
          f"IW {res['final']['iw']:.3f} ({seconds:.0f} s)", flush=True)
    if jax.process_index() == 0:
      with open(path + ".tmp", "w") as f:
        json.dump(res, f)
      os.replace(path + ".tmp", path)
    results[cell] = res
  comparisons = _comparisons(config, results)
  figures = common.finish(workdir, comparisons, lambda figdir: _figures(config, results, figdir))
  return {"comparisons": comparisons, "figures": figures, "results": results}


def _final(results, b, k, p, a=0.0):
  return results[Cell(b, k, p, a)]["final"]


def _comparisons(config, results) -> list[common.Comparison]:
  rows = []
  k_max, k_min = max(config.num_classes_values), min(config.num_classes_values)
  bursts = [b for b in config.burstiness_values if b]
  b_icl = 2 if 2 in bursts else (max(bursts) if bursts else None)
  seeds = f"mean of {config.seeds} seed(s)"
  if b_icl is not None:
    f = _final(results, b_icl, k_max, config.p_bursty)
    tag = f"bursty (B={b_icl}), K={k_max}, {seeds}"
    rows += [common.Comparison(f"{tag}: ICL accuracy on novel classes", ICL_WINS_IC, f["ic"],
                               relation=">="),
             common.Comparison(f"{tag}: in-weights accuracy", ICL_WINS_IW, f["iw"],
                               relation="<=")]
  if 0 in config.burstiness_values:
    f = _final(results, 0, k_max, 0.0)
    tag = f"no bursts, K={k_max}, {seeds}"
    rows += [common.Comparison(f"{tag}: in-weights accuracy", IWL_WINS_IW, f["iw"],
                               relation=">="),
             common.Comparison(f"{tag}: ICL accuracy on novel classes (chance 1/L = "
                               f"{1 / config.num_labels:.3f})", IWL_WINS_IC, f["ic"],
                               relation="<=")]
  if b_icl is not None and k_min < k_max:
    f = _final(results, b_icl, k_min, config.p_bursty)
    tag = f"bursty (B={b_icl}), few classes K={k_min}, {seeds}"
    rows += [common.Comparison(f"{tag}: in-weights accuracy", IWL_WINS_IW, f["iw"],
                               relation=">="),
             common.Comparison(f"{tag}: ICL accuracy on novel classes", IWL_WINS_IC, f["ic"],
                               relation="<="),
             common.Comparison(f"B={b_icl}: ICL accuracy at K={k_max} minus at K={k_min}",
                               MIN_K_EFFECT,
                               _final(results, b_icl, k_max, config.p_bursty)["ic"] - f["ic"],
                               relation=">=")]
  if config.zipf_cell:
    b, k, p = config.zipf_cell
    f = _final(results, b, k, p, config.zipf_alpha)
    tag = f"Zipf alpha={config.zipf_alpha:g} (B={b}, K={k}, p_bursty={p:g}), {seeds}"
    rows += [common.Comparison(f"{tag}: ICL accuracy on novel classes", ZIPF_IC, f["ic"],
                               relation=">="),
             common.Comparison(f"{tag}: in-weights accuracy (Zipf-weighted queries)", ZIPF_IW,
                               f["iw"], relation=">=")]
  return rows


def _figures(config, results, figdir) -> dict[str, str]:
  out = {}
  bs, ks = list(config.burstiness_values), list(config.num_classes_values)
  fig, axes = plotting.figure_grid(3)
  for ax, (key, title) in zip(axes, (("ic", "ICL accuracy (novel classes)"),
                                     ("ic2", "flipped-label accuracy (IC2)"),
                                     ("iw", "in-weights accuracy (IW)"))):
    grid = np.array([[_final(results, b, k, config.p_bursty if b else 0.0)[key] for k in ks]
                     for b in bs])
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="lower", aspect="auto")
    for i in range(len(bs)):
      for j in range(len(ks)):
        ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center",
                color="w" if grid[i, j] < 0.6 else "k", fontsize=8)
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_yticks(range(len(bs)), [str(b) if b else "0 (none)" for b in bs])
    ax.set_xlabel("number of classes K")
    ax.set_ylabel("burstiness B")
    ax.set_title(title, fontsize=9)
  fig.colorbar(im, ax=axes[-1], fraction=0.046)
  out["phase_diagram"] = plotting.save(fig, os.path.join(figdir, "phase_diagram.png"))

  named = [c for c in results if c.burstiness in bs and c.num_classes in (min(ks), max(ks))
           and c.zipf_alpha == 0.0] + [c for c in results if c.zipf_alpha]
  fig, axes = plotting.figure_grid(len(named))
  for ax, cell in zip(axes, named):
    h = results[cell]["history"]
    steps = np.asarray(h["step"])[0]
    for key, color in (("ic", "C0"), ("ic2", "C1"), ("iw", "C2")):
      vals = np.asarray(h[key])
      for s in range(vals.shape[0]):
        ax.plot(steps, vals[s], color=color, alpha=0.8, label=key.upper() if not s else None)
    ax.axhline(1 / config.num_labels, color="gray", linestyle=":", linewidth=1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_title(f"B={cell.burstiness} K={cell.num_classes} p_b={cell.p_bursty:g} "
                 f"alpha={cell.zipf_alpha:g}", fontsize=8)
    ax.legend(frameon=False, fontsize=7)
  out["curves"] = plotting.save(fig, os.path.join(figdir, "curves.png"))
  return out
