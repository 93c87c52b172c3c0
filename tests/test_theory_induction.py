"""theory/induction.py: Reddy's nested logits (origin value, the L = N critical point, the 1/N
classifier-only ceiling, the 1, 2, 4 onset exponents behind the sequential order, RK4 convergence),
Singh's product toy (plateau set by the free factors, clamping b and c removes it), Wurgaft's
crossover time (closed form, superlinear in task diversity, linear control)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from theory import induction as ind

N, L = 8, 32
G = 1.0 / N - 1.0 / L  # -d loss / d xi at the origin: 3/32
C_ALPHA = (N - 1) / (2.0 * N**2)  # a1 a2 (1 - a2) at the origin: 7/128

# --------------------------------------------------------------------------------------------------
# Reddy: nested logits.


@pytest.mark.parametrize("num_context,num_labels", [(2, 2), (8, 8), (8, 9), (8, 32), (4, 100)])
def test_origin_probability_is_one_over_l(num_context, num_labels):
  p = ind.nested_logit_probability(jnp.zeros(3), num_context, num_labels)
  np.testing.assert_allclose(p, 1.0 / num_labels, rtol=1e-14)


@pytest.mark.parametrize("num_context,num_labels", [(8, 8), (8, 9), (8, 32), (3, 3), (3, 50)])
def test_origin_gradient_is_closed_form_and_vanishes_iff_l_equals_n(num_context, num_labels):
  grad = jax.grad(ind.nested_logit_loss)(jnp.zeros(3), num_context, num_labels)
  np.testing.assert_allclose(grad, ind.origin_gradient(num_context, num_labels), atol=1e-15)
  is_critical = bool(np.all(np.abs(np.asarray(grad)) < 1e-15))
  assert is_critical == (num_labels == num_context)  # both directions


def test_l_equals_n_flow_never_leaves_the_origin_but_l_greater_does():
  _, ys_eq = ind.nested_logit_flow(jnp.zeros(3), N, N, 0.05, 40, 20)
  assert np.all(np.asarray(ys_eq) == 0.0)
  _, ys_gt = ind.nested_logit_flow(jnp.zeros(3), N, N + 1, 0.05, 40, 20)
  assert np.all(np.asarray(ys_gt)[-1] > 0.0)


def test_probability_matches_the_explicit_formula_off_the_origin():
  theta = jnp.array([0.7, -1.3, 2.1])
  a1 = 1.0 / (1.0 + math.exp(-0.7))
  a2 = math.exp(-1.3 * a1) / (math.exp(-1.3 * a1) + N - 1)
  num = math.exp(2.1 * a2)
  want = num / (num + (N - 1) * math.exp(2.1 * (1 - a2) / (N - 1)) + L - N)
  np.testing.assert_allclose(ind.nested_logit_probability(theta, N, L), want, rtol=1e-13)


def test_gradients_are_gated_by_the_outer_logits():
  """d loss/d alpha = 0 whenever xi = 0 and d loss/d beta1 = 0 whenever alpha = 0 or xi = 0;
  control: all three nonzero at a generic point."""
  grad = jax.grad(ind.nested_logit_loss)
  for beta1, alpha in [(0.3, 1.7), (-2.0, 5.0)]:
    g = grad(jnp.array([beta1, alpha, 0.0]), N, L)
    assert g[0] == 0.0 and g[1] == 0.0 and g[2] != 0.0
  g = grad(jnp.array([1.1, 0.0, 3.0]), N, L)
  assert g[0] == 0.0 and g[1] != 0.0
  g = grad(jnp.array([1.1, 0.4, 3.0]), N, L)
  assert np.all(np.abs(np.asarray(g)) > 1e-4)


def test_classifier_only_manifold_rises_to_one_over_n_not_one():
  xi = jnp.array([0.0, 1.0, 10.0, 100.0, 400.0])
  p = jax.vmap(lambda x: ind.nested_logit_probability(jnp.stack([0.0 * x, 0.0 * x, x]), N, L))(xi)
  np.testing.assert_allclose(p, ind.classifier_only_probability(xi, N, L), rtol=1e-12)
  assert np.all(np.diff(np.asarray(p)) > 0)
  np.testing.assert_allclose(p[-1], 1.0 / N, rtol=1e-13)
  np.testing.assert_allclose(N * p[-1], 1.0, rtol=1e-13)  # context-label accuracy -> 1
  # Gradient flow restricted to xi: p climbs toward 1/N and never above it.
  ts, ys = ind.nested_logit_flow(jnp.zeros(3), N, L, 0.5, 40, 50, free=(False, False, True))
  assert np.all(np.asarray(ys)[:, :2] == 0.0)
  p_flow = np.asarray(ind.classifier_only_probability(ys[:, 2], N, L))
  assert np.all(np.diff(p_flow) > 0) and p_flow[-1] < 1.0 / N and p_flow[-1] > 0.9 / N
  # Control: with a formed induction head (alpha = 6, beta1 = 3) the same xi gives far above 1/N.
  p_head = ind.nested_logit_probability(jnp.array([3.0, 6.0, 100.0]), N, L)
  assert p_head > 0.99


def test_onset_exponents_give_the_sequential_order():
  """Small-t expansion from the origin (module docstring): xi ~ G t, alpha ~ C G t^2 / 2,
  beta1 ~ G^2 C^2 t^4 / 16, so threshold crossings are ordered xi < alpha < beta1."""
  ts, ys = ind.nested_logit_flow(jnp.zeros(3), N, L, 0.01, 30, 2)  # t = 0.02 ... 0.6
  ts, ys = np.asarray(ts), np.asarray(ys)
  np.testing.assert_allclose(ys[:5, 2] / ts[:5], G, rtol=1e-3)
  np.testing.assert_allclose(ys[:5, 1] / ts[:5]**2, C_ALPHA * G / 2, rtol=1e-3)
  np.testing.assert_allclose(ys[:5, 0] / ts[:5]**4, G**2 * C_ALPHA**2 / 16, rtol=1e-3)
  # The whole run: first times at which each parameter reaches 0.05.
  ts, ys = ind.nested_logit_flow(jnp.zeros(3), N, L, 0.05, 100, 10)
  crossing = [ind.first_time_below(ts, -np.asarray(ys[:, j]), -0.05) for j in (2, 1, 0)]
  assert crossing[0] < crossing[1] < crossing[2] < math.inf
  # The abrupt phase: p goes from < 2/N to > 0.6 within 6 time units, after a plateau at p ~ 1/N.
  p = np.asarray(jax.vmap(lambda th: ind.nested_logit_probability(th, N, L))(ys))
  t_low = ind.first_time_below(ts, -p, -1.5 / N)
  t_high = ind.first_time_below(ts, -p, -0.6)
  assert 15.0 < t_low < t_high < t_low + 6.0
  # Control: the order is in the onset, not in the jump; half of the final (t = 50) value is reached
  # by all three within the jump, in the order beta1 ~ alpha < xi.
  half = ind.half_crossing_times(ts, ys)
  assert np.ptp(half) < 3.0 and half[2] > half[1]


def test_rk4_converges_when_dt_is_halved():
  _, coarse = ind.nested_logit_flow(jnp.zeros(3), N, L, 0.02, 30, 50)
  _, fine = ind.nested_logit_flow(jnp.zeros(3), N, L, 0.01, 30, 100)
  assert np.max(np.abs(np.asarray(coarse) - np.asarray(fine))) < 1e-6


@pytest.mark.parametrize("num_context,num_labels", [(1, 4), (8, 7)])
def test_bad_sizes_raise(num_context, num_labels):
  with pytest.raises(ValueError):
    ind.nested_logit_loss(jnp.zeros(3), num_context, num_labels)


# --------------------------------------------------------------------------------------------------
# Singh: product toy.


@pytest.mark.parametrize("k", [1, 2, 3])
def test_scalar_product_escape_time_matches_quadrature(k):
  s, u_end = 0.05, 0.5
  ts, u = ind.product_flow(k, s, 0.001, 2000, 20)  # t up to 40, saves every 0.02
  t_flow = ind.first_time_below(ts, -np.asarray(u), -u_end)
  assert abs(t_flow - ind.product_escape_time(k, s, u_end)) <= 0.02


def test_escape_time_asymptotes():
  """T_3(s) s -> 1 and T_2(s) / log(1/s) -> 1 as s -> 0; T_1 stays O(1)."""
  for s in (1e-3, 1e-4):
    np.testing.assert_allclose(ind.product_escape_time(3, s, 0.5) * s, 1.0, atol=3 * s)
  # k = 2 exactly: int du / (u (1 - u^2)) = log(u / sqrt(1 - u^2)), T_2 - log(1/s) -> log(1/sqrt3).
  np.testing.assert_allclose(ind.product_escape_time(2, 1e-6, 0.5) - math.log(1e6),
                             math.log(1 / math.sqrt(3.0)), atol=1e-9)
  assert ind.product_escape_time(1, 1e-6, 0.5) < math.log(2.0) + 1e-5
  assert ind.product_escape_asymptote(3, 0.01) == pytest.approx(100.0)


def test_tensor_plateau_shortens_when_b_and_c_are_clamped():
  """Aligned start a = s a*, ... with |a*|^2 = d: the tensor flow is the scalar one slowed by d
  (u_a' = (1 - u_a u_b u_c) u_b u_c / d), so the 1%-loss time is d T_k(s, u_end)."""
  d, s, frac = 4, 0.1, 0.01
  rng = np.random.default_rng(0)
  targets = [v * math.sqrt(d) / np.linalg.norm(v) for v in rng.normal(size=(3, d))]
  factors0 = [s * t for t in targets]
  loss0 = float(ind.tensor_loss(factors0, targets))
  np.testing.assert_allclose(loss0, 0.5 * (1 - s**3)**2, rtol=1e-12)
  times = {}
  for name, clamped, k in (("none", (False,) * 3, 3), ("b,c", (False, True, True), 1)):
    ts, losses = ind.tensor_flow(factors0, targets, clamped, 0.02, 300, 10)  # t up to 60
    times[name] = ind.first_time_below(ts, losses, frac * loss0)
    # Loss 1/2 (1 - u^k)^2 (clamped factors at 1): below frac L0 iff u^k > 1 - sqrt(frac)(1 - s^3).
    u_end = (1.0 - math.sqrt(frac) * (1.0 - s**3)) ** (1.0 / k)
    assert abs(times[name] - d * ind.product_escape_time(k, s, u_end)) <= 0.2 + 1e-9
  assert times["none"] / times["b,c"] > 4.0
  # Control: clamping b, c at their small initial values instead of their targets: u_a' =
  # (1 - s^2 u_a) s^2 / d moves u_a by < 60 s^2 / d = 0.15 over the horizon, so the loss stays high.
  ts, losses = ind.tensor_flow(factors0, targets, (False, True, True), 0.02, 300, 10,
                               clamp_at_start=True)
  assert ind.first_time_below(ts, losses, frac * loss0) == math.inf
  assert float(losses[-1]) > 0.9 * loss0


# --------------------------------------------------------------------------------------------------
# Wurgaft: hierarchical Bayesian strategy model.

PARAMS = dict(alpha=0.3, beta=0.8, gamma=0.05)


def test_weights_normalise_and_cross_at_the_closed_form_time():
  k_m, k_g, l_m, l_g = 400.0, 50.0, 0.2, 0.35
  n_star = ind.crossover_time(k_m, k_g, l_m, l_g, **PARAMS)
  n = np.geomspace(1.0, 1e3 * n_star, 200)
  log_w = ind.strategy_log_weights(n, [k_m, k_g], [l_m, l_g], **PARAMS)
  np.testing.assert_allclose(np.exp(log_w).sum(axis=-1), 1.0, rtol=1e-14)
  w_m = ind.memorizing_weight(n, k_m, k_g, l_m, l_g, **PARAMS)
  assert np.all(np.diff(w_m) >= 0) and np.all(np.diff(w_m)[(w_m[1:] < 0.999)] > 0)
  assert w_m[0] < 1e-3 and w_m[-1] > 1 - 1e-3  # G first, then M
  np.testing.assert_allclose(ind.memorizing_weight(n_star, k_m, k_g, l_m, l_g, **PARAMS), 0.5,
                             atol=1e-12)
  root = optimize.brentq(
      lambda x: ind.memorizing_weight(x, k_m, k_g, l_m, l_g, **PARAMS) - 0.5, 1.0, 1e3 * n_star,
      xtol=1e-12, rtol=1e-14)
  np.testing.assert_allclose(root, n_star, rtol=1e-6)
  with pytest.raises(ValueError):  # control: M not better on the training loss, no crossover
    ind.crossover_time(k_m, k_g, l_g, l_m, **PARAMS)


def test_crossover_time_grows_superlinearly_with_task_diversity():
  d = np.geomspace(2.0, 4096.0, 12)
  kwargs = dict(k_gen=50.0, k_per_task=10.0, gap0=1.0, nu=1.0, **PARAMS)
  n_star = ind.crossover_time_vs_diversity(d, **kwargs)
  ratio = ind.crossover_time_vs_diversity(2 * d, **kwargs) / n_star
  bound = 2.0 ** ((min(PARAMS["beta"], 1.0) + 1.0) / (1.0 - PARAMS["alpha"]))
  assert np.all(ratio >= bound * (1 - 1e-12)) and bound > 2.0
  # The closed-form log-slope against finite differences, and its large-D limit (beta+nu)/(1-alpha).
  slope = ind.crossover_log_slope(d, 50.0, 10.0, 1.0, PARAMS["alpha"], PARAMS["beta"])
  eps = 1e-6
  fd = (np.log(ind.crossover_time_vs_diversity(d * (1 + eps), **kwargs))
        - np.log(ind.crossover_time_vs_diversity(d * (1 - eps), **kwargs))) / (
            np.log(1 + eps) - np.log(1 - eps))
  np.testing.assert_allclose(slope, fd, rtol=1e-6)
  np.testing.assert_allclose(
      ind.crossover_log_slope(1e12, 50.0, 10.0, 1.0, PARAMS["alpha"], PARAMS["beta"]),
      (PARAMS["beta"] + 1.0) / (1.0 - PARAMS["alpha"]), rtol=1e-6)


def test_linear_complexity_and_constant_gap_give_exactly_linear_crossover():
  """Control: beta = 1, nu = 0, alpha = 0 -> n* = ln2 k1 D / (gamma gap0), ratio exactly 2."""
  d = np.geomspace(2.0, 4096.0, 12)
  kwargs = dict(k_gen=50.0, k_per_task=10.0, gap0=0.5, nu=0.0, alpha=0.0, beta=1.0, gamma=0.05)
  n_star = ind.crossover_time_vs_diversity(d, **kwargs)
  np.testing.assert_allclose(n_star, math.log(2.0) * 10.0 * d / (0.05 * 0.5), rtol=1e-12)
  ratio = ind.crossover_time_vs_diversity(2 * d, **kwargs) / n_star
  np.testing.assert_allclose(ratio, 2.0, rtol=1e-12)
