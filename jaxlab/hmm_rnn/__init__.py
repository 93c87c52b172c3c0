"""RNNs that emulate hidden Markov models (Torre et al. 2025, NeurIPS; arXiv 2510.25674).

- `hmm`: discrete HMMs (the paper's linear-chain, fully connected and cyclic families, or any given
  triple), key-driven sampling, and forward filtering / smoothing / log-likelihood under lax.scan.
- `model`: the bias-free, noise-driven ReLU RNN that emits symbols through a straight-through
  Gumbel-softmax.
"""

from jaxlab.hmm_rnn import hmm, model

__all__ = ["hmm", "model"]
