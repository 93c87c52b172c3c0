"""An RNN driven only by noise learns to emit sequences with an HMM's statistics (Torre et al. 2025,
sec. 2-3), trained on the debiased Sinkhorn divergence between batches of sequences.

`run(config, workdir)`, for each HMM in `config.hmms`: measures the loss's noise floor (two
independent HMM batches) and a time-shuffled control, trains the RNN with the engine (resumable,
checkpointed; optionally continued at a larger batch, `config.large_batch_*`, and then judged at
that batch), then compares the trained network's emissions with the exact statistics of
`theory.hmm`: the final divergence reaches the floor (within 3 s.d.) and lies far below the shuffled
control; frequent-symbol repeat probabilities within 0.02 and output changes per sequence within 20%
(issue 5). `loss_resolution` scores exactly sampled near-miss HMMs (without the rare symbol,
switching 1.2x and 0.7x as often) against the floor: what a batch of this size can see, and which
wrong emulators it prefers; `evaluate` scores the trained network read out by sampling (as trained)
and by argmax. Every checkpoint is kept as a training snapshot for
`mechanism.training_evolution`. The same reverse engineering runs on
`jaxlab.hmm_rnn.planted.kick_network` (known kick neurons) as a positive control, whose rows must
pass. Writes `config.json`, `metrics.jsonl`, `checkpoints/`, `figures/*.png` (one per analysis and
HMM, and `kick_control.png`), `results.json` and `curves.json` (the training curves, snapshot
evolution, both readouts' scores and the near misses', as numbers).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.hmm_emulation import config as config_lib
from experiments.hmm_emulation import mechanism
from jaxlab import core
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.hmm_rnn import analysis, emulation, statistics
from jaxlab.hmm_rnn import hmm as hmm_lib
from jaxlab.hmm_rnn import model
from theory import hmm as theory

FLOOR_SDS = 3.0  # issue 5: the trained loss within 3 s.d. of the noise floor ...
# ... and far below the time-shuffled control. "Below 0.3 x the control" (our research notes) cannot
# hold at batch 512, where the floor itself is 0.33 x the control: we ask for 90% of the way down.
GAP_CLOSED = 0.9
REPEAT_TOLERANCE = 0.02  # absolute, on P(y' = y | y) of the frequent symbols
CHANGES_TOLERANCE = 0.2  # relative, on output changes per sequence
FREQUENT = 0.05  # a symbol is "frequent" above this stationary probability


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, [
      "length", "hidden_size", "input_dim", "noise_std", "batch_size", "blur", "learning_rate",
      "beta2", "clip_norm", "num_steps", "log_every", "checkpoint_every", "floor_repeats",
      "eval_batches", "stats_sequences", "analysis_length", "fixed_point_steps", "num_kick_neurons",
      "critical_pairs_length", "population_size", "snapshot_states"])
  if not config.hmms:
    raise ValueError("config.hmms must name at least one HMM")
  for name in config.hmms:
    hmm_lib.by_name(name)  # raises, naming the choices
  if config.burn_in < 0 or config.initial_state_std < 0:
    raise ValueError(f"config.burn_in and config.initial_state_std must be >= 0, got "
                     f"{config.burn_in} and {config.initial_state_std}")
  if not 0 < config.final_lr_fraction <= 1:
    raise ValueError(f"config.final_lr_fraction must be in (0, 1], got {config.final_lr_fraction}")
  if not 0 < config.sinkhorn_decay <= 1 or config.sinkhorn_iterations < 1:
    raise ValueError(f"config.sinkhorn_decay must be in (0, 1] and config.sinkhorn_iterations "
                     f">= 1, got {config.sinkhorn_decay} and {config.sinkhorn_iterations}")
  if config.sinkhorn_solver not in emulation.SOLVERS:
    raise ValueError(f"config.sinkhorn_solver must be one of {emulation.SOLVERS}, got "
                     f"{config.sinkhorn_solver!r}")
  if not 0 < config.sinkhorn_scaling < 1:
    raise ValueError(f"config.sinkhorn_scaling must be in (0, 1), got {config.sinkhorn_scaling}")
  if config.num_steps % config.checkpoint_every:
    raise ValueError(f"config.num_steps={config.num_steps} must be a multiple of "
                     f"config.checkpoint_every={config.checkpoint_every} (the snapshot interval)")
  if config.large_batch_steps < 0 or config.large_batch_steps % config.checkpoint_every:
    raise ValueError(f"config.large_batch_steps={config.large_batch_steps} must be >= 0 and a "
                     f"multiple of config.checkpoint_every={config.checkpoint_every}")
  if config.large_batch_steps and (config.large_batch_size <= 0
                                   or config.large_batch_learning_rate <= 0):
    raise ValueError(f"config.large_batch_size and config.large_batch_learning_rate must be > 0 "
                     f"for the larger-batch stage, got {config.large_batch_size} and "
                     f"{config.large_batch_learning_rate}")
  if config.floor_repeats < 2 or config.eval_batches < 2:
    raise ValueError("config.floor_repeats and config.eval_batches must be >= 2 (a spread is needed)")


def exact_statistics(hmm: hmm_lib.HMM, length: int) -> dict[str, np.ndarray]:
  """What a perfect emulator emits, from the closed forms (stationary start)."""
  transition, emission = np.asarray(hmm.transition), np.asarray(hmm.emission)
  stationary = theory.stationary_distribution(transition)
  return {"marginal": theory.output_marginal(stationary, emission),
          "repeat": theory.repeat_probabilities(stationary, transition, emission),
          "changes": float(theory.expected_changes(stationary, transition, emission, length))}


def sinkhorn_config(config) -> emulation.SinkhornConfig:
  return emulation.SinkhornConfig(blur=config.blur, anneal_from=config.sinkhorn_anneal_from,
                                  decay=config.sinkhorn_decay,
                                  max_iterations=config.sinkhorn_iterations,
                                  solver=config.sinkhorn_solver, scaling=config.sinkhorn_scaling)


def make_optimizer(config, learning_rate: float | None = None,
                   num_steps: int | None = None) -> optax.GradientTransformation:
  """Adam with the paper's betas and (its chains') gradient-norm clip; the learning rate (default
  config.learning_rate) decays (cosine, over `num_steps`, default config.num_steps) to
  config.final_lr_fraction of its start: at a constant rate the emission statistics keep drifting
  within the loss's noise floor (a batch resolves them only to a few hundredths)."""
  learning_rate = config.learning_rate if learning_rate is None else learning_rate
  num_steps = config.num_steps if num_steps is None else num_steps
  if config.final_lr_fraction < 1:
    learning_rate = optax.cosine_decay_schedule(learning_rate, num_steps,
                                                alpha=config.final_lr_fraction)
  return optax.chain(optax.clip_by_global_norm(config.clip_norm),
                     optax.adam(learning_rate, b1=0.9, b2=config.beta2))


