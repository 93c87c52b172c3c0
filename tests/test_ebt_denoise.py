"""Energy-based denoising (jaxlab.ebt.denoise) against its references: per-image energies and
gradients equal autodiff, the truncated and unrolled descents equal their definitions, DDIM with the
exact Gaussian noise predictor reproduces the Wiener filter and the probability-flow map
(theory.ebt_denoise), short trainings denoise digits; the study's checks (fast) and its quick run
(slow)."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.ebt_denoise import config as config_lib
from experiments.ebt_denoise import experiment
from jaxlab import core
from jaxlab.ebt import denoise
from theory import ebt_denoise as theory

TINY = {"transformer": dict(architecture="transformer", width=16, num_heads=2, num_layers=1),
        "mlp": dict(architecture="mlp", width=24, num_layers=2)}


def _images(key, n, cfg):
  return jax.random.uniform(key, (n, cfg.num_pixels))


def test_patches_are_row_major_squares_and_unpatchify_inverts():
  images = jnp.arange(2 * 64.0).reshape(2, 64)
  patches = denoise.patchify(images, 8, 2)
  chex.assert_shape(patches, (2, 16, 4))
  np.testing.assert_array_equal(patches[0, 0], [0, 1, 8, 9])
  np.testing.assert_array_equal(patches[0, 5], [18, 19, 26, 27])  # patch row 1, column 1
  np.testing.assert_array_equal(denoise.unpatchify(patches, 8, 2), images)


@pytest.mark.parametrize("arch,observe_noisy", [("transformer", True), ("mlp", True),
                                                 ("mlp", False)])
def test_energy_of_one_image_ignores_the_others_and_its_gradient_is_autodiffs(arch, observe_noisy):
  cfg = denoise.EBTConfig(**TINY[arch], observe_noisy=observe_noisy)
  k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
  params = denoise.init(k1, cfg)
  x, y = _images(k2, 3, cfg), _images(k3, 3, cfg)
  e = denoise.energy(params, x, y, cfg)
  chex.assert_shape(e, (3,))
  moved = denoise.energy(params, x.at[1].add(0.3), y.at[1].add(-0.2), cfg)
  np.testing.assert_allclose(moved[jnp.array([0, 2])], e[jnp.array([0, 2])], atol=1e-12)
  assert abs(float(moved[1] - e[1])) > 1e-6
  _, grad = denoise.energy_and_grad(params, x, y, cfg)
  one = lambda xb, yb: denoise.energy(params, xb[None], yb[None], cfg)[0]
  np.testing.assert_allclose(grad, jax.vmap(jax.grad(one, argnums=1))(x, y), rtol=1e-10,
                             atol=1e-12)


def _manual_chain(params, x, cfg, steps, truncate):
  """The descent written out: y <- y - alpha dE/dy, with stop-gradients where truncation puts them."""
  alpha = denoise.step_size(params, cfg)
  y = x
  for k in range(steps):
    last = k == steps - 1
    p, a = (params, alpha) if (last or not truncate) else jax.tree.map(jax.lax.stop_gradient,
                                                                       (params, alpha))
    if truncate and last:
      y = jax.lax.stop_gradient(y)
    g = jax.grad(lambda yy: jnp.sum(denoise.energy(p, x, yy, cfg)))(y)
    y = y - a * g
  return y


@pytest.mark.parametrize("gradient", ["full", "truncate"])
def test_training_loss_and_its_gradient_equal_the_written_out_descent(gradient):
  cfg = denoise.EBTConfig(**TINY["mlp"], num_steps=3, step_size=0.5, gradient=gradient)
  k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
  params = denoise.init(k1, cfg)
  clean = _images(k2, 4, cfg)
  sigma = 0.1

  def manual(p):
    x = denoise.add_noise(jax.random.split(k3)[0], clean, sigma)
    return jnp.mean(jnp.square(_manual_chain(p, x, cfg, cfg.num_steps, gradient == "truncate")
                               - clean))

  loss = lambda p: denoise.ebt_loss(p, clean, k3, cfg, sigma)[0]
  np.testing.assert_allclose(loss(params), manual(params), rtol=1e-12)
  g, g_manual = jax.grad(loss)(params), jax.grad(manual)(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12), g, g_manual)
  if gradient == "truncate":  # the unrolled gradient differs: the truncation did something
    full = dataclasses.replace(cfg, gradient="full")
    g_full = jax.grad(lambda p: denoise.ebt_loss(p, clean, k3, full, sigma)[0])(params)
    assert not np.allclose(g_full["log_step_size"], g["log_step_size"], rtol=1e-3)


def test_descend_returns_each_candidate_and_its_energy():
  cfg = denoise.EBTConfig(**TINY["mlp"], step_size=0.7)
  params = denoise.init(jax.random.key(2), cfg)
  x = _images(jax.random.key(3), 5, cfg)
  trace = denoise.descend(params, x, cfg, num_steps=4)
  chex.assert_shape(trace.candidates, (5, 5, 64))
  chex.assert_shape(trace.energies, (5, 5))
  np.testing.assert_array_equal(trace.candidates[0], x)
  for k in range(1, 5):
    np.testing.assert_allclose(trace.candidates[k], _manual_chain(params, x, cfg, k, False),
                               rtol=1e-12)
  for k in range(5):
    np.testing.assert_allclose(trace.energies[k],
                               denoise.energy(params, x, trace.candidates[k], cfg), rtol=1e-12)


def _gaussian(p=6, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(p, p))
  return jnp.asarray(rng.normal(size=p)), jnp.asarray(a @ a.T / p + 0.05 * np.eye(p))


def test_wiener_mse_is_the_exact_error_of_the_wiener_filter():
  """E|G(x - mu) - (y - mu)|^2 / P = tr((I - G) S (I - G)^T + s^2 G G^T) / P for any data with
  mean mu and covariance S: the closed form against the matrix identity."""
  mean, cov = _gaussian()
  sigma = 0.3
  gain = jnp.linalg.solve(cov + sigma ** 2 * jnp.eye(6), cov)
  residual = jnp.eye(6) - gain
  exact = jnp.trace(residual @ cov @ residual.T + sigma ** 2 * gain @ gain.T) / 6
  np.testing.assert_allclose(theory.wiener_mse(cov, sigma), exact, rtol=1e-12)
  x = mean[None] + jnp.eye(6)
  np.testing.assert_allclose(theory.wiener_denoise(x, mean, cov, sigma),
                             mean[None] + (x - mean[None]) @ gain.T, rtol=1e-12)


def test_ddim_with_the_exact_noise_predictor_gives_the_posterior_mean_then_the_flow_map():
  """One DDIM step is the Wiener filter exactly; N steps approach the probability-flow ODE's map
  at Euler's first order (halving the step halves the error, to 10%)."""
  mean, cov = _gaussian()
  sigma = 0.5
  x = mean[None] + jax.random.normal(jax.random.key(4), (3, 6))
  oracle = lambda xs, s: theory.noise_oracle(xs, s[0], mean, cov)
  np.testing.assert_allclose(denoise.ddim(oracle, x, sigma, 1),
                             theory.wiener_denoise(x, mean, cov, sigma), rtol=1e-12)
  target = theory.probability_flow_map(x, mean, cov, sigma)
  errors = [float(jnp.max(jnp.abs(denoise.ddim(oracle, x, sigma, n) - target)))
            for n in (64, 128, 256)]
  np.testing.assert_allclose(errors[0] / errors[1], 2.0, rtol=0.1)
  np.testing.assert_allclose(errors[1] / errors[2], 2.0, rtol=0.1)
  assert errors[2] < 1e-2 * float(jnp.max(jnp.abs(target - mean[None])))


