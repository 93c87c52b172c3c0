"""Populations: one compiled call trains a whole grid of runs, vmapped over seeds and hyperparameters.

Learning rates (and any other optimizer hyperparameter) are swept through `optax.inject_hyperparams`,
so they live in the optimizer state as arrays instead of being baked into the program: the grid costs
one trace and one compile. Structural hyperparameters (widths, depths) change shapes and are looped
over in Python by the caller.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import optax

from jaxlab.core.train import (BatchFn, EvalFn, LossFn, TrainState, init_train_state,
                               make_train_step, scan_train, set_hyperparams)

PyTree = Any


def init_run(init_fn: Callable[[jax.Array], PyTree], optimizer: optax.GradientTransformation,
             key: jax.Array, hyperparams: Mapping[str, Any] | None = None) -> TrainState:
  """The initial state of one run: params from `init_fn(init_key)`, the rest of `key` for training.

  A population member and a single run built from the same key start from the same state.
  """
  init_key, train_key = jax.random.split(key)
  state = init_train_state(init_fn(init_key), optimizer, train_key)
  if hyperparams:
    state = dataclasses.replace(state, opt_state=set_hyperparams(state.opt_state, **hyperparams))
  return state


def make_population(init_fn: Callable[[jax.Array], PyTree], loss_fn: LossFn,
                    optimizer: optax.GradientTransformation, *, num_steps: int, log_every: int,
                    batch_fn: BatchFn | None = None, eval_fn: EvalFn | None = None,
                    sweep_hyperparams: bool = False):
  """The jitted population function `(keys, hyperparams, data) -> (final_states, history)`.

  Build it once and call it many times (new seeds, new learning rates, new data of the same shapes)
  without recompiling. Arguments are as for `train_population`; with `sweep_hyperparams=False` pass
  `hyperparams=None`.
  """
  step_fn = make_train_step(loss_fn, optimizer)

  def one_run(key, hparams, data):
    state = init_run(init_fn, optimizer, key, hparams)
    return scan_train(step_fn, state, data, num_steps=num_steps, log_every=log_every,
                      batch_fn=batch_fn, eval_fn=eval_fn)

  over_seeds = jax.vmap(one_run, in_axes=(0, None, None))
  if not sweep_hyperparams:
    return jax.jit(lambda keys, hparams, data: over_seeds(keys, None, data))
  return jax.jit(jax.vmap(over_seeds, in_axes=(None, 0, None)))


def train_population(init_fn: Callable[[jax.Array], PyTree], loss_fn: LossFn,
                     optimizer: optax.GradientTransformation, keys: jax.Array,
                     hyperparams: Mapping[str, jax.Array] | None = None, data: PyTree = None, *,
                     num_steps: int, log_every: int, batch_fn: BatchFn | None = None,
                     eval_fn: EvalFn | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
  """Trains one run per (hyperparameter setting, seed) in a single jitted, doubly vmapped scan.

  Args:
    init_fn: `key -> params`.
    loss_fn, optimizer: as for `make_train_step`; with `hyperparams`, the optimizer must come from
      `optax.inject_hyperparams(...)`.
    keys: typed keys, shape [S] (one per seed).
    hyperparams: optional dict of arrays of equal length H (zipped, not crossed: build a product
      grid with `jnp.meshgrid` and ravel it).
    data, num_steps, log_every, batch_fn, eval_fn: as for `scan_train`; `data` is shared by all runs.

  Returns:
    (final_states, history): leaves with leading axes [H, S] (or [S] without hyperparams), history
    rows along the next axis. Compiles on every call: to reuse the program, see `make_population`.
  """
  if hyperparams:
    lengths = {name: len(v) for name, v in hyperparams.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f"hyperparameter arrays must have equal lengths, got {lengths}")
    hyperparams = dict(hyperparams)
  population = make_population(init_fn, loss_fn, optimizer, num_steps=num_steps,
                               log_every=log_every, batch_fn=batch_fn, eval_fn=eval_fn,
                               sweep_hyperparams=bool(hyperparams))
  return population(keys, hyperparams or None, data)
