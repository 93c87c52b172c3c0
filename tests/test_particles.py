"""Self-attention as interacting particles (Geshkovski et al. 2023): the simulated SA/USA flows against
the closed forms of theory/attention/particles.py, each with a negative control that must fail."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.attention_dynamics import particles as sim
from theory.attention import particles as theory

N, D, RHO0 = 8, 9, 0.1


def _equiangular_run(dynamics, beta, dt, num_saves, steps_per_save):
  x0 = sim.equiangular(N, D, RHO0)
  traj = sim.integrate(x0, beta, dynamics=dynamics, dt=dt, num_saves=num_saves,
                       steps_per_save=steps_per_save)
  u = jax.vmap(lambda x: sim.off_diagonal(sim.one_minus_cosine(x)))(traj.x_TxNxD)
  return traj.t_T, u


# (dynamics, beta, dt, saves, steps/save): USA at beta=5 has rate 2e^5 ~ 297, so a smaller step.
CASES = [("sa", 0.5, 0.01, 20, 50), ("sa", 2.0, 0.01, 20, 50), ("sa", 5.0, 0.01, 20, 50),
         ("usa", 0.5, 0.01, 20, 50), ("usa", 2.0, 0.002, 20, 100), ("usa", 5.0, 0.0001, 20, 500)]


@pytest.mark.parametrize("dynamics,beta,dt,saves,steps", CASES)
def test_equiangular_start_follows_the_reduction_ode(dynamics, beta, dt, saves, steps):
  """Stays equiangular (spread < 1e-10) and 1 - rho matches the RK4 reduction ODE to 1e-9 absolute
  (both fourth order: the gap is the difference of their truncation errors; dt x (fastest rate) is
  kept <= 0.03: at 0.15, USA beta=5 missed by 1.6e-8); the closed-form hitting
  time G(rho_sim(t)) - G(rho0) returns t to 1e-8 relative while 1 - rho > 1e-3 (closer to 1 the
  inversion is ill-conditioned). Negative controls: the other dynamics' ODE and beta + 0.1 miss by
  more than 1e-3."""
  t, u = _equiangular_run(dynamics, beta, dt, saves, steps)
  assert float(jnp.max(jnp.ptp(u, axis=1))) < 1e-10
  rho_sim = 1.0 - u[:, 0]
  _, rho_ode = theory.equiangular_rho(RHO0, beta, N, dynamics, dt=dt, num_saves=saves,
                                      steps_per_save=steps)
  assert float(jnp.max(jnp.abs(rho_sim - rho_ode))) < 1e-9
  far = u[:, 0] > 1e-3
  assert int(far.sum()) >= 3
  t_closed = theory.equiangular_hitting_time(RHO0, rho_sim[far], beta, N, dynamics)
  np.testing.assert_allclose(t_closed, t[far], rtol=1e-8)
  other = {"sa": "usa", "usa": "sa"}[dynamics]
  for wrong_dyn, wrong_beta in ((other, beta), (dynamics, beta + 0.1)):
    _, rho_wrong = theory.equiangular_rho(RHO0, wrong_beta, N, wrong_dyn, dt=dt, num_saves=saves,
                                          steps_per_save=steps)
    assert float(jnp.max(jnp.abs(rho_sim - rho_wrong))) > 1e-3


@pytest.mark.parametrize("dynamics,beta,t_end", [("sa", 2.0, 14.0), ("usa", 2.0, 14.0 / np.e ** 2),
                                                 ("usa", 0.5, 14.0 / np.e ** 0.5)])
def test_clustering_rates_are_2_for_sa_and_2_e_beta_for_usa(dynamics, beta, t_end):
  """-d log(1 - rho)/dt = rate (1 + O(beta (1 - rho))): fitted over the last tenth of a run that ends
  with 1 - rho ~ 1e-10, it is within 1e-3 relative of 2 (SA) / 2 e^beta (USA), and not of the other."""
  saves, steps = 10, 200
  t, u = _equiangular_run(dynamics, beta, t_end / (saves * steps), saves, steps)
  rate = -float(jnp.log(u[-1, 0] / u[-2, 0]) / (t[-1] - t[-2]))
  assert float(u[-1, 0]) < 1e-6
  expected = float(theory.clustering_rate(beta, dynamics))
  assert rate == pytest.approx(expected, rel=1e-3)
  wrong = float(theory.clustering_rate(beta, {"sa": "usa", "usa": "sa"}[dynamics]))
  assert abs(rate - wrong) / wrong > 0.1


@pytest.mark.parametrize("dynamics", ["sa", "usa"])
def test_energy_rate_identity_and_monotonicity(dynamics):
  """dE/dt by autodiff along the field equals sum_i c_i |x_i'|^2 (c_i = Z_i or n) to 1e-12 relative,
  pointwise; along an RK4 trajectory E(t) - E(0) equals the integrated identity to 1e-8 relative and E
  never decreases. Negative control: the other dynamics' constant c_i breaks the identity."""
  n, d, beta = 12, 4, 3.0
  x0 = sim.random_sphere(jax.random.key(0), n, d)
  for x in (x0, sim.random_sphere(jax.random.key(1), n, d)):
    v = sim.velocity(x, beta, dynamics)
    _, de_dt = jax.jvp(lambda y: sim.energy(y, beta), (x,), (v,))
    z = jnp.sum(jnp.exp(beta * sim.gram(x)), axis=-1)
    speed2 = jnp.sum(v ** 2, axis=-1)
    identity = theory.energy_rate_identity(speed2, z, n, dynamics)
    assert float(de_dt) == pytest.approx(float(identity), rel=1e-12)
    assert float(sim.energy_rate(x, beta, dynamics)) == pytest.approx(float(de_dt), rel=1e-12)
    other = theory.energy_rate_identity(speed2, z, n, {"sa": "usa", "usa": "sa"}[dynamics])
    assert abs(float(other) - float(de_dt)) > 1e-3 * abs(float(de_dt))
  traj = sim.integrate(x0, beta, dynamics=dynamics, dt=0.002, num_saves=50, steps_per_save=20)
  gain = traj.energy_T - sim.energy(x0, beta)
  np.testing.assert_allclose(gain, traj.energy_gain_T, rtol=1e-8)
  assert bool(jnp.all(jnp.diff(traj.energy_T) > 0))


