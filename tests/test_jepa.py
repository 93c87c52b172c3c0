"""JEPA vs MAE in deep linear nets (Littwin et al. 2024), float64: full-matrix gradient descent in
a rotated basis against the per-feature ODEs, the learning order as depth grows, the fixed points
(rho^L for the JEPA encoder), the end points set by the invariants, and the collapse without
stop-gradient; each comparison has a negative control that a wrong model must fail. The closed
forms derived in `theory.lazy_rich.jepa` are checked against a second derivation (autodiff of the
per-feature loss, RK4, finite differences).

Tolerances. A balanced init stays exactly balanced under gradient descent, so full-matrix descent is
forward Euler on the reduced ODE and differs from it at first order in the learning rate. The
learning rates below put that error at <= 0.3% of each feature's final value (measured), so the 1%
criterion of issue 3 tests the reduction with a margin, and the error halving with the learning
rate shows that it is discretisation only. Identities are checked to ~1e-10.
"""

import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab import core
from jaxlab import deep_linear as dl
from jaxlab.lazy_rich import jepa as jm
from theory.integrate import rk4
from theory.lazy_rich import jepa as theory

# A: influential (high rho, low variance); B: noisy and highly covarying (lambda * rho above A's,
# rho below A's); C, D fill out the spectrum. lambda * rho order: C, B, A, D. rho order: A, D, C, B.
LAM = (1.0, 3.0, 2.0, 1.0)
RHO = (0.9, 0.4, 0.7, 0.8)
A, B, C, D = 0, 1, 2, 3
EPS = 1e-2
WIDTH = 5  # > 4 features: the spare latent direction must stay unused
LR = {("jepa", 1): 5e-3, ("jepa", 2): 1e-2, ("jepa", 3): 1.5e-2,
      ("mae", 1): 2e-3, ("mae", 2): 2e-3, ("mae", 3): 2e-3}
ROWS = 200


@pytest.fixture(scope="module")
def views():
  return jm.make_views(jax.random.key(0), LAM, RHO, 16)


def _eval(views, objective):
  return lambda p, d: {"wbar": jm.feature_strengths(p, views.Q),
                       "head": jm.head_strengths(p, views.Q, objective),
                       "coupling": jm.feature_coupling(p, views.Q)}


def _train(views, params, loss, objective, lr, num_steps, log_every):
  optimizer = optax.sgd(lr)
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  final, history = jax.jit(lambda st: core.scan_train(
      core.make_train_step(loss, optimizer), st, (views.x, views.y), num_steps=num_steps,
      log_every=log_every, eval_fn=_eval(views, objective)))(state)
  return final.params, {k: np.asarray(v) for k, v in history.items()}


def _balanced_run(views, objective, depth, lr, horizon=1.15):
  """Balanced run until `horizon` x the slowest feature's theoretical half-time."""
  t_end = horizon * float(np.max(theory.half_time(jnp.array(LAM), jnp.array(RHO), EPS, depth,
                                                  objective)))
  log_every = math.ceil(t_end / (lr * ROWS))
  cfg = jm.JepaConfig(4, depth, WIDTH, objective)
  params = jm.init_balanced(jax.random.key(depth), cfg, views.Q, EPS)
  _, history = _train(views, params, jm.loss_fn(cfg), objective, lr, ROWS * log_every, log_every)
  times = lr * history["step"]
  _, ode = theory.encoder_strength(jnp.array(LAM), jnp.array(RHO), EPS, depth, objective,
                                   num_saves=ROWS, save_every=lr * log_every,
                                   substeps=max(20, math.ceil(lr * log_every / 0.05)))
  return {"times": times, "wbar": history["wbar"], "head": history["head"],
          "coupling": history["coupling"], "ode": np.asarray(ode)}


@pytest.fixture(scope="module")
def balanced_runs(views):
  return {key: _balanced_run(views, key[0], key[1], lr) for key, lr in LR.items()}


def _star(objective, depth):
  return np.asarray(theory.fixed_point(jnp.array(RHO), depth, objective)[1])


