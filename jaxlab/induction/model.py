r"""Attention networks for induction-head studies, returning every intermediate activation, with
"optogenetic" interventions on any of them.

Two models, plain functions over dict pytrees:

1. `reddy_init` / `reddy_apply`: Reddy 2024 (ICLR, arXiv 2312.03002, sec. 2, "Network
   architecture") as built by the author's `transformer_v2` (read in the redistributed copy, not
   copied): `num_layers` single-head causal attention layers with residuals and no normalisation,
   $x \leftarrow x + \mathrm{softmax}(M + (Q x)(K x)^\top) (V x)$ (no $1/\sqrt{d}$; M the causal
   mask), then a ReLU MLP classifier (He init, no residual) on the query token and a readout to L
   label logits. Q, K, V start at N(0, 1/D) entries; the readout at N(0, 1/d_in).
2. `transformer_init` / `transformer_apply`: a standard pre-LayerNorm causal transformer (Singh et
   al. 2024, ICML, sec. 2: attention-only, 8 heads, d_model 64, RoPE; Olsson et al. 2022's
   attention-only toys) with token or vector inputs, RoPE (Su et al. 2021, eq. 34), learned or no
   positions, optional MLP blocks, and per-position output logits.

Both return `(logits, acts)`, `acts` a flat dict of named activations (a pytree):
`"layer{l}/scores"` [b, H, T, T] pre-softmax, `"layer{l}/pattern"` [b, H, T, T],
`"layer{l}/values"` [b, H, T, d_head], `"layer{l}/head_out"` [b, H, T, d_model] (each head's
write to the residual stream, so heads are additive; the stream itself gets one contraction over
heads, so under jit the per-head tensor costs nothing unless read), `"resid{l}"` the stream
entering layer l, and model-specific ones (`"mlp_out"`, `"final"`, ...).

Interventions (Singh et al. 2024, sec. 3, "artificial optogenetics"; their `cache_mask` /
`assign_fn` design): `interventions` maps an activation name to an `Intervention(mask, value)`
(the activation becomes `where(mask, value, activation)`, both broadcast to its shape: clamping,
replacement, ablation) or to a function of the activation. They are applied inside the forward
pass, so downstream activations see the change, and a loss built on them applies them on every
training step without touching the model code. `pattern_preserving` builds Olsson-style
ablations that keep every attention pattern at its recorded value.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np

Params = dict[str, Any]
Acts = dict[str, jax.Array]


class Intervention(NamedTuple):
  """activation <- where(mask, value, activation); mask and value broadcast to its shape."""
  mask: Any
  value: Any


InterventionLike = Union[Intervention, Callable[[jax.Array], jax.Array]]
Interventions = Mapping[str, InterventionLike]


def clamp(value) -> Intervention:
  """Replace the whole activation by `value` (broadcast to its shape)."""
  return Intervention(True, value)


def ablate(mask=True) -> Intervention:
  """Zero the activation where `mask` (e.g. one head: a [H, 1, 1] mask on a pattern)."""
  return Intervention(mask, 0.0)


def pattern_preserving(clean_acts: Acts, ablations: Interventions) -> dict[str, InterventionLike]:
  """`ablations` plus a clamp of every attention pattern to its value in `clean_acts`, so that
  only the ablated paths change (Olsson et al. 2022, "pattern-preserving ablation")."""
  out: dict[str, InterventionLike] = {name: clamp(jax.lax.stop_gradient(value))
                                      for name, value in clean_acts.items()
                                      if name.endswith("/pattern")}
  out.update(ablations)
  return out


def _tap(acts: Acts, name: str, x: jax.Array, interventions: Interventions | None) -> jax.Array:
  """Applies the intervention on `name` (if any), records the result and returns it."""
  if interventions and name in interventions:
    iv = interventions[name]
    if isinstance(iv, Intervention):
      mask = jnp.broadcast_to(jnp.asarray(iv.mask, bool), x.shape)
      x = jnp.where(mask, jnp.broadcast_to(jnp.asarray(iv.value, x.dtype), x.shape), x)
    elif callable(iv):
      y = iv(x)
      if y.shape != x.shape:
        raise ValueError(f"intervention on {name!r} returned shape {y.shape}, expected {x.shape}")
      x = y
    else:
      raise TypeError(f"intervention on {name!r} must be an Intervention or a callable, "
                      f"got {type(iv).__name__}")
  acts[name] = x
  return x


def check_interventions(interventions: Interventions | None, acts: Acts) -> None:
  """Raises ValueError naming any intervention whose activation does not exist."""
  unknown = sorted(set(interventions or {}) - set(acts))
  if unknown:
    raise ValueError(f"unknown activation name(s) {unknown}; the model has {sorted(acts)}")


def causal_mask(t: int) -> np.ndarray:
  return np.tril(np.ones((t, t), bool))


def _attention(acts, prefix, q_BxHxTxK, k_BxHxTxK, v_BxHxTxV, w_out_HxVxD, scale, interventions):
  """The heads' summed write to the residual stream; `w_out_HxVxD` None: the values themselves."""
  t = q_BxHxTxK.shape[2]
  scores = _tap(acts, f"{prefix}/scores",
                scale * jnp.einsum("bhik,bhjk->bhij", q_BxHxTxK, k_BxHxTxK), interventions)
  masked = jnp.where(causal_mask(t), scores, -jnp.inf)
  pattern = _tap(acts, f"{prefix}/pattern", jax.nn.softmax(masked, axis=-1), interventions)
  values = _tap(acts, f"{prefix}/values", v_BxHxTxV, interventions)
  mixed = jnp.einsum("bhij,bhjv->bhiv", pattern, values)
  name = f"{prefix}/head_out"
  if w_out_HxVxD is None:
    return _tap(acts, name, mixed, interventions).sum(axis=1)
  if interventions and name in interventions:
    return _tap(acts, name, jnp.einsum("bhiv,hvd->bhid", mixed, w_out_HxVxD),
                interventions).sum(axis=1)
  # Recorded per head, but the stream gets one contraction over heads and values: writing
  # [b, H, T, D] and summing it made the whole training step 1.6x slower (benchmarks.scaling).
  # Under jit the per-head tensor is only computed when a caller reads it.
  acts[name] = jnp.einsum("bhiv,hvd->bhid", mixed, w_out_HxVxD)
  return jnp.einsum("bhiv,hvd->bid", mixed, w_out_HxVxD)


