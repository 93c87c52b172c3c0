"""Deep linear networks reproduce Saxe et al. 2014 (float64): gradient descent against the closed form
(eq. 7), the depth-N ODE (eq. 15), the conservation of a^2 - b^2, and random-init half-times; each
comparison has a negative control that a wrong model must fail."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab import core
from jaxlab import deep_linear as dl
from theory import deep_linear as theory

S = (3.0, 2.0, 1.0, 0.5)
LR = 1e-3
TAU = 1.0 / LR


@pytest.fixture(scope="module")
def task():
  return dl.make_task(jax.random.key(0), 8, 8, S)


def _train(task, params, num_steps, log_every=200):
  optimizer = optax.sgd(LR)
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  eval_fn = lambda p, d: {"u": dl.mode_strengths(p, task.U, task.V, len(S)),
                          "modes": dl.mode_matrix(p, task.U, task.V)}
  final, history = jax.jit(lambda st: core.scan_train(
      core.make_train_step(dl.loss, optimizer), st, (task.x, task.y), num_steps=num_steps,
      log_every=log_every, eval_fn=eval_fn))(state)
  return final, {k: np.asarray(v) for k, v in history.items()}


def _balanced(task, n_layers, u0):
  scales = jnp.full((n_layers - 1, len(S)), u0 ** (1.0 / (n_layers - 1)))
  return dl.init_decoupled(task.U, task.V, scales, [8] * (n_layers - 2), key=jax.random.key(5))


def test_task_is_whitened_with_the_requested_correlation(task):
  np.testing.assert_allclose(task.x.T @ task.x, np.eye(8), atol=1e-12)
  sigma31 = task.y.T @ task.x
  np.testing.assert_allclose(np.linalg.svd(sigma31, compute_uv=False)[:4], S, rtol=1e-12)
  np.testing.assert_allclose(task.U.T @ sigma31 @ task.V, np.diag(S + (0,) * 4), atol=1e-12)


def test_loss_gradient_is_saxe_eq_2(task):
  params = dl.init(jax.random.key(3), dl.DeepLinearConfig((8, 8, 8), 0.2))
  w21, w32 = params
  sigma31, sigma11 = task.y.T @ task.x, task.x.T @ task.x
  g21, g32 = jax.grad(lambda p: dl.loss(p, (task.x, task.y))[0])(params)
  np.testing.assert_allclose(-g21, w32.T @ (sigma31 - w32 @ w21 @ sigma11), rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(-g32, (sigma31 - w32 @ w21 @ sigma11) @ w21.T, rtol=1e-12, atol=1e-14)


def test_decoupled_init_is_diagonal_in_the_svd_basis(task):
  params = _balanced(task, 4, 1e-2)
  np.testing.assert_allclose(dl.mode_matrix(params, task.U, task.V)[:4, :4], 1e-2 * np.eye(4),
                             atol=1e-14)


def test_two_layer_decoupled_dynamics_follow_the_closed_form_within_1_percent(task):
  u0 = 1e-3
  _, history = _train(task, _balanced(task, 3, u0), 24_000)
  steps, u = history["step"], history["u"]
  err = np.abs(u - theory.balanced_mode_strength(steps[:, None], np.array(S), u0, TAU)) / np.array(S)
  assert err.max() < 0.01, err.max()
  np.testing.assert_allclose(u[-1], S, rtol=1e-6)  # every mode learned
  # Modes stay decoupled: off-diagonal entries of U^T W V never grow.
  off = history["modes"] - history["modes"] * np.eye(8)[None]
  assert np.abs(off).max() < 1e-10
  # Negative control: a 10% wrong time constant must fail the same 1% comparison.
  wrong = np.abs(u - theory.balanced_mode_strength(steps[:, None], np.array(S), u0, 1.1 * TAU))
  assert (wrong / np.array(S)).max() > 0.05


@pytest.mark.parametrize("n_layers", [3, 4, 5])
def test_deep_decoupled_dynamics_follow_eq_15_within_1_percent(task, n_layers):
  u0 = 1e-2
  _, history = _train(task, _balanced(task, n_layers, u0), 40_000)
  _, u_ode = theory.deep_mode_strength(np.array(S), np.full(4, u0), TAU, n_layers,
                                       num_saves=len(history["step"]), save_every=200.0)
  err = np.abs(history["u"] - np.asarray(u_ode)) / np.array(S)
  assert err.max() < 0.01, err.max()
  # Negative control: the ODE of another depth is far off.
  _, u_other = theory.deep_mode_strength(np.array(S), np.full(4, u0), TAU, n_layers + 1,
                                         num_saves=len(history["step"]), save_every=200.0)
  assert (np.abs(history["u"] - np.asarray(u_other)) / np.array(S)).max() > 0.1


def _train_to_time(task, params, lr, time_in_tau):
  optimizer = optax.sgd(lr)
  num_steps = int(round(time_in_tau / lr))
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  final, _ = jax.jit(lambda st: core.scan_train(
      core.make_train_step(dl.loss, optimizer), st, (task.x, task.y), num_steps=num_steps,
      log_every=num_steps))(state)
  return final.params


def test_a2_minus_b2_is_conserved_by_the_flow_with_unbalanced_decoupled_init(task):
  """Gradient flow conserves a^2 - b^2 per mode. A GD step multiplies it by exactly 1 - (lr e)^2
  (e = s - ab), so the drift over a fixed time is O(lr): it must shrink ~4x when lr does."""
  a0, b0 = jnp.array([0.2, 0.1, 0.05, 0.02]), jnp.array([0.01, 0.03, 0.04, 0.2])
  params = dl.init_decoupled(task.U, task.V, jnp.stack([a0, b0]), [8])
  gap0 = a0 ** 2 - b0 ** 2
  drift = {}
  for lr in (1e-3, 2.5e-4):
    a, b = dl.two_layer_mode_vectors(_train_to_time(task, params, lr, 20.0), task.U, task.V, 4)
    gap = jnp.sum(a ** 2, -1) - jnp.sum(b ** 2, -1)
    drift[lr] = float(jnp.max(jnp.abs(gap - gap0) / jnp.abs(gap0)))
    assert float(jnp.max(jnp.abs(jnp.sum(a * b, -1) - jnp.array(S)))) < 1e-6  # it learned
    # Control: the individual scales are not conserved, b grew by orders of magnitude.
    assert float(jnp.min(jnp.sum(b ** 2, -1) - b0 ** 2)) > 0.1
  assert drift[2.5e-4] < 3e-3, drift
  assert 3.5 < drift[1e-3] / drift[2.5e-4] < 4.5, drift


def test_balancedness_matrix_is_conserved_by_the_flow_from_random_init(task):
  params = dl.init(jax.random.key(9), dl.DeepLinearConfig((8, 8, 8, 8), 0.3))
  drift = {}
  for lr in (1e-3, 2.5e-4):
    final = _train_to_time(task, params, lr, 10.0)
    drift[lr] = max(float(jnp.max(jnp.abs(after - before))) for before, after in zip(
        dl.balancedness(params), dl.balancedness(final)))
  scale = max(float(jnp.max(jnp.abs(m))) for m in dl.balancedness(params))
  assert scale > 0.1  # a non-trivial invariant
  assert drift[2.5e-4] < 1e-3 * scale, drift
  assert 3.5 < drift[1e-3] / drift[2.5e-4] < 4.5, drift


def test_random_init_half_times_are_ordered_and_the_two_strongest_match_theory(task):
  net = dl.DeepLinearConfig((8, 8, 8), 1e-3)
  init_fn = lambda key: dl.init(key, net)
  keys = jax.random.split(jax.random.key(11), 8)
  eval_fn = lambda p, d: {"u": dl.mode_strengths(p, task.U, task.V, 4)}
  _, history = core.train_population(init_fn, dl.loss, optax.sgd(LR), keys, None, (task.x, task.y),
                                     num_steps=20_000, log_every=25, eval_fn=eval_fn)
  sim = dl.crossing_times(np.asarray(history["step"][0]), np.asarray(history["u"]), np.array(S) / 2)
  assert np.all(np.diff(sim, axis=1) > 0)  # ordered by s_alpha in every seed
  params0 = jax.vmap(lambda k: init_fn(jax.random.split(k)[0]))(keys)
  a0, b0 = jax.vmap(lambda p: dl.two_layer_mode_vectors(p, task.U, task.V, 4))(params0)
  predicted = np.asarray(theory.half_time(jnp.array(S), theory.effective_initial_strength(a0, b0),
                                          TAU))
  rel = np.abs(sim - predicted) / predicted
  assert rel[:, :2].max() < 0.10, rel[:, :2].max()
  # Negative control: the same criterion with a 20% wrong time constant fails.
  wrong = predicted * 1.2
  assert (np.abs(sim - wrong) / wrong)[:, :2].max() > 0.10


def test_crossing_times_interpolates_and_reports_never():
  t = np.array([0.0, 1.0, 2.0])
  curves = np.array([[0.0, 0.0], [1.0, 0.1], [2.0, 0.2]])
  np.testing.assert_allclose(dl.crossing_times(t, curves, np.array([1.5, 5.0])), [1.5, np.nan])


def test_shape_mismatch_is_named(task):
  params = dl.init(jax.random.key(0), dl.DeepLinearConfig((5, 8, 8), 0.1))
  with pytest.raises(ValueError, match="do not fit a network mapping 5 inputs to 8 outputs"):
    dl.loss(params, (task.x, task.y))
  with pytest.raises(ValueError, match="at least two positive layer sizes"):
    dl.DeepLinearConfig((8,))