def _ode_error(run, ode, star):
  return float(np.max(np.abs(run["wbar"] - ode) / star[None, :]))


def _half_times(run, star):
  return dl.crossing_times(run["times"], run["wbar"] / star[None, :], np.full(len(star), 0.5))


# ------------------------------------------------------------------ data, gradients, init


def test_views_have_exact_rotated_moments(views):
  sxx, syx, syy = jm.moments(views)
  q, lam, rho = np.asarray(views.Q), np.array(LAM), np.array(RHO)
  np.testing.assert_allclose(sxx, (q * lam[None, :]) @ q.T, atol=1e-12)
  np.testing.assert_allclose(syx, (q * (lam * rho)[None, :]) @ q.T, atol=1e-12)
  np.testing.assert_allclose(syy, sxx, atol=1e-12)
  assert np.abs(q - np.eye(4)).max() > 0.1  # a genuinely rotated basis


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_autodiff_gradient_is_the_derived_one(views, objective):
  """grad_P = P Sxx - W Syx (JEPA, target fixed: Syy never enters) or P Sxx - Syx (MAE), P = V W."""
  cfg = jm.JepaConfig(4, 2, WIDTH, objective, init_scale=0.5)
  params = jm.init(jax.random.key(3), cfg)
  sxx, syx, _ = jm.moments(views)
  w1, w2 = params["encoder"]
  v, w = params["head"], w2 @ w1
  g_p = v @ w @ sxx - (w @ syx if objective == "jepa" else syx)
  grads = jax.jit(jax.grad(lambda p: jm.loss_fn(cfg)(p, (views.x, views.y))[0]))(params)
  np.testing.assert_allclose(grads["head"], g_p @ w.T, rtol=1e-11, atol=1e-13)
  np.testing.assert_allclose(grads["encoder"][1], v.T @ g_p @ w1.T, rtol=1e-11, atol=1e-13)
  np.testing.assert_allclose(grads["encoder"][0], (v @ w2).T @ g_p, rtol=1e-11, atol=1e-13)
  if objective == "jepa":  # control: without stop-gradient the target branch adds a term
    no_sg = jax.jit(jax.grad(
        lambda p: jm.jepa_loss(p, (views.x, views.y), stop_gradient=False)[0]))(params)
    assert float(jnp.max(jnp.abs(no_sg["encoder"][0] - grads["encoder"][0]))) > 1e-2


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_balanced_init_is_decoupled_with_the_requested_gains(views, objective):
  cfg = jm.JepaConfig(4, 3, WIDTH, objective)
  params = jm.init_balanced(jax.random.key(1), cfg, views.Q, EPS)
  np.testing.assert_allclose(jm.feature_strengths(params, views.Q), EPS, rtol=1e-12)
  np.testing.assert_allclose(jm.head_strengths(params, views.Q, objective), EPS ** (1 / 3),
                             rtol=1e-12)
  assert float(jm.feature_coupling(params, views.Q)) < 1e-12
  assert jm.apply(params, views.x).shape == (16, WIDTH if objective == "jepa" else 4)


# ------------------------------------------------------------------ full matrix vs per-feature ODE


@pytest.mark.parametrize("key", list(LR), ids=[f"{o}-L{d}" for o, d in LR])
def test_full_matrix_descent_follows_the_per_feature_ode_within_1_percent(balanced_runs, key):
  objective, depth = key
  run = balanced_runs[key]
  star = _star(objective, depth)
  err = _ode_error(run, run["ode"], star)
  assert err < 0.01, err
  # The features stay decoupled in the rotated basis (JEPA's latent rotation symmetry lets roundoff
  # drift to ~1e-9; MAE stays at ~1e-14).
  assert run["coupling"].max() < 1e-7
  # Negative controls: the other objective's ODE, and the ODE of a neighbouring depth, are far off.
  other = "mae" if objective == "jepa" else "jepa"
  for wrong_objective, wrong_depth in ((other, depth), (objective, depth - 1 if depth > 1 else 2)):
    _, wrong = theory.encoder_strength(jnp.array(LAM), jnp.array(RHO), EPS, wrong_depth,
                                       wrong_objective, num_saves=ROWS,
                                       save_every=float(run["times"][0]))
    assert _ode_error(run, np.asarray(wrong), star) > 0.3, (wrong_objective, wrong_depth)


