"""Discrete hidden Markov models: the paper's families, sampling, filtering and smoothing.

Torre, Viscione, Pompe, Grewe & Mante 2025 ("Mechanistic interpretability of RNNs emulating hidden
Markov models", NeurIPS; arXiv 2510.25674), with the matrices as their code builds them
(github.com/EliaTorre/hmmrnn, `scripts/hmm.py`, `scripts/config.py`): hidden states
s_t in {0..M-1}, s_0 ~ initial, P(s_{t+1} = j | s_t = i) = transition[i, j] and
P(y_t = a | s_t = i) = emission[i, a].

Families (three output symbols; uniform start, as in the paper's `gen_start_prob`, which is also
the stationary distribution here because every transition matrix is symmetric):
- `linear_chain(M)`, M = 2..5 ("two".."five"): q = 0.05^(1/(M-1)); end states stay with 1 - q and
  step inward with q, interior states move to either neighbour with q and stay with 1 - 2q. So
  q^(M-1) = 0.05 is the probability of crossing the chain in the fewest steps (M - 1), and M > 5
  would make 1 - 2q negative. State i emits [0.99(1 - a), 0.01, 0.99 a] with a = i / (M - 1):
  symbol 1 is a 1% noise symbol in every state.
- `fully_connected()`: 3 states, stay 0.95, switch 0.025 to each other state; emission 0.98 on the
  diagonal, 0.01 off it.
- `cyclic()`: 4 states on a ring, stay 0.95, 0.025 to each neighbour; emission rows [.9, .1, 0],
  [.1, .9, 0], [0, .1, .9], [0, .9, .1].

Inference follows dynamax's `hmm_filter` / `hmm_smoother` (a `lax.scan` returning NamedTuples) and
Rabiner 1989 (Proc. IEEE 77:257; sec. III.A forward-backward, sec. V.A scaling; from memory):
`forward_filter` and `smoother` normalise the forward message at every step and sum the logs
of the normalisers; `log_forward_filter` runs the same recursion with logsumexp. Both stay finite
at T = 10^4 and M = 100, where the unscaled recursion underflows. An observation of probability
zero gives marginal_loglik = -inf and all-zero marginals from then on (not NaN).
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


class HMM(NamedTuple):
  """A discrete HMM; build it with `make` (which validates), or use a family constructor."""
  initial: jax.Array  # [M]
  transition: jax.Array  # [M, M], rows sum to 1
  emission: jax.Array  # [M, K], rows sum to 1

  @property
  def num_states(self) -> int:
    return self.transition.shape[0]

  @property
  def num_symbols(self) -> int:
    return self.emission.shape[1]


class Filtered(NamedTuple):
  marginal_loglik: jax.Array  # [] log P(y_0..y_{T-1})
  filtered_probs: jax.Array  # [T, M] P(s_t | y_0..y_t)
  predicted_probs: jax.Array  # [T, M] P(s_t | y_0..y_{t-1})


class Smoothed(NamedTuple):
  marginal_loglik: jax.Array  # []
  filtered_probs: jax.Array  # [T, M]
  smoothed_probs: jax.Array  # [T, M] P(s_t | y_0..y_{T-1})


def validate(hmm: HMM, atol: float = 1e-6) -> HMM:
  """Checks shapes, finiteness, signs and row sums on concrete (host) values; returns `hmm`."""
  initial, transition, emission = (np.asarray(x, dtype=np.float64) for x in hmm)
  if initial.ndim != 1 or initial.shape[0] < 1:
    raise ValueError(f"initial must be a vector [M], got shape {initial.shape}")
  m = initial.shape[0]
  if transition.shape != (m, m):
    raise ValueError(f"transition must be [M, M] = [{m}, {m}] (M = len(initial)), "
                     f"got shape {transition.shape}")
  if emission.ndim != 2 or emission.shape[0] != m or emission.shape[1] < 1:
    raise ValueError(f"emission must be [M, K] = [{m}, K] (M = len(initial)), "
                     f"got shape {emission.shape}")
  for name, x in (("initial", initial), ("transition", transition), ("emission", emission)):
    if not np.all(np.isfinite(x)):
      raise ValueError(f"{name} has non-finite entries")
    if np.any(x < 0):
      index = np.unravel_index(np.argmin(x), x.shape)
      where = tuple(int(i) for i in index)
      raise ValueError(f"{name} has negative entries (min {x[index]:.3g} at {where})")
    sums = x.sum(axis=-1).reshape(-1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
      what = "" if x.ndim == 1 else f" row {bad[0]}"
      raise ValueError(f"{name}{what} sums to {sums[bad[0]]:.9g}, not 1 (tolerance {atol:g})")
  return hmm


def make(initial, transition, emission, atol: float = 1e-6) -> HMM:
  """An `HMM` from any (initial [M], transition [M, M], emission [M, K]) triple, validated."""
  return validate(HMM(jnp.asarray(initial, dtype=float), jnp.asarray(transition, dtype=float),
                      jnp.asarray(emission, dtype=float)), atol)


def linear_chain(num_states: int, target: float = 0.05) -> HMM:
  """The paper's "target_prob" chain with "linear" emissions (module docstring), M = 2..5."""
  m = num_states
  if m < 2:
    raise ValueError(f"a linear chain needs num_states >= 2, got {m}")
  q = target ** (1.0 / (m - 1))
  if m > 2 and 1.0 - 2.0 * q < 0:
    raise ValueError(f"num_states = {m} gives q = {q:.4f} and a negative stay probability "
                     f"1 - 2q = {1 - 2 * q:.4f} for interior states (the paper uses M = 2..5)")
  a = np.zeros((m, m))
  a[0, :2] = [1 - q, q]
  a[-1, -2:] = [q, 1 - q]
  for i in range(1, m - 1):
    a[i, i - 1:i + 2] = [q, 1 - 2 * q, q]
  alpha = np.arange(m) / (m - 1)
  e = np.stack([0.99 * (1 - alpha), np.full(m, 0.01), 0.99 * alpha], axis=1)
  return make(np.full(m, 1.0 / m), a, e)


