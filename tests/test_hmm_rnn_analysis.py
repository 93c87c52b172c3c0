"""Reverse-engineering tools for the HMM-emulating RNN, on small hand-built networks whose answers
are known: analytic fixed points and Jacobians, a slow point at a ReLU kink, contracting vs
expanding autonomous dynamics, exact winding numbers, PCA of data with a set covariance,
hand-counted residency times, planted kick neurons, and ablations that provably remove a unit's
influence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.hmm_rnn import analysis
from jaxlab.hmm_rnn import model


def _params(w_in, w_hh, w_out):
  # Weights are built in numpy: eager jnp would compile every small op (slow on a shared CPU).
  return {"w_in": jnp.asarray(w_in), "w_hh": jnp.asarray(w_hh), "w_out": jnp.asarray(w_out)}


def _known_fixed_point_net():
  """A contracting ReLU net with one fixed point at input x0 = [1]: units 0, 1 active, unit 2 held
  below threshold by its input, so h* = (h01, 0) with h01 = x0 W_in[:, :2] (I - W_hh[:2, :2])^-1."""
  w_hh = np.array([[0.5, 0.1, 0.0], [0.0, 0.4, 0.2], [0.1, 0.0, 0.3]])
  w_in = np.array([[1.0, 0.5, -2.0]])
  h01 = w_in[0, :2] @ np.linalg.inv(np.eye(2) - w_hh[:2, :2])
  return _params(w_in, w_hh, np.eye(3)), np.concatenate([h01, np.zeros(1)])


def test_fixed_point_finder_recovers_the_analytic_fixed_point_and_its_jacobian():
  params, h_star = _known_fixed_point_net()
  x0 = np.ones(1)
  assert h_star[:2].min() > 0  # the construction's premise
  assert (x0 @ np.asarray(params["w_in"]) + h_star @ np.asarray(params["w_hh"]))[2] < 0
  starts = np.random.default_rng(0).uniform(0.0, 3.0, (40, 3))
  fps = analysis.find_fixed_points(params, jnp.asarray(starts), input=jnp.asarray(x0),
                                   num_steps=2000, speed_tol=1e-12)

  assert fps.points.shape == (1, 3) and fps.num_merged.tolist() == [40]  # duplicates merged
  np.testing.assert_allclose(fps.points[0], h_star, atol=1e-5)
  assert fps.is_fixed.tolist() == [True] and fps.speeds[0] < 1e-12
  expected_j = np.diag([1.0, 1.0, 0.0]) @ np.asarray(params["w_hh"]).T  # diag(1[a > 0]) W_hh^T
  np.testing.assert_allclose(fps.jacobians[0], expected_j, atol=1e-12)
  expected_eig = np.linalg.eigvals(expected_j)
  np.testing.assert_allclose(fps.eigenvalues[0], expected_eig[np.argsort(-np.abs(expected_eig))],
                             atol=1e-12)
  assert int(analysis.count_unstable(fps.eigenvalues)[0]) == 0


def test_a_slow_point_is_found_but_flagged_not_fixed():
  # F(h) = relu(2h + c) has no fixed point for c > 0; q has an isolated minimum at the kink
  # h0 = -c/2 with q(h0) = (c/2)^2 / 2 > 0: the ghost of the fixed point that appears at c = 0.
  c = 0.01
  params = _params([[c]], [[2.0]], np.ones((1, 2)))
  starts = jnp.asarray(np.linspace(-0.5, 0.5, 11)[:, None])
  fps = analysis.find_fixed_points(params, starts, input=jnp.ones(1), num_steps=2000,
                                   speed_tol=1e-8, unique_tol=1e-3)
  assert fps.points.shape == (1, 1)
  np.testing.assert_allclose(fps.points[0, 0], -c / 2, atol=1e-4)
  np.testing.assert_allclose(fps.speeds[0], 0.5 * (c / 2) ** 2, rtol=1e-2)
  assert fps.is_fixed.tolist() == [False]


def test_far_fixed_points_are_reached_unless_excluded_as_outliers():
  # F(h) = relu(0.5 h + 10): the fixed point h* = 20 lies ~20 from every start.
  params = _params([[10.0]], [[0.5]], np.ones((1, 2)))
  starts = jnp.asarray(np.linspace(0.0, 1.0, 5)[:, None])
  fps = analysis.find_fixed_points(params, starts, input=jnp.ones(1), num_steps=2000)
  np.testing.assert_allclose(fps.points, [[20.0]], atol=1e-4)
  with pytest.raises(ValueError, match="outlier_tol"):
    analysis.find_fixed_points(params, starts, input=jnp.ones(1), num_steps=2000, outlier_tol=5.0)


def test_autonomous_dynamics_of_a_contracting_net_collapse_to_zero():
  rng = np.random.default_rng(1)
  w = rng.normal(size=(20, 20))
  params = _params(np.ones((2, 20)), 0.8 * w / np.linalg.norm(w, ord=2), np.ones((20, 3)))
  states = jnp.asarray(rng.uniform(0.0, 5.0, (100, 20)))  # |relu(h W)| <= 0.8 |h| from any of them
  out = analysis.autonomous_endpoints(params, states, num_steps=500)
  assert float(out.spread) < 1e-3 and float(jnp.abs(out.center).max()) < 1e-3
  assert float(out.center_speed) < 1e-12
  # Negative control: an expanding map (1.01 I keeps positive states positive) does not collapse.
  expanding = dict(params, w_hh=jnp.asarray(1.01 * np.eye(20)))
  assert float(analysis.autonomous_endpoints(expanding, states, num_steps=500).spread) > 1.0


def test_winding_number_counts_turns_exactly():
  t = np.linspace(0.0, 3 * 2 * np.pi, 601)
  center = np.array([0.5, -1.0])
  circle = jnp.asarray(np.stack([np.cos(t), np.sin(t)], axis=1) + center[None, :])
  center = jnp.asarray(center)
  assert abs(float(analysis.winding_number(circle, center)) - 3.0) < 1e-9
  assert abs(float(analysis.winding_number(circle[::-1], center)) + 3.0) < 1e-9
  assert abs(float(analysis.winding_number(circle, center + 5.0))) < 1e-9  # centre outside


def test_pca_recovers_a_set_covariance():
  variances = np.array([9.0, 4.0, 1.0, 0.25])
  rng = np.random.default_rng(2)
  z = rng.normal(size=(500, 4))
  z = z - z.mean(axis=0)
  z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z.T))).T  # sample covariance exactly I
  rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
  data = jnp.asarray((z * np.sqrt(variances)) @ rotation.T + 3.0)
  pcs = analysis.principal_components(data, 3)
  np.testing.assert_allclose(pcs.explained_variance, variances[:3], rtol=1e-10)
  np.testing.assert_allclose(pcs.explained_variance_ratio, variances[:3] / variances.sum(),
                             rtol=1e-10)
  np.testing.assert_allclose(np.abs(np.asarray(pcs.components) @ rotation[:, :3]), np.eye(3),
                             atol=1e-10)
  projected = np.asarray(analysis.project(pcs, data))
  np.testing.assert_allclose(projected.var(axis=0, ddof=1), variances[:3], rtol=1e-10)


def _rotating_net(angle, decay=0.9):
  """u_t = decay R(angle) u_{t-1} + x_t, carried exactly by h = [relu(u), relu(-u)] (H = 4)."""
  c, s = np.cos(angle), np.sin(angle)
  a = decay * np.array([[c, s], [-s, c]])  # row convention: u_t = u_{t-1} a + x_t
  return _params(np.block([[np.eye(2), -np.eye(2)]]), np.block([[a, -a], [-a, a]]),
                 np.ones((4, 3)))


def test_a_noise_driven_rotation_winds_around_its_fixed_point():
  angle, length = 2 * np.pi / 20, 400
  orbit = analysis.orbit_winding(_rotating_net(angle), jax.random.key(3), jnp.zeros(4),
                                 length=length, burn_in=20)
  assert orbit.trajectory_2d.shape == (length, 2)
  assert 14 < abs(float(orbit.winding)) < 26  # ~length * angle / 2 pi = 20 turns, +- angle noise
  assert orbit.shuffled_windings.shape == (20,)
  assert abs(float(orbit.shuffled_winding)) < 0.5 * abs(float(orbit.winding))
  # A cloud round its centre winds at random too (shuffled s.d. ~0.3 sqrt(T) turns): the orbit's
  # winding grows as T, the controls' spread as sqrt(T). Measured |z| 2.5 at T = 400, 11.9 at 4000.
  long_orbit = analysis.orbit_winding(_rotating_net(angle), jax.random.key(3), jnp.zeros(4),
                                      length=4000, burn_in=20)
  assert abs(float(long_orbit.z_score)) > 6
  with pytest.raises(ValueError, match="num_shuffles must be >= 2"):
    analysis.orbit_winding(_rotating_net(angle), jax.random.key(3), jnp.zeros(4), num_shuffles=1)


def test_residency_times_by_hand():
  symbols = jnp.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
  times, censored = analysis.residency_times(symbols)
  assert times.tolist() == [3, 2, 1, 2, 1, 4, 3, 2, 1, 1]
  assert censored.tolist() == [False] * 9 + [True]
  times_onehot, _ = analysis.residency_times(jax.nn.one_hot(symbols, 3))
  assert times_onehot.tolist() == times.tolist()
  times, censored = analysis.residency_times(jnp.array([1, 1, 1]))
  assert times.tolist() == [3, 2, 1] and all(censored.tolist())


def test_expected_residency_on_networks_with_known_switching():
  # h = [relu(x), relu(-x)] and w_out = I: the output is sign(x), a fair coin each step, so the
  # residency time is geometric with mean 2; with w_out's columns equal to [1, 0] it never changes.
  params = _params([[1.0, -1.0]], np.zeros((2, 2)), np.eye(2))
  states = jnp.asarray(np.eye(2))
  rt = analysis.expected_residency_times(params, jax.random.key(4), states, num_samples=4000,
                                         max_steps=50)
  np.testing.assert_allclose(rt, 2.0, atol=0.1)  # s.e. sqrt(2 / 4000) = 0.022
  frozen = dict(params, w_out=jnp.asarray([[1.0, 0.0], [1.0, 0.0]]))
  rt = analysis.expected_residency_times(frozen, jax.random.key(4), states, num_samples=4000,
                                         max_steps=50)
  assert rt.tolist() == [50.0, 50.0]


def test_snapshot_summary_of_networks_with_known_switching():
  # The coin net: h = [relu(x), relu(-x)], logits = h. Sampled symbol 0 has probability sigmoid(x),
  # independently each step, so changes per sequence are (T - 1) 2 E[p] E[1 - p] = (T - 1) / 2; its
  # argmax flips with probability 1/2 (residency 2, never a cluster); W_hh = 0: no unstable state.
  coin = _params([[1.0, -1.0]], np.zeros((2, 2)), np.eye(2))
  summary = analysis.summarise_snapshot(coin, jax.random.key(8), length=30, batch=1024,
                                        num_states=400)
  np.testing.assert_allclose(summary.changes_mean, 14.5, atol=3 * np.sqrt(29 / 4 / 1024))
  np.testing.assert_allclose(summary.mean_residency, 2.0, atol=0.1)
  assert summary.cluster_fraction == 0.0 and summary.unstable_fraction == 0.0
  assert summary.trajectory_2d.shape == (400, 2)
  # Both units vote for symbol 0 with weight 10: the argmax never changes (residency 50, the cap)
  # and a state is a cluster iff softmax confidence > 0.8, i.e. 10 |x| > log 4:
  # P(|x| > 0.1386) = 0.8898 for x ~ N(0, 1), independent across states (s.e. 0.016 at 400).
  frozen = dict(coin, w_out=jnp.asarray([[10.0, 0.0], [10.0, 0.0]]))
  summary = analysis.summarise_snapshot(frozen, jax.random.key(8), length=30, batch=1024,
                                        num_states=400)
  assert summary.mean_residency == 50.0
  np.testing.assert_allclose(summary.cluster_fraction, 0.8898, atol=3 * 0.016)
  # a unit that amplifies itself (W_hh = 1.5 on an active unit) is locally unstable there
  growing = _params([[1.0, -1.0]], np.diag([1.5, 0.0]), np.eye(2))
  radius = analysis._spectral_radii(growing, jnp.asarray([[1.0, 0.0], [0.0, 1.0]]),
                                    jnp.zeros((2, 1)))
  np.testing.assert_allclose(radius, [1.5, 0.0])


def test_region_classification_counts():
  residency = jnp.array([1.0, 1.9, 2.0, 5.0, 8.0, 8.5, 20.0, 30.0, 50.0, 1.0])
  max_prob = jnp.array([0.9, 0.5, 0.9, 0.9, 0.4, 0.81, 0.99, 0.8, 0.95, 0.3])
  regions = analysis.classify_regions(residency, max_prob)
  t, k, c, u = analysis.TRANSITION, analysis.KICK_ZONE, analysis.CLUSTER, analysis.UNCLASSIFIED
  assert regions.labels.tolist() == [t, t, k, k, k, c, c, u, c, t]
  np.testing.assert_allclose(regions.fractions, [0.3, 0.3, 0.3, 0.1])


def test_kick_neuron_finder_recovers_planted_units():
  rng = np.random.default_rng(5)
  num_t, hidden, planted = 600, 20, [3, 11, 17]
  labels = rng.integers(0, 4, num_t)  # includes unclassified states
  activity = np.abs(rng.normal(size=(num_t, hidden)))  # region-blind background
  activity[:, 7] *= 10.0  # a loud unit, active everywhere
  kick = (labels == analysis.TRANSITION) | (labels == analysis.KICK_ZONE)
  burst = 2.0 + 0.3 * np.abs(rng.normal(size=(num_t, len(planted))))
  activity[:, planted] = np.where(kick[:, None], burst, 0.0)
  found = analysis.find_kick_neurons(activity, labels, top_k=3)
  assert sorted(found.units.tolist()) == planted
  assert found.mean_cluster[planted].max() == 0.0 and found.mean_kick[planted].min() > 2.0
  assert abs(found.scores[7]) < 0.2


def test_noise_integrating_populations_are_the_top_projectors():
  w_hh = np.zeros((6, 6))
  w_hh[[0, 1, 4], 5] = [3.0, 2.0, 1.0]
  w_hh[[2, 5], 3] = [5.0, 4.0]
  params = _params(np.ones((1, 6)), w_hh, np.ones((6, 2)))
  # Top-2 projectors onto 5 are {0, 1}; onto 3 are {2, 5}; kick units 3, 5 are excluded.
  assert analysis.noise_integrating_populations(params, [5, 3], top_k=2).tolist() == [0, 1, 2]


def _random_net(seed, d=3, hidden=8, symbols=3):
  """model.init's distribution, U(-1/sqrt(H), 1/sqrt(H)), drawn by numpy."""
  rng, bound = np.random.default_rng(seed), 1.0 / np.sqrt(hidden)
  return _params(*(rng.uniform(-bound, bound, shape)
                   for shape in ((d, hidden), (hidden, hidden), (hidden, symbols))))


