"""Data parallelism over all local devices and across hosts, with `jax.jit` and named shardings.

The batch is split along a one-axis mesh ("data"); parameters and optimizer state are replicated; the
compiler inserts the gradient all-reduce. This replaces the design card's "pmapped" training: `pmap`
is in maintenance mode in JAX >= 0.8 and is itself implemented on `jit`/`shard_map`.

Multi-host: call `initialize_distributed(...)` (a no-op unless asked) before any other JAX call;
every process then passes its own slice of the batch to `shard_batch`, which assembles the global
array with `jax.make_array_from_process_local_data`. Only process 0 writes metrics (see `metrics`).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

PyTree = Any
DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> bool:
  """Joins a multi-process JAX job when a coordinator is given; returns whether it did.

  On TPU pods, Slurm and Open MPI, `jax.distributed.initialize()` finds its peers itself: pass
  `coordinator_address="auto"` there. Must run before any other JAX operation.
  """
  if not coordinator_address:
    return False
  if coordinator_address == "auto":
    jax.distributed.initialize()
  else:
    if num_processes is None or process_id is None:
      raise ValueError("a coordinator address needs num_processes and process_id as well")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
  return True


def data_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A one-axis mesh over the first `num_devices` global devices (default: all of them)."""
  n = jax.device_count() if num_devices is None else num_devices
  if not 0 < n <= jax.device_count():
    raise ValueError(f"asked for {n} devices, {jax.device_count()} are visible")
  return jax.make_mesh((n,), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:n])


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def _global_array(sharding: NamedSharding, local: Any, global_shape=None) -> jax.Array:
  if jax.dtypes.issubdtype(getattr(local, "dtype", np.float32), jax.dtypes.prng_key):
    impl = jax.random.key_impl(local)
    key_data = np.asarray(jax.random.key_data(local))
    if global_shape is not None:  # the key data's trailing axes come along unsplit
      global_shape = tuple(global_shape) + key_data.shape[local.ndim:]
    return jax.random.wrap_key_data(_global_array(sharding, key_data, global_shape), impl=impl)
  local = np.asarray(local)
  return jax.make_array_from_process_local_data(sharding, local, global_shape or local.shape)


def replicate(mesh: jax.sharding.Mesh, tree: PyTree) -> PyTree:
  """Places an identical-on-every-process pytree (params, optimizer state) on all mesh devices."""
  return jax.tree.map(lambda x: _global_array(replicated(mesh), x), tree)


def shard_batch(mesh: jax.sharding.Mesh, local_batch: PyTree) -> PyTree:
  """Assembles the global batch from each process's slice, split along the leading axis.

  Every process that owns devices of the mesh passes its own rows; every leaf's leading axis must
  divide evenly over this process's devices.
  """
  n_local = len(mesh.local_devices)
  if n_local == 0:
    raise ValueError(f"process {jax.process_index()} owns no device of this mesh and has no slice "
                     "of the batch to give")
  n_processes = len({d.process_index for d in mesh.devices.flat})

  def place(x):
    shape = tuple(np.shape(x))
    if not shape or shape[0] % n_local:
      raise ValueError(f"a batch leaf of shape {shape} cannot be split over {n_local} local "
                       f"devices: its leading axis must be a multiple of {n_local}")
    return _global_array(batch_sharded(mesh), x, (shape[0] * n_processes,) + shape[1:])

  return jax.tree.map(place, local_batch)


def shard_sampled_batches(mesh: jax.sharding.Mesh, batch_fn):
  """Wraps `batch_fn(data, key)` so that every batch it draws inside the compiled step is split
  along its leading axis over the mesh's data axis.

  For studies that sample batches from a dataset held whole on every device (a text corpus, a
  task's parameters): each device draws the same global batch indices (cheap) and computes the
  loss of its own rows only; the compiler inserts the gradient all-reduce. The result is the
  single-device run up to the summation order of the gradient.
  """
  sharding = batch_sharded(mesh)
  size = mesh.devices.size

  def sharded(data, key):
    batch = batch_fn(data, key)
    for leaf in jax.tree.leaves(batch):
      if leaf.ndim == 0 or leaf.shape[0] % size:
        raise ValueError(f"a sampled batch leaf of shape {leaf.shape} cannot be split over the "
                         f"{size} devices of the mesh: its leading axis (the batch size) must be a "
                         f"multiple of {size}")
    return jax.lax.with_sharding_constraint(batch, jax.tree.map(lambda _: sharding, batch))

  return sharded


def data_parallel_shardings(mesh: jax.sharding.Mesh, state: PyTree,
                            data: PyTree) -> tuple[PyTree, PyTree]:
  """(state_shardings, data_shardings) for `train(..., in_shardings=...)`."""
  return (jax.tree.map(lambda _: replicated(mesh), state),
          jax.tree.map(lambda _: batch_sharded(mesh), data))
