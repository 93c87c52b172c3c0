r"""Energy-based denoising of small images, and a diffusion-style denoiser of the same size.

Gladstone et al. 2025, "Energy-Based Transformers are Scalable Learners and Thinkers" (arXiv
2507.02092): sec. 3.2 (prediction as energy minimisation, eq. 1: $\hat y_{k+1} = \hat y_k -
\alpha \nabla_{\hat y} E_\theta(x, \hat y_k)$, a loss on the prediction, gradients through the
unrolled optimisation), sec. 3.3 (learnable $\alpha$; truncated second-order gradient) and the
image-denoising experiment of sec. 5 (Fig. 12 and its table: a bidirectional EBT against DiT on
COCO 128x128, PSNR in distribution at noise level 0.1 and out of distribution at 0.2, the EBT at
1-3 forward passes and DiT at 100-300). The authors' `model/img/ebt_denoise.py` and their
denoising job scripts were read, not copied. At CPU scale:

Data (`digits`): scikit-learn's bundled 8x8 handwritten digits (1797 images, no download; the
optional extra `jaxlab[data]`), pixels in [0, 1], split by seed. Corruption: $x = y^* +
\sigma\epsilon$ on that scale (the paper's levels 0.1 in distribution, 0.2 out of distribution).

Backbones (`architecture`): "transformer" (default, as in the paper: the image cut into
`patch_size`-square patches, one token per patch, learned positions, the Llama-style blocks of
`jaxlab.ebt.model` under full bidirectional attention) or "mlp" (SiLU layers over the flattened
pixels: cheap, for tests and sweeps). Both are smooth, so the descent's second derivatives exist.

EBT (`EBTConfig`, `init`, `energy`, `descend`, `ebt_loss`):
- $E_\theta(x, y)$, one scalar per image: each token sees its patch of the noisy image x and of the
  candidate y, and the energy is the mean of a per-token scalar head (the authors average over
  tokens too). `observe_noisy=False` gives $E_\theta(y)$, the authors' image EBT, where x enters
  only as the start of the descent.
- Descent: $y_0 = x$ (the authors' start, the noisy image itself), $y_{k+1} = y_k - \alpha\nabla_y
  E_\theta(x, y_k + \sigma_{LD}\eta_k)$ for K steps; $\alpha$ learnable, stored as $\log\alpha$ so
  that Adam's steps on it are relative; optional Langevin noise (training only).
- Loss on the final step: MSE (the paper; the code's SmoothL1 with beta 1 is half of it wherever
  |error| < 1). Gradient through the whole unrolled chain ("full": exact, cheap at K <= 3) or
  through the last step only ("truncate": the code's `truncate_mcmc`).

Diffusion-style baseline (`DenoiserConfig`, `denoiser_init`, `denoiser_apply`, `denoiser_loss`,
`ddim`, `ddim_denoise`): the same backbone with a per-token (transformer) or per-image (MLP) output
of the noise $\epsilon$ in $x_s = y^* + s\epsilon$, conditioned on Fourier features of $\log s$
(added to every token, or appended to the MLP input), trained with the simple loss
$\|\hat\epsilon - \epsilon\|^2$ on $s \sim U(s_{min}, \sigma]$ (the authors' DiT run trains at the
in-distribution level only). Denoising from an observation at level $\sigma$ is deterministic DDIM
(eta = 0) in variance-exploding form over N uniform levels $s_i = \sigma(1 - i/N)$: $\hat y =
x_{s_i} - s_i\hat\epsilon$, $x_{s_{i+1}} = \hat y + s_{i+1}\hat\epsilon$, the Euler discretisation of
the probability-flow ODE $dx/ds = \hat\epsilon(x, s)$ (Song et al. 2021, eq. 13); N = 1 is one-shot
prediction of the clean image. With the exact noise predictor of Gaussian data, N = 1 gives the
posterior mean and N -> infinity the ODE's transport map (`theory.ebt_denoise`).

Cost (`step_flops`): XLA's FLOP count of one inference step: a denoiser pass, or an EBT step
(forward to E and backward to y, no weight gradients). The paper counts an EBT step as one forward
pass; results are reported both ways.

Metrics: `mse` per image and `psnr` (peak 1) of outputs clipped to [0, 1], as the authors' PSNR of
a batch-mean MSE. Every function is pure with explicit keys; configs are static (hashable) jit
arguments, so everything jits and vmaps over seeds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import core
from jaxlab.ebt import model as transformer

Params = dict[str, Any]
ARCHITECTURES = ("transformer", "mlp")


def _need(ok: bool, cls: str, field: str, value: Any, msg: str) -> None:
  if not ok:
    raise ValueError(f"{cls}.{field}={value!r}: {msg}")


def _check_backbone(cls: str, cfg) -> None:
  for f in ("image_side", "width", "num_layers", "num_heads", "patch_size"):
    v = getattr(cfg, f)
    _need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, cls, f, v,
          "must be a positive integer")
  _need(cfg.architecture in ARCHITECTURES, cls, "architecture", cfg.architecture,
        f"must be one of {ARCHITECTURES}")
  if cfg.architecture == "transformer":
    _need(cfg.image_side % cfg.patch_size == 0, cls, "patch_size", cfg.patch_size,
          f"must divide image_side={cfg.image_side}")
    _need(cfg.width % cfg.num_heads == 0, cls, "num_heads", cfg.num_heads,
          f"must divide width={cfg.width} (the transformer's d_model)")


@dataclasses.dataclass(frozen=True)
class EBTConfig:
  """The energy network and its descent (static: hashable, a jit argument)."""
  image_side: int = 8
  architecture: str = "transformer"
  width: int = 64  # d_model (transformer) or hidden width (mlp)
  num_layers: int = 2
  num_heads: int = 4  # transformer only
  patch_size: int = 2  # transformer only
  observe_noisy: bool = True  # E(x, y); False: E(y), the authors' image EBT
  num_steps: int = 2  # K, the trained horizon
  step_size: float = 1.0  # initial alpha
  learnable_step_size: bool = True
  langevin_std: float = 0.0  # sigma_LD, training only
  gradient: str = "full"  # "full" | "truncate"
  loss: str = "mse"  # "mse" | "smooth_l1"

  def __post_init__(self):
    _check_backbone("EBTConfig", self)
    _need(isinstance(self.num_steps, int) and self.num_steps >= 1, "EBTConfig", "num_steps",
          self.num_steps, "must be a positive integer")
    _need(isinstance(self.observe_noisy, bool), "EBTConfig", "observe_noisy",
          self.observe_noisy, "must be a bool")
    _need(math.isfinite(self.step_size) and self.step_size > 0, "EBTConfig", "step_size",
          self.step_size, "must be finite and > 0")
    _need(math.isfinite(self.langevin_std) and self.langevin_std >= 0, "EBTConfig",
          "langevin_std", self.langevin_std, "must be finite and >= 0")
    _need(self.gradient in ("full", "truncate"), "EBTConfig", "gradient", self.gradient,
          "must be 'full' or 'truncate'")
    _need(self.loss in ("mse", "smooth_l1"), "EBTConfig", "loss", self.loss,
          "must be 'mse' or 'smooth_l1'")

  @property
  def num_pixels(self) -> int:
    return self.image_side ** 2


@dataclasses.dataclass(frozen=True)
class DenoiserConfig:
  """The diffusion-style baseline (static)."""
  image_side: int = 8
  architecture: str = "transformer"
  width: int = 64
  num_layers: int = 2
  num_heads: int = 4
  patch_size: int = 2
  num_frequencies: int = 8  # Fourier features of log s (2 per frequency)
  sigma_min: float = 1e-3  # smallest training level (log s must stay finite)

  def __post_init__(self):
    _check_backbone("DenoiserConfig", self)
    _need(isinstance(self.num_frequencies, int) and self.num_frequencies >= 1, "DenoiserConfig",
          "num_frequencies", self.num_frequencies, "must be a positive integer")
    _need(math.isfinite(self.sigma_min) and self.sigma_min > 0, "DenoiserConfig", "sigma_min",
          self.sigma_min, "must be finite and > 0")

  @property
  def num_pixels(self) -> int:
    return self.image_side ** 2


# ------------------------------------------------------------------------------ data, metrics


def digits(seed: int = 0, test_fraction: float = 0.2) -> tuple[jax.Array, jax.Array]:
  """(train [N, 64], test [M, 64]) clean 8x8 digits in [0, 1], split by `seed`."""
  from jaxlab.predictive_coding import data as pc_data
  d = pc_data.digits(seed=seed, test_fraction=test_fraction)
  return d.train_inputs, d.test_inputs


def add_noise(key: jax.Array, clean_BxP: jax.Array, sigma) -> jax.Array:
  """x = y + sigma * eps (not clipped: the observation model the models are trained on)."""
  return clean_BxP + sigma * jax.random.normal(key, clean_BxP.shape, clean_BxP.dtype)


def mse(pred_BxP: jax.Array, clean_BxP: jax.Array, clip: bool = True) -> jax.Array:
  """[B] mean squared error per image; predictions clipped to [0, 1] first (as for PSNR)."""
  if clip:
    pred_BxP = jnp.clip(pred_BxP, 0.0, 1.0)
  return jnp.mean(jnp.square(pred_BxP - clean_BxP), axis=-1)


def psnr(mean_squared_error, peak: float = 1.0):
  """10 log10(peak^2 / MSE) in dB (pass the batch-mean MSE for the authors' convention)."""
  return 10.0 * jnp.log10(peak * peak / mean_squared_error)


# ------------------------------------------------------------------------------ backbones


def _dense_init(key, n_in, n_out):
  return {"w": jax.random.normal(key, (n_in, n_out)) / math.sqrt(n_in), "b": jnp.zeros(n_out)}


def _mlp_init(key, sizes):
  return [_dense_init(k, a, b) for k, a, b in zip(jax.random.split(key, len(sizes) - 1),
                                                  sizes[:-1], sizes[1:])]


def _mlp(layers, h):
  for i, layer in enumerate(layers):
    h = h @ layer["w"] + layer["b"][None, :]
    if i < len(layers) - 1:
      h = jax.nn.silu(h)
  return h


def patchify(images_BxP: jax.Array, side: int, patch: int) -> jax.Array:
  """[B, side*side] row-major images -> [B, tokens, patch*patch], tokens in row-major order."""
  b, n = side // patch, images_BxP.shape[0]
  x = images_BxP.reshape(n, b, patch, b, patch).transpose(0, 1, 3, 2, 4)
  return x.reshape(n, b * b, patch * patch)


def unpatchify(patches_BxTxQ: jax.Array, side: int, patch: int) -> jax.Array:
  """The inverse of `patchify`."""
  b, n = side // patch, patches_BxTxQ.shape[0]
  x = patches_BxTxQ.reshape(n, b, b, patch, patch).transpose(0, 1, 3, 2, 4)
  return x.reshape(n, side * side)


def _transformer_init(key, cfg, in_channels: int, out_features: int, cond_features: int = 0):
  d, q = cfg.width, cfg.patch_size ** 2
  num_tokens = (cfg.image_side // cfg.patch_size) ** 2
  k_in, k_pos, k_blocks, k_head, k_cond = jax.random.split(key, 5)
  block_cfg = transformer.EBTConfig(vocab_size=1, d_model=d, num_heads=cfg.num_heads,
                                    num_layers=cfg.num_layers)
  params = {"embed": jax.random.normal(k_in, (in_channels * q, d)) / math.sqrt(in_channels * q),
            "position": 0.02 * jax.random.normal(k_pos, (num_tokens, d)),
            "blocks": transformer._init_blocks(k_blocks, block_cfg),
            "final_norm": jnp.ones(d),
            "head": jax.random.normal(k_head, (d, out_features)) / math.sqrt(d)}
  if cond_features:
    params["cond"] = jax.random.normal(k_cond, (cond_features, d)) / math.sqrt(cond_features)
  return params


def _transformer_apply(params, channels: list[jax.Array], cfg, cond_BxC=None) -> jax.Array:
  """[B, tokens, out]: full attention over the patch tokens of the stacked input channels."""
  tokens = jnp.concatenate([patchify(c, cfg.image_side, cfg.patch_size) for c in channels], -1)
  h = tokens @ params["embed"] + params["position"][None]
  if cond_BxC is not None:
    h = h + (cond_BxC @ params["cond"])[:, None, :]
  full = jnp.ones((h.shape[1], h.shape[1]), bool)
  h = transformer._blocks(params["blocks"], h, full, cfg.num_heads)
  return transformer._rms_norm(h, params["final_norm"]) @ params["head"]


def param_count(params: Params) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(params)))


