"""Singh et al. 2024: induction heads in a 2-layer attention-only transformer on few-shot
relabeling, their diversity and redundancy, and clamping subcircuits during training. Variants: ''
(full: three clamp conditions, 2 seeds) and 'quick' (no clamp and the match clamp, 1 seed)."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = False
  # Data (jaxlab.induction.fewshot; Singh's main run with Gaussian exemplars for Omniglot).
  c.num_classes = 50
  c.num_test_classes = 100
  c.dim = 64
  c.within_class_noise = 0.1
  c.num_labels = 5
  c.context_len = 2
  c.heldout_label_sets = 2
  # Model: Singh's 2-layer attention-only transformer.
  c.num_layers = 2
  c.num_heads = 8
  c.d_model = 64
  c.positions = "rope"
  # Singh: Adam 1e-5, batch 32, 1e6 sequences. 10x the step reaches the same phase change in 1/10
  # of the steps (measured: plateau near ln 2, then loss < 0.4 ln 2 at ~1400 steps).
  c.learning_rate = 1e-4
  c.batch_size = 32
  c.data_parallel = False  # split every batch over all devices and hosts (README: Accelerators)
  c.num_steps = 4000
  c.log_every = 100
  c.checkpoint_every = 2000
  c.eval_size = 512
  # Clamps applied on every training step (jaxlab.induction.model interventions):
  #   "none"; "match": every layer-2 head's query row attends to the correct label token
  #   (subcircuit B given); "previous_token": every layer-1 head attends to the previous token
  #   (subcircuit A given).
  c.clamps = ("none", "match", "previous_token")
  c.seeds = 2
  if variant == "quick":
    c.clamps = ("none", "match")
    c.seeds = 1
    c.num_steps = 2500
    c.checkpoint_every = 2500
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the induction_singh config; use '' or 'quick'")
  return c
