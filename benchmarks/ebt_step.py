"""The cost of an EBT training step over an equal-size transformer's, measured side by side.

  python -m benchmarks.ebt_step [--d_model=128] [--seq_len=32] [--batch=32] [--steps=30]
      [--rounds=2] [--remat] [--microbatches=1]

Gladstone et al. 2025 count one EBT step as about 3.33x a Transformer++ step (the doubled stream,
the vocabulary-to-embedding map, the backward through dE/dp): a K-step chain with a second-order
last step should cost about (K + 1) times that. Printed: seconds per training step of the baseline,
S1 (2 detached steps, second order on each, forward over reverse: `core.energy_and_grad`), the same
S1 with autodiff's reverse over reverse (the reference the second order replaced), S2 (truncated, K
= 2 and K = 3 fixed, replay buffer), their ratios to the baseline, XLA's FLOP count of each compiled
step and the ratio of those counts, and the achieved FLOP/s as a fraction of a plain matmul's
measured in this process (XLA's cost analysis counts a while-loop body once, so the truncated
recipes' K - 1 frozen steps, which run in a `fori_loop`, are counted as the reported count plus (K -
2) times the FLOPs of one frozen descent step lowered on its own; the printed check compares that
body with the difference between the reported counts of K = 3 and K = 2). `--remat` and
`--microbatches` change how the EBT runners compute, not what: their FLOPs are those of the plain,
unsplit step; the baseline always runs plain and unsplit, its fastest form on CPU.
Times are wall-clock on whatever machine runs this; compare ratios across machines, not seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from unittest import mock

from absl import app, flags

REVERSE = "S1, reverse over reverse"  # S1 with autodiff's second order: the reference

_D = flags.DEFINE_integer("d_model", 128, "Width.")
_LAYERS = flags.DEFINE_integer("num_layers", 2, "Depth.")
_SEQ = flags.DEFINE_integer("seq_len", 32, "Window length.")
_BATCH = flags.DEFINE_integer("batch", 32, "Sequences per step.")
_VOCAB = flags.DEFINE_integer("vocab", 104, "Vocabulary (the help pages have 103 characters).")
_STEPS = flags.DEFINE_integer("steps", 30, "Timed steps per runner and round (after one warm-up "
                              "step).")
_ROUNDS = flags.DEFINE_integer("rounds", 2, "Rounds; each times every runner in turn, the best "
                               "counts.")
_REMAT = flags.DEFINE_bool("remat", False, "EBTConfig.remat for the EBT runners (jax.checkpoint "
                           "per block, matmul outputs saved); the baseline runs without.")
_MICRO = flags.DEFINE_integer("microbatches", 1, "make_train_step(num_microbatches=...) for the EBT "
                              "runners without a replay buffer (S1); the baseline and S2 run "
                              "unsplit.")


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _time(fn, *args, steps: int) -> float:
  import jax
  out = fn(*args)
  jax.block_until_ready(out)
  t0 = time.perf_counter()
  for _ in range(steps):
    out = fn(*args)
    jax.block_until_ready(out)
  return (time.perf_counter() - t0) / steps


def main(argv):
  del argv
  import jax
  import optax

  from jaxlab import core
  from jaxlab.core import autodiff
  from jaxlab.ebt import model, thinking

  # The baseline at its fastest: remat and microbatches only slow it (benchmarks/README.md).
  base_cfg = model.EBTConfig(vocab_size=_VOCAB.value, d_model=_D.value, num_heads=4,
                             num_layers=_LAYERS.value, max_len=_SEQ.value)
  cfg = dataclasses.replace(base_cfg, remat=_REMAT.value)
  batch = jax.random.randint(jax.random.key(0), (_BATCH.value, _SEQ.value + 1), 0, cfg.vocab_size)
  opt = optax.adamw(1e-3)
  runners = {"baseline": (thinking.baseline_loss(base_cfg), None,
                          lambda k: model.baseline_init(k, base_cfg))}
  recipes = {"S1 (2 detached steps)": thinking.S1,
             REVERSE: thinking.S1,
             "S2 K=2 (truncated, replay)": dataclasses.replace(thinking.S2, num_steps=2,
                                                                min_steps=None),
             "S2 K=3 (truncated, replay)": dataclasses.replace(thinking.S2, min_steps=None)}
  for name, think in recipes.items():
    runners[name] = (thinking.make_loss(cfg, think), think,
                     lambda k, think=think: thinking.init(k, cfg, think))

  print(f"device: {jax.devices()[0].device_kind}; d_model {cfg.d_model}, {cfg.num_layers} layers, "
        f"seq {_SEQ.value}, batch {_BATCH.value}, vocab {cfg.vocab_size}, float32"
        + (", EBT blocks rematerialised" if cfg.remat else "")
        + (f", S1 in {_MICRO.value} microbatches" if _MICRO.value > 1 else ""))
  n = 1024
  a = jax.random.normal(jax.random.key(1), (n, n))
  matmul = jax.jit(lambda x: x @ x)
  def body_flops(params, think):
    """One frozen descent step (energy and its gradient in the candidates) on the batch the loss
    descends: the fresh windows plus the replayed ones."""
    rows = _BATCH.value + thinking.num_replayed(think, _BATCH.value)
    tokens = batch[:1, :-1].repeat(rows, axis=0)
    y = jax.numpy.zeros(tokens.shape + (cfg.vocab_size,))
    alpha = jax.numpy.full(tokens.shape + (1,), think.step_size)
    fn = lambda p, t, y, a, k: thinking.descent_step(p, t, y, a, k, base_cfg, think, 1)[0]
    return _flops(jax.jit(fn).lower(params, tokens, y, alpha, jax.random.key(4)).compile())

  reported, timed = {}, {}

  def compile_runner(name, loss, think, init):
    extra = None if think is None else thinking.init_extra(cfg, think, _SEQ.value)
    state = core.init_train_state(init(jax.random.key(2)), opt, jax.random.key(3), extra=extra)
    micro = 1 if think is None or extra is not None else _MICRO.value
    step = jax.jit(core.make_train_step(loss, opt, carries_extra=extra is not None,
                                        num_microbatches=micro)).lower(state, batch).compile()
    # FLOPs of the model, counted on the plain, unsplit twin: XLA counts a loop body (the
    # microbatch scan's) once, and remat's recomputation is not the model's arithmetic.
    counted = step if think is None or (micro == 1 and not cfg.remat) else jax.jit(
        core.make_train_step(thinking.make_loss(base_cfg, think), opt,
                             carries_extra=extra is not None)).lower(state, batch).compile()
    flops = reported[name] = _flops(counted)
    if think is not None and think.gradient == "truncate" and think.num_steps > 2:
      body = body_flops(state.params, think)
      flops += (think.num_steps - 2) * body
      k2 = [v for n, v in reported.items() if n.startswith("S2 K=2")]
      if k2:
        print(f"  ({name}: loop body {body / 1e9:.3f} GFLOP; reported K=3 - K=2: "
              f"{(reported[name] - k2[0]) / 1e9:.3f} GFLOP: XLA counted the body once)")
    timed[name] = (step, state, flops, [])

  for name, (loss, think, init) in runners.items():
    # The reference runner is compiled with the second order left to autodiff (reverse over
    # reverse); every runner is compiled ahead of time, so the patch covers all its tracing.
    with (mock.patch.object(core, "energy_and_grad", autodiff.energy_and_grad_reverse)
          if name == REVERSE else contextlib.nullcontext()):
      compile_runner(name, loss, think, init)
  # Rounds, each timing every runner in turn; the best round counts (the first runner timed in a
  # process, the baseline, otherwise carries the machine's warm-up).
  matmul_seconds = []
  for _ in range(_ROUNDS.value):
    matmul_seconds.append(_time(matmul, a, steps=20))
    for step, state, _, seconds in timed.values():
      seconds.append(_time(lambda s: step(s, batch)[1]["loss"], state, steps=_STEPS.value))
  matmul_flops = 2 * n ** 3 / min(matmul_seconds)
  print(f"plain {n}x{n} matmul: {matmul_flops / 1e9:.1f} GFLOP/s")
  base_time, base_flops = min(timed["baseline"][3]), timed["baseline"][2]
  print(f"{'runner':<30} {'ms/step':>9} {'x baseline':>11} {'GFLOP/step':>11} "
        f"{'FLOP ratio':>11} {'time/FLOP':>10} {'of matmul':>10}")
  for name, (_, _, flops, rounds) in timed.items():
    seconds = min(rounds)
    print(f"{name:<30} {1e3 * seconds:9.2f} {seconds / base_time:11.2f} {flops / 1e9:11.3f} "
          f"{flops / base_flops:11.2f} {seconds / base_time / (flops / base_flops):10.2f} "
          f"{flops / seconds / matmul_flops:10.2f}", flush=True)
  print("time/FLOP: the time ratio over the FLOP ratio; 1 = the step costs what its arithmetic says.")
  print("expected (paper): one EBT step ~3.3x the baseline; a K-step chain ~(K + 1) x that "
        "with replay adding half a batch")


if __name__ == "__main__":
  app.run(main)
