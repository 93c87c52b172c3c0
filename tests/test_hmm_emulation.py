"""The HMM-emulating RNN: its straight-through emissions, the Sinkhorn loss (exact cases, floor and
control), emission statistics on hand-made sequences, and the experiment end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.hmm_emulation import config as config_lib
from experiments.hmm_emulation import experiment
from experiments.hmm_emulation import mechanism
from jaxlab import core
from jaxlab.hmm_rnn import analysis
from jaxlab.hmm_rnn import emulation
from jaxlab.hmm_rnn import hmm as hmm_lib
from jaxlab.hmm_rnn import model
from jaxlab.hmm_rnn import statistics
from theory import hmm as theory


def test_straight_through_sample_is_one_hot_with_the_softmax_gradient():
  logits = jnp.array([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
  key = jax.random.key(0)
  sample = model.straight_through_gumbel(key, logits)
  np.testing.assert_array_equal(jnp.sum(sample, -1), 1.0)
  assert set(np.unique(np.asarray(sample))) <= {0.0, 1.0}
  weights = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
  gumbel = jax.random.gumbel(key, logits.shape, logits.dtype)
  straight = jax.grad(lambda l: jnp.sum(weights * model.straight_through_gumbel(key, l)))(logits)
  soft = jax.grad(lambda l: jnp.sum(weights * jax.nn.softmax(l + gumbel, axis=-1)))(logits)
  np.testing.assert_allclose(straight, soft, atol=1e-12)


def test_emissions_start_from_zero_and_scale_with_the_noise():
  params = model.init(jax.random.key(1), 16, 4, 3)
  key = jax.random.key(2)
  small = model.emit(params, key, 5, 20, noise_std=1.0)
  large = model.emit(params, key, 5, 20, noise_std=3.0)
  # bias-free ReLU: hidden states are positively homogeneous in the input from h_0 = 0
  np.testing.assert_allclose(large.hidden, 3.0 * small.hidden, rtol=1e-12, atol=1e-12)
  random_start = model.emit(params, key, 5, 20, noise_std=3.0, initial_state_std=1.0)
  assert float(jnp.max(jnp.abs(random_start.hidden - large.hidden))) > 1e-3
  with pytest.raises(ValueError, match=r"inputs must be \[batch, time, 4\]"):
    model.run(params, jnp.ones((2, 3, 5)))


def test_sinkhorn_divergence_exact_cases():
  divergence = jax.jit(emulation.sinkhorn_divergence)  # one compile per shape, not op by op
  x = jnp.array([[0.0, 1.0, 2.0]])
  y = jnp.array([[1.0, -1.0, 2.0]])
  # one point each: every plan is the product plan, so S = c(x, y) = |x - y|^2 / 2 = 2.5
  np.testing.assert_allclose(divergence(x, y), 2.5, rtol=1e-6)
  cloud = jax.random.normal(jax.random.key(3), (40, 6))
  assert abs(float(divergence(cloud, cloud))) < 1e-6
  permuted = cloud[jax.random.permutation(jax.random.key(4), 40)]
  assert abs(float(divergence(cloud, permuted))) < 1e-6
  other = cloud + jnp.array([1.0, 0, 0, 0, 0, 0])[None, :]
  # a rigid shift by v costs |v|^2 / 2 for the debiased divergence up to O(eps) terms
  np.testing.assert_allclose(divergence(cloud, other), 0.5, rtol=0.05)
  with pytest.raises(ValueError, match="equal dim"):
    emulation.sinkhorn_divergence(cloud, other[:, :5])


def test_geomloss_estimate_exact_cases_schedule_and_gradient():
  divergence = jax.jit(emulation.geomloss_divergence)
  x = jnp.array([[0.0, 1.0, 2.0]])
  y = jnp.array([[1.0, -1.0, 2.0]])
  np.testing.assert_allclose(divergence(x, y), 2.5, rtol=1e-12)  # one point each: c(x, y)
  cloud = jax.random.normal(jax.random.key(3), (40, 6))
  assert float(divergence(cloud, cloud)) == 0.0  # symmetric updates: f_ba = f_aa exactly
  shift = jnp.array([1.0, 0, 0, 0, 0, 0])
  # a rigid shift by v: |v|^2 / 2, and Danskin's gradient (x_i - T(x_i)) / N = -v / 40 per point
  np.testing.assert_allclose(divergence(cloud, cloud + shift[None, :]), 0.5, rtol=1e-6)
  grad = jax.grad(emulation.geomloss_divergence)(cloud, cloud + shift[None, :])
  np.testing.assert_allclose(grad, jnp.broadcast_to(-shift / 40, grad.shape), atol=1e-6)
  # Gaussian clouds converge within the schedule: it matches a converged ott solve
  other = 1.3 * cloud + 0.2
  np.testing.assert_allclose(divergence(cloud, other), emulation.sinkhorn_divergence(
      cloud, other, emulation.CONVERGED_SINKHORN), rtol=1e-6)
  # geomloss's schedule for flattened one-hot sequences of T = 100 (diameter sqrt(300)), blur 0.2,
  # scaling 0.5: 300, then 300 / 4^k while above 0.04, then 0.04, by hand
  eps, length = emulation.geomloss_epsilons(jnp.sqrt(300.0), 0.2, 0.5)
  np.testing.assert_allclose(eps[:int(length)], [300, 300, 75, 18.75, 4.6875, 1.171875,
                                                 0.29296875, 0.0732421875, 0.04], rtol=1e-12)
  with pytest.raises(ValueError, match="scaling must be in"):
    emulation.geomloss_divergence(x, y, scaling=1.0)
  with pytest.raises(ValueError, match="unknown Sinkhorn solver 'pot'"):
    emulation.sequence_divergence(jnp.zeros((2, 3, 3)), jnp.zeros((2, 3, 3)),
                                  emulation.SinkhornConfig(solver="pot"))


def test_the_papers_loss_estimate_prefers_slow_chains_even_at_t30():
  """The paper's code scores batches with geomloss's ~10-iteration estimate, not a converged solve.
  On batches of "two" at T = 30 (batch 512) it reads lower than the converged divergence (measured
  1.65 against 1.99) and, unlike the converged one (+0.8 s.d. in the T = 100 test below), it scores
  a chain that switches 0.7x as often far below the floor (measured -6.2 s.d.): the loss that the
  paper's networks were trained and selected on rewards slow switching at every length."""
  two = hmm_lib.by_name("two")
  paper = emulation.SinkhornConfig(solver="geomloss")
  floor = emulation.noise_floor(jax.random.key(0), two, 512, 30, 6, paper)
  slower, _ = emulation.divergence_between(jax.random.key(1), two,
                                           hmm_lib.scale_switching(two, 0.7), 512, 30, 6, paper)
  converged = emulation.noise_floor(jax.random.key(0), two, 512, 30, 2)  # same batches, ott
  assert floor.noise_floor_mean < converged.noise_floor_mean - 0.15, (floor, converged)
  assert (slower - floor.noise_floor_mean) / floor.noise_floor_std < -4, (slower, floor)
  assert floor.shuffled_mean > floor.noise_floor_mean + 20 * floor.noise_floor_std, floor


