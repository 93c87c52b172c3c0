"""Induction heads on repeated random tokens (Olsson et al. 2022, Transformer Circuits Thread;
Elhage et al. 2021): a 2-layer attention-only transformer forms an induction head in an abrupt
phase change, and a 1-layer one of the same width, trained as long, does not.

`run(config, workdir)`:
1. checks the hand-built circuit of `jaxlab.induction.repeated` (previous-token head, then a
   K-composing induction head): prefix matching and previous-token scores 1, a copying OV
   circuit, the repeats predicted; with its layer-0 head ablated, prefix matching at chance.
2. trains 1-layer and 2-layer models on sequences whose period varies from sequence to sequence
   (`repeated.periodic_tokens`; with one fixed period a single layer attends a fixed distance back
   and solves the task with no induction head), one resumable engine run per (depth, seed),
   evaluating losses and Olsson's head scores every `log_every` steps.
3. compares: the 2-layer model's best last-layer head prefix-matches (> 0.5) and copies, loses it
   when layer 0 is ablated (K-composition), and predicts the repeats; its repeat loss drops
   abruptly, after a plateau, at the step where prefix matching rises. The 1-layer model stays
   near the chance prefix score. It does learn heuristics that need no induction head (the next
   token is one of the tokens already seen, not the current one, and lies min_period - 1 to
   max_period - 1 positions back), which take its repeat loss ~1.5 nats below the
   first-occurrence loss but not below ~2 nats: the rows test that difference (repeat loss,
   accuracy, the in-context gain of each model), not "no in-context gain at all".

Writes `config.json`, `metrics.jsonl`, `checkpoints/`, `figures/*.png`, `results.json`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.induction_repeat import config as config_lib
from jaxlab import core
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.induction import metrics, model, repeated

# Hand-built circuit (float identities up to the finite sharpness).
CONSTRUCTION_TOLERANCE = 1e-3
CONSTRUCTION_MAX_LOSS = 0.01
ABLATED_OVER_CHANCE = 1.5  # ablated layer 0: prefix score <= 1.5 x the uniform-attention level
# Trained models: Olsson's toy acceptance (/work/shared/papers/induction_heads.md sec. 5) made
# quantitative. Measured when set (full variant, 3 config seeds x 2 runs; quick, 5 seeds):
# 2-layer prefix 0.970-0.981 (quick 0.921-0.932), copying 0.986-0.997, previous-token 0.57-0.77,
# ablated prefix 0.15-0.21 (chance 0.11), repeat loss 0.020-0.035 (quick 0.094-0.144) nats,
# accuracy >= 0.997, first - repeat loss 3.54-3.59; 1-layer prefix 0.155-0.167, repeat loss
# 1.93-2.35 nats, accuracy 0.23-0.32, first - repeat loss 1.35-1.73 nats.
MIN_PREFIX_2L = 0.5
MIN_COPYING_2L = 0.5  # eigenvalue score of the best head's OV circuit (a copier is +1)
MIN_PREV_TOKEN_2L = 0.4  # best layer-0 previous-token score (uniform attention: ~0.1)
MAX_ABLATED_PREFIX_2L = 0.3  # layer 0 ablated: the layer-1 head loses its match
MAX_REPEAT_LOSS_2L = 0.3  # nats
MIN_REPEAT_ACCURACY_2L = 0.95
MIN_ICL_GAIN_2L = 2.5  # first-occurrence loss minus repeat loss, nats
MAX_PREFIX_1L = 0.3
MIN_REPEAT_LOSS_1L = 1.0  # what seen-token and distance heuristics reach: ~2 nats, not < 1
MAX_REPEAT_ACCURACY_1L = 0.5
MAX_ICL_GAIN_1L = 2.0
# Phase change of the 2-layer model (measured: the prefix score rises in 50-125 steps after
# 150-200 steps below 0.3, ratio <= 0.71; steepest loss drop and prefix rise 0-25 steps apart).
JUMP_LOW, JUMP_HIGH = 0.3, 0.8  # the prefix score crosses from below LOW to above HIGH ...
MAX_JUMP_RATIO = 1.0  # ... in fewer steps than it spent below LOW (the plateau before the jump)
MAX_PHASE_LAG_EVALS = 2  # steepest repeat-loss drop vs steepest prefix rise, in log intervals


@functools.partial(jax.jit, static_argnums=1)
def evaluate(params, cfg: model.TransformerConfig, tokens, figure_tokens) -> dict[str, Any]:
  """Losses and head scores on `tokens`, the same with every layer-0 head ablated (the control
  that removes the previous-token write K-composition needs), and the attention patterns on
  `figure_tokens` [1, T]. One compilation per cfg."""
  _, acts = model.transformer_apply(params, figure_tokens, cfg)
  return {"clean": repeated.evaluate_repeats(params, cfg, tokens),
          "ablated": repeated.evaluate_repeats(params, cfg, tokens,
                                               {"layer0/head_out": model.ablate()},
                                               copying=False),
          "patterns": [acts[f"layer{l}/pattern"][0] for l in range(cfg.num_layers)]}


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, [
      "vocab", "seq_len", "min_period", "max_period", "d_model", "num_heads", "batch_size",
      "learning_rate", "seeds", "num_steps", "log_every", "checkpoint_every", "eval_size",
      "construction_sharpness"])
  if config.min_period > config.max_period:
    raise ValueError(f"config.min_period={config.min_period} exceeds "
                     f"config.max_period={config.max_period}")
  if config.seq_len <= config.max_period:
    raise ValueError(f"config.seq_len={config.seq_len} must exceed config.max_period="
                     f"{config.max_period}: no token would repeat")
  if config.vocab < config.max_period:
    raise ValueError(f"config.vocab={config.vocab} must be >= config.max_period="
                     f"{config.max_period} (a segment has distinct tokens)")
  if config.positions not in ("rope", "learned", "none"):
    raise ValueError(f"config.positions={config.positions!r}: 'rope', 'learned' or 'none'")
  if config.train_on not in ("all", "repeats"):
    raise ValueError(f"config.train_on={config.train_on!r}: 'all' or 'repeats'")
  if config.d_model % config.num_heads:
    raise ValueError(f"config.num_heads={config.num_heads} must divide "
                     f"config.d_model={config.d_model}")


def model_config(config, num_layers: int) -> model.TransformerConfig:
  return model.TransformerConfig(
      num_outputs=config.vocab, num_layers=num_layers, num_heads=config.num_heads,
      d_model=config.d_model, vocab_size=config.vocab, positions=config.positions,
      max_len=config.seq_len, layer_norm=config.layer_norm)


_periodic_tokens = jax.jit(repeated.periodic_tokens, static_argnums=range(1, 6))


def eval_data(config, key) -> dict[str, jax.Array]:
  """Fixed held-out sequences drawn like the training ones, and the one whose period is nearest
  the middle of the range, for the attention maps."""
  tokens = _periodic_tokens(
      key, config.eval_size, config.vocab, config.seq_len, config.min_period, config.max_period)
  period = np.argmax(np.asarray(repeated.repeat_masks(tokens)[0]), axis=1)  # first repeat
  pick = int(np.argmin(np.abs(period - 0.5 * (config.min_period + config.max_period))))
  return {"tokens": tokens, "figure_tokens": tokens[pick:pick + 1],
          "figure_period": int(period[pick])}


def _batch_fn(d, key, *, batch_size, vocab, seq_len, min_period, max_period):
  del d
  return repeated.periodic_tokens(key, batch_size, vocab, seq_len, min_period, max_period)


def _eval_fn(params, d, *, cfg):
  # the copying scores depend on the weights only: computed once, at the end (their eigenvalues
  # would add seconds to the compilation of every training program)
  row = repeated.evaluate_repeats(params, cfg, d["tokens"], copying=False)
  return {(k if k in ("prefix_matching", "previous_token") else f"eval_{k}"): v
          for k, v in row.items()}


_copying_scores = jax.jit(repeated.copying_scores, static_argnums=1)


def _float32(params):
  return jax.tree.map(lambda x: x.astype(jnp.float32), params)


class _Trainer(NamedTuple):
  cfg: model.TransformerConfig
  optimizer: optax.GradientTransformation
  init_fn: Any
  step_fn: Any
  batch_fn: Any
  eval_fn: Any


@functools.lru_cache(maxsize=16)
def _trainer(cfg: model.TransformerConfig, learning_rate: float, train_on: str, x64: bool,
             batch_size: int, seq_len: int, min_period: int, max_period: int) -> _Trainer:
  """The functions of one depth, built once per process and shared by its seeds and by later
  runs with the same settings, so that the engine's compiled chunk is reused."""
  optimizer = optax.adam(learning_rate)
  cast = (lambda p: p) if x64 else _float32

  def init_fn(key):
    # The weights are drawn from an RBG key seeded by `key`: threefry's 3-D normal draws
    # (query/key/value/out) take seconds each to compile on CPU, RBG's a tenth of that. Eager,
    # so that each shape compiles once per process, for both depths.
    seed = jax.random.bits(key, dtype=jnp.uint32)
    return cast(model.transformer_init(jax.random.key(seed, impl="rbg"), cfg))

  loss = functools.partial(_loss, cfg=cfg, train_on=train_on)
  batch_fn = functools.partial(_batch_fn, batch_size=batch_size, vocab=cfg.vocab_size,
                               seq_len=seq_len, min_period=min_period, max_period=max_period)
  return _Trainer(cfg, optimizer, init_fn, core.make_train_step(loss, optimizer), batch_fn,
                  functools.partial(_eval_fn, cfg=cfg))