def fully_connected(stay: float = 0.95) -> HMM:
  """3 states, stay `stay`, switch (1 - stay) / 2 to each other; emission .98 diagonal, .01 off."""
  a = np.full((3, 3), (1 - stay) / 2) + np.eye(3) * (stay - (1 - stay) / 2)
  e = np.full((3, 3), 0.01) + np.eye(3) * 0.97
  return make(np.full(3, 1.0 / 3), a, e)


def cyclic(stay: float = 0.95) -> HMM:
  """4 states on a ring, stay `stay`, (1 - stay) / 2 to each neighbour; the paper's emissions."""
  a = np.eye(4) * stay
  for i in range(4):
    a[i, (i + 1) % 4] = a[i, (i - 1) % 4] = (1 - stay) / 2
  e = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.0, 0.1, 0.9], [0.0, 0.9, 0.1]])
  return make(np.full(4, 0.25), a, e)


def without_rare_symbols(hmm: HMM, threshold: float = 0.05) -> HMM:
  """The same chain with every symbol whose stationary output probability is below `threshold`
  (the linear chains' 1% noise symbol) never emitted: each state's mass on it moves to that state's
  most likely symbol. Raises if no symbol is that rare."""
  transition, emission = np.asarray(hmm.transition), np.array(hmm.emission)
  stationary = _stationary(transition)
  rare = stationary @ emission < threshold
  if not rare.any():
    raise ValueError(f"no symbol has stationary probability below {threshold}")
  top = np.argmax(np.where(rare[None, :], -1.0, emission), axis=1)
  emission[np.arange(len(top)), top] += emission[:, rare].sum(axis=1)
  emission[:, rare] = 0.0
  return make(hmm.initial, transition, emission)


def deterministic_emissions(hmm: HMM) -> HMM:
  """The same chain with each state emitting only its most likely symbol(s), ties shared equally:
  the lowest-entropy emissions with the same hidden dynamics (for the linear chain "two", the
  symbol-free chain of `without_rare_symbols`)."""
  emission = np.asarray(hmm.emission)
  top = np.isclose(emission, emission.max(axis=1, keepdims=True), rtol=0, atol=1e-12)
  return make(hmm.initial, hmm.transition, top / top.sum(axis=1, keepdims=True))


