"""Populations: one compiled call trains a (learning rate x seed) grid, and each member equals the
single run built from the same key and learning rate."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab import core
from jaxlab import deep_linear as dl


def test_grid_over_learning_rates_and_seeds_matches_single_runs_and_traces_once():
  task = dl.make_task(jax.random.key(0), 6, 6, [2.0, 1.0])
  net = dl.DeepLinearConfig((6, 6, 6), 0.1)
  init_fn = lambda key: dl.init(key, net)
  traces = []

  def loss(params, batch, key):
    traces.append(1)  # runs at trace time only
    return dl.loss(params, batch, key)

  optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)
  keys = jax.random.split(jax.random.key(1), 4)
  rates = jnp.array([1e-2, 3e-2, 1e-1])
  eval_fn = lambda params, data: {"u": dl.mode_strengths(params, task.U, task.V, 2)}
  states, history = core.train_population(init_fn, loss, optimizer, keys, {"learning_rate": rates},
                                          (task.x, task.y), num_steps=60, log_every=20,
                                          eval_fn=eval_fn)
  assert len(traces) == 1
  chex.assert_shape(history["loss"], (3, 4, 3))
  chex.assert_shape(history["u"], (3, 4, 3, 2))
  np.testing.assert_array_equal(history["step"][1, 2], [20, 40, 60])

  step = core.make_train_step(dl.loss, optimizer)
  for h, s in [(0, 0), (2, 3), (1, 2)]:
    state = core.init_run(init_fn, optimizer, keys[s], {"learning_rate": rates[h]})
    single, single_history = core.scan_train(step, state, (task.x, task.y), num_steps=60,
                                             log_every=20, eval_fn=eval_fn)
    member = jax.tree.map(lambda a: a[h, s], states.params)
    chex.assert_trees_all_close(member, single.params, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(history["loss"][h, s], single_history["loss"], rtol=1e-10)
  # Larger learning rates learn faster: a grid that ignored the rates would fail this.
  assert np.all(np.diff(history["loss"][:, :, 0], axis=0) < 0)


def test_seed_population_without_hyperparameters_has_one_axis_of_runs():
  task = dl.make_task(jax.random.key(0), 4, 4, [1.0])
  net = dl.DeepLinearConfig((4, 4, 4), 0.1)
  _, history = core.train_population(lambda k: dl.init(k, net), dl.loss, optax.sgd(0.05),
                                     jax.random.split(jax.random.key(0), 5), None, (task.x, task.y),
                                     num_steps=10, log_every=5)
  assert history["loss"].shape == (5, 2)
  assert len(np.unique(np.asarray(history["loss"][:, 0]))) == 5  # seeds differ