def make_trainer(config, num_layers: int) -> _Trainer:
  return _trainer(model_config(config, num_layers), float(config.learning_rate),
                  config.train_on, bool(config.x64), config.batch_size, config.seq_len,
                  config.min_period, config.max_period)


def _loss(params, tokens, key, *, cfg, train_on):
  del key  # deterministic model
  return repeated.next_token_loss(params, tokens, cfg, train_on=train_on)


def train_one(config, trainer: _Trainer, seed: int, evals, workdir: str):
  """Trains one model; returns (history dict of arrays, final params)."""
  # Same key for both depths: the same initial stream of training sequences.
  state = core.init_run(trainer.init_fn, trainer.optimizer,
                        jax.random.fold_in(jax.random.key(config.seed), seed))
  name = f"layers{trainer.cfg.num_layers}_seed{seed}"
  result = core.train(trainer.step_fn, state, {"tokens": evals["tokens"]},
                      num_steps=config.num_steps, log_every=config.log_every,
                      checkpoint_every=config.checkpoint_every, workdir=workdir, run_name=name,
                      batch_fn=trainer.batch_fn,
                      eval_fn=trainer.eval_fn, progress=core.Progress(label=f"[{name}] "),
                      mesh=common.data_parallel_mesh(config))
  history = {k: np.array([row[k] for row in result.history]) for k in result.history[0]}
  return history, result.state.params