# ------------------------------------------------------------------------------ Reddy network

@dataclasses.dataclass(frozen=True)
class ReddyNetConfig:
  """Static shape knobs of Reddy's minimal network (defaults: 2 attention layers, a 3-layer MLP)."""
  input_dim: int
  num_labels: int
  num_layers: int = 2
  mlp_depth: int = 3
  key_dim: int | None = None  # None: input_dim, as in Reddy

  def __post_init__(self):
    for f in ("input_dim", "num_labels", "num_layers", "mlp_depth"):
      v = getattr(self, f)
      if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (0 if f in (
          "num_layers", "mlp_depth") else 1):
        raise ValueError(f"ReddyNetConfig.{f}={v!r}: must be a "
                         f"{'non-negative' if f in ('num_layers', 'mlp_depth') else 'positive'} "
                         "integer")
    if self.key_dim is not None and self.key_dim < 1:
      raise ValueError(f"ReddyNetConfig.key_dim={self.key_dim!r}: must be positive or None")


def reddy_init(key: jax.Array, cfg: ReddyNetConfig) -> Params:
  d, k = cfg.input_dim, cfg.key_dim or cfg.input_dim
  keys = iter(jax.random.split(key, 3 * cfg.num_layers + cfg.mlp_depth + 1))
  scale = 1.0 / math.sqrt(d)
  params: Params = {"attention": [
      {"query": scale * jax.random.normal(next(keys), (k, d)),
       "key": scale * jax.random.normal(next(keys), (k, d)),
       "value": scale * jax.random.normal(next(keys), (d, d))} for _ in range(cfg.num_layers)]}
  params["mlp"] = [{"w": math.sqrt(2.0 / d) * jax.random.normal(next(keys), (d, d)),
                    "b": jnp.zeros(())} for _ in range(cfg.mlp_depth)]
  params["readout"] = scale * jax.random.normal(next(keys), (cfg.num_labels, d))
  return params


def reddy_apply(params: Params, inputs_BxTxD: jax.Array,
                interventions: Interventions | None = None) -> tuple[jax.Array, Acts]:
  """Label logits [b, L] at the last (query) token, and the activations.

  acts: `resid{l}` [b, T, D], `layer{l}/{scores,pattern,values,head_out}` (one head),
  `mlp{i}` [b, D] (post-ReLU hidden of the query token), `logits`."""
  if inputs_BxTxD.ndim != 3 or (params["attention"] and
                                inputs_BxTxD.shape[-1] != params["attention"][0]["query"].shape[1]):
    raise ValueError(f"inputs must be [batch, tokens, {params['readout'].shape[1]}], "
                     f"got {inputs_BxTxD.shape}")
  acts: Acts = {}
  x = inputs_BxTxD
  for l, layer in enumerate(params["attention"]):
    x = _tap(acts, f"resid{l}", x, interventions)
    q = jnp.einsum("btd,kd->btk", x, layer["query"])[:, None]
    k = jnp.einsum("btd,kd->btk", x, layer["key"])[:, None]
    v = jnp.einsum("btd,ed->bte", x, layer["value"])[:, None]
    x = x + _attention(acts, f"layer{l}", q, k, v, None, 1.0, interventions)
  h = _tap(acts, f"resid{len(params['attention'])}", x, interventions)[:, -1]
  for i, layer in enumerate(params["mlp"]):
    h = _tap(acts, f"mlp{i}", jax.nn.relu(h @ layer["w"].T + layer["b"]), interventions)
  logits = _tap(acts, "logits", h @ params["readout"].T, interventions)
  check_interventions(interventions, acts)
  return logits, acts


