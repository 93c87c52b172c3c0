"""Gradient accumulation on CPU: a deep training step split into microbatches, side by side.

  python -m benchmarks.microbatch [--num_layers=8] [--batch=32] [--microbatches=1,2,4,8]
      [--arms="induction,baseline,S1,S1 remat"] [--repeats=3] [--steps=7]

`core.make_train_step(..., num_microbatches=k)` takes the gradient of k strided microbatches in a
`lax.scan` and averages them: the same update as the full batch's (up to float rounding) with 1/k of
the activations live at once. On accelerators that is a memory knob; on a 2-core CPU it made the
second-order EBT S1 step 2.3x faster at 8 layers while that step was reverse over reverse (now
forward over reverse: 10-14% faster), and the first-order transformers no faster
(benchmarks/README.md). For each arm (the steps of
`benchmarks.scaling` at `--num_layers`: the induction transformer, the EBT baseline transformer,
EBT S1 and S1 with its blocks rematerialised) this prints, for each k, the
median ms per step (the best of `--repeats` rounds, each k timed in turn within a round), the ratio
to k = 1, and XLA's temporary buffer size of the compiled step (`memory_analysis`), and for the
deterministic arms the relative difference of the logged loss (the mean over microbatches) from
k = 1's.
Times are wall-clock on whatever machine runs this; compare ratios, not seconds.
"""

from __future__ import annotations

from absl import app, flags

from benchmarks import steps as steps_lib

_LAYERS = flags.DEFINE_integer("num_layers", 8, "Depth.")
_D = flags.DEFINE_integer("d_model", 128, "Width.")
_SEQ = flags.DEFINE_integer("seq_len", 32, "Sequence length.")
_BATCH = flags.DEFINE_integer("batch", 32, "Sequences per step.")
_MICRO = flags.DEFINE_list("microbatches", ["1", "2", "4", "8"], "Microbatch counts; 1 first.")
_ARMS = flags.DEFINE_list("arms", ["induction", "baseline", "S1", "S1 remat"], "Arms to run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Rounds; each times every k in turn.")
_STEPS = flags.DEFINE_integer("steps", 7, "Timed steps per k per round (median).")

ARMS = {"induction": ("induction", "transformer"), "baseline": ("ebt", "baseline"),
        "S1": ("ebt", "S1"), "S1 remat": ("ebt", "S1 remat")}


def main(argv):
  del argv
  import jax
  counts = [int(k) for k in _MICRO.value]
  if counts[0] != 1 or any(k < 1 or _BATCH.value % k for k in counts):
    raise app.UsageError(f"--microbatches={_MICRO.value}: must start with 1 and divide "
                         f"--batch={_BATCH.value}")
  unknown = sorted(set(_ARMS.value) - set(ARMS))
  if unknown:
    raise app.UsageError(f"--arms: unknown {unknown}; known: {sorted(ARMS)}")
  print(f"device: {jax.devices()[0].device_kind}; d_model {_D.value}, {_LAYERS.value} layers, "
        f"seq {_SEQ.value}, batch {_BATCH.value}, float32")
  print(f"{'arm':<10} {'k':>3} {'ms/step':>9} {'x (k=1)':>8} {'temp MB':>8} {'rel. d loss':>12}")
  for arm in _ARMS.value:
    family, name = ARMS[arm]
    runs = {}
    for k in counts:
      step, state, batch = steps_lib.training_step(family, name, _D.value, _LAYERS.value,
                                                 _SEQ.value, _BATCH.value, num_microbatches=k)
      compiled = step.lower(state, batch).compile()
      runs[k] = (compiled, state, batch, compiled.memory_analysis().temp_size_in_bytes / 1e6)
    rounds = {k: [] for k in counts}
    for _ in range(_REPEATS.value):
      for k, (compiled, state, batch, _) in runs.items():
        rounds[k].append(steps_lib.median_seconds(lambda: compiled(state, batch)[1]["loss"],
                                                  _STEPS.value))
    reference = float(runs[1][0](*runs[1][1:3])[1]["loss"])
    for k, (compiled, state, batch, temp_mb) in runs.items():
      seconds = min(rounds[k])
      if arm.startswith("S1"):  # stochastic: each microbatch draws its own initial candidates
        diff = "(random)"
      else:
        diff = f"{abs(float(compiled(state, batch)[1]['loss']) / reference - 1):.1e}"
      print(f"{arm:<10} {k:>3} {1e3 * seconds:9.1f} {seconds / min(rounds[1]):8.2f} "
            f"{temp_mb:8.1f} {diff:>12}", flush=True)
  print("x (k=1): time over the unsplit step's; below 1, splitting the batch is faster.")


if __name__ == "__main__":
  app.run(main)