def test_ode_error_is_first_order_in_the_learning_rate(views, balanced_runs):
  """Halving the learning rate halves the gap: it is Euler's error, not a modelling error."""
  small = balanced_runs[("jepa", 1)]
  large = _balanced_run(views, "jepa", 1, 2 * LR[("jepa", 1)])
  star = _star("jepa", 1)
  ratio = _ode_error(large, large["ode"], star) / _ode_error(small, small["ode"], star)
  assert 1.8 < ratio < 2.2, ratio


def test_half_times_match_the_closed_form(balanced_runs):
  for (objective, depth), run in balanced_runs.items():
    star = _star(objective, depth)
    predicted = np.asarray(theory.half_time(jnp.array(LAM), jnp.array(RHO), EPS, depth, objective))
    np.testing.assert_allclose(_half_times(run, star), predicted, rtol=0.01,
                               err_msg=f"{objective} L={depth}")


def test_depth_makes_jepa_learn_the_high_rho_feature_first_while_mae_stays_ordered_by_lambda_rho(
    balanced_runs):
  order_lam_rho = np.argsort(-np.array(LAM) * np.array(RHO))  # C, B, A, D
  half = {key: _half_times(run, _star(*key)) for key, run in balanced_runs.items()}
  for depth in (1, 2, 3):
    np.testing.assert_array_equal(np.argsort(half[("mae", depth)]), order_lam_rho)
    assert half[("mae", depth)][A] / half[("mae", depth)][B] > 1.3
  # JEPA: ordered by lambda * rho at L = 1, and the A/B ratio falls with depth until A goes first.
  np.testing.assert_array_equal(np.argsort(half[("jepa", 1)]), order_lam_rho)
  ratios = [half[("jepa", d)][A] / half[("jepa", d)][B] for d in (1, 2, 3)]
  assert ratios[0] > 1.3 and ratios[0] > ratios[1] > ratios[2], ratios
  assert ratios[2] < 0.85, ratios  # theory: 0.822
  # At L = 3 the noisy feature B (lowest rho) drops from second to last: C, A, D, B.
  np.testing.assert_array_equal(np.argsort(half[("jepa", 3)]), [C, A, D, B])


def test_closed_form_order_ratios_reproduce_the_shared_note_table():
  """The note's t_A/t_B at eps = 1e-3 (A: lambda=1, rho=.9; B: lambda=3, rho=.4), to 2 decimals."""
  lam, rho = jnp.array([1.0, 3.0]), jnp.array([0.9, 0.4])
  table = {"jepa": (1.33, 1.24, 1.06, 0.83, 0.61), "mae": (1.42, 1.35, 1.34, 1.34, 1.33)}
  half_time = jax.jit(theory.half_time, static_argnums=(3, 4))
  for objective, expected in table.items():
    for depth, value in zip(range(1, 6), expected):
      t = np.asarray(half_time(lam, rho, 1e-3, depth, objective))
      assert round(t[0] / t[1], 2) == value, (objective, depth, t[0] / t[1])


