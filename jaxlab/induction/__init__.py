"""Induction heads and in-context vs in-weights learning (Reddy 2024; Chan et al. 2022; Singh et al.
2024; Olsson et al. 2022).

- `data`: Reddy's bursty Gaussian-mixture classification sequences (training batches and the
  novel-class, flipped-label and in-weights evaluation sets) and repeated random tokens.
- `fewshot`: Chan/Singh-style exemplar sequences with fixed or per-sequence labels.
- `model`: Reddy's minimal attention network and a small pre-LN causal transformer, both returning
  every intermediate activation, with clamp / replace / ablate interventions on any of them.
- `metrics`: Reddy's progress measures, induction strength, Olsson's prefix-matching, previous-
  token and copying scores, phase-change times.
- `repeated`: a hand-built induction head and next-token training on repeated tokens.
"""

from jaxlab.induction import data, fewshot, metrics, model, repeated

__all__ = ["data", "fewshot", "metrics", "model", "repeated"]
