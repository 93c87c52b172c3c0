r"""Bursty Gaussian-mixture sequences for in-context vs in-weights classification, and repeated
random tokens for induction-head scores.

Reddy 2024 ("The mechanistic basis of data dependence and abrupt learning in an in-context
classification task", ICLR; arXiv 2312.03002), sec. 2, as built by the author's generator
`generate_input_seqs` (the file `datasets_v2.py`, "# by Gautam Reddy", redistributed in
github.com/jessegeerts/icl-data-dependence; read there, not copied).

The world (`make_task`, drawn once): K class means $\mu_k$ and L label vectors, all
N(0, I_D / D); class k carries the fixed label k mod L (so L must divide K).

A sequence is $x_1, \ell_1, \dots, x_N, \ell_N, x_q$ (2N + 1 tokens) and the target is the
query's label. An item of class k is, freshly for every occurrence (the query included),
$x = (\mu_k + \epsilon \eta) / \sqrt{1 + \epsilon^2}$ with $\eta \sim N(0, I_D / D)$, so the
item's deviation from the scaled mean $\mu_k / \sqrt{1 + \epsilon^2}$ has variance
$\epsilon^2 / ((1 + \epsilon^2) D)$ per coordinate. A label token's content is the label's
vector (random, not one-hot; `Batch.context_labels` gives the integer labels for a model that
embeds its own). Every token is `[one-hot position (2 Nmax + 1) | content (D)]`; the 2N + 1
position one-hots start at a shift drawn uniformly from 0..2(Nmax - N) per sequence (always 0
when Nmax = N, the default, or when `random_shift=False`).

- Bursty (probability p_bursty): N/B classes, each B times, shuffled; the query's class is one
  of them, uniformly. With `no_repeats` (True in all of Reddy's scripts) the N/B classes carry
  distinct labels.
- Non-bursty: the N context classes and the query class are i.i.d. from the Zipf law
  $p_k \propto (k + 1)^{-\alpha}$, k = 0..K-1 (class 0 the most frequent).
- Novel (probability p_novel): the sequence is bursty over `num_novel_classes` (K_c = 128 in
  Reddy) class means drawn afresh for each batch, labelled k mod L, chosen uniformly. Their
  class ids are reported as K + k.

Deviations from the reference generator, all deliberate:
1. Bursty classes are drawn by Zipf weight, without replacement (Gumbel top-k over labels with
   the summed weight of their classes, then a class within each label by weight). At alpha = 0
   this is Reddy's distribution; for alpha > 0 Reddy's `no_repeats` branch draws bursty classes
   uniformly, and Chan et al. 2022 draw them by Zipf as here.
2. `flipped_label_set` (Reddy's IC2) shows training classes with label (k mod L + 1) mod L in
   the context and the target is that flipped label, so the target follows the context. (The
   reference stores the unflipped label and shifts it at evaluation.)
3. `in_weights_set` (Reddy's IW) draws the context i.i.d. from Zipf conditioned on not
   containing the query class (Chan et al.'s "no support" evaluation); Reddy's IW uses plain
   i.i.d. draws, where the query class appears with small probability.

`repeated_tokens` follows Olsson et al. 2022 (Transformer Circuits Thread, appendix "Head
activation evaluators", from the notes in /work/shared/papers, not re-read): random tokens
repeated, optionally behind a BOS token; `prefix_match_mask` marks, for each query position,
the key positions that followed an earlier occurrence of the same token.

Everything here is pure: a key and a static config in, arrays out, jittable and vmappable with
`cfg` and sizes static; no per-sequence Python loops.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class ReddyConfig:
  """Static (hashable) knobs of Reddy's task; validated on construction (ValueError names the
  field). Defaults are the paper's L = 32, N = 8, D = 63, eps = 0.1, alpha = 0."""
  num_classes: int = 512  # K
  num_labels: int = 32  # L; must divide K (class k has label k mod L)
  context_pairs: int = 8  # N
  burstiness: int = 4  # B: copies of each class in a bursty context; must divide N
  p_bursty: float = 1.0
  zipf_alpha: float = 0.0
  within_class_noise: float = 0.1  # epsilon
  dim: int = 63  # D, content dimension
  p_novel: float = 0.0  # fraction of (bursty) sequences drawn from novel classes
  num_novel_classes: int = 128  # K_c; must be a multiple of L
  max_context_pairs: int | None = None  # Nmax (position one-hots have 2 Nmax + 1 dims); None: N
  random_shift: bool = True  # random offset of the position one-hots when Nmax > N
  no_repeats: bool = True  # bursty classes carry distinct labels

  def __post_init__(self):
    def need(ok, field, msg):
      if not ok:
        raise ValueError(f"ReddyConfig.{field}={getattr(self, field)!r}: {msg}")

    for f in ("num_classes", "num_labels", "context_pairs", "burstiness", "dim",
              "num_novel_classes"):
      v = getattr(self, f)
      need(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1, f,
           "must be a positive integer")
    for f in ("p_bursty", "p_novel"):
      v = getattr(self, f)
      need(isinstance(v, (int, float)) and 0.0 <= v <= 1.0, f, "must be a probability in [0, 1]")
    need(math.isfinite(self.zipf_alpha) and self.zipf_alpha >= 0, "zipf_alpha",
         "must be finite and >= 0")
    need(math.isfinite(self.within_class_noise) and self.within_class_noise >= 0,
         "within_class_noise", "must be finite and >= 0")
    need(self.context_pairs % self.burstiness == 0, "burstiness",
         f"must divide context_pairs={self.context_pairs}")
    need(self.num_labels <= self.num_classes and self.num_classes % self.num_labels == 0,
         "num_labels", f"must divide num_classes={self.num_classes} (class k has label k mod L)")
    need(self.num_novel_classes % self.num_labels == 0, "num_novel_classes",
         f"must be a multiple of num_labels={self.num_labels}")
    m = self.context_pairs // self.burstiness
    if self.no_repeats:
      need(m <= self.num_labels, "num_labels",
           f"must be >= context_pairs / burstiness = {m} for distinct labels (no_repeats)")
    else:
      need(m <= min(self.num_classes, self.num_novel_classes), "burstiness",
           f"leaves {m} classes per bursty context, more than num_classes or num_novel_classes")
    if self.max_context_pairs is not None:
      need(isinstance(self.max_context_pairs, int) and
           self.max_context_pairs >= self.context_pairs, "max_context_pairs",
           f"must be an integer >= context_pairs={self.context_pairs}")

  @property
  def num_positions(self) -> int:
    """2 Nmax + 1, the size of the position one-hot."""
    n_max = self.context_pairs if self.max_context_pairs is None else self.max_context_pairs
    return 2 * n_max + 1

  @property
  def seq_len(self) -> int:
    return 2 * self.context_pairs + 1

  @property
  def input_dim(self) -> int:
    return self.num_positions + self.dim


