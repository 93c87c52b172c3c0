"""Checkpoints with orbax (the v1 `training.Checkpointer` API): save at a fixed interval, resume the latest.

A restored state must match the template state leaf by leaf (shape and dtype); a workdir that holds a
checkpoint of a different model is reported with the offending leaves named, before orbax is asked to
load anything.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from orbax.checkpoint import v1 as ocp

PyTree = Any


class CheckpointMismatchError(ValueError):
  """The checkpoint in a workdir does not fit the state of the model being run."""


def _path_names(path) -> tuple[str, ...]:
  names = []
  for entry in path:
    for attr in ("name", "key", "idx"):
      if hasattr(entry, attr):
        names.append(str(getattr(entry, attr)))
        break
    else:
      names.append(str(entry))
  return tuple(names)


def _stored_shape_dtype(leaf) -> tuple[tuple[int, ...], np.dtype]:
  """Shape and dtype as orbax stores the leaf (typed PRNG keys are stored as their key data)."""
  if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
    leaf = jax.eval_shape(jax.random.key_data, leaf)
  return tuple(leaf.shape), np.dtype(leaf.dtype)


def _abstract(state: PyTree) -> PyTree:
  return jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=getattr(a, "sharding", None)), state)


class Checkpointer:
  """A thin wrapper over `ocp.training.Checkpointer` with the policies jaxlab runs use.

  Args:
    directory: where the step folders go.
    every: save every `every` steps (`save(..., force=True)` saves regardless).
    keep: how many of the latest checkpoints to keep.
  """

  def __init__(self, directory: str | os.PathLike, *, every: int, keep: int = 3):
    self.directory = os.path.abspath(os.fspath(directory))  # orbax refuses relative paths
    policies = ocp.training.save_decision_policies
    self._ckptr = ocp.training.Checkpointer(
        self.directory,
        save_decision_policy=policies.FixedIntervalPolicy(every),
        preservation_policy=ocp.training.preservation_policies.LatestN(keep),
    )

  def latest_step(self) -> int | None:
    latest = self._ckptr.latest
    return None if latest is None else int(latest.step)

  def save(self, step: int, state: PyTree, *, force: bool = False) -> bool:
    """Saves if the interval policy (or `force`) says so; returns whether it saved."""
    saved = self._ckptr.save(step, state, force=force)
    if saved:
      self._ckptr.wait()  # a SIGKILL must never leave the latest step half-written
    return saved

  def check_compatible(self, step: int, template: PyTree) -> None:
    """Raises `CheckpointMismatchError` naming each leaf whose shape or dtype differs."""
    stored = self._ckptr.metadata(step).metadata
    stored_leaves = {
        _path_names(p): (tuple(m.shape), np.dtype(m.dtype))
        for p, m in jax.tree_util.tree_flatten_with_path(stored)[0] if hasattr(m, "shape")
    }
    wanted = {_path_names(p): _stored_shape_dtype(leaf)
              for p, leaf in jax.tree_util.tree_flatten_with_path(template)[0]}
    problems = []
    for name in sorted(set(stored_leaves) | set(wanted)):
      have, want = stored_leaves.get(name), wanted.get(name)
      if have != want:
        problems.append(f"  {'.'.join(name)}: checkpoint has "
                        f"{_describe(have)}, this model needs {_describe(want)}")
    if problems:
      raise CheckpointMismatchError(
          f"the checkpoint at step {step} in {self.directory} was written by a different model "
          f"(use a fresh --workdir, or the config it was written with):\n" + "\n".join(problems))

  def restore_latest(self, template: PyTree) -> PyTree | None:
    """The latest checkpoint restored onto `template`'s structure and shardings, or None if none."""
    step = self.latest_step()
    if step is None:
      return None
    self.check_compatible(step, template)
    return self._ckptr.load(step, _abstract(template))

  def steps(self) -> list[int]:
    """The steps of the checkpoints kept, oldest first (e.g. the snapshots of a training run)."""
    return sorted(int(c.step) for c in self._ckptr.checkpoints)

  def restore(self, step: int, template: PyTree) -> PyTree:
    """The checkpoint of `step` restored onto `template`; raises naming the steps kept if absent."""
    kept = self.steps()
    if step not in kept:
      raise FileNotFoundError(f"no checkpoint at step {step} in {self.directory}; kept: {kept}")
    self.check_compatible(step, template)
    return self._ckptr.load(step, _abstract(template))

  def close(self) -> None:
    self._ckptr.close()


def _describe(shape_dtype) -> str:
  if shape_dtype is None:
    return "nothing"
  shape, dtype = shape_dtype
  return f"{dtype}{list(shape)}"