def final_batch_size(config) -> int:
  """The batch the trained network is evaluated at: that of the last training stage."""
  return config.large_batch_size if config.large_batch_steps else config.batch_size


def train_emulator(config, hmm, name, workdir):
  """Trains at config.batch_size, then (config.large_batch_steps > 0) continues from the trained
  parameters at config.large_batch_size with a fresh optimizer. Returns (history rows of both
  stages, stage-2 steps counted on from stage 1; final state; snapshots of stage 1)."""
  key = jax.random.key(config.seed)
  params = model.init(key, config.hidden_size, config.input_dim, hmm.emission.shape[1])
  task = emulation.EmulationTask(hmm, jnp.asarray(config.noise_std))

  def stage(params, batch_size, num_steps, learning_rate, run_name, keep, label, stream):
    optimizer = make_optimizer(config, learning_rate, num_steps)
    state = core.init_train_state(params, optimizer, jax.random.fold_in(key, stream))
    loss = emulation.make_loss(batch_size, config.length,
                               initial_state_std=config.initial_state_std,
                               burn_in=config.burn_in, sinkhorn=sinkhorn_config(config))
    result = core.train(
        core.make_train_step(loss, optimizer), state, task, num_steps=num_steps,
        log_every=config.log_every, checkpoint_every=config.checkpoint_every, workdir=workdir,
        keep_checkpoints=keep, run_name=run_name,
        batch_fn=lambda data, k: emulation.hmm_batches(data, k, batch_size, config.length),
        progress=core.Progress(label=label))
    return state, result

  template, result = stage(params, config.batch_size, config.num_steps, config.learning_rate,
                           f"rnn_{name}", config.num_steps // config.checkpoint_every + 1,
                           f"[{name}] ", 1)
  history, state = list(result.history), result.state
  if config.large_batch_steps:
    _, large = stage(state.params, config.large_batch_size, config.large_batch_steps,
                     config.large_batch_learning_rate, f"rnn_{name}_large_batch", 3,
                     f"[{name}, batch {config.large_batch_size}] ", 2)
    history += [{**row, "step": row["step"] + config.num_steps} for row in large.history]
    state = large.state
  return history, state, _snapshots(workdir, f"rnn_{name}", template)


