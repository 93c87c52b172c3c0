"""The positive control for the kick-neuron analysis: on `planted.kick_network`, whose kick neurons
and noise-integrating population are known by construction, every finder of
`jaxlab.hmm_rnn.analysis` must return what was planted, and every intervention must move switching
as a kick mechanism does (Torre et al. 2025's mechint.py ablations). Measured (float32, batch 512,
3 keys; T = 30 and 100): silencing one kick unit leaves 0.08-0.16 of the switching, any other unit
>= 0.67; the kick units' recurrent input or the integrators' noise at 0 leaves 0.06-0.09, the
integrators' noise doubled gives 1.50-1.64x; the clusters' drive noise halved 1.6x, doubled 0.25x."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.hmm_rnn import analysis
from jaxlab.hmm_rnn import model
from jaxlab.hmm_rnn import planted

LENGTH, BATCH = 100, 256


@pytest.fixture(scope="module")
def network():
  return planted.kick_network()


def test_one_fixed_point_and_clusters_that_only_noise_sustains(network):
  params, units = network
  states = model.run(params, jax.random.normal(jax.random.key(1), (1, 1200, 30)))[0, 200:]
  endpoints = analysis.autonomous_endpoints(params, states[::10], num_steps=500)
  assert float(endpoints.spread) < 1e-6 and float(jnp.abs(endpoints.center).max()) < 1e-6
  residency = analysis.expected_residency_times(params, jax.random.key(2), states)
  regions = analysis.classify_regions(residency, analysis.max_probability(params, states))
  assert float(regions.fractions[analysis.CLUSTER]) > 0.8  # measured 0.875 (3000 states)
  # Both symbols are held: one cluster unit wins at a time (mutual inhibition).
  active = np.asarray(states[:, units.clusters] > 0)
  assert 0.2 < active[:, 0].mean() < 0.8 and np.mean(active.all(axis=1)) < 0.05


def test_ablation_and_activity_find_the_planted_kick_units(network):
  params, units = network
  effects = analysis.kick_neurons_by_ablation(params, jax.random.key(3), top_k=2, batch=BATCH,
                                              length=LENGTH)
  assert sorted(effects.units.tolist()) == units.kick.tolist()
  ratios = effects.changes / effects.baseline
  assert 3.0 < effects.baseline < 7.0  # measured 4.8-5.0 changes per 100 steps
  assert ratios[units.kick].max() < 0.25
  assert np.delete(ratios, units.kick).min() > 0.5

  states = model.run(params, jax.random.normal(jax.random.key(4), (1, 2200, 30)))[0, 200:]
  residency = analysis.expected_residency_times(params, jax.random.key(5), states)
  regions = analysis.classify_regions(residency, analysis.max_probability(params, states))
  found = analysis.find_kick_neurons(states, regions.labels, top_k=2)
  assert sorted(found.units.tolist()) == units.kick.tolist()
  np.testing.assert_array_equal(found.mean_cluster[units.kick] < found.mean_kick[units.kick],
                                [True, True])
  population = analysis.noise_integrating_populations(params, units.kick, top_k=3)
  np.testing.assert_array_equal(population, units.integrators)


def test_interventions_move_switching_as_a_kick_mechanism_does(network):
  params, units = network
  key = jax.random.key(6)
  sweep = lambda group, target, factors: analysis.changes_per_sequence_under_scaling(
      params, key, group, factors, target=target, batch=BATCH, length=LENGTH,
      readout="sample").changes_mean
  kick = sweep(units.kick, "recurrent_input", [0.0, 1.0])
  assert kick[0] < 0.2 * kick[1]
  noise = sweep(units.integrators, "noise_input", [0.0, 1.0, 2.0])
  assert noise[0] < 0.2 * noise[1] and noise[2] > 1.3 * noise[1]
  # A control group as large, active but sending nothing back: under common random numbers its
  # noise changes no emission at all.
  background = sweep(units.background[:6], "noise_input", [0.0, 1.0])
  assert background[0] == background[1]
  # The clusters are noise-sustained: less noise into their drive, more switching (measured 7.9
  # at half, 4.9 intact, 1.2 doubled).
  drive = sweep(units.drive, "noise_input", [0.5, 1.0, 2.0])
  assert drive[0] > 1.3 * drive[1] and drive[2] < 0.5 * drive[1]


def test_bad_construction_is_named():
  with pytest.raises(ValueError, match="cluster_persistence and integrator_persistence"):
    planted.kick_network(cluster_persistence=1.0)
  with pytest.raises(ValueError, match="num_integrators >= 2"):
    planted.kick_network(num_integrators=1)