# ------------------------------------------------------------------ fixed points and end points


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_encoder_converges_to_the_fixed_point_rho_to_the_L(views, objective):
  """JEPA: every layer and the predictor -> rho, the encoder -> rho^L. MAE: -> rho^(L/(L+1)).
  Balanced descent has exactly the flow's fixed point, so the tolerance is tight."""
  depth = 2
  cfg = jm.JepaConfig(4, depth, WIDTH, objective)
  params = jm.init_balanced(jax.random.key(2), cfg, views.Q, 0.05)
  lr = 0.1 if objective == "jepa" else 0.02
  final, history = _train(views, params, jm.loss_fn(cfg), objective, lr, 40_000, 40_000)
  rho = np.array(RHO)
  u_star, w_star, v_star = (np.asarray(a) for a in theory.fixed_point(rho, depth, objective))
  np.testing.assert_allclose(history["wbar"][-1], w_star, rtol=1e-9)
  np.testing.assert_allclose(history["head"][-1], v_star, rtol=1e-9)
  if objective == "jepa":
    np.testing.assert_allclose(w_star, rho ** depth, rtol=1e-14)
    # The prediction V W maps feature i to rho^(L+1) along its latent direction.
    z = jm.encoder_matrix(final) @ views.Q
    np.testing.assert_allclose(final["head"] @ z, z * rho[None, :], atol=1e-9)
    # Control: MAE's fixed point is a different one.
    assert np.min(np.abs(history["wbar"][-1] - rho ** (depth / (depth + 1)))) > 0.05
  else:
    end_to_end = views.Q.T @ final["head"] @ jm.encoder_matrix(final) @ views.Q
    np.testing.assert_allclose(end_to_end, np.diag(rho), atol=1e-9)  # the regression Syx Sxx^-1
    assert np.min(np.abs(history["wbar"][-1] - rho ** depth)) > 0.05


def test_unbalanced_jepa_ends_where_the_invariants_say_including_collapse(views):
  """From unbalanced decoupled inits the JEPA encoder does not reach rho^L: w_l^2 -> rho^2 - c_l, or
  the feature collapses when the predictor starts with the wrong sign and larger than a layer."""
  depth = 2
  cfg = jm.JepaConfig(4, depth, WIDTH, "jepa")
  gains = jnp.array([[0.3, 0.2, 0.5, 0.4],   # W_1
                     [0.4, 0.6, 0.3, 0.4],   # W_2
                     [0.5, -0.3, 0.2, -0.1]])  # head: B negative and larger than W_1: collapse
  v_lim, w_lim, wbar_lim, learned = theory.jepa_limit(gains[-1], gains[:-1], jnp.array(RHO))
  np.testing.assert_array_equal(learned, [True, False, True, True])
  # The flow (RK4 of the unbalanced per-feature ODE) ends there.
  _, v_ode, w_ode = theory.per_feature_flow(gains[-1], gains[:-1], jnp.array(LAM), jnp.array(RHO),
                                            "jepa", num_saves=1, save_every=300.0, substeps=3000)
  np.testing.assert_allclose(v_ode[-1], v_lim, atol=1e-6)
  np.testing.assert_allclose(jnp.prod(w_ode[-1], axis=0), wbar_lim, atol=1e-6)
  errors = {}
  for lr in (0.02, 0.01):  # descent drifts the invariants at O(lr): its end point is off at O(lr)
    params = jm.init_decoupled(jax.random.key(4), cfg, views.Q, gains)
    _, history = _train(views, params, jm.jepa_loss, "jepa", lr, int(300 / lr), int(300 / lr))
    errors[lr] = float(np.max(np.abs(history["wbar"][-1] - np.abs(np.asarray(wbar_lim)))))
  assert errors[0.01] < 5e-4, errors  # measured: 1.4e-4
  assert 1.7 < errors[0.02] / errors[0.01] < 2.3, errors
  # Control: the balanced answer rho^L is wrong here.
  assert np.max(np.abs(np.abs(np.asarray(wbar_lim)) - np.array(RHO) ** depth)) > 0.1


def test_small_random_init_reaches_the_stationary_conditions(views):
  """No per-feature reduction for a random init, but its end points satisfy the stationarity:
  MAE's V W is the regression Q R Q^T; JEPA's predictor has each surviving feature's latent
  z_i = W q_i as an eigenvector with eigenvalue rho_i (the encoder's scale is left free)."""
  for objective, lr in (("mae", 0.02), ("jepa", 0.05)):
    cfg = jm.JepaConfig(4, 2, WIDTH, objective, init_scale=0.1)
    params, _ = _train(views, jm.init(jax.random.key(7), cfg), jm.loss_fn(cfg), objective, lr,
                       40_000, 40_000)
    z = jm.encoder_matrix(params) @ views.Q
    if objective == "mae":
      np.testing.assert_allclose(views.Q.T @ params["head"] @ z, np.diag(RHO), atol=1e-9)
    else:
      alive = np.linalg.norm(z, axis=0) > 0.1
      assert alive.sum() >= 3, np.linalg.norm(z, axis=0)
      resid = np.linalg.norm(params["head"] @ z - z * np.array(RHO)[None, :], axis=0)
      # This draw loses the rho = 0.4 feature, whose latent decays slowly (|z_B| ~ 2.5e-4 at
      # t = 2000); the others' residuals (~1e-7 relative) decay with it: 1e-6 is what t allows.
      assert np.all(resid[alive] < 1e-6 * np.linalg.norm(z, axis=0)[alive]), resid
      # Control: the stationarity fails for a wrong rho.
      assert np.max(np.linalg.norm(params["head"] @ z - 0.9 * z, axis=0)[alive]) > 1e-2