def test_scale_units_identity_and_removal():
  params = _random_net(6)
  units = [1, 4]
  for target in analysis.SCALING_TARGETS:
    same = analysis.scale_units(params, units, 1.0, target=target)
    for name in params:
      np.testing.assert_array_equal(same[name], params[name])
  w_in, w_hh = np.asarray(params["w_in"]), np.asarray(params["w_hh"])
  scaled = analysis.scale_units(params, units, 0.5, target="noise_input")
  np.testing.assert_array_equal(scaled["w_in"][:, units], 0.5 * w_in[:, units])
  np.testing.assert_array_equal(scaled["w_in"][:, [0, 2, 3]], w_in[:, [0, 2, 3]])
  scaled = analysis.scale_units(params, units, 0.0, target="recurrent_input")
  assert np.abs(np.asarray(scaled["w_hh"])[:, units]).max() == 0.0
  np.testing.assert_array_equal(scaled["w_hh"][:, [0, 2, 3]], w_hh[:, [0, 2, 3]])

  # With "output" at 0 the units' activity cannot reach anything: rewiring what drives them
  # leaves every logit unchanged.
  silenced = analysis.scale_units(params, units, 0.0, target="output")
  w_in, w_hh = np.array(silenced["w_in"]), np.array(silenced["w_hh"])
  w_in[:, units], w_hh[:, units] = 5.0, -3.0
  rewired = _params(w_in, w_hh, silenced["w_out"])
  inputs = jax.random.normal(jax.random.key(7), (2, 30, 3))
  logits = jax.jit(lambda p: model.run(p, inputs) @ p["w_out"])
  np.testing.assert_allclose(logits(silenced), logits(rewired), atol=1e-12)
  assert np.abs(logits(silenced) - logits(params)).max() > 1e-3  # the rewiring did bite


