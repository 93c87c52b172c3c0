"""Kunin et al. 2024 "Get rich quick", single neuron. Variants: '' (full) and 'quick' (reproduce)."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # the random orthogonal inputs X
  c.x64 = True  # the closed forms are compared at the 1e-8 level, gradient descent at 1e-3
  # Kunin Fig. 3: X^T X = I_2, beta_* = (0, 1), every net starts from the function beta_0 = (-1, 0)
  # with a > 0, and the deltas span upstream (> 0), balanced (0) and downstream (< 0).
  c.beta_star = (0.0, 1.0)
  c.beta0 = (-1.0, 0.0)
  c.deltas = (4.0, 2.0, 1.0, 0.0, -1.0, -2.0, -4.0)
  c.eta_a = 1.0
  c.eta_w = 1.0
  c.time = 20.0  # T, in the flow's time units
  c.step_size = 2.5e-4  # h: gradient descent runs time / step_size steps
  c.log_every = 200
  c.checkpoint_every = 40_000
  c.ode_dt = 1e-3  # RK4 step for the closed-form-vs-ODE check
  if variant == "quick":
    c.step_size = 1e-3
    c.log_every = 100
    c.checkpoint_every = 10_000
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the get_rich_quick config; use '' or 'quick'")
  return c