def num_params(cfg: EBTConfig | DenoiserConfig) -> int:
  """The parameter count `init` / `denoiser_init` gives (shapes only: nothing is computed)."""
  make = init if isinstance(cfg, EBTConfig) else denoiser_init
  return param_count(jax.eval_shape(lambda k: make(k, cfg), jax.random.key(0)))


def match_width(cfg: EBTConfig, target: int) -> EBTConfig:
  """MLP: `cfg` with the hidden width whose parameter count is nearest `target`. Transformer:
  `cfg` unchanged (the two models share width, depth and heads; only their small input and output
  maps differ, as between the paper's EBT and DiT)."""
  if cfg.architecture != "mlp":
    return cfg
  n_in, layers = (2 if cfg.observe_noisy else 1) * cfg.num_pixels, cfg.num_layers
  count = lambda h: n_in * h + h + (layers - 1) * (h * h + h) + h + 1 + 1
  best = min(range(1, 4097), key=lambda h: abs(count(h) - target))
  return dataclasses.replace(cfg, width=best)


# ------------------------------------------------------------------------------ the EBT


def init(key: jax.Array, cfg: EBTConfig) -> Params:
  """The energy network and log alpha."""
  channels = 2 if cfg.observe_noisy else 1
  if cfg.architecture == "mlp":
    net = _mlp_init(key, [channels * cfg.num_pixels] + [cfg.width] * cfg.num_layers + [1])
  else:
    net = _transformer_init(key, cfg, channels, 1)
  return {"energy": net, "log_step_size": jnp.asarray(math.log(cfg.step_size))}


