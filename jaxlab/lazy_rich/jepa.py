r"""Deep linear self-distillation (JEPA) vs reconstruction (MAE) (Littwin et al., NeurIPS 2024).

Littwin, Saremi, Advani, Thilak, Nakkiran, Huang & Susskind, "How JEPA avoids noisy features: the
implicit bias of deep linear self distillation networks" (arXiv:2407.03475). Two views $x$, $y$ of
a datum, a deep linear encoder $\bar W = W_L \cdots W_1$ (built with `jaxlab.deep_linear`) and a
linear head $V$:

* JEPA (self-distillation with stop-gradient): $\mathcal L = \frac12 \mathbb E\|V\bar W x -
  \mathrm{sg}(\bar W y)\|^2$, with $V$ a latent-to-latent predictor [width, width];
* MAE (reconstruction): $\mathcal L = \frac12 \mathbb E\|V\bar W x - y\|^2$, with $V$ a decoder
  [n_features, width].

The expectation is the mean over examples, so gradient descent with step $\eta$ discretises the
gradient flow of `theory.lazy_rich.jepa` at time $t = \eta \cdot \text{step}$.

Data (`make_views`): in a Haar-random rotated basis $Q$, $\Sigma_{xx} = Q\,\mathrm{diag}(\lambda)
Q^\top$, $\Sigma_{yx} = Q\,\mathrm{diag}(\lambda\rho)Q^\top$ and $\Sigma_{yy} = \Sigma_{xx}$ (two
views with the same marginal), so $\rho_i$ is the regression coefficient of view $y$ on view $x$
along feature $i$. For example $x = z + \xi$, $y = z + \xi'$ with signal variance $\gamma$ and noise
variance $\sigma^2$ give $\lambda = \gamma + \sigma^2$, $\rho = \gamma / (\gamma + \sigma^2)$ and
$\lambda\rho = \gamma$: noisy features have a large $\lambda$ and a small $\rho$. The finite
sample's moments are exact (whitened construction), so full-batch descent on it is descent on the
population loss; and since the basis is rotated, a full-matrix simulation genuinely tests the
per-feature reduction.

Initialisations: `init_decoupled` / `init_balanced` make every weight map feature $i$ to itself
through random orthogonal latent bases with scalar gains (the paper's small balanced init when every
gain is $\varepsilon^{1/L}$, so that the encoder starts at $\bar w = \varepsilon$); `init` is a
small i.i.d. Gaussian init, which couples the features.

Observables, basis-free in the latent space: the encoder strength of feature $i$ is $\|\bar W q_i\|$
($= |\bar w_i|$ for a decoupled init); the head strength is $V$'s gain along the feature's latent
direction (the scalar $v_i$ of a decoupled init).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxlab import deep_linear as dl

Params = dict[str, Any]  # {"encoder": [W_1, ..., W_L], "head": V}
OBJECTIVES = ("jepa", "mae")


@dataclasses.dataclass(frozen=True)
class JepaConfig:
  """Shapes: `n_features` inputs, `depth` encoder layers of `width` units, the `objective`'s head.

  `init_scale` is the standard deviation of `init`'s i.i.d. Gaussian entries.
  """

  n_features: int
  depth: int
  width: int
  objective: str = "jepa"
  init_scale: float = 1e-2

  def __post_init__(self):
    if self.objective not in OBJECTIVES:
      raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
    if min(self.n_features, self.depth, self.width) <= 0:
      raise ValueError(f"n_features, depth and width must be positive, got {self}")

  @property
  def head_shape(self) -> tuple[int, int]:
    return (self.width, self.width) if self.objective == "jepa" else (self.n_features, self.width)


class Views(NamedTuple):
  x: jax.Array  # [N, D] view 1 (context / visible part)
  y: jax.Array  # [N, D] view 2 (target / masked part)
  Q: jax.Array  # [D, D] feature directions, one per column
  lam: jax.Array  # [D] Sigma_xx eigenvalues (per-feature covariance)
  rho: jax.Array  # [D] per-feature regression coefficient of y on x


def make_views(key: jax.Array, lam, rho, n_samples: int) -> Views:
  r"""N pairs whose empirical moments are exactly $\Sigma_{xx} = \Sigma_{yy} = Q\Lambda Q^\top$ and
  $\Sigma_{yx} = Q\Lambda R Q^\top$ ($\Lambda = \mathrm{diag}(\lambda)$, $R = \mathrm{diag}(\rho)$).

  In the feature basis, $\tilde x = \sqrt{\lambda}\, a$ and $\tilde y = \rho\tilde x +
  \sqrt{\lambda(1 - \rho^2)}\, b$, where $[a, b]$ has orthogonal columns, $\frac1N [a, b]^\top [a, b] =
  I$.
  """
  lam = jnp.asarray(lam, dtype=jnp.result_type(float))
  rho = jnp.asarray(rho, dtype=lam.dtype)
  d = lam.shape[0]
  if lam.ndim != 1 or rho.shape != lam.shape:
    raise ValueError(f"lam and rho must be vectors of one length, got {lam.shape} and {rho.shape}")
  if not isinstance(rho, jax.core.Tracer) and (bool(jnp.any(jnp.abs(rho) > 1))
                                                or bool(jnp.any(lam <= 0))):
    raise ValueError(f"need lam > 0 and |rho| <= 1 (a correlation), got lam={lam}, rho={rho}")
  if n_samples < 2 * d:
    raise ValueError(f"exact moments of {d} features need n_samples >= {2 * d}, got {n_samples}")
  k_q, k_z = jax.random.split(key)
  Q = dl.random_orthogonal(k_q, d, lam.dtype)
  z, _ = jnp.linalg.qr(jax.random.normal(k_z, (n_samples, 2 * d), dtype=lam.dtype))
  z = jnp.sqrt(float(n_samples)) * z  # z^T z / N = I
  x_feat = z[:, :d] * jnp.sqrt(lam)[None, :]
  y_feat = rho[None, :] * x_feat + z[:, d:] * jnp.sqrt(lam * (1.0 - rho ** 2))[None, :]
  return Views(x=x_feat @ Q.T, y=y_feat @ Q.T, Q=Q, lam=lam, rho=rho)


def moments(views: Views) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The empirical (Sigma_xx, Sigma_yx, Sigma_yy) of a sample, each [D, D]."""
  n = views.x.shape[0]
  return views.x.T @ views.x / n, views.y.T @ views.x / n, views.y.T @ views.y / n