def test_noise_floor_lies_below_the_time_shuffled_control():
  floor = emulation.noise_floor(jax.random.key(5), hmm_lib.by_name("two"), 128, 20, repeats=4)
  # shuffling keeps every sequence's symbol counts but destroys runs: far above the floor
  assert floor.shuffled_mean > floor.noise_floor_mean + 5 * floor.noise_floor_std  # 9 s.d. here
  assert floor.shuffled_mean > 1.5 * floor.noise_floor_mean


def test_divergence_between_hmms_resolves_large_differences_only():
  two = hmm_lib.by_name("two")
  key = jax.random.key(6)
  floor = emulation.noise_floor(key, two, 128, 20, repeats=4)
  same = emulation.divergence_between(key, two, two, 128, 20, repeats=4)
  # the same HMM against itself is the floor (other draws, so within its spread)
  assert abs(same[0] - floor.noise_floor_mean) < 3 * floor.noise_floor_std + 3 * same[1]
  # a chain that switches 5x as often is far off
  fast = emulation.divergence_between(key, two, hmm_lib.scale_switching(two, 5.0), 128, 20, 4)
  assert fast[0] > floor.noise_floor_mean + 5 * floor.noise_floor_std
  with pytest.raises(ValueError, match="emit 2 and 3 symbols"):
    emulation.divergence_between(key, two, hmm_lib.make([1.0], [[1.0]], [[0.5, 0.5]]), 8, 4)


