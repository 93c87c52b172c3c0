"""Best-epoch selection, as Torre et al. 2025 select the networks they analyse, then the reverse
engineering of the selected network.

The paper's training loop (github.com/EliaTorre/hmmrnn, `scripts/rnn.py` `train_model`) scores the
network after every epoch on a fixed validation set (10 000 HMM sequences against as many fresh
network sequences, geomloss's estimate, batches 4096 / 4096 / 1808) and keeps the epoch with the
lowest loss; its mechanism figures analyse that network, not the last one. Our runs train by steps
and keep every checkpoint of their first stage (`experiment.train_emulator`), so here each
checkpoint is scored the same way (`paper_losses.validation_scorer` at the run's sequence length:
one validation set for all, fresh network noise for each, as there; h_0 = 0, the sampled readout)
and the lowest is selected. Then
`mechanism.analyse` runs on it, with its rows (fixed point, kick neurons by switching, the paper's
critical-pair ablation) and the emission statistics against the HMM's.

Run it with the flags of the training run it reads (same config, same --workdir):

  python -m experiments.hmm_emulation.select --config=experiments/hmm_emulation/config.py \\
      --config.hmms="('two',)" ... --workdir=RUN

Writes `RUN/selection/results.json`, `selection.json` (every checkpoint's score) and
`figures/selection.png`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from experiments import common
from experiments.hmm_emulation import experiment
from experiments.hmm_emulation import mechanism
from experiments.hmm_emulation import paper_losses
from jaxlab import core
from jaxlab.core import plotting
from jaxlab.hmm_rnn import hmm as hmm_lib
from jaxlab.hmm_rnn import model

# Fields that shape the checkpoints: they must match the training run's config.json.
SHAPING_FIELDS = ("hidden_size", "input_dim", "learning_rate", "final_lr_fraction", "num_steps",
                  "beta2", "clip_norm", "checkpoint_every")


def check_matches_run(config, workdir: str) -> None:
  """The training run's config.json must agree with `config` where it shapes the checkpoints."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no training run in {workdir!r}: {path} is missing (run "
                            f"experiments.hmm_emulation.main with this --workdir first)")
  with open(path) as f:
    trained = json.load(f)
  differ = [f"{k}: run {trained.get(k)!r}, now {config[k]!r}" for k in SHAPING_FIELDS
            if trained.get(k) != config[k]]
  if differ:
    raise ValueError("pass the training run's flags: " + "; ".join(differ))


def open_checkpoints(workdir: str, name: str):
  """(steps, checkpointer) of `name`'s first-stage run; the caller closes the checkpointer."""
  directory = os.path.join(workdir, "checkpoints", f"rnn_{name}")
  checkpointer = core.Checkpointer(directory, every=1) if os.path.isdir(directory) else None
  steps = checkpointer.steps() if checkpointer else []
  if not steps:
    if checkpointer:
      checkpointer.close()
    raise FileNotFoundError(f"no checkpoints of {name!r} in {directory}")
  return steps, checkpointer


def score_checkpoints(config, workdir: str, name: str, key: jax.Array) -> dict[str, Any]:
  """Every checkpoint on the paper's validation loss: one fixed validation set, fresh network noise
  per checkpoint; {"steps", "sampled", "argmax", "best_step"} (best by the sampled readout, as
  the paper trains and selects)."""
  steps, checkpointer = open_checkpoints(workdir, name)
  score = paper_losses.validation_scorer(config, name, length=config.length,
                                         noise_std=config.noise_std, initial_state_std=0.0)
  num_batches = len(paper_losses.batch_starts(config))
  k_validation, k_network = jax.random.split(key)
  validation_keys = jax.random.split(k_validation, num_batches)
  template = _template(config, name)
  scores = []
  try:
    for i, step in enumerate(steps):
      params = checkpointer.restore(step, template).params
      network_keys = jax.random.split(jax.random.fold_in(k_network, i), num_batches)
      scores.append(np.asarray(score(params, network_keys, validation_keys)))
      if jax.process_index() == 0:
        print(f"[{name}] checkpoint {step}: validation loss {scores[-1][0]:.4g} (argmax "
              f"{scores[-1][1]:.4g})", flush=True)
  finally:
    checkpointer.close()
  scores = np.array(scores)
  best = int(np.argmin(scores[:, 0]))
  return {"steps": list(steps), "sampled": scores[:, 0].tolist(), "argmax": scores[:, 1].tolist(),
          "best_step": int(steps[best])}