def test_switching_sweeps():
  params = _random_net(8)
  key = jax.random.key(9)
  sweep = analysis.noise_sweep(params, key, [0.0, 0.5, 2.0], batch=16, length=20, readout="argmax")
  assert sweep.changes_mean.shape == (3,) and sweep.frequencies.shape == (3, 3)
  np.testing.assert_allclose(sweep.frequencies.sum(axis=1), 1.0)
  # No noise from h0 = 0: h stays 0, the logits are 0 and argmax reads symbol 0 throughout.
  assert sweep.changes_mean[0] == 0.0 and sweep.frequencies[0].tolist() == [1.0, 0.0, 0.0]
  # Positive homogeneity: sigma x -> sigma h, so the argmax output is the same at every sigma > 0.
  assert sweep.changes_mean[1] == sweep.changes_mean[2] > 0
  np.testing.assert_array_equal(sweep.frequencies[1], sweep.frequencies[2])
  sampled = analysis.noise_sweep(params, key, [0.0, 2.0], batch=16, length=20)
  assert sampled.changes_mean[0] > 0  # uniform samples from zero logits

  scaling = analysis.changes_per_sequence_under_scaling(
      params, key, np.arange(8), [1.0, 0.0], target="output", noise_std=2.0, batch=16, length=20)
  assert scaling.changes_mean[0] == sweep.changes_mean[2]  # factor 1 is the unscaled network
  assert scaling.changes_mean[1] == 0.0  # every output weight off: constant readout


