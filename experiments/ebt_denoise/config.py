"""Gladstone et al. 2025 (arXiv 2507.02092), image denoising (sec. 5, Fig. 12): an energy-based
denoiser (gradient descent on a learned energy, from the noisy image) against a diffusion-style
denoiser with the same transformer backbone (DDIM from the observed noise level), on
scikit-learn's 8x8 digits, in distribution (sigma = 0.1, the training level) and out of
distribution (sigma = 0.2). Variants: '' (full: 3 seeds, 2000 steps; 25-45 minutes on 2 cores),
'quick' (1 seed, 800 steps; about 4 minutes) and 'mlp' (the full study with MLP backbones, 4000
steps; about 2 minutes)."""

import ml_collections

ARMS = ("joint", "candidate")  # the EBT's energy: E(x, y) (noisy image and candidate) or E(y)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = False
  # Data: sklearn digits in [0, 1], a fixed 80/20 split (by `seed`); Gaussian noise of std sigma
  # on that scale. Both models train at (the EBT) or up to (the denoiser) sigma; sigma_ood is
  # never seen in training (the paper: noise levels 0.1 and 0.2).
  c.test_fraction = 0.2
  c.sigma = 0.1
  c.sigma_ood = 0.2
  # EBT arms (jaxlab.ebt.denoise.EBTConfig): "joint" E(x, y); "candidate" E(y), the authors'
  # image EBT (x enters only as the start of the descent). Learnable alpha (from step_size),
  # K = ebt_steps steps from y_0 = x, MSE on the last step, gradient through the unrolled chain
  # ("full") or the last step only ("truncate").
  c.arms = ARMS
  c.ebt_steps = 2
  c.step_size = 1.0
  c.langevin_std = 0.0
  c.gradient = "full"
  c.loss = "mse"
  # Backbone (both models): a transformer over 2x2 patches (16 tokens) with d_model `width`, as
  # the paper's EBT and DiT; or "mlp" (SiLU layers of width `width`; each EBT arm then gets the
  # width whose parameter count is nearest the denoiser's).
  c.architecture = "transformer"
  c.width = 64
  c.num_layers = 2
  c.num_heads = 4
  c.patch_size = 2
  c.num_frequencies = 8
  # AdamW (weights only decay), clip 1, linear warmup then cosine to lr / 10 (the paper's recipe,
  # shorter); fresh noise every step on batches of training images drawn with replacement.
  c.batch_size = 128
  c.data_parallel = False  # split every batch over all devices and hosts (README: Accelerators)
  c.learning_rate = 3e-3
  c.warmup_steps = 100
  c.weight_decay = 0.01
  c.clip_norm = 1.0
  c.num_steps = 2000
  c.log_every = 100
  c.checkpoint_every = 500
  c.seeds = 3
  # Evaluation: every test image under eval_noise_draws fixed noise draws per level (the same for
  # every model and seed: paired); the EBT after 0..max_ebt_steps steps, the denoiser at each N of
  # denoiser_steps (plus the FLOP-matched N), PSNR of the mean MSE of clipped outputs.
  c.eval_noise_draws = 4
  c.max_ebt_steps = 8
  c.denoiser_steps = (1, 2, 3, 4, 6, 8, 16, 32, 100)
  c.example_images = 6
  if variant == "quick":
    c.seeds = 1
    c.num_steps = 800
    c.checkpoint_every = 400
    c.eval_noise_draws = 1
    c.denoiser_steps = (1, 2, 3, 4, 8, 32)
  elif variant == "mlp":
    c.architecture = "mlp"
    c.width = 256
    c.num_steps = 4000
    c.checkpoint_every = 1000
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the ebt_denoise config; use '', 'quick' "
                     "or 'mlp'")
  return c
