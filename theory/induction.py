"""Reduced models of induction-head formation and of in-context-learning strategy selection.

Three models, each as pure jnp/numpy functions (never imports jaxlab). Section numbers below are
from memory and unverified against the PDFs:

1. Reddy 2024 (ICLR, "The mechanistic basis of data dependence and abrupt learning in an in-context
 classification task", sec. 5, "phenomenological model"): three nested logits. The functional form
 below is a reconstruction consistent with every property the paper states (the abstract's "three
 nested logits", the rebuttal's "the origin is a critical point iff L = N", the slow 1/L -> 1/N
 phase); the constants were not checked against the PDF. Parameters theta = (beta1, alpha, xi):

   a1 = sigmoid(beta1)                        layer 1: attention of a label token to its own item
   a2 = e^{alpha a1} / (e^{alpha a1} + N - 1)  layer 2: attention of the query to the correct label
   logits over the L labels: xi a2 for the query's label, xi (1 - a2)/(N - 1) for each of the other
     N - 1 labels in the context, 0 for the L - N labels absent from the context (xi: the
     classifier's alignment of the attended label vector with the readout)
   p = e^{xi a2} / (e^{xi a2} + (N - 1) e^{xi (1 - a2)/(N - 1)} + L - N),   loss = -log p.

 Sequence statistics assumed: bursty sequences with B = 1, N distinct labels in the context, one of
 them the query's (Reddy's `no_repeats`). Every sequence then gives the same p, so the average loss
 over sequences is -log p itself.

 Exact facts (our derivation). Write Z for the denominator.
 * Origin: a1 = 1/2, a2 = 1/N (alpha = 0 makes the layer-2 attention uniform whatever beta1 is), all
   logits vanish, p = 1/L.
 * Gradient. loss = -xi a2 + log Z, so
     d loss / d xi = -a2 + [a2 e^{xi a2} + (1 - a2) e^{xi(1-a2)/(N-1)}] / Z,
     d loss / d a2 = -xi + xi [e^{xi a2} - e^{xi(1-a2)/(N-1)}] / Z  (proportional to xi),
     d a2 / d alpha = a1 a2 (1 - a2),   d a2 / d beta1 = alpha a1 (1 - a1) a2 (1 - a2).
   Hence d loss/d alpha is proportional to xi and d loss/d beta1 to alpha xi: the nesting makes the
   learning sequential (xi first, then alpha, then beta1). At the origin (Z = L, a2 = 1/N):
     grad loss(0) = (0, 0, -1/N + (1/N + (N-1)/N) / L) = (0, 0, -(1/N - 1/L)),
   which vanishes iff L = N: with L = N every label is in the context and the classifier cannot
   gain by favouring context labels, so gradient flow from the origin never moves.
 * Classifier-only manifold (beta1 = alpha = 0, only xi learns): a2 = 1/N, every context logit is
   xi/N, so p(xi) = e^{xi/N} / (N e^{xi/N} + L - N) = 1 / (N + (L - N) e^{-xi/N}), increasing in xi
   and tending to 1/N, not 1: the classifier alone only learns to pick *some* context label
   (context-label accuracy N p -> 1). That is the slow phase, 1/L -> 1/N.

2. Singh, Moskovitz, Hill, Chan, Saxe 2024 (ICML, "What needs to go right for an induction head?",
 sec. 5, toy model; form read in their `simple_model_solver.py`, not copied):
   loss(a, b, c) = 1/2 mean_{ijk} (a*_i b*_j c*_k - a_i b_j c_k)^2,
 three factors standing for the three subcircuits (previous-token, match, copy). Clamping factors at
 their targets removes multiplicative gates and shortens the plateau. Reduced (our derivation): the
 scalar product model u' = (1 - u^k) u^{k-1} (k free factors, balanced, target 1, clamped factors at
 1) escapes a small start s in time
   T_k(s) = int_s^{u_1} du / ((1 - u^k) u^{k-1})
          ~ s^{2-k} / (k - 2)   (k >= 3),   ~ log(1/s)   (k = 2),   ~ log(1/(1 - u_1))  (k = 1),
 so with three free factors the plateau is O(1/s), and clamping two of them (k = 1) makes the loss
 convex in the last factor with no plateau at all.

3. Wurgaft, Lubana, Park, Tanaka, Reddy, Goodman 2025 (NeurIPS, "In-context learning strategies
 emerge rationally", sec. 3, hierarchical Bayesian model; form read in their
 `HierarchicalBayesianModel.calculate_weights`, not copied). Two predictors Q: M (memorizing, the
 posterior predictive over the D training tasks) and G (generalizing, the true-prior predictive).
 The posterior weight after n training steps is
   log w_Q(n) = -ln 2 K_Q^beta - gamma n^{1-alpha} Lbar_Q + const,
 K_Q the description length in bits, Lbar_Q the mean training loss. The log-odds
   eta(n) = log w_M - log w_G = -ln2 (K_M^beta - K_G^beta) + gamma n^{1-alpha} (Lbar_G - Lbar_M)
 is increasing in n when Lbar_M < Lbar_G, and crosses zero (w_M = 1/2) at
   n* = [ln 2 (K_M^beta - K_G^beta) / (gamma (Lbar_G - Lbar_M))]^{1/(1-alpha)}.
 Modelling choice for the task-diversity D dependence (ours, in the spirit of the paper: M stores
 every task, and M -> G as D grows): K_M = K_G + k1 D, Lbar_G - Lbar_M = delta0 D^{-nu}. Then
   d log n* / d log D = [beta x (1+x)^{beta-1} / ((1+x)^beta - 1) + nu] / (1 - alpha), x = k1 D/K_G,
 and the bracket's first term lies between min(beta, 1) and max(beta, 1) (mean value theorem on
 (1+x)^beta), so the slope is >= (min(beta, 1) + nu)/(1 - alpha) and n*(2D)/n*(D) >= 2^{that}:
 superlinear whenever min(beta, 1) + nu > 1 - alpha. With beta = 1, nu = 0, alpha = 0 it is exactly
 linear: n* = ln2 k1 D / (gamma delta0).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate as sp_integrate

from theory.integrate import rk4

# --------------------------------------------------------------------------------------------------
# 1. Reddy's three nested logits; theta = (beta1, alpha, xi).


def _check_sizes(num_context: int, num_labels: int):
  if num_context < 2 or num_labels < num_context:
    raise ValueError(f"need 2 <= N <= L, got N={num_context}, L={num_labels}")


def nested_attention(theta: jax.Array, num_context: int) -> tuple[jax.Array, jax.Array]:
  """(a1, a2): layer-1 label->item attention and layer-2 query->correct-label attention."""
  beta1, alpha = theta[0], theta[1]
  a1 = jax.nn.sigmoid(beta1)
  a2 = 1.0 / (1.0 + (num_context - 1) * jnp.exp(-alpha * a1))
  return a1, a2


def nested_logit_loss(theta: jax.Array, num_context: int, num_labels: int) -> jax.Array:
  """-log p(theta; N, L): the loss averaged over the (identical) B = 1 sequences, via logsumexp."""
  _check_sizes(num_context, num_labels)
  theta = jnp.asarray(theta)
  xi = theta[2]
  _, a2 = nested_attention(theta, num_context)
  correct = xi * a2
  logits = jnp.stack([correct, xi * (1.0 - a2) / (num_context - 1), jnp.zeros_like(xi)])
  counts = jnp.array([1.0, num_context - 1.0, num_labels - num_context], dtype=logits.dtype)
  return jax.nn.logsumexp(logits, b=counts) - correct


def nested_logit_probability(theta: jax.Array, num_context: int, num_labels: int) -> jax.Array:
  """p(theta; N, L): the predicted probability of the query's label."""
  return jnp.exp(-nested_logit_loss(theta, num_context, num_labels))


