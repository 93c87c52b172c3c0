r"""One step of gradient descent on in-context linear regression, and its optimal step size
(von Oswald, Niklasson, Randazzo, Sacramento, Mordvintsev, Zhmoginov & Vladymyrov, ICML 2023,
"Transformers learn in-context by gradient descent", sec. 2 and Proposition 1). Derived here; pure jnp.

Task: $w \sim N(0, I_d)$, context $x_i \sim N(0, I_d)$ iid, $y_i = w^\top x_i$ ($i = 1..N$, no noise),
query $x_q \sim N(0, I_d)$, target $y_q = w^\top x_q$.

Normalisation (the one von Oswald's construction uses, $P = (\eta/N) I$): the in-context loss is the
*mean* $L(W) = \frac{1}{2N}\sum_i (W x_i - y_i)^2$, so with $\hat C = X^\top X / N$ one step from
$W_0 = 0$ is $W_1 = -\eta\nabla L(0) = \frac{\eta}{N}\sum_i y_i x_i^\top = \eta\, w^\top\hat C$ and the
prediction is $\hat y = \frac{\eta}{N} y^\top X x_q$ (`gd_one_step_predict`). With the *sum*
$\frac12\sum_i$ instead, every step size below is divided by $N$ (optimum $1/(N + d + 1)$).

Expected loss as a function of $\eta$. The error is $y_q - \hat y = w^\top (I - \eta\hat C) x_q$;
averaging over $x_q$ then $w$ (both independent of $X$):
$\mathcal L(\eta) = \frac12 E(y_q - \hat y)^2 = \frac12 E\,\mathrm{tr}(I - \eta\hat C)^2
= \frac12[d - 2\eta\,E\,\mathrm{tr}\hat C + \eta^2 E\,\mathrm{tr}\hat C^2]$.
$E\hat C = I$, so $E\,\mathrm{tr}\hat C = d$. For the second moment, $X^\top X = \sum_i x_i x_i^\top$ and
$E(X^\top X)^2 = \sum_i E[\|x_i\|^2 x_i x_i^\top] + \sum_{i \ne j} E[x_i x_i^\top] E[x_j x_j^\top]
= N(d + 2) I + N(N - 1) I = N(N + d + 1) I$ (Gaussian fourth moment: $E[x_a^2 x_b^2] = 1 + 2\delta_{ab}$),
so $E\,\mathrm{tr}\hat C^2 = d(N + d + 1)/N$. Hence (`one_step_loss`)

  $\mathcal L(\eta) = \frac d2\left[1 - 2\eta + \eta^2\frac{N + d + 1}{N}\right]$,

a parabola minimised at $\eta^* = N / (N + d + 1)$ (`optimal_step_size`) with
$\mathcal L^* = \frac d2 \cdot \frac{d + 1}{N + d + 1}$ (`optimal_loss`); the zero predictor has $d/2$.

Why this is also the best a single linear self-attention layer can do (so a trained LSA should land on
$\mathcal L^*$ and not below): the LSA query output is a bilinear form in the context statistics
$\sum_i e_i e_i^\top$ and $x_q$. Under $w \to -w$ the target flips sign, so the terms even in $y$
($X^\top X$ and $y^\top y$ blocks) are uncorrelated with $y_q$ and only add loss; the odd terms give
$\hat y = \frac1N y^\top X \Gamma x_q$ for some matrix $\Gamma$, with loss
$\frac12[d - 2\,\mathrm{tr}\Gamma + \frac{N + d + 1}{N}\mathrm{tr}\Gamma^\top\Gamma]$, minimised at
$\Gamma = \eta^* I$: the learned preconditioner is scalar and equals the optimal step.
"""

from __future__ import annotations

import jax.numpy as jnp


def gd_one_step_predict(x_NxD, y_N, xq_QxD, step_size):
  """$\\hat y_q = \\eta\\, (\\frac1N \\sum_i y_i x_i)^\\top x_q$: one GD step from 0 on the mean loss."""
  n = x_NxD.shape[0]
  w1_D = step_size * (y_N @ x_NxD) / n
  return xq_QxD @ w1_D


def one_step_loss(step_size, n, d):
  """Expected $\\frac12(y_q - \\hat y_q)^2$ of one GD step of size $\\eta$ (Gaussian inputs, $w \\sim
  N(0, I)$, mean-normalised in-context loss): $\\frac d2[1 - 2\\eta + \\eta^2 (N + d + 1)/N]$."""
  step_size = jnp.asarray(step_size)
  return 0.5 * d * (1.0 - 2.0 * step_size + step_size**2 * (n + d + 1) / n)


def optimal_step_size(n, d):
  """$\\eta^* = N / (N + d + 1)$ (mean-normalised loss; divide by N for the sum-normalised one)."""
  return n / (n + d + 1)


def optimal_loss(n, d):
  """$\\mathcal L(\\eta^*) = d(d + 1) / (2(N + d + 1))$."""
  return 0.5 * d * (d + 1) / (n + d + 1)


def zero_predictor_loss(d):
  """$\\frac12 E y_q^2 = d/2$: the loss of predicting 0, the scale every trained loss sits under."""
  return 0.5 * d
