r"""The Dynamical Systems Framework (Sieber, Amo Alonso, Didier, Zeilinger & Orvieto, NeurIPS 2024,
"Understanding the differences in Foundation Models: Attention, State Space Models, and Recurrent
Neural Networks", sec. 2, eq. 1): every causal sequence mixer is a linear time-varying system

  $h_i = \Lambda_i h_{i-1} + B_i u_i$,  $y_i = C_i h_i + D_i u_i$,  $h_0 = 0$,

with $u_i \in \mathbb{R}^d$, $h_i \in \mathbb{R}^N$ ($N = n \cdot d_v$, $n$ the state expansion) and
$\Lambda_i, B_i, C_i, D_i$ functions of the inputs. Its convolution (materialised) form is

  $y_i = \sum_{j \le i} \Phi_{ij} u_j$,  $\Phi_{ij} = C_i \Lambda_i \Lambda_{i-1} \cdots \Lambda_{j+1} B_j$
  ($j < i$),  $\Phi_{ii} = C_i B_i + D_i$.

Every model the paper covers has a diagonal $\Lambda_i$, so it is stored as a vector (`lam_TxN`).
The state is stored value-channel-major: index $(c, m) \mapsto c\,n + m$ for value channel $c$ and
feature $m$, so $B_i = W_V \otimes k_i$ and $C_i = I_{d_v} \otimes q_i^\top$ (Kronecker products).

Constructors (`*_dsf`) map a model's parameters and inputs to `DSF(lam, b, c, d)` sequences; each
model also has a native implementation written the way its own paper computes it, so the two are
independent derivations of the same function:

- linear attention (Katharopoulos et al. 2020), normalised or not: $\Lambda_i = (\eta_{i-1}/\eta_i) I$,
  $B_i = \eta_i^{-1}(W_V \otimes \psi(k_i))$, $C_i = I \otimes \phi(q_i)^\top$ with $\eta_i =
  \phi(q_i)^\top \sum_{j \le i}\psi(k_j)$ (Sieber et al. sec. 3.1; $\eta \equiv 1$ unnormalised).
  Native: `linear_attention.linear_attention_recurrent`.
- softmax attention: the same with $\phi(q)^\top\psi(k) = e^{q^\top k/\sqrt{d_k}}$, which needs
  $n = \infty$. `softmax_attention_dsf` uses the exact finite realisation with one state slot per
  position ($n = T$: $\Lambda = I$, $B_i$ writes $W_V u_i$ into slot $i$, $C_i$ reads with the softmax
  weights of row $i$); `taylor_features` gives the paper's truncation $\phi_P$ with
  $\phi_P(q)^\top\phi_P(k) = \sum_{p \le P} (q^\top k/\sqrt{d_k})^p / p!$.
- normalised attention (Sieber et al. sec. 4, "MHNA"): $\eta_i = \exp(w_\eta^\top u_i + b_\eta)$, no
  feature map.
- S6 / Mamba (Gu & Dao 2023, alg. 2; `selective_scan_ref` semantics): $\Lambda_i =
  \mathrm{diag}(\exp(\Delta_{i,c} A_{cm}))$, $B_i = \mathrm{diag}(\Delta_i) \otimes b_i$, $C_i = I_d
  \otimes c_i^\top$, $D_i = \mathrm{diag}(D)$.
- SSD / Mamba-2 (Dao & Gu 2024, sec. 6): scalar decay $\lambda_i = e^{\Delta_i a}$ and input scale
  $\Delta_i$, $\Lambda_i = \lambda_i I$, $B_i = \Delta_i (W_X \otimes b_i)$; native: the quadratic
  "attention" form $Y = (L \circ C B^\top) X$, $L_{ij} = \Delta_j \prod_{l=j+1}^{i}\lambda_l$.
- RetNet (Sun et al. 2023, eq. 5-6): $\Lambda = \gamma I$; native: the parallel retention
  $(QK^\top \odot D)V$, $D_{ij} = \gamma^{i-j}$ (xPos rotation absorbed into $q$, $k$).
- GLA (Yang et al. 2024): $\Lambda_i = I_{d_v} \otimes \mathrm{diag}(\alpha_i)$; native:
  `linear_attention.gla_recurrent`.
- quasi-LSTM (Sieber et al. sec. 3.4, $n = 1$): $h_i = \sigma(f_i)\odot h_{i-1} + \sigma(\iota_i)
  \odot W_{in}u_i$, $y_i = \sigma(o_i) \odot h_i$: $\Lambda_i = \mathrm{diag}\,\sigma(f_i)$, $B_i =
  \mathrm{diag}\,\sigma(\iota_i) W_{in}$, $C_i = \mathrm{diag}\,\sigma(o_i)$.

All functions act on one sequence of one head (vmap over batch and heads).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.attention_dynamics import linear_attention as la


class DSF(NamedTuple):
  """One sequence of DSF matrices: diagonal $\\Lambda_i$ and dense $B_i$, $C_i$, $D_i$."""

  lam: jax.Array  # [T, N], the diagonal of Lambda_i
  b: jax.Array  # [T, N, D]
  c: jax.Array  # [T, P, N]
  d: jax.Array  # [T, P, D]


# ---------------------------------------------------------------------------------------------
# The generic system


@jax.jit
def dsf_scan(sys: DSF, u_TxD: jax.Array) -> jax.Array:
  """The recurrence $h_i = \\Lambda_i h_{i-1} + B_i u_i$, $y_i = C_i h_i + D_i u_i$ under `lax.scan`."""

  def step(h_N, inputs):
    lam_N, b_NxD, c_PxN, d_PxD, u_D = inputs
    h_N = lam_N * h_N + b_NxD @ u_D
    return h_N, c_PxN @ h_N + d_PxD @ u_D

  h0 = jnp.zeros(sys.lam.shape[1], jnp.result_type(sys.lam, sys.b, u_TxD))
  _, y_TxP = jax.lax.scan(step, h0, (sys.lam, sys.b, sys.c, sys.d, u_TxD))
  return y_TxP


@jax.jit
def dsf_kernel(sys: DSF) -> jax.Array:
  """The materialised operator $\\Phi$ [T, T, P, D]: $\\Phi_{ij} = C_i \\Lambda_i \\cdots
  \\Lambda_{j+1} B_j$ below the diagonal, $C_i B_i + D_i$ on it, 0 above it (causal).

  The transition products are accumulated row by row ($P_{i,\\cdot} = \\Lambda_i P_{i-1,\\cdot}$, then
  $P_{ii} = 1$), never as ratios of cumulative products, so a decay that underflows stays exact.
  """
  t, n = sys.lam.shape

  def row(prod_TxN, inputs):
    i, lam_N = inputs
    prod_TxN = jnp.where((jnp.arange(t) == i)[:, None], 1.0, lam_N[None, :] * prod_TxN)
    return prod_TxN, prod_TxN

  init = jnp.zeros((t, n), sys.lam.dtype)
  _, prod_TxTxN = jax.lax.scan(row, init, (jnp.arange(t), sys.lam))  # [i, j, :], 0 for j > i
  phi = jnp.einsum("ipn,ijn,jnd->ijpd", sys.c, prod_TxTxN, sys.b)
  eye_TxT = jnp.eye(t, dtype=phi.dtype)
  return phi + eye_TxT[:, :, None, None] * sys.d[:, None, :, :]


@jax.jit
def dsf_convolve(phi_TxTxPxD: jax.Array, u_TxD: jax.Array) -> jax.Array:
  """$y_i = \\sum_j \\Phi_{ij} u_j$ (the kernel is already zero above the diagonal)."""
  return jnp.einsum("ijpd,jd->ip", phi_TxTxPxD, u_TxD)


def eigenvalues(sys: DSF) -> jax.Array:
  """The eigenvalues of every $\\Lambda_i$ [T, N] (diagonal, so the stored vector itself)."""
  return sys.lam


# ---------------------------------------------------------------------------------------------
# Attention-type models: q, k, v are linear in u, a feature map and a normaliser


def _kron_value_feature(w_VxD: jax.Array, f_TxK: jax.Array) -> jax.Array:
  """$B_i = W_V \\otimes f_i$ as [T, V*K, D] (state value-channel-major)."""
  t, k = f_TxK.shape
  v, d = w_VxD.shape
  return (w_VxD[None, :, None, :] * f_TxK[:, None, :, None]).reshape(t, v * k, d)


def _readout(f_TxK: jax.Array, v: int) -> jax.Array:
  """$C_i = I_V \\otimes f_i^\\top$ as [T, V, V*K]."""
  t, k = f_TxK.shape
  eye_VxV = jnp.eye(v, dtype=f_TxK.dtype)
  return (eye_VxV[None, :, :, None] * f_TxK[:, None, None, :]).reshape(t, v, v * k)


def _qkv(params, u_TxD):
  return u_TxD @ params["w_q"].T, u_TxD @ params["w_k"].T, u_TxD @ params["w_v"].T


def identity_feature_map(x: jax.Array) -> jax.Array:
  return x


def linear_attention_dsf(params, u_TxD: jax.Array, *, feature_map=la.elu_feature_map,
                         normalize: bool = True) -> DSF:
  """Linear attention in DSF form (Sieber et al. sec. 3.1): $\\Lambda_i = \\eta_{i-1}/\\eta_i$.

  `params`: `w_q` [K, D], `w_k` [K, D], `w_v` [V, D]; the feature map acts on $W_Q u$ and $W_K u$.
  """
  q, k, v = _qkv(params, u_TxD)
  fq_TxK, fk_TxK = feature_map(q), feature_map(k)
  t, dv = v.shape
  if normalize:
    eta_T = jnp.sum(fq_TxK * jnp.cumsum(fk_TxK, axis=0), axis=1)
  else:
    eta_T = jnp.ones((t,), fq_TxK.dtype)
  return _normalised_dsf(eta_T, fq_TxK, fk_TxK, params["w_v"])


def _normalised_dsf(eta_T, fq_TxK, fk_TxK, w_VxD) -> DSF:
  """$\\Lambda_i = \\eta_{i-1}/\\eta_i$ ($\\eta_0 := \\eta_1$; $h_0 = 0$ makes it irrelevant),
  $B_i = \\eta_i^{-1} W_V \\otimes \\psi_i$, $C_i = I \\otimes \\phi_i^\\top$, $D_i = 0$."""
  t, k = fk_TxK.shape
  v, d = w_VxD.shape
  eta_prev_T = jnp.concatenate([eta_T[:1], eta_T[:-1]])
  lam_TxN = jnp.broadcast_to((eta_prev_T / eta_T)[:, None], (t, v * k))
  b = _kron_value_feature(w_VxD, fk_TxK) / eta_T[:, None, None]
  c = _readout(fq_TxK, v)
  return DSF(lam_TxN, b, c, jnp.zeros((t, v, d), b.dtype))


def linear_attention_native(params, u_TxD, *, feature_map=la.elu_feature_map,
                            normalize: bool = True) -> jax.Array:
  """Katharopoulos et al.'s recurrent form (`linear_attention.linear_attention_recurrent`)."""
  q, k, v = _qkv(params, u_TxD)
  return la.linear_attention_recurrent(feature_map(q), feature_map(k), v, normalize=normalize)