def origin_gradient(num_context: int, num_labels: int) -> np.ndarray:
  """grad loss at theta = 0, closed form: (0, 0, -(1/N - 1/L)); zero iff L = N."""
  _check_sizes(num_context, num_labels)
  return np.array([0.0, 0.0, -(1.0 / num_context - 1.0 / num_labels)])


def classifier_only_probability(xi, num_context: int, num_labels: int):
  """p(0, 0, xi) = 1 / (N + (L - N) e^{-xi/N}): rises from 1/L to 1/N as xi -> infinity."""
  _check_sizes(num_context, num_labels)
  return 1.0 / (num_context + (num_labels - num_context) * jnp.exp(-jnp.asarray(xi) / num_context))


def nested_logit_flow(theta0, num_context: int, num_labels: int, dt: float, num_saves: int,
                      steps_per_save: int, free: Sequence[bool] = (True, True, True)):
  """Gradient flow theta' = -grad loss (masked to the `free` parameters), RK4 under lax.scan.

  Returns (times, thetas) with thetas of shape (num_saves, 3), order (beta1, alpha, xi).
  """
  mask = jnp.asarray(free, dtype=jnp.result_type(float))
  grad = jax.grad(nested_logit_loss)

  def rhs(theta, _):
    return -mask * grad(theta, num_context, num_labels)

  theta0 = jnp.asarray(theta0, dtype=jnp.result_type(float))
  return rk4(rhs, theta0, 0.0, dt, num_saves, steps_per_save)


