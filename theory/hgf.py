r"""Hierarchical Gaussian filter: one trial's updates derived in closed form, the Kalman steady
state of a level with fixed volatility, and the exact likelihood the HGF's surprises must add up to.

Written in scalar Python (math, numpy) in the variance form of Mathys et al. 2011 (Front. Hum.
Neurosci. 5:39), independent of `jaxlab.predictive_coding.hgf` (precision form, scanned); the tests
hold the two side by side. The derivations are ours; the papers' equation numbers are not quoted
because their text could not be checked here.

1. Prediction. Level j steps x_j^(k) = x_j^(k-1) + N(0, nu_j) with
   nu_j = exp(kappa_j mu_{j+1} + omega_j) at the parent's previous mean (mean-field). From the
   previous posterior N(mu_j, sigma_j) the prediction is N(mu_j, sigma_hat_j), sigma_hat_j =
   sigma_j + nu_j.

2. Value parent: one Newton step from the prediction on
   E(x) = -(x - mu_hat)^2 / (2 sigma_hat) + log p(u | x).
   Binary, log p = u log s(x) + (1 - u) log(1 - s(x)): gradient u - s, curvature -s(1 - s), so
   1/sigma = 1/sigma_hat + s(1 - s) and mu = mu_hat + sigma (u - s), at s = s(mu_hat).
   Gaussian, log p = -pi_u (u - x)^2 / 2 is quadratic and the step is exact (a Kalman update):
   1/sigma = 1/sigma_hat + pi_u, mu = mu_hat + sigma pi_u (u - mu_hat).

3. Volatility parent. Integrating the child's previous state out of its transition gives the
   child's prediction N(mu_c, v(x)), v(x) = sigma_c + e^{kappa x + omega}; the log of that, averaged
   over the child's new posterior N(mu_c', sigma_c') (mean-field), is, as a function of the
   parent's value x,
     f(x) = -1/2 log v(x) - (sigma_c' + (mu_c' - mu_c)^2) / (2 v(x)).
   With w = e^{kappa x + omega} / v and Delta = (sigma_c' + (mu_c' - mu_c)^2) / v - 1,
     dw/dx = kappa w (1 - w),   dDelta/dx = -kappa w (Delta + 1),
     f'(x) = kappa/2 w Delta,
     f''(x) = kappa^2/2 (w (1 - w) Delta - w^2 (Delta + 1)) = -kappa^2/2 w (w + r Delta),
   with r = 2w - 1.
   A Newton step from the prediction N(mu_hat, sigma_hat) gives ("standard")
     pi = 1/sigma_hat + kappa^2/2 w (w + r Delta),   mu = mu_hat + kappa/2 w Delta / pi;
   the eHGF order divides the same gradient by the predicted precision 1/sigma_hat instead. So
   (mu_std - mu_hat) / (mu_ehgf - mu_hat) = pi_hat / pi, and the gap between the orders is
     mu_std - mu_ehgf = -kappa^3 w Delta c / (2 pi_hat (pi_hat + kappa^2 c)), c = w (w + r Delta)/2:
   zero at kappa = 0, and O(kappa^3) as kappa -> 0 where w and Delta do not depend on kappa (a
   parent mean of 0).

4. Steady state. With kappa_1 = 0 the first level of the continuous HGF is a Kalman filter for a
   random walk of step variance nu = e^{omega_1}: pi' = 1/(1/pi + nu) + pi_u. Its fixed point solves
   nu p^2 - pi_u nu p - pi_u = 0, p* = pi_u/2 + sqrt(pi_u^2/4 + pi_u/nu), and since
   d/dp [p/(1 + nu p)] = (pi_hat/p)^2 = (1 - K)^2 with the Kalman gain K = pi_u/p, the error
   p_k - p* shrinks by (1 - K*)^2 per trial near the fixed point.

5. Likelihood. In that same regime u_k = x^(k) + noise with x^(k) = x^(0) + (sum of k steps), so
   u ~ N(mu0 1, Sigma), Sigma_ik = 1/pi0 + nu min(i, k) + delta_ik / pi_u (trials counted from 1),
   and the sum of the filter's surprises -log N(u_k; mu_hat_k, 1/pi_hat_k + 1/pi_u) equals
   -log N(u; mu0 1, Sigma) exactly (the prediction-error decomposition of a Gaussian likelihood).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

ORDERS = ("standard", "ehgf")


def _sigmoid(x: float) -> float:
  return 1.0 / (1.0 + math.exp(-x))


def _volatility_chain(sigma, mu, sigma_hat, nu, mu_new, sigma_new, kappas, order):
  """Updates levels 1.. of a chain (variance form) given level 0's new posterior; appends in place
  and returns the volatility prediction errors and weights w sent up."""
  deltas, weights = [], []
  for j in range(1, len(mu)):
    w = nu[j - 1] / sigma_hat[j - 1]
    r = (nu[j - 1] - sigma[j - 1]) / sigma_hat[j - 1]  # = 2w - 1
    delta = (sigma_new[j - 1] + (mu_new[j - 1] - mu[j - 1]) ** 2) / sigma_hat[j - 1] - 1.0
    pi = 1.0 / sigma_hat[j] + 0.5 * kappas[j - 1] ** 2 * w * (w + r * delta)
    divisor = pi if order == "standard" else 1.0 / sigma_hat[j]
    mu_new.append(mu[j] + 0.5 * kappas[j - 1] * w * delta / divisor)
    sigma_new.append(1.0 / pi)
    deltas.append(delta)
    weights.append(w)
  return deltas, weights


def _predict(mu, pi, omegas, kappas):
  sigma = [1.0 / p for p in pi]
  nu = [math.exp((kappas[j] * mu[j + 1] if j + 1 < len(mu) else 0.0) + omegas[j])
        for j in range(len(mu))]
  return sigma, nu, [s + n for s, n in zip(sigma, nu)]


def binary_hgf_one_step(u: float, mu: Sequence[float], pi: Sequence[float],
                        omegas: Sequence[float], kappas: Sequence[float],
                        order: str = "standard") -> dict:
  """One trial of an n-level binary HGF from the previous posteriors of levels 2..n.

  mu, pi, omegas: [n - 1] (levels 2..n); kappas: [n - 2] (coupling of level i to i + 1).
  Returns mu_hat_1 = s(mu_2), pi_hat, mu, pi (levels 2..n), vope (Delta of levels 2..n-1), w,
  learning_rate (the implied Rescorla-Wagner rate (s(mu_2') - s(mu_2)) / (u - s(mu_2))) and
  surprise (-log p(u)).
  """
  if order not in ORDERS:
    raise ValueError(f"unknown order {order!r}")
  sigma, nu, sigma_hat = _predict(mu, pi, omegas, kappas)
  s = _sigmoid(mu[0])
  sigma_2 = 1.0 / (1.0 / sigma_hat[0] + s * (1.0 - s))
  mu_new, sigma_new = [mu[0] + sigma_2 * (u - s)], [sigma_2]
  vope, w = _volatility_chain(sigma, mu, sigma_hat, nu, mu_new, sigma_new, kappas, order)
  return {"mu_hat_1": s, "pi_hat": [1.0 / v for v in sigma_hat], "mu": mu_new,
          "pi": [1.0 / v for v in sigma_new], "vope": vope, "w": w,
          "learning_rate": (_sigmoid(mu_new[0]) - s) / (u - s),
          "surprise": -math.log(s if u == 1 else 1.0 - s)}


def continuous_hgf_one_step(u: float, mu: Sequence[float], pi: Sequence[float],
                            omegas: Sequence[float], kappas: Sequence[float], pi_u: float,
                            order: str = "standard") -> dict:
  """One trial of an n-level continuous HGF (Gaussian input of precision pi_u) from the previous
  posteriors of levels 1..n; same keys as `binary_hgf_one_step`, learning_rate = pi_u / pi_1."""
  if order not in ORDERS:
    raise ValueError(f"unknown order {order!r}")
  sigma, nu, sigma_hat = _predict(mu, pi, omegas, kappas)
  pi_1 = 1.0 / sigma_hat[0] + pi_u
  mu_new, sigma_new = [mu[0] + pi_u / pi_1 * (u - mu[0])], [1.0 / pi_1]
  vope, w = _volatility_chain(sigma, mu, sigma_hat, nu, mu_new, sigma_new, kappas, order)
  var = sigma_hat[0] + 1.0 / pi_u
  return {"mu_hat_1": mu[0], "pi_hat": [1.0 / v for v in sigma_hat], "mu": mu_new,
          "pi": [1.0 / v for v in sigma_new], "vope": vope, "w": w, "learning_rate": pi_u / pi_1,
          "surprise": 0.5 * (math.log(2.0 * math.pi * var) + (u - mu[0]) ** 2 / var)}


def order_gap(kappa: float, w: float, vope: float, pi_hat: float) -> float:
  """mu_standard - mu_ehgf of a volatility parent (derivation 3)."""
  c = 0.5 * w * (w + (2.0 * w - 1.0) * vope)
  return -kappa ** 3 * w * vope * c / (2.0 * pi_hat * (pi_hat + kappa ** 2 * c))


def steady_state_precision(pi_u: float, omega: float) -> float:
  """Fixed point p* of p -> 1/(1/p + e^omega) + pi_u (derivation 4)."""
  return 0.5 * pi_u + math.sqrt(0.25 * pi_u ** 2 + pi_u * math.exp(-omega))


def steady_state_contraction(pi_u: float, omega: float) -> float:
  """(1 - K*)^2, K* = pi_u / p*: the factor by which p_k - p* shrinks per trial near p*."""
  return (1.0 - pi_u / steady_state_precision(pi_u, omega)) ** 2


def random_walk_negative_log_likelihood(u: Sequence[float], mu0: float, pi0: float, omega: float,
                                        pi_u: float) -> float:
  """-log N(u; mu0, Sigma) for a Gaussian random walk of step variance e^omega started from
  N(mu0, 1/pi0) and observed with noise precision pi_u (derivation 5)."""
  u = np.asarray(u, dtype=float)
  k = np.arange(1, u.size + 1)
  cov = 1.0 / pi0 + math.exp(omega) * np.minimum(k[:, None], k[None, :]) + np.eye(u.size) / pi_u
  _, logdet = np.linalg.slogdet(cov)
  r = u - mu0
  return 0.5 * (u.size * math.log(2.0 * math.pi) + logdet + r @ np.linalg.solve(cov, r))