def softmax_attention_native(params, u_TxD: jax.Array) -> jax.Array:
  """Causal softmax attention $y_i = \\sum_{j \\le i}\\mathrm{softmax}_j(q_i^\\top k_j/\\sqrt{d_k}) v_j$."""
  q, k, v = _qkv(params, u_TxD)
  t = q.shape[0]
  s_TxT = jnp.where(la.causal_mask(t), q @ k.T / math.sqrt(q.shape[1]), -jnp.inf)
  return jax.nn.softmax(s_TxT, axis=1) @ v


def softmax_attention_dsf(params, u_TxD: jax.Array) -> DSF:
  """Softmax attention as an exact DSF with one state slot per position ($n = T$, the KV cache).

  $\\Lambda_i = I$, $B_i = e_i \\otimes W_V$ stores $v_i$ in slot $i$, $C_i = a_i^\\top \\otimes I_V$
  reads with row $i$ of the causal softmax. The paper's own form, $\\Lambda_i = \\nu_{i-1}/\\nu_i$ with
  infinite-dimensional exponential features, is approached by `taylor_features` as $P \\to \\infty$.
  Here the state is slot-major ($N = T \\cdot V$, index $j V + c$).
  """
  q, k, v = _qkv(params, u_TxD)
  t, dv = v.shape
  d = u_TxD.shape[1]
  s_TxT = jnp.where(la.causal_mask(t), q @ k.T / math.sqrt(q.shape[1]), -jnp.inf)
  a_TxT = jax.nn.softmax(s_TxT, axis=1)
  eye_TxT = jnp.eye(t, dtype=u_TxD.dtype)
  b = (eye_TxT[:, :, None, None] * params["w_v"][None, None, :, :]).reshape(t, t * dv, d)
  eye_VxV = jnp.eye(dv, dtype=u_TxD.dtype)
  c = (a_TxT[:, None, :, None] * eye_VxV[None, :, None, :]).reshape(t, dv, t * dv)
  return DSF(jnp.ones((t, t * dv), u_TxD.dtype), b, c, jnp.zeros((t, dv, d), u_TxD.dtype))


