"""Predictive coding vs backprop training on scikit-learn's digits. Variants: '' (full) and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = False
  c.num_seeds = 8  # vmapped: one compiled call per (network, rule)
  c.width = 64
  c.hidden_layers = (1, 4, 12)  # MLP depths; the first is "the small MLP", the last "deep"
  c.conv_features = (8, 16)  # conv 3x3 -> conv 3x3 stride 2 -> dense 10
  c.activation = "tanh"
  c.rules = ("backprop", "pc", "ipc")
  # pcx's MLP benchmark setting (Pinchetti et al. 2024): T = 5 node steps, cross-entropy output.
  c.num_inference_steps = 5
  c.node_learning_rate = 0.1
  c.output_precision = 1.0
  c.learning_rate = 1e-3  # Adam, every rule
  c.batch_size = 64
  c.num_steps = 1500  # ~67 epochs of the 1437 training images
  c.log_every = 100
  if variant == "quick":
    c.num_seeds = 4
    c.hidden_layers = (1, 12)
    c.num_steps = 600
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the pc_training config; use '' or 'quick'")
  return c
