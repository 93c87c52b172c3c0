r"""Attention as a Hebbian associative memory (the "Pavlovian conditioning" view of linear attention;
Qiao 2025, arXiv:2508.08289, whose exact theorem we could not read: the statements below are
derived here and tested against Monte Carlo).

Storage is an outer-product sum $M = \sum_{i=1}^n v_i k_i^\top$ (unnormalised linear attention) and
retrieval reads $r_j = M k_j = \|k_j\|^2 v_j + \xi_j$ with crosstalk $\xi_j = \sum_{i\ne j} (k_i^\top k_j) v_i$.
For values with zero mean, independent of the keys and of each other:
  * unit keys uniform on the sphere: $E[(k_i^\top k_j)^2] = 1/d_k$, so the relative retrieval error is
    $E\|r_j - v_j\|^2 / E\|v_j\|^2 = (n - 1)/d_k$;
  * Gaussian keys $N(0, I/d_k)$: the norm fluctuates too, $\mathrm{Var}\|k\|^2 = 2/d_k$, giving $(n + 1)/d_k$;
  * at a fixed signal-to-noise ratio $\tau$ (relative error $\le 1/\tau$) the capacity is
    $n_{max} = 1 + \lfloor d_k/\tau \rfloor$ for unit keys: linear in $d_k$;
  * worst case, deterministically: $\|\xi_j\| \le (n - 1)\,\mu \max_i\|v_i\|$ with the coherence
    $\mu = \max_{i\ne j}|k_i^\top k_j|$ (so error-free recall is only guaranteed for $n \lesssim 1/\mu$,
    $\mu \approx \sqrt{4\ln n/d_k}$ for random keys: the $\sqrt{d_k}$ law is a worst-case bound);
  * $H$ heads storing the same items under independent keys, averaged: the crosstalk of different
    heads is uncorrelated, so the relative error falls to $(n - 1)/(H d_k)$;
  * depth, as chained (multi-hop) retrieval through $L$ layers, layer $l$ storing item $i$'s key
    $k^{(l)}_i$ -> its next key $k^{(l+1)}_i$ (unit keys, independent across layers): with key rows $K_l$,
    $r_L = K_{L+1}^\top G_L \cdots G_1 e_j$, $G_l = K_l K_l^\top = I + A_l$, where $A_l$ has zero diagonal,
    zero mean, and $E[A_l^2] = x I$ with $x = (n-1)/d_k$. Expanding $\prod_l (I + A_l) - I$ over subsets
    of layers, every cross term has some $A_l$ once and vanishes, so exactly
    $\varepsilon_L = \sum_{k=1}^{L}\binom{L}{k} x^k = (1 + x)^L - 1 \approx L(n-1)/d_k$ for $n \ll d_k$:
    crosstalk adds up with depth, and compounds once $n$ is a sizeable fraction of $d_k$.
"""

from __future__ import annotations

import jax.numpy as jnp


def relative_error_unit_keys(n, d_k):
  return (n - 1) / d_k


def relative_error_gaussian_keys(n, d_k):
  return (n + 1) / d_k


def relative_error_heads(n, d_k, heads):
  """Unit keys, `heads` independent full-width heads averaged."""
  return (n - 1) / (heads * d_k)


def relative_error_chain(n, d_k, depth: int):
  """Unit keys, retrieval chained through `depth` independent memories: (1 + (n-1)/d_k)^L - 1."""
  return (1.0 + (n - 1) / d_k) ** depth - 1.0


def capacity(d_k, snr):
  """Largest n whose expected relative error (n - 1)/d_k is at most 1/snr (unit keys)."""
  return 1 + jnp.floor(d_k / snr)


def coherence_bound(n, coherence, max_value_norm):
  """Worst-case crosstalk norm (n - 1) mu max|v|."""
  return (n - 1) * coherence * max_value_norm
