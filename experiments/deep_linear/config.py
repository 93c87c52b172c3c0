"""Saxe et al. 2014 deep linear networks. Variants: '' (full) and 'quick' (the reproduce job's)."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # the theory comparisons are at the 1e-3 level; float64 keeps roundoff out of them
  # Task: whitened inputs, Sigma31 = U diag(singular_values) V^T.
  c.n_in = 8
  c.n_hidden = 8
  c.n_out = 8
  c.singular_values = (3.0, 2.0, 1.0, 0.5)
  c.learning_rate = 1e-3  # tau = 1 / learning_rate steps
  # Decoupled, balanced runs at each of Saxe's N_l (layers of units; N_l - 1 weight matrices).
  c.layer_counts = (3, 4, 5)
  c.u0_two_layer = 1e-3  # initial mode strength for N_l = 3
  c.u0_deep = 1e-2  # ... and for N_l > 3 (deeper nets start slower from the same u0)
  c.num_steps = 40_000
  c.log_every = 200
  c.checkpoint_every = 10_000
  # Small random init of the N_l = 3 net, a population of seeds in one vmapped call.
  c.population = ml_collections.ConfigDict()
  c.population.num_seeds = 64
  c.population.init_scale = 1e-3
  c.population.num_steps = 24_000
  c.population.log_every = 50
  if variant == "quick":
    c.layer_counts = (3, 4)
    c.population.num_seeds = 16
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the deep_linear config; use '' or 'quick'")
  return c
