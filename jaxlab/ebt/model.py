r"""Autoregressive energy-based transformer (EBT) and its equal-size standard transformer baseline.

Gladstone et al. 2025 ("Energy-Based Transformers are Scalable Learners and Thinkers", arXiv
2507.02092, sec. 3 and app. C; the predecessor EBWM, arXiv 2406.08862, sec. 3), as built in the
authors' `model/ar_ebt_default.py` (read, not copied):

- Two streams over one transformer with shared weights. Observed: $z^o_i = \mathrm{Emb}(x_i)$ at
  position i. Predicted: $z^p_i = W_{v2e}\,\mathrm{softmax}(\hat y_i)$ at position i + 1, the
  candidate for token i + 1.
- Attention: $o_i$ attends causally to $o_{\le i}$; $p_i$ attends to $o_{\le i}$ and to itself only,
  never to other predictions, so the energy of position i depends on $\hat y_j$ only for j = i.
- Llama-style blocks: pre-RMSNorm, bias-free projections, SwiGLU MLP (hidden width `mlp_hidden`,
  D in the paper's small models); a final RMSNorm and a scalar energy head per predicted position,
  $E_i = w^\top \mathrm{RMSNorm}(h^p_i)$.

Landscapes (the authors' `ebt_type=time_embed`, `model/ar_ebt_time_embed.py`): with
`num_landscapes = L > 0` a learned token is prepended to the sequence, one of L, that every position
attends to; step k of the descent uses landscape min(k, L - 1), so each trained step gets its own
energy landscape (the S1 recipe: 2 steps, 2 landscapes). L = 0: one landscape, no extra token.

The baseline (`baseline_apply`) is the same stack over the observed stream alone with a vocabulary
head: the "Transformer++" of the paper at equal width, depth and heads. Positions are learned
(max_len + 1 of them: predictions sit one step ahead).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class EBTConfig:
  """Static shape knobs, shared by the EBT and its baseline."""
  vocab_size: int
  d_model: int = 128
  num_heads: int = 4
  num_layers: int = 2
  max_len: int = 32
  mlp_hidden: int | None = None  # None: d_model, as in the paper's SwiGLU
  init_scale: float = 0.02
  num_landscapes: int = 0  # L learned landscape tokens (0: none, one shared landscape)
  # jax.checkpoint per block, saving only matmul outputs (dots_saveable): the backward pass
  # recomputes the cheap elementwise ops next to where it needs them. Same numbers and FLOPs. It
  # made the S1 step 4x faster at 8 layers on XLA:CPU while its second order was reverse over
  # reverse; since that is forward over reverse (`core.energy_and_grad`) it changes S1's speed by
  # under 10% either way (benchmarks/README.md, scaling).
  remat: bool = False

  def __post_init__(self):
    for f in ("vocab_size", "d_model", "num_heads", "num_layers", "max_len"):
      v = getattr(self, f)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f"EBTConfig.{f}={v!r}: must be a positive integer")
    if not isinstance(self.num_landscapes, int) or self.num_landscapes < 0:
      raise ValueError(f"EBTConfig.num_landscapes={self.num_landscapes!r}: must be an integer >= 0")
    if self.d_model % self.num_heads:
      raise ValueError(f"EBTConfig.num_heads={self.num_heads}: must divide d_model="
                       f"{self.d_model}")

  @property
  def hidden(self) -> int:
    return self.mlp_hidden or self.d_model


def _normal(key, shape, scale):
  return scale * jax.random.normal(key, shape)


def _init_blocks(key, cfg: EBTConfig) -> list[Params]:
  d, h = cfg.d_model, cfg.hidden
  blocks = []
  for k in jax.random.split(key, cfg.num_layers):
    ks = jax.random.split(k, 7)
    blocks.append({
        "attn_norm": jnp.ones(d), "mlp_norm": jnp.ones(d),
        "query": _normal(ks[0], (d, d), 1 / math.sqrt(d)),
        "key": _normal(ks[1], (d, d), 1 / math.sqrt(d)),
        "value": _normal(ks[2], (d, d), 1 / math.sqrt(d)),
        "out": _normal(ks[3], (d, d), 1 / math.sqrt(d) / math.sqrt(2 * cfg.num_layers)),
        "gate": _normal(ks[4], (d, h), 1 / math.sqrt(d)),
        "up": _normal(ks[5], (d, h), 1 / math.sqrt(d)),
        "down": _normal(ks[6], (h, d), 1 / math.sqrt(h) / math.sqrt(2 * cfg.num_layers)),
    })
  return blocks


def init(key: jax.Array, cfg: EBTConfig) -> Params:
  """EBT parameters: token embedding, vocab->embedding map of the predicted stream, positions,
  blocks, final norm, the scalar energy head and, when L > 0, the landscape tokens [L, D]."""
  k_emb, k_v2e, k_pos, k_blocks, k_head = jax.random.split(key, 5)
  params = {"embed": _normal(k_emb, (cfg.vocab_size, cfg.d_model), 1.0),
            "vocab_to_embed": _normal(k_v2e, (cfg.vocab_size, cfg.d_model), 1.0),
            "position": _normal(k_pos, (cfg.max_len + 1, cfg.d_model), cfg.init_scale),
            "blocks": _init_blocks(k_blocks, cfg), "final_norm": jnp.ones(cfg.d_model),
            "energy_head": _normal(k_head, (cfg.d_model,), 1 / math.sqrt(cfg.d_model))}
  if cfg.num_landscapes:
    params["landscape"] = _normal(jax.random.fold_in(key, 5), (cfg.num_landscapes, cfg.d_model),
                                  1.0)
  return params


def baseline_init(key: jax.Array, cfg: EBTConfig) -> Params:
  """The equal-size standard transformer: the same blocks and a D -> V head."""
  k_emb, k_pos, k_blocks, k_head = jax.random.split(key, 4)
  return {"embed": _normal(k_emb, (cfg.vocab_size, cfg.d_model), 1.0),
          "position": _normal(k_pos, (cfg.max_len + 1, cfg.d_model), cfg.init_scale),
          "blocks": _init_blocks(k_blocks, cfg), "final_norm": jnp.ones(cfg.d_model),
          "unembed": _normal(k_head, (cfg.d_model, cfg.vocab_size), 1 / math.sqrt(cfg.d_model))}


def _rms_norm(x, scale):
  return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-6) * scale.reshape(
      (1,) * (x.ndim - 1) + (-1,))


def _block(p, x_BxTxD, mask_TxT, num_heads):
  b, t, d = x_BxTxD.shape
  dh = d // num_heads
  split = lambda z: z.reshape(b, t, num_heads, dh)
  h = _rms_norm(x_BxTxD, p["attn_norm"])
  q, k, v = split(h @ p["query"]), split(h @ p["key"]), split(h @ p["value"])
  scores = jnp.einsum("bihk,bjhk->bhij", q, k) / math.sqrt(dh)
  weights = jax.nn.softmax(jnp.where(mask_TxT, scores, -jnp.inf), axis=-1)
  x_BxTxD = x_BxTxD + jnp.einsum("bhij,bjhk->bihk", weights, v).reshape(b, t, d) @ p["out"]
  h = _rms_norm(x_BxTxD, p["mlp_norm"])
  return x_BxTxD + (jax.nn.silu(h @ p["gate"]) * (h @ p["up"])) @ p["down"]


_remat_block = jax.checkpoint(_block, static_argnums=(3,),
                              policy=jax.checkpoint_policies.dots_saveable)


def _blocks(blocks, x_BxTxD, mask_TxT, num_heads, remat: bool = False):
  block = _remat_block if remat else _block
  for p in blocks:
    x_BxTxD = block(p, x_BxTxD, mask_TxT, num_heads)
  return x_BxTxD


def ebt_mask(seq_len: int, landscape_token: bool = False) -> np.ndarray:
  """[2S, 2S] bool over [observed; predicted]: o_i -> o_{<=i}; p_i -> o_{<=i} and p_i. With a
  landscape token: [1 + 2S, 1 + 2S] over [landscape; observed; predicted], everyone attends to it."""
  causal = np.tril(np.ones((seq_len, seq_len), bool))
  top = np.concatenate([causal, np.zeros_like(causal)], axis=1)
  bottom = np.concatenate([causal, np.eye(seq_len, dtype=bool)], axis=1)
  mask = np.concatenate([top, bottom], axis=0)
  if landscape_token:
    mask = np.pad(mask, ((1, 0), (1, 0)))
    mask[:, 0] = True
  return mask


def _check_tokens(tokens, cfg):
  if tokens.ndim != 2 or not jnp.issubdtype(tokens.dtype, jnp.integer):
    raise ValueError(f"tokens must be integer [batch, length], got {tokens.shape} {tokens.dtype}")
  if tokens.shape[1] > cfg.max_len:
    raise ValueError(f"sequence length {tokens.shape[1]} exceeds EBTConfig.max_len={cfg.max_len}")


def energy(params: Params, tokens_BxS: jax.Array, probs_BxSxV: jax.Array,
           cfg: EBTConfig, landscape: int | jax.Array = 0) -> jax.Array:
  """E [B, S]: the energy of candidate distribution probs[:, i] for token i + 1 given
  tokens[:, :i+1], on landscape `landscape` (in [0, L); ignored when L = 0; may be traced)."""
  _check_tokens(tokens_BxS, cfg)
  s = tokens_BxS.shape[1]
  if probs_BxSxV.shape != tokens_BxS.shape + (cfg.vocab_size,):
    raise ValueError(f"candidates must be [batch, length, {cfg.vocab_size}] = "
                     f"{tokens_BxS.shape + (cfg.vocab_size,)}, got {probs_BxSxV.shape}")
  observed = params["embed"][tokens_BxS] + params["position"][None, :s]
  predicted = probs_BxSxV @ params["vocab_to_embed"] + params["position"][None, 1:s + 1]
  streams = [observed, predicted]
  if cfg.num_landscapes:
    token = params["landscape"][jnp.clip(landscape, 0, cfg.num_landscapes - 1)]
    streams.insert(0, jnp.broadcast_to(token.astype(observed.dtype), (observed.shape[0], 1,
                                                                      cfg.d_model)))
  h = _blocks(params["blocks"], jnp.concatenate(streams, axis=1),
              jnp.asarray(ebt_mask(s, bool(cfg.num_landscapes))), cfg.num_heads, cfg.remat)
  return _rms_norm(h[:, -s:], params["final_norm"]) @ params["energy_head"]


def baseline_apply(params: Params, tokens_BxS: jax.Array, cfg: EBTConfig) -> jax.Array:
  """Next-token logits [B, S, V] of the standard transformer."""
  _check_tokens(tokens_BxS, cfg)
  s = tokens_BxS.shape[1]
  x = params["embed"][tokens_BxS] + params["position"][None, :s]
  h = _blocks(params["blocks"], x, jnp.asarray(np.tril(np.ones((s, s), bool))), cfg.num_heads,
              cfg.remat)
  return _rms_norm(h, params["final_norm"]) @ params["unembed"]


def forward_flops(cfg: EBTConfig, seq_len: int, ebt: bool = True) -> int:
  """Matmul FLOPs of one forward pass (2 per multiply-add): the EBT runs its blocks over 2S
  tokens (+1 landscape token) and projects candidates (V x D), the baseline over S tokens and
  unembeds (D x V)."""
  d, h, s, v = cfg.d_model, cfg.hidden, seq_len, cfg.vocab_size
  t = 2 * s + (1 if cfg.num_landscapes else 0) if ebt else s
  per_layer = 2 * t * (4 * d * d + 3 * d * h) + 2 * 2 * t * t * d
  head = 2 * s * v * d
  return cfg.num_layers * per_layer + head