class Task(NamedTuple):
  """The fixed world of `make_task`."""
  class_means: jax.Array  # [K, D] mu_k ~ N(0, I/D)
  class_labels: jax.Array  # [K] int32, k mod L
  label_vectors: jax.Array  # [L, D] ~ N(0, I/D), the content of label tokens


class Batch(NamedTuple):
  inputs: jax.Array  # [b, 2N+1, 2Nmax+1+D]: [position one-hot | content]
  target: jax.Array  # [b] int32 label of the query, in 0..L-1
  context_classes: jax.Array  # [b, N] int32 class of each item (novel classes are K + k)
  context_labels: jax.Array  # [b, N] int32 label shown after each item
  query_class: jax.Array  # [b] int32 (novel classes are K + k)
  bursty: jax.Array  # [b] bool
  novel: jax.Array  # [b] bool


def zipf_probs(cfg: ReddyConfig) -> np.ndarray:
  """p_k proportional to (k + 1)^-alpha over the K training classes (float64, sums to 1)."""
  p = np.arange(1, cfg.num_classes + 1, dtype=np.float64) ** -float(cfg.zipf_alpha)
  return p / p.sum()


def make_task(key: jax.Array, cfg: ReddyConfig) -> Task:
  """Draws the class means and label vectors, N(0, I/D), and the fixed labels k mod L."""
  k_cls, k_lab = jax.random.split(key)
  scale = 1.0 / math.sqrt(cfg.dim)
  return Task(
      class_means=scale * jax.random.normal(k_cls, (cfg.num_classes, cfg.dim)),
      class_labels=jnp.arange(cfg.num_classes, dtype=jnp.int32) % cfg.num_labels,
      label_vectors=scale * jax.random.normal(k_lab, (cfg.num_labels, cfg.dim)))


