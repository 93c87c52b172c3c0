"""HMMs of Torre et al. 2025: forward filtering and smoothing (normalised and log space) against
brute-force enumeration over all state paths, stability at T = 10^4 with 100 states, and 10^5
sampled sequences against the exact output statistics of theory/hmm.py, with negative controls."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.hmm_rnn import hmm as hmm_lib
from theory import hmm as theory

NAMES = ("two", "three", "four", "five", "fully", "cyclic")
NUM_SEQUENCES, LENGTH = 100_000, 30


def _np(h):
  return tuple(np.asarray(x) for x in h)


def _dirichlet_hmm(rng, m, k):
  """Random rows from numpy (independent of the library's own `random_hmm`)."""
  return hmm_lib.make(rng.dirichlet(np.ones(m)), rng.dirichlet(np.ones(m), m),
                      rng.dirichlet(np.ones(k), m))


# ---------------------------------------------------------------- inference vs enumeration

def _enumeration_cases():
  """(label, hmm, symbols [S, T]): random HMMs at every T <= 6, each family at T = 6.

  Random HMMs are [M, K] = [4, 3] like four/cyclic, so most cases share compiled shapes; M != K
  catches a transposed emission matrix."""
  rng = np.random.default_rng(0)
  for t in range(1, 7):
    h = _dirichlet_hmm(rng, 4, 3)
    yield f"random T={t}", h, rng.integers(0, 3, (3, t))
  for name in NAMES:
    yield f"{name} T=6", hmm_lib.by_name(name), rng.integers(0, 3, (2, 6))


@jax.jit
def _all_three(h, y):
  # one compilation per shape instead of three (compiling dominates this test's time)
  return hmm_lib.forward_filter(h, y), hmm_lib.log_forward_filter(h, y), hmm_lib.smoother(h, y)


def test_forward_and_smoother_match_enumeration_over_all_paths():
  other = _dirichlet_hmm(np.random.default_rng(1), 4, 3)
  for label, h, symbols in _enumeration_cases():
    for y in symbols:
      exact = theory.enumerate_loglik(*_np(h), y)
      posterior = theory.enumerate_posterior_marginals(*_np(h), y)
      scaled, logspace, smoothed = jax.tree.map(np.asarray, _all_three(h, y))
      assert abs(float(scaled.marginal_loglik) - exact) < 1e-10, label
      assert abs(float(logspace.marginal_loglik) - exact) < 1e-10, label
      np.testing.assert_allclose(logspace.filtered_probs, scaled.filtered_probs, atol=1e-12)
      np.testing.assert_allclose(logspace.predicted_probs, scaled.predicted_probs, atol=1e-12)
      np.testing.assert_allclose(scaled.predicted_probs[0], h.initial, atol=1e-15)
      for probs in (scaled.filtered_probs, smoothed.smoothed_probs):
        np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, atol=1e-12)
      np.testing.assert_allclose(smoothed.smoothed_probs, posterior, atol=1e-10, err_msg=label)
      # the last filtered marginal conditions on everything, so it is a posterior marginal too
      np.testing.assert_allclose(scaled.filtered_probs[-1], posterior[-1], atol=1e-10)
      if label.startswith("random") and len(y) >= 2:
        # negative controls: another HMM's likelihood, and filtering in place of smoothing
        assert abs(theory.enumerate_loglik(*_np(other), y) - exact) > 1e-3
        assert np.max(np.abs(scaled.filtered_probs[0] - posterior[0])) > 1e-3
  # vmapped over sequences == one at a time
  batched = jax.vmap(hmm_lib.forward_filter, in_axes=(None, 0))(h, jnp.asarray(symbols))
  single = [float(_all_three(h, y)[0].marginal_loglik) for y in symbols]
  np.testing.assert_allclose(batched.marginal_loglik, single, rtol=1e-14)