def _snapshots(workdir, run_name, template) -> tuple[np.ndarray, list[dict]]:
  """(steps, params) of every checkpoint of the run, the initial parameters first."""
  ckpt = core.Checkpointer(os.path.join(workdir, "checkpoints", run_name), every=1)
  try:
    steps = ckpt.steps()
    params = [template.params] + [ckpt.restore(s, template).params for s in steps]
  finally:
    ckpt.close()
  return np.array([0] + steps), params


DITHER_DISTANCES = 10  # steps from the argmax readout's changes, for `disagreement_by_distance`


def evaluate(config, hmm, params, key) -> dict[str, Any]:
  """Final divergences on fresh batches, and emission statistics of many RNN sequences. Also the
  same runs read out by argmax instead of sampling (the network's own dynamics, without the
  readout's Gumbel noise), their divergences on the same batches, and where the two readouts
  differ relative to the argmax readout's changes."""
  sinkhorn = sinkhorn_config(config)
  num_symbols = hmm.emission.shape[1]
  batch_size = final_batch_size(config)

  @jax.jit
  def divergences_of_both_readouts(key):
    k_rnn, k_hmm = jax.random.split(key)
    rnn = model.emit(params, k_rnn, batch_size, config.length, noise_std=config.noise_std,
                     initial_state_std=config.initial_state_std, burn_in=config.burn_in)
    argmax = jax.nn.one_hot(jnp.argmax(rnn.logits, axis=-1), num_symbols, dtype=rnn.symbols.dtype)
    data = jax.nn.one_hot(hmm_lib.sample(k_hmm, hmm, batch_size, config.length)[1], num_symbols)
    return (emulation.sequence_divergence(rnn.symbols, data, sinkhorn),
            emulation.sequence_divergence(argmax, data, sinkhorn))

  k_div, k_rnn, k_hmm = jax.random.split(key, 3)
  both = np.array([[float(v) for v in divergences_of_both_readouts(k)]
                   for k in jax.random.split(k_div, config.eval_batches)])
  rnn = model.emit(params, k_rnn, config.stats_sequences, config.length, noise_std=config.noise_std,
                   initial_state_std=config.initial_state_std, burn_in=config.burn_in)
  symbols = jnp.argmax(rnn.symbols, axis=-1)
  argmax_symbols = jnp.argmax(rnn.logits, axis=-1)
  dither, dither_fraction = statistics.disagreement_by_distance(symbols, argmax_symbols,
                                                                DITHER_DISTANCES)
  hmm_symbols = hmm_lib.sample(k_hmm, hmm, config.stats_sequences, config.length)[1]
  return {"divergences": both[:, 0], "argmax_divergences": both[:, 1],
          "argmax_changes": np.asarray(statistics.changes_per_sequence(argmax_symbols)),
          "dither": np.asarray(dither), "dither_fraction": np.asarray(dither_fraction),
          "marginal": np.asarray(statistics.symbol_frequencies(symbols, num_symbols)),
          "repeat": np.asarray(statistics.repeat_probabilities(symbols, num_symbols)),
          "changes": np.asarray(statistics.changes_per_sequence(symbols)),
          "hmm_changes": np.asarray(statistics.changes_per_sequence(hmm_symbols)),
          "examples": np.asarray(symbols[:40]), "hmm_examples": np.asarray(hmm_symbols[:40])}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  studies = {}
  for index, name in enumerate(config.hmms):
    hmm = hmm_lib.by_name(name)
    key = jax.random.fold_in(jax.random.key(config.seed), 1000 + index)
    # Floor and resolution at the batch the trained network is judged at (the last stage's);
    # with two stages, the first stage's floor too, for its part of the training curve.
    floors = {batch_size: emulation.noise_floor(key, hmm, batch_size, config.length,
                                                config.floor_repeats, sinkhorn_config(config))
              for batch_size in dict.fromkeys([final_batch_size(config), config.batch_size])}
    resolution = loss_resolution(config, hmm, jax.random.fold_in(key, 10))
    history, state, (snapshot_steps, snapshots) = train_emulator(config, hmm, name, workdir)
    studies[name] = {
        "exact": exact_statistics(hmm, config.length), "floor": floors[final_batch_size(config)],
        "floors": floors, "resolution": resolution,
        "steps": np.array([row["step"] for row in history]),
        "loss": np.array([row["loss"] for row in history]),
        "changes_during_training": np.array([row["changes_per_sequence"] for row in history]),
        "rnn": evaluate(config, hmm, state.params, jax.random.fold_in(key, 7)),
        "mechanism": mechanism.analyse(config, state.params, jax.random.fold_in(key, 8)),
        "evolution": mechanism.training_evolution(config, snapshot_steps, snapshots,
                                                  jax.random.fold_in(key, 9)),
        "params": state.params}
  comparisons = [row for name in config.hmms
                 for row in _comparisons(name, studies[name])
                 + mechanism.comparisons(name, studies[name]["mechanism"], config)
                 + mechanism.kick_comparisons(name, studies[name]["mechanism"])
                 + mechanism.critical_pair_comparisons(name, studies[name]["mechanism"])
                 + mechanism.evolution_comparisons(name, studies[name]["evolution"],
                                                   studies[name]["exact"]["changes"],
                                                   config.num_steps)]
  # The same analysis on a network whose kick neurons are known: can it find them?
  control = mechanism.planted_control(config, jax.random.fold_in(jax.random.key(config.seed), 2000))
  comparisons += mechanism.planted_comparisons(control)
  if jax.process_index() == 0:
    write_curves(studies, os.path.join(workdir, "curves.json"))
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, studies, control, figdir))
  return {"comparisons": comparisons, "figures": figures, "studies": studies,
          "planted_control": control}