def test_bad_inputs_name_the_problem():
  params = _random_net(10)
  with pytest.raises(ValueError, match="initial_states"):
    analysis.find_fixed_points(params, jnp.zeros((5, 7)))
  with pytest.raises(ValueError, match="input"):
    analysis.find_fixed_points(params, jnp.zeros((5, 8)), input=jnp.zeros(2))
  with pytest.raises(ValueError, match="states"):
    analysis.autonomous_endpoints(params, jnp.zeros(8))
  with pytest.raises(ValueError, match="inconsistent params"):
    analysis.jacobians(dict(params, w_hh=jnp.zeros((8, 9))), jnp.zeros((1, 8)))
  with pytest.raises(ValueError, match="trajectory"):
    analysis.winding_number(jnp.zeros((10, 3)), jnp.zeros(2))
  with pytest.raises(ValueError, match="center"):
    analysis.winding_number(jnp.zeros((10, 2)), jnp.zeros(3))
  with pytest.raises(ValueError, match="num_components"):
    analysis.principal_components(jnp.zeros((10, 3)), 4)
  with pytest.raises(ValueError, match="integer symbols"):
    analysis.residency_times(jnp.zeros(5))
  with pytest.raises(ValueError, match="equal length"):
    analysis.classify_regions(jnp.zeros(5), jnp.zeros(4))
  with pytest.raises(ValueError, match="cluster"):
    analysis.find_kick_neurons(jnp.ones((4, 8)), jnp.zeros(4, int), top_k=1)
  with pytest.raises(ValueError, match="units must lie"):
    analysis.scale_units(params, [8], 0.0, target="output")
  with pytest.raises(ValueError, match="scaling target"):
    analysis.scale_units(params, [1], 0.0, target="outgoing")
  with pytest.raises(ValueError, match="readout"):
    analysis.noise_sweep(params, jax.random.key(0), [1.0], readout="mode")


