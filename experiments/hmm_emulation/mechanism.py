"""Reverse engineering a trained HMM-emulating RNN (Torre et al. 2025, sec. 4-5; Sussillo & Barak 2013).

`analyse(config, params, key)` reads the mechanism off a trained network with
`jaxlab.hmm_rnn.analysis`: the noise-free dynamics from on-trajectory states and the fixed-point
finder (one fixed point, and for a bias-free ReLU network it is h = 0), its Jacobian's spectrum, the
noise-driven trajectory on its top principal components (winding around the fixed point against a
time-shuffled control), residency-time regions (clusters, kick zones, transitions), kick neurons and
the noise-integrating populations that drive them, and the switching rate as either group is scaled
(against a random group of the same size). `exact_homogeneity` checks the identity behind every
noise sweep of this model: from h_0 = 0, noise s.d. sigma gives hidden states sigma h exactly.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from jaxlab.hmm_rnn import analysis
from jaxlab.hmm_rnn import model

SCALING_FACTORS = tuple(np.round(np.arange(0.0, 2.01, 0.25), 2))  # mechint.py sweeps 0..2


def exact_homogeneity(params, key, noise_std: float) -> float:
  """max |h(sigma x) - sigma h(x)| / max |sigma h(x)| over a noise-driven run from h_0 = 0."""
  inputs = jax.random.normal(key, (8, 50, params["w_in"].shape[0]))
  scaled = model.run(params, noise_std * inputs)
  reference = noise_std * model.run(params, inputs)
  return float(jnp.max(jnp.abs(scaled - reference)) / jnp.max(jnp.abs(reference)))


def analyse(config, params, key) -> dict[str, Any]:
  k_traj, k_fp, k_orbit, k_rt, k_scale, k_home = jax.random.split(key, 6)
  d = params["w_in"].shape[0]
  hidden_size = params["w_hh"].shape[0]
  # A long noise-driven trajectory: the states the network visits while it emits.
  inputs = config.noise_std * jax.random.normal(k_traj, (1, 200 + config.analysis_length, d))
  states = model.run(params, inputs)[0, 200:]
  starts = states[jax.random.choice(k_fp, states.shape[0], (100,), replace=False)]
  autonomous = analysis.autonomous_endpoints(params, starts, num_steps=500)
  fixed = analysis.find_fixed_points(params, starts, num_steps=config.fixed_point_steps)
  orbit = analysis.orbit_winding(params, k_orbit, autonomous.center, noise_std=config.noise_std,
                                 length=config.analysis_length)
  residency = analysis.expected_residency_times(params, k_rt, states, noise_std=config.noise_std)
  regions = analysis.classify_regions(residency, analysis.max_probability(params, states))
  labels = np.asarray(regions.labels)
  has_both = (np.any(labels == analysis.CLUSTER)
              and np.any((labels == analysis.KICK_ZONE) | (labels == analysis.TRANSITION)))
  kick = population = None
  sweeps = dict.fromkeys(["kick_scaling", "kick_control_scaling", "population_scaling",
                          "population_control_scaling"])
  if has_both:  # an untrained network has no clusters: nothing to kick out of
    kick = analysis.find_kick_neurons(states, regions.labels, top_k=config.num_kick_neurons)
    population = analysis.noise_integrating_populations(params, kick.units,
                                                        top_k=config.population_size)
    rng = np.random.default_rng(config.seed)
    control_kick = rng.choice(np.setdiff1d(np.arange(hidden_size), kick.units),
                              len(kick.units), replace=False)
    control_population = rng.choice(np.setdiff1d(np.arange(hidden_size), population),
                                    len(population), replace=False)
    sweep = lambda units, target: analysis.changes_per_sequence_under_scaling(
        params, k_scale, units, SCALING_FACTORS, target=target, batch=512, length=config.length,
        noise_std=config.noise_std, burn_in=20, readout="sample")
    sweeps = {"kick_scaling": sweep(kick.units, "recurrent_input"),
              "kick_control_scaling": sweep(control_kick, "recurrent_input"),
              "population_scaling": sweep(population, "noise_input"),
              "population_control_scaling": sweep(control_population, "noise_input")}
  return {
      "states": np.asarray(states), "autonomous": autonomous, "fixed": fixed, "orbit": orbit,
      "residency": np.asarray(residency), "regions": regions, "kick": kick,
      "population": population, **sweeps,
      "homogeneity_error": exact_homogeneity(params, k_home, 2.5),
      "logits": np.asarray(states @ params["w_out"]),
  }


def comparisons(name, result) -> list[common.Comparison]:
  fixed, autonomous, orbit = result["fixed"], result["autonomous"], result["orbit"]
  unique_fixed = int(np.sum(fixed.is_fixed))
  origin = np.linalg.norm(fixed.points[0]) if len(fixed.points) else np.inf
  return [
      common.Comparison(f"{name}: noise-free dynamics from 100 on-trajectory states: spread of the "
                        f"endpoints after 500 steps", 0.0, float(autonomous.spread), 1e-3),
      common.Comparison(f"{name}: fixed points found from the same 100 starts (unique)", 1.0,
                        float(unique_fixed), 0.0),
      common.Comparison(f"{name}: |fixed point| (bias-free ReLU: h = 0)", 0.0, float(origin), 1e-4),
      common.Comparison(f"{name}: homogeneity h(sigma x) = sigma h(x), sigma = 2.5 (relative)", 0.0,
                        result["homogeneity_error"], 1e-5),
      common.Comparison(f"{name}: |winding| of the noise-driven orbit on the top-2 PCs minus "
                        f"|winding| of its time-shuffled control (turns, measured)",
                        0.0, float(abs(orbit.winding) - abs(orbit.shuffled_winding)), relation=">="),
  ]
