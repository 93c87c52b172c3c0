"""EBT data (CPython text, Dyck-k) and the System-2 measures (jaxlab.ebt.data, jaxlab.ebt.metrics)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.ebt import data, metrics


def test_text_is_encoded_against_the_training_vocabulary_with_one_unknown_character():
  vocab = data.Vocabulary.from_text("banana")
  assert vocab.chars == "abn" + data.UNKNOWN and vocab.size == 4
  np.testing.assert_array_equal(vocab.encode("nab!"), [2, 0, 1, 3])
  assert vocab.decode(vocab.encode("banana")) == "banana"
  corpus = data.TextCorpus()
  total = len(corpus.train) + len(corpus.validation)
  assert total == len(data.pydoc_text()) > 300_000
  assert abs(len(corpus.validation) / total - 0.1) < 1e-4
  assert len(corpus.ood) == len(data.stdlib_code_text("email")) > 100_000
  assert corpus.ood.max() == corpus.vocab.size - 1  # code has characters the help pages lack
  assert corpus.train.max() < corpus.vocab.size - 1
  with pytest.raises(ValueError, match="unknown split"):
    corpus.split("test")


def test_windows_are_contiguous_slices_of_the_stream():
  stream = jnp.arange(1000, dtype=jnp.int32)
  w = data.sample_windows(stream, jax.random.key(0), batch_size=64, length=16)
  assert w.shape == (64, 17)
  np.testing.assert_array_equal(w - w[:, :1], np.broadcast_to(np.arange(17), (64, 17)))
  assert int(w.max()) <= 999 and len(set(np.asarray(w[:, 0]).tolist())) > 40
  fixed = data.fixed_windows(np.arange(100), num=5, length=9)
  np.testing.assert_array_equal(fixed[:, 0], [0, 22, 45, 67, 90])
  np.testing.assert_array_equal(fixed[-1], np.arange(90, 100))


def _depths(string, k):
  depth, deepest = 0, 0
  for t in string:
    depth += 1 if t < k else -1
    assert depth >= 0
    deepest = max(deepest, depth)
  assert depth == 0
  return deepest


@pytest.mark.parametrize("split", [data.DYCK_TRAIN, data.DYCK_DEEPER, data.DYCK_LONGER])
def test_dyck_strings_are_balanced_and_respect_their_split(split):
  dyck = data.Dyck(3)
  rng = np.random.default_rng(0)
  for _ in range(200):
    s = dyck.string(rng, split)
    assert split.min_pairs <= len(s) // 2 <= split.max_pairs
    assert split.min_depth <= _depths(s, 3) <= split.max_depth
    stack = []
    for t in s:  # every closer matches the innermost open bracket
      if t < 3:
        stack.append(t)
      else:
        assert t - 3 == stack.pop()
  with pytest.raises(ValueError, match="min_depth"):
    data.DyckSplit(min_pairs=1, max_pairs=2, min_depth=3, max_depth=4)


def test_dyck_closing_targets_are_the_closers_forced_by_the_window():
  dyck = data.Dyck(2)  # 0, 1 open; 2, 3 close; 4 separates
  windows = np.array([[0, 1, 3, 2, 4, 1, 3],  # ( [ ] ) | [ ]
                      [3, 2, 4, 0, 0, 2, 2]])  # ...] ) | ( ( ) )  (first two open earlier)
  mask, answer = dyck.closing_targets(windows)
  np.testing.assert_array_equal(mask, [[0, 1, 1, 0, 0, 1], [0, 0, 0, 0, 1, 1]])
  np.testing.assert_array_equal(answer[mask], [1, 0, 1, 0, 0])
  stream = dyck.stream(0, data.DYCK_TRAIN, 5000)
  assert stream.shape == (5000,) and set(np.unique(stream)) == set(range(5))
  w = data.fixed_windows(stream, 50, 32)
  m, a = dyck.closing_targets(w)
  np.testing.assert_array_equal(w[:, 1:][m], a[m] + 2)  # the target is the forced closer
  assert m.mean() > 0.25


def test_spearman_and_paired_z():
  x = jax.random.normal(jax.random.key(0), (500,))
  assert float(metrics.spearman(x, jnp.exp(3 * x))) == pytest.approx(1.0, abs=1e-6)
  assert float(metrics.spearman(x, -x ** 3)) == pytest.approx(-1.0, abs=1e-6)
  y = x + jax.random.normal(jax.random.key(1), (500,))
  rank = lambda v: np.argsort(np.argsort(np.asarray(v)))
  np.testing.assert_allclose(metrics.spearman(x, y), np.corrcoef(rank(x), rank(y))[0, 1],
                             rtol=1e-5)
  a = jnp.array([1.0, 2.0, 3.0, 4.0])
  d = np.array([0.5, 1.0, 0.0, 1.5])
  np.testing.assert_allclose(metrics.paired_z(a, a - d), d.mean() / (d.std(ddof=1) / 2),
                             rtol=1e-12)