def run_measures(config, h: dict[str, np.ndarray], params, cfg, evals) -> dict[str, Any]:
  """Final scores of the best last-layer head, the ablation control and the phase change."""
  steps = h["step"]
  best_prefix = h["prefix_matching"][:, -1].max(axis=-1)  # [rows] best last-layer head
  head = int(np.argmax(h["prefix_matching"][-1, -1]))
  copying = _copying_scores(params, cfg)
  m = {"prefix": float(best_prefix[-1]), "head": head,
       "copying": float(copying["copying"][-1, head]),
       "copying_fraction": float(copying["copying_fraction"][-1, head]),
       "previous_token": float(h["previous_token"][-1, 0].max()),
       "repeat_loss": float(h["eval_repeat_loss"][-1]),
       "first_loss": float(h["eval_first_loss"][-1]),
       "repeat_accuracy": float(h["eval_repeat_accuracy"][-1])}
  m["icl_gain"] = m["first_loss"] - m["repeat_loss"]
  if cfg.num_layers >= 2:  # the ablation control and the attention maps
    e = evaluate(params, cfg, evals["tokens"], evals["figure_tokens"])
    m["ablated_prefix"] = float(e["ablated"]["prefix_matching"][-1].max())
    m["patterns"] = [np.asarray(p) for p in e["patterns"]]
  m["t_loss_drop"], m["loss_drop_slope"] = metrics.steepest_rise(steps, -h["eval_repeat_loss"])
  m["t_prefix_rise"], _ = metrics.steepest_rise(steps, best_prefix)
  t_low, t_high = metrics.jump_window(steps, best_prefix, JUMP_LOW, JUMP_HIGH)
  m["t_jump_low"], m["t_jump_high"], m["jump_steps"] = t_low, t_high, t_high - t_low
  m["jump_ratio"] = (t_high - t_low) / t_low if t_low > 0 else float("inf")
  m["phase_lag"] = abs(m["t_loss_drop"] - m["t_prefix_rise"])
  return m