def scale_switching(hmm: HMM, factor: float) -> HMM:
  """The same HMM with every off-diagonal transition probability multiplied by `factor` (stay
  probabilities absorb the difference): a chain that switches `factor` times as often."""
  transition = np.asarray(hmm.transition)
  off = transition * (1 - np.eye(len(transition))) * factor
  if np.any(off.sum(axis=1) > 1):
    raise ValueError(f"factor {factor} makes a state's switching probability exceed 1")
  return make(hmm.initial, off + np.diag(1 - off.sum(axis=1)), hmm.emission)


def _stationary(transition: np.ndarray) -> np.ndarray:
  values, vectors = np.linalg.eig(transition.T)
  p = np.real(vectors[:, np.argmin(np.abs(values - 1))])
  return p / p.sum()


FAMILIES: dict[str, Callable[[], HMM]] = {
    "two": lambda: linear_chain(2), "three": lambda: linear_chain(3),
    "four": lambda: linear_chain(4), "five": lambda: linear_chain(5),
    "fully": fully_connected, "cyclic": cyclic,
}
# Training sequence lengths of the paper's configs (`scripts/config.py`, DATA["seq_len"]).
PAPER_LENGTHS = {"two": 100, "three": 30, "four": 30, "five": 40, "fully": 30, "cyclic": 40}


def by_name(name: str) -> HMM:
  """One of the paper's six HMMs by its config name."""
  if name not in FAMILIES:
    raise ValueError(f"unknown HMM {name!r}; choose from {list(FAMILIES)}")
  return FAMILIES[name]()


@functools.partial(jax.jit, static_argnames=("num_states", "num_symbols"))
def random_hmm(key: jax.Array, num_states: int, num_symbols: int) -> HMM:
  """Initial, transition and emission rows uniform on the simplex, i.e. Dirichlet(1, ..., 1), drawn
  as normalised Exp(1) variables from one batch of uniforms (one RNG kernel to compile, where
  jax.random.dirichlet's gamma sampler costs seconds)."""
  m, k = num_states, num_symbols
  x = -jnp.log1p(-jax.random.uniform(key, (m + m * m + m * k,)))
  rows = lambda z: z / z.sum(axis=-1, keepdims=True)
  return HMM(rows(x[:m]), rows(x[m:m + m * m].reshape(m, m)), rows(x[m + m * m:].reshape(m, k)))


@functools.partial(jax.jit, static_argnames=("batch", "length"))
def sample(key: jax.Array, hmm: HMM, batch: int, length: int) -> tuple[jax.Array, jax.Array]:
  """`batch` independent sequences: (states [B, T], symbols [B, T]), int32, one scan over time.

  Each draw is an inverse-CDF lookup, index = #{j : cdf_j <= u * cdf_last} with u ~ U[0, 1): one
  uniform per draw (about 4x faster than Gumbel-max here), and zero-probability entries are never
  drawn, even when the row's sum is off by rounding.
  """
  cdf_a = jnp.cumsum(hmm.transition, axis=1)
  cdf_e = jnp.cumsum(hmm.emission, axis=1)

  def draw(u_B, cdf_BxN):
    return jnp.sum(u_B[:, None] * cdf_BxN[:, -1:] >= cdf_BxN, axis=1).astype(jnp.int32)

  def step(cdf_BxM, key_t):
    u_2xB = jax.random.uniform(key_t, (2, batch), dtype=cdf_a.dtype)
    s_B = draw(u_2xB[0], cdf_BxM)
    y_B = draw(u_2xB[1], cdf_e[s_B])
    return cdf_a[s_B], (s_B, y_B)

  cdf0 = jnp.broadcast_to(jnp.cumsum(hmm.initial)[None, :], (batch, hmm.num_states))
  _, (s_TxB, y_TxB) = lax.scan(step, cdf0, jax.random.split(key, length))
  return s_TxB.T, y_TxB.T


