"""Sieber et al. 2024 (DSF), multi-query associative recall vs state expansion. Variants: '', 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # the DSF identity of the trained layer is checked to 1e-10 in float64
  c.param_dtype = "float32"  # training precision (float64 is ~2x slower on CPU and changes nothing)
  c.num_pairs = 8  # P key-value pairs, each key queried once
  c.num_keys = 32
  c.num_values = 32
  c.d_model = 32
  c.state_dims = "2,4,8,16,32"  # n: live feature channels of q and k (state n x d_model)
  c.batch_size = 64  # fresh sequences every step
  c.learning_rate = 3e-3  # Adam, cosine-decayed
  c.num_steps = 3000
  c.log_every = 100
  c.eval_sequences = 4096
  c.min_gain = 0.3  # acc(n_max) - acc(n_min), the paper's state-expansion effect
  c.monotone_slack = 0.03  # allowed dip between consecutive n (sampling noise of the eval)
  c.softmax_min_accuracy = 0.9  # the infinite-state reference must solve the task
  if variant == "quick":
    c.num_steps = 1000
    c.eval_sequences = 2048
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the dsf_recall config; use '' or 'quick'")
  return c
