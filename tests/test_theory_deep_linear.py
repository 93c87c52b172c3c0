"""theory/deep_linear.py against itself: the closed forms solve their ODEs, and the RK4 is 4th order."""

import jax.numpy as jnp
import numpy as np

from theory import deep_linear as theory
from theory.integrate import rk4


def test_balanced_sigmoid_solves_the_two_layer_mode_ode_and_its_inverse_is_the_learning_time():
  s, u0, tau = jnp.array([3.0, 1.0, 0.5]), 1e-3, 1000.0
  times, u_ode = theory.deep_mode_strength(s, jnp.full(3, u0), tau, 3, num_saves=100,
                                           save_every=200.0, substeps=400)
  u_closed = theory.balanced_mode_strength(times[:, None], s, u0, tau)
  np.testing.assert_allclose(u_ode, u_closed, rtol=1e-9, atol=1e-12)
  uf = 0.9 * s
  np.testing.assert_allclose(theory.balanced_mode_strength(theory.learning_time(s, u0, uf, tau), s,
                                                           u0, tau), uf, rtol=1e-12)


def test_sigmoid_limits_and_no_overflow_at_long_times():
  s = jnp.array([2.0])
  np.testing.assert_allclose(theory.balanced_mode_strength(0.0, s, 1e-4, 1.0), 1e-4, rtol=1e-12)
  assert np.isfinite(theory.balanced_mode_strength(1e6, s, 1e-4, 1.0)).all()
  np.testing.assert_allclose(theory.balanced_mode_strength(1e6, s, 1e-4, 1.0), s)


def test_rk4_error_falls_as_the_fourth_power_of_the_step():
  # dy/dt = -y: exact e^{-t}; halving dt must cut the error ~16x.
  errors = []
  for substeps in (5, 10):
    _, y = rk4(lambda y, t: -y, jnp.array(1.0), 0.0, 1.0 / substeps, 1, substeps)
    errors.append(abs(float(y[0]) - np.exp(-1.0)))
  assert 14.0 < errors[0] / errors[1] < 18.0


def test_deeper_nets_take_longer_from_small_init_and_all_reach_s():
  s, tau = jnp.array([1.0]), 1.0
  ends = {}
  for n_layers in (3, 4, 6):
    times, u = theory.deep_mode_strength(s, jnp.array([1e-2]), tau, n_layers, num_saves=400,
                                         save_every=0.25)
    ends[n_layers] = np.asarray(u[:, 0])
    np.testing.assert_allclose(ends[n_layers][-1], 1.0, rtol=1e-6)
  half = {n: np.argmax(u >= 0.5) for n, u in ends.items()}
  assert half[3] < half[4] < half[6]


def test_effective_initial_strength_is_the_growing_component():
  a0, b0 = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]])  # orthogonal: u = a.b = 0 yet it grows
  np.testing.assert_allclose(theory.effective_initial_strength(a0, b0), [0.5])
  np.testing.assert_allclose(theory.effective_initial_strength(a0, -a0), [0.0])
