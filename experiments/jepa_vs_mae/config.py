"""Littwin et al. 2024, JEPA vs MAE in deep linear nets. Variants: '' (full), 'quick' (reproduce)."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # the ODE comparisons are at the 1e-3 level; float64 keeps roundoff out of them
  # Features whose lambda-order and rho-order disagree: A is influential (high rho, low variance),
  # B is noisy and highly covarying (lambda * rho = 1.2 > 0.9, but rho = 0.4 < 0.9).
  c.lambdas = (1.0, 3.0)
  c.rhos = (0.9, 0.4)
  c.feature_names = ("A", "B")
  c.n_samples = 16  # exact moments need >= 2 * n_features
  c.width = 4  # latent width > n_features: the spare latent directions must stay unused
  # Balanced init at a fixed end-to-end encoder gain eps at every depth (per-layer gain eps^(1/L)).
  c.eps = 5e-3
  c.depths = (1, 2, 3, 4)
  # Gradient descent; t = learning_rate * steps is the time of the gradient flow (theory).
  c.jepa_learning_rate = 5e-3
  c.mae_learning_rate = 1e-3
  # Train until the theory puts every feature within `converged` (relative) of its fixed point.
  c.converged = 1e-4
  c.log_rows = 500  # metric rows per run (the sharp deep-JEPA transitions need fine logging)
  if variant == "quick":
    c.eps = 1e-2
    c.depths = (1, 3)
    c.jepa_learning_rate = 1e-2
    c.mae_learning_rate = 2e-3
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the jepa_vs_mae config; use '' or 'quick'")
  return c
