"""Linear attention and GLA in parallel, recurrent and chunked forms. Variants '' and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # the forms must agree to 1e-10
  c.key_dim = 16
  c.value_dim = 16
  c.lengths = (64, 256, 1024, 4096)
  c.chunk_size = 64
  c.timing_repeats = 5
  if variant == "quick":
    c.lengths = (64, 256, 1024)
    c.timing_repeats = 3
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the linear_attention config; use '' or 'quick'")
  return c
