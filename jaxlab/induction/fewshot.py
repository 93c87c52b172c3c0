r"""Exemplar-based few-shot sequences in the style of Chan et al. 2022 and Singh et al. 2024.

Chan et al. 2022 (NeurIPS, "Data distributional properties drive emergent in-context learning in
transformers", sec. 2) train on sequences of (image, label) pairs and a query, built from a
finite set of exemplars per class, with burstiness, a Zipf law over classes and either fixed
labels (class k -> label k mod L, learnable in weights) or labels re-drawn per sequence
("few-shot", only learnable in context). Singh et al. 2024 (ICML, "What needs to go right for an
induction head?", sec. 2) use the smallest such task: two (exemplar, label) pairs of two classes
and a query from one of them, labels a random pair of L = 5 ("fs_relabel"), 8 of the 10 pairs
for training and 2 held out. Omniglot features are replaced by Gaussian exemplars (the CPU
analogue of /work/shared/papers/induction_heads.md, sec. 2):

  class mean mu_k ~ N(0, I/D); exemplar e of class k: (mu_k + eps eta_ke) / sqrt(1 + eps^2),
  eta ~ N(0, I/D), drawn once (a finite exemplar set, like Omniglot's 20 drawings per class).

Tokens are vectors of size D + L: an item is [exemplar | 0], a label [0 | one-hot(label)]. A
sequence is x_1, l_1, ..., x_C, l_C, x_q (2C + 1 tokens); the target is the query's label.
- Bursty (probability p_bursty): `ways` distinct classes, each C / ways times, shuffled; the query
  is one of them. Otherwise the C items and the query are i.i.d. from the Zipf law over classes.
- Labels: "fixed" (class k -> k mod L) or "fewshot": per sequence, the bursty classes get a
  random ordered draw of a `ways`-subset of the L labels, from the training subsets or, for
  evaluation, the held-out ones (Singh's relabeling split).

Pure: a key and a static config in, arrays out; batch-level random draws, vmapped assembly.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class FewShotConfig:
  """Static knobs; defaults are Singh et al. 2024's main run with Gaussian exemplars."""
  num_classes: int = 50  # training classes
  num_test_classes: int = 100  # held-out classes (exemplars never trained on)
  exemplars_per_class: int = 1
  dim: int = 64  # D
  within_class_noise: float = 0.1  # eps: spread of a class's exemplars around its mean
  num_labels: int = 5  # L
  context_len: int = 2  # C items in the context
  ways: int = 2  # distinct classes in a bursty context; must divide C
  p_bursty: float = 1.0
  zipf_alpha: float = 0.0
  labels: str = "fewshot"  # "fewshot" (per-sequence relabeling) or "fixed" (k mod L)
  heldout_label_sets: int = 2  # label subsets kept out of training ("fewshot")

  def __post_init__(self):
    def need(ok, field, msg):
      if not ok:
        raise ValueError(f"FewShotConfig.{field}={getattr(self, field)!r}: {msg}")
    for f in ("num_classes", "num_test_classes", "exemplars_per_class", "dim", "num_labels",
              "context_len", "ways"):
      need(isinstance(getattr(self, f), int) and getattr(self, f) >= 1, f,
           "must be a positive integer")
    need(0.0 <= self.p_bursty <= 1.0, "p_bursty", "must be in [0, 1]")
    need(self.zipf_alpha >= 0 and self.within_class_noise >= 0, "zipf_alpha",
         "zipf_alpha and within_class_noise must be >= 0")
    need(self.context_len % self.ways == 0, "ways", f"must divide context_len={self.context_len}")
    need(self.ways <= min(self.num_classes, self.num_test_classes), "ways",
         "needs that many distinct classes")
    need(self.labels in ("fewshot", "fixed"), "labels", "must be 'fewshot' or 'fixed'")
    if self.labels == "fewshot":
      need(self.p_bursty == 1.0, "p_bursty",
           "must be 1 with labels='fewshot' (labels exist only for a sequence's own classes)")
      need(self.ways <= self.num_labels, "ways", f"must be <= num_labels={self.num_labels}")
      total = math.comb(self.num_labels, self.ways)
      need(0 <= self.heldout_label_sets < total, "heldout_label_sets",
           f"must leave some of the {total} label subsets for training")

  @property
  def seq_len(self) -> int:
    return 2 * self.context_len + 1

  @property
  def input_dim(self) -> int:
    return self.dim + self.num_labels

  def label_sets(self) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) `ways`-subsets of the labels, a fixed shuffle of all of them."""
    subsets = np.array(list(itertools.combinations(range(self.num_labels), self.ways)), np.int32)
    order = np.random.default_rng(0).permutation(len(subsets))
    subsets = subsets[order]
    cut = len(subsets) - self.heldout_label_sets
    return subsets[:cut], subsets[cut:]


class World(NamedTuple):
  train_exemplars: jax.Array  # [K, E, D]
  test_exemplars: jax.Array  # [K_test, E, D]


class Batch(NamedTuple):
  inputs: jax.Array  # [b, 2C+1, D+L]
  target: jax.Array  # [b] label of the query
  context_classes: jax.Array  # [b, C]
  context_labels: jax.Array  # [b, C]
  query_class: jax.Array  # [b]


def make_world(key: jax.Array, cfg: FewShotConfig) -> World:
  def exemplars(k, n):
    k_mu, k_eta = jax.random.split(k)
    mu = jax.random.normal(k_mu, (n, 1, cfg.dim)) / math.sqrt(cfg.dim)
    eta = jax.random.normal(k_eta, (n, cfg.exemplars_per_class, cfg.dim)) / math.sqrt(cfg.dim)
    return (mu + cfg.within_class_noise * eta) / math.sqrt(1 + cfg.within_class_noise ** 2)
  k_train, k_test = jax.random.split(key)
  return World(exemplars(k_train, cfg.num_classes), exemplars(k_test, cfg.num_test_classes))


@functools.partial(jax.jit, static_argnames=("cfg", "batch_size", "split"))
def sample(key: jax.Array, world: World, cfg: FewShotConfig, batch_size: int,
           split: str = "train") -> Batch:
  """A batch. split: "train" (training classes and label subsets), "heldout_labels" (training
  classes, held-out label subsets), "test_classes" (held-out classes, training label subsets).
  Evaluation splits are always bursty."""
  if split not in ("train", "heldout_labels", "test_classes"):
    raise ValueError(f"split={split!r}: use 'train', 'heldout_labels' or 'test_classes'")
  if split == "heldout_labels" and (cfg.labels != "fewshot" or cfg.heldout_label_sets == 0):
    raise ValueError("split='heldout_labels' needs labels='fewshot' and heldout_label_sets > 0")
  exemplars = world.test_exemplars if split == "test_classes" else world.train_exemplars
  num_classes = exemplars.shape[0]
  train_sets, held_sets = cfg.label_sets() if cfg.labels == "fewshot" else (None, None)
  label_sets = jnp.asarray(held_sets if split == "heldout_labels" else train_sets) \
      if cfg.labels == "fewshot" else None
  p_bursty = cfg.p_bursty if split == "train" else 1.0
  c, w = cfg.context_len, cfg.ways
  zipf = -cfg.zipf_alpha * jnp.log(jnp.arange(1, num_classes + 1, dtype=exemplars.dtype))
  cdf = jnp.cumsum(jax.nn.softmax(zipf))
  k_u, k_g, k_e = jax.random.split(key, 3)
  b = batch_size
  u = jax.random.uniform(k_u, (b, 4 + 2 * c + w), exemplars.dtype)
  gumbel = jax.random.gumbel(k_g, (b, num_classes), exemplars.dtype)
  exemplar_index = jax.random.randint(k_e, (b, c + 1), 0, cfg.exemplars_per_class)

  def one(u, gumbel, ex):
    u_bursty, u_query, u_set, u_qi = u[0], u[1], u[2], u[3]
    u_shuffle, u_iid, u_order = u[4:4 + c], u[4 + c:4 + 2 * c], u[4 + 2 * c:]
    bursty = u_bursty < p_bursty
    chosen = jax.lax.top_k(zipf + gumbel, w)[1]  # w distinct classes by Zipf weight
    ctx_b = jnp.tile(chosen, c // w)[jnp.argsort(u_shuffle)]
    q_b = chosen[jnp.minimum((u_query * w).astype(jnp.int32), w - 1)]
    draw = lambda v: jnp.minimum(jnp.searchsorted(cdf, v * cdf[-1], side="right"),
                                 num_classes - 1)
    ctx = jnp.where(bursty, ctx_b, draw(u_iid)).astype(jnp.int32)
    query = jnp.where(bursty, q_b, draw(u_qi)).astype(jnp.int32)
    if cfg.labels == "fixed":
      labels_of = lambda k: k % cfg.num_labels
    else:  # the i-th chosen class gets the i-th label of a random ordering of a random subset
      subset = label_sets[jnp.minimum((u_set * label_sets.shape[0]).astype(jnp.int32),
                                      label_sets.shape[0] - 1)]
      ordered = subset[jnp.argsort(u_order)]
      labels_of = lambda k: jnp.sum(jnp.where(chosen == k, ordered, 0))
    labels = jax.vmap(labels_of)(ctx)
    target = labels_of(query)
    classes = jnp.concatenate([ctx, query[None]])
    items = exemplars[classes, ex]  # [C+1, D]
    item_tok = jnp.concatenate([items, jnp.zeros((c + 1, cfg.num_labels), items.dtype)], 1)
    label_tok = jnp.concatenate([jnp.zeros((c, cfg.dim), items.dtype),
                                 jax.nn.one_hot(labels, cfg.num_labels, dtype=items.dtype)], 1)
    pairs = jnp.stack([item_tok[:c], label_tok], axis=1).reshape(2 * c, cfg.input_dim)
    return Batch(jnp.concatenate([pairs, item_tok[c:]], 0), target.astype(jnp.int32), ctx,
                 labels.astype(jnp.int32), query)

  return jax.vmap(one)(u, gumbel, exemplar_index)


def label_token_masks(batch: Batch) -> tuple[jax.Array, jax.Array]:
  """([b, T] correct, [b, T] incorrect) masks of label tokens whose label is / is not the target
  (for the query's induction strength)."""
  b, c = batch.context_labels.shape
  t = 2 * c + 1
  pos = 2 * np.arange(c) + 1
  correct = jnp.zeros((b, t), bool).at[:, pos].set(batch.context_labels == batch.target[:, None])
  incorrect = jnp.zeros((b, t), bool).at[:, pos].set(batch.context_labels != batch.target[:, None])
  return correct, incorrect
