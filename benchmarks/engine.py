"""Engine benchmarks on the Saxe deep linear network, each printed as a ratio measured in one run.

  python -m benchmarks.engine [--steps=20000] [--seeds=256] [--x64]

1. scan-chunked training (`core.train`) vs one jitted call per step: steps/s ratio;
2. a vmapped population of `--seeds` seeds vs one seed (same steps): wall-time ratio, time per seed;
3. compile time of the training step and of one scanned chunk.
Times are wall-clock on whatever machine runs this; compare ratios across machines, not seconds.
"""

from __future__ import annotations

import time

from absl import app, flags

_STEPS = flags.DEFINE_integer("steps", 20_000, "Training steps per measurement.")
_SEEDS = flags.DEFINE_integer("seeds", 256, "Population size.")
_WIDTH = flags.DEFINE_integer("width", 8, "Width of every layer of the N_l = 3 network.")
_X64 = flags.DEFINE_bool("x64", False, "Use float64 (the tests' precision) instead of float32.")


def main(argv):
  del argv
  import jax
  jax.config.update("jax_enable_x64", _X64.value)
  import optax

  from jaxlab import core
  from jaxlab import deep_linear as dl

  steps, width = _STEPS.value, _WIDTH.value
  task = dl.make_task(jax.random.key(0), width, width, [3.0, 2.0, 1.0])
  net = dl.DeepLinearConfig((width, width, width), 1e-3)
  optimizer = optax.sgd(1e-3)
  step_fn = core.make_train_step(dl.loss, optimizer)
  data = (task.x, task.y)
  fresh = lambda: core.init_train_state(dl.init(jax.random.key(1), net), optimizer,
                                        jax.random.key(2))
  print(f"device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s); "
        f"N_l=3 width {width}, {'float64' if _X64.value else 'float32'}")

  # 3. Compile times.
  state = fresh()
  t0 = time.perf_counter()
  jitted_step = jax.jit(step_fn).lower(state, data).compile()
  compile_step = time.perf_counter() - t0
  t0 = time.perf_counter()
  jax.jit(lambda s, d: core.scan_train(step_fn, s, d, num_steps=1000, log_every=100)).lower(
      state, data).compile()
  compile_chunk = time.perf_counter() - t0

  # 1. Scan-chunked vs per-step dispatch.
  state = fresh()
  core.train(step_fn, state, data, num_steps=1000, log_every=100, progress=False)  # warm up
  _, scan_s = core.wall_time(lambda: core.train(step_fn, fresh(), data, num_steps=steps,
                                                log_every=100, progress=False).state)

  def per_step():
    s = fresh()
    for _ in range(steps):
      s, _ = jitted_step(s, data)
    return s

  per_step_s = core.wall_time(per_step)[1]
  print(f"[1] scan-chunked: {steps / scan_s:,.0f} steps/s; one jit call per step: "
        f"{steps / per_step_s:,.0f} steps/s; ratio {per_step_s / scan_s:.1f}x")

  # 2. Population vs one seed.
  population = core.make_population(lambda k: dl.init(k, net), dl.loss, optimizer,
                                    num_steps=steps, log_every=steps // 10)
  keys_1, keys_n = (jax.random.split(jax.random.key(3), n) for n in (1, _SEEDS.value))
  jax.block_until_ready((population(keys_1, None, data), population(keys_n, None, data)))  # compile
  one_s = core.wall_time(lambda: population(keys_1, None, data))[1]
  many_s = core.wall_time(lambda: population(keys_n, None, data))[1]
  print(f"[2] population: 1 seed {one_s:.3f} s, {_SEEDS.value} seeds {many_s:.3f} s; "
        f"wall-time ratio {many_s / one_s:.1f}x for {_SEEDS.value}x the runs "
        f"({many_s / _SEEDS.value * 1e3:.2f} ms per seed vs {one_s * 1e3:.2f} ms alone)")
  print(f"[3] compile: training step {compile_step * 1e3:.0f} ms; 1000-step scanned chunk "
        f"{compile_chunk * 1e3:.0f} ms")


if __name__ == "__main__":
  app.run(main)