def _inverse_cdf(u, logits):
  """Draws from softmax(logits) given uniforms u in [0, 1) (any shape), by inverse CDF: one
  uniform per draw (Gumbel-max costs one per class, which dominated with hundreds of classes)."""
  cdf = jnp.cumsum(jax.nn.softmax(logits))
  return jnp.minimum(jnp.searchsorted(cdf, u * cdf[-1], side="right"), logits.shape[0] - 1)


def _distinct_classes(gumbel, u_within, logits, m, cfg):
  """m distinct classes of the pool, sequentially by weight exp(logits) (Gumbel top-k, `gumbel`
  one Gumbel per pool class, or per label with `no_repeats`: then first m distinct labels by
  their summed class weight, and a class within each label by inverse CDF of `u_within` [m])."""
  if not cfg.no_repeats:
    return jax.lax.top_k(logits + gumbel, m)[1]
  # pool index p (training classes, then novel ones; K and K_c are multiples of L) has label
  # p mod L, so the classes of label l are l, l + L, l + 2L, ...: [L, pool / L] after reshape.
  by_label = logits.reshape(-1, cfg.num_labels).T
  labels = jax.lax.top_k(jax.nn.logsumexp(by_label, axis=1) + gumbel, m)[1]
  within = jax.vmap(_inverse_cdf)(u_within, by_label[labels])
  return labels + cfg.num_labels * within


def _sample(key, task, cfg, batch_size, p_bursty, p_novel, flip, exclude_query):
  """Calls the compiled sampler with the float knobs traced: configs that differ only in
  p_bursty, p_novel, zipf_alpha or within_class_noise share one compilation, and so do training
  and all evaluation sets (flip adds 0 or 1 to the labels; exclude_query is a traced bool)."""
  structural = dataclasses.replace(cfg, p_bursty=0.0, p_novel=0.0, zipf_alpha=0.0,
                                   within_class_noise=0.0)
  dtype = task.class_means.dtype
  return _sample_compiled(key, task, structural, batch_size,
                          jnp.asarray(np.log(zipf_probs(cfg)), dtype),
                          jnp.asarray(cfg.within_class_noise, dtype), p_bursty, p_novel, flip,
                          exclude_query)


