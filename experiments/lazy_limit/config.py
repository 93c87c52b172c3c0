"""Chizat, Oyallon & Bach 2019, the lazy limit. Variants: '' (full) and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # gaps down to ~1e-4 relative are measured
  c.n_train = 20
  c.n_test = 10
  c.input_dim = 5
  c.width = 50  # student h(w, x) = a . tanh(W x / sqrt(d)) / sqrt(m), NTK parameterisation
  c.teacher_width = 3  # ReLU teacher
  # Small alpha is the rich side (weights move by O(1)); the 1/alpha law is for alpha -> infinity.
  c.alphas = (0.0625, 0.25, 1.0, 4.0, 16.0, 64.0, 256.0)
  c.slope_min_alpha = 4.0  # the scaling is asymptotic: fit the exponent on alpha >= this
  c.learning_rate = 0.02  # eta; the alpha-scaled model uses eta / alpha^2
  c.num_steps = 5000  # time T = learning_rate * num_steps = 100
  c.log_every = 250
  c.checkpoint_every = 2500
  if variant == "quick":
    c.alphas = (0.0625, 0.25, 1.0, 4.0, 16.0, 64.0)
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the lazy_limit config; use '' or 'quick'")
  return c