# ------------------------------------------------------------------ no stop-gradient


def test_without_stop_gradient_the_encoder_collapses_as_the_derived_flow_predicts(views):
  depth, eps, lr, steps = 2, 0.25, 1e-2, 10_000
  cfg = jm.JepaConfig(4, depth, WIDTH, "jepa")
  params = jm.init_balanced(jax.random.key(5), cfg, views.Q, eps)
  no_sg = functools.partial(jm.jepa_loss, stop_gradient=False)
  _, collapsed = _train(views, params, no_sg, "jepa", lr, steps, 50)
  _, learned = _train(views, params, jm.jepa_loss, "jepa", lr, steps, 50)
  w = collapsed["wbar"]
  assert np.all(np.diff(w, axis=0) <= 0)  # every feature's encoder gain only shrinks
  assert np.all(w[-1] < 0.1 * eps), w[-1] / eps  # measured: 0.008 to 0.07
  np.testing.assert_allclose(learned["wbar"][-1], np.array(RHO) ** depth, rtol=1e-3)
  # The collapse follows the derived no-stop-gradient flow (lambda_y = lambda for these views).
  u0 = eps ** (1 / depth)
  _, _, w_flow = theory.per_feature_flow(jnp.full(4, u0), jnp.full((depth, 4), u0), jnp.array(LAM),
                                         jnp.array(RHO), "jepa_no_sg", num_saves=steps // 50,
                                         save_every=50 * lr)
  wbar_flow = np.asarray(jnp.prod(w_flow, axis=1))
  assert np.max(np.abs(w - wbar_flow)) < 0.01 * eps  # measured: 0.0018 * eps (Euler, lr = 0.01)
  # Control: the stop-gradient flow does not describe it.
  _, _, w_sg = theory.per_feature_flow(jnp.full(4, u0), jnp.full((depth, 4), u0), jnp.array(LAM),
                                       jnp.array(RHO), "jepa", num_saves=steps // 50,
                                       save_every=50 * lr)
  assert np.max(np.abs(w - np.asarray(jnp.prod(w_sg, axis=1)))) > 0.1 * eps


# ------------------------------------------------------------------ the derivations themselves