def _check_images(name, a, num_pixels):
  if a.ndim != 2 or a.shape[1] != num_pixels:
    raise ValueError(f"{name} must be [batch, {num_pixels}] (flattened images), got shape "
                     f"{a.shape}")


def energy(params: Params, x_BxP: jax.Array, y_BxP: jax.Array, cfg: EBTConfig) -> jax.Array:
  """E [B]: the energy of candidate y[b] as the clean image behind the noisy x[b]."""
  _check_images("x", x_BxP, cfg.num_pixels)
  _check_images("y", y_BxP, cfg.num_pixels)
  if x_BxP.shape != y_BxP.shape:
    raise ValueError(f"x and y must have the same shape, got {x_BxP.shape} and {y_BxP.shape}")
  channels = [x_BxP, y_BxP] if cfg.observe_noisy else [y_BxP]
  if cfg.architecture == "mlp":
    return _mlp(params["energy"], jnp.concatenate(channels, axis=-1))[:, 0]
  return jnp.mean(_transformer_apply(params["energy"], channels, cfg)[..., 0], axis=-1)


def energy_and_grad(params: Params, x_BxP: jax.Array, y_BxP: jax.Array,
                    cfg: EBTConfig) -> tuple[jax.Array, jax.Array]:
  """(E [B], dE/dy [B, P]): images are independent, so one pullback of ones gives each image's.
  Differentiated again (training through the descent) forward-over-reverse (`core.autodiff`)."""
  return core.energy_and_grad(functools.partial(_energy_of_candidate, cfg=cfg), params, y_BxP,
                              x_BxP)