def reddy_loss(params: Params, batch, key: jax.Array | None = None,
               interventions: Interventions | None = None) -> tuple[jax.Array, dict]:
  """Mean cross-entropy of the query's label (`batch`: a `data.Batch`); the key is unused (the
  network is deterministic) and kept for the engine's `loss(params, batch, key)` contract."""
  del key
  logits, _ = reddy_apply(params, batch.inputs, interventions)
  logp = jax.nn.log_softmax(logits)
  nll = -jnp.take_along_axis(logp, batch.target[:, None], axis=1)[:, 0]
  return jnp.mean(nll), {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch.target)}


# ------------------------------------------------------------------------ small transformer

@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """Static knobs of a pre-LN causal transformer. Give `vocab_size` for integer tokens or
  `input_dim` for vector tokens (a linear embedding)."""
  num_outputs: int
  num_layers: int = 2
  num_heads: int = 8
  d_model: int = 64
  vocab_size: int | None = None
  input_dim: int | None = None
  positions: str = "rope"  # "rope" | "learned" | "none"
  max_len: int = 64  # for learned positions
  layer_norm: bool = True
  mlp_ratio: int | None = None  # None: attention-only
  rope_base: float = 10000.0
  init_scale: float = 0.02

  def __post_init__(self):
    def need(ok, field, msg):
      if not ok:
        raise ValueError(f"TransformerConfig.{field}={getattr(self, field)!r}: {msg}")
    for f in ("num_outputs", "num_heads", "d_model", "max_len"):
      need(isinstance(getattr(self, f), int) and getattr(self, f) >= 1, f, "must be >= 1")
    need(isinstance(self.num_layers, int) and self.num_layers >= 0, "num_layers", "must be >= 0")
    need((self.vocab_size is None) != (self.input_dim is None), "vocab_size",
         f"give exactly one of vocab_size and input_dim (input_dim={self.input_dim!r})")
    need(self.d_model % self.num_heads == 0, "num_heads",
         f"must divide d_model={self.d_model}")
    need(self.positions in ("rope", "learned", "none"), "positions",
         "must be 'rope', 'learned' or 'none'")
    need(self.positions != "rope" or (self.d_model // self.num_heads) % 2 == 0, "positions",
         f"RoPE needs an even head dimension, got {self.d_model // self.num_heads}")
    need(self.mlp_ratio is None or self.mlp_ratio >= 1, "mlp_ratio", "must be None or >= 1")

  @property
  def head_dim(self) -> int:
    return self.d_model // self.num_heads


def transformer_init(key: jax.Array, cfg: TransformerConfig) -> Params:
  d, h, dh = cfg.d_model, cfg.num_heads, cfg.head_dim
  keys = iter(jax.random.split(key, 8 + 6 * cfg.num_layers))
  normal = lambda shape, s=cfg.init_scale: s * jax.random.normal(next(keys), shape)
  n_in = cfg.vocab_size if cfg.vocab_size is not None else cfg.input_dim
  params: Params = {"embed": normal((n_in, d), 1.0 if cfg.vocab_size is not None
                                    else 1.0 / math.sqrt(n_in)),
                    "unembed": normal((d, cfg.num_outputs)),
                    "final_norm": {"scale": jnp.ones(d), "bias": jnp.zeros(d)}}
  if cfg.positions == "learned":
    params["position"] = normal((cfg.max_len, d))
  layers = []
  for _ in range(cfg.num_layers):
    layer = {"query": normal((h, d, dh)), "key": normal((h, d, dh)), "value": normal((h, d, dh)),
             "out": normal((h, dh, d)),
             "norm": {"scale": jnp.ones(d), "bias": jnp.zeros(d)}}
    if cfg.mlp_ratio:
      layer["mlp"] = {"w_in": normal((d, cfg.mlp_ratio * d)), "b_in": jnp.zeros(cfg.mlp_ratio * d),
                      "w_out": normal((cfg.mlp_ratio * d, d)), "b_out": jnp.zeros(d),
                      "norm": {"scale": jnp.ones(d), "bias": jnp.zeros(d)}}
    layers.append(layer)
  params["layers"] = layers
  return params


def _layer_norm(p, x, enabled: bool):
  if not enabled:
    return x
  mean = x.mean(-1, keepdims=True)
  var = jnp.mean((x - mean) ** 2, -1, keepdims=True)
  lead = (1,) * (x.ndim - 1)
  return ((x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"].reshape(lead + (-1,))
          + p["bias"].reshape(lead + (-1,)))


def rope(x_BxHxTxK: jax.Array, base: float = 10000.0) -> jax.Array:
  """Rotary position embedding (Su et al. 2021, eq. 34): pairs (x_{2i}, x_{2i+1}) at position t
  rotate by t * base^(-2i/K), so q_s . k_t depends on positions only through s - t."""
  t, k = x_BxHxTxK.shape[-2], x_BxHxTxK.shape[-1]
  freq = base ** (-np.arange(0, k, 2) / k)
  angle = np.arange(t)[:, None] * freq[None, :]  # [T, K/2]
  lead = (1,) * (x_BxHxTxK.ndim - 2)
  cos = jnp.asarray(np.cos(angle).reshape(lead + angle.shape), x_BxHxTxK.dtype)
  sin = jnp.asarray(np.sin(angle).reshape(lead + angle.shape), x_BxHxTxK.dtype)
  x1, x2 = x_BxHxTxK[..., 0::2], x_BxHxTxK[..., 1::2]
  out = jnp.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)
  return out.reshape(x_BxHxTxK.shape)


def transformer_apply(params: Params, inputs: jax.Array, cfg: TransformerConfig,
                      interventions: Interventions | None = None) -> tuple[jax.Array, Acts]:
  """Logits [b, T, num_outputs] at every position, and the activations.

  inputs: int tokens [b, T] (vocab_size) or vectors [b, T, input_dim]. acts: `embed`
  [b, T, D] (tokens plus learned positions), `resid{l}`, `layer{l}/{scores,pattern,values,
  head_out}`, `layer{l}/mlp_out`, `final` (the normalised last stream), `logits`."""
  if cfg.vocab_size is not None:
    if inputs.ndim != 2 or not jnp.issubdtype(inputs.dtype, jnp.integer):
      raise ValueError(f"inputs must be integer tokens [batch, tokens], got {inputs.shape} "
                       f"{inputs.dtype}")
    x = params["embed"][inputs]
  else:
    if inputs.ndim != 3 or inputs.shape[-1] != cfg.input_dim:
      raise ValueError(f"inputs must be [batch, tokens, {cfg.input_dim}], got {inputs.shape}")
    x = inputs @ params["embed"]
  t = x.shape[1]
  if cfg.positions == "learned":
    if t > cfg.max_len:
      raise ValueError(f"sequence length {t} exceeds TransformerConfig.max_len={cfg.max_len}")
    x = x + params["position"][None, :t]
  acts: Acts = {}
  x = _tap(acts, "embed", x, interventions)
  scale = 1.0 / math.sqrt(cfg.head_dim)
  for l, layer in enumerate(params["layers"]):
    x = _tap(acts, f"resid{l}", x, interventions)
    xn = _layer_norm(layer["norm"], x, cfg.layer_norm)
    q = jnp.einsum("btd,hdk->bhtk", xn, layer["query"])
    k = jnp.einsum("btd,hdk->bhtk", xn, layer["key"])
    v = jnp.einsum("btd,hdk->bhtk", xn, layer["value"])
    if cfg.positions == "rope":
      q, k = rope(q, cfg.rope_base), rope(k, cfg.rope_base)
    x = x + _attention(acts, f"layer{l}", q, k, v, layer["out"], scale, interventions)
    if cfg.mlp_ratio:
      m = layer["mlp"]
      hidden = jax.nn.gelu(_layer_norm(m["norm"], x, cfg.layer_norm) @ m["w_in"]
                           + m["b_in"][None, None])
      x = x + _tap(acts, f"layer{l}/mlp_out", hidden @ m["w_out"] + m["b_out"][None, None],
                   interventions)
  x = _tap(acts, f"resid{cfg.num_layers}", x, interventions)
  final = _tap(acts, "final", _layer_norm(params["final_norm"], x, cfg.layer_norm), interventions)
  logits = _tap(acts, "logits", final @ params["unembed"], interventions)
  check_interventions(interventions, acts)
  return logits, acts


def ov_logit_circuit(params: Params, cfg: TransformerConfig, layer: int, head: int) -> jax.Array:
  """[V, V] direct-path OV circuit of a token-input head: row s is the logit change when the head
  attends fully to token s (embed -> value -> out -> unembed; LayerNorms treated as identity,
  positions ignored; Elhage et al. 2021, "OV circuit" W_U W_O W_V W_E)."""
  if cfg.vocab_size is None:
    raise ValueError("ov_logit_circuit needs a token-input transformer (vocab_size)")
  p = params["layers"][layer]
  return params["embed"] @ p["value"][head] @ p["out"][head] @ params["unembed"]
