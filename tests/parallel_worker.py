"""Subprocess side of `test_parallel.py`: deep-linear runs on simulated CPU devices.

Launched by the tests (never collected by pytest: the name does not start with `test_`). The device
count comes from `XLA_FLAGS=--xla_force_host_platform_device_count=N`, which the parent puts in this
process's environment before JAX is imported. Two modes:

  single-host --out R.npz
      Trains the reference run on one device (no shardings), then the same run data-parallel on
      meshes of 8 and 4 devices, and probes `shard_batch` with a batch that does not split.
  multihost --coordinator HOST:PORT --process-id I --num-processes P --workdir W --out R.npz
      Joins a P-process job, feeds `shard_batch` only this process's rows, trains with a shared
      workdir (metrics and orbax checkpoints), then resumes from that workdir for more steps.

Results (parameters, loss histories, facts about shardings) are written to one .npz per process;
the parent does all the asserting. Every `train` chunk is blocked on before the next is dispatched
(`train` fetches each chunk's metrics to the host), which avoids the async-dispatch rendezvous
deadlock of simulated devices on few cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxlab import deep_linear  # noqa: E402
from jaxlab.core import parallel  # noqa: E402
from jaxlab.core.train import TrainState, init_train_state, make_train_step, train  # noqa: E402

SEED = 0
N_IN = N_OUT = 8  # the task has N_IN examples (orthonormal inputs), one per row
WIDTHS = (N_IN, 8, N_OUT)
SINGULAR_VALUES = (3.0, 2.0, 1.0, 0.5)
INIT_SCALE = 0.1
LEARNING_RATE = 1e-2


@dataclasses.dataclass(frozen=True)
class Run:
  step_fn: object
  state: TrainState
  data: tuple[np.ndarray, np.ndarray]


def make_run() -> Run:
  """The deep-linear run every mode trains: same task, init and optimizer (on host memory)."""
  k_task, k_init, k_train = jax.random.split(jax.random.key(SEED), 3)
  task = deep_linear.make_task(k_task, N_IN, N_OUT, SINGULAR_VALUES)
  params = deep_linear.init(k_init, deep_linear.DeepLinearConfig(WIDTHS, INIT_SCALE))
  optimizer = optax.sgd(LEARNING_RATE)
  state = init_train_state(params, optimizer, k_train)
  return Run(make_train_step(deep_linear.loss, optimizer), state,
             (np.asarray(task.x), np.asarray(task.y)))


def train_reference(num_steps: int, log_every: int, start: TrainState | None = None):
  """The run on the default single device, no shardings: what data parallelism must reproduce."""
  run = make_run()
  return train(run.step_fn, start if start is not None else run.state, run.data,
               num_steps=num_steps, log_every=log_every, progress=False)


def train_data_parallel(mesh, run: Run, local_data, num_steps: int, log_every: int, **kwargs):
  state = parallel.replicate(mesh, run.state)
  data = parallel.shard_batch(mesh, local_data)
  shardings = parallel.data_parallel_shardings(mesh, state, data)
  result = train(run.step_fn, state, data, num_steps=num_steps, log_every=log_every,
                 progress=False, in_shardings=shardings, **kwargs)
  return result, data


def _params(prefix: str, state: TrainState) -> dict[str, np.ndarray]:
  return {f"{prefix}/w{i}": np.asarray(w) for i, w in enumerate(state.params)}


def _losses(prefix: str, history) -> dict[str, np.ndarray]:
  return {f"{prefix}/steps": np.array([r["step"] for r in history]),
          f"{prefix}/loss": np.array([r["loss"] for r in history])}


def _check_local_devices(expected: int) -> None:
  if jax.local_device_count() != expected:
    raise SystemExit(f"expected {expected} local devices from XLA_FLAGS, "
                     f"got {jax.local_device_count()}")


def single_host(args) -> dict[str, np.ndarray]:
  _check_local_devices(args.local_devices)
  out: dict[str, np.ndarray] = {"device_count": np.array(jax.device_count())}
  ref = train_reference(args.steps, args.log_every)
  out.update(_params("ref", ref.state))
  out.update(_losses("ref", ref.history))
  run = make_run()
  for n in args.meshes:
    mesh = parallel.data_mesh(n)
    # steps_per_chunk=log_every: one blocked compiled call per logged row.
    result, (x, _) = train_data_parallel(mesh, run, run.data, args.steps, args.log_every,
                                         steps_per_chunk=args.log_every)
    out.update(_params(f"dp{n}", result.state))
    out.update(_losses(f"dp{n}", result.history))
    out[f"dp{n}/x_devices"] = np.array(len(x.sharding.device_set))
    out[f"dp{n}/x_shard_rows"] = np.array([s.data.shape[0] for s in x.addressable_shards])
    out[f"dp{n}/x_shard_devices"] = np.array(len({s.device for s in x.addressable_shards}))
    out[f"dp{n}/params_replicated"] = np.array(
        all(w.sharding.is_fully_replicated and len(w.sharding.device_set) == n
            for w in result.state.params))
  # Gradient accumulation on a mesh: 2 strided microbatches of the 8 rows, each split over 4 devices.
  mesh = parallel.data_mesh(4)
  microbatched = dataclasses.replace(run, step_fn=make_train_step(
      deep_linear.loss, optax.sgd(LEARNING_RATE), num_microbatches=2,
      microbatch_reduction="sum"))  # Saxe's loss sums over examples
  result, _ = train_data_parallel(mesh, microbatched, run.data, args.steps, args.log_every,
                                  steps_per_chunk=args.log_every)
  out.update(_params("dp4_microbatched", result.state))
  out.update(_losses("dp4_microbatched", result.history))
  # A leading axis of 6 does not split over 8 local devices.
  try:
    parallel.shard_batch(parallel.data_mesh(8), (run.data[0][:6], run.data[1][:6]))
    out["shard_error"] = np.array("")
  except ValueError as e:
    out["shard_error"] = np.array(f"ValueError: {e}")
  return out


def multihost(args) -> dict[str, np.ndarray]:
  assert parallel.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
  _check_local_devices(args.local_devices)
  mesh = parallel.data_mesh()
  n_proc, i = jax.process_count(), jax.process_index()
  out = {"process_index": np.array(i), "process_count": np.array(n_proc),
         "device_count": np.array(jax.device_count()),
         "local_device_count": np.array(jax.local_device_count())}
  run = make_run()
  rows = N_IN // n_proc
  local = jax.tree.map(lambda a: a[i * rows:(i + 1) * rows], run.data)
  kwargs = dict(steps_per_chunk=args.log_every, checkpoint_every=args.checkpoint_every,
                workdir=args.workdir, run_name="multihost")
  first, (x, _) = train_data_parallel(mesh, run, local, args.steps, args.log_every, **kwargs)
  out.update(_params("first", first.state))
  out.update(_losses("first", first.history))
  out["x_global_shape"] = np.array(x.shape)
  out["x_devices"] = np.array(len(x.sharding.device_set))
  # Re-running with the same workdir and more steps restores the last checkpoint and continues.
  resumed, _ = train_data_parallel(mesh, run, local, args.resume_steps, args.log_every, **kwargs)
  out.update(_params("resumed", resumed.state))
  out.update(_losses("resumed", resumed.history))
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("mode", choices=["single-host", "multihost"])
  parser.add_argument("--out", required=True)
  parser.add_argument("--local-devices", type=int, required=True,
                      help="the device count the parent put in XLA_FLAGS (checked)")
  parser.add_argument("--steps", type=int, default=40)
  parser.add_argument("--log-every", type=int, default=5)
  parser.add_argument("--meshes", type=int, nargs="*", default=[8, 4])
  parser.add_argument("--coordinator")
  parser.add_argument("--process-id", type=int)
  parser.add_argument("--num-processes", type=int)
  parser.add_argument("--workdir")
  parser.add_argument("--checkpoint-every", type=int, default=20)
  parser.add_argument("--resume-steps", type=int, default=60)
  args = parser.parse_args()
  out = single_host(args) if args.mode == "single-host" else multihost(args)
  np.savez(args.out, **out)
  print(json.dumps({"ok": True, "out": args.out}))


if __name__ == "__main__":
  main()
