"""Hierarchical Gaussian filters: hand-derived one-step values, jaxlab against theory/hgf.py, the
updates as Newton steps (autodiff), the gap between the standard and eHGF orders, the Kalman steady
state and likelihood, trajectories through volatile environments, vmap, errors, the experiment."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.hgf import config as config_lib
from experiments.hgf import experiment
from jaxlab.predictive_coding import hgf
from theory import hgf as theory

# One trial of the 3-level binary HGF from mu_2 = mu_3 = 0, pi_2 = pi_3 = 1, omega_2 = omega_3 = 0,
# kappa = 1, with input u = 1 (x_2 the tendency, x_3 the log-volatility):
#   nu_2 = exp(kappa mu_3 + omega_2) = 1, pi_hat_2 = 1/(1/1 + 1) = 1/2; nu_3 = e^0, pi_hat_3 = 1/2
#   mu_hat_1 = s(mu_2) = 1/2
#   pi_2 = pi_hat_2 + mu_hat_1 (1 - mu_hat_1) = 1/2 + 1/4 = 3/4
#   mu_2 = 0 + (u - mu_hat_1) / pi_2 = (1/2) (4/3) = 2/3
#   Delta_2 = (1/pi_2 + (mu_2 - mu_hat_2)^2) pi_hat_2 - 1 = (4/3 + 4/9) / 2 - 1 = 8/9 - 1 = -1/9
#   w_2 = nu_2 pi_hat_2 = 1/2, so 2 w_2 - 1 = 0 and pi_3 = 1/2 + (1/2)(1/2)(1/2 + 0) = 5/8
#   mu_3 = 0 + (1/2)(1/2)(-1/9) / pi = -(1/36) / pi: standard pi_3 = 5/8 -> -2/45,
#                                                    ehgf pi_hat_3 = 1/2 -> -1/18.
# w_2 = 1/2 hides the (2 w - 1) Delta term of pi_3; omega_2 = log 3 brings it in:
#   nu_2 = 3, pi_hat_2 = 1/4, w_2 = 3/4, pi_2 = 1/4 + 1/4 = 1/2, mu_2 = (1/2) / (1/2) = 1,
#   Delta_2 = (2 + 1) / 4 - 1 = -1/4,
#   pi_3 = 1/2 + (1/2)(3/4)(3/4 + (1/2)(-1/4)) = 1/2 + (3/8)(5/8) = 47/64,
#   mu_3 = (1/2)(3/4)(-1/4) / pi = -(3/32) / pi: standard -> -6/47, ehgf -> -(3/32)(2) = -3/16.
# Both: the implied learning rate (s(mu_2) - 1/2) / (1 - 1/2) = tanh(mu_2 / 2), surprise -log(1/2).
BINARY_HAND = [
    # omega_2, pi_hat_2, pi_2, mu_2, Delta_2, pi_3, mu_3 standard, mu_3 ehgf, learning rate
    (0.0, 1 / 2, 3 / 4, 2 / 3, -1 / 9, 5 / 8, -2 / 45, -1 / 18, math.tanh(1 / 3)),
    (math.log(3.0), 1 / 4, 1 / 2, 1.0, -1 / 4, 47 / 64, -6 / 47, -3 / 16, math.tanh(1 / 2)),
]
# The continuous 2-level HGF from mu_1 = mu_2 = 0, pi_1 = pi_2 = 1, omega = 0, kappa = 1, pi_u = 1,
# input u = 1: pi_hat_1 = pi_hat_2 = 1/2, pi_1 = 1/2 + 1 = 3/2, mu_1 = (pi_u / pi_1) u = 2/3,
#   Delta_1 = (2/3 + 4/9) / 2 - 1 = -4/9, w_1 = 1/2, pi_2 = 1/2 + (1/2)(1/2)(1/2) = 5/8,
#   mu_2 = (1/2)(1/2)(-4/9) / pi = -(1/9) / pi: standard -> -8/45, ehgf -> -2/9;
#   learning rate pi_u / pi_1 = 2/3; surprise -log N(1; 0, 1/pi_hat_1 + 1/pi_u = 3).
CONTINUOUS_HAND = (1 / 2, 3 / 2, 2 / 3, -4 / 9, 5 / 8, -8 / 45, -2 / 9, 2 / 3,
                   0.5 * (math.log(6 * math.pi) + 1 / 3))


@pytest.mark.parametrize("case", BINARY_HAND)
def test_binary_one_step_matches_the_hand_derivation(case):
  omega_2, pi_hat_2, pi_2, mu_2, delta_2, pi_3, mu_3_std, mu_3_ehgf, rate = case
  params = hgf.binary_params(3, omega=(omega_2, 0.0), kappa=1.0, mu0=0.0, pi0=1.0)
  for order, mu_3 in (("standard", mu_3_std), ("ehgf", mu_3_ehgf)):
    traj = hgf.binary_hgf(params, jnp.ones((1,)), order)
    got = [traj.pi_hat[0, 0], traj.pi_hat[0, 1], traj.prediction[0], traj.pi[0, 0], traj.mu[0, 0],
           traj.volatility_pe[0, 0], traj.pi[0, 1], traj.mu[0, 1], traj.learning_rate[0],
           traj.surprise[0]]
    want = [pi_hat_2, 0.5, 0.5, pi_2, mu_2, delta_2, pi_3, mu_3, rate, math.log(2.0)]
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-14, atol=1e-15)
    ref = theory.binary_hgf_one_step(1.0, [0.0, 0.0], [1.0, 1.0], [omega_2, 0.0], [1.0], order)
    np.testing.assert_allclose(
        [ref["pi_hat"][0], ref["pi"][0], ref["mu"][0], ref["vope"][0], ref["pi"][1], ref["mu"][1],
         ref["learning_rate"], ref["surprise"]],
        [pi_hat_2, pi_2, mu_2, delta_2, pi_3, mu_3, rate, math.log(2.0)], rtol=1e-14, atol=1e-15)


def test_continuous_one_step_matches_the_hand_derivation():
  pi_hat, pi_1, mu_1, delta_1, pi_2, mu_2_std, mu_2_ehgf, rate, surprise = CONTINUOUS_HAND
  params = hgf.continuous_params(2, omega=0.0, pi_u=1.0, kappa=1.0, mu0=0.0, pi0=1.0)
  for order, mu_2 in (("standard", mu_2_std), ("ehgf", mu_2_ehgf)):
    traj = hgf.continuous_hgf(params, jnp.ones((1,)), order)
    got = [traj.pi_hat[0, 0], traj.pi[0, 0], traj.mu[0, 0], traj.volatility_pe[0, 0],
           traj.pi[0, 1], traj.mu[0, 1], traj.learning_rate[0], traj.surprise[0]]
    np.testing.assert_allclose(got, [pi_hat, pi_1, mu_1, delta_1, pi_2, mu_2, rate, surprise],
                               rtol=1e-14, atol=1e-15)
    ref = theory.continuous_hgf_one_step(1.0, [0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0], 1.0,
                                         order)
    np.testing.assert_allclose([ref["pi"][0], ref["mu"][0], ref["pi"][1], ref["mu"][1]],
                               [pi_1, mu_1, pi_2, mu_2], rtol=1e-14)


@pytest.mark.parametrize("kind, levels", [("binary", 3), ("binary", 4), ("continuous", 2),
                                          ("continuous", 4)])
def test_one_step_matches_theory_for_random_settings(kind, levels):
  rng = np.random.default_rng(levels + 10 * (kind == "binary"))
  s = experiment.random_settings(rng, kind, levels, 12)
  run_fn = hgf.binary_hgf if kind == "binary" else hgf.continuous_hgf
  for i in range(12):
    params = hgf.HGFParams(omega=s["omega"][i], kappa=s["kappa"][i], mu0=s["mu"][i],
                           pi0=s["pi"][i], pi_u=s["pi_u"][i] if kind == "continuous" else None)
    args = (s["u"][i], list(s["mu"][i]), list(s["pi"][i]), list(s["omega"][i]),
            list(s["kappa"][i]))
    for order in hgf.ORDERS:
      traj = run_fn(params, s["u"][i:i + 1], order)
      if kind == "binary":
        ref = theory.binary_hgf_one_step(*args, order=order)
      else:
        ref = theory.continuous_hgf_one_step(*args, pi_u=s["pi_u"][i], order=order)
      for got, want in ((traj.mu[0], ref["mu"]), (traj.pi[0], ref["pi"]),
                        (traj.pi_hat[0], ref["pi_hat"]), (traj.volatility_pe[0], ref["vope"]),
                        (traj.learning_rate[0], ref["learning_rate"]),
                        (traj.surprise[0], ref["surprise"]), (traj.prediction[0], ref["mu_hat_1"])):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)


def test_updates_are_newton_steps_on_the_variational_energy():
  """An independent derivation by autodiff: each posterior is the prediction plus one Newton step
  on log p(data | x), the precision adding minus its curvature at the prediction."""
  rng = np.random.default_rng(0)
  for _ in range(10):
    mu_hat, pi_hat = rng.normal(), rng.uniform(0.3, 3.0)
    kappa, omega = rng.uniform(0.3, 2.0), rng.normal()
    # Volatility parent of a child with previous posterior (mu_c, sigma_c), new (mu_c', sigma_c').
    mu_c, sigma_c = rng.normal(), rng.uniform(0.2, 2.0)
    mu_new, sigma_new = rng.normal(), rng.uniform(0.05, 0.5)

    def f(x):
      v = sigma_c + jnp.exp(kappa * x + omega)  # the child's predicted variance given x
      return -0.5 * jnp.log(v) - (sigma_new + (mu_new - mu_c) ** 2) / (2.0 * v)

    nu = math.exp(kappa * mu_hat + omega)
    pi_hat_c = 1.0 / (sigma_c + nu)
    vope = hgf.volatility_prediction_error(mu_new, 1.0 / sigma_new, mu_c, pi_hat_c)
    mu, pi = hgf.volatility_update(mu_hat, pi_hat, nu * pi_hat_c, vope, kappa)
    pi_newton = pi_hat - jax.grad(jax.grad(f))(mu_hat)
    np.testing.assert_allclose(pi, pi_newton, rtol=1e-12)
    np.testing.assert_allclose(mu, mu_hat + jax.grad(f)(mu_hat) / pi_newton, rtol=1e-12)
    mu_e, pi_e = hgf.volatility_update(mu_hat, pi_hat, nu * pi_hat_c, vope, kappa, "ehgf")
    np.testing.assert_allclose(mu_e, mu_hat + jax.grad(f)(mu_hat) / pi_hat, rtol=1e-12)
    assert pi_e == pi
    # Value parent of a binary input through the sigmoid.
    u = float(rng.integers(0, 2))

    def log_lik(x):
      return u * jax.nn.log_sigmoid(x) + (1.0 - u) * jax.nn.log_sigmoid(-x)

    mu_2, pi_2, _ = hgf.binary_value_update(u, mu_hat, pi_hat)
    np.testing.assert_allclose(pi_2, pi_hat - jax.grad(jax.grad(log_lik))(mu_hat), rtol=1e-12)
    np.testing.assert_allclose(mu_2, mu_hat + jax.grad(log_lik)(mu_hat) / pi_2, rtol=1e-12)


def test_orders_differ_by_the_derived_gap_and_coincide_at_zero_coupling():
  u = jnp.asarray(np.random.default_rng(1).integers(0, 2, 300), dtype=float)
  gaps = []
  for kappa in (0.02, 0.01):  # mu_3 = 0: w and Delta do not depend on kappa
    params = hgf.binary_params(3, omega=(-1.0, -2.0), kappa=kappa, mu0=(0.5, 0.0), pi0=(2.0, 1.0))
    std, ehgf = (hgf.binary_hgf(params, u[:1], order) for order in hgf.ORDERS)
    w = math.exp(-1.0) * float(std.pi_hat[0, 0])
    gap = float(std.mu[0, 1] - ehgf.mu[0, 1])
    vope, pi_hat_3 = float(std.volatility_pe[0, 0]), float(std.pi_hat[0, 1])
    np.testing.assert_allclose(gap, theory.order_gap(kappa, w, vope, pi_hat_3), rtol=1e-10)
    # (mu_std - mu_hat) / (mu_ehgf - mu_hat) = pi_hat / pi exactly.
    np.testing.assert_allclose(std.mu[0, 1] / ehgf.mu[0, 1], pi_hat_3 / std.pi[0, 1], rtol=1e-12)
    gaps.append(gap)
  assert gaps[0] / gaps[1] == pytest.approx(8.0, rel=1e-3)  # O(kappa^3)
  # Whole trajectories: identical at kappa = 0, apart at kappa = 1.5 (the switch does something).
  for kappa, differ in ((0.0, False), (1.5, True)):
    params = hgf.binary_params(3, omega=(-4.0, -2.0), kappa=kappa, mu0=0.0, pi0=1.0)
    std, ehgf = (hgf.binary_hgf(params, u, order) for order in hgf.ORDERS)
    apart = float(jnp.max(jnp.abs(std.mu - ehgf.mu)))
    assert (apart > 1e-2) if differ else (apart == 0.0)


def test_kalman_regime_steady_state_contraction_and_exact_likelihood():
  pi_u, omega = 2.0, -2.0
  params = hgf.continuous_params(2, omega=omega, pi_u=pi_u, kappa=0.0, mu0=0.3, pi0=0.5)
  u, _ = hgf.volatile_gaussian_walk(jax.random.key(0), [omega], [200], pi_u)
  traj = hgf.continuous_hgf(params, u)
  p_star = theory.steady_state_precision(pi_u, omega)
  nu = math.exp(omega)
  assert nu * p_star ** 2 - pi_u * nu * p_star - pi_u == pytest.approx(0.0, abs=1e-12)
  pi_1 = np.asarray(traj.pi[:, 0])
  np.testing.assert_allclose(pi_1[-1], p_star, rtol=1e-13)
  err = pi_1 - p_star
  near = np.flatnonzero((np.abs(err[:-1]) < 1e-5 * p_star) & (np.abs(err[:-1]) > 1e-10 * p_star))
  assert near.size >= 3
  np.testing.assert_allclose(err[near + 1] / err[near],
                             theory.steady_state_contraction(pi_u, omega), rtol=1e-4)
  nll = theory.random_walk_negative_log_likelihood(np.asarray(u), 0.3, 0.5, omega, pi_u)
  np.testing.assert_allclose(float(jnp.sum(traj.surprise)), nll, rtol=1e-11)
  # Negative control: with volatility learning on, the filter is no longer this Gaussian model.
  coupled = hgf.continuous_hgf(params._replace(kappa=jnp.ones(1)), u)
  assert abs(float(jnp.sum(coupled.surprise)) - nll) > 0.1
  assert float(jnp.max(jnp.abs(traj.mu[:, 1] - 0.3))) == 0.0  # kappa = 0: level 2 never moves


def _binary_volatile_runs(config, kappa, sequences=16):
  probabilities, lengths, volatile = hgf.stable_volatile_schedule(
      config.stable_trials, config.block_length, config.num_blocks, config.p_high,
      1.0 - config.p_high)
  u, _ = hgf.volatile_binary_sequence(jax.random.key(7), probabilities, lengths, sequences)
  params = hgf.binary_params(3, config.binary_omega, kappa, config.binary_mu0, config.binary_pi0)
  runs = {order: experiment.run_each(hgf.binary_hgf, params, u, order, batched_params=False)
          for order in hgf.ORDERS}
  return runs, volatile, slice(config.burn_in, config.stable_trials)


def test_binary_volatility_raises_the_learning_rate_beyond_the_sigmoid():
  config = config_lib.get_config()
  runs, volatile, stable = _binary_volatile_runs(config, config.binary_kappa)
  control, _, _ = _binary_volatile_runs(config, 0.0)
  base = experiment.phase_ratio(control["standard"].learning_rate, volatile, stable)
  assert np.all(base > 1.0)  # the sigmoid alone: s'(mu_hat) grows as predictions turn uncertain
  for order, r in runs.items():
    assert np.all(r.pi > 0.0), order
    rise = r.mu[:, volatile, 1].mean(1) - r.mu[:, stable, 1].mean(1)
    assert np.all(rise > 0.0), order  # the volatility estimate goes up in every sequence
    gain = experiment.phase_ratio(r.learning_rate, volatile, stable) / base
    assert np.all(gain > 1.0), order  # and the learning rate with it, beyond the sigmoid's share
    # Measured, not expected: the logit-scale weight 1/pi_2 falls in the volatile phase, because
    # pi_2 = pi_hat_2 + mu_hat(1 - mu_hat) gains more from uncertain predictions than it loses
    # from the higher volatility.
    assert experiment.phase_ratio(1.0 / r.pi[:, :, 0], volatile, stable).mean() < 1.0
  # Negative control: without volatility coupling level 3 never moves and the orders coincide.
  assert np.all(control["standard"].mu[:, :, 1] == config.binary_mu0[1])
  np.testing.assert_array_equal(control["standard"].mu, control["ehgf"].mu)


def test_continuous_volatility_raises_the_learning_rate_and_kappa_zero_does_not():
  config = config_lib.get_config()
  t = config.walk_trials
  u, _ = hgf.volatile_gaussian_walk(jax.random.key(3), config.walk_log_step_variances, [t, t],
                                    config.pi_u, 16)
  stable, volatile = slice(config.burn_in, t), slice(t, 2 * t)
  for kappa in (config.continuous_kappa, 0.0):
    params = hgf.continuous_params(2, config.continuous_omega, config.pi_u, kappa)
    for order in hgf.ORDERS:
      r = experiment.run_each(hgf.continuous_hgf, params, u, order, batched_params=False)
      assert np.all(r.pi > 0.0)
      ratio = experiment.phase_ratio(r.learning_rate, volatile, stable)
      if kappa:
        assert np.all(ratio > config.min_learning_rate_ratio), (order, ratio.min())
        assert np.all(r.mu[:, volatile, 1].mean(1) > r.mu[:, stable, 1].mean(1))
      else:  # a Kalman filter: its gain does not depend on the data
        np.testing.assert_allclose(ratio, 1.0, rtol=1e-12)
        assert np.all(r.mu[:, :, 1] == 0.0)


def test_vmap_over_parameters_and_sequences_equals_a_python_loop():
  u = jnp.asarray(np.random.default_rng(2).integers(0, 2, (3, 50)), dtype=float)
  omegas = jnp.array([[-4.0, -2.0], [-3.0, -3.0], [-2.0, -6.0], [-5.0, -1.0]])
  params = hgf.binary_params(3, omega=(-4.0, -2.0), kappa=1.2, mu0=0.0, pi0=1.0)
  batched = jax.vmap(lambda om: hgf.binary_hgf(params._replace(omega=om), u[0], "ehgf"))(omegas)
  for i, om in enumerate(omegas):
    single = hgf.binary_hgf(params._replace(omega=om), u[0], "ehgf")
    for got, want in zip(batched, single):
      np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-14)
  sequences = jax.vmap(lambda x: hgf.binary_hgf(params, x))(u)
  for i in range(u.shape[0]):
    np.testing.assert_allclose(sequences.mu[i], hgf.binary_hgf(params, u[i]).mu, rtol=1e-12)


def test_bad_inputs_raise_errors_that_name_the_problem():
  params = hgf.binary_params(3, omega=(-4.0, -2.0))
  u = jnp.ones(5)
  with pytest.raises(ValueError, match="unknown HGF update order 'fast'"):
    hgf.binary_hgf(params, u, "fast")
  with pytest.raises(ValueError, match="binary HGF needs num_levels >= 3, got 2"):
    hgf.binary_params(2, omega=-4.0)
  with pytest.raises(ValueError, match="continuous HGF needs num_levels >= 2"):
    hgf.continuous_params(1, omega=-4.0, pi_u=1.0)
  with pytest.raises(ValueError, match=r"omega has shape \(2,\) but a 4-level binary HGF needs 3"):
    hgf.binary_params(4, omega=(-4.0, -2.0))
  with pytest.raises(ValueError, match=r"params.kappa has shape \(2,\) .* needs shape \(1,\)"):
    hgf.binary_hgf(params._replace(kappa=jnp.ones(2)), u)
  with pytest.raises(ValueError, match="binary HGF needs num_levels >= 3; params.omega has 1"):
    hgf.binary_hgf(hgf.HGFParams(jnp.zeros(1), jnp.zeros(0), jnp.zeros(1), jnp.ones(1)), u)
  with pytest.raises(ValueError, match="must be 0 or 1; trial 2 is 0.5"):
    hgf.binary_hgf(params, jnp.array([0.0, 1.0, 0.5, 2.0]))
  with pytest.raises(ValueError, match=r"observations must be 1-D \[T\], got shape \(2, 5\)"):
    hgf.binary_hgf(params, jnp.ones((2, 5)))
  with pytest.raises(ValueError, match="binary HGF has no input precision"):
    hgf.binary_hgf(params._replace(pi_u=jnp.ones(())), u)
  with pytest.raises(ValueError, match="continuous HGF needs a scalar params.pi_u"):
    hgf.continuous_hgf(params, u)
  with pytest.raises(ValueError, match="params.pi0 must be positive"):
    hgf.binary_hgf(params._replace(pi0=jnp.array([1.0, -1.0])), u)
  with pytest.raises(ValueError, match="3 probabilities but 2 block lengths"):
    hgf.volatile_binary_sequence(jax.random.key(0), [0.1, 0.9, 0.1], [10, 10])
  with pytest.raises(ValueError, match="block_lengths must be a 1-D sequence of positive"):
    hgf.volatile_gaussian_walk(jax.random.key(0), [0.0, 1.0], [10, 0], 1.0)
  with pytest.raises(ValueError, match="unknown variant 'slow' of the hgf config"):
    config_lib.get_config("slow")


def test_environments_follow_their_schedules():
  probabilities, lengths, volatile = hgf.stable_volatile_schedule(30, 5, 4, 0.8, 0.2)
  assert lengths == [30, 5, 5, 5, 5, 30] and volatile == slice(30, 50)
  assert probabilities == [0.8, 0.2, 0.8, 0.2, 0.8, 0.8]
  u, p = hgf.volatile_binary_sequence(jax.random.key(1), [0.9, 0.2], [3000, 3000], 4)
  assert u.shape == (4, 6000) and p.shape == (6000,)
  assert set(np.unique(np.asarray(u))) <= {0.0, 1.0}
  for block, prob in ((slice(0, 3000), 0.9), (slice(3000, 6000), 0.2)):
    se = math.sqrt(prob * (1 - prob) / u[:, block].size)
    assert abs(float(u[:, block].mean()) - prob) < 4 * se
  u, x = hgf.volatile_gaussian_walk(jax.random.key(2), [-2.0, 1.0], [4000, 4000], 4.0)
  steps = np.diff(np.asarray(x))
  for block, var in ((slice(0, 3999), math.exp(-2.0)), (slice(4000, 7999), math.e)):
    assert abs(steps[block].var() / var - 1.0) < 4 * math.sqrt(2 / 3999)
  assert abs(float(jnp.var(u - x)) * 4.0 - 1.0) < 4 * math.sqrt(2 / 8000)


def test_experiment_quick_run_passes_every_row_and_draws_its_figures(tmp_path):
  config = config_lib.get_config("quick")
  config.one_step_settings = 5
  config.sequences = 6
  config.stable_trials = 150
  config.num_blocks = 8
  config.walk_trials = 200
  config.burn_in = 60
  result = experiment.run(config, str(tmp_path))
  failed = [c.quantity for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  assert set(result["figures"]) == {"hgf_binary", "hgf_continuous"}
  for path in result["figures"].values():
    assert (tmp_path / "figures" / path.split("/")[-1]).exists()
  assert (tmp_path / "results.json").exists() and (tmp_path / "metrics.jsonl").exists()
