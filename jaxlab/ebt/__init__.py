"""Energy-based transformers (Gladstone et al. 2025): an energy over (context, candidate) pairs,
prediction as gradient descent on it.

- `model`: the autoregressive EBT (observed and predicted streams, one transformer) and its
  equal-size standard-transformer baseline.
- `thinking`: the inner optimisation (Langevin noise, random step sizes and step counts, detached
  or truncated gradients), the S1 / S2 recipes as configs, training losses and best-of-N.
- `replay`: the S2 causal replay buffer as pure functions over a fixed-size state.
"""

from jaxlab.ebt import model, replay, thinking

__all__ = ["model", "replay", "thinking"]
