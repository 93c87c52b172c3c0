"""RNNs that emulate hidden Markov models (Torre et al. 2025, NeurIPS; arXiv 2510.25674).

- `hmm`: discrete HMMs (the paper's linear-chain, fully connected and cyclic families, or any given
  triple), key-driven sampling, and forward filtering / smoothing / log-likelihood under lax.scan.
- `model`: the bias-free, noise-driven ReLU RNN that emits symbols through a straight-through
  Gumbel-softmax.
- `emulation`: its training loss (debiased Sinkhorn divergence via ott-jax), the loss's noise floor
  and a time-shuffled control; `statistics`: emission statistics of sequence batches.
- `analysis`: reverse engineering (fixed points, orbits, residency regions, kick neurons, sweeps).
- `planted`: a hand-built network with known kick neurons, the analysis's positive control.
"""

from jaxlab.hmm_rnn import analysis, emulation, hmm, model, planted, statistics

__all__ = ["analysis", "emulation", "hmm", "model", "planted", "statistics"]