def construction_measures(config, evals) -> dict[str, Any]:
  cfg, params = repeated.induction_head_construction(config.vocab, config.seq_len,
                                                     config.construction_sharpness)
  e = evaluate(params, cfg, evals["tokens"], evals["figure_tokens"])
  clean, ablated = e["clean"], e["ablated"]
  return {"prefix": float(clean["prefix_matching"][1, 0]),
          "previous_token": float(clean["previous_token"][0, 0]),
          "copying": float(clean["copying"][1, 0]),
          "repeat_loss": float(clean["repeat_loss"]),
          "repeat_accuracy": float(clean["repeat_accuracy"]),
          "ablated_prefix": float(ablated["prefix_matching"][1, 0]),
          "ablated_repeat_loss": float(ablated["repeat_loss"]),
          "ablated_accuracy": float(ablated["repeat_accuracy"]),
          "chance_prefix": float(repeated.chance_prefix_matching(evals["tokens"])),
          "patterns": [np.asarray(p) for p in e["patterns"]]}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  evals = eval_data(config, jax.random.fold_in(jax.random.key(config.seed), 10**6))
  built = construction_measures(config, evals)
  runs, measures, params = {}, {}, {}
  for num_layers in (1, 2):
    trainer = make_trainer(config, num_layers)
    for seed in range(config.seeds):
      history, final = train_one(config, trainer, seed, evals, workdir)
      runs[(num_layers, seed)] = history
      measures[(num_layers, seed)] = run_measures(config, history, final, trainer.cfg, evals)
      params[(num_layers, seed)] = final
  comparisons = _comparisons(config, built, measures)
  figures = common.finish(workdir, comparisons, lambda figdir: _figures(
      config, runs, measures, built, evals, figdir))
  return {"comparisons": comparisons, "figures": figures, "runs": runs, "measures": measures,
          "construction": built, "params": params}


def _comparisons(config, b, m) -> list[common.Comparison]:
  seeds = range(config.seeds)
  lo = lambda depth, name: min(m[(depth, s)][name] for s in seeds)
  hi = lambda depth, name: max(m[(depth, s)][name] for s in seeds)
  C = common.Comparison
  built = f"hand-built circuit (V={config.vocab}, sharpness {config.construction_sharpness:g})"
  two = f"2-layer, worst of {config.seeds} seed(s), {config.num_steps} steps"
  one = f"1-layer, worst of {config.seeds} seed(s), same budget"
  return [
      C(f"{built}: layer-1 prefix-matching score", 1.0, b["prefix"], CONSTRUCTION_TOLERANCE),
      C(f"{built}: layer-0 previous-token score", 1.0, b["previous_token"],
        CONSTRUCTION_TOLERANCE),
      C(f"{built}: layer-1 OV copying (eigenvalue) score", 1.0, b["copying"],
        CONSTRUCTION_TOLERANCE),
      C(f"{built}: loss on the repeats (nats)", CONSTRUCTION_MAX_LOSS, b["repeat_loss"],
        relation="<="),
      C(f"{built}, layer 0 ablated: prefix score (<= {ABLATED_OVER_CHANCE} x chance "
        f"{b['chance_prefix']:.3f})", ABLATED_OVER_CHANCE * b["chance_prefix"],
        b["ablated_prefix"], relation="<="),
      C(f"{two}: max prefix-matching score of a layer-1 head", MIN_PREFIX_2L,
        lo(2, "prefix"), relation=">="),
      C(f"{two}: copying (eigenvalue) score of that head", MIN_COPYING_2L, lo(2, "copying"),
        relation=">="),
      C(f"{two}: max previous-token score of a layer-0 head", MIN_PREV_TOKEN_2L,
        lo(2, "previous_token"), relation=">="),
      C(f"{two}: max layer-1 prefix score with layer 0 ablated (K-composition)",
        MAX_ABLATED_PREFIX_2L, hi(2, "ablated_prefix"), relation="<="),
      C(f"{two}: loss on the repeats (nats)", MAX_REPEAT_LOSS_2L, hi(2, "repeat_loss"),
        relation="<="),
      C(f"{two}: accuracy on the repeats", MIN_REPEAT_ACCURACY_2L, lo(2, "repeat_accuracy"),
        relation=">="),
      C(f"{two}: first-occurrence loss - repeat loss (nats)", MIN_ICL_GAIN_2L,
        lo(2, "icl_gain"), relation=">="),
      C(f"{two}: steps for the prefix score to go from < {JUMP_LOW} to > {JUMP_HIGH} / "
        f"steps it spent below {JUMP_LOW} before (abrupt, after a plateau)", MAX_JUMP_RATIO,
        hi(2, "jump_ratio"), relation="<="),
      C(f"{two}: |steepest repeat-loss drop - steepest prefix rise| (steps)",
        MAX_PHASE_LAG_EVALS * config.log_every, hi(2, "phase_lag"), relation="<="),
      C(f"{one}: max prefix-matching score (chance {b['chance_prefix']:.3f})", MAX_PREFIX_1L,
        hi(1, "prefix"), relation="<="),
      C(f"{one}: loss on the repeats (nats)", MIN_REPEAT_LOSS_1L, lo(1, "repeat_loss"),
        relation=">="),
      C(f"{one}: accuracy on the repeats", MAX_REPEAT_ACCURACY_1L, hi(1, "repeat_accuracy"),
        relation="<="),
      C(f"{one}: first-occurrence loss - repeat loss (nats; seen-token heuristics)",
        MAX_ICL_GAIN_1L, hi(1, "icl_gain"), relation="<="),
  ]


