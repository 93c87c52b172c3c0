"""Olsson et al. 2022: a 2-layer attention-only transformer trained on repeated random tokens forms
an induction head in an abrupt phase change; a 1-layer one cannot. Variants: '' (full: 2 seeds) and
'quick' (1 seed, fewer steps)."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = False  # trained in float32 (params cast after init, even when x64 is on)
  # Training sequences: per sequence a period H uniform in min_period..max_period, H distinct
  # random tokens repeated to seq_len. With one fixed period a single layer attends H - 1 back and
  # solves the task with no induction head (quick settings, period 8: repeat loss 0.10-0.16,
  # prefix score 0.79-0.81; on period 6 the same model's repeat loss is 6-7 nats).
  c.vocab = 32
  c.seq_len = 32
  c.min_period = 4
  c.max_period = 12
  # Both models: attention-only, pre-LN, RoPE (a previous-token head is one relative offset;
  # learned positions also work, with a later and slower transition).
  c.d_model = 32
  c.num_heads = 2
  c.positions = "rope"
  c.layer_norm = True
  # Next-token loss on every position, as in language modelling, so that the first-occurrence
  # loss is a trained baseline (~log of the unseen tokens); "repeats": the repeats only.
  c.train_on = "all"
  c.batch_size = 32  # fresh sequences every step
  c.data_parallel = False  # split every batch over all devices and hosts (README: Accelerators)
  c.learning_rate = 3e-3  # Adam, constant (1e-3: the same phase change, ~2x later)
  c.seeds = 2
  c.num_steps = 1500
  c.log_every = 25
  c.checkpoint_every = 500
  # Evaluation every log_every steps on eval_size fixed held-out sequences drawn like the
  # training ones: the losses and Olsson's head scores (his prefix-matching set is one segment
  # of 25 tokens repeated 4 times; here each sequence has its own period).
  c.eval_size = 256
  c.construction_sharpness = 20.0  # score / logit gap of the hand-built circuit
  if variant == "quick":
    c.seeds = 1
    c.num_steps = 500
    c.checkpoint_every = 250
    c.eval_size = 128
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the induction_repeat config; use '' or "
                     "'quick'")
  return c
