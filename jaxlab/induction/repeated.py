r"""Induction heads on repeated random tokens: a hand-built two-layer circuit, the next-token loss
on the repeats, and Olsson's per-head scores.

Olsson et al. 2022 ("In-context learning and induction heads", Transformer Circuits Thread; notes
in /work/shared/papers/induction_heads.md sec. 5): an induction head completes [A][B] ... [A] ->
[B]. It attends from the current token to the token that *followed* an earlier occurrence of it
(prefix matching) and copies that token into the logits (copying). Elhage et al. 2021 ("A
mathematical framework for transformer circuits") show that the circuit needs two layers: a
previous-token head in layer 0 writes token t_{j-1} into the residual stream at position j, and
the layer-1 head's key reads that write (K-composition), so its QK circuit compares t_i with
t_{j-1}; its OV circuit $W_U W_O W_V W_E$ has positive eigenvalues (a copier).

`induction_head_construction` builds that circuit by hand in an attention-only transformer of
`model.transformer_apply` (no LayerNorm, learned positions, one head per layer, head_dim =
d_model) with a residual stream of three orthogonal subspaces

    [ token one-hot (V) | position one-hot (max_len) | previous token one-hot (V) ].

With s the sharpness and $1/\sqrt{d}$ the model's score scale:

- layer 0, previous-token head: q_i = s sqrt(d) e_{pos i-1}, k_j = e_{pos j}, so the score is
  s [j = i - 1]; the value maps e_{tok} to e_{prev tok} and W_O = I, so position j receives
  the one-hot of t_{j-1}.
- layer 1, induction head: q_i = s sqrt(d) (e_{prev t_i} + e_c), k_j = prev_j - 2 e_c, with c a
  spare coordinate that only position 0 sets in the key: the score is s [t_{j-1} = t_i], less
  2 s at j = 0 (position 0 has no predecessor; its layer-0 head attends to itself and writes its
  own token, which would otherwise match). The value maps e_{tok} to 2 e_{tok} and W_O = I.
- unembedding: s times the token subspace, so at a repeat the copied token's logit is ~2 s, the
  current token's ~s and every other ~0: the loss is ~exp(-s). On first occurrences nothing
  matches, the layer-1 head spreads its attention and the circuit's guesses are wrong (it is
  built for the repeats only).

The rest: `periodic_tokens` draws training sequences whose period varies from sequence to
sequence (with one fixed period a single layer solves the task by attending a fixed distance
back: see experiments/induction_repeat); `next_token_loss` splits the loss into repeats and first
occurrences (`repeat_masks`); `induction_scores`, `copying_scores` and `evaluate_repeats` (losses
and scores from one forward pass) give Olsson's per-head scores; `chance_prefix_matching` is the
prefix-matching score of content-blind uniform attention.

Everything is pure and jittable with the configs and sizes static.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.induction import data as data_lib
from jaxlab.induction import metrics as metrics_lib
from jaxlab.induction import model as model_lib

Params = dict[str, Any]


def _check_int(name: str, value, minimum: int) -> None:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
    raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")


def induction_head_construction(vocab: int, max_len: int, sharpness: float = 20.0
                                ) -> tuple[model_lib.TransformerConfig, Params]:
  """The hand-built 2-layer induction circuit (module docstring) for tokens 0..vocab-1.

  Args:
    vocab: number of tokens V (>= 2).
    max_len: longest sequence T (>= 2); learned positions 0..T-1.
    sharpness: s > 0, the gap of the attention scores of both heads and of the copied logit;
      previous-token attention is e^s / (e^s + i) at query i (keys 0..i), so s >~ log(1000 T)
      gives scores >= 0.999.

  Returns:
    (cfg, params) for `model.transformer_apply`: d_model = 2 V + max_len, one head per layer.
  """
  _check_int("vocab", vocab, 2)
  _check_int("max_len", max_len, 2)
  if not (isinstance(sharpness, (int, float, np.floating)) and math.isfinite(sharpness)
          and sharpness > 0):
    raise ValueError(f"sharpness={sharpness!r}: must be a finite number > 0")
  v, t = int(vocab), int(max_len)
  d = 2 * v + t
  tok, pos, prev = np.arange(v), v + np.arange(t), v + t + np.arange(v)
  spare = pos[0]  # head coordinate of the position-0 penalty (free in the layer-1 QK space)
  cfg = model_lib.TransformerConfig(num_outputs=v, num_layers=2, num_heads=1, d_model=d,
                                    vocab_size=v, positions="learned", max_len=t,
                                    layer_norm=False)
  gain = sharpness * math.sqrt(d)  # undoes the model's 1/sqrt(head_dim) score scale

  embed = np.zeros((v, d))
  embed[tok, tok] = 1.0
  position = np.zeros((t, d))
  position[np.arange(t), pos] = 1.0

  q0, k0, v0 = np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d))
  q0[pos[1:], pos[:-1]] = gain  # query at i looks for position i - 1
  k0[pos, pos] = 1.0
  v0[tok, prev] = 1.0  # the attended token lands in the previous-token subspace

  q1, k1, v1 = np.zeros((d, d)), np.zeros((d, d)), np.zeros((d, d))
  q1[tok, prev] = gain  # current token t_i, compared with ...
  k1[prev, prev] = 1.0  # ... the previous token t_{j-1} written by layer 0 (K-composition)
  q1[tok, spare] = gain
  k1[pos[0], spare] = -2.0
  v1[tok, tok] = 2.0

  unembed = np.zeros((d, v))
  unembed[tok, tok] = sharpness

  def layer(q, k, val):
    return {"query": q[None], "key": k[None], "value": val[None], "out": np.eye(d)[None],
            "norm": {"scale": np.ones(d), "bias": np.zeros(d)}}

  params = {"embed": embed, "position": position, "unembed": unembed,
            "final_norm": {"scale": np.ones(d), "bias": np.zeros(d)},
            "layers": [layer(q0, k0, v0), layer(q1, k1, v1)]}
  return cfg, jax.tree.map(jnp.asarray, params)


def periodic_tokens(key: jax.Array, batch_size: int, vocab: int, seq_len: int, min_period: int,
                    max_period: int) -> jax.Array:
  """[b, seq_len] int32: per sequence a period H uniform in min_period..max_period and a segment
  of H distinct random tokens, repeated (truncated) to seq_len: tokens[i] = segment[i mod H].

  Unlike `data.repeated_tokens` (one period for the batch), the distance back to the previous
  occurrence changes from sequence to sequence, so attending a fixed number of positions back
  cannot predict the repeats; only matching content (an induction head) can."""
  _check_int("batch_size", batch_size, 1)
  _check_int("min_period", min_period, 1)
  _check_int("max_period", max_period, min_period)
  _check_int("seq_len", seq_len, max_period + 1)
  _check_int("vocab", vocab, max_period)
  k_seg, k_period = jax.random.split(key)
  segment = data_lib.repeated_tokens(k_seg, batch_size, vocab, max_period, repeats=1)
  period = jax.random.randint(k_period, (batch_size, 1), min_period, max_period + 1)
  return jnp.take_along_axis(segment, jnp.arange(seq_len)[None, :] % period, axis=1)


def repeat_masks(tokens_BxT: jax.Array) -> tuple[jax.Array, jax.Array]:
  """([b, T-1], [b, T-1]) bool over the predicting positions i = 0..T-2: `repeat` where t_i
  occurred earlier in the sequence (the next token then followed that earlier occurrence when
  the segment has distinct tokens: an induction head can predict it), `first` elsewhere."""
  t = tokens_BxT.shape[-1]
  same = tokens_BxT[..., :, None] == tokens_BxT[..., None, :]
  before = np.tri(t, k=-1, dtype=bool).reshape((1,) * (tokens_BxT.ndim - 1) + (t, t))  # j < i
  earlier = jnp.any(same & jnp.asarray(before), axis=-1)[..., :-1]
  return earlier, ~earlier


def next_token_loss(params: Params, tokens: jax.Array, cfg: model_lib.TransformerConfig,
                    interventions: model_lib.Interventions | None = None,
                    train_on: str = "repeats") -> tuple[jax.Array, dict[str, jax.Array]]:
  r"""Cross-entropy of next-token prediction on repeated random tokens.

  Position i predicts t_{i+1}. A position is a *repeat* when t_i occurred earlier
  (`repeat_masks`): there an induction head can predict; elsewhere (the first occurrence of
  every token) no model can beat guessing among the unseen tokens.

  Args:
    params, cfg: of `model.transformer_apply` (cfg static under jit).
    tokens: [b, T] int, e.g. `data.repeated_tokens` or `periodic_tokens`.
    interventions: passed to the model (ablations, clamps).
    train_on: the returned loss is the mean over "repeats" (default) or over "all" positions.

  Returns:
    (loss, aux) with aux: `repeat_loss`, `first_loss` (means over repeat / first-occurrence
    positions), `in_context_score` = repeat_loss - first_loss (Olsson's ICL score: late minus
    early loss, negative when the context helps), `repeat_accuracy` and `first_accuracy` (argmax).
  """
  _check_loss_args(tokens, train_on)
  logits, _ = model_lib.transformer_apply(params, tokens, cfg, interventions)
  return _losses(logits, tokens, train_on)


def induction_scores(params: Params, cfg: model_lib.TransformerConfig, tokens: jax.Array,
                     interventions: model_lib.Interventions | None = None,
                     copying: bool = True) -> dict[str, jax.Array]:
  """Olsson et al. 2022's head scores, each [num_layers, num_heads] (jittable, cfg static).

  - `prefix_matching`: attention mass on keys that followed an earlier occurrence of the query's
    token (`metrics.prefix_matching_score` on `tokens`, e.g. repeated random tokens).
  - `previous_token`: mean attention from i to i - 1 (on `tokens`; layer 0 is the one that
    matters for the circuit).
  - `copying`: sum(lambda) / sum(|lambda|) over the eigenvalues of the head's direct-path OV
    circuit W_U W_O W_V W_E (`model.ov_logit_circuit`), 0 for an all-zero circuit;
    `copying_fraction`: Olsson's positive-logit fraction of the same circuit, in [-1, 1].

  `interventions` act on the forward pass (so on the attention patterns), not on the OV circuits.
  `copying=False` leaves out the two copying scores: they depend on the weights only, so an
  evaluation inside a training loop can skip their eigenvalues and compute them once at the end.
  """
  _check_token_model(cfg)
  _, acts = model_lib.transformer_apply(params, tokens, cfg, interventions)
  return _scores(params, cfg, tokens, acts, copying)


def evaluate_repeats(params: Params, cfg: model_lib.TransformerConfig, tokens: jax.Array,
                     interventions: model_lib.Interventions | None = None,
                     copying: bool = True) -> dict[str, jax.Array]:
  """`next_token_loss`'s aux and `induction_scores` from one forward pass (what an evaluation
  during training wants: half the work and half the program of calling both; `copying=False`
  as in `induction_scores`)."""
  _check_token_model(cfg)
  _check_loss_args(tokens, "all")
  logits, acts = model_lib.transformer_apply(params, tokens, cfg, interventions)
  return {**_losses(logits, tokens, "all")[1], **_scores(params, cfg, tokens, acts, copying)}


def copying_scores(params: Params, cfg: model_lib.TransformerConfig) -> dict[str, jax.Array]:
  """The two copying scores of `induction_scores` alone, [num_layers, num_heads] each."""
  _check_token_model(cfg)
  heads = jnp.arange(cfg.num_heads)
  eig, frac = [], []
  for l in range(cfg.num_layers):
    ov_HxVxV = jax.vmap(lambda h: model_lib.ov_logit_circuit(params, cfg, l, h))(heads)
    eig.append(jax.vmap(_copying_eigenvalue)(ov_HxVxV))
    frac.append(jax.vmap(metrics_lib.copying_fraction)(ov_HxVxV))
  return {"copying": jnp.stack(eig), "copying_fraction": jnp.stack(frac)}


def _check_token_model(cfg) -> None:
  if cfg.vocab_size is None:
    raise ValueError("induction scores need a token-input transformer (cfg.vocab_size)")


def _check_loss_args(tokens, train_on) -> None:
  if train_on not in ("repeats", "all"):
    raise ValueError(f"train_on={train_on!r}: must be 'repeats' or 'all'")
  if tokens.ndim != 2 or tokens.shape[1] < 2:
    raise ValueError(f"tokens must be [batch, T >= 2], got shape {tokens.shape}")


def _losses(logits, tokens, train_on):
  logp = jax.nn.log_softmax(logits[:, :-1], axis=-1)
  target = tokens[:, 1:]
  nll = -jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0]  # [b, T-1]
  hit = (jnp.argmax(logits[:, :-1], axis=-1) == target).astype(nll.dtype)
  repeat, first = repeat_masks(tokens)
  mean_over = lambda x, m: jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1)
  aux = {"repeat_loss": mean_over(nll, repeat), "first_loss": mean_over(nll, first),
         "repeat_accuracy": mean_over(hit, repeat), "first_accuracy": mean_over(hit, first)}
  aux["in_context_score"] = aux["repeat_loss"] - aux["first_loss"]
  loss = aux["repeat_loss"] if train_on == "repeats" else jnp.mean(nll)
  return loss, aux


def _copying_eigenvalue(ov_VxV):
  # an all-zero circuit (a head that writes nothing the unembedding reads) has no eigenvalue to
  # speak of: score 0, not the 0/0 of the ratio
  return jnp.where(jnp.any(ov_VxV != 0), metrics_lib.copying_eigenvalue_score(ov_VxV), 0.0)


def _scores(params, cfg, tokens, acts, copying=True):
  prefix = [metrics_lib.prefix_matching_score(acts[f"layer{l}/pattern"], tokens)
            for l in range(cfg.num_layers)]
  prev = [metrics_lib.previous_token_score(acts[f"layer{l}/pattern"])
          for l in range(cfg.num_layers)]
  out = {"prefix_matching": jnp.stack(prefix), "previous_token": jnp.stack(prev)}
  return (out | copying_scores(params, cfg)) if copying else out


def chance_prefix_matching(tokens_BxT: jax.Array) -> jax.Array:
  """The prefix-matching score of uniform causal attention (query i spreads 1/(i+1) over keys
  0..i) on `tokens`: the level a head that ignores content reaches."""
  t = tokens_BxT.shape[-1]
  uniform = jnp.asarray(np.tri(t) / np.arange(1, t + 1)[:, None], jnp.result_type(float))
  return metrics_lib.prefix_matching_score(uniform[None, None], tokens_BxT)[0]
