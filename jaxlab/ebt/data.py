r"""Data for the EBT studies that ships with Python: character text and Dyck-bracket sequences.

Gladstone et al. 2025 (arXiv 2507.02092) train on RedPajama and measure "thinking" gains on
BigBench Dyck languages, out of distribution (sec. 5.2, Table 2). At CPU scale we use:

- In-distribution text: CPython's `pydoc_data.topics` (the help pages, ~465k characters).
- Out-of-distribution text: the sources of CPython's `email` package (~364k characters of code).
- Dyck-k: a stream of balanced bracket strings with k bracket types; which closing bracket comes
  next is determined by the prefix, so completion accuracy is exact. Test splits are deeper
  (nesting beyond the training maximum) and longer (strings beyond the training length).

Text is encoded at the character level against the training vocabulary plus one unknown
character (OOD characters missing from the help pages map to it). Windows of S + 1 tokens are
drawn with a key (`sample_windows`, jittable); evaluation sets are fixed windows.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np

UNKNOWN = "\ufffd"


def pydoc_text() -> str:
  """The help-topic pages of this CPython, in a fixed order."""
  import pydoc_data.topics
  topics = pydoc_data.topics.topics
  return "".join(topics[k] for k in sorted(topics))


def stdlib_code_text(package: str = "email") -> str:
  """The concatenated `*.py` sources of a standard-library package (sorted by file name)."""
  import importlib
  module = importlib.import_module(package)
  files = sorted(glob.glob(os.path.join(os.path.dirname(module.__file__), "*.py")))
  if not files:
    raise FileNotFoundError(f"no sources found for the standard-library package {package!r}")
  parts = []
  for name in files:
    with open(name, encoding="utf-8") as f:
      parts.append(f.read())
  return "".join(parts)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  chars: str  # id i is chars[i]; the last one is UNKNOWN

  @classmethod
  def from_text(cls, text: str) -> "Vocabulary":
    return cls("".join(sorted(set(text) - {UNKNOWN})) + UNKNOWN)

  @property
  def size(self) -> int:
    return len(self.chars)

  def encode(self, text: str) -> np.ndarray:
    index = {c: i for i, c in enumerate(self.chars)}
    unknown = len(self.chars) - 1
    return np.fromiter((index.get(c, unknown) for c in text), np.int32, len(text))

  def decode(self, ids) -> str:
    return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


class TextCorpus:
  """Train / validation split of the help pages (the last `validation_fraction`), and the OOD text,
  all encoded with the training vocabulary."""

  def __init__(self, validation_fraction: float = 0.1, ood_package: str = "email"):
    if not 0 < validation_fraction < 1:
      raise ValueError(f"validation_fraction={validation_fraction}: must be in (0, 1)")
    text = pydoc_text()
    cut = int(len(text) * (1 - validation_fraction))
    self.vocab = Vocabulary.from_text(text[:cut])
    self.train = self.vocab.encode(text[:cut])
    self.validation = self.vocab.encode(text[cut:])
    self.ood = self.vocab.encode(stdlib_code_text(ood_package))

  def split(self, name: str) -> np.ndarray:
    if name not in ("train", "validation", "ood"):
      raise ValueError(f"unknown split {name!r}: expected 'train', 'validation' or 'ood'")
    return getattr(self, name)


@functools.partial(jax.jit, static_argnames=("batch_size", "length"))
def sample_windows(stream: jax.Array, key: jax.Array, batch_size: int, length: int) -> jax.Array:
  """[batch_size, length + 1] windows at uniform random offsets of a token stream."""
  starts = jax.random.randint(key, (batch_size,), 0, stream.shape[0] - length)
  return stream[starts[:, None] + jnp.arange(length + 1)[None, :]]


def fixed_windows(stream: np.ndarray, num: int, length: int) -> np.ndarray:
  """[num, length + 1] evenly spaced windows covering the stream (a fixed evaluation set)."""
  if stream.shape[0] < length + 1:
    raise ValueError(f"stream of {stream.shape[0]} tokens is shorter than a window of {length + 1}")
  starts = np.linspace(0, stream.shape[0] - length - 1, num).astype(np.int64)
  return np.stack([stream[s:s + length + 1] for s in starts])


# ---------------------------------------------------------------------------------------------
# Dyck-k


@dataclasses.dataclass(frozen=True)
class DyckSplit:
  """Balanced strings of `min_pairs..max_pairs` bracket pairs whose nesting depth lies in
  `min_depth..max_depth`."""
  min_pairs: int
  max_pairs: int
  min_depth: int
  max_depth: int

  def __post_init__(self):
    if not 1 <= self.min_pairs <= self.max_pairs:
      raise ValueError(f"DyckSplit pairs {self.min_pairs}..{self.max_pairs}: need 1 <= min <= max")
    if not 1 <= self.min_depth <= self.max_depth:
      raise ValueError(f"DyckSplit depth {self.min_depth}..{self.max_depth}: need 1 <= min <= max")
    if self.min_depth > self.max_pairs:
      raise ValueError(f"DyckSplit min_depth={self.min_depth} needs at least as many pairs, "
                       f"max_pairs={self.max_pairs}")


DYCK_TRAIN = DyckSplit(min_pairs=1, max_pairs=8, min_depth=1, max_depth=4)
DYCK_DEEPER = DyckSplit(min_pairs=5, max_pairs=8, min_depth=5, max_depth=8)
DYCK_LONGER = DyckSplit(min_pairs=10, max_pairs=15, min_depth=1, max_depth=4)


class Dyck:
  """Dyck-k over tokens: 0..k-1 opening, k..2k-1 the matching closing brackets, 2k the separator
  between strings. A stream is balanced strings joined by separators."""

  def __init__(self, num_types: int = 3):
    if num_types < 1:
      raise ValueError(f"num_types={num_types}: must be >= 1")
    self.num_types = num_types
    self.separator = 2 * num_types
    self.vocab_size = 2 * num_types + 1

  def string(self, rng: np.random.Generator, split: DyckSplit) -> list[int]:
    """One balanced string, by rejection from a random walk that opens with probability 1/2
    (while pairs remain and the depth allows it)."""
    while True:
      pairs = int(rng.integers(split.min_pairs, split.max_pairs + 1))
      stack, out, opened, deepest = [], [], 0, 0
      while opened < pairs or stack:
        can_open = opened < pairs and len(stack) < split.max_depth
        if can_open and (not stack or rng.random() < 0.5):
          t = int(rng.integers(self.num_types))
          stack.append(t)
          out.append(t)
          opened += 1
          deepest = max(deepest, len(stack))
        else:
          out.append(self.num_types + stack.pop())
      if deepest >= split.min_depth:
        return out

  def stream(self, seed: int, split: DyckSplit, num_tokens: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out: list[int] = []
    while len(out) < num_tokens:
      out.extend(self.string(rng, split))
      out.append(self.separator)
    return np.asarray(out[:num_tokens], np.int32)

  def closing_targets(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For windows [N, S + 1]: (mask [N, S] of next tokens that are closing brackets whose opening
    bracket lies inside the window, the index of the correct closing bracket among the k closers).
    Only those positions are determined by the prefix."""
    n, s1 = windows.shape
    mask = np.zeros((n, s1 - 1), bool)
    answer = np.zeros((n, s1 - 1), np.int32)
    for r in range(n):
      stack: list[int] = []
      for i, t in enumerate(windows[r]):
        t = int(t)
        if t < self.num_types:
          stack.append(t)
        elif t < 2 * self.num_types:
          if stack and i > 0:
            mask[r, i - 1] = True
            answer[r, i - 1] = stack[-1]
          if stack:
            stack.pop()
        else:
          stack = []
    return mask, answer