def test_disagreement_between_readouts_by_distance_to_the_reference_changes():
  reference = jnp.array([[0, 0, 0, 2, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1, 1]])
  np.testing.assert_array_equal(statistics.distance_to_nearest_change(reference),
                                [[3, 2, 1, 0, 1, 2, 3, 4], [8] * 8])  # never changes: T
  # a dithered switch (t = 2 and 4, next to the change at t = 3) and one flip far from any change
  sampled = jnp.array([[0, 0, 2, 2, 0, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1, 0]])
  differ, fraction = statistics.disagreement_by_distance(jax.nn.one_hot(sampled, 3), reference, 3)
  np.testing.assert_allclose(differ, [0.0, 1.0, 0.0, 1 / 11])
  np.testing.assert_allclose(fraction, np.array([1, 2, 2, 11]) / 16)
  with pytest.raises(ValueError, match="differ in shape"):
    statistics.disagreement_by_distance(sampled[:, :4], reference, 3)


def test_at_the_papers_length_a_finite_batch_prefers_a_slower_chain_unless_the_blur_is_large():
  """The loss is estimated from finite batches, and at T = 100 (the paper's length for "two") the
  estimate's bias favours slow switching: at batch 512 a chain switching 0.7x as often as the HMM
  scores below the floor (measured -6.1 floor s.d. on these draws, -4.6 on others; the optimum
  near 0.65x; at batch 2048 near 0.7x, -6.7 s.d.), so a network can score under the floor by
  switching too rarely. At T = 30 the same chain is within the floor's spread (measured +0.8 s.d.):
  the bias grows with the sequence length. A blur of 3 (eps = 9, in Hamming distance) removes it at
  T = 100: the 0.7x chain scores above the floor (measured +1.4 s.d. here, +3.9 on other draws),
  and the time-shuffled control stays far above it (97 s.d.)."""
  two, slower = hmm_lib.by_name("two"), hmm_lib.scale_switching(hmm_lib.by_name("two"), 0.7)
  z = {}
  for length, blur in ((100, 0.2), (30, 0.2), (100, 3.0)):
    sinkhorn = emulation.SinkhornConfig(blur=blur)
    k_floor, k_slower = jax.random.split(jax.random.key(length))
    floor = emulation.noise_floor(k_floor, two, 512, length, 6, sinkhorn)
    mean, _ = emulation.divergence_between(k_slower, two, slower, 512, length, 6, sinkhorn)
    z[length, blur] = (mean - floor.noise_floor_mean) / floor.noise_floor_std
    shuffled_z = (floor.shuffled_mean - floor.noise_floor_mean) / floor.noise_floor_std
    assert shuffled_z > 20, (length, blur, shuffled_z)
  assert z[100, 0.2] < -3 and z[30, 0.2] > -2 and z[100, 0.2] < z[30, 0.2] - 4, z
  assert z[100, 3.0] > 0 and z[100, 3.0] > z[100, 0.2] + 4, z


def test_weighted_points_are_repeated_points():
  # A batch of short sequences repeats many exactly: its distinct rows weighted by their counts
  # must give the batch's divergence (the exact laws below rely on it), both solved to
  # convergence (marginals to 1e-7) at blur 0.5, where that takes few iterations (the identity
  # holds at any blur). They agree to 1e-13; ignoring the weights gives 0.52 instead of 0.036.
  # The loss's 200-iteration budget stops short of convergence on such batches, at different
  # iterates (at blur 0.2: 0.0757 and 0.0768 against the converged 0.0783).
  two = hmm_lib.by_name("two")
  a = jax.nn.one_hot(hmm_lib.sample(jax.random.key(0), two, 256, 3)[1], 3)
  b = jax.nn.one_hot(hmm_lib.sample(jax.random.key(1), two, 128, 3)[1], 3)
  rows, counts = np.unique(np.asarray(emulation.flatten(a)), axis=0, return_counts=True)
  assert len(rows) < 40  # so the check is a real compression
  converged = emulation.CONVERGED_SINKHORN._replace(blur=0.5)
  batch = emulation.sequence_divergence(a, b, converged)
  weighted = emulation.sinkhorn_divergence(jnp.asarray(rows), emulation.flatten(b), converged,
                                           x_weights=jnp.asarray(counts / counts.sum()))
  np.testing.assert_allclose(float(weighted), float(batch), rtol=1e-9)
  with pytest.raises(ValueError, match=r"x_weights must be \[4\]"):
    emulation.sinkhorn_divergence(jnp.zeros((4, 2)), jnp.zeros((3, 2)), x_weights=jnp.ones(3) / 3)


