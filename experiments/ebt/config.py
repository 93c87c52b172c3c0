"""Gladstone et al. 2025, "Energy-Based Transformers are Scalable Learners and Thinkers", at CPU
scale: S2 and S1 EBTs and an equal-size transformer on the characters of CPython's help pages,
out-of-distribution text (the `email` package's sources) and Dyck-3 completion. Variants: ''
(full: 3 seeds, ablations, equal-wall-clock baseline, Dyck; about an hour on 2 cores), 'single'
(one seed of S2, S1 and the baseline: the slow test) and 'quick' (the same, 500 steps, 128
evaluation windows: about 7 minutes)."""

import ml_collections

ARMS = ("s2", "s1", "baseline")
ABLATIONS = ("no_random_alpha", "no_random_k", "no_langevin", "no_replay")


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = False
  # Model (research notes sec. 3): 2 layers, D = 128, 4 heads, windows of 32 characters.
  c.d_model = 128
  c.num_heads = 4
  c.num_layers = 2
  # jax.checkpoint per block (jaxlab.ebt.model.EBTConfig.remat): same numbers; since the descent's
  # second order is forward over reverse it no longer speeds up the S1 step on CPU (within 10% at
  # 2 and 8 layers, benchmarks/README.md). Off: the recorded results were trained without it.
  c.remat = False
  c.seq_len = 32
  # AdamW (0.9, 0.999), weight decay 0.01, clip 1, linear warmup then cosine to lr / 10 (the
  # paper's recipe with a shorter warmup); S1's learnable alpha gets lr * alpha_lr_multiplier
  # (the code's mcmc_step_size_lr_multiplier, "about 3 alpha").
  c.batch_size = 32
  c.data_parallel = False  # split every batch over all devices and hosts (README: Accelerators)
  c.learning_rate = 1.2e-3
  c.warmup_steps = 100
  c.weight_decay = 0.01
  c.clip_norm = 1.0
  c.alpha_lr_multiplier = 150.0
  c.num_steps = 800
  c.log_every = 50
  c.checkpoint_every = 200
  c.seeds = 3
  # Recipes (jaxlab.ebt.thinking.S1 / S2): S2: alpha 5 randomised in [alpha/2, 2 alpha], K in
  # {2, 3}, Langevin 3, replay 192 records at half a batch, truncated gradient; S1: learnable alpha
  # from 50, 2 detached steps, loss on both.
  c.s2_step_size = 5.0
  c.s1_step_size = 50.0
  # S1's landscapes: the authors' S1 (`ebt_type=time_embed`) prepends a learned token per step,
  # so each of its 2 steps descends its own energy landscape; 0: one shared landscape (S2's).
  c.s1_landscapes = 2
  # Ablations of S2, one seed each (Table 2 of the paper); () to skip.
  c.ablations = ABLATIONS
  c.ablation_seeds = 1
  # The baseline again, one seed, trained for as many steps as S2 took wall-clock time.
  c.wallclock_baseline = True
  # Evaluation on fixed windows of the validation text (last 10% of the help pages) and the OOD
  # text: cross-entropy after 1..max_think_steps steps without noise, best-of-n at the trained
  # horizon with inference Langevin noise bon_langevin (the paper's inference script uses 1).
  c.eval_windows = 256
  c.max_think_steps = 8
  c.bon_n = 8
  c.bon_langevin = 1.0
  # Dyck-3 (BigBench-Dyck-like): S2 and the baseline trained on strings of <= 8 pairs and depth
  # <= 4, tested on deeper (5-8) and longer (10-15 pairs) strings.
  c.dyck = True
  c.dyck_num_types = 3
  c.dyck_train_tokens = 200_000
  c.dyck_num_steps = 800
  if variant == "single":
    c.seeds = 1
    c.ablations = ()
    c.wallclock_baseline = False
    c.dyck = False
  elif variant == "quick":
    # S2, S1 and the baseline at full size, shorter: System-2 behaviour needs the energy
    # landscape trained (a d = 64 model after 300 steps shows thinking longer but not
    # self-verification).
    c.seeds = 1
    c.num_steps = 500
    c.checkpoint_every = 250
    c.ablations = ()
    c.wallclock_baseline = False
    c.dyck = False
    c.eval_windows = 128
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the ebt config; use '', 'single' or 'quick'")
  return c