def _figures(config, runs, m, built, evals, figdir) -> dict[str, str]:
  out = {}
  colors = {1: "C1", 2: "C0"}
  styles = ["-", "--", ":", "-."]

  def mark_phase(ax):
    for s in range(config.seeds):
      ax.axvline(m[(2, s)]["t_loss_drop"], color="C3", linewidth=0.8, alpha=0.7,
                 label="2-layer phase change" if s == 0 else None)

  fig, axes = plotting.figure_grid(2)
  for (depth, s), h in sorted(runs.items()):
    ls = styles[s % len(styles)]
    tag = f"{depth}-layer" if s == 0 else None
    axes[0].plot(h["step"], h["eval_repeat_loss"], color=colors[depth], linestyle=ls,
                 label=tag and f"{tag}: repeats")
    axes[1].plot(h["step"], h["eval_first_loss"], color=colors[depth], linestyle=ls,
                 label=tag and f"{tag}: first occurrences")
    axes[1].plot(h["step"], h["loss"], color=colors[depth], linestyle=ls, linewidth=0.7,
                 alpha=0.6, label=tag and f"{tag}: training loss (all)")
  axes[0].set_yscale("log")
  axes[0].set_title("loss on the repeats (held-out)")
  axes[1].set_title("first occurrences (held-out); training loss")
  axes[1].axhline(np.log(config.vocab), color="gray", linestyle=":", linewidth=1)
  for ax in axes:
    mark_phase(ax)
    ax.set_xlabel("training step")
    ax.set_ylabel("nats")
    ax.legend(frameon=False, fontsize=7)
  out["loss"] = plotting.save(fig, os.path.join(figdir, "loss.png"))

  fig, axes = plotting.figure_grid(1, width=5.0)
  ax = axes[0]
  for (depth, s), h in sorted(runs.items()):
    ls = styles[s % len(styles)]
    ax.plot(h["step"], h["prefix_matching"][:, -1].max(axis=-1), color=colors[depth],
            linestyle=ls, label=f"{depth}-layer: best last-layer head" if s == 0 else None)
    if depth == 2:
      ax.plot(h["step"], h["previous_token"][:, 0].max(axis=-1), color="C2", linestyle=ls,
              linewidth=0.8, label="2-layer: best layer-0 previous-token" if s == 0 else None)
  ax.axhline(MIN_PREFIX_2L, color="k", linestyle="--", linewidth=0.8)
  ax.axhline(built["chance_prefix"], color="gray", linestyle=":", linewidth=1,
             label="chance (uniform attention)")
  mark_phase(ax)
  ax.set_xlabel("training step")
  ax.set_title("prefix-matching score over training")
  ax.legend(frameon=False, fontsize=7)
  out["prefix_matching"] = plotting.save(fig, os.path.join(figdir, "prefix_matching.png"))

  prev_head = int(np.argmax(runs[(2, 0)]["previous_token"][-1, 0]))
  head = m[(2, 0)]["head"]
  panels = [(m[(2, 0)]["patterns"][0][prev_head], f"trained layer 0, head {prev_head} "
             "(previous token)"),
            (m[(2, 0)]["patterns"][1][head], f"trained layer 1, head {head} (induction)"),
            (built["patterns"][1][0], "hand-built layer 1 (induction)")]
  fig, axes = plotting.figure_grid(len(panels))
  for ax, (pattern, title) in zip(axes, panels):
    ax.imshow(np.asarray(pattern), cmap="viridis", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(f"key position (period {evals['figure_period']})")
    ax.set_ylabel("query position")
  out["attention"] = plotting.save(fig, os.path.join(figdir, "attention.png"))
  return out
