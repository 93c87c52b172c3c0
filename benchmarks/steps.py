"""The transformer-family training steps the scaling and microbatch benchmarks time, and the timer.

`training_step(family, arm, d, layers, seq)`: `ebt` arms "S1" (two detached second-order descent
steps, two landscapes), "S1 remat" (its blocks rematerialised) and "baseline" (the equal-size
transformer); `induction` arm "transformer" (the 2-layer model of experiments/induction_repeat,
here at any depth, on repeated tokens). Adam(W) at 1e-3, float32.
"""

from __future__ import annotations

import statistics
import time

BATCH = 32  # the studies' batch


def median_seconds(fn, steps: int) -> float:
  """Median wall seconds of `steps` blocked calls of `fn`, after one warm-up call."""
  import jax
  jax.block_until_ready(fn())
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def training_step(family: str, arm: str, d: int, layers: int, seq: int, batch_size: int = BATCH,
                  num_microbatches: int = 1):
  """(jitted step, state, batch) of one family's training step at one size."""
  import jax
  import optax
  from jaxlab import core
  opt = optax.adamw(1e-3)
  if family == "ebt":
    from jaxlab.ebt import model, thinking
    s1 = arm.startswith("S1")
    cfg = model.EBTConfig(vocab_size=104, d_model=d, num_heads=4, num_layers=layers,
                          max_len=seq, num_landscapes=2 if s1 else 0, remat=arm.endswith("remat"))
    batch = jax.random.randint(jax.random.key(0), (batch_size, seq + 1), 0, cfg.vocab_size)
    if s1:
      loss, params = thinking.make_loss(cfg, thinking.S1), thinking.init(jax.random.key(2), cfg,
                                                                          thinking.S1)
    else:
      loss, params = thinking.baseline_loss(cfg), model.baseline_init(jax.random.key(2), cfg)
  else:
    from jaxlab.induction import model, repeated
    cfg = model.TransformerConfig(num_outputs=64, num_layers=layers, num_heads=4, d_model=d,
                                  vocab_size=64, positions="learned", max_len=seq,
                                  mlp_ratio=None)
    batch = repeated.periodic_tokens(jax.random.key(0), batch_size, 64, seq, 2, seq // 2)
    loss = lambda p, b, k: repeated.next_token_loss(p, b, cfg, train_on="all")
    params = model.transformer_init(jax.random.key(2), cfg)
  state = core.init_train_state(params, opt, jax.random.key(3))
  return (jax.jit(core.make_train_step(loss, opt, num_microbatches=num_microbatches)), state,
          batch)