def test_kick_neurons_by_ablation_ranks_units_by_their_causal_effect():
  params = model.init(jax.random.key(21), 12, 3, 3)
  params = dict(params, w_hh=params["w_hh"].at[5, :].set(0.0))  # unit 5 sends nothing back
  effects = analysis.kick_neurons_by_ablation(params, jax.random.key(22), top_k=3, batch=64,
                                              length=20)
  assert effects.changes.shape == (12,)
  # common random numbers: silencing a unit that already sends nothing changes nothing, exactly
  assert effects.changes[5] == effects.baseline
  assert effects.changes[effects.units[0]] == effects.changes.min()
  assert not np.all(effects.changes == effects.baseline)  # the other units do matter
  with pytest.raises(ValueError, match="top_k must be in"):
    analysis.kick_neurons_by_ablation(params, jax.random.key(22), top_k=13)


def test_critical_pair_count_by_hand():
  # On the unit circle m = i tan(angle / 2): counted once per conjugate pair, above 0.06.
  on_circle = np.exp(1j * np.array([0.5, -0.5, 0.1, 0.13]))  # tan(0.05) = 0.050 < 0.06 < 0.065
  assert int(analysis.count_critical_pairs(on_circle)) == 2
  # Re m = (r^2 - 1) / |r e^{i a} + 1|^2: r = 1.3 at a = 0.5 gives 0.139, outside 0.1.
  np.testing.assert_allclose(analysis.moebius(1.3 * np.exp(0.5j)).real,
                             0.69 / (2.69 + 2.6 * np.cos(0.5)), rtol=1e-12)
  off_circle = np.array([1.3 * np.exp(0.5j), 1.0 + 0j, -0.5 + 0j])
  assert int(analysis.count_critical_pairs(off_circle)) == 0
  assert analysis.count_critical_pairs(np.ones((4, 3), complex)).shape == (4,)