def _energy_of_candidate(params, y_BxP, x_BxP, cfg: EBTConfig):
  return energy(params, x_BxP, y_BxP, cfg)


def step_size(params: Params, cfg: EBTConfig) -> jax.Array:
  if cfg.learnable_step_size:
    return jnp.exp(params["log_step_size"])
  return jnp.asarray(cfg.step_size, params["log_step_size"].dtype)


class Trace(NamedTuple):
  candidates: jax.Array  # [K + 1, B, P]: y_0 = x, then the state after each step
  energies: jax.Array  # [K + 1, B]: E(x, y_k) of each candidate (noise-free)


def _step(params, x, y, alpha, key, cfg: EBTConfig, langevin: bool):
  """One descent step: (y_next, E at the point the gradient was taken)."""
  if langevin and cfg.langevin_std > 0:
    y = y + cfg.langevin_std * jax.random.normal(key, y.shape, y.dtype)
  e, g = energy_and_grad(params, x, y, cfg)
  return y - alpha * g, e


def _chain(params, x, cfg: EBTConfig, num_steps: int, key, langevin: bool, truncate: bool):
  """The K states after y_0 = x, and the energy each step started from."""
  keys = jax.random.split(key, num_steps)
  alpha = step_size(params, cfg)

  def body(p, a):
    def f(y, k):
      y_next, e = _step(p, x, y, a, k, cfg, langevin)
      return y_next, (y_next, e)
    return f

  if truncate and num_steps > 1:
    # Steps 1..K-1 are constants for the parameter gradient; only the last step is differentiated.
    frozen, fixed = jax.lax.stop_gradient(params), jax.lax.stop_gradient(alpha)
    y, (ys, es) = jax.lax.scan(body(frozen, fixed), x, keys[:-1])
    y_last, e_last = _step(params, x, jax.lax.stop_gradient(y), alpha, keys[-1], cfg, langevin)
    return jnp.concatenate([ys, y_last[None]]), jnp.concatenate([es, e_last[None]])
  _, (ys, es) = jax.lax.scan(body(params, alpha), x, keys)
  return ys, es