def test_impossible_observation_gives_minus_inf_not_nan():
  # the state never changes and emits its own index, so [0, 1, 0] has probability 0
  h = hmm_lib.make([1.0, 0.0], np.eye(2), np.eye(2))
  y = jnp.array([0, 1, 0])
  assert theory.enumerate_loglik(*_np(h), y) == -np.inf
  scaled, logspace, smoothed = jax.tree.map(np.asarray, _all_three(h, y))
  for out in (scaled, logspace, smoothed):
    assert float(out.marginal_loglik) == -np.inf
    assert not np.any(np.isnan(out.filtered_probs))
  assert not np.any(np.isnan(smoothed.smoothed_probs))
  # control: the possible sequence [0, 0, 0] has probability one
  assert float(_all_three(h, jnp.array([0, 0, 0]))[0].marginal_loglik) == 0.0


def test_stable_at_ten_thousand_steps_and_a_hundred_states():
  h = hmm_lib.validate(hmm_lib.random_hmm(jax.random.key(0), 100, 10))
  _, symbols = hmm_lib.sample(jax.random.key(1), h, 1, 10_000)
  y = symbols[0]
  scaled, logspace, smoothed = jax.tree.map(np.asarray, _all_three(h, y))
  ll = float(scaled.marginal_loglik)
  # -22983.7 here: the entropy rate is at most log K per step (-23025.9 for T = 10^4, K = 10), and
  # Dirichlet(1) emissions over 100 well-mixed states leave it close to that
  assert np.isfinite(ll) and -10_000 * np.log(10) - 500 < ll < 0
  assert abs(float(logspace.marginal_loglik) - ll) < 1e-8 * abs(ll)
  for probs in (scaled.filtered_probs, logspace.filtered_probs, smoothed.smoothed_probs):
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, atol=1e-10)
  np.testing.assert_allclose(logspace.filtered_probs, scaled.filtered_probs, atol=1e-8)
  np.testing.assert_allclose(smoothed.smoothed_probs[-1], scaled.filtered_probs[-1], atol=1e-12)

  # negative control: the unscaled recursion alpha_{t+1} = (alpha_t A) * E[:, y] underflows to 0
  # (at step 305 here: float64 ends near e^-745)
  def unscaled(alpha, y_t):
    alpha = (alpha @ h.transition) * h.emission[:, y_t]
    return alpha, None
  alpha, _ = jax.lax.scan(unscaled, h.initial * h.emission[:, y[0]], y[1:])
  assert float(jnp.log(alpha.sum())) == -np.inf


# ---------------------------------------------------------------- sampling vs exact statistics

@functools.lru_cache(maxsize=None)
def _samples(name, start=None):
  h = hmm_lib.by_name(name)
  if start is not None:
    h = hmm_lib.make(np.eye(h.num_states)[start], h.transition, h.emission)
  states, symbols = hmm_lib.sample(jax.random.key(NAMES.index(name)), h, NUM_SEQUENCES, LENGTH)
  return h, np.asarray(states), np.asarray(symbols)


def _z(estimate, exact, se):
  diff = np.asarray(estimate) - np.asarray(exact)
  with np.errstate(divide="ignore", invalid="ignore"):
    return np.where(diff == 0, 0.0, np.abs(diff) / se)


