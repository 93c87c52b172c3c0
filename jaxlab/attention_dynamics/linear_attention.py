r"""Linear attention (Katharopoulos, Vyas, Pappas & Fleuret, ICML 2020, "Transformers are RNNs") and
gated linear attention (Yang, Wang, Shen, Panda & Kim, ICML 2024, "Gated Linear Attention
Transformers with Hardware-Efficient Training"), each in its parallel, recurrent and chunked form.

All functions act on one sequence of one head (vmap over batch and heads); `q_TxK`, `k_TxK` are the
queries and keys *after* any feature map (Katharopoulos eq. 7 uses $\phi(x) = \mathrm{elu}(x) + 1$,
`elu_feature_map`), `v_TxV` the values.

Linear attention (Katharopoulos eqs. 4-6 parallel, eqs. 16-20 recurrent):

  $S_t = S_{t-1} + k_t v_t^\top$, $z_t = z_{t-1} + k_t$,
  $o_t = S_t^\top q_t$ (unnormalised) or $o_t = S_t^\top q_t / (q_t^\top z_t)$ (normalised),

  parallel: $O = \mathrm{tril}(QK^\top) V$, divided row-wise by $\mathrm{rowsum}(\mathrm{tril}(QK^\top))$.
  The official code adds $\epsilon = 10^{-6}$ to the denominator; here $\epsilon$ is a keyword argument
  (default 0) used identically by every form, so the forms are equal, not just close.

  chunked (Yang et al. sec. 2.2, eq. 2; fla `naive_chunk_linear_attn`), chunks $[c]$ of size $C$:
  $O_{[c]} = Q_{[c]} S_{c-1} + \mathrm{tril}(Q_{[c]} K_{[c]}^\top) V_{[c]}$, $S_c = S_{c-1} + K_{[c]}^\top
  V_{[c]}$; the normaliser is the same recursion with $V$ replaced by a column of ones.

Gated linear attention (Yang et al. sec. 4.1, eq. 3), with a data-dependent per-step, per-key-channel
gate $\alpha_t \in (0, 1]^K$ given as $\log\alpha_t$ (`log_alpha_TxK`; a scalar gate per step is
`log_alpha_T[:, None]` broadcast to K columns):

  recurrent: $S_t = \mathrm{diag}(\alpha_t) S_{t-1} + k_t v_t^\top$, $o_t = S_t^\top q_t$.
  parallel: $o_t = \sum_{s \le t} \sum_m q_{tm} k_{sm} e^{b_{tm} - b_{sm}} v_s$ with $b_t = \sum_{r \le
  t}\log\alpha_r$. The paper's $(Q \odot B)(K / B)^\top$ form overflows for long sequences; the
  pairwise log-space differences $b_t - b_s \le 0$ (for $s \le t$) never do.
  chunked (Yang et al. sec. 4.2, secondary-level chunking collapsed to one level): with the in-chunk
  cumulative log gate $b_t$ (restarting at every chunk),
  $o_t = (q_t \odot e^{b_t})^\top S_{c-1} + \sum_{s \le t,\ s \in [c]} [\sum_m q_{tm} k_{sm}
  e^{b_{tm} - b_{sm}}] v_s$ and $S_c = \mathrm{diag}(e^{b_\mathrm{end}}) S_{c-1} + \sum_{s \in [c]}
  (k_s \odot e^{b_\mathrm{end} - b_s}) v_s^\top$.

With $\alpha \equiv 1$ GLA is unnormalised linear attention. A chunk size that does not divide T
pads the end with zero keys/values and unit gates; causality makes the padding invisible.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def elu_feature_map(x: jax.Array) -> jax.Array:
  """Katharopoulos eq. 7: $\\phi(x) = \\mathrm{elu}(x) + 1 > 0$, so normalisers stay positive."""
  return jax.nn.elu(x) + 1.0


def causal_mask(t: int) -> jax.Array:
  """Boolean T x T lower-triangular mask (position t sees s <= t)."""
  return jnp.tril(jnp.ones((t, t), dtype=bool))


# ---------------------------------------------------------------------------------------------
# Linear attention


@functools.partial(jax.jit, static_argnames=("normalize", "eps"))
def linear_attention_parallel(q_TxK: jax.Array, k_TxK: jax.Array, v_TxV: jax.Array, *,
                              normalize: bool = True, eps: float = 0.0) -> jax.Array:
  """$O = \\mathrm{tril}(QK^\\top)V$ (Katharopoulos eq. 5 with the causal mask), optionally / rowsum."""
  t = q_TxK.shape[0]
  a_TxT = jnp.where(causal_mask(t), q_TxK @ k_TxK.T, 0.0)
  o_TxV = a_TxT @ v_TxV
  if normalize:
    o_TxV = o_TxV / (jnp.sum(a_TxT, axis=1, keepdims=True) + eps)
  return o_TxV


@functools.partial(jax.jit, static_argnames=("normalize", "eps"))
def linear_attention_recurrent(q_TxK: jax.Array, k_TxK: jax.Array, v_TxV: jax.Array, *,
                               normalize: bool = True, eps: float = 0.0) -> jax.Array:
  """The RNN form (Katharopoulos eqs. 16-20): state $(S_t, z_t)$ updated one token at a time."""

  def step(carry, inputs):
    s_KxV, z_K = carry
    q_K, k_K, v_V = inputs
    s_KxV = s_KxV + jnp.outer(k_K, v_V)
    z_K = z_K + k_K
    o_V = q_K @ s_KxV
    if normalize:
      o_V = o_V / (q_K @ z_K + eps)
    return (s_KxV, z_K), o_V

  dk, dv = k_TxK.shape[1], v_TxV.shape[1]
  init = (jnp.zeros((dk, dv), v_TxV.dtype), jnp.zeros((dk,), k_TxK.dtype))
  _, o_TxV = jax.lax.scan(step, init, (q_TxK, k_TxK, v_TxV))
  return o_TxV


def _pad_to_chunks(x_TxD: jax.Array, chunk_size: int, value: float = 0.0) -> jax.Array:
  """Pads the time axis to a multiple of `chunk_size` and reshapes to [num_chunks, C, D]."""
  t, d = x_TxD.shape
  n = -(-t // chunk_size)
  x_TxD = jnp.pad(x_TxD, ((0, n * chunk_size - t), (0, 0)), constant_values=value)
  return x_TxD.reshape(n, chunk_size, d)


@functools.partial(jax.jit, static_argnames=("chunk_size", "normalize", "eps"))
def linear_attention_chunked(q_TxK: jax.Array, k_TxK: jax.Array, v_TxV: jax.Array, *,
                             chunk_size: int, normalize: bool = True,
                             eps: float = 0.0) -> jax.Array:
  """Chunkwise form: dense causal attention inside a chunk, the state $S$ carried across chunks."""
  t = q_TxK.shape[0]
  if normalize:  # the normaliser q_t^T z_t is the same recursion applied to a column of ones
    v_TxV = jnp.concatenate([v_TxV, jnp.ones((t, 1), v_TxV.dtype)], axis=1)
  q_NxCxK, k_NxCxK, v_NxCxV = (_pad_to_chunks(x, chunk_size) for x in (q_TxK, k_TxK, v_TxV))
  mask_CxC = causal_mask(chunk_size)

  def chunk(s_KxV, inputs):
    q_CxK, k_CxK, v_CxV = inputs
    intra_CxC = jnp.where(mask_CxC, q_CxK @ k_CxK.T, 0.0)
    o_CxV = q_CxK @ s_KxV + intra_CxC @ v_CxV
    return s_KxV + k_CxK.T @ v_CxV, o_CxV

  init = jnp.zeros((k_TxK.shape[1], v_TxV.shape[1]), v_TxV.dtype)
  _, o_NxCxV = jax.lax.scan(chunk, init, (q_NxCxK, k_NxCxK, v_NxCxV))
  o_TxV = o_NxCxV.reshape(-1, v_TxV.shape[1])[:t]
  if normalize:
    o_TxV = o_TxV[:, :-1] / (o_TxV[:, -1:] + eps)
  return o_TxV


# ---------------------------------------------------------------------------------------------
# Gated linear attention


def _gated_scores(q_TxK: jax.Array, k_SxK: jax.Array, b_q_TxK: jax.Array, b_k_SxK: jax.Array,
                  mask_TxS: jax.Array) -> jax.Array:
  """$A_{ts} = \\sum_m q_{tm} k_{sm} e^{b_{tm} - b_{sm}}$ on the mask, 0 elsewhere (log-space, stable)."""
  diff_TxSxK = b_q_TxK[:, None, :] - b_k_SxK[None, :, :]
  # Off the mask b_t - b_s can be large and positive: replace it before exp, never after.
  decay_TxSxK = jnp.exp(jnp.where(mask_TxS[:, :, None], diff_TxSxK, -jnp.inf))
  return jnp.einsum("tm,sm,tsm->ts", q_TxK, k_SxK, decay_TxSxK)


@jax.jit
def gla_parallel(q_TxK: jax.Array, k_TxK: jax.Array, v_TxV: jax.Array,
                 log_alpha_TxK: jax.Array) -> jax.Array:
  """Parallel GLA: $O = A V$ with the pairwise log-space decayed scores (O(T^2 K) memory)."""
  b_TxK = jnp.cumsum(log_alpha_TxK, axis=0)
  a_TxT = _gated_scores(q_TxK, k_TxK, b_TxK, b_TxK, causal_mask(q_TxK.shape[0]))
  return a_TxT @ v_TxV


@jax.jit
def gla_recurrent(q_TxK: jax.Array, k_TxK: jax.Array, v_TxV: jax.Array,
                  log_alpha_TxK: jax.Array) -> jax.Array:
  """Recurrent GLA (Yang et al. eq. 3): $S_t = \\mathrm{diag}(\\alpha_t)S_{t-1} + k_t v_t^\\top$."""

  def step(s_KxV, inputs):
    q_K, k_K, v_V, log_alpha_K = inputs
    s_KxV = jnp.exp(log_alpha_K)[:, None] * s_KxV + jnp.outer(k_K, v_V)
    return s_KxV, q_K @ s_KxV

  init = jnp.zeros((k_TxK.shape[1], v_TxV.shape[1]), v_TxV.dtype)
  _, o_TxV = jax.lax.scan(step, init, (q_TxK, k_TxK, v_TxV, log_alpha_TxK))
  return o_TxV


@functools.partial(jax.jit, static_argnames=("chunk_size",))
def gla_chunked(q_TxK: jax.Array, k_TxK: jax.Array, v_TxV: jax.Array, log_alpha_TxK: jax.Array,
                *, chunk_size: int) -> jax.Array:
  """Chunkwise GLA: in-chunk log-space attention plus the decayed inter-chunk state."""
  t = q_TxK.shape[0]
  q_NxCxK, k_NxCxK, v_NxCxV, la_NxCxK = (
      _pad_to_chunks(x, chunk_size) for x in (q_TxK, k_TxK, v_TxV, log_alpha_TxK))
  mask_CxC = causal_mask(chunk_size)

  def chunk(s_KxV, inputs):
    q_CxK, k_CxK, v_CxV, la_CxK = inputs
    b_CxK = jnp.cumsum(la_CxK, axis=0)  # restarts at every chunk boundary
    b_end_K = b_CxK[-1]
    inter_CxV = (q_CxK * jnp.exp(b_CxK)) @ s_KxV
    intra_CxV = _gated_scores(q_CxK, k_CxK, b_CxK, b_CxK, mask_CxC) @ v_CxV
    s_KxV = (jnp.exp(b_end_K)[:, None] * s_KxV
             + (k_CxK * jnp.exp(b_end_K[None, :] - b_CxK)).T @ v_CxV)
    return s_KxV, inter_CxV + intra_CxV

  init = jnp.zeros((k_TxK.shape[1], v_TxV.shape[1]), v_TxV.dtype)
  _, o_NxCxV = jax.lax.scan(chunk, init, (q_NxCxK, k_NxCxK, v_NxCxV, la_NxCxK))
  return o_NxCxV.reshape(-1, v_TxV.shape[1])[:t]