@pytest.mark.parametrize("objective", ["jepa", "mae", "jepa_no_sg"])
def test_per_feature_rates_are_minus_the_gradient_of_the_per_feature_loss(objective):
  """Autodiff of the scalar loss of one feature (an independent derivation of the flow)."""
  lam, rho, lam_y = 1.7, 0.6, 2.3

  def loss(v, w, w_target):
    wbar, target = jnp.prod(w), jnp.prod(w_target)
    if objective == "mae":
      return 0.5 * lam * (v * wbar) ** 2 - lam * rho * v * wbar
    # E(v wbar x - target y)^2 / 2 with E x^2 = lam, E xy = lam rho, E y^2 = lam_y
    return 0.5 * lam * (v * wbar) ** 2 - lam * rho * v * wbar * target + 0.5 * lam_y * target ** 2

  v, w = jnp.array(0.7), jnp.array([0.3, -0.8, 1.1])
  if objective == "jepa_no_sg":
    g_v, g_w = jax.jit(jax.grad(lambda v, w: loss(v, w, w), argnums=(0, 1)))(v, w)
  else:  # differentiates only the online branch
    g_v, g_w = jax.jit(jax.grad(loss, argnums=(0, 1)))(v, w, w)
  dv, dw = theory.per_feature_rate(v, w, lam, rho, objective, lam_y=lam_y)
  np.testing.assert_allclose(dv, -g_v, rtol=1e-12)
  np.testing.assert_allclose(dw, -g_w, rtol=1e-12)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_balanced_reduction_and_the_papers_encoder_form(objective):
  u, lam, rho = jnp.linspace(0.05, 0.6, 7), 1.3, 0.7
  for depth in (1, 2, 4):
    dv, dw = theory.per_feature_rate(u, jnp.broadcast_to(u, (depth, 7)), lam, rho, objective)
    du = theory.balanced_rate(u, lam, rho, depth, objective)
    np.testing.assert_allclose(dv, du, rtol=1e-12)
    np.testing.assert_allclose(dw, jnp.broadcast_to(du, (depth, 7)), rtol=1e-12)
    # d wbar / dt = L u^(L-1) du/dt at wbar = u^L.
    np.testing.assert_allclose(theory.encoder_rate(u ** depth, lam, rho, depth, objective),
                               depth * u ** (depth - 1) * du, rtol=1e-11)
    u_star, _, _ = theory.fixed_point(rho, depth, objective)
    assert abs(float(theory.balanced_rate(u_star, lam, rho, depth, objective))) < 1e-15


def test_flow_conserves_the_invariants():
  """c_l = v^2 - w_l^2 is a first integral: RK4 drifts from it only at its own 4th order in dt."""
  v0, w0 = jnp.array([0.4, 0.1]), jnp.array([[0.2, 0.3], [0.5, 0.05], [0.3, 0.2]])
  for objective, substeps_pair in (("jepa", (20, 40)), ("mae", (200, 400))):  # MAE here is stiffer
    drift = []
    for substeps in substeps_pair:
      _, v, w = theory.per_feature_flow(v0, w0, jnp.array([1.0, 2.0]), jnp.array([0.8, 0.5]),
                                        objective, num_saves=50, save_every=20.0, substeps=substeps)
      assert float(jnp.max(jnp.abs(v[-1] - v0))) > 0.1  # it moved
      drift.append(float(jnp.max(jnp.abs(jax.vmap(theory.invariants)(v, w)
                                         - theory.invariants(v0, w0)[None]))))
    assert drift[1] < 1e-8 and 12 < drift[0] / drift[1] < 20, (objective, drift)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_closed_form_learning_times_match_the_integrated_ode(objective):
  """Integrating the ODE up to each feature's closed-form time lands on the level: with t = T_i tau
  for tau in [0, 1], du/dtau = T_i du/dt, one RK4 run for all features."""
  lam, rho = jnp.array([1.0, 3.0, 0.5]), jnp.array([0.9, 0.4, 0.7])

  @functools.partial(jax.jit, static_argnums=1)
  def level_reached(fraction, depth):
    t = theory.learning_time(fraction, lam, rho, 1e-3, depth, objective)
    rhs = lambda u, tau: t * theory.balanced_rate(u, lam, rho, depth, objective)
    _, u = rk4(rhs, jnp.full(3, 1e-3 ** (1 / depth)), 0.0, 1.0 / 80_000, 1, 80_000)
    return (u[-1] / theory.fixed_point(rho, depth, objective)[0]) ** depth

  for depth in (1, 2, 3, 4):
    for fraction in (0.5, 0.9, 0.999):
      # RK4's own error here is <= 3e-7 (it falls 256x from 20k to 80k steps; the closed form is
      # exact)
      np.testing.assert_allclose(level_reached(fraction, depth), fraction, rtol=1e-6,
                                 err_msg=f"L={depth}, fraction {fraction}")
  # Past the level: NaN, not a negative time.
  assert np.isnan(theory.learning_time(0.5, 1.0, 0.4, 0.5, 1, objective))


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_critical_time_is_the_leading_term_of_the_exact_time(objective):
  """The paper's critical times (leading order in eps) approach the exact half-time as eps -> 0."""
  lam, rho, depth = 2.0, 0.6, 3
  rel = []
  for eps in (1e-3, 1e-6, 1e-9):
    exact = float(theory.half_time(lam, rho, eps, depth, objective))
    rel.append(abs(float(theory.critical_time(lam, rho, eps, depth, objective)) / exact - 1))
  assert rel[0] > rel[1] > rel[2] and rel[2] < 1e-2, rel
  # Control: the critical time of another depth is far off even at small eps.
  wrong = float(theory.critical_time(lam, rho, 1e-9, depth - 1, objective))
  assert abs(wrong / float(theory.half_time(lam, rho, 1e-9, depth, objective)) - 1) > 0.5


