"""Subprocess side of `test_parallel_ebt.py`: a tiny S2 energy-based transformer trained through the
study's own path (`experiments.ebt.experiment.make_trainer` / `train_one`) with
`config.data_parallel` on, on simulated CPU devices, alone or as one of several processes.

  --local-devices N [--coordinator HOST:PORT --process-id I --num-processes P] --workdir W --out R.npz

The device count comes from XLA_FLAGS, set by the parent before JAX starts. Writes the final
parameters (and facts about the mesh and the sampled batch's sharding) to one .npz per process;
the parent asserts. `train` blocks on every chunk (it fetches the chunk's metrics), which avoids
the rendezvous deadlock of simulated devices on few cores.
"""

from __future__ import annotations

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from experiments import common  # noqa: E402
from experiments.ebt import config as config_lib  # noqa: E402
from experiments.ebt import experiment  # noqa: E402
from jaxlab.core import parallel  # noqa: E402

VOCAB = 11
NUM_STEPS = 6


def tiny_config(data_parallel: bool):
  c = config_lib.get_config("quick")
  c.update(dict(x64=True, d_model=16, num_heads=2, num_layers=1, seq_len=8, batch_size=8,
                num_steps=NUM_STEPS, log_every=2, checkpoint_every=NUM_STEPS, warmup_steps=2,
                data_parallel=data_parallel))
  return c


def stream() -> np.ndarray:
  return np.random.default_rng(0).integers(0, VOCAB, 4_000).astype(np.int32)


def train(data_parallel: bool, workdir: str):
  """Final S2 parameters (a dict of arrays) after NUM_STEPS steps."""
  config = tiny_config(data_parallel)
  trainer = experiment.make_trainer(config, "s2", VOCAB, NUM_STEPS)
  params, _, _ = experiment.train_one(config, trainer, stream(), 0, NUM_STEPS, "s2_seed0",
                                      workdir)
  return trainer, params


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--out", required=True)
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--coordinator")
  ap.add_argument("--process-id", type=int)
  ap.add_argument("--num-processes", type=int)
  args = ap.parse_args()
  parallel.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
  trainer, params = train(True, args.workdir)
  mesh = common.data_parallel_mesh(tiny_config(True))
  sampled = jax.jit(parallel.shard_sampled_batches(mesh, trainer.batch_fn))(
      parallel.replicate(mesh, stream()), jax.random.key(0))
  flat = {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path):
          np.asarray(jax.device_get(leaf.addressable_data(0)))
          for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  indivisible = tiny_config(True)
  indivisible.batch_size = 7
  try:
    common.data_parallel_mesh(indivisible)
    batch_error = ""
  except ValueError as e:
    batch_error = f"ValueError: {e}"
  np.savez(args.out, batch_error=batch_error, process_index=jax.process_index(), process_count=jax.process_count(),
           device_count=jax.device_count(), mesh_size=mesh.devices.size,
           batch_shape=sampled.shape, batch_devices=len(sampled.sharding.device_set),
           batch_shard_rows=sampled.addressable_shards[0].data.shape[0],
           **{"params/" + k: v for k, v in flat.items()})


if __name__ == "__main__":
  main()
