r"""Deep linear networks y = W_{L} ... W_2 W_1 x (Saxe, McClelland & Ganguli 2014, sec. 2 and 5).

Parameters are a list of weight matrices, `params[l]` of shape [widths[l+1], widths[l]]. The loss is
Saxe's squared error summed over examples, $\frac12 \sum_\mu \|y^\mu - W x^\mu\|^2$, so that gradient
descent with learning rate $\lambda$ is the discretisation of $\tau \dot W = -\nabla$ with $\tau = 1/\lambda$
(the paper absorbs the factor 2 into $\lambda$ in the same way).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

from jaxlab.nn import mlp_init

Params = list[jax.Array]


@dataclasses.dataclass(frozen=True)
class DeepLinearConfig:
  """Shape of a deep linear net: `widths = (N_1, ..., N_{N_l})`, Saxe's N_l layers of units."""

  widths: tuple[int, ...]
  init_scale: float = 1e-3

  def __post_init__(self):
    if len(self.widths) < 2 or any(int(w) <= 0 for w in self.widths):
      raise ValueError(f"widths must list at least two positive layer sizes, got {self.widths}")

  @property
  def n_layers(self) -> int:
    return len(self.widths)


def init(key: jax.Array, cfg: DeepLinearConfig) -> Params:
  """Small random init: i.i.d. N(0, init_scale^2) entries in every weight matrix."""
  return mlp_init(key, cfg.widths, cfg.init_scale)


def init_decoupled(U: jax.Array, V: jax.Array, layer_scales: jax.Array,
                   hidden_widths: Sequence[int], key: jax.Array | None = None) -> Params:
  r"""Saxe's decoupled init: every layer maps mode $\alpha$ to mode $\alpha$ with a scalar weight.

  $W_l = R_{l+1} \,\mathrm{diag}(\text{layer\_scales}[l])\, R_l^\top$ on the first r columns, with
  $R_1 = V$, $R_{N_l} = U$ and random orthogonal hidden bases (or the identity without `key`).

  Args:
    U: [n_out, n_out] left singular vectors of the target correlation.
    V: [n_in, n_in] right singular vectors.
    layer_scales: [n_layers - 1, r] scalar weight of each mode in each layer (r <= every width);
      balanced init uses u0 ** (1 / (n_layers - 1)) in every layer.
    hidden_widths: widths of the hidden layers.
  """
  n_weights, r = layer_scales.shape
  if n_weights != len(hidden_widths) + 1:
    raise ValueError(f"layer_scales has {n_weights} rows but the net has "
                     f"{len(hidden_widths) + 1} weight matrices")
  widths = [V.shape[0], *hidden_widths, U.shape[0]]
  if r > min(widths):
    raise ValueError(f"{r} modes do not fit through a layer of width {min(widths)}")
  bases = [V]
  keys = jax.random.split(key, max(len(hidden_widths), 1)) if key is not None else None
  for i, width in enumerate(hidden_widths):
    if keys is None:
      bases.append(jnp.eye(width, dtype=V.dtype))
    else:
      q, _ = jnp.linalg.qr(jax.random.normal(keys[i], (width, width), dtype=V.dtype))
      bases.append(q)
  bases.append(U)
  return [(bases[l + 1][:, :r] * layer_scales[l][None, :]) @ bases[l][:, :r].T for l in range(n_weights)]


def end_to_end(params: Params) -> jax.Array:
  """The product W_{L} ... W_1, of shape [n_out, n_in]."""
  total = params[0]
  for w in params[1:]:
    total = w @ total
  return total


def apply(params: Params, x_BxI: jax.Array) -> jax.Array:
  """Outputs y_BxO for inputs x_BxI."""
  h = x_BxI
  for w in params:
    h = h @ w.T
  return h


def loss(params: Params, batch: tuple[jax.Array, jax.Array], key: jax.Array | None = None):
  """Saxe's summed squared error 0.5 * sum_mu |y_mu - W x_mu|^2; aux has the per-example mean."""
  del key
  x_BxI, y_BxO = batch
  if x_BxI.shape[-1] != params[0].shape[1] or y_BxO.shape[-1] != params[-1].shape[0]:
    raise ValueError(f"batch shapes x{x_BxI.shape}, y{y_BxO.shape} do not fit a network mapping "
                     f"{params[0].shape[1]} inputs to {params[-1].shape[0]} outputs")
  err = apply(params, x_BxI) - y_BxO
  total = 0.5 * jnp.sum(err ** 2)
  return total, {"mse": jnp.mean(jnp.sum(err ** 2, axis=-1))}
