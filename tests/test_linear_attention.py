"""Linear attention and GLA (Katharopoulos et al. 2020; Yang et al. 2024): the parallel, recurrent and
chunked forms are one function (float64, 1e-10), causal (a future token leaves the past unchanged),
and GLA with unit gates is linear attention; wrong gates and a non-causal mask are caught."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.attention_dynamics import linear_attention as la

T, DK, DV = 37, 5, 3
ATOL = 1e-10


def _inputs(seed=0, t=T):
  kq, kk, kv, kg = jax.random.split(jax.random.key(seed), 4)
  q = la.elu_feature_map(jax.random.normal(kq, (t, DK)))
  k = la.elu_feature_map(jax.random.normal(kk, (t, DK)))
  v = jax.random.normal(kv, (t, DV))
  # GLA's gate form log alpha = logsigmoid(.) / tau (Yang et al. sec. 4.4), with tau = 2 so the decay
  # matters over a few dozen steps; per step and per key channel.
  log_alpha = jax.nn.log_sigmoid(jax.random.normal(kg, (t, DK)) + 2.0) / 2.0
  return q, k, v, log_alpha


def _close(a, b, atol=ATOL):
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=atol)


def _max_diff(a, b):
  return float(jnp.max(jnp.abs(a - b)))


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 8, 37, 64])  # 8 does not divide 37; 64 > T
def test_linear_attention_three_forms_agree(normalize, chunk_size):
  q, k, v, _ = _inputs()
  par = la.linear_attention_parallel(q, k, v, normalize=normalize)
  rec = la.linear_attention_recurrent(q, k, v, normalize=normalize)
  chk = la.linear_attention_chunked(q, k, v, chunk_size=chunk_size, normalize=normalize)
  assert par.shape == (T, DV)
  _close(par, rec)
  _close(chk, rec)


def test_normalized_linear_attention_is_a_convex_average_of_values():
  q, k, v, _ = _inputs()
  o = la.linear_attention_parallel(q, k, v, normalize=True)
  # Row t with phi > 0 averages v_1..v_t: the first output is v_1 exactly, every output lies in range.
  _close(o[0], v[0], 1e-12)
  assert np.all(np.asarray(o) <= np.maximum.accumulate(np.asarray(v), axis=0) + 1e-12)
  assert np.all(np.asarray(o) >= np.minimum.accumulate(np.asarray(v), axis=0) - 1e-12)


def test_linear_attention_eps_enters_every_form_alike():
  q, k, v, _ = _inputs()
  rec = la.linear_attention_recurrent(q, k, v, eps=1e-6)
  _close(la.linear_attention_parallel(q, k, v, eps=1e-6), rec)
  _close(la.linear_attention_chunked(q, k, v, chunk_size=8, eps=1e-6), rec)


@pytest.mark.parametrize("chunk_size", [1, 5, 37, 64])
def test_gla_three_forms_agree(chunk_size):
  q, k, v, log_alpha = _inputs(1)
  par = la.gla_parallel(q, k, v, log_alpha)
  rec = la.gla_recurrent(q, k, v, log_alpha)
  chk = la.gla_chunked(q, k, v, log_alpha, chunk_size=chunk_size)
  _close(par, rec)
  _close(chk, rec)


def test_gla_long_sequence_with_strong_decay_is_stable():
  # Cumulative log gates reach about -1e3: the (Q*B)(K/B)^T form would overflow, log-space does not.
  q, k, v, _ = _inputs(2, t=300)
  log_alpha = jnp.full((300, DK), -3.0)
  rec = la.gla_recurrent(q, k, v, log_alpha)
  assert np.all(np.isfinite(np.asarray(la.gla_parallel(q, k, v, log_alpha))))
  _close(la.gla_parallel(q, k, v, log_alpha), rec)
  _close(la.gla_chunked(q, k, v, log_alpha, chunk_size=32), rec)


def test_gla_with_unit_gate_is_linear_attention_and_a_wrong_gate_is_not():
  q, k, v, log_alpha = _inputs(3)
  plain = la.linear_attention_recurrent(q, k, v, normalize=False)
  ones = jnp.zeros_like(log_alpha)
  for out in (la.gla_parallel(q, k, v, ones), la.gla_recurrent(q, k, v, ones),
              la.gla_chunked(q, k, v, ones, chunk_size=8)):
    _close(out, plain)
  # Negative controls: a real gate, or the right gate shifted by one step, changes the output.
  assert _max_diff(la.gla_recurrent(q, k, v, log_alpha), plain) > 1e-3
  rec = la.gla_recurrent(q, k, v, log_alpha)
  shifted = jnp.roll(log_alpha, 1, axis=0)
  assert _max_diff(la.gla_chunked(q, k, v, shifted, chunk_size=8), rec) > 1e-3
  assert _max_diff(la.gla_parallel(q, k, v, 0.5 * log_alpha), rec) > 1e-3


FORMS = {
    "la_parallel": lambda q, k, v, g: la.linear_attention_parallel(q, k, v),
    "la_recurrent": lambda q, k, v, g: la.linear_attention_recurrent(q, k, v),
    "la_chunked": lambda q, k, v, g: la.linear_attention_chunked(q, k, v, chunk_size=8),
    "gla_parallel": la.gla_parallel,
    "gla_recurrent": la.gla_recurrent,
    "gla_chunked": lambda q, k, v, g: la.gla_chunked(q, k, v, g, chunk_size=8),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("j", [1, 8, T - 1])  # 8 opens the second chunk
def test_causality_a_future_token_leaves_the_past_unchanged(form, j):
  q, k, v, log_alpha = _inputs(4)
  fn = FORMS[form]
  base = fn(q, k, v, log_alpha)
  key = jax.random.key(j)
  delta = jax.random.uniform(key, (DK,), minval=0.5, maxval=1.0)
  bump = lambda x, sign=1.0: x.at[j].add(sign * delta[:x.shape[1]])
  after = fn(bump(q), bump(k), bump(v), bump(log_alpha, -1.0))  # gates stay in (0, 1]
  assert float(jnp.max(jnp.abs(after[:j] - base[:j]))) <= 1e-12
  assert float(jnp.max(jnp.abs(after[j] - base[j]))) > 1e-3  # the perturbation is not a no-op


def test_negative_control_a_non_causal_mask_sees_the_future():
  q, k, v, _ = _inputs(5)
  full = (q @ k.T) @ v / jnp.sum(q @ k.T, axis=1, keepdims=True)
  causal = la.linear_attention_parallel(q, k, v)
  assert _max_diff(full[:-1], causal[:-1]) > 1e-2
  _close(full[-1], causal[-1])  # the last row sees everything either way


def test_float32_forms_agree_to_1e_5_relative():
  q, k, v, log_alpha = (x.astype(jnp.float32) for x in _inputs(6, t=256))
  rec = la.gla_recurrent(q, k, v, log_alpha)
  scale = float(jnp.max(jnp.abs(rec)))
  assert rec.dtype == jnp.float32
  for out in (la.gla_parallel(q, k, v, log_alpha), la.gla_chunked(q, k, v, log_alpha, chunk_size=64)):
    assert _max_diff(out, rec) <= 1e-5 * scale
  rec = la.linear_attention_recurrent(q, k, v)
  assert _max_diff(la.linear_attention_chunked(q, k, v, chunk_size=64), rec) <= 1e-5 * float(
      jnp.max(jnp.abs(rec)))


def test_forms_experiment_runs_and_every_row_passes(tmp_path):
  from experiments.linear_attention import config as config_lib
  from experiments.linear_attention import experiment
  config = config_lib.get_config("quick")
  config.lengths = (32, 100)
  config.chunk_size = 16
  config.timing_repeats = 1
  result = experiment.run(config, str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  assert (tmp_path / "figures" / "timings.png").exists()