def taylor_multi_indices(dim: int, order: int) -> np.ndarray:
  """All multi-indices $\\alpha \\in \\mathbb{N}^{dim}$ with $|\\alpha| \\le$ order, [F, dim],
  $F = \\binom{dim + order}{order}$ (the symmetrised Taylor features)."""
  rows = [np.zeros(dim, np.int64)]
  frontier = [np.zeros(dim, np.int64)]
  for _ in range(order):
    nxt = {}
    for a in frontier:
      last = int(np.max(np.nonzero(a)[0])) if a.any() else 0
      for m in range(last, dim):  # non-decreasing index order: each multiset once
        b = a.copy()
        b[m] += 1
        nxt[tuple(b)] = b
    frontier = list(nxt.values())
    rows.extend(frontier)
  return np.stack(rows)


def taylor_features(x_TxK: jax.Array, order: int) -> jax.Array:
  """$\\phi_P(x)_\\alpha = (x/d_k^{1/4})^\\alpha / \\sqrt{\\alpha!}$, $|\\alpha| \\le P$, so that
  $\\phi_P(q)^\\top\\phi_P(k) = \\sum_{p \\le P} (q^\\top k/\\sqrt{d_k})^p / p!$ (multinomial theorem),
  the order-$P$ Taylor polynomial of the softmax kernel. Even $P$ keeps the kernel positive."""
  t, dk = x_TxK.shape
  alpha_FxK = taylor_multi_indices(dk, order)
  x_TxK = x_TxK / dk**0.25
  # powers[t, m, e] = x_tm^e by repeated products (exact for negative x, 0^0 = 1)
  ones_TxK = jnp.ones_like(x_TxK)
  powers = jnp.cumprod(jnp.concatenate(
      [ones_TxK[:, :, None], jnp.broadcast_to(x_TxK[:, :, None], (t, dk, order))], axis=2), axis=2)
  mono_TxFxK = powers[:, jnp.arange(dk)[None, :], jnp.asarray(alpha_FxK)]
  log_fact_F = np.sum([[math.lgamma(a + 1) for a in row] for row in alpha_FxK], axis=1)
  return jnp.prod(mono_TxFxK, axis=2) * jnp.asarray(np.exp(-0.5 * log_fact_F))[None, :]


