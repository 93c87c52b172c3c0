r"""System-2 measurements of an EBT: thinking longer, energy descent, self-verification, and the
energy-error relation.

Gladstone et al. 2025 (arXiv 2507.02092), sec. 3.3 and 5.2: "thinking longer" is more descent
steps, "self-verification" is best-of-N by minimum final energy, per token position (the
authors' `infer_energy_sampling_technique=min`); the paper reports the relative change of
perplexity. Here every measure is per token, so comparisons can be paired over tokens:

- `thinking_curve`: cross-entropy and energy after each of K steps.
- `self_verification`: the N chains' final cross-entropies and energies, and the cross-entropy of
  the minimum-energy pick, a random pick (its expectation: the chains' mean) and the oracle pick.
- `spearman`: rank correlation (e.g. a token's final energy against its loss).
- `paired_z`: the z statistic of a paired difference (mean / standard error).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxlab.ebt import model as model_lib
from jaxlab.ebt import thinking


class ThinkingCurve(NamedTuple):
  cross_entropy: jax.Array  # [K, B, S] after each step
  energy: jax.Array  # [K, B, S] of the probabilities each step starts from (step 1: the noise)
  final_energy: jax.Array  # [B, S] of the last step's output


@functools.partial(jax.jit, static_argnames=("cfg", "think", "num_steps"))
def thinking_curve(params, batch, key, cfg: model_lib.EBTConfig, think: thinking.ThinkConfig,
                   num_steps: int) -> ThinkingCurve:
  """Per-token cross-entropy and energy along `num_steps` descent steps on batch [B, S + 1]."""
  tokens, targets = batch[:, :-1], batch[:, 1:]
  trace = thinking.think_trace(params, tokens, key, cfg, think, num_steps)
  ce = jax.vmap(lambda l: thinking.cross_entropy(l, targets))(trace.logits)
  final_e = model_lib.energy(params, tokens, jax.nn.softmax(trace.logits[-1], -1), cfg,
                             landscape=num_steps)
  return ThinkingCurve(ce, trace.energies, final_e)


class SelfVerification(NamedTuple):
  chain_cross_entropy: jax.Array  # [N, B, S]
  chain_energy: jax.Array  # [N, B, S] final energies
  min_energy: jax.Array  # [B, S] cross-entropy of the minimum-energy chain
  random_pick: jax.Array  # [B, S] expected cross-entropy of a uniformly random chain
  oracle: jax.Array  # [B, S] cross-entropy of the best chain


@functools.partial(jax.jit, static_argnames=("cfg", "think", "n", "num_steps"))
def self_verification(params, batch, key, cfg: model_lib.EBTConfig, think: thinking.ThinkConfig,
                      n: int, num_steps: int) -> SelfVerification:
  """Best-of-n by minimum final energy on batch [B, S + 1], with its random and oracle references."""
  tokens, targets = batch[:, :-1], batch[:, 1:]
  _, (logits, energies) = thinking.best_of_n(params, tokens, key, cfg, think, n, num_steps)
  ce = jax.vmap(lambda l: thinking.cross_entropy(l, targets))(logits)
  pick = jnp.argmin(energies, axis=0)
  chosen = jnp.take_along_axis(ce, pick[None], axis=0)[0]
  return SelfVerification(ce, energies, chosen, jnp.mean(ce, 0), jnp.min(ce, 0))


def _ranks(x: jax.Array) -> jax.Array:
  """Ranks 0..n-1 (ties broken by position; continuous scores make ties negligible)."""
  order = jnp.argsort(x)
  return jnp.zeros(x.shape, jnp.float32).at[order].set(jnp.arange(x.shape[0], dtype=jnp.float32))


def spearman(a: jax.Array, b: jax.Array) -> jax.Array:
  """Spearman rank correlation of two equally long vectors (flattened)."""
  ra, rb = _ranks(jnp.ravel(a)), _ranks(jnp.ravel(b))
  ra, rb = ra - jnp.mean(ra), rb - jnp.mean(rb)
  return jnp.sum(ra * rb) / jnp.sqrt(jnp.sum(ra * ra) * jnp.sum(rb * rb))


def paired_z(a: jax.Array, b: jax.Array) -> jax.Array:
  """mean(a - b) / its standard error over paired samples (positive: a larger)."""
  d = jnp.ravel(a) - jnp.ravel(b)
  return jnp.mean(d) / (jnp.std(d, ddof=1) / jnp.sqrt(d.shape[0]))