def test_exact_sequence_law_is_the_brute_force_likelihood():
  two = hmm_lib.by_name("two")
  law = emulation.sequence_law(two, 4)
  assert law.symbols.shape == (81, 4, 3)
  np.testing.assert_allclose(law.probabilities.sum(), 1.0, rtol=1e-12)
  for index in (0, 17, 80):
    symbols = np.argmax(law.symbols[index], axis=-1)
    exact = theory.enumerate_loglik(two.initial, two.transition, two.emission, symbols)
    np.testing.assert_allclose(np.log(law.probabilities[index]), exact, rtol=1e-9)
  # without its noise symbol, "two" emits only the 2^4 sequences of symbols 0 and 2
  assert emulation.sequence_law(hmm_lib.without_rare_symbols(two), 4).symbols.shape == (16, 4, 3)
  with pytest.raises(ValueError, match="3\\^11 = 177147 sequences exceed"):
    emulation.sequence_law(two, 11)


def test_unregularised_transport_to_the_symbol_free_hmm_costs_the_expected_rare_count():
  """theory.rare_symbol_transport_cost against an exact linear program over the two laws
  (T = 4: 81 x 16 sequences, Hamming cost), to 1e-9; and for a non-stationary start."""
  from scipy.optimize import linprog
  two = hmm_lib.by_name("two")
  start = np.array([0.9, 0.1])
  for hmm in (two, two._replace(initial=jnp.asarray(start))):
    source = emulation.sequence_law(hmm, 4)
    target = emulation.sequence_law(hmm_lib.without_rare_symbols(hmm), 4)
    x = source.symbols.reshape(len(source.symbols), -1)
    y = target.symbols.reshape(len(target.symbols), -1)
    cost = 0.5 * ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)  # the Hamming distance
    n, m = cost.shape
    # the last target marginal follows from the others (both laws sum to 1): dropped, so that
    # rounding in the two sums cannot make the system inconsistent
    marginals = np.concatenate([np.kron(np.eye(n), np.ones((1, m))),
                                np.kron(np.ones((1, n)), np.eye(m))[:-1]])
    solution = linprog(cost.ravel(), A_eq=marginals,
                       b_eq=np.concatenate([source.probabilities, target.probabilities[:-1]]),
                       bounds=(0, None), method="highs",
                       options={"primal_feasibility_tolerance": 1e-10,
                                "dual_feasibility_tolerance": 1e-10})
    assert solution.status == 0
    expected = theory.rare_symbol_transport_cost(hmm.initial, hmm.transition, hmm.emission, 4, [1])
    np.testing.assert_allclose(solution.fun, expected, rtol=1e-9)
  np.testing.assert_allclose(expected, 0.01 * np.sum(start) * 4, rtol=1e-12)  # .01 in every state


def test_population_divergence_to_the_symbol_free_hmm_tends_to_the_transport_cost():
  """S_eps between the exact laws (T = 4) rises to the unregularised cost .01 T as eps -> 0:
  within 2% at blur 0.05; at the loss's blur 0.2 it is 0.885 of it. An HMM against itself: 0."""
  two = hmm_lib.by_name("two")
  free = hmm_lib.without_rare_symbols(two)
  cost = theory.rare_symbol_transport_cost(two.initial, two.transition, two.emission, 4, [1])
  at_loss_blur, small_blur = (emulation.population_divergence(
      two, free, 4, emulation.CONVERGED_SINKHORN._replace(blur=blur)) for blur in (0.2, 0.05))
  assert at_loss_blur < small_blur < cost
  np.testing.assert_allclose(small_blur, cost, rtol=0.02)
  np.testing.assert_allclose(at_loss_blur, 0.885 * cost, rtol=0.01)
  assert abs(emulation.population_divergence(two, two, 4)) < 1e-5 * cost  # solver tol.


def test_emission_statistics_on_a_hand_made_batch():
  symbols = jnp.array([[0, 0, 2, 2, 2], [1, 0, 0, 0, 0]])
  np.testing.assert_array_equal(statistics.changes_per_sequence(symbols), [1, 1])
  np.testing.assert_allclose(statistics.symbol_frequencies(symbols, 3), [0.6, 0.1, 0.3])
  bigrams = statistics.bigram_frequencies(symbols, 3)  # 8 pairs: 00 x4, 02, 22 x2, 10
  np.testing.assert_allclose(bigrams, np.array([[4, 0, 1], [1, 0, 0], [0, 0, 2]]) / 8)
  repeats = np.asarray(statistics.repeat_probabilities(symbols, 3))
  np.testing.assert_allclose(repeats[[0, 2]], [0.8, 1.0])
  onehot = jax.nn.one_hot(symbols, 3)
  np.testing.assert_array_equal(statistics.changes_per_sequence(onehot), [1, 1])