def init(key: jax.Array, cfg: JepaConfig) -> Params:
  """Small random init: i.i.d. N(0, init_scale^2) entries in every encoder layer and the head."""
  k_enc, k_head = jax.random.split(key)
  widths = (cfg.n_features,) + (cfg.width,) * cfg.depth
  encoder = dl.init(k_enc, dl.DeepLinearConfig(widths, cfg.init_scale))
  return {"encoder": encoder,
          "head": cfg.init_scale * jax.random.normal(k_head, cfg.head_shape)}


def init_decoupled(key: jax.Array, cfg: JepaConfig, Q: jax.Array, gains: jax.Array) -> Params:
  r"""Every weight maps feature $i$ to itself: $W_l = R_l\,\mathrm{diag}(g_l)R_{l-1}^\top$ with
  $R_0 = Q$ and random orthogonal latent bases $R_1, \dots, R_L$; the head is
  $R_L\,\mathrm{diag}(g_{L+1})R_L^\top$ (JEPA) or $Q\,\mathrm{diag}(g_{L+1})R_L^\top$ (MAE).

  Args:
    Q: [D, D] the data's feature directions (`Views.Q`).
    gains: [depth + 1, D] scalar gain of each feature in each encoder layer, then in the head.
  """
  d = cfg.n_features
  if gains.shape != (cfg.depth + 1, d):
    raise ValueError(f"gains must have shape {(cfg.depth + 1, d)}, got {gains.shape}")
  if d > cfg.width:
    raise ValueError(f"{d} features do not fit through a latent of width {cfg.width}")
  k_out, k_hidden = jax.random.split(key)
  r_out = dl.random_orthogonal(k_out, cfg.width, Q.dtype)
  encoder = dl.init_decoupled(r_out, Q, gains[:-1], [cfg.width] * (cfg.depth - 1), key=k_hidden)
  left = r_out[:, :d] if cfg.objective == "jepa" else Q
  return {"encoder": encoder, "head": (left * gains[-1][None, :]) @ r_out[:, :d].T}