EVOLUTION_CURVES = ("steps", "changes", "cluster_fraction", "mean_residency", "unstable_fraction")


def write_curves(studies: dict[str, Any], path: str) -> None:
  """Per HMM, the training curve and the snapshot evolution as plain lists (what the figures draw),
  so that runs can be compared without restoring and re-analysing their snapshots."""
  curves = {}
  for name, study in studies.items():
    evolution = study["evolution"]
    curves[name] = {
        "training": {"steps": study["steps"].tolist(), "loss": study["loss"].tolist(),
                     "changes_per_sequence": study["changes_during_training"].tolist()},
        "floors": {str(batch): floor._asdict() for batch, floor in study["floors"].items()},
        "exact_changes_per_sequence": float(study["exact"]["changes"]),
        # The trained network read out by sampling (as trained) and by argmax, and exactly
        # sampled near-miss HMMs, scored on batches of the judging size.
        "readout": {
            "sampled_divergence": float(study["rnn"]["divergences"].mean()),
            "argmax_divergence": float(study["rnn"]["argmax_divergences"].mean()),
            "sampled_changes_per_sequence": float(study["rnn"]["changes"].mean()),
            "argmax_changes_per_sequence": float(study["rnn"]["argmax_changes"].mean()),
            "p_sample_differs_by_distance_to_argmax_change": study["rnn"]["dither"].tolist(),
            "fraction_of_steps_by_distance": study["rnn"]["dither_fraction"].tolist()},
        "near_misses": {label: {"divergence": v["divergence"], "std": v["std"]}
                        for label, v in study["resolution"].items()},
        "evolution": {**{k: np.asarray(evolution[k]).tolist() for k in EVOLUTION_CURVES},
                      "switch_step": evolution["switch_step"],
                      "switch_width": evolution["switch_width"]},
        # the paper's ablation measure per scaled group (null where nothing was scaled)
        "critical_pairs": {group: None if pairs is None else
                           {k: np.asarray(v).tolist() for k, v in pairs._asdict().items()}
                           for group in mechanism.CRITICAL_PAIR_GROUPS
                           for pairs in [study["mechanism"][group]]}}
  with open(path, "w") as f:
    json.dump(curves, f, indent=2)


