"""Induction heads and in-context vs in-weights learning (Reddy 2024, ICLR; Olsson et al. 2022).

- `data`: Reddy's bursty Gaussian-mixture classification sequences (training batches and the
  novel-class, flipped-label and in-weights evaluation sets) and repeated random tokens for
  Olsson-style induction-head scores.
"""

from jaxlab.induction import data

__all__ = ["data"]
