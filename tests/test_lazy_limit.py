"""Chizat et al. 2019 lazy limit: the theory's kernel recursion against the spectral closed form, and
the network's gap to its tangent model and its weight change falling as 1/alpha."""

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.lazy_limit import config as config_lib
from experiments.lazy_limit import experiment
from jaxlab import lazy_rich as lr
from theory.lazy_rich import chizat as theory


def test_kernel_recursion_equals_the_spectral_closed_form():
  config = config_lib.get_config("quick")
  x, y, x_test, _, params0 = experiment.make_problem(config)
  k = lr.empirical_ntk(experiment.student, params0, x)
  k_test = lr.empirical_ntk(experiment.student, params0, x_test, x)
  step, steps = 0.02 / 20, 3000
  f, f_test, displacement = theory.lazy_limit(k, k_test, y, step=step, steps=steps, num_saves=3)
  zeros = jnp.zeros_like(y)
  f_spec, f_test_spec = lr.ntk_predict(k, k_test, y, zeros, jnp.zeros(len(x_test)),
                                       learning_rate=step, steps=steps)
  np.testing.assert_allclose(f[-1], f_spec, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(f_test[-1], f_test_spec, rtol=1e-10, atol=1e-12)
  assert np.all(np.diff(np.asarray(displacement)) > 0)


def test_log_log_slope_by_hand():
  assert float(theory.log_log_slope([1.0, 10.0, 100.0], [5.0, 0.5, 0.05])) == pytest.approx(-1.0)
  assert float(theory.log_log_slope([2.0, 4.0], [3.0, 12.0])) == pytest.approx(2.0)


def test_gap_and_weight_change_fall_as_one_over_alpha_and_the_rich_side_is_not_lazy(tmp_path):
  config = config_lib.get_config("quick")
  config.alphas = (0.0625, 4.0, 16.0, 64.0)
  config.num_steps = 2000
  config.log_every = 500
  config.checkpoint_every = 1000
  result = experiment.run(config, str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  slopes = {c.quantity: c.simulation for c in result["comparisons"] if "slope" in c.quantity}
  assert all(-1.15 <= s <= -0.85 for s in slopes.values()), slopes
  # Negative control: at alpha = 1/16 the weights move by O(1) and the lazy prediction is far off.
  rich = result["runs"][0.0625]
  assert rich["gap"][-1] > 0.1 and rich["weight_change"][-1] > 0.3
