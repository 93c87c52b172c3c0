"""Kumar et al. 2024 grokking: the exact test-loss decomposition against Monte Carlo, the summary
statistics against the network, the linearization's statistics against jvp, and the lazy-to-rich
ordering of the experiment (test loss and delay rise with alpha, weight change falls)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.grokking import config as config_lib
from experiments.grokking import experiment
from jaxlab import lazy_rich as lr
from jaxlab.lazy_rich import grokking as grok
from theory.lazy_rich import kumar as theory

D, N, EPS = 12, 40, 0.25


@pytest.fixture(scope="module")
def setup():
  task = grok.make_task(jax.random.key(0), D, 50)
  w0 = grok.init(jax.random.key(1), N, D)
  w = w0 + 0.3 * jax.random.normal(jax.random.key(2), w0.shape)
  return task, w0, w


def test_network_is_a_function_of_its_summary_statistics(setup):
  task, w0, w = setup
  w_bar, m = grok.summary(w)
  x = task.x
  expected = 2.0 * (x @ w_bar) + 2.0 * EPS / 2 * jnp.einsum("bi,ij,bj->b", x, m, x)
  np.testing.assert_allclose(grok.apply(w, x, 2.0, EPS), expected, rtol=1e-12)


def test_linearized_statistics_match_the_jvp_linearization(setup):
  task, w0, w = setup
  alpha = 3.0
  f = lambda weights, x: grok.apply(weights, x, alpha, EPS) - grok.apply(w0, x, alpha, EPS)
  v, q = grok.linearized_statistics(w, w0)
  by_stats = alpha * task.x @ v + alpha * EPS / 2 * jnp.einsum("bi,ij,bj->b", task.x, q, task.x)
  np.testing.assert_allclose(lr.linearize(f, w0)(w, task.x), by_stats, rtol=1e-11, atol=1e-13)


def test_exact_test_loss_matches_monte_carlo_within_4_standard_errors(setup):
  task, w0, w = setup
  alpha = 2.0
  mc, se = experiment.monte_carlo_test_loss(jax.random.key(3), w, w0, task.beta_star, alpha, EPS,
                                            1_000_000)
  v, q = grok.centered_statistics(w, w0)
  exact = theory.test_loss(v, q, task.beta_star, alpha, EPS)
  assert abs(float(mc - exact)) < 4 * float(se), (float(mc), float(exact), float(se))
  # Negative control: dropping the factor 2 of E[(x^T A x)^2] = ((tr A)^2 + 2|A|_F^2) / D^2.
  variance, misalignment, linear = theory.test_loss_terms(v, q, task.beta_star, alpha, EPS)
  wrong = variance + misalignment / 2 + linear
  assert abs(float(mc - wrong)) > 10 * float(se)
  # At initialisation the centered network is 0 and the loss is E[y^2] = 3 |beta|^4 / (4 D^2).
  zero = theory.test_loss(jnp.zeros(D), jnp.zeros((D, D)), task.beta_star, alpha, EPS)
  np.testing.assert_allclose(zero, 0.75, rtol=1e-12)


def test_kernel_regression_limit_does_not_depend_on_alpha(setup):
  task, w0, _ = setup
  a = experiment.kernel_regression_loss(task, w0, 1.0, EPS)
  b = experiment.kernel_regression_loss(task, w0, 16.0, EPS)
  np.testing.assert_allclose(a, b, rtol=1e-8)
  assert 0 < float(a) < 0.75


def test_lazier_runs_grok_later_and_worse_and_move_less(tmp_path):
  config = config_lib.get_config("quick")
  config.alphas = (0.25, 1.0, 16.0)
  config.num_steps = 4000
  config.checkpoint_every = 2000
  config.monte_carlo_samples = 200_000
  result = experiment.run(config, str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  # Fig. 4's order: the linear-power term peaks before the misalignment term has fallen by half.
  r = result["runs"][1.0]
  peak = np.argmax(r["linear_power"])
  half = np.argmax(r["misalignment"] < 0.5 * r["misalignment"][0])
  assert peak < half