SWITCHING_FACTOR = 1.2  # a chain switching 20% more often: repeat probability ~0.01 lower
# A chain switching 30% less often: at T = 100 a finite batch scores it below the floor (batches
# 512-4096; near the loss's optimum among rescaled chains), at T = 30 not (README).
SLOWER_SWITCHING_FACTOR = 0.7


def loss_resolution(config, hmm, key) -> dict[str, Any]:
  """How the loss scores nearly right emulators, exactly sampled: the HMM without its rare symbols
  (if it has any) and the HMM switching SWITCHING_FACTOR and SLOWER_SWITCHING_FACTOR times as
  often, each against the HMM at the training batch size. Within the floor's spread, the loss
  cannot tell them from a perfect emulator: this is what a finite batch resolves; below the floor,
  the loss prefers them to a perfect emulator."""
  sinkhorn = sinkhorn_config(config)
  out = {}
  variants = {"faster": hmm_lib.scale_switching(hmm, SWITCHING_FACTOR),
              "slower": hmm_lib.scale_switching(hmm, SLOWER_SWITCHING_FACTOR)}
  try:
    variants["noise_free"] = hmm_lib.without_rare_symbols(hmm, FREQUENT)
  except ValueError:
    pass  # no rare symbol to drop
  for label, other in variants.items():
    transition, emission = np.asarray(other.transition), np.asarray(other.emission)
    stationary = theory.stationary_distribution(transition)
    mean, std = emulation.divergence_between(key, hmm, other, final_batch_size(config),
                                             config.length, config.floor_repeats, sinkhorn)
    out[label] = {"divergence": mean, "std": std,
                  "repeat": theory.repeat_probabilities(stationary, transition, emission)}
  return out


def _comparisons(name, study) -> list[common.Comparison]:
  floor, rnn, exact = study["floor"], study["rnn"], study["exact"]
  final = float(rnn["divergences"].mean())
  rows = [
      common.Comparison(f"{name}: trained Sinkhorn divergence <= noise floor + {FLOOR_SDS:g} s.d. "
                        f"(floor {floor.noise_floor_mean:.3g} +- {floor.noise_floor_std:.2g})",
                        floor.noise_floor_mean + FLOOR_SDS * floor.noise_floor_std, final,
                        relation="<="),
      common.Comparison(f"{name}: fraction of the gap from the time-shuffled control "
                        f"({floor.shuffled_mean:.3g}) to the floor that training closes",
                        GAP_CLOSED, (floor.shuffled_mean - final)
                        / (floor.shuffled_mean - floor.noise_floor_mean), relation=">="),
  ]
  for symbol in np.flatnonzero(exact["marginal"] > FREQUENT):
    theory_value = float(exact["repeat"][symbol])
    rows.append(common.Comparison(
        f"{name}: P(y'=y | y={symbol}) (abs. tolerance {REPEAT_TOLERANCE:g})", theory_value,
        float(rnn["repeat"][symbol]), REPEAT_TOLERANCE / theory_value))
  rows.append(common.Comparison(f"{name}: output changes per sequence", exact["changes"],
                                float(rnn["changes"].mean()), CHANGES_TOLERANCE))
  bound = floor.noise_floor_mean + FLOOR_SDS * floor.noise_floor_std
  resolution = study["resolution"]
  if "noise_free" in resolution:
    rows.append(common.Comparison(
        f"{name}: the HMM without its rare symbol (an emulator that never emits it) scores within "
        f"the floor + {FLOOR_SDS:g} s.d.: the loss cannot see that symbol at this batch",
        bound, resolution["noise_free"]["divergence"], relation="<="))
  # How the loss scores a chain switching SWITCHING_FACTOR x as often depends on the batch (inside
  # the floor's spread at 512, well above it at 1024): drawn in the loss figure, not asserted.
  return rows


