"""Engine benchmarks on the Saxe deep linear network, each printed as a ratio measured in one run.

  python -m benchmarks.engine [--steps=20000] [--seeds=1,16,256,1024] [--x64]

1. scan-chunked training (`core.train`) vs one jitted call per step: steps/s ratio;
2. vmapped populations of each of `--seeds` seeds (same steps): wall time, time per seed, and the
   ratio to one seed's time;
3. compile time of the training step and of one scanned chunk;
4. buffer donation: peak resident memory (OS) of a run of a wide network (`--donation_width`, Adam)
   whose chunks donate their input state (`core.train`'s default) vs one whose chunks do not, each
   in its own child process.
Times are wall-clock on whatever machine runs this; compare ratios across machines, not seconds.
"""

from __future__ import annotations

import time

from absl import app, flags

_STEPS = flags.DEFINE_integer("steps", 20_000, "Training steps per measurement.")
_SEEDS = flags.DEFINE_list("seeds", ["1", "16", "256", "1024"], "Population sizes (the first is the "
                          "reference).")
_WIDTH = flags.DEFINE_integer("width", 8, "Width of every layer of the N_l = 3 network.")
_X64 = flags.DEFINE_bool("x64", False, "Use float64 (the tests' precision) instead of float32.")
_DONATION_WIDTH = flags.DEFINE_integer("donation_width", 2048, "Width of the network of [4].")
_DONATION_CHILD = flags.DEFINE_enum("donation_child", None, ["donate", "keep"],
                                    "Internal: run [4]'s training in this process and print its "
                                    "peak memory.")


def donation_child(donate: bool, width: int) -> None:
  """Trains an N_l = 3 net of `width` with Adam for 4 chunks of 2 steps and prints the peak RSS (GB) and the
  size of its training state (GB)."""
  import resource

  import jax
  import optax

  from jaxlab import core
  from jaxlab import deep_linear as dl
  task = dl.make_task(jax.random.key(0), width, width, [3.0, 2.0, 1.0])
  optimizer = optax.adam(1e-4)
  state = core.init_train_state(dl.init(jax.random.key(1), dl.DeepLinearConfig((width,) * 3, 1e-3)),
                                optimizer, jax.random.key(2))
  state_gb = sum(leaf.nbytes for leaf in jax.tree.leaves(state) if hasattr(leaf, "nbytes")) / 2**30
  result = core.train(core.make_train_step(dl.loss, optimizer), state, (task.x, task.y),
                      num_steps=8, log_every=2, steps_per_chunk=2, progress=False,
                      donate_state=donate)
  jax.block_until_ready(result.state)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  print(f"RESULT {peak:.4f} {state_gb:.4f}")


def _donation_peak(donate: bool, width: int) -> tuple[float, float]:
  import subprocess
  import sys
  out = subprocess.run([sys.executable, "-m", "benchmarks.engine",
                        f"--donation_child={'donate' if donate else 'keep'}",
                        f"--donation_width={width}", f"--x64={_X64.value}"],
                       capture_output=True, text=True, check=True)
  line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")][-1]
  peak, state = map(float, line.split()[1:])
  return peak, state


def main(argv):
  del argv
  import jax
  jax.config.update("jax_enable_x64", _X64.value)
  if _DONATION_CHILD.value:
    donation_child(_DONATION_CHILD.value == "donate", _DONATION_WIDTH.value)
    return
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

  # 2. Populations of growing size, one vmapped call each.
  population = core.make_population(lambda k: dl.init(k, net), dl.loss, optimizer,
                                    num_steps=steps, log_every=steps // 10)
  sizes = [int(n) for n in _SEEDS.value]
  first = None
  for n in sizes:
    keys = jax.random.split(jax.random.key(3), n)
    jax.block_until_ready(population(keys, None, data))  # compile
    seconds = core.wall_time(lambda: population(keys, None, data))[1]
    first = first or (n, seconds)
    print(f"[2] population of {n:>5}: {seconds:8.3f} s, {seconds / n * 1e3:8.3f} ms per seed; "
          f"{seconds / first[1]:7.1f}x the wall time of {first[0]} for {n / first[0]:g}x the runs")
  print(f"[3] compile: training step {compile_step * 1e3:.0f} ms; 1000-step scanned chunk "
        f"{compile_chunk * 1e3:.0f} ms")

  # 4. Donation.
  kept, state_gb = _donation_peak(False, _DONATION_WIDTH.value)
  donated, _ = _donation_peak(True, _DONATION_WIDTH.value)
  print(f"[4] peak memory, width {_DONATION_WIDTH.value} with Adam (training state {state_gb:.2f} GB):"
        f" donated chunks {donated:.2f} GB, undonated {kept:.2f} GB; saved {kept - donated:.2f} GB "
        f"= {(kept - donated) / state_gb:.1f} training states")


if __name__ == "__main__":
  app.run(main)
