r"""Closed forms for the Dynamical Systems Framework (Sieber et al., NeurIPS 2024): when an SSD-type
recurrence is normalised linear attention, what breaking the tie costs, and how close Taylor-feature
attention is to softmax. The paper's lemma text was not available; the statements are derived here.

1. Tie (derived). A scalar-decay recurrence $h_i = \lambda_i h_{i-1} + \beta_i (v_i \otimes k_i)$,
   $y_i = (I \otimes q_i^\top) h_i$ unrolls to $y_i = \sum_{j \le i} (q_i^\top k_j)\,\beta_j
   \prod_{l=j+1}^{i}\lambda_l\, v_j$. It equals normalised linear attention
   $y_i = \sum_{j\le i}(q_i^\top k_j) v_j/\eta_i$ for all inputs iff $\beta_j\prod_{l=j+1}^i\lambda_l =
   1/\eta_i$ for all $j \le i$, i.e. $\beta_i = 1/\eta_i$ and $\lambda_i = \beta_i/\beta_{i-1}$:
   linear attention is an SSM whose decay is tied to its input scale (its normalisation).
2. Untied (derived). Multiplying every decay by $1 + \epsilon$ gives
   $y_i(\epsilon) = \sum_j a_{ij}(1+\epsilon)^{i-j} v_j$ with $a_{ij} = q_i^\top k_j/\eta_i$, so
   $\partial_\epsilon y_i|_0 = \sum_{j \le i} a_{ij}\,(i - j)\, v_j$: the error grows with the
   attention-weighted lag, first order in $\epsilon$.
3. Taylor features (derived). For $|s| \le s_*$, $|e^s - T_P(s)| \le r_P = s_*^{P+1}e^{s_*}/(P+1)!$
   (Lagrange remainder). With positive kernels $\kappa_j \ge e^{-s_*}$ and perturbed ones
   $\tilde\kappa_j \ge e^{-s_*} - r_P > 0$, the normalised weights move by
   $\|\tilde a - a\|_1 \le 2 r_P/(e^{-s_*} - r_P)$, so $|\tilde y_i - y_i|_\infty \le
   2 r_P \max|v| / (e^{-s_*} - r_P)$ (infinite when $r_P \ge e^{-s_*}$).
"""

from __future__ import annotations

import math

import numpy as np


def tied_decay(beta_T: np.ndarray) -> np.ndarray:
  """$\\lambda_i = \\beta_i/\\beta_{i-1}$ ($\\lambda_1$ is free since $h_0 = 0$; returned as NaN)."""
  beta_T = np.asarray(beta_T, dtype=float)
  return np.concatenate([[np.nan], beta_T[1:] / beta_T[:-1]])


def decay_perturbation_derivative(q_TxK: np.ndarray, k_TxK: np.ndarray,
                                  v_TxV: np.ndarray) -> np.ndarray:
  """$\\partial_\\epsilon y_i = \\sum_{j\\le i} a_{ij}(i-j)v_j$, $a_{ij} = q_i^\\top k_j/\\eta_i$ (item 2)."""
  t = q_TxK.shape[0]
  scores = np.tril(q_TxK @ k_TxK.T)
  a = scores / scores.sum(axis=1, keepdims=True)
  lag = np.arange(t)[:, None] - np.arange(t)[None, :]
  return (a * np.tril(lag)) @ v_TxV


def taylor_kernel_remainder(order: int, s_max: float) -> float:
  """$r_P = s_*^{P+1} e^{s_*}/(P+1)!$ bounds $|e^s - \\sum_{p\\le P} s^p/p!|$ on $|s| \\le s_*$."""
  return s_max ** (order + 1) * math.exp(s_max) / math.factorial(order + 1)


def taylor_output_error_bound(order: int, s_max: float, v_max: float) -> float:
  """$2 r_P v_{max}/(e^{-s_*} - r_P)$ (item 3); inf when the perturbed kernel may vanish."""
  r = taylor_kernel_remainder(order, s_max)
  floor = math.exp(-s_max) - r
  return math.inf if floor <= 0 else 2.0 * r * v_max / floor
