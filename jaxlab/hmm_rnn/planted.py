"""A hand-built network with the mechanism Torre et al. 2025 describe, as a positive control for
`jaxlab.hmm_rnn.analysis`: if kick neurons exist, the analysis must find them.

Torre, Viscione, Pompe, Grewe & Mante 2025 (arXiv 2510.25674, NeurIPS; their mechint.py) read off
their trained networks: one stable fixed point at h = 0; clusters, one per frequent symbol, that
only noise sustains; and small groups of "kick neurons", driven by noise-integrating populations,
whose firing moves the state from one cluster to the other. `kick_network` builds exactly that in
the model's form (jaxlab.hmm_rnn.model: h_t = ReLU(x_t W_in + h_{t-1} W_hh), no biases, logits
h_t W_out; row-vector weights, w[i, j] is unit i -> unit j), with two symbols:

- two cluster units A, B (symbol 0 when A > B): self-excitation `cluster_persistence` < 1 and mutual
  inhibition `cluster_inhibition`, each driven by its own population of rectified-noise units
  (`drive_weight`); with the noise off everything decays to h = 0, with it one unit wins and holds;
- two kick units: kick A (fires in cluster A, inhibits A and excites B by `kick_strength`) and kick
  B (the mirror image). A kick unit has no noise of its own: it sums a signed readout of
  `num_integrators` leaky noise integrators (persistence `integrator_persistence`) and is held
  down by its own cluster weakly (`own_cluster_hold`) and by the other strongly
  (`other_cluster_hold`), so it fires rarely, and almost only in its own cluster;
- `num_background` noisy units, weakly and randomly coupled to each other, reading the clusters
  but sending nothing back: units that are active but not causal.

Without the kick units' output (or their recurrent input, or the integrators' noise) switching all
but stops (tested); the winding of the noise-driven trajectory is not part of the construction.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np


class PlantedUnits(NamedTuple):
  clusters: np.ndarray  # [2] A (symbol 0), B (symbol 1)
  kick: np.ndarray  # [2] kick A (fires in A, pushes to B), kick B
  integrators: np.ndarray  # [num_integrators] leaky noise integrators driving the kick units
  drive: np.ndarray  # [2 * num_drive] rectified-noise units, the first half drive A
  background: np.ndarray  # [num_background] active, not causal


def kick_network(*, num_integrators: int = 6, num_drive: int = 6, num_background: int = 8,
                 cluster_persistence: float = 0.8, cluster_inhibition: float = 3.0,
                 drive_weight: float = 0.5, integrator_persistence: float = 0.8,
                 integrator_weight: float = 1.0, own_cluster_hold: float = 0.4,
                 other_cluster_hold: float = 3.0, kick_strength: float = 4.0,
                 background_coupling: float = 0.2, readout_gain: float = 3.0, seed: int = 0,
                 dtype=jnp.float32) -> tuple[dict, PlantedUnits]:
  """Params {"w_in", "w_hh", "w_out"} of the planted network (input dimension = hidden size: each
  noisy unit has its own noise channel) and which unit plays which part. Defaults: about 4.8 output
  changes per 100 steps, almost all of them kicks (see tests/test_hmm_rnn_planted.py)."""
  if num_integrators < 2 or num_drive < 1 or num_background < 0:
    raise ValueError(f"need num_integrators >= 2, num_drive >= 1 and num_background >= 0, got "
                     f"{num_integrators}, {num_drive}, {num_background}")
  if not 0 <= cluster_persistence < 1 or not 0 <= integrator_persistence < 1:
    raise ValueError("cluster_persistence and integrator_persistence must lie in [0, 1), so that "
                     f"h = 0 stays the one fixed point; got {cluster_persistence}, "
                     f"{integrator_persistence}")
  a, b, kick_a, kick_b = 0, 1, 2, 3
  integrators = 4 + np.arange(num_integrators)
  background = integrators[-1] + 1 + np.arange(num_background)
  drive = 4 + num_integrators + num_background + np.arange(2 * num_drive)
  hidden = 4 + num_integrators + num_background + 2 * num_drive
  w_in, w_hh, w_out = np.zeros((hidden, hidden)), np.zeros((hidden, hidden)), np.zeros((hidden, 2))
  noisy = np.concatenate([[a, b], integrators, background, drive])
  w_in[noisy, noisy] = 1.0
  w_hh[a, a] = w_hh[b, b] = cluster_persistence
  w_hh[a, b] = w_hh[b, a] = -cluster_inhibition
  w_hh[drive[:num_drive], a] = w_hh[drive[num_drive:], b] = drive_weight
  w_hh[integrators, integrators] = integrator_persistence
  # A signed readout: the integrators are rectified (positive), so a same-signed sum would have a
  # large mean and keep the kick units firing; alternating signs leave zero-mean fluctuations.
  signs = np.where(np.arange(num_integrators) % 2 == 0, 1.0, -1.0)
  w_hh[integrators, kick_a] = integrator_weight * signs
  w_hh[integrators, kick_b] = -integrator_weight * signs
  w_hh[a, kick_a] = w_hh[b, kick_b] = -own_cluster_hold
  w_hh[b, kick_a] = w_hh[a, kick_b] = -other_cluster_hold
  w_hh[kick_a, a] = w_hh[kick_b, b] = -kick_strength
  w_hh[kick_a, b] = w_hh[kick_b, a] = kick_strength
  rng = np.random.default_rng(seed)
  w_hh[np.ix_(background, background)] = rng.uniform(-background_coupling, background_coupling,
                                                     (num_background, num_background))
  w_hh[np.ix_([a, b], background)] = rng.uniform(0.0, 1.5 * background_coupling,
                                                 (2, num_background))
  w_out[a] = [readout_gain, -readout_gain]
  w_out[b] = [-readout_gain, readout_gain]
  params = {name: jnp.asarray(value, dtype)
            for name, value in (("w_in", w_in), ("w_hh", w_hh), ("w_out", w_out))}
  return params, PlantedUnits(np.array([a, b]), np.array([kick_a, kick_b]), integrators, drive,
                              background)