def _tiny_config():
  config = config_lib.get_config("quick")
  config.update(hidden_size=16, batch_size=64, length=10, num_steps=20, log_every=10,
                checkpoint_every=20, floor_repeats=2, eval_batches=2, stats_sequences=200,
                analysis_length=300, fixed_point_steps=200, population_size=5,
                critical_pairs_length=300)
  return config


def test_experiment_smoke_run_writes_every_output_and_trains_in_two_stages(tmp_path):
  config = _tiny_config()
  config.update(large_batch_size=128, large_batch_steps=20)
  result = experiment.run(config, str(tmp_path))
  names = [c.quantity for c in result["comparisons"]]
  assert any("noise floor" in n for n in names) and any("fixed points" in n for n in names)
  for figure in ("emulation_two", "mechanism_two", "evolution_two", "kick_control",
                 "critical_pairs"):
    assert (tmp_path / "figures" / f"{figure}.png").stat().st_size > 0
  # The positive control is analysed beside the trained network, and its kick units are found.
  planted_rows = [c for c in result["comparisons"] if c.quantity.startswith(mechanism.PLANTED)]
  assert len(planted_rows) == 6 and planted_rows[0].passed, planted_rows[0].as_dict()
  assert sum("kick neurons: silencing" in n for n in names) == 2  # two's row and the control's
  study = result["studies"]["two"]
  assert np.all(np.isfinite(study["loss"]))
  # the near-miss emulators scored at the judging batch: exact repeat probabilities of their chains
  assert sorted(study["resolution"]) == ["faster", "noise_free", "slower"]
  repeats = {k: study["resolution"][k]["repeat"][0] for k in ("faster", "slower")}
  assert repeats["faster"] < 0.9405 < repeats["slower"], repeats
  homogeneity = [c for c in result["comparisons"] if "homogeneity" in c.quantity][0]
  assert homogeneity.passed  # an exact identity, trained or not
  # The larger-batch stage continues from the first, and the network is judged at its batch.
  np.testing.assert_array_equal(study["steps"], [10, 20, 30, 40])
  assert list(study["floors"]) == [128, 64] and study["floor"] is study["floors"][128]
  template = core.init_train_state(study["params"], experiment.make_optimizer(config),
                                   jax.random.key(0))

  def params(run, step):
    checkpointer = core.Checkpointer(tmp_path / "checkpoints" / run, every=1)
    try:
      return checkpointer.restore(step, template).params
    finally:
      checkpointer.close()

  first, second = params("rnn_two", 20), params("rnn_two_large_batch", 20)
  jax.tree.map(np.testing.assert_array_equal, second, study["params"])
  assert not np.allclose(first["w_hh"], second["w_hh"])
  np.testing.assert_array_equal(study["evolution"]["steps"], [0, 20])  # the first stage's snapshots
  curves = json.loads((tmp_path / "curves.json").read_text())["two"]
  np.testing.assert_array_equal(curves["training"]["loss"], study["loss"])
  np.testing.assert_array_equal(curves["evolution"]["cluster_fraction"],
                                study["evolution"]["cluster_fraction"])
  assert curves["evolution"]["switch_step"] == study["evolution"]["switch_step"]
  assert curves["floors"]["128"]["noise_floor_mean"] == study["floors"][128].noise_floor_mean
  # both readouts of the same runs, scored on the same batches
  readout, rnn = curves["readout"], study["rnn"]
  assert rnn["argmax_divergences"].shape == rnn["divergences"].shape == (config.eval_batches,)
  assert readout["argmax_divergence"] == pytest.approx(rnn["argmax_divergences"].mean())
  assert len(readout["p_sample_differs_by_distance_to_argmax_change"]) == 11
  assert sum(readout["fraction_of_steps_by_distance"]) == pytest.approx(1.0)
  slower = study["resolution"]["slower"]["divergence"]
  assert curves["near_misses"]["slower"]["divergence"] == slower
  # The paper's critical-pair rows come with the groups they scale (none without cluster states).
  mech = study["mechanism"]
  critical_rows = [n for n in names if "critical" in n]
  if mech["kick"] is None:
    assert not critical_rows and curves["critical_pairs"]["kick_critical"] is None
  else:
    assert len(critical_rows) == 5
    assert curves["critical_pairs"]["kick_critical"]["mean"] == mech["kick_critical"].mean.tolist()


