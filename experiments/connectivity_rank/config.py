"""Liu et al. 2024, connectivity rank and lazy vs rich learning. Variants: '' (full) and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True
  # Two-layer linear network f = w2^T W1 x on whitened inputs, tasks y = beta^T x.
  c.input_dim = 20
  c.hidden = 20
  c.n_samples = 200
  c.num_tasks = 50
  c.ranks = (1, 5, 20)  # plus a rank-1 start aligned with each task
  # |W1|_F = sigma and w2 ~ N(0, sigma^2 / hidden). The rank effect is a claim about the rich regime
  # (small sigma); at large sigma every start is lazy, whatever its rank.
  c.rich_norms = (0.1,)
  c.lazy_norms = (1.0,)
  c.lazy_alignment = 0.99  # at a lazy norm, every condition keeps KA(K0, K_T) above this
  c.learning_rate = 0.05
  c.num_steps = 600  # relative training loss < 1e-12 by then
  c.min_separation = 5.0  # standard errors (issue 3)
  # The recurrent variant.
  c.rnn = ml_collections.ConfigDict()
  c.rnn.hidden = 64
  c.rnn.ranks = (1, 8, 64)
  c.rnn.seeds = 16
  c.rnn.trial_steps = 10
  c.rnn.coherence = 0.2
  c.rnn.batch = 32
  c.rnn.learning_rate = 1e-2
  c.rnn.momentum = 0.9
  c.rnn.clip_norm = 1.0
  c.rnn.num_steps = 2000
  c.rnn.probe_trials = 64
  if variant == "quick":
    c.lazy_norms = ()
    c.rnn.seeds = 8
    c.rnn.num_steps = 600
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the connectivity_rank config; use '' or 'quick'")
  return c
