r"""Linear self-attention that learns in context by gradient descent (von Oswald, Niklasson, Randazzo,
Sacramento, Mordvintsev, Zhmoginov & Vladymyrov, ICML 2023, "Transformers learn in-context by
gradient descent": sec. 2, eq. 5 (the LSA layer), Proposition 1 (the construction)).

Tokens $e_i = (x_i, y_i) \in \mathbb R^{d+1}$ for the $N$ context pairs, and a query token $e_q =
(x_q, -W_0 x_q)$ (with $W_0 = 0$ the paper's $(x_q, 0)$). One LSA layer (eq. 5; no softmax, no
$1/\sqrt d$, keys and values over the context tokens only, as `include_query=False` in the official
code) updates every token:

  $e_j \leftarrow e_j + P W_V \left(\sum_{i=1}^N e_i e_i^\top\right) W_K^\top W_Q e_j$,

and the prediction is read out as $\hat y = -(\text{y-slot of } e_q)$.

Proposition 1: with $W_K = W_Q = \begin{pmatrix} I_d & 0 \\ 0 & 0\end{pmatrix}$, $W_V =
\begin{pmatrix} 0 & 0 \\ W_0 & -1\end{pmatrix}$, $P = \frac{\eta}{N} I$ (`gd_construction`), the layer
maps $y_j \mapsto y_j - \Delta W x_j$ with $\Delta W = -\eta\nabla L(W_0)$, $L(W) = \frac{1}{2N}\sum_i
(W x_i - y_i)^2$. The context y-slots become the residuals $y_i - W_1 x_i$, on which the next layer's
update is $-\eta\nabla L(W_1)$, so $K$ stacked copies are $K$ GD steps and
$\hat y = W_K x_q$ (`gd_predict` is the plain-GD reference, by autodiff).

A trained layer's query output, restricted to the part odd in $y$ (the only part that correlates with
the target, see theory/attention/icl_gd.py), is $\hat y = \frac1N y^\top X \Gamma x_q$ with
$\Gamma = -N(a_y B_{xx} + a_x b_y^\top)$, where $a = (a_x, a_y)$ is the y-row of $P W_V$ and
$B = W_K^\top W_Q$ (`effective_preconditioner`); the construction has $\Gamma = \eta I$, and
$\operatorname{tr}\Gamma / d$ is the layer's effective step size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Params = dict  # {"w_q", "w_k", "w_v", "p"}: each [L, d+1, d+1], one slice per layer


def init(key: jax.Array, d: int, num_layers: int = 1, scale: float = 0.01) -> Params:
  """Small iid Gaussian weights (the official code uses std sqrt(0.002 / (d + 1)))."""
  keys = jax.random.split(key, 4)
  shape = (num_layers, d + 1, d + 1)
  return {name: scale * jax.random.normal(k, shape)
          for name, k in zip(("w_q", "w_k", "w_v", "p"), keys)}


def gd_construction(d: int, n: int, step_size, num_layers: int = 1, w0_D=None) -> Params:
  """Proposition 1's weights, the same in every layer: K layers are K GD steps of size `step_size`."""
  e = d + 1
  proj = jnp.zeros((e, e)).at[:d, :d].set(jnp.eye(d))
  w0_D = jnp.zeros((d,)) if w0_D is None else w0_D
  w_v = jnp.zeros((e, e)).at[d, :d].set(w0_D).at[d, d].set(-1.0)
  p = step_size / n * jnp.eye(e)
  layer = {"w_q": proj, "w_k": proj, "w_v": w_v, "p": p}
  return jax.tree.map(lambda a: jnp.broadcast_to(a, (num_layers, e, e)), layer)


def make_tokens(x_NxD: jax.Array, y_N: jax.Array, xq_D: jax.Array, w0_D=None) -> jax.Array:
  """[N+1, d+1]: context tokens (x_i, y_i), then the query (x_q, -W_0 x_q)."""
  yq = jnp.zeros(()) if w0_D is None else -(w0_D @ xq_D)
  ctx = jnp.concatenate([x_NxD, y_N[:, None]], axis=1)
  query = jnp.concatenate([xq_D, yq[None]])
  return jnp.concatenate([ctx, query[None, :]], axis=0)


def lsa_layer(layer: Params, e_TxE: jax.Array) -> jax.Array:
  """One LSA layer (von Oswald eq. 5) on tokens whose last row is the query (excluded as key/value).

  Row form of $e_j \\leftarrow e_j + P W_V C W_K^\\top W_Q e_j$ with $C = \\sum_{i \\le N} e_i e_i^\\top$:
  $e_j^\\top \\leftarrow e_j^\\top + e_j^\\top W_Q^\\top W_K C W_V^\\top P^\\top$ ($C$ is symmetric).
  """
  ctx_NxE = e_TxE[:-1]
  c_ExE = ctx_NxE.T @ ctx_NxE
  return e_TxE + e_TxE @ layer["w_q"].T @ layer["w_k"] @ c_ExE @ layer["w_v"].T @ layer["p"].T


