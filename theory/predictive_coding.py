"""Closed forms for predictive coding in linear networks (Whittington & Bogacz 2017, sec. 2).

For a linear network mu_l = A_{l-1} x_{l-1} + b_{l-1} (column convention; jaxlab's row-vector weights
are A = W^T) with the input x_0 and the output x_L clamped, the energy

  F(z) = 1/2 sum_{l=1}^{L} pi_l |x_l - A_{l-1} x_{l-1} - b_{l-1}|^2,   z = (x_1, ..., x_{L-1}),

is a weighted least-squares objective |M z - c|^2_Pi: the residual of node l is +x_l (column l) minus
A_{l-1} x_{l-1} (column l-1), and c collects what is clamped (A_0 x_0 + b_0 for node 1, b_{L-1} - x_L
for node L). Hence (our derivation):

  equilibrium   z* = (M^T Pi M)^{-1} M^T Pi c   (unique: M has full column rank, its identity blocks),
  inference     gradient descent z <- z - eta (M^T Pi M z - M^T Pi c) converges iff
                0 < eta < 2 / lambda_max(M^T Pi M), with F non-increasing on every step there.

Pure numpy on one example; never imports jaxlab.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _system(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
            precisions: Sequence[float], x0: np.ndarray, target: np.ndarray):
  """M, c and the diagonal of Pi; `weights[l]` is A_l with shape (out, in)."""
  weights = [np.asarray(a, dtype=np.float64) for a in weights]
  num_layers = len(weights)
  if len(biases) != num_layers or len(precisions) != num_layers:
    raise ValueError("need one bias and one precision per layer")
  hidden = [a.shape[0] for a in weights[:-1]]
  offsets = np.concatenate([[0], np.cumsum(hidden)]).astype(int)
  out_sizes = [a.shape[0] for a in weights]
  row_offsets = np.concatenate([[0], np.cumsum(out_sizes)]).astype(int)
  m = np.zeros((row_offsets[-1], offsets[-1]))
  c = np.zeros(row_offsets[-1])
  pi = np.zeros(row_offsets[-1])
  for l in range(1, num_layers + 1):  # node l's residual rows
    rows = slice(row_offsets[l - 1], row_offsets[l])
    pi[rows] = precisions[l - 1]
    if l <= num_layers - 1:
      m[rows, offsets[l - 1]:offsets[l]] = np.eye(out_sizes[l - 1])
    if l >= 2:
      m[rows, offsets[l - 2]:offsets[l - 1]] = -weights[l - 1]
    c[rows] = np.asarray(biases[l - 1], dtype=np.float64)
    if l == 1:
      c[rows] += weights[0] @ np.asarray(x0, dtype=np.float64)
    if l == num_layers:
      c[rows] -= np.asarray(target, dtype=np.float64)
  return m, c, pi, offsets


def linear_equilibrium(weights, biases, precisions, x0, target) -> list[np.ndarray]:
  """The hidden nodes [x_1*, ..., x_{L-1}*] minimising F for one example."""
  m, c, pi, offsets = _system(weights, biases, precisions, x0, target)
  hessian = m.T @ (pi[:, None] * m)
  z = np.linalg.solve(hessian, m.T @ (pi * c))
  return [z[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def energy_hessian(weights, biases, precisions, x0, target) -> np.ndarray:
  """M^T Pi M: the (constant) Hessian of F in the hidden nodes of one example."""
  m, _, pi, _ = _system(weights, biases, precisions, x0, target)
  return m.T @ (pi[:, None] * m)


def critical_step_size(weights, precisions) -> float:
  """2 / lambda_max(M^T Pi M): plain gradient-descent inference converges below it, diverges above."""
  zeros = [np.zeros(np.asarray(a).shape[0]) for a in weights]
  x0 = np.zeros(np.asarray(weights[0]).shape[1])
  hessian = energy_hessian(weights, zeros, precisions, x0, zeros[-1])
  return float(2.0 / np.linalg.eigvalsh(hessian)[-1])
