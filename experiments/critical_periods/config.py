"""Kleinman, Achille & Soatto 2024, critical periods in deep linear networks. Variants '' and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True
  # Two pathways on a whitened task with Sigma31 = U diag(s) V^T.
  c.width = 4
  c.singular_values = (4.0, 2.0, 1.0, 0.5)
  c.layer_weight0 = 0.1  # every layer's initial weight on every mode, both pathways
  c.depths = (1, 2, 3, 4)
  c.learning_rate = 1e-3
  c.num_steps = 20_000
  c.log_every = 100
  c.checkpoint_every = 5000
  c.deficit_length = 500  # pathway b frozen for this many steps...
  c.early_deficit_start = 0  # ... from the start (a critical period), or
  c.late_deficit_start = 15_000  # ... after learning (no effect expected)
  # Deep linear matrix completion (sec. 4): a higher-rank deficit task first, then the target.
  c.completion = ml_collections.ConfigDict()
  c.completion.size = 100
  c.completion.rank = 5
  c.completion.deficit_rank = 10
  c.completion.observed = 2000
  c.completion.depths = (1, 2, 3)
  c.completion.deficit_steps = (0, 2000, 10_000)
  c.completion.target_steps = 30_000
  c.completion.learning_rate = 0.2
  c.completion.init_scale = 1e-3
  if variant == "quick":
    c.depths = (1, 2, 3)
    c.num_steps = 8000
    c.late_deficit_start = 6000
    c.completion.depths = (1, 3)
    c.completion.deficit_steps = (0, 10_000)
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the critical_periods config; use '' or 'quick'")
  return c
