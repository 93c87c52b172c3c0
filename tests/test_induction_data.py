"""Reddy 2024 bursty Gaussian-mixture sequences and Olsson-style repeated tokens: the burst
structure, Zipf class frequencies, within-class noise, fixed/flipped labels, the three
evaluation sets, jit/vmap, and config validation, each with a negative control.

Every sampler call uses one structural config and one batch size, so the whole file compiles
the sampler once (plus once for the jit+vmap test); keys are RBG keys, which XLA compiles about
twice as fast as threefry on this CPU (the code is key-implementation agnostic)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
import pytest

from jaxlab.induction import data

K, L, N, B, D, KC, NMAX = 64, 16, 8, 2, 16, 32, 10
SIZE = 4000
BASE = data.ReddyConfig(num_classes=K, num_labels=L, context_pairs=N, burstiness=B, dim=D,
                        num_novel_classes=KC, max_context_pairs=NMAX, p_bursty=0.5,
                        zipf_alpha=1.0, within_class_noise=0.1)


def _key(seed):
  return jax.random.key(seed, impl="rbg")


def _cfg(**kw):
  return data.ReddyConfig(**{**BASE.__dict__, **kw})


TASK = data.make_task(_key(0), BASE)


def _np(batch):
  return jax.tree.map(np.asarray, batch)


def _content(batch):
  return np.asarray(batch.inputs)[..., 2 * NMAX + 1:]


def _check_bursty(b):
  """Every row: N/B distinct classes, each exactly B times, the query among them, distinct
  labels (no_repeats)."""
  ctx = np.sort(b.context_classes, axis=1)
  distinct = ctx[:, ::B]
  np.testing.assert_array_equal(ctx, np.repeat(distinct, B, axis=1))
  assert np.all(np.diff(distinct, axis=1) > 0)
  assert np.all((b.context_classes == b.query_class[:, None]).any(axis=1))
  labs = np.sort(b.context_labels, axis=1)[:, ::B]
  assert np.all(np.diff(labs, axis=1) > 0)


def test_shapes_dtypes_and_positions():
  b = data.sample_batch(_key(1), TASK, BASE, SIZE)
  chex.assert_shape(b.inputs, (SIZE, 2 * N + 1, 2 * NMAX + 1 + D))
  assert BASE.input_dim == 2 * NMAX + 1 + D and BASE.seq_len == 2 * N + 1
  chex.assert_shape([b.target, b.query_class, b.bursty, b.novel], (SIZE,))
  chex.assert_shape([b.context_classes, b.context_labels], (SIZE, N))
  chex.assert_type([b.target, b.query_class, b.context_classes, b.context_labels], jnp.int32)
  chex.assert_type([b.bursty, b.novel], jnp.bool_)
  chex.assert_type(b.inputs, jnp.float64)
  chex.assert_shape(TASK.class_means, (K, D))
  chex.assert_shape(TASK.label_vectors, (L, D))
  b = _np(b)
  pos = b.inputs[..., :2 * NMAX + 1]
  assert set(np.unique(pos)) == {0.0, 1.0} and np.all(pos.sum(-1) == 1)
  idx = pos.argmax(-1)
  np.testing.assert_array_equal(idx - idx[:, :1], np.broadcast_to(np.arange(2 * N + 1), idx.shape))
  shifts = np.bincount(idx[:, 0], minlength=2 * (NMAX - N) + 1)
  assert len(shifts) == 2 * (NMAX - N) + 1 and np.all(shifts > SIZE / 5 * 0.8)  # uniform 0..4
  # label tokens carry the label vectors; the target is the query's fixed label
  np.testing.assert_array_equal(_content(b)[:, 1:-1:2], np.asarray(TASK.label_vectors)[
      b.context_labels])
  train = ~b.novel
  np.testing.assert_array_equal(b.target[train], np.asarray(TASK.class_labels)[
      b.query_class[train]])
  np.testing.assert_array_equal(np.asarray(TASK.class_labels), np.arange(K) % L)
  np.testing.assert_array_equal(b.context_labels[train], np.arange(K)[
      b.context_classes[train]] % L)
  assert 0.45 < b.bursty.mean() < 0.55 and not b.novel.any()


def test_bursty_contexts_hold_n_over_b_classes_b_times_with_the_query():
  b = _np(data.sample_batch(_key(2), TASK, _cfg(p_bursty=1.0), SIZE))
  assert b.bursty.all()
  _check_bursty(b)
  # negative control: non-bursty contexts fail the structure
  nb = _np(data.sample_batch(_key(3), TASK, _cfg(p_bursty=0.0), SIZE))
  assert not nb.bursty.any()
  with pytest.raises(AssertionError):
    _check_bursty(nb)


def _max_z(counts, p):
  n = counts.sum()
  return np.max(np.abs(counts / n - p) / np.sqrt(p * (1 - p) / n))


# The max of K z-scores: a Bonferroni bound with family-wise false-alarm rate 1e-3 (4.5 at K = 64;
# a flat 3.0 is exceeded by chance in ~16% of seeds).
MAX_Z = float(scipy.stats.norm.ppf(1 - 1e-3 / (2 * K)))


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_non_bursty_class_frequencies_follow_zipf(alpha):
  cfg = _cfg(p_bursty=0.0, zipf_alpha=alpha)
  b = _np(data.sample_batch(_key(4), TASK, cfg, SIZE))
  counts = np.bincount(np.concatenate([b.context_classes.ravel(), b.query_class]), minlength=K)
  p = np.arange(1, K + 1, dtype=float) ** -alpha
  p /= p.sum()
  np.testing.assert_allclose(data.zipf_probs(cfg), p, rtol=1e-12)
  assert _max_z(counts, p) < MAX_Z
  wrong = np.arange(1, K + 1, dtype=float) ** -(alpha + 0.3)  # negative control
  assert _max_z(counts, wrong / wrong.sum()) > 6.0


def test_within_class_noise_variance():
  for eps in (0.5, 0.0):
    b = _np(data.sample_batch(_key(5), TASK, _cfg(within_class_noise=eps), SIZE))
    classes = np.concatenate([b.context_classes, b.query_class[:, None]], axis=1)
    items = np.concatenate([_content(b)[:, 0:-1:2], _content(b)[:, -1:]], axis=1)
    dev = items - np.asarray(TASK.class_means)[classes] / np.sqrt(1 + eps ** 2)
    per_coord = dev.var() * D
    assert abs(dev.mean()) < 1e-3
    if eps == 0.0:
      assert np.abs(dev).max() < 1e-14
    else:
      assert abs(per_coord / (eps ** 2 / (1 + eps ** 2)) - 1) < 0.01
      assert abs(per_coord / eps ** 2 - 1) > 0.1  # negative control: unnormalised noise


def test_flipped_label_set_context_contradicts_fixed_labels_and_target_follows_it():
  b = _np(data.flipped_label_set(_key(6), TASK, BASE, SIZE))
  assert b.bursty.all() and not b.novel.any() and b.context_classes.max() < K
  _check_bursty(b)
  fixed = np.arange(K) % L
  assert np.all(b.context_labels != fixed[b.context_classes])
  np.testing.assert_array_equal(b.context_labels, (fixed[b.context_classes] + 1) % L)
  assert np.all(b.target != fixed[b.query_class])
  shown = np.where(b.context_classes == b.query_class[:, None], b.context_labels, -1)
  np.testing.assert_array_equal(shown.max(axis=1), b.target)  # the query's label in context
  # negative control: training batches agree with the fixed labels
  t = _np(data.sample_batch(_key(6), TASK, _cfg(p_bursty=1.0), SIZE))
  np.testing.assert_array_equal(t.context_labels, fixed[t.context_classes])


def test_in_weights_set_never_shows_the_query_class():
  b = _np(data.in_weights_set(_key(7), TASK, BASE, SIZE))
  assert not b.bursty.any() and not b.novel.any()
  assert not (b.context_classes == b.query_class[:, None]).any()
  p = data.zipf_probs(BASE)
  assert _max_z(np.bincount(b.query_class, minlength=K), p) < MAX_Z
  # negative control: plain i.i.d. (Reddy's IW) often shows it at alpha = 1, K = 64
  iid = _np(data.sample_batch(_key(7), TASK, _cfg(p_bursty=0.0), SIZE))
  assert (iid.context_classes == iid.query_class[:, None]).any(axis=1).mean() > 0.2


def test_novel_classes_are_new_bursty_and_labelled_k_mod_l():
  b = _np(data.novel_icl_set(_key(8), TASK, BASE, SIZE))
  assert b.novel.all() and b.bursty.all()
  assert b.context_classes.min() >= K and b.context_classes.max() < K + KC
  _check_bursty(b)
  np.testing.assert_array_equal(b.context_labels, (b.context_classes - K) % L)
  np.testing.assert_array_equal(b.target, (b.query_class - K) % L)
  # items sit near their novel mean, far from every training mean (means have norm ~1)
  means = np.asarray(TASK.class_means) / np.sqrt(1 + 0.1 ** 2)
  q = _content(b)[:, -1]
  nearest = np.sqrt(((q[:, None, :] - means[None]) ** 2).sum(-1)).min(axis=1)
  assert nearest.min() > 0.3  # the noise norm is eps = 0.1
  t = _np(data.sample_batch(_key(8), TASK, _cfg(p_bursty=0.0), SIZE))  # negative control
  tq = _content(t)[:, -1]
  assert np.sqrt(((tq - means[t.query_class]) ** 2).sum(-1)).max() < 0.2
  # a mixture: the novel fraction matches p_novel; novel sequences are always bursty
  m = _np(data.sample_batch(_key(9), TASK, _cfg(p_novel=0.3, p_bursty=0.0), SIZE))
  assert abs(m.novel.mean() - 0.3) < 3 * np.sqrt(0.3 * 0.7 / SIZE)
  np.testing.assert_array_equal(m.bursty, m.novel)
  assert np.all(m.context_classes[~m.novel] < K)


def test_jit_of_vmap_gives_valid_independent_batches():
  # RBG streams differ under vmap (threefry's would match eager bit for bit), so this checks
  # the batches' invariants rather than equality with eager calls
  keys = jax.random.split(_key(10), 2)
  f = jax.jit(jax.vmap(lambda k: data.sample_batch(k, TASK, _cfg(p_bursty=1.0), 500)))
  both = _np(f(keys))
  chex.assert_shape(both.inputs, (2, 500, 2 * N + 1, 2 * NMAX + 1 + D))
  for i in range(2):
    b = jax.tree.map(lambda x: x[i], both)
    _check_bursty(b)
    np.testing.assert_array_equal(b.context_labels, b.context_classes % L)
    np.testing.assert_array_equal(_content(b)[:, 1:-1:2],
                                  np.asarray(TASK.label_vectors)[b.context_labels])
  assert not np.array_equal(both.context_classes[0], both.context_classes[1])


@pytest.mark.parametrize("kw, field", [
    (dict(burstiness=3), "burstiness"),
    (dict(num_labels=128), "num_labels"),
    (dict(num_labels=10), "num_labels"),
    (dict(p_bursty=1.5), "p_bursty"),
    (dict(p_novel=-0.1), "p_novel"),
    (dict(zipf_alpha=-1.0), "zipf_alpha"),
    (dict(within_class_noise=float("nan")), "within_class_noise"),
    (dict(num_novel_classes=40), "num_novel_classes"),
    (dict(burstiness=1, num_labels=4, num_classes=64), "num_labels"),  # 8 classes, 4 labels
    (dict(max_context_pairs=4), "max_context_pairs"),
    (dict(dim=0), "dim"),
])
def test_bad_configs_raise_naming_the_field(kw, field):
  with pytest.raises(ValueError, match=f"ReddyConfig.{field}="):
    _cfg(**kw)


def test_repeated_tokens_and_prefix_match_mask():
  tok = np.asarray(data.repeated_tokens(_key(11), 3, vocab=50, half_length=25, repeats=4,
                                        bos=50))
  chex.assert_shape(tok, (3, 101))
  assert np.all(tok[:, 0] == 50) and tok[:, 1:].max() < 50
  seg = tok[:, 1:26]
  np.testing.assert_array_equal(tok[:, 1:], np.tile(seg, (1, 4)))
  assert all(len(set(r)) == 25 for r in seg)
  mask = np.asarray(data.prefix_match_mask(jnp.asarray(tok)))
  # a token in repeat r (r >= 1) matches the successor of each of its r earlier copies
  i = np.arange(101)
  expected = np.zeros((101, 101), bool)
  for r in range(1, 4):
    for s in range(r):
      q = i[1 + 25 * r:1 + 25 * (r + 1)]
      expected[q, q - 25 * (r - s) + 1] = True
  for row in mask:
    np.testing.assert_array_equal(row, expected)
  # negative control: an unrepeated random sequence has (almost) no matches
  rand = np.asarray(data.repeated_tokens(_key(12), 1, vocab=1000, half_length=100, repeats=1))
  assert np.asarray(data.prefix_match_mask(jnp.asarray(rand))).sum() == 0
  with pytest.raises(ValueError, match="vocab"):
    data.repeated_tokens(_key(0), 1, vocab=10, half_length=25)