def half_crossing_times(times, values) -> np.ndarray:
  """For each column of `values`, the first time it reaches half its last value (nan if never);
  linear interpolation between saves."""
  times = np.asarray(times)
  values = np.asarray(values)
  out = np.full(values.shape[1], np.nan)
  for j in range(values.shape[1]):
    half = 0.5 * values[-1, j]
    col = values[:, j]
    if half == 0.0:
      continue
    above = np.nonzero(np.sign(half) * (col - half) >= 0)[0]
    i = above[0]
    if i == 0:
      out[j] = times[0]
    else:
      frac = (half - col[i - 1]) / (col[i] - col[i - 1])
      out[j] = times[i - 1] + frac * (times[i] - times[i - 1])
  return out


# --------------------------------------------------------------------------------------------------
# 2. Singh et al.'s tensor toy model.


def tensor_loss(factors, targets) -> jax.Array:
  """1/2 mean (a*⊗b*⊗c* - a⊗b⊗c)^2 for factors (a, b, c) and targets (a*, b*, c*)."""
  a, b, c = factors
  ta, tb, tc = targets
  diff = (jnp.einsum("i,j,k->ijk", ta, tb, tc) - jnp.einsum("i,j,k->ijk", a, b, c))
  return 0.5 * jnp.mean(diff**2)


def tensor_flow(factors0, targets, clamped: Sequence[bool], dt: float, num_saves: int,
                steps_per_save: int, clamp_at_start: bool = False):
  """Gradient flow on `tensor_loss`; a clamped factor never moves, held at its target (or at its
  start in `factors0` when `clamp_at_start`, the control). Returns (times, losses) at the saves."""
  targets = tuple(jnp.asarray(t, dtype=jnp.result_type(float)) for t in targets)
  y0 = tuple(t if clamp and not clamp_at_start else jnp.asarray(f, dtype=jnp.result_type(float))
             for f, t, clamp in zip(factors0, targets, clamped))
  grad = jax.grad(tensor_loss)

  def rhs(y, _):
    g = grad(y, targets)
    return tuple(jnp.zeros_like(gi) if clamp else -gi for gi, clamp in zip(g, clamped))

  times, ys = rk4(rhs, y0, 0.0, dt, num_saves, steps_per_save)
  losses = jax.vmap(lambda a, b, c: tensor_loss((a, b, c), targets))(*ys)
  return times, losses


def first_time_below(times, values, threshold: float) -> float:
  """The first save time at which `values` < threshold (inf if never)."""
  below = np.nonzero(np.asarray(values) < threshold)[0]
  return float(np.asarray(times)[below[0]]) if below.size else math.inf


def product_escape_time(k: int, s: float, u_end: float) -> float:
  """T_k(s) = int_s^{u_end} du / ((1 - u^k) u^{k-1}): time for u' = (1 - u^k) u^{k-1} (k balanced
  free scalar factors, target product 1) to go from s to u_end < 1 (quadrature)."""
  if not 0.0 < s < u_end < 1.0:
    raise ValueError("need 0 < s < u_end < 1")
  value, _ = sp_integrate.quad(lambda u: 1.0 / ((1.0 - u**k) * u**(k - 1)), s, u_end,
                               epsabs=1e-13, epsrel=1e-12, limit=200)
  return float(value)