def test_resolution_study_smoke_and_its_extrapolation(tmp_path):
  from experiments.hmm_emulation import resolution
  config = _tiny_config()
  config.update(hmms=("two", "fully"), resolution_lengths=(30,), resolution_batch_sizes=(32,),
                resolution_repeats=2, exact_lengths=(3,), rival_switching_factors=(0.5, 1.5))
  result = resolution.run(config, str(tmp_path))
  assert list(result["results"]) == ["two"]  # fully has no rare symbol
  names = [c.quantity for c in result["comparisons"]]
  assert len(names) == 3 and "exact laws at T = 3" in names[0] and "batch 32" in names[1]
  assert "no chain switching 0.5, 1.5 x as often" in names[2]
  cell = result["results"]["two"]["batches"][0]
  assert [r["factor"] for r in cell["switching_rivals"]] == [0.5, 1.5]
  best = resolution.best_rival(cell)
  assert best["divergence"] == min(r["divergence"] for r in cell["switching_rivals"])
  row = result["comparisons"][2]
  assert row.simulation == best["divergence"]
  assert row.theory == pytest.approx(cell["floor"] - 3 * cell["floor_std"])
  assert "x0.5:" in result["report"] and "x1.5:" in result["report"]
  exact = result["results"]["two"]["exact"][0]
  np.testing.assert_allclose(exact["transport_cost"], 0.03, rtol=1e-12)
  assert exact["divergence"] < exact["small_blur_divergence"] < exact["transport_cost"]
  assert (tmp_path / "figures" / "resolution_two.png").stat().st_size > 0
  assert (tmp_path / "resolution.json").exists() and (tmp_path / "results.json").exists()
  # the extrapolation: a floor falling exactly as 2 / sqrt(B) reaches a cost of 0.1 at B = 400
  rows = [{"length": 5, "batch_size": b, "floor": 2 / np.sqrt(b), "transport_cost": 0.1}
          for b in (16, 64, 256)]
  fit = resolution.extrapolate(rows)[5]
  np.testing.assert_allclose([fit["exponent"], fit["batch_at_transport_cost"]], [-0.5, 400.0],
                             rtol=1e-9)
  config.hmms = ("fully",)
  with pytest.raises(ValueError, match="none of config.hmms=\\('fully',\\) has a symbol rarer"):
    resolution.run(config, str(tmp_path))
  config.hmms, config.exact_lengths = ("two",), (12,)
  with pytest.raises(ValueError, match="3\\^12 sequences are too many"):
    resolution.run(config, str(tmp_path))
  config.exact_lengths, config.rival_switching_factors = (3,), (0.5, 1.0)
  with pytest.raises(ValueError, match="rival_switching_factors must be positive and != 1"):
    resolution.run(config, str(tmp_path))
  config.rival_switching_factors = (25.0,)  # would switch with probability 1.25
  with pytest.raises(ValueError, match="25.0 is too large for 'two'"):
    resolution.run(config, str(tmp_path))


