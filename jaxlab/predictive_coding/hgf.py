r"""Hierarchical Gaussian filters (HGF): binary and continuous inputs, volatility chains of any
depth, the standard and the eHGF update orders, as pure functions scanned over trials.

Sources: Mathys, Daunizeau, Friston & Stephan 2011 (Front. Hum. Neurosci. 5:39; the 3-level binary
HGF: generative model, the variational update equations in the variance form and their reading as
precision-weighted prediction errors); Mathys et al. 2014 (Front. Hum. Neurosci. 8:825; n levels,
continuous inputs, the update in terms of value and volatility prediction errors); Weber et al. 2024
("The generalized Hierarchical Gaussian Filter", arXiv:2305.10937; the eHGF order). The papers' text
could not be opened here, so no equation numbers are quoted: every update below is named by content
and derived again, independently, in `theory/hgf.py` as one Newton step on that level's variational
energy (the tests hold the two derivations side by side).

Generative model (unit time steps). Gaussian levels x_1 .. x_G perform random walks whose step
variance is set by the level above (volatility coupling kappa_j, tonic volatility omega_j):

  x_j^(k) ~ N(x_j^(k-1), exp(kappa_j x_{j+1}^(k) + omega_j)),  x_G^(k) ~ N(x_G^(k-1), exp(omega_G)).

The input u^(k) hangs below x_1 by value coupling: binary, u ~ Bernoulli(s(x_1)) with s the logistic
sigmoid (an n-level binary HGF, n = G + 1: the papers call the binary state level 1 and our x_1 its
level 2); or continuous, u ~ N(x_1, 1/pi_u) (an n-level continuous HGF, n = G).

One trial, given the previous posteriors (mu_j, pi_j):
  prediction   mu_hat_j = mu_j, nu_j = exp(kappa_j mu_{j+1} + omega_j), pi_hat_j = 1/(1/pi_j + nu_j)
  input level  binary:      mu_hat_in = s(mu_hat_1), pi_1 = pi_hat_1 + mu_hat_in (1 - mu_hat_in),
                            mu_1 = mu_hat_1 + (u - mu_hat_in) / pi_1
               continuous:  pi_1 = pi_hat_1 + pi_u,  mu_1 = mu_hat_1 + pi_u / pi_1 (u - mu_hat_1)
  level j -> j+1 (volatility prediction error and the effective weight of the child's prediction)
               delta_j = mu_j - mu_hat_j,  Delta_j = pi_hat_j / pi_j + pi_hat_j delta_j^2 - 1,
               w_j = nu_j pi_hat_j
               pi_{j+1} = pi_hat_{j+1} + kappa_j^2 / 2 w_j (w_j + (2 w_j - 1) Delta_j)
               mu_{j+1} = mu_hat_{j+1} + kappa_j / 2 w_j Delta_j / pi_{j+1}      ("standard")
               mu_{j+1} = mu_hat_{j+1} + kappa_j / 2 w_j Delta_j / pi_hat_{j+1}  ("ehgf")

The eHGF updates a volatility parent's mean first, dividing by its predicted precision, and then its
precision; the precision formula is the same in both orders (w_j and Delta_j do not depend on the
parent's new mean), so the orders differ only in that division: (mu - mu_hat) standard / ehgf =
pi_hat / pi exactly, and they coincide when kappa = 0. Value parents (the first Gaussian level) use
their posterior precision in both orders: for a Gaussian child that is the exact Kalman update.
(pyhgf's current eHGF node update, read in its source, also divides value-coupling updates by the
predicted precision; that variant is not implemented here.)

Precisions are not guaranteed positive: w_j + (2 w_j - 1) Delta_j < 0 when w_j < 1/2 and
Delta_j > w_j / (1 - 2 w_j) (a large surprise under a confident prediction), and strong coupling
(large kappa, omega of the top level) or a sudden large rise in volatility drives a precision below
zero within a few trials. Nothing is clipped, so that shows up in the trajectory instead of hiding.

Contents: the node updates (`predict`, `value_prediction_error`, `volatility_prediction_error`,
`binary_value_update`, `gaussian_value_update`, `volatility_update`, surprises); `step`, one pure
trial; `binary_hgf` / `continuous_hgf`, that step under `lax.scan` (jitted; vmap over parameters or
sequences); parameter builders; and simulated environments whose volatility changes by block.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

ORDERS = ("standard", "ehgf")
_KINDS = {"binary": 3, "continuous": 2}  # the fewest levels each network has


class HGFParams(NamedTuple):
  """Parameters of an HGF with G Gaussian levels (index j = 0 is the level the input hangs from).

  omega [G]: tonic volatilities; kappa [G-1]: volatility coupling of level j to j+1; mu0, pi0 [G]:
  the posterior before the first trial; pi_u []: input precision (continuous HGF; None for binary).
  Every leaf is an array, so `jax.vmap` sweeps any of them.
  """

  omega: jax.Array
  kappa: jax.Array
  mu0: jax.Array
  pi0: jax.Array
  pi_u: jax.Array | None = None


class HGFTrajectory(NamedTuple):
  """Per-trial outputs of an HGF run over T trials (G Gaussian levels).

  mu, pi [T, G]: posteriors. mu_hat, pi_hat [T, G]: predictions made before the trial's input.
  prediction [T]: predicted input mean, s(mu_hat_1) (binary) or mu_hat_1 (continuous).
  input_pe [T]: u - prediction. value_pe [T, G]: delta_j = mu_j - mu_hat_j, the precision-weighted
  prediction error that moved level j (and the value prediction error its volatility parent sees).
  volatility_pe [T, G-1]: Delta_j sent from level j to its volatility parent.
  learning_rate [T]: the Rescorla-Wagner rate the update implies on the input scale,
  (next prediction - prediction) / input_pe: pi_u/pi_1 (continuous) and
  (s(mu_1) - s(mu_hat_1)) / (u - s(mu_hat_1)) ~ s'(mu_hat_1)/pi_1 (binary; 1/pi[:, 0] is the
  weight on the logit scale). surprise [T]: -log p(u_k | u_<k) under the filter's prediction; its
  sum is the negative log-likelihood used to fit the parameters.
  """

  mu: jax.Array
  pi: jax.Array
  mu_hat: jax.Array
  pi_hat: jax.Array
  prediction: jax.Array
  input_pe: jax.Array
  value_pe: jax.Array
  volatility_pe: jax.Array
  learning_rate: jax.Array
  surprise: jax.Array


# ----------------------------------------------------------------------------------------------
# Node-level updates (elementwise: any matching shapes).


def predict(mu, pi, mu_parent, kappa, omega):
  """(mu_hat, pi_hat, nu): a Gaussian random-walk level's prediction under volatility coupling.

  nu = exp(kappa mu_parent + omega) is the predicted step variance; the top level passes kappa = 0.
  """
  nu = jnp.exp(kappa * mu_parent + omega)
  return mu, 1.0 / (1.0 / pi + nu), nu


def value_prediction_error(mu, mu_hat):
  return mu - mu_hat


def volatility_prediction_error(mu, pi, mu_hat, pi_hat):
  """Delta = pi_hat / pi + pi_hat (mu - mu_hat)^2 - 1 = (1/pi + delta^2) pi_hat - 1: how much more
  (> 0) or less (< 0) the level moved, its posterior uncertainty included, than predicted."""
  return pi_hat / pi + pi_hat * (mu - mu_hat) ** 2 - 1.0


def binary_value_update(u, mu_hat, pi_hat):
  """(mu, pi, mu_hat_in) of the value parent of a binary input through the sigmoid."""
  mu_hat_in = jax.nn.sigmoid(mu_hat)
  pi_post = pi_hat + mu_hat_in * (1.0 - mu_hat_in)
  return mu_hat + (u - mu_hat_in) / pi_post, pi_post, mu_hat_in


def gaussian_value_update(u, mu_hat, pi_hat, pi_u):
  """(mu, pi) of the value parent of a Gaussian input of precision pi_u (a Kalman update)."""
  pi_post = pi_hat + pi_u
  return mu_hat + pi_u / pi_post * (u - mu_hat), pi_post


def volatility_update(mu_hat, pi_hat, w_child, vope_child, kappa, order="standard"):
  """(mu, pi) of a volatility parent given its child's effective weight w = nu pi_hat_child and
  volatility prediction error Delta. `order` picks the precision that divides the mean update:
  "standard" / "ehgf", or a traced 0/1 flag (1 = ehgf) so both orders share one compilation."""
  ehgf = _order_flag(order)
  pi_post = pi_hat + 0.5 * kappa ** 2 * w_child * (w_child + (2.0 * w_child - 1.0) * vope_child)
  step = 0.5 * kappa * w_child * vope_child
  return mu_hat + step / jnp.where(ehgf, pi_hat, pi_post), pi_post


def _order_flag(order):
  if isinstance(order, str):
    if order not in ORDERS:
      raise ValueError(f"unknown HGF update order {order!r}; use one of {ORDERS}")
    return order == "ehgf"
  return order


def binary_surprise(u, mu_hat):
  """-log p(u | s(mu_hat)) = u softplus(-mu_hat) + (1 - u) softplus(mu_hat) (no log of 0)."""
  return u * jax.nn.softplus(-mu_hat) + (1.0 - u) * jax.nn.softplus(mu_hat)


def gaussian_surprise(u, mu_hat, pi_hat, pi_u):
  """-log N(u; mu_hat, 1/pi_hat + 1/pi_u): the predictive of the input adds the noise variance."""
  var = 1.0 / pi_hat + 1.0 / pi_u
  return 0.5 * (jnp.log(2.0 * jnp.pi * var) + (u - mu_hat) ** 2 / var)


# ----------------------------------------------------------------------------------------------
# Networks.


def binary_params(num_levels: int, omega, kappa=1.0, mu0=0.0, pi0=1.0) -> HGFParams:
  """Parameters of an n-level binary HGF (levels 2..n Gaussian: G = n - 1 entries per level field,
  n - 2 couplings); scalars are broadcast over the levels."""
  return _make_params("binary", num_levels, omega, kappa, mu0, pi0, None)


def continuous_params(num_levels: int, omega, pi_u, kappa=1.0, mu0=0.0, pi0=1.0) -> HGFParams:
  """Parameters of an n-level continuous HGF (levels 1..n Gaussian: G = n entries per level field,
  n - 1 couplings, and the input precision pi_u)."""
  return _make_params("continuous", num_levels, omega, kappa, mu0, pi0, pi_u)


def binary_hgf(params: HGFParams, observations, order: str = "standard") -> HGFTrajectory:
  """Runs a binary HGF over observations u [T] in {0, 1}; returns the per-trial trajectory."""
  _check_params(params, "binary", order)
  u_T = jnp.asarray(observations)
  _check_observations(u_T)
  if not isinstance(u_T, jax.core.Tracer):  # values can only be checked outside a trace
    values = np.asarray(u_T)
    bad = np.flatnonzero((values != 0) & (values != 1))
    if bad.size:
      raise ValueError(f"binary HGF observations must be 0 or 1; trial {bad[0]} is "
                       f"{values[bad[0]].item()!r} ({bad.size} such trials)")
  return _run(params, u_T.astype(jnp.result_type(params.mu0)), order == "ehgf", "binary")


def continuous_hgf(params: HGFParams, observations, order: str = "standard") -> HGFTrajectory:
  """Runs a continuous HGF over real observations u [T]; returns the per-trial trajectory."""
  _check_params(params, "continuous", order)
  u_T = jnp.asarray(observations)
  _check_observations(u_T)
  return _run(params, u_T.astype(jnp.result_type(params.mu0)), order == "ehgf", "continuous")


# The order is a traced flag, not a static argument: both orders run on one compiled scan.
@functools.partial(jax.jit, static_argnames="kind")
def _run(params: HGFParams, u_T: jax.Array, ehgf, kind: str) -> HGFTrajectory:
  def body(carry, u):
    out = step(params, *carry, u, kind, ehgf)
    return (out.mu, out.pi), out

  _, trajectory = lax.scan(body, (params.mu0, params.pi0), u_T)
  return trajectory


def step(params: HGFParams, mu_G, pi_G, u, kind: str, order="standard") -> HGFTrajectory:
  """One trial of a `kind` ("binary" / "continuous") HGF: from the previous posteriors mu_G, pi_G
  [G] and the input u, every per-trial output (fields unbatched: mu [G], ..., surprise []). The
  pure step that `binary_hgf` / `continuous_hgf` scan; inputs are not checked here."""
  g = mu_G.shape[0]
  zero = jnp.zeros((1,), mu_G.dtype)
  # Level j's step variance is set by level j+1's previous mean; the top level's is tonic.
  mu_hat, pi_hat, nu = predict(mu_G, pi_G, jnp.concatenate([mu_G[1:], zero]),
                               jnp.concatenate([params.kappa, zero]), params.omega)
  if kind == "binary":
    mu_1, pi_1, prediction = binary_value_update(u, mu_hat[0], pi_hat[0])
    pe = u - prediction
    # pe is 0 only if the sigmoid saturates; then the linearised rate s'/pi_1 is the limit
    learning_rate = jnp.where(pe != 0,
                              (jax.nn.sigmoid(mu_1) - prediction) / jnp.where(pe != 0, pe, 1.0),
                              prediction * (1.0 - prediction) / pi_1)
    surprise = binary_surprise(u, mu_hat[0])
  else:
    mu_1, pi_1 = gaussian_value_update(u, mu_hat[0], pi_hat[0], params.pi_u)
    prediction = mu_hat[0]
    learning_rate = params.pi_u / pi_1
    surprise = gaussian_surprise(u, mu_hat[0], pi_hat[0], params.pi_u)
  mus, pis, vopes = [mu_1], [pi_1], []
  for j in range(1, g):  # bottom-up: each parent needs its child's posterior
    vope = volatility_prediction_error(mus[-1], pis[-1], mu_hat[j - 1], pi_hat[j - 1])
    mu_j, pi_j = volatility_update(mu_hat[j], pi_hat[j], nu[j - 1] * pi_hat[j - 1], vope,
                                   params.kappa[j - 1], _order_flag(order))
    mus.append(mu_j)
    pis.append(pi_j)
    vopes.append(vope)
  mu_new, pi_new = jnp.stack(mus), jnp.stack(pis)
  return HGFTrajectory(mu=mu_new, pi=pi_new, mu_hat=mu_hat, pi_hat=pi_hat, prediction=prediction,
                       input_pe=u - prediction, value_pe=value_prediction_error(mu_new, mu_hat),
                       volatility_pe=jnp.stack(vopes), learning_rate=learning_rate,
                       surprise=surprise)


def _make_params(kind, num_levels, omega, kappa, mu0, pi0, pi_u) -> HGFParams:
  if not isinstance(num_levels, (int, np.integer)) or num_levels < _KINDS[kind]:
    raise ValueError(f"a {kind} HGF needs num_levels >= {_KINDS[kind]}, got {num_levels!r}")
  g = num_levels - 1 if kind == "binary" else num_levels

  def levels(name, value, n):
    value = jnp.asarray(value, dtype=float)
    if value.ndim == 0:
      return jnp.full((n,), value)
    if value.shape != (n,):
      raise ValueError(f"{name} has shape {value.shape} but a {num_levels}-level {kind} HGF needs "
                       f"{n} values (a scalar is broadcast)")
    return value

  return HGFParams(omega=levels("omega", omega, g), kappa=levels("kappa", kappa, g - 1),
                   mu0=levels("mu0", mu0, g), pi0=levels("pi0", pi0, g),
                   pi_u=None if pi_u is None else jnp.asarray(pi_u, dtype=float))


def _check_params(params: HGFParams, kind: str, order: str) -> None:
  if order not in ORDERS:
    raise ValueError(f"unknown HGF update order {order!r}; use one of {ORDERS}")
  shape = jnp.shape(params.omega)
  if len(shape) != 1:
    raise ValueError(f"params.omega must be 1-D (one entry per Gaussian level), got shape {shape}; "
                     "vmap over a batch of parameters instead of passing it in")
  g = shape[0]
  offset = 1 if kind == "binary" else 0
  if g + offset < _KINDS[kind]:
    raise ValueError(f"a {kind} HGF needs num_levels >= {_KINDS[kind]}; params.omega has {g} "
                     f"entries, i.e. {g + offset} levels")
  for name, want in (("kappa", (g - 1,)), ("mu0", (g,)), ("pi0", (g,))):
    got = jnp.shape(getattr(params, name))
    if got != want:
      raise ValueError(f"params.{name} has shape {got} but params.omega has {g} entries "
                       f"({g + offset} levels), so {name} needs shape {want}")
  if kind == "binary" and params.pi_u is not None:
    raise ValueError("params.pi_u is set, but a binary HGF has no input precision; use "
                     "continuous_hgf or pi_u=None")
  if kind == "continuous":
    if params.pi_u is None or jnp.shape(params.pi_u) != ():
      raise ValueError(f"a continuous HGF needs a scalar params.pi_u, got {params.pi_u!r}")
  for name in ("pi0", "pi_u"):
    value = getattr(params, name)
    if value is not None and not isinstance(value, jax.core.Tracer):
      if not np.all(np.asarray(value) > 0):
        raise ValueError(f"params.{name} must be positive, got {np.asarray(value)}")


def _check_observations(u_T) -> None:
  if u_T.ndim != 1:
    raise ValueError(f"observations must be 1-D [T], got shape {u_T.shape}; vmap over sequences")


# ----------------------------------------------------------------------------------------------
# Environment.


def volatile_binary_sequence(key: jax.Array, probabilities, block_lengths: Sequence[int],
                             num_sequences: int | None = None):
  """(u, p): Bernoulli observations whose probability is probabilities[b] for the block_lengths[b]
  trials of block b; shapes [T], or [num_sequences, T] (independent draws, one schedule p [T]).
  The lengths are static (they set T); the draw is vectorised, and vmaps over keys as well."""
  lengths = _block_lengths(block_lengths)
  probs = jnp.asarray(probabilities, dtype=float)
  if probs.shape != lengths.shape:
    raise ValueError(f"{probs.size} probabilities but {lengths.size} block lengths: give one "
                     "probability per block")
  return _bernoulli_blocks(key, probs, tuple(int(n) for n in lengths), _batch(num_sequences))


def volatile_gaussian_walk(key: jax.Array, log_step_variances, block_lengths: Sequence[int], pi_u,
                           num_sequences: int | None = None):
  """(u, x): a Gaussian random walk from x = 0 whose step variance is exp(log_step_variances[b])
  during block b, observed with noise of precision pi_u; shapes [T] or [num_sequences, T]."""
  lengths = _block_lengths(block_lengths)
  log_var = jnp.asarray(log_step_variances, dtype=float)
  if log_var.shape != lengths.shape:
    raise ValueError(f"{log_var.size} step variances but {lengths.size} block lengths: give one "
                     "log step variance per block")
  return _gaussian_walk(key, log_var, jnp.asarray(pi_u, dtype=float),
                        tuple(int(n) for n in lengths), _batch(num_sequences))


def stable_volatile_schedule(stable_trials: int, block_length: int, num_blocks: int,
                             p_high: float = 0.8, p_low: float = 0.2):
  """(probabilities, block_lengths, volatile slice): a stable phase at p_high, then num_blocks
  reversals of block_length trials alternating p_low / p_high, then a stable phase at p_high again
  (a stable / volatile design in the spirit of Behrens et al. 2007, Nat. Neurosci. 10:1214)."""
  probabilities = [p_high] + [p_low if b % 2 == 0 else p_high for b in range(num_blocks)] + [p_high]
  lengths = [stable_trials] + [block_length] * num_blocks + [stable_trials]
  return probabilities, lengths, slice(stable_trials, stable_trials + block_length * num_blocks)


def _block_lengths(block_lengths) -> np.ndarray:
  lengths = np.asarray(block_lengths)
  if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or np.any(lengths < 1):
    raise ValueError(f"block_lengths must be a 1-D sequence of positive integers, got "
                     f"{np.asarray(block_lengths).tolist()}")
  return lengths


def _batch(num_sequences) -> tuple[int, ...]:
  if num_sequences is None:
    return ()
  if not isinstance(num_sequences, (int, np.integer)) or num_sequences < 1:
    raise ValueError(f"num_sequences must be a positive integer or None, got {num_sequences!r}")
  return (int(num_sequences),)


# Jitted: eager random ops would each compile on their own.
@functools.partial(jax.jit, static_argnums=(2, 3))
def _bernoulli_blocks(key, probs, lengths, batch):
  p_T = jnp.repeat(probs, np.asarray(lengths), total_repeat_length=sum(lengths))
  u = jax.random.bernoulli(key, jnp.broadcast_to(p_T, batch + p_T.shape))
  return u.astype(p_T.dtype), p_T


@functools.partial(jax.jit, static_argnums=(3, 4))
def _gaussian_walk(key, log_var, pi_u, lengths, batch):
  shape = batch + (sum(lengths),)
  k_steps, k_noise = jax.random.split(key)
  sd_T = jnp.exp(0.5 * jnp.repeat(log_var, np.asarray(lengths), total_repeat_length=shape[-1]))
  x = jnp.cumsum(jnp.broadcast_to(sd_T, shape) * jax.random.normal(k_steps, shape, sd_T.dtype),
                 axis=-1)
  return x + jax.random.normal(k_noise, shape, sd_T.dtype) / jnp.sqrt(pi_u), x
