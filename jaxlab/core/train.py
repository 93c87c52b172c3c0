"""The training engine: a pure step from any loss, and runs of it as chunked `lax.scan`s.

Every study hands the engine a loss `loss(params, batch, key) -> (scalar, aux_dict)` and an optax
optimizer. `make_train_step` turns them into a pure `step(state, batch) -> (state, metrics)`;
`scan_train` runs many steps of it inside one `lax.scan` (what populations vmap and what the run loop
jits per chunk); `train` is the resumable Python loop around it: progress line, JSON-lines metrics,
orbax checkpoints at a fixed interval, NaN detection, and restart from the latest checkpoint.

Randomness is explicit: the state carries one typed key, and step t uses `fold_in(key, t)`, split
into a loss stream and a data stream. A resumed run therefore draws the same numbers as an
uninterrupted one, and its final parameters are bitwise equal on CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core import checkpoint as checkpoint_lib
from jaxlab.core import metrics as metrics_lib
from jaxlab.core import parallel

PyTree = Any
LossFn = Callable[[PyTree, PyTree, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]
StepFn = Callable[["TrainState", PyTree], tuple["TrainState", dict[str, jax.Array]]]
BatchFn = Callable[[PyTree, jax.Array], PyTree]
EvalFn = Callable[[PyTree, PyTree], Mapping[str, jax.Array]]

_LOSS_STREAM, _DATA_STREAM = 0, 1


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["step", "params", "opt_state", "key", "extra"],
    meta_fields=[],
)
@dataclasses.dataclass(frozen=True)
class TrainState:
  """Everything a run needs to continue: step count, parameters, optimizer state and base key, and
  `extra`: state the loss carries from step to step beside the parameters (for example the EBT's
  replay buffer; None for most runs). It is checkpointed with the rest."""

  step: jax.Array
  params: PyTree
  opt_state: PyTree
  key: jax.Array
  extra: PyTree = None


class NonFiniteLossError(FloatingPointError):
  """Raised when the loss stops being finite; the last good checkpoint is kept."""


def init_train_state(params: PyTree, optimizer: optax.GradientTransformation,
                     key: jax.Array, extra: PyTree = None) -> TrainState:
  """A fresh state at step 0. `key` must be a typed key (`jax.random.key`)."""
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=optimizer.init(params), key=key, extra=extra)


def step_keys(state: TrainState) -> tuple[jax.Array, jax.Array]:
  """(loss_key, data_key) for the step the state is about to take."""
  step_key = jax.random.fold_in(state.key, state.step)
  return (jax.random.fold_in(step_key, _LOSS_STREAM), jax.random.fold_in(step_key, _DATA_STREAM))


def make_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, *,
                    carries_extra: bool = False, num_microbatches: int = 1,
                    microbatch_reduction: str = "mean") -> StepFn:
  """A pure training step: one gradient of `loss_fn` followed by one optax update.

  Returns `step(state, batch) -> (state, metrics)` with metrics `{"loss": ..., **aux}` evaluated at the
  parameters before the update. With `carries_extra`, the loss also reads and updates `state.extra`:
  `loss_fn(params, batch, key, extra) -> (loss, (aux, new_extra))` (new_extra is not differentiated).

  With `num_microbatches = k > 1` (gradient accumulation) the batch is split along its leading axis
  into k microbatches (strided: microbatch i holds examples i, i + k, ..., so a batch sharded along
  that axis splits without communication) and a `lax.scan` takes the gradient of each. Set
  `microbatch_reduction` to how the loss reduces over examples: "mean" (the update uses the mean of
  the microbatches' gradients and logs the mean loss) or "sum" (their sums, for a summed loss such
  as Saxe's). Either way this is the full batch's gradient up to float rounding, computed with 1/k
  of the activations live at once: a memory knob on accelerators; on a 2-core CPU it also made
  the second-order EBT step up to 2.3x faster, first-order steps not (benchmarks/README.md). Aux
  metrics are averaged over the microbatches. Microbatch i draws its randomness from
  `fold_in(loss_key, i)`.
  """
  if not isinstance(num_microbatches, int) or num_microbatches < 1:
    raise ValueError(f"num_microbatches={num_microbatches!r}: must be an integer >= 1")
  if num_microbatches > 1 and carries_extra:
    raise ValueError("num_microbatches > 1 with carries_extra: the carried state (a replay "
                     "buffer, say) would see every microbatch as a step of its own; not supported")
  if microbatch_reduction not in ("mean", "sum"):
    raise ValueError(f"microbatch_reduction={microbatch_reduction!r}: must be 'mean' or 'sum' "
                     "(how the loss reduces over examples)")
  if num_microbatches > 1:
    return _microbatched_step(loss_fn, optimizer, num_microbatches, microbatch_reduction)

  def step(state: TrainState, batch: PyTree) -> tuple[TrainState, dict[str, jax.Array]]:
    loss_key, _ = step_keys(state)
    if carries_extra:
      (loss, (aux, extra)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
          state.params, batch, loss_key, state.extra)
      extra = jax.lax.stop_gradient(extra)
    else:
      (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch, loss_key)
      extra = state.extra
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state, key=state.key,
                           extra=extra)
    return new_state, {"loss": loss, **aux}

  return step


def split_microbatches(batch: PyTree, num_microbatches: int) -> PyTree:
  """Every leaf [B, ...] -> [k, B / k, ...], microbatch i holding examples i, i + k, i + 2k, ..."""
  leaves = jax.tree.leaves(batch)
  if not leaves:
    raise ValueError("num_microbatches > 1 needs a batch to split; this step was given none "
                     "(a loss that draws its own data from the key cannot be split)")
  def split(path, x):
    if x.ndim == 0 or x.shape[0] % num_microbatches:
      raise ValueError(f"num_microbatches={num_microbatches} must divide the leading (batch) axis "
                       f"of every batch leaf; leaf {jax.tree_util.keystr(path) or 'batch'} has "
                       f"shape {x.shape}")
    x = x.reshape((x.shape[0] // num_microbatches, num_microbatches) + x.shape[1:])
    return jnp.swapaxes(x, 0, 1)
  return jax.tree_util.tree_map_with_path(split, batch)


def _microbatched_step(loss_fn: LossFn, optimizer: optax.GradientTransformation,
                       num_microbatches: int, reduction: str) -> StepFn:
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def step(state: TrainState, batch: PyTree) -> tuple[TrainState, dict[str, jax.Array]]:
    loss_key, _ = step_keys(state)
    microbatches = split_microbatches(batch, num_microbatches)

    def accumulate(total, index_and_microbatch):
      index, microbatch = index_and_microbatch
      (loss, aux), grads = grad_fn(state.params, microbatch, jax.random.fold_in(loss_key, index))
      return jax.tree.map(jnp.add, total, (grads, loss, aux)), None

    (loss_shape, aux_shape), grads_shape = jax.eval_shape(
        grad_fn, state.params, jax.tree.map(lambda x: x[0], microbatches), loss_key)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         (grads_shape, loss_shape, aux_shape))
    (grads, loss, aux), _ = jax.lax.scan(accumulate, zeros,
                                         (jnp.arange(num_microbatches), microbatches))
    mean = lambda tree: jax.tree.map(lambda x: x / num_microbatches, tree)
    if reduction == "mean":
      grads, loss = mean((grads, loss))
    metrics = {"loss": loss, **mean(aux)}
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state, key=state.key,
                      extra=state.extra), metrics

  return step


def _full_batch(data: PyTree, key: jax.Array) -> PyTree:
  del key
  return data


def scan_train(step_fn: StepFn, state: TrainState, data: PyTree = None, *, num_steps: int,
               log_every: int, batch_fn: BatchFn | None = None,
               eval_fn: EvalFn | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
  """Runs `num_steps` steps inside `lax.scan` and returns `(state, history)`.

  `data` is passed as an argument (never baked into the compiled program); each step's batch is
  `batch_fn(data, data_key)`, or `data` itself for full-batch training. `history` holds one row every
  `log_every` steps, each array with a leading axis of `num_steps // log_every`:
    step: the number of updates done at that row,
    <metric>: the step metrics averaged over the interval,
    <eval>: `eval_fn(params, data)` at the row,
    first_nonfinite: the first step in the interval whose loss was not finite, or -1.
  Pure and jittable (`num_steps`, `log_every` static): vmap it over seeds and hyperparameters.
  """
  if num_steps % log_every:
    raise ValueError(f"num_steps={num_steps} must be a multiple of log_every={log_every}")
  batch_fn = batch_fn or _full_batch

  def one_step(state, _):
    _, data_key = step_keys(state)
    taken_at = state.step
    state, metrics = step_fn(state, batch_fn(data, data_key))
    nonfinite = jnp.where(jnp.isfinite(metrics["loss"]), jnp.iinfo(jnp.int32).max, taken_at)
    return state, (metrics, nonfinite)

  def one_row(state, _):
    state, (metrics, nonfinite) = jax.lax.scan(one_step, state, length=log_every)
    row = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
    first = jnp.min(nonfinite)
    row["first_nonfinite"] = jnp.where(first == jnp.iinfo(jnp.int32).max, -1, first)
    row["step"] = state.step
    if eval_fn is not None:
      row.update(eval_fn(state.params, data))
    return state, row

  return jax.lax.scan(one_row, state, length=num_steps // log_every)


class TrainResult(NamedTuple):
  state: TrainState
  history: list[dict[str, float]]


def _rows(history: Mapping[str, jax.Array]) -> list[dict[str, Any]]:
  host = jax.device_get(dict(history))
  n = len(host["step"])
  rows = []
  for i in range(n):
    row = {}
    for name, values in host.items():
      value = np.asarray(values[i])
      row[name] = value.item() if value.ndim == 0 else value.tolist()
    rows.append(row)
  return rows


def train(step_fn: StepFn, state: TrainState, data: PyTree = None, *, num_steps: int,
          log_every: int = 100, steps_per_chunk: int | None = None,
          checkpoint_every: int | None = None, workdir: str | os.PathLike | None = None,
          run_name: str = "train", batch_fn: BatchFn | None = None,
          eval_fn: EvalFn | None = None, keep_checkpoints: int = 3,
          progress: metrics_lib.Progress | bool = True,
          in_shardings: tuple[Any, Any] | None = None,
          mesh: jax.sharding.Mesh | None = None, donate_state: bool = True) -> TrainResult:
  """Trains for `num_steps` steps in jitted chunks of `lax.scan`, resuming if `workdir` has a checkpoint.

  Args:
    step_fn: from `make_train_step`.
    state: the initial state; also the template (shapes, dtypes, shardings) a checkpoint must match.
    data: the data pytree handed to `batch_fn` (see `scan_train`).
    num_steps: total number of steps (> 0, a multiple of `log_every`).
    log_every: steps between metric rows.
    steps_per_chunk: steps per compiled call, a multiple of `log_every` that divides
      `checkpoint_every` (default: the largest such value up to max(1000, log_every)).
    checkpoint_every: steps between checkpoints (default: `num_steps`, i.e. only the final state).
    workdir: if given, metrics go to `workdir/metrics.jsonl` (rows tagged with `run_name`) and
      checkpoints to `workdir/checkpoints/run_name`; re-running with the same workdir resumes.
    progress: a `metrics.Progress`, True for the default one, False for silence.
    in_shardings: optional (state_sharding, data_sharding) for data-parallel runs (see `parallel`).
    mesh: data parallelism for sampled batches (`parallel.data_mesh()`): state and `data` are
      replicated on every device of the mesh (across hosts too) and each batch `batch_fn` draws is
      split over the devices (`parallel.shard_sampled_batches`). Excludes `in_shardings`, which is
      for batches each process feeds itself (`parallel.shard_batch`).
    donate_state: each chunk hands its input state's buffers to XLA for its output state (no
      second copy of parameters and optimizer state alive while a chunk runs). The caller's
      `state` is copied once first, so it stays valid.

  Returns:
    `TrainResult(state, history)`; with a workdir, history has every row of this run so far
    (including rows written before a resume) on process 0, and this call's rows on other processes.

  Raises:
    NonFiniteLossError: when the loss becomes NaN/inf; the message names the step and the last good
      checkpoint, which is left in place.
  """
  _check_positive(num_steps=num_steps, log_every=log_every)
  if num_steps % log_every:
    raise ValueError(f"num_steps={num_steps} must be a multiple of log_every={log_every}")
  checkpoint_every = checkpoint_every or num_steps
  _check_positive(checkpoint_every=checkpoint_every)
  if checkpoint_every % log_every:
    raise ValueError(f"checkpoint_every={checkpoint_every} must be a multiple of "
                     f"log_every={log_every}")
  if steps_per_chunk is None:
    steps_per_chunk = log_every * max(1, min(1000 // log_every, checkpoint_every // log_every))
    while checkpoint_every % steps_per_chunk and steps_per_chunk > log_every:
      steps_per_chunk -= log_every
  if steps_per_chunk % log_every or checkpoint_every % steps_per_chunk:
    raise ValueError(
        f"steps_per_chunk={steps_per_chunk} must be a multiple of log_every={log_every} and divide "
        f"checkpoint_every={checkpoint_every}")
  if progress is True:
    progress = metrics_lib.Progress()
  if jax.process_index() != 0:
    progress = False  # one progress line per job, not per host

  if mesh is not None:
    if in_shardings is not None:
      raise ValueError("pass either mesh (sampled batches split over it) or in_shardings, not both")
    state, data = parallel.replicate(mesh, state), parallel.replicate(mesh, data)
    in_shardings = (jax.tree.map(lambda _: parallel.replicated(mesh), state),
                    jax.tree.map(lambda _: parallel.replicated(mesh), data))
    batch_fn = parallel.shard_sampled_batches(mesh, batch_fn or _full_batch)
  if in_shardings is None and jax.process_count() > 1:
    # Several hosts and no data-parallel layout asked for: every host runs the same replicated
    # computation on global arrays (orbax cannot checkpoint host-local arrays across processes).
    mesh = parallel.data_mesh()
    state, data = parallel.replicate(mesh, state), parallel.replicate(mesh, data)
    in_shardings = (jax.tree.map(lambda _: parallel.replicated(mesh), state),
                    jax.tree.map(lambda _: parallel.replicated(mesh), data))
  donate = (0,) if donate_state else ()
  if in_shardings is None:
    run_chunk = _chunk_runner(step_fn, log_every, batch_fn, eval_fn, donate)
  else:
    run_chunk = jax.jit(functools.partial(_run_chunk, step_fn, log_every, batch_fn, eval_fn),
                        static_argnums=2, in_shardings=in_shardings,
                        out_shardings=(in_shardings[0], None), donate_argnums=donate)

  writer, ckpt = None, None
  if workdir is not None:
    writer = metrics_lib.MetricWriter(os.path.join(workdir, "metrics.jsonl"), tags={"run": run_name})
    ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints", run_name),
                                       every=checkpoint_every, keep=keep_checkpoints)
  caller_state = state  # (replicated on the mesh, if any: possibly the very same arrays)
  memory_rows: list[dict[str, Any]] = []
  try:
    if ckpt is not None:
      restored = ckpt.restore_latest(state)
      if restored is not None:
        state = restored
      # Rows past the restored step (or all rows, on a fresh start) were left by a run that died
      # before its next checkpoint: this run writes them again.
      writer.truncate_after(int(state.step))
    if donate_state and state is caller_state:
      state = jax.tree.map(lambda leaf: leaf.copy(), state)  # the caller's arrays stay valid
    start = int(state.step)
    if start > num_steps:
      raise ValueError(f"{workdir} holds a checkpoint at step {start}, beyond num_steps={num_steps}")
    if progress:
      progress.start(start, num_steps)
    while int(state.step) < num_steps:
      at = int(state.step)
      length = min(steps_per_chunk - at % steps_per_chunk, num_steps - at)
      new_state, history = run_chunk(state, data, length)
      rows = _rows(history)  # blocks: one chunk in flight at a time
      bad = [r["first_nonfinite"] for r in rows if r["first_nonfinite"] >= 0]
      good_rows = [r for r in rows if r["first_nonfinite"] < 0 and (not bad or r["step"] <= bad[0])]
      for r in rows:
        del r["first_nonfinite"]
      if writer is not None:
        writer.write_rows(good_rows)  # on a blow-up, the rows before it help the diagnosis
      memory_rows.extend(good_rows)
      if bad:
        where = (f"the last good checkpoint is step {ckpt.latest_step()} in {ckpt.directory}"
                 if ckpt is not None and ckpt.latest_step() is not None else "no checkpoint was kept")
        raise NonFiniteLossError(
            f"loss became non-finite at step {bad[0]} (run '{run_name}'); stopped. {where}.")
      state = new_state
      done = int(state.step)
      if ckpt is not None:
        ckpt.save(done, state, force=done == num_steps)
      if progress:
        progress.update(done, rows[-1])
    if progress:
      progress.finish(int(state.step))
  finally:
    if ckpt is not None:
      ckpt.close()
    if writer is not None:
      writer.close()
  history = (metrics_lib.read_metrics(os.path.join(workdir, "metrics.jsonl"), run=run_name)
             if workdir is not None and jax.process_index() == 0 else memory_rows)
  return TrainResult(state, history)


def _run_chunk(step_fn, log_every, batch_fn, eval_fn, state, data, length):
  return scan_train(step_fn, state, data, num_steps=length, log_every=log_every,
                    batch_fn=batch_fn, eval_fn=eval_fn)


@functools.lru_cache(maxsize=64)
def _chunk_runner(step_fn, log_every, batch_fn, eval_fn, donate_argnums):
  """One jitted chunk function per (step, logging, data, eval) so repeated `train` calls reuse it."""
  return jax.jit(functools.partial(_run_chunk, step_fn, log_every, batch_fn, eval_fn),
                 static_argnums=2, donate_argnums=donate_argnums)


def _check_positive(**values: int) -> None:
  for name, value in values.items():
    if not isinstance(value, (int, np.integer)) or value <= 0:
      raise ValueError(f"{name} must be a positive integer, got {value!r}")


def set_hyperparams(opt_state: PyTree, **values: Any) -> PyTree:
  """Returns `opt_state` of an `optax.inject_hyperparams` optimizer with hyperparameters replaced.

  The values may be traced (e.g. a vmapped learning rate); dtypes follow the existing entries.
  """
  if not hasattr(opt_state, "hyperparams"):
    raise ValueError("set_hyperparams needs the state of an optax.inject_hyperparams(...) optimizer")
  hyperparams = dict(opt_state.hyperparams)
  for name, value in values.items():
    if name not in hyperparams:
      raise ValueError(f"unknown hyperparameter {name!r}; the optimizer has {sorted(hyperparams)}")
    hyperparams[name] = jnp.asarray(value, dtype=jnp.asarray(hyperparams[name]).dtype)
  return opt_state._replace(hyperparams=hyperparams)


def wall_time(fn: Callable[[], Any]) -> tuple[Any, float]:
  """Runs `fn`, blocks on its result, and returns (result, seconds)."""
  begin = time.perf_counter()
  out = jax.block_until_ready(fn())
  return out, time.perf_counter() - begin
