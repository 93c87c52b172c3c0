"""Local linear attention: closed-form weights equal a direct weighted ridge solve, reduce to softmax
as the ridge grows and to OLS with uniform weights, reproduce affine targets (softmax cannot), and
remove the boundary bias of the local-constant fit (Fan 1992 formulas)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.local_linear import config as config_lib
from experiments.local_linear import experiment
from jaxlab.attention_dynamics import local_linear as lla
from theory.attention import local_linear as theory


@pytest.fixture(scope="module")
def problem():
  keys = jax.random.normal(jax.random.key(0), (40, 3))
  values = jax.random.normal(jax.random.key(1), (40, 2))
  q = jax.random.normal(jax.random.key(2), (3,))
  return keys, values, q, lla.softmax_kernel_weights(q, keys)


@pytest.mark.parametrize("ridge", [0.0, 0.5, 10.0])
def test_closed_form_equals_direct_solve_and_weights_sum_to_one(problem, ridge):
  keys, values, q, w = problem
  s = lla.local_linear_weights(q, keys, w, ridge)
  np.testing.assert_allclose(s @ values, lla.weighted_ridge_intercept(q, keys, values, w, ridge),
                             atol=1e-12)
  np.testing.assert_allclose(jnp.sum(s), 1.0, atol=1e-12)
  # Negative control: forgetting the factor 2 on the ridge changes the answer when ridge > 0.
  if ridge:
    wrong = lla.local_linear_weights(q, keys, w, ridge / 2) @ values
    assert float(jnp.max(jnp.abs(wrong - s @ values))) > 1e-6


def test_limits_softmax_and_ols(problem):
  keys, values, q, w = problem
  np.testing.assert_allclose(lla.local_linear_weights(q, keys, w, 1e12), w / jnp.sum(w), atol=1e-9)
  np.testing.assert_allclose(lla.attention(q[None], keys, values, ridge=0.0, kind="softmax")[0],
                             (w / jnp.sum(w)) @ values, rtol=1e-12)
  ones = jnp.ones(len(keys))
  design = jnp.concatenate([jnp.ones((40, 1)), keys], axis=1)
  coef = jnp.linalg.lstsq(design, values)[0]
  np.testing.assert_allclose(lla.local_linear_weights(q, keys, ones, 0.0) @ values,
                             jnp.concatenate([jnp.ones(1), q]) @ coef, atol=1e-12)
  with pytest.raises(ValueError, match="kind must be"):
    lla.attention(q[None], keys, values, ridge=0.0, kind="linear")


def test_affine_targets_are_exact_for_local_linear_but_not_softmax(problem):
  keys, _, q, _ = problem
  a = jnp.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
  targets = keys @ a + 0.3
  exact = q @ a + 0.3
  np.testing.assert_allclose(lla.attention(q[None], keys, targets, ridge=0.0)[0], exact, atol=1e-11)
  assert float(jnp.max(jnp.abs(lla.attention(q[None], keys, targets, ridge=0.0, kind="softmax")[0]
                               - exact))) > 0.1


def test_boundary_bias_population_level():
  x = jnp.linspace(0.0, 1.0, 100_001)
  for h in (0.02, 0.05):
    nw = lla.kernel_regression(jnp.zeros(1), x, x, h, local_linear=False)[0]
    np.testing.assert_allclose(nw, theory.boundary_bias_constant(h), rtol=1e-3)
    assert abs(float(lla.kernel_regression(jnp.zeros(1), x, x, h, local_linear=True)[0])) < 1e-12
  np.testing.assert_allclose(theory.boundary_bias_constant(1e-3), 1e-3 * np.sqrt(2 / np.pi),
                             rtol=1e-9)


def test_experiment_quick_variant_passes(tmp_path):
  config = config_lib.get_config("quick")
  config.sample_repeats = 4
  result = experiment.run(config, str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