def test_step_flops_count_the_backward_pass_of_the_ebt():
  """An MLP denoiser pass is its matmuls plus elementwise work (within 10%); an EBT step (E and
  dE/dy) costs about two passes of an equal-size network."""
  den = denoise.DenoiserConfig(architecture="mlp", width=128)
  sizes = [64 + 16, 128, 128, 64]
  matmuls = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
  assert matmuls <= denoise.step_flops(den) <= 1.1 * matmuls
  for arch, width in (("mlp", 128), ("transformer", 32)):
    den = denoise.DenoiserConfig(architecture=arch, width=width, num_heads=2)
    ebt = denoise.match_width(denoise.EBTConfig(architecture=arch, width=width, num_heads=2),
                              denoise.num_params(den))
    assert 1.6 < denoise.step_flops(ebt) / denoise.step_flops(den) < 3.0


def test_parameter_counts_and_equal_size_arms():
  for arch in ("transformer", "mlp"):
    for cfg in (denoise.EBTConfig(**TINY[arch]), denoise.DenoiserConfig(**TINY[arch])):
      make = denoise.init if isinstance(cfg, denoise.EBTConfig) else denoise.denoiser_init
      assert denoise.num_params(cfg) == denoise.param_count(make(jax.random.key(0), cfg))
  den = denoise.DenoiserConfig(architecture="mlp", width=256)
  ebt = denoise.match_width(denoise.EBTConfig(architecture="mlp"), denoise.num_params(den))
  assert abs(denoise.num_params(ebt) / denoise.num_params(den) - 1) < 1e-3