def _z_scores(y, num_symbols, start, transition, emission):
  """|estimate - exact| / standard error for the output marginal (time-averaged), bigram matrix,
  repeat probabilities, and the mean and variance of the changes per sequence. Sequences are iid,
  so per-sequence statistics give honest standard errors (sd / sqrt(N)); the repeat probability is
  a ratio of sums over sequences, with the delta-method standard error."""
  n, t = y.shape
  onehot = np.eye(num_symbols)[y]  # [N, T, K]
  freq_NxK = onehot.mean(axis=1)
  count_NxKxK = np.einsum("nta,ntb->nab", onehot[:, :-1], onehot[:, 1:])
  changes_N = np.count_nonzero(np.diff(y, axis=1), axis=1)
  p_TxM = theory.state_marginals(start, transition, t)
  exact_marginal = theory.output_marginal(p_TxM, emission).mean(axis=0)
  exact_bigram = np.mean([theory.bigram(p, transition, emission) for p in p_TxM[:-1]], axis=0)
  # sum_n repeats / sum_n visits -> sum_t B_t,aa / sum_t P(y_t = a) over t < T - 1
  exact_repeat = np.diag(exact_bigram) / exact_bigram.sum(axis=1)
  repeats_NxK = np.einsum("naa->na", count_NxKxK)
  visits_NxK = onehot[:, :-1].sum(axis=1)
  ratio = repeats_NxK.sum(0) / visits_NxK.sum(0)
  se = lambda x: x.std(axis=0, ddof=1) / np.sqrt(n)
  z = {"marginal": _z(freq_NxK.mean(0), exact_marginal, se(freq_NxK)),
       "bigram": _z(count_NxKxK.mean(0) / (t - 1), exact_bigram, se(count_NxKxK / (t - 1))),
       "repeat": _z(ratio, exact_repeat,
                    se(repeats_NxK - ratio[None, :] * visits_NxK) / visits_NxK.mean(0)),
       "changes": _z(changes_N.mean(), theory.expected_changes(start, transition, emission, t),
                     se(changes_N))}
  # the variance of the changes from their exact law; Var(sample variance) ~ (mu_4 - s^4) / N
  pmf = theory.changes_distribution(start, transition, emission, t)
  k = np.arange(t)
  centred = changes_N - changes_N.mean()
  z["changes_var"] = _z(centred.var(ddof=1), pmf @ k ** 2 - (pmf @ k) ** 2,
                        np.sqrt((np.mean(centred ** 4) - centred.var() ** 2) / n))
  return {k: np.atleast_1d(v) for k, v in z.items()}


@pytest.mark.parametrize("name, wrong", [("three", "four"), ("fully", "three"),
                                         ("cyclic", "fully")])
def test_samples_match_exact_statistics(name, wrong):
  h, _, y = _samples(name)
  a, e = np.asarray(h.transition), np.asarray(h.emission)
  z = _z_scores(y, h.num_symbols, np.asarray(h.initial), a, e)
  # 17 statistics at 3 standard errors: a correct sampler fails one with probability < 5% for a
  # fresh key (fewer: they are correlated); the key here is fixed
  assert all(np.all(v < 3) for v in z.values()), z
  # negative control: the exact statistics of a different family
  h_w = hmm_lib.by_name(wrong)
  z_w = _z_scores(y, h.num_symbols, np.asarray(h_w.initial), *_np(h_w)[1:])
  assert max(np.max(v) for v in z_w.values()) > 10, z_w
  if (name, wrong) == ("three", "four"):
    # same output marginal [.495, .01, .495]: only the temporal statistics tell them apart
    assert np.all(z_w["marginal"] < 3) and z_w["repeat"][0] > 10 and z_w["changes"][0] > 10


def test_samples_from_a_non_stationary_start():
  h, _, y = _samples("three", start=0)
  a, e = _np(h)[1:]
  z = _z_scores(y, h.num_symbols, np.asarray(h.initial), a, e)
  assert all(np.all(v < 3) for v in z.values()), z
  # negative control: the stationary start's prediction (7.430 vs 7.241 changes per sequence)
  z_stationary = _z_scores(y, h.num_symbols, theory.stationary_distribution(a), a, e)
  assert z_stationary["changes"][0] > 10 and np.max(z_stationary["marginal"]) > 10