@functools.partial(jax.jit, static_argnames=("cfg", "batch_size"))
def _sample_compiled(key, task, cfg, batch_size, zipf, eps, p_bursty, p_novel, flip,
                     exclude_query):
  n, b_copies = cfg.context_pairs, cfg.burstiness
  m = n // b_copies
  k_cls, k_l = cfg.num_classes, cfg.num_labels
  k_novel, k_seqs = jax.random.split(key)
  novel_means = jax.random.normal(
      k_novel, (cfg.num_novel_classes, cfg.dim), task.class_means.dtype) / math.sqrt(cfg.dim)
  pool_means = jnp.concatenate([task.class_means, novel_means], axis=0)
  pool_labels = jnp.concatenate([
      task.class_labels, jnp.arange(cfg.num_novel_classes, dtype=jnp.int32) % k_l])
  off = jnp.full((cfg.num_novel_classes,), -jnp.inf, zipf.dtype)
  train_logits = jnp.concatenate([zipf, off])
  novel_logits = jnp.concatenate([jnp.full((k_cls,), -jnp.inf, zipf.dtype), jnp.zeros_like(off)])
  e_fac = 1.0 / jnp.sqrt(1.0 + eps ** 2)
  noise_scale = eps / math.sqrt(cfg.dim)
  positions = np.arange(cfg.seq_len)

  # All randomness is drawn for the whole batch by a few calls, then a deterministic function is
  # vmapped over sequences: per-sequence key splitting made XLA's compile ~10x slower.
  b = batch_size
  k_u, k_g, k_eta, k_int = jax.random.split(k_seqs, 4)
  u = jax.random.uniform(k_u, (b, 4 + m + 2 * n), pool_means.dtype)
  gumbel = jax.random.gumbel(
      k_g, (b, k_l if cfg.no_repeats else pool_labels.shape[0]), pool_means.dtype)
  eta = jax.random.normal(k_eta, (b, n + 1, cfg.dim), pool_means.dtype)
  shift = jax.random.randint(k_int, (b,), 0, cfg.num_positions - cfg.seq_len + 1)
  if not cfg.random_shift:
    shift = jnp.zeros_like(shift)

  def one(u, gumbel, eta, shift):
    u_novel, u_bursty, u_qb, u_qi = u[0], u[1], u[2], u[3]
    u_within, u_shuffle, u_ctx = u[4:4 + m], u[4 + m:4 + m + n], u[4 + m + n:]
    is_novel = u_novel < p_novel
    is_bursty = is_novel | (u_bursty < p_bursty)
    # bursty: m distinct classes, B copies each, shuffled; the query is one of them
    chosen = _distinct_classes(gumbel, u_within,
                               jnp.where(is_novel, novel_logits, train_logits), m, cfg)
    ctx_b = jnp.tile(chosen, b_copies)[jnp.argsort(u_shuffle)]
    q_b = chosen[jnp.minimum((u_qb * m).astype(jnp.int32), m - 1)]
    # non-bursty: i.i.d. Zipf context and query (context conditioned to avoid the query)
    q_i = _inverse_cdf(u_qi, train_logits)
    drop = exclude_query & (jnp.arange(train_logits.shape[0]) == q_i)
    ctx_i = _inverse_cdf(u_ctx, jnp.where(drop, -jnp.inf, train_logits))
    ctx = jnp.where(is_bursty, ctx_b, ctx_i).astype(jnp.int32)
    query = jnp.where(is_bursty, q_b, q_i).astype(jnp.int32)

    labels = pool_labels[ctx]
    target = pool_labels[query]
    labels, target = (labels + flip) % k_l, (target + flip) % k_l
    classes = jnp.concatenate([ctx, query[None]])
    items = e_fac * (pool_means[classes] + noise_scale * eta)  # [N+1, D]
    pairs = jnp.stack([items[:n], task.label_vectors[labels]], axis=1).reshape(2 * n, cfg.dim)
    content = jnp.concatenate([pairs, items[n:]], axis=0)
    pos = jax.nn.one_hot(positions + shift, cfg.num_positions, dtype=content.dtype)
    return Batch(jnp.concatenate([pos, content], axis=1), target.astype(jnp.int32), ctx,
                 labels.astype(jnp.int32), query, is_bursty, is_novel)

  return jax.vmap(one)(u, gumbel, eta, shift)


def sample_batch(key: jax.Array, task: Task, cfg: ReddyConfig, batch_size: int) -> Batch:
  """Training sequences: bursty with p_bursty, from novel classes with p_novel (always bursty,
  as in Reddy), otherwise i.i.d. Zipf. Compiled once per (cfg, batch_size); jit or vmap it
  with `cfg` and `batch_size` static."""
  return _sample(key, task, cfg, batch_size, cfg.p_bursty, cfg.p_novel, 0, False)


