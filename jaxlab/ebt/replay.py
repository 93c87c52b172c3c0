r"""The causal replay buffer of the S2 recipe, as pure functions over a fixed-size state.

Gladstone et al. 2025 (arXiv 2507.02092, sec. 3.3 and app. C, "replay buffer"), as the authors'
`model/replay_buffer.py` does it (read, not copied): a FIFO of at most `capacity` records (a token
sequence and the final candidate logits reached on it). Each training step appends
`fraction * batch` buffered records to the fresh batch; those restart their descent from the stored
logits instead of noise, which trains the energy landscape to keep improving good candidates (a
longer effective chain at no extra step). The fresh samples' final logits are then pushed.

The state has static shapes (jit, vmap, checkpoint with the train state); `size` counts the filled
records, `head` the next slot to overwrite.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class ReplayBuffer(NamedTuple):
  tokens: jax.Array  # [C, S + 1] int
  logits: jax.Array  # [C, S, V]
  size: jax.Array  # int32 scalar, filled records (<= C)
  head: jax.Array  # int32 scalar, next slot written


def init(capacity: int, seq_len: int, vocab_size: int, dtype=jnp.float32) -> ReplayBuffer:
  """An empty buffer of `capacity` records of `seq_len` + 1 tokens (inputs and targets)."""
  if capacity < 1 or seq_len < 1 or vocab_size < 1:
    raise ValueError(f"capacity={capacity}, seq_len={seq_len}, vocab_size={vocab_size}: "
                     "must all be >= 1")
  return ReplayBuffer(jnp.zeros((capacity, seq_len + 1), jnp.int32),
                      jnp.zeros((capacity, seq_len, vocab_size), dtype),
                      jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def push(buffer: ReplayBuffer, tokens_BxS1: jax.Array, logits_BxSxV: jax.Array) -> ReplayBuffer:
  """Writes a batch FIFO-wise (oldest records are overwritten first)."""
  capacity, b = buffer.tokens.shape[0], tokens_BxS1.shape[0]
  if b > capacity:
    raise ValueError(f"cannot push {b} records into a buffer of capacity {capacity}")
  if tokens_BxS1.shape[1:] != buffer.tokens.shape[1:] or \
     logits_BxSxV.shape[1:] != buffer.logits.shape[1:]:
    raise ValueError(f"records of shape {tokens_BxS1.shape[1:]} / {logits_BxSxV.shape[1:]} do not "
                     f"fit {buffer.tokens.shape[1:]} / {buffer.logits.shape[1:]}")
  slots = (buffer.head + jnp.arange(b)) % capacity
  logits = jax.lax.stop_gradient(logits_BxSxV).astype(buffer.logits.dtype)
  return ReplayBuffer(buffer.tokens.at[slots].set(tokens_BxS1.astype(jnp.int32)),
                      buffer.logits.at[slots].set(logits),
                      jnp.minimum(buffer.size + b, capacity), (buffer.head + b) % capacity)


def sample(buffer: ReplayBuffer, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """n records drawn uniformly (with replacement) among the filled ones: (tokens, logits, valid),
  `valid` all False while the buffer is empty (callers fall back to fresh noise there)."""
  index = jax.random.randint(key, (n,), 0, jnp.maximum(buffer.size, 1))
  valid = jnp.broadcast_to(buffer.size > 0, (n,))
  return buffer.tokens[index], buffer.logits[index], valid
