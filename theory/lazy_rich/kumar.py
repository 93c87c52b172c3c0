r"""Grokking as the transition from lazy to rich (Kumar, Bordelon, Gershman & Pehlevan, ICLR 2024).

Model (their sec. 3): $f(x) = \frac{\alpha}{N}\sum_{i=1}^N \phi(w_i\cdot x)$, $\phi(h) = h + \frac\epsilon2 h^2$,
inputs $x \sim N(0, I/D)$, target $y = \frac12(\beta_*\cdot x)^2$. The network depends on its weights
only through $\bar w = \frac1N\sum_i w_i$ and $M = \frac1N\sum_i w_i w_i^\top$:
$f(x) = \alpha\,\bar w\cdot x + \frac{\alpha\epsilon}{2} x^\top M x$. Any function of this form,
$f = \alpha v\cdot x + \frac{\alpha\epsilon}{2}x^\top Q x$ (the centered network $\alpha[f(w) - f(w_0)]$ has
$v = \bar w - \bar w_0$, $Q = M - M_0$; its linearization at $w_0$ has $v = \overline{\Delta w}$,
$Q = \frac1N\sum_i (w_{0,i}\Delta w_i^\top + \Delta w_i w_{0,i}^\top)$), has the exact test loss
(their eq. 6; re-derived here from Gaussian moments, $E[(x^\top A x)^2] = ((\mathrm{tr}A)^2 + 2\|A\|_F^2)/D^2$
for symmetric $A$ and the odd cross moment vanishing):

  $L = E[(f - y)^2] = \underbrace{\tfrac14\big(\tfrac{|\beta_*|^2}{D} - \tfrac{\alpha\epsilon\,\mathrm{tr}Q}{D}\big)^2}_{\text{variance}}
     + \underbrace{\tfrac{1}{2D^2}\|\alpha\epsilon Q - \beta_*\beta_*^\top\|_F^2}_{\text{misalignment}}
     + \underbrace{\tfrac{\alpha^2}{D}|v|^2}_{\text{linear power}}$.
"""

from __future__ import annotations

import jax.numpy as jnp


def test_loss_terms(v, q, beta_star, alpha, epsilon):
  """(variance, misalignment, linear power) of f = alpha v.x + (alpha eps / 2) x^T Q x."""
  d = beta_star.shape[-1]
  q = 0.5 * (q + q.T)  # only the symmetric part acts on x^T Q x
  a = alpha * epsilon * q - jnp.outer(beta_star, beta_star)
  variance = 0.25 * (jnp.trace(a) / d) ** 2
  misalignment = jnp.sum(a ** 2) / (2.0 * d ** 2)
  linear_power = alpha ** 2 * jnp.sum(v ** 2) / d
  return variance, misalignment, linear_power


def test_loss(v, q, beta_star, alpha, epsilon):
  """The exact E_x[(f(x) - y(x))^2] (module docstring)."""
  return sum(test_loss_terms(v, q, beta_star, alpha, epsilon))
