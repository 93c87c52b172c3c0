"""How the transformer-family training steps scale, and how close they come to the hardware limit.

  python -m benchmarks.scaling [--family=ebt,induction] [--steps=10] [--quick] [--axes=depth]
      [--arms="S1,S1 remat"]

For each family (`ebt`: the S1 EBT training step, two detached second-order descent steps, the same
with every block rematerialised (`EBTConfig.remat`), and its equal-size baseline transformer; `induction`: the 2-layer transformer of experiments/induction_repeat
on repeated tokens) and each size in a sweep of width, depth, sequence length and batch (the batch
axis is not in the default `--axes`), one child process
(so that the OS's peak memory belongs to that size alone) measures:

- ms per jitted training step (median of `--steps` after a warm-up),
- XLA's FLOP count of the compiled step (`cost_analysis`; S1 has no while loop, so it is exact;
  for a rematerialised arm, that of the same step without remat: recomputation is not counted),
- achieved FLOP/s as a fraction of a plain float32 matmul's, measured in the same process at the
  largest square size that fits the step's own width (the issue's goal: >= 0.5 where matmul-bound),
- peak resident memory of the child from the OS (`ru_maxrss`), which includes the ~0.3 GB of the
  Python and XLA runtime themselves (the first row shows that floor),
- compile time of the step,
- the compiled step's temporary buffers (XLA's `memory_analysis`): its working set, to set beside
  the CPU's last-level cache;
- the MB of page faults per step (the OS's minor-fault count times the page size, over 3 steps
  after the timed ones): on Linux with glibc's default allocator a step whose temporaries exceed
  32 MiB maps them fresh and faults every page of them on every call (benchmarks/README.md).

Printed as a table per family with each row's growth over the smallest size. Times are wall-clock on
whatever machine runs this; compare ratios across machines, not seconds.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

from absl import app, flags

from benchmarks.steps import BATCH, median_seconds, training_step

# (d_model, num_layers, seq_len, batch); batch 32 (the studies') except along the batch axis.
SWEEP = {"width": [(64, 2, 32, BATCH), (128, 2, 32, BATCH), (256, 2, 32, BATCH),
                   (512, 2, 32, BATCH)],
         "depth": [(128, 1, 32, BATCH), (128, 2, 32, BATCH), (128, 4, 32, BATCH),
                   (128, 8, 32, BATCH)],
         "sequence": [(128, 2, 16, BATCH), (128, 2, 32, BATCH), (128, 2, 64, BATCH),
                      (128, 2, 128, BATCH)],
         "batch": [(128, 2, 32, 8), (128, 2, 32, 16), (128, 2, 32, 32), (128, 2, 32, 64),
                   (128, 2, 32, 128)]}
DEFAULT_AXES = ["width", "depth", "sequence"]

_FAMILY = flags.DEFINE_list("family", ["ebt", "induction"], "Families to sweep.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per size (after one warm-up step).")
_QUICK = flags.DEFINE_bool("quick", False, "Two sizes per axis (a smoke run).")
_AXES = flags.DEFINE_list("axes", DEFAULT_AXES, f"Axes to sweep (of {sorted(SWEEP)}).")
_ARMS = flags.DEFINE_list("arms", None, "Arms to run (default: all of each family's).")
_CHILD = flags.DEFINE_string("child", None, "Internal: measure one size given as JSON.")


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _matmul_flops_per_s(n: int) -> float:
  import jax
  a = jax.random.normal(jax.random.key(1), (n, n))
  f = jax.jit(lambda x: x @ x)
  return 2 * n ** 3 / median_seconds(lambda: f(a), 10)


def child(spec: dict) -> dict:
  import jax
  d, layers, seq, batch_size = spec["size"]
  step, state, batch = training_step(spec["family"], spec["arm"], d, layers, seq, batch_size)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  seconds = median_seconds(lambda: compiled(state, batch)[1]["loss"], spec["steps"])
  faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(3):
    jax.block_until_ready(compiled(state, batch))
  faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / 3
  flops = _flops(compiled)
  if spec["arm"].endswith("remat"):  # count the model's FLOPs, not the recomputation's
    plain_step, plain_state, _ = training_step(spec["family"], spec["arm"][:-len(" remat")],
                                               d, layers, seq, batch_size)
    flops = _flops(plain_step.lower(plain_state, batch).compile())
  matmul_n = max(256, min(2048, 4 * d))
  temp_mb = compiled.memory_analysis().temp_size_in_bytes / 1e6
  peak = _matmul_flops_per_s(matmul_n)
  rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # kB on Linux
  return {"ms": 1e3 * seconds, "gflop": flops / 1e9, "of_matmul": flops / seconds / peak,
          "matmul_gflops": peak / 1e9, "matmul_n": matmul_n, "rss_gb": rss_gb,
          "compile_s": compile_s, "temp_mb": temp_mb,
          "fault_mb": faults * resource.getpagesize() / 1e6, "device": jax.devices()[0].device_kind}


def main(argv):
  del argv
  if _CHILD.value:
    print(json.dumps(child(json.loads(_CHILD.value))))
    return
  arms = {"ebt": ["S1", "S1 remat", "baseline"], "induction": ["transformer"]}
  unknown = sorted(set(_AXES.value) - set(SWEEP))
  if unknown:
    raise app.UsageError(f"--axes: unknown {unknown}; known: {sorted(SWEEP)}")
  sweep = {k: (v[:2] if _QUICK.value else v) for k, v in SWEEP.items() if k in _AXES.value}
  for family in _FAMILY.value:
    if family not in arms:
      raise app.UsageError(f"--family: unknown {family!r}; known: {sorted(arms)}")
    for arm in [a for a in arms[family] if _ARMS.value is None or a in _ARMS.value]:
      print(f"\n{family} / {arm}: float32; growth = over the axis's first size")
      print(f"{'axis':<9} {'d,L,S,B':<14} {'ms/step':>8} {'growth':>7} {'GFLOP':>8} "
            f"{'of matmul':>9} {'peak GB':>8} {'growth':>7} {'compile s':>9} {'temp MB':>8} "
            f"{'faults MB':>9}")
      for axis, sizes in sweep.items():
        first = None
        for size in sizes:
          spec = {"family": family, "arm": arm, "size": size, "steps": _STEPS.value}
          out = subprocess.run([sys.executable, "-m", "benchmarks.scaling",
                                f"--child={json.dumps(spec)}"], capture_output=True, text=True)
          if out.returncode:
            print(f"{axis:<9} {size}: failed\n{out.stderr[-2000:]}")
            continue
          r = json.loads(out.stdout.strip().splitlines()[-1])
          first = first or r
          print(f"{axis:<9} {','.join(map(str, size)):<14} {r['ms']:8.2f} "
                f"{r['ms'] / first['ms']:6.1f}x {r['gflop']:8.3f} {r['of_matmul']:9.2f} "
                f"{r['rss_gb']:8.2f} {r['rss_gb'] / first['rss_gb']:6.2f}x {r['compile_s']:9.2f} "
                f"{r['temp_mb']:8.1f} {r['fault_mb']:9.1f}")
      print(f"(device: {r['device']}; matmul reference up to {r['matmul_n']}^2: "
            f"{r['matmul_gflops']:.0f} GFLOP/s)")


if __name__ == "__main__":
  app.run(main)