def one_hot(symbols: jax.Array, num_symbols: int) -> jax.Array:
  """[..., T] integer symbols -> [..., T, K] one-hot floats (the RNN's output format)."""
  return jax.nn.one_hot(symbols, num_symbols)


@jax.jit
def forward_filter(hmm: HMM, symbols: jax.Array) -> Filtered:
  """Scaled forward recursion for one sequence `symbols` [T]; vmap it over sequences.

  alpha_t = predicted_t * E[:, y_t] / c_t with c_t = sum_i predicted_t,i E_i,y_t, predicted_{t+1} =
  alpha_t A, and log P(y) = sum_t log c_t (Rabiner 1989, sec. V.A, from memory).
  """
  lik_TxM = hmm.emission.T[symbols]

  def step(carry, lik_M):
    loglik, predicted_M = carry
    joint_M = predicted_M * lik_M
    norm = joint_M.sum()
    # an impossible observation (norm = 0) zeroes the message instead of producing 0 / 0
    filtered_M = joint_M / jnp.where(norm > 0, norm, 1.0)
    return (loglik + jnp.log(norm), filtered_M @ hmm.transition), (filtered_M, predicted_M)

  init = (jnp.zeros((), hmm.initial.dtype), hmm.initial)
  (loglik, _), (filtered, predicted) = lax.scan(step, init, lik_TxM)
  return Filtered(loglik, filtered, predicted)


@jax.jit
def log_forward_filter(hmm: HMM, symbols: jax.Array) -> Filtered:
  """The same filter with log-space messages: log alpha_t = log E[:, y_t] + logsumexp over i of
  (log alpha_{t-1, i} + log A_ij), normalised each step; the probabilities returned are exp'd."""
  log_a = jnp.log(hmm.transition)
  loglik_TxM = jnp.log(hmm.emission).T[symbols]

  def step(carry, ll_M):
    loglik, log_predicted_M = carry
    log_joint_M = log_predicted_M + ll_M
    log_norm = jax.nn.logsumexp(log_joint_M)
    # as above: -inf - (-inf) would be NaN for an impossible observation
    log_filtered_M = log_joint_M - jnp.where(jnp.isfinite(log_norm), log_norm, 0.0)
    log_next_M = jax.nn.logsumexp(log_filtered_M[:, None] + log_a, axis=0)
    return (loglik + log_norm, log_next_M), (log_filtered_M, log_predicted_M)

  init = (jnp.zeros((), hmm.initial.dtype), jnp.log(hmm.initial))
  (loglik, _), (log_filtered, log_predicted) = lax.scan(step, init, loglik_TxM)
  return Filtered(loglik, jnp.exp(log_filtered), jnp.exp(log_predicted))


@jax.jit
def smoother(hmm: HMM, symbols: jax.Array) -> Smoothed:
  """Forward-backward: P(s_t | y_0..y_{T-1}) proportional to alpha_t * beta_t, with the backward
  message beta_t = A (E[:, y_{t+1}] * beta_{t+1}), beta_{T-1} = 1, rescaled each step (any scale
  cancels in the normalisation)."""
  post = forward_filter(hmm, symbols)
  lik_TxM = hmm.emission.T[symbols]

  def step(beta_next_M, lik_next_M):
    beta_M = hmm.transition @ (lik_next_M * beta_next_M)
    total = beta_M.sum()
    beta_M = beta_M / jnp.where(total > 0, total, 1.0)
    return beta_M, beta_M

  beta_last = jnp.ones_like(hmm.initial)
  _, betas = lax.scan(step, beta_last, lik_TxM[1:], reverse=True)
  beta_TxM = jnp.concatenate([betas, beta_last[None, :]], axis=0)
  joint_TxM = post.filtered_probs * beta_TxM
  norm_Tx1 = joint_TxM.sum(axis=1, keepdims=True)
  smoothed = joint_TxM / jnp.where(norm_Tx1 > 0, norm_Tx1, 1.0)
  return Smoothed(post.marginal_loglik, post.filtered_probs, smoothed)