def normalized_attention_dsf(params, u_TxD: jax.Array) -> DSF:
  """Sieber et al.'s normalised attention: $\\eta_i = \\exp(w_\\eta^\\top u_i + b_\\eta)$, no feature
  map, so $\\Lambda_i = \\exp(w_\\eta^\\top(u_{i-1} - u_i))$."""
  q, k, _ = _qkv(params, u_TxD)
  eta_T = jnp.exp(u_TxD @ params["w_eta"] + params["b_eta"])
  return _normalised_dsf(eta_T, q, k, params["w_v"])


def normalized_attention_native(params, u_TxD: jax.Array) -> jax.Array:
  """$y_i = \\sum_{j \\le i} (q_i^\\top k_j) v_j / \\eta_i$ (parallel form)."""
  q, k, v = _qkv(params, u_TxD)
  eta_T = jnp.exp(u_TxD @ params["w_eta"] + params["b_eta"])
  return la.linear_attention_parallel(q, k, v, normalize=False) / eta_T[:, None]


# ---------------------------------------------------------------------------------------------
# State space models


def s6_discretisation(params, u_TxD: jax.Array):
  """Mamba's selection: $\\Delta = \\mathrm{softplus}(W_{up}W_{down}u + b_\\Delta)$ [T, D],
  $b_i = W_B u_i$, $c_i = W_C u_i$ [T, n], $A = -\\exp(A_{log})$ [D, n]."""
  dt_TxD = jax.nn.softplus(u_TxD @ params["w_dt_down"].T @ params["w_dt_up"].T
                           + params["b_dt"][None, :])
  return dt_TxD, u_TxD @ params["w_b"].T, u_TxD @ params["w_c"].T, -jnp.exp(params["a_log"])