@functools.partial(jax.jit, static_argnames=("cfg", "num_steps"))
def descend(params: Params, x_BxP: jax.Array, cfg: EBTConfig,
            num_steps: int | None = None) -> Trace:
  """Inference: `num_steps` (default: the trained K) noise-free steps from y_0 = x. The energy of
  the last candidate is one extra evaluation, a diagnostic not counted as a pass."""
  _check_images("x", x_BxP, cfg.num_pixels)
  params = jax.lax.stop_gradient(params)
  num_steps = cfg.num_steps if num_steps is None else num_steps
  ys, es = _chain(params, x_BxP, cfg, num_steps, jax.random.key(0), False, False)
  e_last = energy(params, x_BxP, ys[-1], cfg)
  return Trace(jnp.concatenate([x_BxP[None], ys]), jnp.concatenate([es, e_last[None]]))


def reconstruction_loss(pred_BxP, clean_BxP, kind: str) -> jax.Array:
  """Mean over pixels and images: MSE, or SmoothL1 with beta = 1 (the authors' code)."""
  d = pred_BxP - clean_BxP
  if kind == "mse":
    return jnp.mean(d * d)
  a = jnp.abs(d)
  return jnp.mean(jnp.where(a < 1.0, 0.5 * d * d, a - 0.5))