def test_paper_losses_study_smoke(tmp_path):
  from experiments.hmm_emulation import paper_losses
  config = _tiny_config()
  config.update(paper_hmms=("two", "fully"), paper_validation_sequences=300,
                paper_validation_batch=128, paper_repeats=2, rival_switching_factors=(0.5, 25.0))
  assert paper_losses.batch_starts(config) == [0, 128, 256]  # batches of 128, 128 and 44
  result = paper_losses.run(config, str(tmp_path))
  two = result["results"]["two"]
  assert two["length"] == 100 and two["epochs"] == 500 and two["networks"] == 36
  assert two["reported_median"] == 9.9 and two["reported_min"] == 9.6
  assert result["results"]["fully"]["epochs"] == 1000
  assert two["floor"] < two["shuffled"] and two["best_epoch"] < two["floor"] + 3 * two["floor_std"]
  row = result["comparisons"][0]
  assert row.simulation == pytest.approx(9.95)
  assert row.theory == pytest.approx(two["best_epoch"] - 3 * two["floor_std"])
  assert "two (T = 100): released 9.6-10.1" in result["report"]
  assert [r["factor"] for r in two["switching_rivals"]] == [0.5]
  assert [r["factor"] for r in two["deterministic_rivals"]] == [1.0, 0.5]
  # the symbol-free chain scores below the perfect emulator even on these small batches
  assert two["deterministic_rivals"][0]["loss"] < two["floor"]
  assert two["impossible_factors"] == [25.0] and "x25 impossible" in result["report"]
  assert (tmp_path / "figures" / "paper_losses.png").stat().st_size > 0
  assert (tmp_path / "paper_losses.json").exists()
  # the interpolated switching rate: halfway between a 0.5x chain at 1.0 and the floor at 2.0
  chains = [{"factor": 1.0, "loss": 2.0}, {"factor": 0.5, "loss": 1.0}]
  assert paper_losses.implied_factors(1.5, chains) == pytest.approx([0.75])
  assert paper_losses.implied_factors(0.5, chains) == []
  # not monotone: 1.5 is scored between 0.5 and 0.7 and again between 0.85 and 1
  chains = [{"factor": 0.5, "loss": 1.6}, {"factor": 0.7, "loss": 1.4},
            {"factor": 0.85, "loss": 1.4}, {"factor": 1.0, "loss": 2.0}]
  assert paper_losses.implied_factors(1.5, chains) == pytest.approx([0.6, 0.85 + 0.15 / 6])
  # a network scored on the same protocol: an untrained one emits near-i.i.d. symbols, so both
  # readouts score far above the perfect emulator (the argmax one, all one symbol, even higher)
  params = model.init(jax.random.key(0), 8, 3, 3)
  scores = paper_losses.network_losses(config, params, "two", jax.random.key(1))
  assert scores["sampled"] > two["floor"] + 10 * two["floor_std"], (scores, two)
  assert scores["sampled_std"] > 0 and scores["argmax"] > two["floor"]
  with pytest.raises(ValueError, match="the network emits 4 symbols, 'two' 3"):
    paper_losses.network_losses(config, model.init(jax.random.key(0), 8, 3, 4), "two",
                                jax.random.key(1))
  config.paper_hmms = ("two", "seven")
  with pytest.raises(ValueError, match="paper_hmms must name HMMs with released networks"):
    paper_losses.run(config, str(tmp_path))


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(hmms=("two", "seven")), "seven"),
    (lambda c: c.update(sinkhorn_solver="pot"), "sinkhorn_solver must be one of"),
    (lambda c: c.update(large_batch_steps=15), "large_batch_steps=15 must be >= 0 and a multiple"),
    (lambda c: c.update(batch_size=0), "config.batch_size must be positive"),
    (lambda c: c.update(floor_repeats=1), "must be >= 2"),
])
def test_bad_config_is_named(tmp_path, change, message):
  config = _tiny_config()
  change(config)
  with pytest.raises(ValueError, match=message):
    experiment.run(config, str(tmp_path))


@pytest.mark.slow
def test_quick_variant_reaches_the_floor_and_the_hmm_statistics(tmp_path):
  config = config_lib.get_config("quick")
  with jax.enable_x64(config.x64):  # the config's precision (float32), as `make demo` runs it
    result = experiment.run(config, str(tmp_path))
  # Kick neurons are not reproduced in our trained networks (README): those rows (switching, and
  # the paper's critical-pair measure) are reported, and must pass on the planted control only.
  two = result["studies"]["two"]["mechanism"]
  not_reproduced = {c.quantity for c in mechanism.kick_comparisons("two", two)
                    + mechanism.critical_pair_comparisons("two", two)}
  failed = [c.as_dict() for c in result["comparisons"]
            if not c.passed and c.quantity not in not_reproduced]
  assert not failed, failed
  assert len(not_reproduced) == 8
  assert any(c.quantity.startswith(mechanism.PLANTED) for c in result["comparisons"])