def test_short_trainings_denoise_digits_near_the_wiener_filter():
  """MLP backbones, 600 steps each at sigma = 0.1: both gain > 1 dB over the noisy input and come
  within 1 dB of the Wiener filter (measured: both about 0.1 dB below it)."""
  train, test = denoise.digits(0)
  sigma = 0.1
  noisy = denoise.add_noise(jax.random.key(5), test, sigma)
  psnr = lambda y: float(denoise.psnr(jnp.mean(denoise.mse(y, test))))
  mean, cov = jnp.mean(train, 0), jnp.cov(train, rowvar=False)
  wiener = psnr(theory.wiener_denoise(noisy, mean, cov, sigma))
  opt = optax.adam(optax.cosine_decay_schedule(3e-3, 600))
  batches = lambda data, key: data[jax.random.randint(key, (128,), 0, data.shape[0])]
  results = {}
  den = denoise.DenoiserConfig(architecture="mlp", width=128)
  ebt = denoise.match_width(denoise.EBTConfig(architecture="mlp"), denoise.num_params(den))
  for name, cfg, loss, make in (
      ("ebt", ebt, functools.partial(denoise.ebt_loss, cfg=ebt, sigma=sigma), denoise.init),
      ("denoiser", den, functools.partial(denoise.denoiser_loss, cfg=den, sigma_max=sigma),
       denoise.denoiser_init)):
    state = core.init_train_state(make(jax.random.key(6), cfg), opt, jax.random.key(7))
    state, _ = jax.jit(functools.partial(
        core.scan_train, core.make_train_step(loss, opt), num_steps=600, log_every=600,
        batch_fn=batches))(state, train)
    results[name] = psnr(denoise.descend(state.params, noisy, ebt).candidates[-1]
                         if name == "ebt" else denoise.ddim_denoise(state.params, noisy, sigma, 2,
                                                                    den))
  for name, value in results.items():
    assert value > psnr(noisy) + 1.0, (name, value, psnr(noisy))
    assert value > wiener - 1.0, (name, value, wiener)


def test_bad_input_is_rejected_naming_the_problem():
  with pytest.raises(ValueError, match="architecture"):
    denoise.EBTConfig(architecture="conv")
  with pytest.raises(ValueError, match="patch_size"):
    denoise.DenoiserConfig(patch_size=3)
  with pytest.raises(ValueError, match="num_heads"):
    denoise.EBTConfig(width=30, num_heads=4)
  cfg = denoise.EBTConfig(**TINY["mlp"])
  params = denoise.init(jax.random.key(0), cfg)
  with pytest.raises(ValueError, match=r"\[batch, 64\]"):
    denoise.energy(params, jnp.zeros((2, 63)), jnp.zeros((2, 63)), cfg)
  with pytest.raises(ValueError, match="variant"):
    config_lib.get_config("huge")
  config = config_lib.get_config("quick")
  config.sigma_ood = 0.05
  with pytest.raises(ValueError, match="sigma_ood"):
    experiment.validate(config)
  config = config_lib.get_config("quick")
  config.arms = ("joint", "energy_only")
  with pytest.raises(ValueError, match="arms"):
    experiment.validate(config)
  config = config_lib.get_config("quick")
  config.architecture = "resnet"
  with pytest.raises(ValueError, match="architecture"):
    experiment.validate(config)


@pytest.mark.slow
def test_quick_study_every_row_passes(tmp_path):
  """The quick variant (transformers, 1 seed, 800 steps; about 4 minutes): equal sizes, the energy
  falls along the trained descent, every model denoises and sits within 0.5 dB of the Wiener
  filter in distribution, and the EBT is not more than 1 dB behind the denoiser (informative)."""
  result = experiment.run(config_lib.get_config("quick"), str(tmp_path))
  failed = [c.name for c in result["comparisons"] if not c.passed]
  assert not failed, failed
