"""Energy-based transformers (Gladstone et al. 2025): an energy over (context, candidate) pairs,
prediction as gradient descent on it.

- `model`: the autoregressive EBT (observed and predicted streams, one transformer) and its
  equal-size standard-transformer baseline.
- `thinking`: the inner optimisation (Langevin noise, random step sizes and step counts, detached
  or truncated gradients), the S1 / S2 recipes as configs, training losses and best-of-N.
- `replay`: the S2 causal replay buffer as pure functions over a fixed-size state (carried in
  `core.TrainState.extra` by the S2 loss).
- `data`: character text that ships with CPython (help pages; `email` sources as OOD) and Dyck-k.
- `metrics`: thinking curves, self-verification against random and oracle picks, rank correlation.
"""

from jaxlab.ebt import data, metrics, model, replay, thinking

__all__ = ["data", "metrics", "model", "replay", "thinking"]