def ebt_loss(params: Params, clean_BxP: jax.Array, key: jax.Array, cfg: EBTConfig,
             sigma: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Training loss for `core.make_train_step` (bind cfg and sigma): noise the clean batch at
  level sigma, descend K steps from the noisy image, reconstruction loss on the final step."""
  k_noise, k_chain = jax.random.split(key)
  x = add_noise(k_noise, clean_BxP, sigma)
  ys, es = _chain(params, x, cfg, cfg.num_steps, k_chain, True, cfg.gradient == "truncate")
  loss = reconstruction_loss(ys[-1], clean_BxP, cfg.loss)
  aux = {"final_mse": jnp.mean(jnp.square(ys[-1] - clean_BxP)),
         "input_mse": jnp.mean(jnp.square(x - clean_BxP)),
         "energy_drop": jnp.mean(es[0] - es[-1]), "step_size": step_size(params, cfg)}
  return loss, aux


# ------------------------------------------------------------------------------ the baseline


def denoiser_init(key: jax.Array, cfg: DenoiserConfig) -> Params:
  f = 2 * cfg.num_frequencies
  if cfg.architecture == "mlp":
    return {"net": _mlp_init(key, [cfg.num_pixels + f] + [cfg.width] * cfg.num_layers
                             + [cfg.num_pixels])}
  return {"net": _transformer_init(key, cfg, 1, cfg.patch_size ** 2, cond_features=f)}


def noise_features(s_B: jax.Array, num_frequencies: int) -> jax.Array:
  """[B, 2F] sin/cos of log s at frequencies 2^-2 .. 2^(F-3): smooth in the level, covering log s
  from about -7 to 0 (s from 1e-3 to 1) without aliasing."""
  freqs = 2.0 ** (jnp.arange(num_frequencies) - 2.0)
  phase = jnp.log(s_B)[:, None] * freqs[None, :]
  return jnp.concatenate([jnp.sin(phase), jnp.cos(phase)], axis=-1)


def denoiser_apply(params: Params, x_BxP: jax.Array, s_B: jax.Array,
                   cfg: DenoiserConfig) -> jax.Array:
  """Predicted noise eps_hat [B, P] of x = y + s eps (one forward pass)."""
  _check_images("x", x_BxP, cfg.num_pixels)
  if s_B.shape != x_BxP.shape[:1]:
    raise ValueError(f"levels must be [batch] = {x_BxP.shape[:1]}, got shape {s_B.shape}")
  feats = noise_features(s_B, cfg.num_frequencies).astype(x_BxP.dtype)
  if cfg.architecture == "mlp":
    return _mlp(params["net"], jnp.concatenate([x_BxP, feats], axis=-1))
  out = _transformer_apply(params["net"], [x_BxP], cfg, cond_BxC=feats)
  return unpatchify(out, cfg.image_side, cfg.patch_size)


def denoiser_loss(params: Params, clean_BxP: jax.Array, key: jax.Array, cfg: DenoiserConfig,
                  sigma_max: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """DDPM's simple loss: levels s ~ U(sigma_min, sigma_max] per image, ||eps_hat - eps||^2."""
  k_s, k_eps = jax.random.split(key)
  b = clean_BxP.shape[0]
  s = jax.random.uniform(k_s, (b,), clean_BxP.dtype, cfg.sigma_min, sigma_max)
  eps = jax.random.normal(k_eps, clean_BxP.shape, clean_BxP.dtype)
  eps_hat = denoiser_apply(params, clean_BxP + s[:, None] * eps, s, cfg)
  loss = jnp.mean(jnp.square(eps_hat - eps))
  return loss, {"x0_mse": jnp.mean(jnp.square(s[:, None] * (eps_hat - eps)))}


def ddim(eps_fn, x_BxP: jax.Array, sigma, num_steps) -> jax.Array:
  """Deterministic DDIM (eta = 0, variance exploding) from an observation at level `sigma` in
  `num_steps` calls of eps_fn(x [B, P], s [B]) -> eps_hat, at levels sigma (1 - i / N) (the last
  jump to 0). `num_steps` may be traced. Returns the clean-image estimate [B, P]."""
  b = x_BxP.shape[0]
  n = jnp.asarray(num_steps)
  sigma = jnp.asarray(sigma, x_BxP.dtype)

  def body(i, carry):
    x, _ = carry
    s = (sigma * (1.0 - i / n)).astype(x.dtype)
    s_next = (sigma * (1.0 - (i + 1) / n)).astype(x.dtype)
    eps_hat = eps_fn(x, jnp.full((b,), s, x.dtype))
    y0 = x - s * eps_hat
    return y0 + s_next * eps_hat, y0

  _, y0 = jax.lax.fori_loop(0, n, body, (x_BxP, x_BxP))
  return y0


@functools.partial(jax.jit, static_argnames=("cfg",))
def ddim_denoise(params: Params, x_BxP: jax.Array, sigma, num_steps,
                 cfg: DenoiserConfig) -> jax.Array:
  """`ddim` with the trained denoiser (one compilation for every N)."""
  params = jax.lax.stop_gradient(params)
  return ddim(lambda x, s: denoiser_apply(params, x, s, cfg), x_BxP, sigma, num_steps)


# ------------------------------------------------------------------------------ cost


@functools.lru_cache(maxsize=64)
def step_flops(cfg: EBTConfig | DenoiserConfig) -> float:
  """XLA's FLOP count, per image, of one inference step: an EBT step (E and dE/dy, no weight
  gradients) or a denoiser pass. Shapes only: parameters are not materialised."""
  batch = 8
  x = jax.ShapeDtypeStruct((batch, cfg.num_pixels), jnp.zeros(()).dtype)
  if isinstance(cfg, EBTConfig):
    params = jax.eval_shape(lambda k: init(k, cfg), jax.random.key(0))
    fn = lambda p, x: energy_and_grad(p, x, x, cfg)
    lowered = jax.jit(fn).lower(params, x)
  else:
    params = jax.eval_shape(lambda k: denoiser_init(k, cfg), jax.random.key(0))
    fn = lambda p, x: denoiser_apply(p, x, jnp.full((batch,), 0.1, x.dtype), cfg)
    lowered = jax.jit(fn).lower(params, x)
  return float(lowered.cost_analysis()["flops"]) / batch