@pytest.mark.slow
def test_no_affordable_batch_prefers_the_hmm_with_its_noise_symbol(tmp_path):
  """The resolution study's quick variant (float32, as run from the command line): the exact laws
  reach the transport cost as eps -> 0 (2%), the symbol-free HMM scores below the floor at
  batches 256-1024 (T = 30), and the floor's power law reaches the transport cost only beyond
  the paper's batch of 4096 by more than an order of magnitude (measured: 2.5e5). At T = 30 no
  chain switching 0.5-1.2x as often scores more than 3 s.d. below the floor (at T = 100 one does:
  the fast test above)."""
  from experiments.hmm_emulation import resolution
  config = config_lib.get_config("quick")
  with jax.enable_x64(config.x64):
    result = resolution.run(config, str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  assert result["results"]["two"]["extrapolation"][30]["batch_at_transport_cost"] > 4e4


@pytest.mark.slow
def test_the_papers_released_networks_score_below_a_perfect_emulator_on_their_own_loss(tmp_path):
  """On the paper's validation protocol and loss (geomloss's estimate), the released "two" and
  "cyclic" networks' reported losses (medians 9.9 and 5.5) lie far below what a perfect emulator
  scores (measured 11.77 +- 0.05 and 6.31 +- 0.03, best of 500 epochs 11.57 and 6.22), and below
  every chain with the HMM's emissions that switches 0.5-1.2x as often (>= 10.53 and 6.01), and
  no lower than the best chain with deterministic emissions (two, i.e. without the 1% symbol:
  9.63 at 0.5x, 10.89 at 1x; cyclic: 4.85-5.25). 4-7 min on 2 cores."""
  from experiments.hmm_emulation import paper_losses
  config = config_lib.get_config()
  config.update(paper_hmms=("two", "cyclic"), paper_repeats=3)
  result = paper_losses.run(config, str(tmp_path))
  for name in ("two", "cyclic"):
    m = result["results"][name]
    assert m["reported_max"] < m["floor"] - 10 * m["floor_std"], m
    assert m["reported_max"] < min(r["loss"] for r in m["switching_rivals"]), m
    assert min(r["loss"] for r in m["deterministic_rivals"]) <= m["reported_median"], m
  assert [row.passed for row in result["comparisons"]] == [False, False]


def test_critical_pair_rows_state_the_papers_ablation_figure():
  settings = np.array(mechanism.SCALING_FACTORS)

  def pairs(at_zero, intact):
    mean = np.interp(settings, [0.0, 1.0, 2.0], [at_zero, intact, intact])
    return analysis.CriticalPairs(settings, mean, np.ones_like(mean), np.full(len(settings), 20),
                                  np.ones(len(settings), bool))

  def rows(kick, population, control):
    result = {"kick": object(), "kick_critical": kick, "correlational_kick_critical": kick,
              "population_critical": population, "population_control_critical": control}
    return mechanism.critical_pair_comparisons("two", result)

  # The paper's median run (intact 7.6; ratios 0.42, 0.40, 0.92) passes every row.
  paper = rows(pairs(0.42 * 7.6, 7.6), pairs(0.40 * 7.6, 7.6), pairs(0.92 * 7.6, 7.6))
  assert [r.passed for r in paper] == [True] * 5, [r.as_dict() for r in paper]
  np.testing.assert_allclose([r.simulation for r in paper], [7.6, 0.42, 0.42, 0.40, 0.92])
  assert "20 windows" in paper[0].quantity
  # Few critical pairs, and removal that changes nothing: the intact and three effect rows fail.
  flat = rows(pairs(0.3, 0.3), pairs(0.3, 0.3), pairs(0.3, 0.3))
  assert [r.passed for r in flat] == [False, False, False, False, True]
  # None at all: the ratios are undefined and fail.
  none = rows(pairs(0.0, 0.0), pairs(0.0, 0.0), pairs(0.0, 0.0))
  assert np.isnan(none[1].simulation) and not any(r.passed for r in none)
  assert mechanism.critical_pair_comparisons("two", {"kick": None}) == []


def test_best_checkpoint_selection_scores_every_checkpoint_on_one_validation_set(tmp_path):
  from experiments import common
  from experiments.hmm_emulation import paper_losses
  from experiments.hmm_emulation import select
  config = _tiny_config()
  config.update(num_steps=40, checkpoint_every=10, paper_validation_sequences=300,
                paper_validation_batch=128)
  workdir = str(tmp_path)
  with pytest.raises(FileNotFoundError, match="config.json is missing"):
    select.run(config, workdir)
  common.start_run(config, workdir)
  experiment.train_emulator(config, hmm_lib.by_name("two"), "two", workdir)
  key = jax.random.key(4)
  scores = select.score_checkpoints(config, workdir, "two", key)
  assert scores["steps"] == [10, 20, 30, 40]
  assert scores["best_step"] == scores["steps"][int(np.argmin(scores["sampled"]))]
  # The checkpoint at step 20 rescored by hand: the fixed validation keys, its own network keys.
  score = paper_losses.validation_scorer(config, "two", length=config.length)
  k_validation, k_network = jax.random.split(key)
  by_hand = score(select.restore(config, workdir, "two", 20),
                  jax.random.split(jax.random.fold_in(k_network, 1), 3),
                  jax.random.split(k_validation, 3))
  np.testing.assert_allclose([scores["sampled"][1], scores["argmax"][1]], by_hand, rtol=1e-6)
  result = select.run(config, workdir)
  names = [c.quantity for c in result["comparisons"]]
  best = result["results"]["two"]["scores"]["best_step"]
  assert names[0] == f"two, best checkpoint (step {best}): output changes per sequence"
  assert any("fixed points" in n for n in names)
  assert (tmp_path / "selection" / "figures" / "selection.png").stat().st_size > 0
  assert json.loads((tmp_path / "selection" / "selection.json").read_text())["two"]["steps"] == [
      10, 20, 30, 40]
  config.hidden_size = 32
  with pytest.raises(ValueError, match="hidden_size: run 16, now 32"):
    select.run(config, workdir)