def _switching_rotation(angle, decay):
  """_rotating_net with a readout that emits symbol 0 while u_0 > 0 and 1 while u_0 < 0."""
  params = _rotating_net(angle, decay)
  w_out = np.zeros((4, 3))
  w_out[0, 0] = w_out[2, 1] = 1.0
  return dict(params, w_out=jnp.asarray(w_out))


def test_critical_pairs_near_changes_on_a_rotation_with_known_jacobians():
  # Two of the four units are active at every step, and every active pair's block is
  # decay * R(angle): each Jacobian has one pair decay * e^{+-i angle} and two zeros.
  key, factors = jax.random.key(5), (0.0, 0.5, 1.0)
  everyone = np.arange(4)
  # decay 0.9 at angle 2 pi / 20: m = -0.054 + 0.15i, one critical pair per step, 30 per window.
  pairs = analysis.critical_pairs_near_changes(_switching_rotation(2 * np.pi / 20, 0.9), key,
                                               everyone, factors, target="recurrent_input",
                                               length=400)
  assert pairs.num_windows[2] > 10 and bool(pairs.own_changes.all())
  np.testing.assert_array_equal(pairs.mean, [0.0, 0.0, 30.0])  # x 0.5 leaves |lam| 0.45
  np.testing.assert_array_equal(pairs.std, [0.0, 0.0, 0.0])
  # mechint.py's pairing (h_t with the input that produced it) has the same blocks here.
  producing = analysis.critical_pairs_near_changes(
      _switching_rotation(2 * np.pi / 20, 0.9), key, everyone, (1.0,), target="recurrent_input",
      length=400, jacobian_input="producing")
  np.testing.assert_array_equal(producing.mean, [30.0])
  # decay 0.7: Re m = -0.18 (not critical); angle 0.05 at decay 1: Im m = 0.025 (not rotating).
  for angle, decay in ((2 * np.pi / 20, 0.7), (0.05, 1.0)):
    none = analysis.critical_pairs_near_changes(_switching_rotation(angle, decay), key, everyone,
                                                (1.0,), target="recurrent_input", length=400)
    np.testing.assert_array_equal(none.mean, [0.0])
  # Scaling a group's noise to 0 silences u_0's sign changes: the intact network's windows.
  frozen = analysis.critical_pairs_near_changes(_switching_rotation(2 * np.pi / 20, 0.9), key,
                                                everyone, (0.0,), target="noise_input", length=400)
  assert not frozen.own_changes[0] and frozen.num_windows[0] == pairs.num_windows[2]
  with pytest.raises(ValueError, match="jacobian_input must be 'next' or 'producing'"):
    analysis.critical_pairs_near_changes(_switching_rotation(0.3, 0.9), key, everyone, (1.0,),
                                         target="recurrent_input", jacobian_input="previous")
  with pytest.raises(ValueError, match="half_window"):
    analysis.critical_pairs_near_changes(_switching_rotation(0.3, 0.9), key, everyone, (1.0,),
                                         target="recurrent_input", length=20, half_window=15)
