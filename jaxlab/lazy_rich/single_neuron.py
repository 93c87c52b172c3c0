r"""The two-layer single-neuron linear network of Kunin et al. 2024, "Get rich quick" (NeurIPS 2024,
arXiv:2406.06158, sec. 3 and Fig. 3): $f(x) = a\, w^\top x$ with layer learning rates.

* Parameters `{"a": [], "w": [d]}`; loss $L = \frac12\sum_i (f(x_i) - y_i)^2$, a sum as in the paper.
* Gradient descent with step $h$ and layer learning rates $\eta_a$, $\eta_w$ (`layer_sgd`, an
  `optax.partition` of two SGDs): $a \leftarrow a - h\eta_a\partial_a L$,
  $w \leftarrow w - h\eta_w\nabla_w L$, the Euler discretisation of the paper's flow
  $\dot\theta = -\eta_\theta \nabla_\theta L$; step $k$ is time $t = kh$.
* Conserved by the flow: $\delta = \eta_w a^2 - \eta_a\|w\|^2$ (upstream $\delta > 0$, balanced $= 0$,
  downstream $< 0$). `init_from_function` places a net at a given $\delta$ with a given function
  $\beta_0 = a_0 w_0$ (Fig. 3 keeps $\beta_0$ and varies $\delta$).
* Whitened tasks (`make_task`): inputs with $X^\top X = I_d$, targets $y = X\beta_*$.
* Observables (`observables`): $\mu = a\|w\|$, $\phi = \cos\angle(w, \beta_*)$,
  $\nu = w^\top\beta_*/a$, $\delta$.
* Laziness: the kernel distance $S(0, t)$ of the $\eta$-weighted NTK
  $K = \sum_p \eta_p \partial_p f\, \partial_p f^\top$ on the training inputs
  (`kernel_distance_from_init`, built on `lazy_rich.empirical_ntk` and `lazy_rich.kernel_distance`).

The closed forms live in `theory/lazy_rich/kunin.py`; this module does not use them.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab.deep_linear import random_orthogonal
from jaxlab.lazy_rich.metrics import kernel_distance
from jaxlab.lazy_rich.ntk import empirical_ntk

Params = dict[str, jax.Array]

_random_orthogonal = jax.jit(random_orthogonal, static_argnums=(1, 2))  # one compile, not op by op


@dataclasses.dataclass(frozen=True)
class SingleNeuronConfig:
  """A random init with a prescribed function norm |beta_0| and conserved delta (direction uniform)."""

  dim: int
  beta0_norm: float = 1.0
  delta: float = 0.0
  eta_a: float = 1.0
  eta_w: float = 1.0

  def __post_init__(self):
    if int(self.dim) <= 0:
      raise ValueError(f"dim must be positive, got {self.dim}")


class Task(NamedTuple):
  x: jax.Array  # [n, d] inputs, one per row, with x^T x = I_d
  y: jax.Array  # [n] targets x @ beta_star
  beta_star: jax.Array  # [d] the regression target X^T y


def make_task(beta_star, *, n: int | None = None, key: jax.Array | None = None) -> Task:
  """A whitened regression task: X [n, d] with orthonormal columns (X = I_d without a key)."""
  beta_star = jnp.asarray(beta_star, dtype=jnp.result_type(float))
  d = beta_star.shape[-1]
  n = d if n is None else n
  if beta_star.ndim != 1 or n < d:
    raise ValueError(f"need a 1-D beta_star and n >= d, got shape {beta_star.shape} and n={n}")
  if key is None:
    x = jnp.eye(n, d, dtype=beta_star.dtype)
  else:
    x = _random_orthogonal(key, n, beta_star.dtype)[:, :d]
  return Task(x=x, y=x @ beta_star, beta_star=beta_star)


def init_from_function(beta0, delta, eta_a=1.0, eta_w=1.0) -> Params:
  """The net with function beta0 = a w, conserved delta and a > 0.

  a^2 is the positive root of eta_w a^4 - delta a^2 - eta_a |beta0|^2 = 0 (the official notebook's
  `coordinates`, with learning rates); w = beta0 / a. Traceable in beta0, delta and the rates.
  """
  beta0 = jnp.asarray(beta0, dtype=jnp.result_type(float))
  norm_sq = jnp.sum(beta0 ** 2)
  a = jnp.sqrt((delta + jnp.sqrt(delta ** 2 + 4.0 * eta_a * eta_w * norm_sq)) / (2.0 * eta_w))
  return {"a": a, "w": beta0 / a}


def init(key: jax.Array, cfg: SingleNeuronConfig) -> Params:
  """beta_0 uniform on the sphere of radius cfg.beta0_norm, split into (a, w) at cfg.delta."""
  direction = jax.random.normal(key, (cfg.dim,))
  beta0 = cfg.beta0_norm * direction / jnp.linalg.norm(direction)
  return init_from_function(beta0, cfg.delta, cfg.eta_a, cfg.eta_w)


def apply(params: Params, x_BxD: jax.Array) -> jax.Array:
  """f(x) = a w^T x for each row: outputs [B]."""
  return params["a"] * (x_BxD @ params["w"])


def loss(params: Params, batch: tuple[jax.Array, jax.Array], key: jax.Array | None = None):
  """0.5 * sum_i (f(x_i) - y_i)^2 (the paper's sum); aux has the per-example mean squared error."""
  del key
  x_BxD, y_B = batch
  if x_BxD.shape[-1] != params["w"].shape[-1] or y_B.shape != x_BxD.shape[:1]:
    raise ValueError(f"batch shapes x{x_BxD.shape}, y{y_B.shape} do not fit a neuron with "
                     f"{params['w'].shape[-1]} inputs and one output")
  err = apply(params, x_BxD) - y_B
  return 0.5 * jnp.sum(err ** 2), {"mse": jnp.mean(err ** 2)}


def layer_learning_rates(eta_a=1.0, eta_w=1.0) -> Params:
  """The per-leaf learning rates as a params-shaped pytree (`param_weights` of `empirical_ntk`)."""
  return {"a": eta_a, "w": eta_w}


def layer_sgd(step_size, eta_a=1.0, eta_w=1.0) -> optax.GradientTransformation:
  """SGD with step h * eta_a on a and h * eta_w on w: time t = step * h in the paper's flow."""
  return optax.partition({"a": optax.sgd(step_size * eta_a), "w": optax.sgd(step_size * eta_w)},
                         {"a": "a", "w": "w"})


def conserved_delta(params: Params, eta_a=1.0, eta_w=1.0) -> jax.Array:
  """delta = eta_w a^2 - eta_a |w|^2 (params may carry leading batch axes)."""
  return eta_w * params["a"] ** 2 - eta_a * jnp.sum(params["w"] ** 2, axis=-1)


def observables(params: Params, beta_star: jax.Array, eta_a=1.0, eta_w=1.0) -> dict[str, jax.Array]:
  """mu = a |w| (signed with a), phi = cos angle(w, beta_*), nu = w^T beta_* / a, and delta."""
  a, w = params["a"], params["w"]
  w_norm = jnp.linalg.norm(w, axis=-1)
  along = w @ beta_star
  return {"mu": a * w_norm, "phi": along / (w_norm * jnp.linalg.norm(beta_star)), "nu": along / a,
          "delta": conserved_delta(params, eta_a, eta_w)}


def ntk(params: Params, x: jax.Array, eta_a=1.0, eta_w=1.0) -> jax.Array:
  """The eta-weighted empirical NTK [n, n] on inputs x."""
  return empirical_ntk(apply, params, x, param_weights=layer_learning_rates(eta_a, eta_w))


def kernel_distance_from_init(params0: Params, params: Params, x: jax.Array, eta_a=1.0,
                              eta_w=1.0) -> jax.Array:
  """S(0, t) = 1 - <K_0, K_t>_F / (|K_0|_F |K_t|_F) of the eta-weighted NTK on x (vmap over params)."""
  return kernel_distance(ntk(params0, x, eta_a, eta_w), ntk(params, x, eta_a, eta_w))