def lsa_apply(params: Params, e_TxE: jax.Array) -> jax.Array:
  """Stacked LSA layers (the leading axis of every weight), scanned."""
  e_TxE, _ = jax.lax.scan(lambda e, layer: (lsa_layer(layer, e), None), e_TxE, params)
  return e_TxE


def lsa_predict(params: Params, x_NxD: jax.Array, y_N: jax.Array, xq_D: jax.Array,
                w0_D=None) -> jax.Array:
  """$\\hat y = -$(y-slot of the query token after all layers)."""
  return -lsa_apply(params, make_tokens(x_NxD, y_N, xq_D, w0_D))[-1, -1]


def in_context_loss(w_D: jax.Array, x_NxD: jax.Array, y_N: jax.Array) -> jax.Array:
  """$L(W) = \\frac{1}{2N}\\sum_i (W x_i - y_i)^2$, the mean-normalised in-context loss."""
  return 0.5 * jnp.mean((x_NxD @ w_D - y_N) ** 2)


def gd_predict(x_NxD: jax.Array, y_N: jax.Array, xq_D: jax.Array, step_size, num_steps: int,
               w0_D=None) -> jax.Array:
  """Plain gradient descent on `in_context_loss` (gradients by autodiff), then $\\hat y = W_K x_q$."""
  w_D = jnp.zeros_like(xq_D) if w0_D is None else w0_D
  grad = jax.grad(in_context_loss)
  w_D = jax.lax.fori_loop(0, num_steps, lambda _, w: w - step_size * grad(w, x_NxD, y_N), w_D)
  return xq_D @ w_D


def sample_tasks(key: jax.Array, batch_size: int, n: int, d: int) -> dict[str, jax.Array]:
  """Fresh regression tasks: $w \\sim N(0, I_d)$, $x_i, x_q \\sim N(0, I_d)$, $y = w^\\top x$, no noise."""
  kw, kx, kq = jax.random.split(key, 3)
  w_BxD = jax.random.normal(kw, (batch_size, d))
  x_BxNxD = jax.random.normal(kx, (batch_size, n, d))
  xq_BxD = jax.random.normal(kq, (batch_size, d))
  return {"x": x_BxNxD, "y": jnp.einsum("bnd,bd->bn", x_BxNxD, w_BxD), "xq": xq_BxD,
          "yq": jnp.sum(xq_BxD * w_BxD, axis=1)}


def batch_predict(params: Params, batch: dict[str, jax.Array]) -> jax.Array:
  return jax.vmap(lsa_predict, in_axes=(None, 0, 0, 0))(params, batch["x"], batch["y"], batch["xq"])


def lsa_loss(params: Params, batch: dict[str, jax.Array], key: jax.Array):
  """The engine's loss: $\\frac12$ mean over tasks of $(\\hat y_q - y_q)^2$ (von Oswald's training loss)."""
  del key
  return 0.5 * jnp.mean((batch_predict(params, batch) - batch["yq"]) ** 2), {}


def effective_preconditioner(params: Params, n: int, layer: int = 0) -> jax.Array:
  """$\\Gamma = -N(a_y B_{xx} + a_x b_y^\\top)$ [d, d]: the layer's $y$-odd part is $\\frac1N y^\\top X \\Gamma x_q$."""
  w = jax.tree.map(lambda a: a[layer], params)
  a_E = (w["p"] @ w["w_v"])[-1]
  b_ExD = (w["w_k"].T @ w["w_q"])[:, :-1]
  return -n * (a_E[-1] * b_ExD[:-1] + jnp.outer(a_E[:-1], b_ExD[-1]))


def effective_step_size(params: Params, n: int, layer: int = 0) -> jax.Array:
  """$\\operatorname{tr}\\Gamma / d$; equals $\\eta$ for `gd_construction`."""
  gamma_DxD = effective_preconditioner(params, n, layer)
  return jnp.trace(gamma_DxD) / gamma_DxD.shape[0]


def off_diagonal_ratio(params: Params, n: int, layer: int = 0) -> jax.Array:
  """max |off-diagonal of Gamma| / mean diagonal: 0 for a scalar (GD-like) preconditioner."""
  gamma_DxD = effective_preconditioner(params, n, layer)
  off = gamma_DxD - jnp.diag(jnp.diag(gamma_DxD))
  return jnp.max(jnp.abs(off)) / jnp.abs(jnp.mean(jnp.diag(gamma_DxD)))