def _template(config, name):
  hmm = hmm_lib.by_name(name)
  key = jax.random.key(config.seed)
  return core.init_train_state(
      model.init(key, config.hidden_size, config.input_dim, hmm.emission.shape[1]),
      experiment.make_optimizer(config), key)


def restore(config, workdir: str, name: str, step: int) -> dict:
  _, checkpointer = open_checkpoints(workdir, name)
  try:
    return checkpointer.restore(step, _template(config, name)).params
  finally:
    checkpointer.close()


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  experiment.validate(config)
  check_matches_run(config, workdir)
  if config.x64:
    jax.config.update("jax_enable_x64", True)
  out = os.path.join(workdir, "selection")
  os.makedirs(out, exist_ok=True)
  results, rows = {}, []
  for index, name in enumerate(config.hmms):
    key = jax.random.fold_in(jax.random.key(config.seed), 3000 + index)
    scores = score_checkpoints(config, workdir, name, jax.random.fold_in(key, 0))
    params = restore(config, workdir, name, scores["best_step"])
    hmm = hmm_lib.by_name(name)
    exact = experiment.exact_statistics(hmm, config.length)
    rnn = experiment.evaluate(config, hmm, params, jax.random.fold_in(key, 1))
    mech = mechanism.analyse(config, params, jax.random.fold_in(key, 2))
    label = f"{name}, best checkpoint (step {scores['best_step']})"
    rows += [common.Comparison(f"{label}: output changes per sequence",
                               float(exact["changes"]), float(rnn["changes"].mean()),
                               experiment.CHANGES_TOLERANCE)]
    rows += [common.Comparison(f"{label}: P(y'=y | y={s}) (abs. tolerance "
                               f"{experiment.REPEAT_TOLERANCE:g})", float(exact["repeat"][s]),
                               float(rnn["repeat"][s]),
                               experiment.REPEAT_TOLERANCE / float(exact["repeat"][s]))
             for s in np.flatnonzero(exact["marginal"] > experiment.FREQUENT)]
    rows += (mechanism.comparisons(label, mech, config) + mechanism.kick_comparisons(label, mech)
             + mechanism.critical_pair_comparisons(label, mech))
    results[name] = {"scores": scores, "mechanism": mech, "rnn": rnn, "exact": exact,
                     "params": params}
    if jax.process_index() == 0:
      print(f"{name}: best checkpoint step {scores['best_step']} of {scores['steps'][-1]}, "
            f"validation loss {min(scores['sampled']):.3f} (last {scores['sampled'][-1]:.3f})",
            flush=True)
  if jax.process_index() == 0:
    with open(os.path.join(out, "selection.json"), "w") as f:
      json.dump({name: r["scores"] for name, r in results.items()}, f, indent=2)
  figures = common.finish(out, rows, lambda figdir: _figures(results, figdir))
  return {"comparisons": rows, "figures": figures, "results": results}


def _figures(results, figdir) -> dict[str, str]:
  fig, axes = plotting.figure_grid(len(results))
  for ax, (name, r) in zip(axes, results.items()):
    scores = r["scores"]
    ax.plot(scores["steps"], scores["sampled"], "o-", markersize=3, label="sampled (as trained)")
    ax.plot(scores["steps"], scores["argmax"], "s--", markersize=3, label="argmax readout")
    ax.axvline(scores["best_step"], color="k", linestyle=":", label="selected")
    ax.set_yscale("log")
    ax.set_xlabel("training step (checkpoint)")
    ax.set_ylabel("paper's validation loss")
    ax.set_title(f"{name}: best-epoch selection")
    ax.legend(frameon=False, fontsize=7)
  return {"selection": plotting.save(fig, os.path.join(figdir, "selection.png"))}


if __name__ == "__main__":
  common.study_main(run, "experiments/hmm_emulation/config.py")