def _figures(config, studies, control, figdir) -> dict[str, str]:
  figures = {"kick_control": _kick_control_figure(studies, control,
                                                  os.path.join(figdir, "kick_control.png")),
             "critical_pairs": _critical_pairs_figure(studies,
                                                      os.path.join(figdir, "critical_pairs.png"))}
  for name, study in studies.items():
    fig, axes = plotting.figure_grid(4)
    floor, rnn, exact = study["floor"], study["rnn"], study["exact"]
    ax = axes[0]
    ax.plot(study["steps"], study["loss"], label="RNN vs HMM (training)")
    for (batch_size, stage_floor), shade in zip(study["floors"].items(), ("0.8", "0.9")):
      band = stage_floor.noise_floor_mean + np.array([-3, 3]) * stage_floor.noise_floor_std
      ax.axhspan(*band, color=shade, label=f"noise floor +- 3 s.d., batch {batch_size}")
    if config.large_batch_steps:
      ax.axvline(config.num_steps, color="0.5", linewidth=0.5)
    ax.axhline(floor.shuffled_mean, color="k", linestyle="--", linewidth=1, label="time-shuffled HMM")
    near_misses = (("faster", f"HMM switching {SWITCHING_FACTOR:g}x as often", "tab:red"),
                   ("slower", f"HMM switching {SLOWER_SWITCHING_FACTOR:g}x as often", "tab:blue"),
                   ("noise_free", "HMM without its rare symbol", "tab:green"))
    for label, text, color in near_misses:
      if label in study["resolution"]:
        ax.axhline(study["resolution"][label]["divergence"], color=color, linestyle=":",
                   linewidth=1, label=text)
    ax.axhline(float(rnn["argmax_divergences"].mean()), color="tab:purple", linestyle="-.",
               linewidth=1, label="trained RNN read out by argmax")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("Sinkhorn divergence")
    ax.set_title(f"{name}: loss against its floor")
    ax.legend(frameon=False, fontsize=7)
    ax = axes[1]
    symbols = np.arange(len(exact["marginal"]))
    ax.bar(symbols - 0.2, exact["marginal"], 0.4, label="HMM (exact)")
    ax.bar(symbols + 0.2, rnn["marginal"], 0.4, label="RNN")
    ax.plot(symbols, exact["repeat"], "k_", markersize=20, label="P(y'=y|y), exact")
    ax.plot(symbols, rnn["repeat"], "r.", label="P(y'=y|y), RNN")
    ax.set_xticks(symbols)
    ax.set_xlabel("symbol")
    ax.set_title("marginals and repeat probabilities")
    ax.legend(frameon=False, fontsize=7)
    ax = axes[2]
    bins = np.arange(0, max(rnn["changes"].max(), rnn["hmm_changes"].max()) + 2) - 0.5
    ax.hist(rnn["hmm_changes"], bins, alpha=0.5, density=True, label="HMM samples")
    ax.hist(rnn["changes"], bins, alpha=0.5, density=True, label="RNN")
    ax.axvline(exact["changes"], color="k", linestyle="--", linewidth=1, label="exact mean")
    ax.set_xlabel("output changes per sequence")
    ax.legend(frameon=False, fontsize=7)
    ax = axes[3]
    raster = np.concatenate([rnn["hmm_examples"][:20], np.full((1, config.length), -1),
                             rnn["examples"][:20]])
    ax.imshow(np.ma.masked_less(raster, 0), aspect="auto", interpolation="nearest", cmap="viridis")
    ax.set_title("20 HMM sequences (top) and 20 RNN sequences")
    ax.set_xlabel("time")
    figures[f"emulation_{name}"] = plotting.save(fig, os.path.join(figdir, f"emulation_{name}.png"))
    figures[f"mechanism_{name}"] = _mechanism_figure(config, name, study,
                                                     os.path.join(figdir, f"mechanism_{name}.png"))
    figures[f"evolution_{name}"] = _evolution_figure(name, study,
                                                     os.path.join(figdir, f"evolution_{name}.png"))
  return figures


