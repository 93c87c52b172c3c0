"""Reddy 2024 / Chan et al. 2022: which data make in-context vs in-weights learning. Variants: ''
(full: the (B, K) phase diagram with 2 seeds, and Zipf alpha = 0 vs 1) and 'quick' (two corners)."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = False
  c.num_labels = 32  # L
  c.context_pairs = 8  # N
  c.dim = 63  # D
  c.within_class_noise = 0.1  # epsilon
  # The phase diagram: burstiness B (0 = no bursty sequences, p_bursty = 0) by number of classes K.
  c.burstiness_values = (0, 1, 2, 4)
  c.num_classes_values = (64, 256, 1024)
  c.p_bursty = 1.0  # for B >= 1
  # Zipf cells: (B, K, p_bursty) trained at alpha = 0 and at alpha = zipf_alpha.
  c.zipf_cell = (2, 1024, 0.9)
  c.zipf_alpha = 1.0
  c.seeds = 2  # vmapped: one compiled call per cell trains every seed
  c.batch_size = 128
  c.learning_rate = 1e-3
  c.num_steps = 2000
  c.log_every = 100
  c.eval_size = 512
  if variant == "quick":
    c.burstiness_values = (0, 2)
    c.num_classes_values = (1024,)
    c.zipf_cell = ()
    c.seeds = 1
    c.num_steps = 1000
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the induction_data config; use '' or 'quick'")
  return c