def test_dwell_times_and_output_runs_match_exact_distributions():
  h, states, y = _samples("three")
  p0, a, e = _np(h)
  d_max = 6
  # runs that start at t = 1 (stationary start): given that, 1[run >= d] is Bernoulli per sequence
  for sequence, which, exact, naive in (
      (states, 0, np.diag(a)[0] ** np.arange(d_max), None),
      (y, 0, theory.output_run_survival(a, e, 0, d_max),
       theory.repeat_probabilities(p0, a, e)[0] ** np.arange(d_max))):
    starts = (sequence[:, 0] != which) & (sequence[:, 1] == which)
    inside = np.cumprod(sequence[starts, 1:d_max + 1] == which, axis=1)  # [n, d]: run >= d
    estimate = inside.mean(axis=0)
    se = np.sqrt(estimate * (1 - estimate) / starts.sum())
    assert np.all(_z(estimate, exact, se) < 3), (estimate, exact)
    if naive is not None:
      # negative control: output runs are not geometric with the repeat probability
      assert _z(estimate[1], naive[1], se[1]) > 10, (estimate, naive)
  q = 0.05 ** 0.5  # an end state of "three" leaves with q: P(dwell = d) = q (1 - q)^(d-1)
  np.testing.assert_allclose(theory.hidden_dwell_pmf(a, 3)[0], q * (1 - q) ** np.arange(3),
                             atol=1e-15)


def test_sampler_respects_zeros_keys_and_shapes():
  h, states, y = _samples("cyclic")
  assert states.shape == y.shape == (NUM_SEQUENCES, LENGTH) and y.dtype == np.int32
  # the ring never jumps two states, and states 0/1 never emit symbol 2, states 2/3 never symbol 0
  assert np.all(np.abs(np.diff(states, axis=1)) % 4 != 2)
  assert not np.any((states < 2) & (y == 2)) and not np.any((states >= 2) & (y == 0))
  small = [hmm_lib.sample(jax.random.key(k), h, 4, 8) for k in (7, 7, 8)]
  np.testing.assert_array_equal(small[0][1], small[1][1])
  assert np.any(np.asarray(small[0][1]) != np.asarray(small[2][1]))
  x = hmm_lib.one_hot(small[0][1], h.num_symbols)
  assert x.shape == (4, 8, 3)
  np.testing.assert_array_equal(jnp.argmax(x, axis=-1), small[0][1])


# ---------------------------------------------------------------- families and exact numbers

# From the closed forms (theory/hmm.py docstring); exact decimals where the arithmetic is short:
# two: P(0|0) = .99 * .95; fully: .98 (.925 * .98 + .025) + 2 * .01 (.925 * .01 + .025);
# cyclic: .9 (.95 * .9 + .025 * .1) + .1 (.95 * .1 + .025 * .9) and 2 (.1 * .14 + .9 * .86) / 2.
TABLE = {  # name: (output marginal, repeat probabilities, changes (mean, s.d.) at T = 30 and 100)
    "two": ([.495, .01, .495], [.9405, .01, .9405], (1.995, 1.529), (6.812, 2.833)),
    "three": ([.495, .01, .495], [.7512, .01, .7512], (7.430, 2.913), (25.364, 5.417)),
    "four": ([.495, .01, .495], [.7092, .01, .7092], (8.636, 2.981), (29.480, 5.535)),
    "five": ([.495, .01, .495], [.6957, .01, .6957], (9.024, 3.066), (30.806, 5.696)),
    "fully": ([1 / 3] * 3, [.913555] * 3, (2.507, 1.782), (8.558, 3.303)),
    "cyclic": ([.25, .5, .25], [.7835, .788, .7835], (6.213, 2.751), (21.211, 5.106)),
}
PAPER_CHANGES = {"two": 6.812, "three": 7.430, "four": 8.636, "five": 12.136, "fully": 2.507,
                 "cyclic": 8.356}


