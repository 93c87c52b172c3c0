"""Attention as Hebbian memory: retrieval error against (n -+ 1)/d_k, heads, capacity linear in d_k,
the coherence bound in every trial, exact recall with orthonormal keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.hebbian_memory import config as config_lib
from experiments.hebbian_memory import experiment
from jaxlab.attention_dynamics import hebbian
from theory.attention import hebbian as theory


@pytest.mark.parametrize("kind, n, d_k", [("unit", 16, 64), ("gaussian", 16, 64), ("unit", 4, 16)])
def test_retrieval_error_matches_the_closed_form_within_4_standard_errors(kind, n, d_k):
  mean, se = hebbian.monte_carlo_error(jax.random.key(n + d_k), n, d_k, 8, 2000, kind)
  formula = {"unit": theory.relative_error_unit_keys,
             "gaussian": theory.relative_error_gaussian_keys}[kind]
  assert abs(float(mean) - formula(n, d_k)) < 4 * float(se)
  # Negative control: the other key distribution's formula is off by 2/d_k, many standard errors.
  other = theory.relative_error_gaussian_keys if kind == "unit" else theory.relative_error_unit_keys
  assert abs(float(mean) - other(n, d_k)) > 8 * float(se)


def test_orthonormal_keys_recall_exactly_and_the_memory_is_linear_attention():
  keys = jnp.linalg.qr(jax.random.normal(jax.random.key(0), (32, 32)))[0][:10]
  values = jax.random.normal(jax.random.key(1), (10, 5))
  np.testing.assert_allclose(hebbian.retrieve(hebbian.store(keys, values), keys), values, atol=1e-12)
  query = jax.random.normal(jax.random.key(2), (3, 32))
  attention = (query @ keys.T) @ values  # unnormalised linear attention over the stored pairs
  np.testing.assert_allclose(hebbian.retrieve(hebbian.store(keys, values), query), attention,
                             rtol=1e-12)
  with pytest.raises(ValueError, match="10 keys but 9 values"):
    hebbian.store(keys, values[:9])


def test_heads_divide_the_error():
  one, se1 = hebbian.monte_carlo_error(jax.random.key(3), 16, 32, 8, 1000, heads=1)
  four, se4 = hebbian.monte_carlo_error(jax.random.key(4), 16, 32, 8, 1000, heads=4)
  assert abs(float(four) - theory.relative_error_heads(16, 32, 4)) < 4 * float(se4)
  assert float(one) / float(four) == pytest.approx(4.0, rel=0.1)


def test_coherence_bound_holds_and_is_loose():
  def ratio(k):
    k_keys, k_values = jax.random.split(k)
    crosstalk, mu, vmax = hebbian.crosstalk_and_coherence(hebbian.unit_keys(k_keys, 20, 16),
                                                          jax.random.normal(k_values, (20, 4)))
    return crosstalk / theory.coherence_bound(20, mu, vmax)
  ratios = jax.vmap(ratio)(jax.random.split(jax.random.key(5), 500))
  assert float(jnp.max(ratios)) <= 1.0 and float(jnp.max(ratios)) < 0.5


def _check_experiment(config, tmp_path):
  result = experiment.run(config, str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  assert (tmp_path / "figures" / "hebbian_memory.png").exists()


def test_experiment_small_run_passes_every_row(tmp_path):
  # Every stage of the experiment (both key kinds, heads, chains, capacity slope, worst case) on as
  # few distinct shapes as it allows: its cost is compiling each shape's ops.
  config = config_lib.get_config("quick")
  config.item_counts = (4, 16)
  config.key_dims = (64,)
  config.trials = 500
  config.heads = (1, 2)
  config.depths = (1, 2)
  config.capacity_key_dims = (16, 32)
  _check_experiment(config, tmp_path)


@pytest.mark.slow
def test_experiment_capacity_grows_linearly_in_key_dimension(tmp_path):
  config = config_lib.get_config("quick")
  config.item_counts = (4, 16)
  config.key_dims = (16, 64)
  config.trials = 500
  config.heads = (1, 2)
  config.capacity_key_dims = (16, 32, 64)
  _check_experiment(config, tmp_path)


@pytest.mark.optimized_compile  # running, not compiling, is its time: 29 -> 35 s unoptimized
def test_chained_retrieval_error_compounds_with_depth_as_derived():
  # one compiled call per depth, not op by op: the same draws and estimates (to round-off)
  chain_error = jax.jit(hebbian.monte_carlo_chain_error, static_argnums=(1, 2, 3, 4))
  for depth in (1, 3):
    mean, se = chain_error(jax.random.key(depth), 16, 64, depth, 20_000)
    assert abs(float(mean) - theory.relative_error_chain(16, 64, depth)) < 4 * float(se)
  # Negative control: the first-order law L (n-1)/d_k misses depth 3 by many standard errors.
  assert abs(float(mean) - 3 * 15 / 64) > 10 * float(se)