def s6_native(params, u_TxD: jax.Array) -> jax.Array:
  """Mamba's `selective_scan_ref`: $x \\leftarrow e^{\\Delta A} \\odot x + \\Delta\\, u\\, b^\\top$ on a
  [D, n] state, $y = x c + D \\odot u$."""
  dt_TxD, b_TxN, c_TxN, a_DxN = s6_discretisation(params, u_TxD)

  def step(x_DxN, inputs):
    dt_D, b_N, c_N, u_D = inputs
    x_DxN = jnp.exp(dt_D[:, None] * a_DxN) * x_DxN + (dt_D * u_D)[:, None] * b_N[None, :]
    return x_DxN, x_DxN @ c_N + params["d"] * u_D

  _, y = jax.lax.scan(step, jnp.zeros_like(a_DxN), (dt_TxD, b_TxN, c_TxN, u_TxD))
  return y


def s6_dsf(params, u_TxD: jax.Array) -> DSF:
  """$\\Lambda_i = \\mathrm{diag}(e^{\\Delta_{i,c}A_{cm}})$, $B_i = \\mathrm{diag}(\\Delta_i)\\otimes
  b_i$, $C_i = I_D \\otimes c_i^\\top$, $D_i = \\mathrm{diag}(D)$ (state index $c\\,n + m$)."""
  dt_TxD, b_TxN, c_TxN, a_DxN = s6_discretisation(params, u_TxD)
  t, d = u_TxD.shape
  n = b_TxN.shape[1]
  lam = jnp.exp(dt_TxD[:, :, None] * a_DxN[None, :, :]).reshape(t, d * n)
  eye_DxD = jnp.eye(d, dtype=u_TxD.dtype)
  b = (eye_DxD[None, :, None, :] * (dt_TxD[:, :, None, None] * b_TxN[:, None, :, None])
       ).reshape(t, d * n, d)
  return DSF(lam, b, _readout(c_TxN, d),
             jnp.broadcast_to(jnp.diag(params["d"])[None], (t, d, d)))


def ssd_gates(params, u_TxD: jax.Array):
  """Mamba-2's scalar step per head: $\\Delta_i = \\mathrm{softplus}(w_\\Delta^\\top u_i + b_\\Delta)$ and
  log-decay $\\Delta_i a$, $a = -\\exp(a_{log}) < 0$."""
  dt_T = jax.nn.softplus(u_TxD @ params["w_dt"] + params["b_dt"])
  return dt_T, dt_T * -jnp.exp(params["a_log"])


def ssd_quadratic(c_TxN: jax.Array, b_TxN: jax.Array, x_TxP: jax.Array, log_decay_T: jax.Array,
                  dt_T: jax.Array) -> jax.Array:
  """SSD's dual "attention" form (Dao & Gu 2024, eq. 16): $Y = (L \\circ CB^\\top)X$ with the
  1-semiseparable mask $L_{ij} = \\Delta_j \\exp(\\sum_{l=j+1}^{i}\\log\\lambda_l)$ for $j \\le i$."""
  t = x_TxP.shape[0]
  cum_T = jnp.cumsum(log_decay_T)
  seg_TxT = jnp.where(la.causal_mask(t), cum_T[:, None] - cum_T[None, :], -jnp.inf)
  l_TxT = jnp.exp(seg_TxT) * dt_T[None, :]
  return (l_TxT * (c_TxN @ b_TxN.T)) @ x_TxP


def ssd_from_gates_dsf(c_TxN, b_TxN, w_x_PxD, log_decay_T, dt_T, d_skip_PxD) -> DSF:
  """$\\Lambda_i = \\lambda_i I$, $B_i = \\Delta_i (W_X \\otimes b_i)$, $C_i = I \\otimes c_i^\\top$,
  $D_i$ = `d_skip_PxD` (state index $p\\,n + m$)."""
  t = c_TxN.shape[0]
  p = w_x_PxD.shape[0]
  n = b_TxN.shape[1]
  lam = jnp.broadcast_to(jnp.exp(log_decay_T)[:, None], (t, p * n))
  b = _kron_value_feature(w_x_PxD, b_TxN) * dt_T[:, None, None]
  return DSF(lam, b, _readout(c_TxN, p), jnp.broadcast_to(d_skip_PxD[None], (t,) + d_skip_PxD.shape))