def test_field_is_tangent_and_norms_stay_one_without_renormalising():
  """The projected field is orthogonal to x_i (1e-14), so RK4 without renormalisation keeps |x_i| = 1
  up to its truncation error, O(dt^4): < 1e-10 with dt x (clustering rate) <= 0.03 (USA drifted by
  1.7e-6 at dt = 0.01 and 2.7e-9 at dt = 0.002, the dt^4 law). Negative control: the unprojected
  attention output is not tangent."""
  x0 = sim.random_sphere(jax.random.key(2), 10, 3)
  for dynamics, dt, steps in (("sa", 0.002, 500), ("usa", 0.0003, 2000)):
    v = sim.velocity(x0, 4.0, dynamics)
    assert float(jnp.max(jnp.abs(jnp.sum(v * x0, axis=-1)))) < 1e-14
    traj = sim.integrate(x0, 4.0, dynamics=dynamics, dt=dt, num_saves=5, steps_per_save=steps,
                         renormalize=False)
    assert float(jnp.max(jnp.abs(jnp.linalg.norm(traj.x_TxNxD, axis=-1) - 1.0))) < 1e-10
  y = sim.attention_output(x0, 4.0)
  assert float(jnp.max(jnp.abs(jnp.sum(y * x0, axis=-1)))) > 0.1


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_two_particle_merge_time_matches_the_closed_form(beta):
  """Two SA tokens on the circle from angle 1.5 reach angle 0.01 at the Ei closed form's time: run to
  T_closed, then one Newton step on the simulated cosine gives T_sim; |T_sim / T_closed - 1| < 1e-8.
  Negative control: the closed form at beta * 1.05 misses by > 1e-3."""
  phi0, phi_eps = 1.5, 0.01
  t_closed = float(theory.merge_time(phi0, phi_eps, beta))
  steps = 20000
  x0 = sim.circle(jnp.array([0.0, phi0]))
  traj = sim.integrate(x0, beta, dynamics="sa", dt=t_closed / steps, num_saves=1,
                       steps_per_save=steps)
  x = traj.x_TxNxD[-1]
  rho = 1.0 - sim.one_minus_cosine(x)[0, 1]
  v = sim.velocity(x, beta, "sa")
  rho_dot = 2.0 * jnp.sum(v[0] * x[1])  # d<x_1, x_2>/dt, symmetric in the pair
  t_sim = t_closed - float((rho - jnp.cos(phi_eps)) / rho_dot)
  assert t_sim / t_closed - 1.0 == pytest.approx(0.0, abs=1e-8)
  assert abs(float(theory.merge_time(phi0, phi_eps, beta * 1.05)) / t_sim - 1.0) > 1e-3
  quad = float(theory.merge_time_quadrature(phi0, phi_eps, beta))
  assert quad == pytest.approx(t_closed, rel=1e-6)


