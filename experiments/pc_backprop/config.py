"""Predictive coding vs backprop, gradient by gradient. Variants: '' (full) and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # Z-IL and the fixed-prediction assumption are checked to 1e-10
  c.sizes = (64, 64, 64, 64, 10)  # digits pixels -> three tanh hidden layers -> 10 outputs
  c.activation = "tanh"
  c.batch_size = 64
  c.output_precisions = (1.0, 0.1, 0.01, 0.001)
  c.node_learning_rate = 0.2  # SGD on the hidden nodes
  c.num_inference_steps = 1000
  c.fixed_prediction_steps = 100
  c.linear_sizes = (8, 6, 5, 3)  # the linear network whose equilibrium has a closed form
  c.linear_inference_steps = 3000
  if variant == "quick":
    c.num_inference_steps = 500
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the pc_backprop config; use '' or 'quick'")
  return c
