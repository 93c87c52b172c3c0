"""Attention as Hebbian associative memory (retrieval error, capacity, heads). Variants '' and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True
  c.value_dim = 8
  c.item_counts = (4, 16, 64)
  c.key_dims = (16, 64, 256)
  c.trials = 2000
  c.tolerance_se = 4.0  # Monte Carlo vs closed form, in standard errors
  c.snr = 4.0  # capacity: largest n whose relative error is at most 1 / snr
  c.capacity_key_dims = (16, 32, 64, 128, 256)
  c.capacity_trials = 1000
  c.heads = (1, 2, 4)
  c.depths = (1, 2, 4)
  c.depth_trial_factor = 10
  if variant == "quick":
    c.item_counts = (4, 64)
    c.key_dims = (16, 256)
    c.trials = 1000
    c.capacity_key_dims = (16, 32, 64, 128)
    c.capacity_trials = 400
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the hebbian_memory config; use '' or 'quick'")
  return c
