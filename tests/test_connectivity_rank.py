"""Liu et al. 2024: the initial tangent-kernel alignment of a two-layer linear net in closed form
(checked against the empirical NTK and Monte Carlo over tasks), low-rank initialisations, and the
experiment's separations (low rank richer, aligned rank 1 laziest, > 5 standard errors)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.connectivity_rank import config as config_lib
from experiments.connectivity_rank import experiment
from jaxlab import deep_linear as dl
from jaxlab import lazy_rich as lr
from jaxlab.lazy_rich import connectivity as conn
from theory.lazy_rich import liu as theory

D, H, N = 6, 5, 40


def _whitened(key):
  return jnp.sqrt(N) * jnp.linalg.qr(jax.random.normal(key, (N, D)))[0]


def _scalar(params, x):
  return dl.apply(params, x)[:, 0]


def test_initial_alignment_is_beta_a_beta_over_frobenius_norm_of_a():
  x = _whitened(jax.random.key(0))
  w1 = jax.random.normal(jax.random.key(1), (H, D))
  w2 = jax.random.normal(jax.random.key(2), (1, H))
  beta = jax.random.normal(jax.random.key(3), (D,))
  beta = beta / jnp.linalg.norm(beta)
  k0 = lr.empirical_ntk(_scalar, [w1, w2], x)
  a = w1.T @ w1 + jnp.sum(w2 ** 2) * jnp.eye(D)
  np.testing.assert_allclose(lr.kernel_target_alignment(k0, x @ beta),
                             beta @ a @ beta / jnp.linalg.norm(a), rtol=1e-12)


def test_expected_alignment_over_tasks_matches_monte_carlo_and_full_rank_is_highest():
  w2_sq = 0.05
  betas = jax.random.normal(jax.random.key(4), (20_000, D))
  betas = betas / jnp.linalg.norm(betas, axis=1, keepdims=True)
  for rank in (1, 3, 5):
    w1 = conn.low_rank_normal(jax.random.key(5), (H, D), rank, 1.0)
    a = w1.T @ w1 + w2_sq * jnp.eye(D)
    samples = jnp.einsum("bi,ij,bj->b", betas, a, betas) / jnp.linalg.norm(a)
    predicted = theory.expected_initial_alignment(jnp.linalg.svd(w1, compute_uv=False), w2_sq, D)
    se = float(jnp.std(samples) / jnp.sqrt(len(samples)))
    assert abs(float(jnp.mean(samples)) - float(predicted)) < 4 * se
  equal = theory.expected_initial_alignment(jnp.full(5, 1 / jnp.sqrt(5.0)), w2_sq, D)
  skewed = theory.expected_initial_alignment(jnp.array([0.9, 0.3, 0.2, 0.2, 0.1]) / jnp.linalg.norm(
      jnp.array([0.9, 0.3, 0.2, 0.2, 0.1])), w2_sq, D)
  rank_one = theory.expected_initial_alignment(jnp.array([1.0]), w2_sq, D)
  assert float(rank_one) < float(skewed) < float(equal)  # Theorem 1 at a fixed norm


def test_aligned_rank_one_alignment_is_exact():
  x = _whitened(jax.random.key(6))
  beta = jnp.array([1.0, -2.0, 0.5, 0.0, 1.0, 0.3])
  w1 = conn.aligned_rank_one(jax.random.key(7), H, beta, 0.4)
  w2 = 0.1 * jax.random.normal(jax.random.key(8), (1, H))
  k0 = lr.empirical_ntk(_scalar, [w1, w2], x)
  np.testing.assert_allclose(lr.kernel_target_alignment(k0, x @ beta),
                             theory.aligned_rank_one_alignment(0.4, jnp.sum(w2 ** 2), D), rtol=1e-12)


def test_low_rank_init_has_the_rank_and_norm_asked_for():
  w = conn.low_rank_normal(jax.random.key(0), (8, 6), 2, 3.0)
  s = np.linalg.svd(np.asarray(w), compute_uv=False)
  assert np.sum(s > 1e-10) == 2
  assert float(jnp.linalg.norm(w)) == pytest.approx(3.0)
  assert float(conn.effective_rank(jnp.diag(jnp.array([1.0, 1.0, 0.0])))) == pytest.approx(2.0)
  assert float(conn.participation_ratio(jnp.diag(jnp.array([1.0, 1.0, 1.0])))) == pytest.approx(3.0)
  assert float(conn.effective_rank(jnp.diag(jnp.array([2.0, 1.0, 1.0])))) < 3.0


def test_experiment_separates_ranks_by_more_than_five_standard_errors(tmp_path):
  config = config_lib.get_config("quick")
  config.rnn.seeds = 3
  config.rnn.num_steps = 100
  result = experiment.run(config, str(tmp_path))
  linear = [c for c in result["comparisons"] if not c.quantity.startswith("RNN")]
  failed = [c.as_dict() for c in linear if not c.passed]
  assert not failed, failed
  assert all(np.isfinite(v).all() for v in jax.tree.leaves(result["rnn"]))
  ka = {name: float(np.mean(v["kernel_alignment"])) for name, v in result["linear"][0.1].items()}
  assert ka["rank 1"] < ka["rank 5"] < ka["aligned rank 1"]  # ordering, beyond the 5-s.e. rows
  assert (tmp_path / "figures" / "connectivity_rank.png").exists()


@pytest.mark.slow
def test_full_variant_including_the_rnn_passes():
  import tempfile
  result = experiment.run(config_lib.get_config(), tempfile.mkdtemp())
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
