"""von Oswald et al. 2023: the linear self-attention construction is K steps of GD (float64, 1e-10),
the one-step loss L(eta) and its optimum N/(N+d+1) match Monte Carlo, and a trained LSA layer learns
that step size and reaches the optimal one-step loss; wrong step sizes and layer counts are caught."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import common
from experiments.icl_gd import config as config_lib
from experiments.icl_gd import experiment
from jaxlab.attention_dynamics import icl_gd
from theory.attention import icl_gd as theory

D, N = 4, 7


def _tasks(seed=0, batch=16, n=N, d=D):
  return icl_gd.sample_tasks(jax.random.key(seed), batch, n, d)


def _lsa(params, tasks, w0=None):
  return jax.vmap(lambda x, y, xq: icl_gd.lsa_predict(params, x, y, xq, w0))(
      tasks["x"], tasks["y"], tasks["xq"])


def _gd(tasks, eta, steps, w0=None):
  return jax.vmap(lambda x, y, xq: icl_gd.gd_predict(x, y, xq, eta, steps, w0))(
      tasks["x"], tasks["y"], tasks["xq"])


@pytest.mark.parametrize("num_layers", [1, 2, 5])
@pytest.mark.parametrize("from_zero", [True, False])
def test_k_constructed_layers_are_k_gd_steps(num_layers, from_zero):
  tasks = _tasks(num_layers)
  w0 = None if from_zero else jax.random.normal(jax.random.key(9), (D,))
  eta = 0.4
  params = icl_gd.gd_construction(D, N, eta, num_layers, w0)
  lsa = _lsa(params, tasks, w0)
  np.testing.assert_allclose(lsa, _gd(tasks, eta, num_layers, w0), rtol=0, atol=1e-10)
  # Negative controls: one step fewer, and a 1% wrong step size, are visibly different.
  assert float(jnp.max(jnp.abs(lsa - _gd(tasks, eta, num_layers - 1, w0)))) > 1e-2
  assert float(jnp.max(jnp.abs(lsa - _gd(tasks, 1.01 * eta, num_layers, w0)))) > 1e-4


def test_context_tokens_become_residuals_and_inputs_are_untouched():
  tasks = _tasks(1, batch=1)
  x, y, xq = tasks["x"][0], tasks["y"][0], tasks["xq"][0]
  eta = 0.3
  e = icl_gd.lsa_apply(icl_gd.gd_construction(D, N, eta), icl_gd.make_tokens(x, y, xq))
  w1 = eta * (y @ x) / N
  np.testing.assert_allclose(e[:, :-1], jnp.concatenate([x, xq[None, :]]), rtol=0, atol=1e-12)
  np.testing.assert_allclose(e[:-1, -1], y - x @ w1, rtol=0, atol=1e-12)


def test_one_layer_equals_the_theory_predictor_and_its_preconditioner_is_eta():
  tasks = _tasks(2)
  eta = 0.55
  params = icl_gd.gd_construction(D, N, eta)
  theory_pred = jax.vmap(theory.gd_one_step_predict, in_axes=(0, 0, 0, None))(
      tasks["x"], tasks["y"], tasks["xq"][:, None, :], eta)[:, 0]
  np.testing.assert_allclose(_lsa(params, tasks), theory_pred, rtol=0, atol=1e-12)
  np.testing.assert_allclose(icl_gd.effective_preconditioner(params, N), eta * jnp.eye(D),
                             rtol=0, atol=1e-14)
  # Sum normalisation (P = eta I, not eta / N) is a different predictor: N times the step.
  wrong = dict(params, p=params["p"] * N)
  assert float(jnp.max(jnp.abs(_lsa(wrong, tasks) - theory_pred))) > 1e-1


def test_effective_preconditioner_is_the_y_odd_part_of_any_layer():
  params = icl_gd.init(jax.random.key(3), D, 1, scale=0.7)
  tasks = _tasks(3)
  flipped = dict(tasks, y=-tasks["y"])
  odd = 0.5 * (_lsa(params, tasks) - _lsa(params, flipped))
  gamma = icl_gd.effective_preconditioner(params, N)
  expected = jnp.einsum("bn,bnd,de,be->b", tasks["y"], tasks["x"], gamma, tasks["xq"]) / N
  np.testing.assert_allclose(odd, expected, rtol=1e-10, atol=1e-12)
  assert float(icl_gd.off_diagonal_ratio(params, N)) > 0.1  # a random layer is not GD-like


def test_closed_form_optimum_is_the_minimum_of_the_closed_form_loss():
  for n, d in [(10, 5), (20, 10), (3, 8)]:
    eta = theory.optimal_step_size(n, d)
    grad = jax.grad(lambda e: theory.one_step_loss(e, n, d))(jnp.asarray(eta))
    assert abs(float(grad)) < 1e-12
    assert float(theory.one_step_loss(eta, n, d)) == pytest.approx(theory.optimal_loss(n, d),
                                                                   rel=1e-12)
    assert float(theory.one_step_loss(0.0, n, d)) == pytest.approx(theory.zero_predictor_loss(d))


def test_one_step_loss_matches_monte_carlo_and_the_wrong_normalisation_fails():
  n, d, m = 10, 5, 50_000
  tasks = icl_gd.sample_tasks(jax.random.key(4), m, n, d)
  etas = jnp.array([0.3, theory.optimal_step_size(n, d), 1.0, 1.0 / (n + d + 1)])
  pred = jax.vmap(lambda eta: _gd(tasks, eta, 1))(etas)  # independent: autodiff GD, not theory
  sq = 0.5 * (pred - tasks["yq"][None, :]) ** 2
  mean, se = np.asarray(jnp.mean(sq, axis=1)), np.asarray(jnp.std(sq, axis=1)) / np.sqrt(m)
  closed = np.asarray(theory.one_step_loss(etas, n, d))
  assert np.all(np.abs(mean - closed) < 4 * se), (mean, closed, se)
  # Negative control: the sum-normalised optimum 1/(N+d+1) misread as a mean-loss step is far worse.
  assert mean[3] - mean[1] > 20 * se[3]
  assert np.argmin(mean) == 1


def _check_trained_run(config, workdir):
  result = experiment.run(config, workdir)
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  m = result["measured"]
  eta_star = theory.optimal_step_size(config.context_len, config.input_dim)
  assert abs(m["step_size"] - eta_star) / eta_star <= 0.03
  assert abs(m["lsa_loss"] - m["loss_star"]) / m["loss_star"] <= 0.03
  assert os.listdir(os.path.join(workdir, "checkpoints", "lsa"))
  assert os.path.exists(os.path.join(workdir, "figures", "icl_gd.png"))
  # Negative controls: the same rows against the sum-normalised optimum 1/(N+d+1), or against the
  # loss of the eta* +- 20% step, fail.
  n, d = config.context_len, config.input_dim
  assert not common.Comparison("", 1.0 / (n + d + 1), m["step_size"], 0.03).passed
  for wrong in (0.8 * eta_star, 1.2 * eta_star):
    assert not common.Comparison("", float(theory.one_step_loss(wrong, n, d)), m["lsa_loss"],
                                 0.03).passed


def test_small_trained_lsa_learns_the_optimal_step_size_and_loss(tmp_path):
  config = config_lib.get_config("quick")
  config.input_dim, config.context_len = 3, 6  # eta* = 0.6, L* = 0.6
  config.batch_size = 256
  config.num_steps = 600
  config.checkpoint_every = 300
  config.eval_tasks = 32768
  config.construction_layers = 2
  _check_trained_run(config, str(tmp_path))


@pytest.mark.slow
def test_quick_variant_trained_lsa_learns_the_optimal_step_size_and_loss(tmp_path):
  _check_trained_run(config_lib.get_config("quick"), str(tmp_path))