def init_balanced(key: jax.Array, cfg: JepaConfig, Q: jax.Array, eps) -> Params:
  r"""The paper's balanced init: every layer and the head start at gain $\varepsilon^{1/L}$ on every
  feature, so the encoder starts at $\bar w_i = \varepsilon$ (`eps`: a scalar, or one per feature)."""
  u0 = jnp.broadcast_to(jnp.asarray(eps, Q.dtype) ** (1.0 / cfg.depth), (cfg.n_features,))
  return init_decoupled(key, cfg, Q, jnp.broadcast_to(u0[None, :], (cfg.depth + 1, cfg.n_features)))


def encoder_matrix(params: Params) -> jax.Array:
  """The end-to-end encoder W_L ... W_1: [width, n_features]."""
  return dl.end_to_end(params["encoder"])


def encode(params: Params, x_BxD: jax.Array) -> jax.Array:
  """Latents z_BxH = x W^T."""
  return dl.apply(params["encoder"], x_BxD)


def apply(params: Params, x_BxD: jax.Array) -> jax.Array:
  """The head's output: the predicted target latent (JEPA) or the reconstructed view (MAE)."""
  return encode(params, x_BxD) @ params["head"].T


def _check(params: Params, batch) -> None:
  x, y = batch
  d_in = params["encoder"][0].shape[1]
  if x.shape[-1] != d_in or y.shape[-1] != d_in:
    raise ValueError(
        f"views of shapes x{x.shape}, y{y.shape} do not fit an encoder of {d_in} inputs")


def jepa_loss(params: Params, batch: tuple[jax.Array, jax.Array], key: jax.Array | None = None, *,
              stop_gradient: bool = True):
  r"""$\frac12\,\mathrm{mean}_\mu \|V\bar W x_\mu - \mathrm{sg}(\bar W y_\mu)\|^2$.

  `stop_gradient=False` lets the gradient flow through the target branch too (the ablation that
  collapses the encoder; a negative control).
  """
  del key
  _check(params, batch)
  x, y = batch
  target = encode(params, y)
  if stop_gradient:
    target = jax.lax.stop_gradient(target)
  err = apply(params, x) - target
  loss = 0.5 * jnp.mean(jnp.sum(err ** 2, axis=-1))
  return loss, {"latent_norm": jnp.sqrt(jnp.mean(jnp.sum(target ** 2, axis=-1)))}


def mae_loss(params: Params, batch: tuple[jax.Array, jax.Array], key: jax.Array | None = None):
  r"""$\frac12\,\mathrm{mean}_\mu \|V\bar W x_\mu - y_\mu\|^2$."""
  del key
  _check(params, batch)
  x, y = batch
  err = apply(params, x) - y
  return 0.5 * jnp.mean(jnp.sum(err ** 2, axis=-1)), {}


def loss_fn(cfg: JepaConfig):
  """The loss of `cfg.objective`."""
  return jepa_loss if cfg.objective == "jepa" else mae_loss


def feature_strengths(params: Params, Q: jax.Array) -> jax.Array:
  r"""$\|\bar W q_i\|$ for each feature direction $q_i$ (columns of Q): [D]."""
  return jnp.linalg.norm(encoder_matrix(params) @ Q, axis=0)


def head_strengths(params: Params, Q: jax.Array, objective: str) -> jax.Array:
  r"""The head's gain along each feature's latent direction $z_i = \bar W q_i$: [D].

  JEPA: $z_i^\top V z_i / \|z_i\|^2$ (the predictor maps the latent to itself); MAE:
  $q_i^\top V z_i / \|z_i\|$ (the decoder maps it back to $q_i$). Both equal the head gain $v_i$ of a decoupled init.
  """
  z = encoder_matrix(params) @ Q  # [H, D]
  out = params["head"] @ z
  if objective == "jepa":
    return jnp.sum(z * out, axis=0) / jnp.sum(z ** 2, axis=0)
  if objective == "mae":
    return jnp.sum(Q * out, axis=0) / jnp.linalg.norm(z, axis=0)
  raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def feature_coupling(params: Params, Q: jax.Array) -> jax.Array:
  r"""Largest |cosine| between two features' latent directions $\bar W q_i$, $\bar W q_j$ (0 while
  the features stay decoupled)."""
  z = encoder_matrix(params) @ Q
  z = z / jnp.linalg.norm(z, axis=0)[None, :]
  gram = z.T @ z
  return jnp.max(jnp.abs(gram - jnp.diag(jnp.diagonal(gram))))
