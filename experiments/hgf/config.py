"""Hierarchical Gaussian filters: updates, steady state, volatility. Variants '' and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True
  # One-step updates against theory/hgf.py: random settings per (network, depth, order).
  c.one_step_settings = 200
  c.one_step_tolerance = 1e-10
  # Binary environment: a stable phase at p_high, num_blocks reversals, a stable phase again.
  c.stable_trials = 200
  c.block_length = 20
  c.num_blocks = 10
  c.p_high = 0.9
  c.burn_in = 100  # first trials of each first phase left out of its averages (initial transient)
  c.sequences = 64
  c.binary_omega = (-4.0, -2.0)  # levels 2 and 3
  c.binary_kappa = 1.5
  c.binary_mu0 = (0.0, 0.0)
  c.binary_pi0 = (1.0, 1.0)
  # Continuous environment: a Gaussian random walk whose log step variance jumps between phases.
  # Its kappa = 0 control run (a Kalman filter) also gives the steady-state and likelihood checks.
  c.walk_trials = 300  # per phase
  c.walk_log_step_variances = (-4.0, -2.0)
  c.continuous_omega = (-4.0, -4.0)  # levels 1 and 2
  c.continuous_kappa = 1.0
  c.pi_u = 10.0
  c.min_learning_rate_ratio = 1.2  # continuous: volatile / stable learning rate, every sequence
  if variant == "quick":
    c.one_step_settings = 50
    c.sequences = 16
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the hgf config; use '' or 'quick'")
  return c