@pytest.mark.parametrize("name", NAMES)
def test_family_exact_statistics(name):
  h = hmm_lib.by_name(name)
  p0, a, e = _np(h)
  m = h.num_states
  # the uniform start is the stationary distribution (every A is symmetric)
  np.testing.assert_allclose(theory.stationary_distribution(a), np.full(m, 1 / m), atol=1e-12)
  np.testing.assert_allclose(p0, np.full(m, 1 / m), atol=1e-15)
  marginal, repeat, changes30, changes100 = TABLE[name]
  exact_decimals = name in ("two", "fully", "cyclic")
  np.testing.assert_allclose(theory.output_marginal(p0, e), marginal, atol=1e-12)
  np.testing.assert_allclose(theory.repeat_probabilities(p0, a, e), repeat,
                             atol=1e-12 if exact_decimals else 5e-5)
  b = theory.bigram(p0, a, e)
  np.testing.assert_allclose(b.sum(axis=0), marginal, atol=1e-12)
  np.testing.assert_allclose(b.sum(axis=1), marginal, atol=1e-12)
  for t, (mean, sd) in ((30, changes30), (100, changes100),
                        (hmm_lib.PAPER_LENGTHS[name], (PAPER_CHANGES[name], None))):
    expected = theory.expected_changes(p0, a, e, t)
    assert abs(expected - mean) < 5e-4
    assert abs(expected - (t - 1) * (1 - np.trace(b))) < 1e-10
    pmf = theory.changes_distribution(p0, a, e, t)
    k = np.arange(t)
    assert abs(pmf.sum() - 1) < 1e-12 and abs(pmf @ k - expected) < 1e-10
    assert sd is None or abs(np.sqrt(pmf @ k ** 2 - expected ** 2) - sd) < 5e-4
  if name in ("two", "three", "four", "five"):
    q = 0.05 ** (1 / (m - 1))
    np.testing.assert_allclose(np.diag(a)[[0, -1]], 1 - q, atol=1e-15)
    np.testing.assert_allclose(np.diag(a)[1:-1], 1 - 2 * q, atol=1e-15)
    # the only path across the chain in M - 1 steps has probability q^(M-1) = 0.05
    assert abs(np.linalg.matrix_power(a, m - 1)[0, -1] - 0.05) < 1e-12
    np.testing.assert_allclose(e[:, 1], 0.01, atol=1e-15)
    np.testing.assert_allclose(e[:, 2], 0.99 * np.arange(m) / (m - 1), atol=1e-15)


def test_noise_free_rescaled_and_deterministic_variants_of_a_chain():
  two = hmm_lib.by_name("two")
  clean = hmm_lib.without_rare_symbols(two)
  np.testing.assert_allclose(clean.emission, [[1, 0, 0], [0, 0, 1]], atol=1e-12)
  np.testing.assert_array_equal(clean.transition, two.transition)
  stationary = theory.stationary_distribution(np.asarray(clean.transition))
  # without its 1% noise symbol the chain repeats a symbol exactly when it stays: 0.95
  np.testing.assert_allclose(theory.repeat_probabilities(
      stationary, np.asarray(clean.transition), np.asarray(clean.emission))[[0, 2]], 0.95)
  faster = hmm_lib.scale_switching(two, 1.2)
  np.testing.assert_allclose(faster.transition, [[0.94, 0.06], [0.06, 0.94]], atol=1e-12)
  np.testing.assert_array_equal(faster.emission, two.emission)
  cyclic = hmm_lib.by_name("cyclic")
  frozen = hmm_lib.scale_switching(cyclic, 0.0)
  np.testing.assert_array_equal(frozen.transition, np.eye(4))
  with pytest.raises(ValueError, match="no symbol has stationary probability below 0.05"):
    hmm_lib.without_rare_symbols(cyclic)  # marginal [.25, .5, .25]
  with pytest.raises(ValueError, match="switching probability exceed 1"):
    hmm_lib.scale_switching(two, 30.0)
  # deterministic emissions: two's is its symbol-free chain; cyclic's states emit one symbol each;
  # three's middle state, [.495, .01, .495], shares its tie
  np.testing.assert_allclose(hmm_lib.deterministic_emissions(two).emission, clean.emission)
  np.testing.assert_array_equal(hmm_lib.deterministic_emissions(cyclic).emission,
                                [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]])
  three = hmm_lib.deterministic_emissions(hmm_lib.by_name("three"))
  np.testing.assert_allclose(three.emission, [[1, 0, 0], [0.5, 0, 0.5], [0, 0, 1]], atol=1e-12)
  np.testing.assert_array_equal(three.transition, hmm_lib.by_name("three").transition)


