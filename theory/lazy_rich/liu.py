r"""Connectivity rank and lazy vs rich learning (Liu, Baratin, Cornford, Mihalas, Shea-Brown & Lajoie,
ICLR 2024, "How connectivity structure shapes rich and lazy learning in neural circuits").

Setting (their sec. 3, a two-layer linear network): $f(x) = w_2^\top W_1 x$ with $W_1 \in R^{h\times d}$,
scalar tasks $y = \beta^\top x$ with $\beta$ uniform on the unit sphere, whitened inputs
$X^\top X = n I_d$. The initial tangent kernel is (derived here)

  $K_0 = X A X^\top$, $A = W_1^\top W_1 + \|w_2\|^2 I_d$

($\partial f/\partial w_2 = W_1 x$ gives $x^\top W_1^\top W_1 x'$, $\partial f/\partial W_1 = w_2 x^\top$ gives
$\|w_2\|^2 x^\top x'$). With whitened inputs the kernel-target alignment is
$\mathrm{KTA}(K_0, y) = \langle K_0, yy^\top\rangle_F / (\|K_0\|_F \|yy^\top\|_F) = \beta^\top A \beta / \|A\|_F$, so
over random tasks

  $E_\beta[\mathrm{KTA}] = \mathrm{tr}(A) / (d\, \|A\|_F)$,  $\mathrm{tr}(A) = \sum_i s_i^2 + d c$,
  $\|A\|_F^2 = \sum_{i \le r} (s_i^2 + c)^2 + (d - r) c^2$,  $c = \|w_2\|^2$,

with $s_i$ the singular values of $W_1$. At a fixed Frobenius norm $\sum s_i^2 = \sigma^2$ the trace is
fixed and $\|A\|_F$ is smallest when the $s_i$ are equal: full rank maximises the expected initial
alignment (their Theorem 1), and rank 1 minimises it. A rank-1 $W_1 = \sigma u \hat\beta^\top$ aligned with
the task gives $\mathrm{KTA} = (\sigma^2 + c) / \sqrt{(\sigma^2 + c)^2 + (d - 1) c^2}$, close to 1 (their
Proposition 1: aligned low rank learns lazily).
"""

from __future__ import annotations

import jax.numpy as jnp


def expected_initial_alignment(singular_values, readout_sq_norm, input_dim: int):
  """E over unit-sphere tasks of KTA(K0, y) for whitened inputs (see module docstring)."""
  s2 = jnp.asarray(singular_values) ** 2
  c = readout_sq_norm
  r = s2.shape[-1]
  trace = jnp.sum(s2, axis=-1) + input_dim * c
  frob = jnp.sqrt(jnp.sum((s2 + c) ** 2, axis=-1) + (input_dim - r) * c ** 2)
  return trace / (input_dim * frob)


def aligned_rank_one_alignment(sigma, readout_sq_norm, input_dim: int):
  """KTA(K0, y) when W1 = sigma u beta_hat^T (exact for that task, whitened inputs)."""
  a = sigma ** 2 + readout_sq_norm
  return a / jnp.sqrt(a ** 2 + (input_dim - 1) * readout_sq_norm ** 2)
