"""Kumar et al. 2024, grokking as the lazy-to-rich transition. Variants '' and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True
  c.dim = 20  # D
  c.n_train = 110  # P, fewer than the ~D^2/(2 eps) the initial kernel needs for the quadratic
  c.width = 100  # N
  c.epsilon = 0.25
  c.alphas = (0.25, 1.0, 4.0, 16.0)
  c.base_learning_rate = 1.0  # the step is base_learning_rate * N / alpha^2
  c.num_steps = 20_000
  c.log_every = 10
  c.checkpoint_every = 5000
  c.threshold = 0.1  # "learned" = loss below threshold * initial test loss
  c.monte_carlo_samples = 1_000_000  # for the test-loss decomposition check
  c.monte_carlo_se = 4.0
  if variant == "quick":
    c.num_steps = 10_000
    c.monte_carlo_samples = 400_000
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the grokking config; use '' or 'quick'")
  return c