def test_run_length_identities():
  a = np.asarray(hmm_lib.by_name("four").transition)
  # with the identity emission, output runs are hidden dwell times: survival a_ii^(d-1)
  for i in range(4):
    np.testing.assert_allclose(theory.output_run_survival(a, np.eye(4), i, 8),
                               np.diag(a)[i] ** np.arange(8), atol=1e-12)
  np.testing.assert_allclose(theory.hidden_dwell_pmf(a, 5000).sum(axis=1), 1.0, atol=1e-12)
  a3, e3 = _np(hmm_lib.by_name("three"))[1:]
  for symbol in range(3):
    survival = theory.output_run_survival(a3, e3, symbol, 5000)
    assert abs(survival.sum() - theory.mean_output_run(a3, e3, symbol)) < 1e-9
  # the noise symbol is independent of the state, so its runs are geometric with ratio 0.01
  np.testing.assert_allclose(theory.output_run_survival(a3, e3, 1, 4), 0.01 ** np.arange(4),
                             atol=1e-15)


@pytest.mark.parametrize("build, message", [
    (lambda: hmm_lib.make([0.5, 0.5], np.eye(3), np.eye(3)), r"transition must be \[M, M\]"),
    (lambda: hmm_lib.make([0.5, 0.5], np.eye(2), np.eye(3)), r"emission must be \[M, K\]"),
    (lambda: hmm_lib.make([0.5, 0.5], [[0.5, 0.5], [0.6, 0.3]], np.eye(2)),
     "transition row 1 sums to 0.9"),
    (lambda: hmm_lib.make([0.6, 0.5], np.eye(2), np.eye(2)), "initial sums to 1.1"),
    (lambda: hmm_lib.make([0.5, 0.5], np.eye(2), [[1.2, -0.2], [0, 1]]),
     r"emission has negative entries \(min -0.2 at \(0, 1\)\)"),
    (lambda: hmm_lib.make([0.5, 0.5], [[np.nan, 1], [0, 1]], np.eye(2)),
     "transition has non-finite"),
    (lambda: hmm_lib.linear_chain(6), "negative stay probability"),
    (lambda: hmm_lib.linear_chain(1), "num_states >= 2"),
    (lambda: hmm_lib.by_name("six"), "unknown HMM 'six'"),
])
def test_bad_input_names_the_problem(build, message):
  with pytest.raises(ValueError, match=message):
    build()


def test_valid_input_within_tolerance_is_accepted():
  # control for the above: rows off by 1e-8 pass the 1e-6 tolerance, and a tighter one rejects them
  transition = [[0.5, 0.5 + 1e-8], [0.3, 0.7]]
  h = hmm_lib.make([0.5, 0.5], transition, np.eye(2))
  assert h.num_states == 2 and h.num_symbols == 2
  with pytest.raises(ValueError, match="transition row 0"):
    hmm_lib.make([0.5, 0.5], transition, np.eye(2), atol=1e-9)


def test_expected_minimum_of_normals_order_statistics():
  # exact values: E min of 1, 2, 3 standard normals = 0, -1/sqrt(pi), -3/(2 sqrt(pi))
  np.testing.assert_allclose([theory.expected_minimum_of_normals(n) for n in (1, 2, 3)],
                             [0.0, -1 / np.sqrt(np.pi), -1.5 / np.sqrt(np.pi)], atol=1e-10)
  # against 4000 draws of the minimum of 500: s.e. of the mean ~ 0.4 / sqrt(4000) = 0.007
  draws = jax.random.normal(jax.random.key(0), (4000, 500)).min(axis=1)
  np.testing.assert_allclose(float(draws.mean()), theory.expected_minimum_of_normals(500),
                             atol=4 * float(draws.std()) / np.sqrt(4000))
  with pytest.raises(ValueError, match="n must be >= 1"):
    theory.expected_minimum_of_normals(0)