def _mechanism_figure(config, name, study, path) -> str:
  mech = study["mechanism"]
  fig, axes = plotting.figure_grid(6)
  ax = axes[0]
  ax.plot(study["steps"], study["changes_during_training"], label="RNN, during training")
  ax.axhline(study["exact"]["changes"], color="k", linestyle="--", linewidth=1, label="HMM (exact)")
  ax.set_xlabel("training step")
  ax.set_ylabel("output changes per sequence")
  ax.set_title(f"{name}: switching regime appears abruptly")
  ax.legend(frameon=False, fontsize=7)
  ax = axes[1]
  orbit = mech["orbit"]
  trajectory = np.asarray(orbit.trajectory_2d)
  emitted = np.argmax(mech["logits"][-len(trajectory):], axis=-1)
  ax.plot(trajectory[:, 0], trajectory[:, 1], color="0.8", linewidth=0.3, zorder=0)
  ax.scatter(trajectory[:, 0], trajectory[:, 1], c=emitted, s=2, cmap="viridis", zorder=1)
  ax.plot(*np.asarray(orbit.center_2d), "r*", markersize=12, label="fixed point")
  ax.set_title(f"noise-driven orbit on PCs 1-2 (winding {float(orbit.winding):.1f}, shuffled "
               f"{float(orbit.shuffled_winding):.1f} +- {float(jnp.std(orbit.shuffled_windings)):.1f})",
               fontsize=8)
  ax.legend(frameon=False, fontsize=7)
  ax = axes[2]
  eigenvalues = mech["fixed"].eigenvalues[0] if len(mech["fixed"].eigenvalues) else np.zeros(1)
  circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
  ax.plot(circle.real, circle.imag, "k--", linewidth=1)
  ax.plot(eigenvalues.real, eigenvalues.imag, ".", markersize=4)
  ax.set_aspect("equal")
  ax.set_title("Jacobian eigenvalues at the fixed point")
  ax = axes[3]
  fractions = np.asarray(mech["regions"].fractions)
  ax.bar(range(len(fractions)), fractions)
  ax.set_xticks(range(len(fractions)))
  ax.set_xticklabels([n.replace("_", " ") for n in analysis.REGION_NAMES], fontsize=7)
  ax.set_title("residency-time regions (fraction of time)")
  ax = axes[5]
  sweep = mech["noise_sweep"]
  ax.plot(np.asarray(sweep.settings) * config.noise_std, sweep.changes_mean, "o-",
          label="trained RNN")
  ax.axhline(study["exact"]["changes"], color="k", linestyle="--", linewidth=1, label="HMM (exact)")
  ax.axhline((config.length - 1) * (1 - 1 / len(study["exact"]["marginal"])), color="0.5",
             linestyle=":", linewidth=1, label="i.i.d. uniform (noise off)")
  ax.set_xlabel("input noise s.d. (trained at %g)" % config.noise_std)
  ax.set_ylabel("output changes per sequence")
  ax.set_title("noise sweep: switching needs noise")
  ax.legend(frameon=False, fontsize=7)
  ax = axes[4]
  if mech["kick"] is None:
    ax.set_title("no cluster states: no kick neurons to find")
    return plotting.save(fig, path)
  _plot_scaling_sweeps(ax, mech)
  ax.axhline(study["exact"]["changes"], color="k", linestyle=":", linewidth=1)
  ablation = mech["ablation"]
  ax.set_title(f"kick neurons by ablation {[int(u) for u in ablation.units]}: silencing one cuts "
               f"switching {ablation.baseline:.2f} -> {ablation.changes.min():.2f}", fontsize=7)
  ax.legend(frameon=False, fontsize=6)
  return plotting.save(fig, path)


def _plot_scaling_sweeps(ax, result) -> None:
  """Switching as the kick neurons' recurrent input, or their population's noise, is scaled,
  each beside a random group of the same size."""
  for key, label, style in (("kick_scaling", "kick neurons (recurrent input)", "o-"),
                            ("kick_control_scaling", "random units, same size", "o--"),
                            ("population_scaling", "noise-integrating pop. (noise input)", "s-"),
                            ("population_control_scaling", "random units, same size", "s--")):
    sweep = result[key]
    ax.plot(sweep.settings, sweep.changes_mean, style, markersize=3, label=label)
  ax.set_xlabel("scaling factor")
  ax.set_ylabel("output changes per sequence")


def _kick_control_figure(studies, control, path) -> str:
  """Per-unit ablation effects of the planted network and of each trained one, and the planted
  network's scaling sweeps: what kick neurons look like when they exist."""
  fig, axes = plotting.figure_grid(2)
  ax = axes[0]
  networks = {mechanism.PLANTED: control, **{name: s["mechanism"] for name, s in studies.items()}}
  for name, result in networks.items():
    ablation = result["ablation"]
    ratios = np.sort(np.asarray(ablation.changes)) / ablation.baseline
    ax.plot(np.arange(1, len(ratios) + 1), ratios, ".-", markersize=3, label=name)
  ax.axhline(mechanism.KICK_EFFECT, color="k", linestyle=":", linewidth=1)
  ax.set_xscale("log")
  ax.set_xlabel("unit, by the effect of silencing its recurrent output")
  ax.set_ylabel("switching / intact network's")
  ax.set_title("single-unit ablations: kick neurons stand out")
  ax.legend(frameon=False, fontsize=6)
  ax = axes[1]
  if control["kick"] is None:
    ax.set_title("planted network: no cluster states (the control failed)")
    return plotting.save(fig, path)
  _plot_scaling_sweeps(ax, control)
  ax.set_title(f"planted network: kick units {control['units'].kick.tolist()} found as "
               f"{sorted(int(u) for u in control['ablation'].units)}", fontsize=8)
  ax.legend(frameon=False, fontsize=6)
  return plotting.save(fig, path)


