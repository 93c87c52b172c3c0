"""Emission statistics of a batch of symbol sequences (one-hot [B, T, K] or integer [B, T]): the
quantities compared with `theory.hmm` (Torre et al. 2025, sec. 3: output frequencies, transition
matrix, changes per sequence ("volatility"))."""

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
