"""Training an RNN to emulate an HMM: a debiased Sinkhorn divergence between batches of sequences.

Torre et al. 2025, sec. 2 and their code (geomloss `SamplesLoss("sinkhorn", p=2, blur=0.2)`): each
sequence of T symbols is one point, its flattened one-hot vector in R^{T K}; the loss compares a batch
of RNN sequences with a batch of HMM sequences by the debiased Sinkhorn divergence (Feydy et al. 2019,
AISTATS, eq. 4 / Genevay et al. 2018)

  S_eps(a, b) = OT_eps(a, b) - OT_eps(a, a) / 2 - OT_eps(b, b) / 2,  cost c(x, y) = |x - y|^2 / 2,
  eps = blur^2,

solved by ott-jax (Cuturi et al. 2022) with eps annealed from the cost's scale down to the target
(geomloss's eps-scaling), and differentiated by Danskin's theorem (potentials held fixed).

Two batches of the *same* HMM do not give 0: a finite batch leaves a noise floor, the level a perfect
emulator reaches. `noise_floor` measures it and `shuffled_control` (HMM sequences with their time
order permuted: same symbol counts, no temporal structure) the level of a model with the right
marginals only; every training curve is read against both. `population_divergence` computes S_eps
between two HMMs' exact laws of short sequences (every sequence a point weighted by its
probability): the limit a batch estimate approaches, with no floor.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from ott.geometry import epsilon_scheduler, pointcloud
from ott.tools import sinkhorn_divergence as ott_divergence

from jaxlab.hmm_rnn import hmm as hmm_lib
from jaxlab.hmm_rnn import model
from jaxlab.hmm_rnn.statistics import changes_per_sequence


class SinkhornConfig(NamedTuple):
  blur: float = 0.2  # geomloss's blur: eps = blur^2 for the cost |x - y|^2 / 2
  # "ott": ott-jax, eps annealed as below, run to `threshold` or `max_iterations`. "geomloss": the
  # paper's own estimate, geomloss's eps-scaling loop (`geomloss_divergence`); it ignores the
  # four settings below and uses `scaling`.
  solver: str = "ott"
  scaling: float = 0.5  # geomloss's default: blur shrinks by this factor per iteration
  anneal_from: float = 10.0  # starting eps (in units of the |x-y|^2/2 cost); decays to blur^2
  decay: float = 0.9  # per-iteration eps decay while annealing
  threshold: float = 1e-3
  # A fixed budget, as geomloss's eps-scaling: batches of HMM sequences repeat many sequences exactly
  # and the cross term converges slowly (~2000 iterations to 1e-3); 200 gives values within ~1% of
  # the converged ones (1.869 vs 1.887 between two 512-sequence batches of "two") at 1/6 the cost.
  max_iterations: int = 200


def flatten(symbols: jax.Array) -> jax.Array:
  """[B, T, K] one-hot sequences -> [B, T K] points."""
  if symbols.ndim != 3:
    raise ValueError(f"expected one-hot sequences [batch, time, symbols], got shape {symbols.shape}")
  return symbols.reshape(symbols.shape[0], -1)


def sinkhorn_divergence(x: jax.Array, y: jax.Array, config: SinkhornConfig = SinkhornConfig(),
                        x_weights: jax.Array | None = None, y_weights: jax.Array | None = None
                        ) -> jax.Array:
  """Debiased Sinkhorn divergence between point clouds x [N, D] and y [M, D], cost |x - y|^2 / 2
  and eps = blur^2 (geomloss's convention). Weights (each summing to 1) default to uniform; a
  weighted cloud is the cloud with each point repeated in proportion to its weight."""
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f"point clouds must be [n, dim] with equal dim, got {x.shape} and {y.shape}")
  for points, weights, name in ((x, x_weights, "x_weights"), (y, y_weights, "y_weights")):
    if weights is not None and weights.shape != points.shape[:1]:
      raise ValueError(f"{name} must be [{points.shape[0]}], got shape {weights.shape}")
  # ott's PointCloud cost is |x - y|^2: doubling eps and halving the result gives |x - y|^2 / 2.
  target = 2 * config.blur ** 2
  epsilon = epsilon_scheduler.Epsilon(target=target, init=max(2 * config.anneal_from / target, 1.0),
                                      decay=config.decay)
  with jax.numpy_rank_promotion("allow"):  # ott broadcasts implicitly; callers may forbid it
    value, _ = ott_divergence.sinkhorn_divergence(
        pointcloud.PointCloud, x, y, a=x_weights, b=y_weights, epsilon=epsilon,
        solve_kwargs={"use_danskin": True, "implicit_diff": None, "threshold": config.threshold,
                      "max_iterations": config.max_iterations})
  return value / 2


SOLVERS = ("ott", "geomloss")


def geomloss_epsilons(diameter: jax.Array, blur: float, scaling: float
                      ) -> tuple[jax.Array, jax.Array]:
  """geomloss's eps schedule for p = 2 (`epsilon_schedule`): diameter^2, then diameter^2 again
  and every further factor scaling^2 while above blur^2, then blur^2. Returns (eps [max_len],
  its length): padded to the longest schedule a diameter <= 1e4 can give, so that it traces."""
  log_start, log_stop, log_step = 2 * jnp.log(diameter), 2 * np.log(blur), 2 * np.log(scaling)
  steps = jnp.maximum(jnp.ceil((log_stop - log_start) / log_step), 0).astype(jnp.int32)
  max_steps = int(np.ceil((log_stop - 2 * np.log(1e4)) / log_step))
  i = jnp.arange(max_steps + 2)
  middle = jnp.exp(log_start + (i - 1) * log_step)
  eps = jnp.where(i == 0, diameter ** 2, jnp.where(i <= steps, middle, blur ** 2))
  return eps, steps + 2


def geomloss_divergence(x: jax.Array, y: jax.Array, blur: float = 0.2, scaling: float = 0.5
                        ) -> jax.Array:
  """The debiased Sinkhorn divergence as geomloss 0.2 estimates it (`SamplesLoss("sinkhorn", p=2,
  blur, scaling)`, tensorized backend; Feydy's thesis (2020) sec. 3.3.3, Algorithm 3.5), for
  uniform weights: the paper's loss as its code computes it, not a converged solve.

  Cost |x - y|^2 / 2; eps runs down `geomloss_epsilons` from the squared diameter of the two
  clouds' bounding box, one symmetric (averaged) update of the four potentials (x<->y, x<->x,
  y<->y) per eps, then one plain update at blur^2 that alone carries gradients (the loop's
  potentials are held fixed). The value is <a, f_ba - f_aa> + <b, g_ab - g_bb>. For batches of
  flattened one-hot sequences (diameter sqrt(3T)) the loop stops after ~10 iterations, far from
  convergence (`CONVERGED_SINKHORN`); the README compares the two."""
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f"point clouds must be [n, dim] with equal dim, got {x.shape} and {y.shape}")
  if not 0 < scaling < 1:
    raise ValueError(f"scaling must be in (0, 1), got {scaling}")
  sg = jax.lax.stop_gradient

  def cost(u, v):  # |u_i - v_j|^2 / 2 without an [N, M, D] temporary
    return (jnp.sum(u * u, 1)[:, None] + jnp.sum(v * v, 1)[None, :] - 2 * u @ v.T) / 2

  # As geomloss: each cost's second argument is held fixed, so that gradients follow the potential
  # on the first cloud (Danskin's theorem, once per problem).
  c_xy, c_yx, c_xx, c_yy = cost(x, sg(y)), cost(y, sg(x)), cost(x, sg(x)), cost(y, sg(y))
  log_a = jnp.full(x.shape[0], -np.log(x.shape[0]), x.dtype)
  log_b = jnp.full(y.shape[0], -np.log(y.shape[0]), y.dtype)
  both = jnp.concatenate([x, y])
  diameter = jnp.linalg.norm(sg(both.max(0) - both.min(0)))
  eps_list, length = geomloss_epsilons(diameter, blur, scaling)
  eps_list = eps_list.astype(x.dtype)

  def softmin(eps, c, h):  # f_i = -eps log sum_j exp(h_j - c_ij / eps)
    return -eps * jax.nn.logsumexp(h[None, :] - c / eps, axis=1)

  def update(eps, potentials, costs):
    f_ba, g_ab, f_aa, g_bb = potentials
    c_xy, c_yx, c_xx, c_yy = costs
    return (softmin(eps, c_xy, log_b + g_ab / eps), softmin(eps, c_yx, log_a + f_ba / eps),
            softmin(eps, c_xx, log_a + f_aa / eps), softmin(eps, c_yy, log_b + g_bb / eps))

  fixed = tuple(sg(c) for c in (c_xy, c_yx, c_xx, c_yy))
  eps0 = eps_list[0]
  start = (softmin(eps0, fixed[0], log_b), softmin(eps0, fixed[1], log_a),
           softmin(eps0, fixed[2], log_a), softmin(eps0, fixed[3], log_b))

  def body(i, potentials):
    new = update(eps_list[i], potentials, fixed)
    return tuple((p + q) / 2 for p, q in zip(potentials, new))

  potentials = jax.lax.fori_loop(0, length, body, start)
  f_ba, g_ab, f_aa, g_bb = update(jnp.asarray(blur ** 2, x.dtype), tuple(map(sg, potentials)),
                                  (c_xy, c_yx, c_xx, c_yy))
  return jnp.mean(f_ba - f_aa) + jnp.mean(g_ab - g_bb)


def sequence_divergence(a: jax.Array, b: jax.Array, config: SinkhornConfig = SinkhornConfig()
                        ) -> jax.Array:
  """The divergence between two batches of one-hot sequences [B, T, K], by `config.solver`."""
  if a.shape[1:] != b.shape[1:]:
    raise ValueError(f"sequence batches differ in (time, symbols): {a.shape} vs {b.shape}")
  if config.solver == "geomloss":
    return geomloss_divergence(flatten(a), flatten(b), config.blur, config.scaling)
  if config.solver != "ott":
    raise ValueError(f"unknown Sinkhorn solver {config.solver!r}; choose from {SOLVERS}")
  return sinkhorn_divergence(flatten(a), flatten(b), config)


class EmulationTask(NamedTuple):
  """What the loss needs besides the RNN's parameters (a pytree: passed as data, not baked in)."""
  hmm: hmm_lib.HMM
  noise_std: jax.Array


def make_loss(batch_size: int, length: int, *, initial_state_std: float = 1.0, burn_in: int = 0,
              sinkhorn: SinkhornConfig = SinkhornConfig(), temperature: float = 1.0):
  """`loss(params, hmm_symbols [B, T, K], key) -> (divergence, aux)` for jaxlab.core.make_train_step:
  the RNN emits `batch_size` fresh sequences and is compared with the HMM batch."""

  def loss(params, batch, key):
    hmm_symbols, noise_std = batch
    emissions = model.emit(params, key, batch_size, length, noise_std=noise_std,
                           initial_state_std=initial_state_std, burn_in=burn_in,
                           temperature=temperature)
    value = sequence_divergence(emissions.symbols, hmm_symbols, sinkhorn)
    return value, {"changes_per_sequence": jnp.mean(changes_per_sequence(emissions.symbols))}

  return loss


def hmm_batches(task: EmulationTask, key: jax.Array, batch_size: int, length: int):
  """A `batch_fn(data, key)`-style sampler: fresh one-hot HMM sequences every step."""
  symbols = hmm_lib.sample(key, task.hmm, batch_size, length)[1]
  return jax.nn.one_hot(symbols, task.hmm.emission.shape[1]), task.noise_std


def shuffle_time(key: jax.Array, symbols: jax.Array) -> jax.Array:
  """Permutes each sequence's time steps independently: same symbol counts, no temporal order."""
  keys = jax.random.split(key, symbols.shape[0])
  return jax.vmap(lambda k, s: jax.random.permutation(k, s, axis=0))(keys, symbols)


class Floor(NamedTuple):
  noise_floor_mean: float
  noise_floor_std: float
  shuffled_mean: float
  shuffled_std: float


def noise_floor(key: jax.Array, hmm: hmm_lib.HMM, batch_size: int, length: int, repeats: int = 8,
                sinkhorn: SinkhornConfig = SinkhornConfig()) -> Floor:
  """Divergence between two independent HMM batches (the floor), and between an HMM batch and a
  time-shuffled one (the control), each over `repeats` draws."""
  num_symbols = hmm.emission.shape[1]

  @jax.jit
  def one(key):
    k1, k2, k3 = jax.random.split(key, 3)
    a = jax.nn.one_hot(hmm_lib.sample(k1, hmm, batch_size, length)[1], num_symbols)
    b = jax.nn.one_hot(hmm_lib.sample(k2, hmm, batch_size, length)[1], num_symbols)
    return (sequence_divergence(a, b, sinkhorn),
            sequence_divergence(a, shuffle_time(k3, b), sinkhorn))

  values = np.array([[float(v) for v in one(k)] for k in jax.random.split(key, repeats)])
  return Floor(float(values[:, 0].mean()), float(values[:, 0].std(ddof=1)),
               float(values[:, 1].mean()), float(values[:, 1].std(ddof=1)))


def divergence_between(key: jax.Array, hmm: hmm_lib.HMM, other: hmm_lib.HMM, batch_size: int,
                       length: int, repeats: int = 8,
                       sinkhorn: SinkhornConfig = SinkhornConfig()) -> tuple[float, float]:
  """(mean, s.d.) over `repeats` draws of the divergence between a batch of `other`'s sequences and
  one of `hmm`'s: how a model that emits exactly `other` would score. Read against `noise_floor`, it
  gives the loss's resolution: an `other` within a few floor s.d. is one the loss cannot tell from
  the target at this batch size (e.g. `hmm_lib.without_rare_symbols(hmm)`)."""
  if other.emission.shape[1] != hmm.emission.shape[1]:
    raise ValueError(f"the HMMs emit {other.emission.shape[1]} and {hmm.emission.shape[1]} symbols")
  num_symbols = hmm.emission.shape[1]

  @jax.jit
  def one(key):
    k1, k2 = jax.random.split(key)
    a = jax.nn.one_hot(hmm_lib.sample(k1, other, batch_size, length)[1], num_symbols)
    b = jax.nn.one_hot(hmm_lib.sample(k2, hmm, batch_size, length)[1], num_symbols)
    return sequence_divergence(a, b, sinkhorn)

  values = np.array([float(one(k)) for k in jax.random.split(key, repeats)])
  return float(values.mean()), float(values.std(ddof=1))


# Exact laws are small and have no repeated points: solve them to convergence.
CONVERGED_SINKHORN = SinkhornConfig(threshold=1e-7, max_iterations=20_000)


class SequenceLaw(NamedTuple):
  symbols: np.ndarray  # [N, T, K] one-hot: every sequence of positive probability
  probabilities: np.ndarray  # [N], summing to 1


@jax.jit
def _sequence_logliks(hmm: hmm_lib.HMM, sequences: jax.Array) -> jax.Array:
  return jax.vmap(lambda s: hmm_lib.forward_filter(hmm, s).marginal_loglik)(sequences)


def sequence_law(hmm: hmm_lib.HMM, length: int, max_sequences: int = 1 << 16) -> SequenceLaw:
  """The HMM's exact law of `length`-symbol sequences: all K^T sequences scored by the forward
  algorithm, those of probability zero dropped. For short sequences only (K^T <= max_sequences)."""
  num_symbols = hmm.emission.shape[1]
  count = num_symbols ** length
  if count > max_sequences:
    raise ValueError(f"{num_symbols}^{length} = {count} sequences exceed max_sequences="
                     f"{max_sequences}: the exact law is for short sequences")
  sequences = np.stack(np.unravel_index(np.arange(count), (num_symbols,) * length), axis=1)
  loglik = _sequence_logliks(hmm, jnp.asarray(sequences, dtype=jnp.int32))
  probabilities = np.exp(np.asarray(loglik, dtype=np.float64))
  keep = probabilities > 0
  return SequenceLaw(np.eye(num_symbols)[sequences[keep]],
                     probabilities[keep] / probabilities[keep].sum())


def population_divergence(hmm: hmm_lib.HMM, other: hmm_lib.HMM, length: int,
                          sinkhorn: SinkhornConfig = CONVERGED_SINKHORN) -> float:
  """The debiased Sinkhorn divergence between the two HMMs' exact laws of `length`-symbol
  sequences (each sequence one point, weighted by its probability): what `divergence_between`
  estimates, without the finite batch's floor. For short sequences (`sequence_law`)."""
  if other.emission.shape[1] != hmm.emission.shape[1]:
    raise ValueError(f"the HMMs emit {other.emission.shape[1]} and {hmm.emission.shape[1]} symbols")
  a, b = sequence_law(other, length), sequence_law(hmm, length)
  return float(sinkhorn_divergence(flatten(jnp.asarray(a.symbols)), flatten(jnp.asarray(b.symbols)),
                                   sinkhorn, jnp.asarray(a.probabilities),
                                   jnp.asarray(b.probabilities)))
