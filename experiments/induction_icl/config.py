"""Reddy 2024: abrupt in-context learning in a minimal attention network, against the nested-logit
model. Variants: '' (full: 3 seeds, and the L = N control) and 'quick' (1 seed, ICL forced)."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = False
  # Reddy's task with every sequence from novel classes (p_novel = 1, "ICL forced"), B = 1.
  c.num_classes = 512  # K (unused when p_novel = 1, kept for the in-weights evaluation)
  c.context_pairs = 8  # N
  c.burstiness = 1  # B
  c.dim = 63  # D
  c.within_class_noise = 0.1  # epsilon
  c.p_novel = 1.0
  # L per condition: 32 is Reddy's; L = N is the control where no induction head should form.
  c.label_counts = (32,)
  c.seeds = 1
  # Reddy trains with SGD 0.01 for 1e5 steps; Adam 1e-3 reaches the same solution in ~1e3 on CPU.
  c.batch_size = 128
  c.data_parallel = False  # split every batch over all devices and hosts (README: Accelerators)
  c.learning_rate = 1e-3
  c.num_steps = 1200
  c.log_every = 25
  c.checkpoint_every = 600
  c.eval_size = 512  # fixed novel-class (IC) and flipped-label (IC2) evaluation sequences
  # The nested-logit model: gradient descent from the origin (plus a tiny kick, which L = N needs
  # to leave its critical point), as a flow with this step and length.
  c.theory_dt = 0.1
  c.theory_steps = 6000
  c.theory_kick = 0.01
  if variant == "quick":
    pass
  elif variant == "":
    c.label_counts = (32, 8)
    c.seeds = 3
    c.num_steps = 3000
    c.checkpoint_every = 1000
  else:
    raise ValueError(f"unknown variant {variant!r} of the induction_icl config; use '' or 'quick'")
  return c