def test_rho_exponent_is_the_log_derivative_of_the_learning_time():
  h = 1e-5
  for objective in ("jepa", "mae"):
    for depth, eps in ((1, 1e-2), (3, 1e-2), (4, 1e-3)):
      log_t = lambda r: np.log(float(theory.half_time(1.0, r, eps, depth, objective)))
      fd = -(log_t(0.6 * (1 + h)) - log_t(0.6 * (1 - h))) / (np.log1p(h) - np.log1p(-h))
      a = float(theory.rho_exponent(0.6, eps, depth, objective))
      assert abs(a - fd) < 1e-6, (objective, depth, a, fd)
      assert a < (2 * depth if objective == "jepa" else 2 * depth / (depth + 1))
  # Small eps per layer: ordered by lambda * rho (a ~ 1); depth at fixed eps steepens JEPA only.
  assert abs(float(theory.rho_exponent(0.6, 1e-6, 1, "jepa")) - 1) < 1e-3
  assert float(theory.rho_exponent(0.6, 1e-2, 3, "jepa")) > 1.5
  assert float(theory.rho_exponent(0.6, 1e-2, 3, "mae")) < 1.0


# ------------------------------------------------------------------ the experiment, end to end


def test_quick_experiment_writes_all_outputs_and_passes(tmp_path):
  from experiments.jepa_vs_mae import config as config_lib
  from experiments.jepa_vs_mae import experiment
  workdir = str(tmp_path)
  result = experiment.run(config_lib.get_config("quick"), workdir)
  assert all(c.passed for c in result["comparisons"]), [c.as_dict() for c in result["comparisons"]]
  for name in ("config.json", "metrics.jsonl", "results.json", "figures/encoder_strengths.png",
               "figures/order_vs_depth.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == [
      "jepa_L1", "jepa_L3", "mae_L1", "mae_L3"]
  rows = {c["quantity"]: c for c in json.load(open(os.path.join(workdir, "results.json")))
          ["comparisons"]}
  assert rows["L=3 JEPA: half-time ratio t_A / t_B (< 1: A first)"]["simulation"] < 1
  assert rows["L=3 MAE: half-time ratio t_A / t_B (< 1: A first)"]["simulation"] > 1


def test_bad_inputs_are_named(views):
  with pytest.raises(ValueError, match="objective must be one of"):
    jm.JepaConfig(4, 2, 4, "byol")
  with pytest.raises(ValueError, match="n_samples >= 8"):
    jm.make_views(jax.random.key(0), LAM, RHO, 6)
  with pytest.raises(ValueError, match="do not fit an encoder of 4 inputs"):
    jm.jepa_loss(jm.init(jax.random.key(0), jm.JepaConfig(4, 1, 4)), (views.x[:, :3], views.y))
  with pytest.raises(ValueError, match="gains must have shape"):
    jm.init_decoupled(jax.random.key(0), jm.JepaConfig(4, 2, 4), views.Q, jnp.ones((2, 4)))
  from experiments.jepa_vs_mae import config as config_lib
  from experiments.jepa_vs_mae import experiment
  config = config_lib.get_config("quick")
  config.eps = 0.1  # per-layer gain 0.46 at L = 3: feature B (rho = 0.4) would start past half
  with pytest.raises(ValueError, match="starts a feature above half its fixed point at depth 3"):
    experiment.validate(config)