def novel_icl_set(key: jax.Array, task: Task, cfg: ReddyConfig, size: int) -> Batch:
  """Reddy's IC: bursty sequences over fresh classes (labels k mod L of a fresh draw, so the
  label of a class is learnable only from the context); the query class is in the context."""
  return _sample(key, task, cfg, size, 1.0, 1.0, 0, False)


def flipped_label_set(key: jax.Array, task: Task, cfg: ReddyConfig, size: int) -> Batch:
  """Reddy's IC2: bursty sequences over training classes whose context labels, and the target,
  are the fixed label + 1 mod L, so following the context contradicts in-weights memory."""
  if cfg.num_labels < 2:
    raise ValueError(f"ReddyConfig.num_labels={cfg.num_labels}: flipping labels needs >= 2")
  return _sample(key, task, cfg, size, 1.0, 0.0, 1, False)


def in_weights_set(key: jax.Array, task: Task, cfg: ReddyConfig, size: int) -> Batch:
  """Reddy's IW: non-bursty Zipf sequences whose context never contains the query class, so
  only the memorised class -> label map predicts the target."""
  if cfg.num_classes < 2:
    raise ValueError(f"ReddyConfig.num_classes={cfg.num_classes}: the query class must be "
                     "excluded from the context, which needs >= 2 classes")
  return _sample(key, task, cfg, size, 0.0, 0.0, 0, True)


# ------------------------------------------------------------------ Olsson-style induction data

def repeated_tokens(key: jax.Array, batch_size: int, vocab: int, half_length: int,
                    repeats: int = 2, bos: int | None = None, distinct: bool = True) -> jax.Array:
  """[b, (bos?) + repeats * half_length] int32: a random segment of tokens from 0..vocab-1
  repeated `repeats` times (Olsson's prefix-matching data uses 25 tokens, 4 repeats, a BOS).

  With `distinct` the segment has no repeated token (needs vocab >= half_length), so the only
  earlier occurrences of a token are its copies in previous repeats. `bos`, if given, is
  prepended (it may lie outside 0..vocab-1)."""
  if half_length < 1 or repeats < 1 or vocab < 1:
    raise ValueError(f"half_length={half_length}, repeats={repeats}, vocab={vocab}: "
                     "must all be >= 1")
  if distinct and vocab < half_length:
    raise ValueError(f"vocab={vocab}: distinct tokens need vocab >= half_length={half_length}")
  if distinct:  # a uniformly random ordered subset: the first half_length of a random ranking
    seg = jnp.argsort(jax.random.uniform(key, (batch_size, vocab)), axis=1)[:, :half_length]
  else:
    seg = jax.random.randint(key, (batch_size, half_length), 0, vocab)
  tokens = jnp.tile(seg.astype(jnp.int32), (1, repeats))
  if bos is not None:
    tokens = jnp.concatenate([jnp.full((batch_size, 1), bos, jnp.int32), tokens], axis=1)
  return tokens


def prefix_match_mask(tokens: jax.Array) -> jax.Array:
  """[..., T, T] bool: mask[i, j] iff j - 1 < i and tokens[j - 1] == tokens[i], i.e. key j
  followed an earlier occurrence of query i's token (where an induction head attends).
  Olsson's prefix-matching score is the attention mass on these keys, averaged over queries
  that have any."""
  t = tokens.shape[-1]
  prev = jnp.concatenate([jnp.full(tokens.shape[:-1] + (1,), -1, tokens.dtype),
                          tokens[..., :-1]], axis=-1)  # prev[j] = tokens[j - 1]
  same = tokens[..., :, None] == prev[..., None, :]
  earlier = np.arange(t)[None, :] - 1 < np.arange(t)[:, None]
  valid = (np.arange(t) >= 1)[None, :] & earlier
  return same & jnp.asarray(valid).reshape((1,) * (tokens.ndim - 1) + (t, t))