def _critical_pairs_figure(studies, path) -> str:
  """The paper's ablation figure (its bottom row) for each trained network: critical Jacobian
  pairs round output changes as a group is scaled by mu, beside the paper's intact network's."""
  fig, axes = plotting.figure_grid(len(studies))
  for ax, (name, study) in zip(axes, studies.items()):
    mech = study["mechanism"]
    ax.axhspan(*mechanism.PAPER_INTACT_CRITICAL_PAIRS, color="0.9",
               label="Torre et al.'s network, intact (20 runs)")
    if mech["kick"] is None:
      ax.set_title(f"{name}: no cluster states, no groups to scale")
      continue
    for key, label, style in (("kick_critical", "kick neurons (recurrent input)", "o-"),
                              ("correlational_kick_critical", "most active in kick zones "
                               "(recurrent input)", "^-"),
                              ("kick_control_critical", "random units, same size (recurrent input)",
                               "o--"),
                              ("population_critical", "integrating population (noise)", "s-"),
                              ("population_control_critical", "other units (noise)", "s--")):
      pairs = mech[key]
      ax.errorbar(pairs.settings, pairs.mean, pairs.std / np.sqrt(np.maximum(pairs.num_windows, 1)),
                  fmt=style, markersize=3, capsize=2, label=label)
    ax.set_xlabel("scaling factor mu")
    ax.set_ylabel("critical pairs per 30-step window")
    ax.set_title(f"{name}: critical pairs round output changes (+- s.e.)", fontsize=8)
    ax.legend(frameon=False, fontsize=6)
  return plotting.save(fig, path)


def _evolution_figure(name, study, path) -> str:
  evo = study["evolution"]
  steps = evo["steps"]
  fig, axes = plotting.figure_grid(3)
  ax = axes[0]
  ax.plot(steps, evo["changes"] / study["exact"]["changes"], "o-", markersize=3,
          label="changes per sequence / exact")
  ax.plot(steps, evo["cluster_fraction"], "s-", markersize=3, label="fraction of time in clusters")
  ax.plot(steps, evo["unstable_fraction"], "^-", markersize=3,
          label="fraction of states with |lambda| > 1")
  if evo["switch_step"] is not None:
    ax.axvline(evo["switch_step"], color="k", linestyle=":", linewidth=1, label="switch")
  ax.axhline(1.0, color="0.6", linewidth=0.5)
  ax.set_yscale("symlog", linthresh=1.0)
  ax.set_xlabel("training step")
  ax.set_title(f"{name}: training snapshots", fontsize=9)
  ax.legend(frameon=False, fontsize=6)
  ax = axes[1]
  ax.plot(steps, evo["mean_residency"], "o-", markersize=3)
  ax.set_xlabel("training step")
  ax.set_ylabel("mean residency time (steps, capped at 50)")
  ax.set_title("how long the output persists", fontsize=9)
  ax = axes[2]
  chosen = np.unique(np.linspace(0, len(steps) - 1, 6).round().astype(int))
  colors = plotting.colors(len(chosen))
  for color, index in zip(colors, chosen):
    trajectory = evo["summaries"][index].trajectory_2d
    ax.scatter(trajectory[:, 0], trajectory[:, 1], s=1, color=color, alpha=0.5,
               label=f"step {int(steps[index])}")
  ax.set_xlabel("PC 1 (final network)")
  ax.set_ylabel("PC 2")
  ax.set_title("noise-driven states of each snapshot", fontsize=9)
  ax.legend(frameon=False, fontsize=6, markerscale=4)
  return plotting.save(fig, path)
