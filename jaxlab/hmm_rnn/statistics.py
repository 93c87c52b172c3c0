"""Emission statistics of a batch of symbol sequences (one-hot [B, T, K] or integer [B, T]): the
quantities compared with `theory.hmm` (Torre et al. 2025, sec. 3: output frequencies, transition
matrix, changes per sequence ("volatility")), and where two readouts of the same runs (sampled and
argmax) differ, relative to one readout's changes."""

import jax
import jax.numpy as jnp


def _as_labels(symbols: jax.Array) -> jax.Array:
  return jnp.argmax(symbols, axis=-1) if symbols.ndim == 3 else symbols


def changes_per_sequence(symbols: jax.Array) -> jax.Array:
  """Number of t with y_{t+1} != y_t, per sequence [B]."""
  labels = _as_labels(symbols)
  return jnp.sum(labels[:, 1:] != labels[:, :-1], axis=1)


def symbol_frequencies(symbols: jax.Array, num_symbols: int) -> jax.Array:
  """Empirical output marginal [K] over every time step of every sequence."""
  labels = _as_labels(symbols)
  return jnp.mean(jax.nn.one_hot(labels, num_symbols).reshape(-1, num_symbols), axis=0)


def bigram_frequencies(symbols: jax.Array, num_symbols: int) -> jax.Array:
  """Empirical P(y_t = a, y_{t+1} = b) [K, K] over consecutive pairs."""
  labels = _as_labels(symbols)
  first = jax.nn.one_hot(labels[:, :-1], num_symbols).reshape(-1, num_symbols)
  second = jax.nn.one_hot(labels[:, 1:], num_symbols).reshape(-1, num_symbols)
  return first.T @ second / first.shape[0]


def repeat_probabilities(symbols: jax.Array, num_symbols: int) -> jax.Array:
  """P(y_{t+1} = a | y_t = a) per symbol [K] (nan for a symbol never emitted)."""
  bigrams = bigram_frequencies(symbols, num_symbols)
  return jnp.diag(bigrams) / jnp.sum(bigrams, axis=1)


def distance_to_nearest_change(symbols: jax.Array) -> jax.Array:
  """Per step, |t - s| to the nearest change point s (a step with y_s != y_{s-1}) of its sequence:
  [B, T] int; T where the sequence never changes."""
  labels = _as_labels(symbols)
  length = labels.shape[1]
  t = jnp.arange(length)[None, :]
  change = jnp.concatenate([jnp.zeros_like(labels[:, :1], dtype=bool),
                            labels[:, 1:] != labels[:, :-1]], axis=1)
  far = 2 * length  # a sentinel change this far off lies beyond the cap of T
  last = jax.lax.cummax(jnp.where(change, t, -far), axis=1)
  following = jax.lax.cummin(jnp.where(change, t, far), axis=1, reverse=True)
  return jnp.minimum(jnp.minimum(t - last, following - t), length)


def disagreement_by_distance(symbols: jax.Array, reference: jax.Array, max_distance: int
                             ) -> tuple[jax.Array, jax.Array]:
  """Where two readouts of the same runs differ, relative to the reference's own changes: with d
  the distance to the reference's nearest change (`distance_to_nearest_change`, capped at
  `max_distance`), returns (P(y_t != reference_t | d), fraction of steps at d), each [max_distance
  + 1], the last bin d >= max_distance (nan where a bin is empty). For an RNN read out by sampling
  against its argmax readout: whether the sampling noise dithers its switches or flips symbols
  anywhere."""
  labels, reference_labels = _as_labels(symbols), _as_labels(reference)
  if labels.shape != reference_labels.shape:
    raise ValueError(f"symbols {labels.shape} and reference {reference_labels.shape} differ in "
                     "shape")
  distance = jnp.minimum(distance_to_nearest_change(reference_labels), max_distance).ravel()
  differs = (labels != reference_labels).ravel().astype(jnp.float32)
  counts = jnp.bincount(distance, length=max_distance + 1)
  differing = jnp.bincount(distance, weights=differs, length=max_distance + 1)
  return differing / counts, counts / distance.size