def ssd_native(params, u_TxD: jax.Array) -> jax.Array:
  """One SSD head: $b_i = W_B u_i$, $c_i = W_C u_i$, $x_i = W_X u_i$, plus the skip $D x_i$."""
  dt_T, log_decay_T = ssd_gates(params, u_TxD)
  x = u_TxD @ params["w_x"].T
  y = ssd_quadratic(u_TxD @ params["w_c"].T, u_TxD @ params["w_b"].T, x, log_decay_T, dt_T)
  return y + params["d"] * x


def ssd_dsf(params, u_TxD: jax.Array) -> DSF:
  dt_T, log_decay_T = ssd_gates(params, u_TxD)
  return ssd_from_gates_dsf(u_TxD @ params["w_c"].T, u_TxD @ params["w_b"].T, params["w_x"],
                            log_decay_T, dt_T, params["d"] * params["w_x"])


def tied_ssd_gates(eta_T: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The SSD gates that make it normalised linear attention with normaliser $\\eta$: input scale
  $\\Delta_i = 1/\\eta_i$ and decay $\\lambda_i = \\Delta_i/\\Delta_{i-1} = \\eta_{i-1}/\\eta_i$
  (returned as (log_decay, dt); $\\lambda_1$ is irrelevant since $h_0 = 0$, set to 1)."""
  dt_T = 1.0 / eta_T
  log_decay_T = jnp.concatenate([jnp.zeros_like(eta_T[:1]), jnp.log(eta_T[:-1] / eta_T[1:])])
  return log_decay_T, dt_T


# ---------------------------------------------------------------------------------------------
# RetNet, GLA, quasi-LSTM


def retnet_native(params, u_TxD: jax.Array, gamma: float) -> jax.Array:
  """Parallel retention (Sun et al. 2023, eq. 5): $(QK^\\top \\odot D)V$, $D_{ij} = \\gamma^{i-j}$."""
  q, k, v = _qkv(params, u_TxD)
  t = q.shape[0]
  i = jnp.arange(t)
  decay_TxT = jnp.where(la.causal_mask(t), gamma ** (i[:, None] - i[None, :]).astype(q.dtype), 0.0)
  return ((q @ k.T) * decay_TxT) @ v


def retnet_dsf(params, u_TxD: jax.Array, gamma: float) -> DSF:
  """$\\Lambda = \\gamma I$, $B_i = W_V \\otimes k_i$, $C_i = I \\otimes q_i^\\top$."""
  q, k, v = _qkv(params, u_TxD)
  t, dv = v.shape
  b = _kron_value_feature(params["w_v"], k)
  return DSF(jnp.full((t, b.shape[1]), gamma, u_TxD.dtype), b, _readout(q, dv),
             jnp.zeros((t, dv, u_TxD.shape[1]), u_TxD.dtype))


def gla_log_gate(params, u_TxD: jax.Array, tau: float = 16.0) -> jax.Array:
  """GLA's gate (Yang et al. sec. 4.4): $\\log\\alpha_i = \\mathrm{logsigmoid}(W_\\alpha u_i + b)/\\tau$."""
  return jax.nn.log_sigmoid(u_TxD @ params["w_alpha"].T + params["b_alpha"][None, :]) / tau


def gla_native(params, u_TxD: jax.Array, tau: float = 16.0) -> jax.Array:
  """`linear_attention.gla_recurrent` on $q = W_Q u$, $k = W_K u$, $v = W_V u$."""
  q, k, v = _qkv(params, u_TxD)
  return la.gla_recurrent(q, k, v, gla_log_gate(params, u_TxD, tau))


def gla_dsf(params, u_TxD: jax.Array, tau: float = 16.0) -> DSF:
  """$\\Lambda_i = I_V \\otimes \\mathrm{diag}(\\alpha_i)$, $B_i = W_V \\otimes k_i$, $C_i = I \\otimes q_i^\\top$."""
  q, k, v = _qkv(params, u_TxD)
  t, dv = v.shape
  alpha_TxK = jnp.exp(gla_log_gate(params, u_TxD, tau))
  lam = jnp.tile(alpha_TxK, (1, dv))  # index c*K + m -> alpha_m
  return DSF(lam, _kron_value_feature(params["w_v"], k), _readout(q, dv),
             jnp.zeros((t, dv, u_TxD.shape[1]), u_TxD.dtype))


def _qlstm_gates(params, u_TxD):
  gate = lambda name: jax.nn.sigmoid(u_TxD @ params[f"w_{name}"].T + params[f"b_{name}"][None, :])
  return gate("f"), gate("i"), gate("o"), u_TxD @ params["w_in"].T


def qlstm_native(params, u_TxD: jax.Array) -> jax.Array:
  """Quasi-LSTM core (Sieber et al. sec. 3.4; tanh dropped, gates from $u$ only):
  $h_i = \\sigma(f_i)\\odot h_{i-1} + \\sigma(\\iota_i)\\odot \\tilde x_i$, $y_i = \\sigma(o_i)\\odot h_i$."""
  f, i, o, x = _qlstm_gates(params, u_TxD)

  def step(h_H, inputs):
    f_H, i_H, o_H, x_H = inputs
    h_H = f_H * h_H + i_H * x_H
    return h_H, o_H * h_H

  _, y = jax.lax.scan(step, jnp.zeros_like(x[0]), (f, i, o, x))
  return y


def qlstm_dsf(params, u_TxD: jax.Array) -> DSF:
  """$\\Lambda_i = \\mathrm{diag}\\,\\sigma(f_i)$, $B_i = \\mathrm{diag}\\,\\sigma(\\iota_i)W_{in}$,
  $C_i = \\mathrm{diag}\\,\\sigma(o_i)$, $D_i = 0$ ($n = 1$)."""
  f, i, o, _ = _qlstm_gates(params, u_TxD)
  t, h = f.shape
  eye_HxH = jnp.eye(h, dtype=u_TxD.dtype)
  return DSF(f, i[:, :, None] * params["w_in"][None], o[:, :, None] * eye_HxH[None],
             jnp.zeros((t, h, u_TxD.shape[1]), u_TxD.dtype))


# ---------------------------------------------------------------------------------------------
# Random parameters for tests and demos


def init_params(key: jax.Array, model: str, d: int, *, k: int = 4, v: int = 3, n: int = 4,
                dtype=jnp.float64) -> dict[str, jax.Array]:
  """Random parameters of `model` (attention / normalized / s6 / ssd / gla / qlstm) for input dim d.

  Scales keep every decay in (0, 1) and every normaliser away from zero; S6 follows Mamba's init
  ($A_{cm} = -(m+1)$, $\\Delta$ log-uniform in [1e-3, 1e-1] through $b_\\Delta$).
  """
  keys = iter(jax.random.split(key, 16))
  normal = lambda shape, scale: scale * jax.random.normal(next(keys), shape, dtype)
  if model in ("attention", "normalized", "gla"):
    p = {"w_q": normal((k, d), d**-0.5), "w_k": normal((k, d), d**-0.5), "w_v": normal((v, d), 1.0)}
    if model == "normalized":
      p.update(w_eta=normal((d,), 0.3), b_eta=jnp.asarray(0.1, dtype))
    if model == "gla":
      p.update(w_alpha=normal((k, d), 1.0), b_alpha=normal((k,), 1.0) + 2.0)
    return p
  if model == "s6":
    r = max(1, -(-d // 16))
    dt0 = jnp.exp(jax.random.uniform(next(keys), (d,), dtype, math.log(1e-3), math.log(1e-1)))
    return {"w_dt_down": normal((r, d), d**-0.5), "w_dt_up": normal((d, r), 1.0),
            "b_dt": dt0 + jnp.log(-jnp.expm1(-dt0)),  # softplus^{-1}(dt0)
            "w_b": normal((n, d), d**-0.5), "w_c": normal((n, d), d**-0.5),
            "a_log": jnp.log(jnp.broadcast_to(jnp.arange(1, n + 1, dtype=dtype), (d, n))),
            "d": normal((d,), 1.0)}
  if model == "ssd":
    return {"w_dt": normal((d,), 0.3), "b_dt": jnp.asarray(-1.0, dtype),
            "a_log": jnp.asarray(0.0, dtype), "w_b": normal((n, d), d**-0.5),
            "w_c": normal((n, d), d**-0.5), "w_x": normal((v, d), 1.0),
            "d": jnp.asarray(0.7, dtype)}
  if model == "qlstm":
    p = {"w_in": normal((v, d), 1.0)}
    for g in ("f", "i", "o"):
      p[f"w_{g}"] = normal((v, d), d**-0.5)
      p[f"b_{g}"] = normal((v,), 1.0)
    return p
  raise ValueError(f"unknown model {model!r}")


# ---------------------------------------------------------------------------------------------
# Multi-query associative recall (Arora et al. 2023, "Zoology", MQAR; Sieber et al. sec. 5)


def mqar_batch(key: jax.Array, batch: int, num_pairs: int, num_keys: int,
               num_values: int) -> dict[str, jax.Array]:
  """Sequences $k_1 v_1 \\dots k_P v_P\\, k_{\\pi(1)} \\dots k_{\\pi(P)}$: P distinct keys (tokens
  0..num_keys-1) each followed by its value (tokens num_keys..), then every key queried once in a
  random order; the target at a query is its value. Returns tokens [B, 3P] and targets [B, P]."""

  def one(k):
    kk, kv, kp = jax.random.split(k, 3)
    keys = jax.random.permutation(kk, num_keys)[:num_pairs]
    values = num_keys + jax.random.randint(kv, (num_pairs,), 0, num_values)
    order = jax.random.permutation(kp, num_pairs)
    context = jnp.stack([keys, values], axis=1).reshape(-1)
    return {"tokens": jnp.concatenate([context, keys[order]]), "targets": values[order]}

  return jax.vmap(one)(jax.random.split(key, batch))


def recall_init(key: jax.Array, vocab: int, d_model: int, state_dim: int,
                dtype=jnp.float32) -> dict[str, jax.Array]:
  """One linear-attention layer on token embeddings, with a width-2 causal shift for the keys."""
  ke, kq, kk, kv, ko = jax.random.split(key, 5)
  normal = lambda k, shape, scale: scale * jax.random.normal(k, shape, dtype)
  return {"embed": normal(ke, (vocab, d_model), 1.0),
          "w_q": normal(kq, (state_dim, d_model), d_model**-0.5),
          "w_k": normal(kk, (state_dim, d_model), d_model**-0.5),
          "w_v": normal(kv, (d_model, d_model), d_model**-0.5),
          "w_out": normal(ko, (vocab, d_model), d_model**-0.5)}


def recall_mixer_inputs(params, tokens_T: jax.Array, state_mask_K: jax.Array):
  """$q_i = m \\odot W_Q e(x_i)$, $k_i = m \\odot W_K e(x_{i-1})$, $v_i = W_V e(x_i)$: the mask $m$
  keeps the first n of the K feature channels, so the state has $n \\cdot d_v$ live entries and one
  compiled program trains every state expansion."""
  e_TxD = params["embed"][tokens_T]
  prev_TxD = jnp.concatenate([jnp.zeros_like(e_TxD[:1]), e_TxD[:-1]])
  q = (e_TxD @ params["w_q"].T) * state_mask_K[None, :]
  k = (prev_TxD @ params["w_k"].T) * state_mask_K[None, :]
  return q, k, e_TxD @ params["w_v"].T


def recall_logits(params, tokens_T: jax.Array, state_mask_K: jax.Array, *,
                  mixer: str = "linear") -> jax.Array:
  """Logits [T, vocab]: unnormalised linear attention (state $n \\times d_v$) or, as the
  infinite-state reference, causal softmax attention on the same q, k, v."""
  q, k, v = recall_mixer_inputs(params, tokens_T, state_mask_K)
  if mixer == "linear":
    o = la.linear_attention_parallel(q, k, v, normalize=False)
  elif mixer == "softmax":
    t = q.shape[0]
    s = jnp.where(la.causal_mask(t), q @ k.T, -jnp.inf)
    o = jax.nn.softmax(s, axis=1) @ v
  else:
    raise ValueError(f"unknown mixer {mixer!r}")
  return o @ params["w_out"].T


def recall_loss(params, batch, key, *, mixer: str = "linear"):
  """Cross-entropy and accuracy at the query positions (the last P tokens)."""
  del key
  p = batch["targets"].shape[1]
  logits = jax.vmap(lambda t: recall_logits(params, t, batch["mask"], mixer=mixer))(
      batch["tokens"])[:, -p:]
  ce = jnp.mean(jax.nn.logsumexp(logits, axis=-1)
                - jnp.take_along_axis(logits, batch["targets"][..., None], axis=-1)[..., 0])
  acc = jnp.mean(jnp.argmax(logits, axis=-1) == batch["targets"])
  return ce, {"accuracy": acc}
