"""Local linear attention (Zuo et al. 2025) as test-time regression. Variants '' and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True
  c.n_keys = 64
  c.key_dim = 4
  c.value_dim = 3
  c.ridge = 0.3
  c.bandwidths = (0.005, 0.01, 0.02, 0.05, 0.1)
  c.quadrature_points = 200_001  # population integrals on [0, 1]
  c.sample_size = 100_000  # sample-level boundary bias
  c.sample_repeats = 20
  if variant == "quick":
    c.bandwidths = (0.01, 0.02, 0.05, 0.1)
    c.quadrature_points = 100_001
    c.sample_repeats = 8
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the local_linear config; use '' or 'quick'")
  return c