def product_escape_asymptote(k: int, s: float) -> float:
  """Leading small-s term of T_k(s): s^{2-k}/(k-2) for k >= 3, log(1/s) for k = 2, 0 for k = 1."""
  if k >= 3:
    return s**(2 - k) / (k - 2)
  if k == 2:
    return math.log(1.0 / s)
  return 0.0


def product_flow(k: int, s: float, dt: float, num_saves: int, steps_per_save: int):
  """Scalar balanced product flow u' = (1 - u^k) u^{k-1} from u = s; returns (times, u)."""
  return rk4(lambda u, _: (1.0 - u**k) * u**(k - 1), jnp.asarray(s, dtype=jnp.result_type(float)),
             0.0, dt, num_saves, steps_per_save)


# --------------------------------------------------------------------------------------------------
# 3. Wurgaft et al.'s hierarchical Bayesian strategy model.


def strategy_log_weights(n, complexity_bits, mean_loss, alpha: float, beta: float,
                         gamma: float) -> np.ndarray:
  """log w_Q(n) = -ln2 K_Q^beta - gamma n^{1-alpha} Lbar_Q, normalised over Q (last axis)."""
  n = np.asarray(n, dtype=np.float64)[..., None]
  k = np.asarray(complexity_bits, dtype=np.float64)
  loss = np.asarray(mean_loss, dtype=np.float64)
  logits = -math.log(2.0) * k**beta - gamma * n**(1.0 - alpha) * loss
  logits = logits - logits.max(axis=-1, keepdims=True)
  return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def memorizing_weight(n, k_mem, k_gen, loss_mem, loss_gen, alpha, beta, gamma) -> np.ndarray:
  """w_M(n) = sigmoid(eta(n)) for the two-predictor mixture (M, G)."""
  log_w = strategy_log_weights(n, [k_mem, k_gen], [loss_mem, loss_gen], alpha, beta, gamma)
  return np.exp(log_w[..., 0])


def crossover_time(k_mem, k_gen, loss_mem, loss_gen, alpha, beta, gamma):
  """n* = [ln2 (K_M^beta - K_G^beta) / (gamma (Lbar_G - Lbar_M))]^{1/(1-alpha)}: w_M(n*) = 1/2.

  Needs K_M > K_G, Lbar_M < Lbar_G and alpha < 1 (otherwise the weights never cross from G to M).
  """
  k_mem, k_gen, loss_mem, loss_gen = (np.asarray(v, dtype=np.float64)
                                      for v in (k_mem, k_gen, loss_mem, loss_gen))
  if np.any(k_mem <= k_gen) or np.any(loss_mem >= loss_gen) or not alpha < 1.0:
    raise ValueError("need K_M > K_G, Lbar_M < Lbar_G and alpha < 1")
  ratio = math.log(2.0) * (k_mem**beta - k_gen**beta) / (gamma * (loss_gen - loss_mem))
  return ratio**(1.0 / (1.0 - alpha))


def crossover_time_vs_diversity(num_tasks, k_gen: float, k_per_task: float, gap0: float,
                                nu: float, alpha: float, beta: float, gamma: float):
  """n*(D) under K_M = K_G + k1 D and Lbar_G - Lbar_M = gap0 D^{-nu} (our modelling choice)."""
  d = np.asarray(num_tasks, dtype=np.float64)
  k_mem = k_gen + k_per_task * d
  gap = gap0 * d**(-nu)
  return crossover_time(k_mem, k_gen, np.zeros_like(d), gap, alpha, beta, gamma)


def crossover_log_slope(num_tasks, k_gen: float, k_per_task: float, nu: float, alpha: float,
                        beta: float):
  """d log n* / d log D, closed form (see module docstring)."""
  x = k_per_task * np.asarray(num_tasks, dtype=np.float64) / k_gen
  first = beta * x * (1.0 + x)**(beta - 1.0) / ((1.0 + x)**beta - 1.0)
  return (first + nu) / (1.0 - alpha)
