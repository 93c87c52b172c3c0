"""von Oswald et al. 2023, in-context learning by gradient descent. Variants: '' (full) and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # the construction is checked against plain GD to 1e-10
  c.input_dim = 10  # d
  c.context_len = 20  # N; optimal step N / (N + d + 1)
  c.batch_size = 1024  # fresh tasks every step
  c.learning_rate = 3e-3  # Adam, cosine-decayed to learning_rate * final_lr_fraction
  c.final_lr_fraction = 0.05  # late small steps average out the batch noise in the learned step
  # iid N(0, init_scale^2) weights. The official 0.0135 leaves the product of four small matrices
  # near the saddle at 0 for thousands of steps; 0.1 escapes it in a few hundred.
  c.init_scale = 0.1
  c.num_steps = 4000
  c.log_every = 100
  c.checkpoint_every = 2000
  c.eval_tasks = 131072  # held-out tasks for the final loss: relative standard error ~0.5%
  c.construction_layers = 5  # K stacked constructed layers vs K GD steps
  c.construction_step_size = 0.3
  if variant == "quick":
    c.input_dim = 5
    c.context_len = 10
    c.batch_size = 512
    c.num_steps = 1200
    c.checkpoint_every = 600
    c.eval_tasks = 65536
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the icl_gd config; use '' or 'quick'")
  return c