def test_merge_time_approaches_its_large_beta_form():
  """T / (e^{beta(1-cos phi0)} / (2 beta sin^2 phi0)) - 1 = O(1/beta): positive and roughly halving as
  beta doubles (measured 0.062 at 30, 0.028 at 60)."""
  betas = jnp.array([30.0, 60.0, 120.0])
  excess = theory.merge_time(1.0, 1e-3, betas) / theory.merge_time_asymptotic(1.0, betas) - 1.0
  assert bool(jnp.all(excess > 0))
  ratios = np.asarray(excess[1:] / excess[:-1])
  assert np.all((ratios > 0.4) & (ratios < 0.55))


@pytest.mark.parametrize("n", [8, 32])
def test_long_context_cosine_one_layer(n):
  """One SA layer on an equiangular input: the output cosine equals the finite-n formula to 1e-10;
  negative controls: the formula at rho + 0.05 misses by > 1e-6, and the layer moved the cosine."""
  rho = 0.5
  x = sim.equiangular(n, n + 1, rho)
  for beta in (0.5, 3.0, 10.0):
    y = sim.attention_output(x, beta)
    y = y / jnp.linalg.norm(y, axis=-1, keepdims=True)
    cos = sim.off_diagonal(sim.gram(y))
    expected = theory.long_context_cosine(rho, beta, n)
    np.testing.assert_allclose(cos, jnp.broadcast_to(expected, cos.shape), atol=1e-10)
    assert abs(float(theory.long_context_cosine(rho + 0.05, beta, n)) - float(cos[0])) > 1e-6
    assert abs(float(cos[0]) - rho) > 1e-3


def test_long_context_limit_is_approached():
  """beta = gamma log n: the finite-n cosine tends to 1, 4 rho/(1+3 rho), rho for gamma(1-rho) <, =, > 1
  (at rho = 0.5, n = 1000: 0.99912, 0.80028, 0.50050), the gap shrinking with n."""
  rho = 0.5
  gammas = jnp.array([1.0, 2.0, 4.0])
  limit = theory.long_context_limit(rho, gammas)
  np.testing.assert_allclose(limit, [1.0, 0.8, 0.5])
  gaps = [jnp.abs(theory.long_context_cosine(rho, gammas * np.log(n), n) - limit)
          for n in (1e3, 1e6, 1e12)]
  np.testing.assert_allclose(theory.long_context_cosine(rho, gammas * np.log(1e3), 1e3),
                             [0.99912, 0.80028, 0.50050], atol=1e-5)
  assert bool(jnp.all(gaps[1] < gaps[0])) and bool(jnp.all(gaps[2] < gaps[1]))
  assert float(jnp.max(gaps[2])) < 1e-5


def test_critical_beta_is_where_the_equiangular_ode_hits_one_minus_delta():
  """beta*(t) from the Ei hitting time, checked by RK4 of the reduction ODE (1e-6), and against the
  equiangular values quoted for n = 32, delta = 1e-3 (5.1, 5.85, 6.3, 6.65, 6.9, rounded to 0.05)."""
  ts = jnp.array([10.0, 15.0, 20.0, 25.0, 30.0])
  beta_star = theory.critical_beta(ts, 32, 1e-3)
  np.testing.assert_allclose(beta_star, [5.1, 5.85, 6.3, 6.65, 6.9], atol=0.06)
  _, rho = theory.equiangular_rho(0.0, beta_star, 32, "sa", dt=0.005, num_saves=1,
                                  steps_per_save=2000)  # t = 10 only: shapes are per-beta
  assert float(rho[0, 0]) == pytest.approx(1.0 - 1e-3, abs=1e-6)
  assert float(rho[0, 1]) < 1.0 - 1e-3  # larger beta* needs longer: negative control at t = 10


@pytest.mark.slow
def test_quick_experiment_passes_every_row_including_the_phase_diagram(tmp_path):
  """End to end (~25 s): every comparison of the quick variant passes, including the phase boundary
  of random starts within 0.6 of the equiangular beta*(t) for t in [10, 30]."""
  from experiments.particles import config as config_lib
  from experiments.particles import experiment
  result = experiment.run(config_lib.get_config("quick"), str(tmp_path))
  failed = [c.quantity for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  assert np.all(np.abs(result["beta_emp"] - result["beta_star"]) <= 0.6)
