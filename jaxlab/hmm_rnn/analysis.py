"""Reverse engineering a noise-driven RNN that emulates an HMM: fixed points, orbits, residency-time
regions, kick neurons, ablations and noise sweeps.

The network is jaxlab.hmm_rnn.model's bias-free ReLU RNN, h_t = ReLU(x_t W_in + h_{t-1} W_hh) with
x_t ~ N(0, sigma^2 I), logits_t = h_t W_out (row-vector convention). Every function takes its
params dict {"w_in", "w_hh", "w_out"}, so it applies to any snapshot of training.

Fixed and slow points (Sussillo & Barak 2013, Neural Comput. 25:626, sec. 2 and their eq. 2,
both from memory, here in discrete time): minimise the speed q(h) = |F(h) - h|^2 / 2 of the map
F(h) = ReLU(x W_in + h W_hh) at a constant input x from many starting states; q = 0 at a fixed
point, a local minimum with small q > 0 is a slow point. Points are then linearised: J = dF/dh =
diag(1[a > 0]) W_hh^T with a = x W_in + h W_hh (J[i, j] = dF_i/dh_j). The speed, uniqueness and
outlier filters follow google-research/computation-thru-dynamics' fixed_point_finder (`fp_tol`,
`unique_tol`, `outlier_tol`), ported to optax; see `find_fixed_points` for where they differ.

Torre, Viscione, Pompe, Grewe & Mante 2025 (arXiv 2510.25674, NeurIPS), their dynamics and
mechanistic-interpretability analyses (section numbers not checked), as read in their code
(github.com/EliaTorre/hmmrnn, scripts/statespace.py and scripts/mechint.py):
- statespace.py `generate_trajectories_no_input`: with the input off, 100 on-trajectory states run
  for 500 steps end at one point (the mean of the end states), the network's single fixed point;
  with noise, the top principal components of a long trajectory trace closed orbits around it.
  With no biases h = 0 is always an exact fixed point at zero input (`autonomous_endpoints`).
- mechint.py `residency_plot`: the residency time of a state is the number of steps, under fresh
  noise, until the argmax of the logits differs from the state's own argmax (averaged over 20
  futures, capped at 50 steps, noise s.d. 1). Regions: transition RT < 2, kick zone 2 <= RT <= 8,
  cluster RT > 8 with max softmax probability > 0.8 (`cutoffcol = 2`, `4 * cutoffcol`); states with
  RT > 8 and a lower peak probability fall in no region. Unstable eigenvalues are counted there as
  Re((lam - 1) / (lam + 1)) > 0, which is |lam| > 1.
- mechint.py `kprojected` / `ablation`: the noise-integrating population of kick neuron k is the 60
  units with the largest recurrent weight onto k (the union over a kick group, less the kick units
  themselves); `forward_inj` scales the recurrent input of kick neurons (`c`) and the noise input of
  the integrating populations (`cn`) by mu in [0, 2] (steps of 0.1). The kick neurons themselves
  were picked by hand there; `find_kick_neurons` (activity) and `kick_neurons_by_ablation`
  (causal) give documented criteria instead, checked on jaxlab.hmm_rnn.planted's known kick units.
- mechint.py `run_injected` / `compute_CE` (the paper's ablation figure, "# Critical pairs" against
  mu): with a group scaled by mu, one 1000-step noise-driven run, argmax output changes, and around
  each change the Jacobians of the 30 steps [change - 15, change + 15) and their eigenvalues lam,
  Moebius-mapped m = (lam - 1) / (lam + 1) (the unit circle to the imaginary axis); a critical
  pair is |Re m| < 0.1 (|lam| near 1) and Im m > 0.06 (rotating: one per complex-conjugate pair),
  counted over the window and averaged over changes (`critical_pairs_near_changes`). Where the
  scaled network changes output fewer than twice, the windows sit at the intact network's changes.
- mechint_evo.py / mechint.py's training evolution: per-epoch snapshots of the network, their
  noise-driven trajectories on the final network's PCs, showing when training switches into
  noise-driven switching (`summarise_snapshot`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.hmm_rnn import model, statistics

# Region labels of `classify_regions` (mechint.py's groups 1-3, plus states in none of them).
TRANSITION, KICK_ZONE, CLUSTER, UNCLASSIFIED = 0, 1, 2, 3
REGION_NAMES = ("transition", "kick_zone", "cluster", "unclassified")
SCALING_TARGETS = ("output", "recurrent_input", "noise_input")
READOUTS = ("argmax", "sample")


class FixedPoints(NamedTuple):
  points: np.ndarray  # [P, H] unique points, slowest first
  speeds: np.ndarray  # [P] q(h) = |F(h) - h|^2 / 2
  is_fixed: np.ndarray  # [P] bool: q < speed_tol (the others are slow points)
  jacobians: np.ndarray  # [P, H, H] dF_i/dh_j
  eigenvalues: np.ndarray  # [P, H] complex, by decreasing modulus
  num_merged: np.ndarray  # [P] how many optimised starts each point stands for


class AutonomousEndpoints(NamedTuple):
  endpoints: jax.Array  # [N, H] states after num_steps noise-free steps
  center: jax.Array  # [H] their mean (the paper's fixed-point estimate)
  spread: jax.Array  # largest pairwise distance between endpoints
  center_speed: jax.Array  # q(center) at zero input: ~0 if the endpoints sit on a fixed point


class PrincipalComponents(NamedTuple):
  mean: jax.Array  # [H]
  components: jax.Array  # [k, H] orthonormal rows; each row's largest-|.| entry is positive
  explained_variance: jax.Array  # [k] (denominator N - 1)
  explained_variance_ratio: jax.Array  # [k]


class Orbit(NamedTuple):
  winding: jax.Array  # net turns around center_2d
  shuffled_windings: jax.Array  # [num_shuffles] the same points in random orders: no-orbit controls
  trajectory_2d: jax.Array  # [T, 2] the noise-driven trajectory on the top-2 PCs
  center_2d: jax.Array  # [2] the projected point it winds around
  pcs: PrincipalComponents

  @property
  def shuffled_winding(self) -> jax.Array:
    """The controls' mean winding."""
    return jnp.mean(self.shuffled_windings)

  @property
  def z_score(self) -> jax.Array:
    """(winding - the controls' mean) / their s.d.: how far the visiting order, not the cloud's
    shape, carries the winding."""
    return (self.winding - jnp.mean(self.shuffled_windings)) / jnp.std(self.shuffled_windings)


class Regions(NamedTuple):
  labels: jax.Array  # [T] TRANSITION / KICK_ZONE / CLUSTER / UNCLASSIFIED
  fractions: jax.Array  # [4] fraction of states with each label, in REGION_NAMES order


class KickNeurons(NamedTuple):
  units: np.ndarray  # [top_k] indices, highest score first
  scores: np.ndarray  # [H] point-biserial correlation of activity with "kick zone or transition"
  mean_kick: np.ndarray  # [H] mean activity over kick-zone and transition states
  mean_cluster: np.ndarray  # [H] mean activity over cluster states


class CriticalPairs(NamedTuple):
  settings: np.ndarray  # [S] the scaling factors
  mean: np.ndarray  # [S] critical pairs per window round an output change, mean over the windows
  std: np.ndarray  # [S] their s.d. over the windows
  num_windows: np.ndarray  # [S] windows averaged (output changes whose window fits in the run)
  own_changes: np.ndarray  # [S] bool: windows at the scaled net's own changes (else the intact's)


class Switching(NamedTuple):
  settings: np.ndarray  # [S] the swept values (noise s.d. or scaling factor)
  changes_mean: np.ndarray  # [S] output changes per sequence, mean over the batch
  changes_std: np.ndarray  # [S] its s.d. over sequences
  frequencies: np.ndarray  # [S, K] symbol frequencies


# ----------------------------------------------------------------------------- validation


def _sizes(params: dict) -> tuple[int, int, int]:
  """(d, H, K), after checking the weights fit together."""
  for name in ("w_in", "w_hh", "w_out"):
    if name not in params or jnp.ndim(params[name]) != 2:
      raise ValueError(f"params[{name!r}] must be a matrix; params has {sorted(params)}")
  d, hidden = params["w_in"].shape
  if params["w_hh"].shape != (hidden, hidden) or params["w_out"].shape[0] != hidden:
    raise ValueError(f"inconsistent params: w_in {params['w_in'].shape}, w_hh "
                     f"{params['w_hh'].shape}, w_out {params['w_out'].shape}")
  return d, hidden, params["w_out"].shape[1]


def _check_states(name: str, states: jax.Array, hidden: int) -> None:
  if jnp.ndim(states) != 2 or states.shape[1] != hidden:
    raise ValueError(f"{name} must be [num_states, {hidden}] (hidden size {hidden}), "
                     f"got shape {jnp.shape(states)}")
  if states.shape[0] < 1:
    raise ValueError(f"{name} is empty")


def _constant_input(params: dict, x: jax.Array | None, dtype) -> jax.Array:
  d = params["w_in"].shape[0]
  if x is None:
    return jnp.zeros(d, dtype)
  x = jnp.asarray(x, dtype)
  if x.shape != (d,):
    raise ValueError(f"input must be a constant input vector of shape ({d},), got {x.shape}")
  return x


def _check_units(units, hidden: int) -> np.ndarray:
  units = np.asarray(units)
  if units.ndim != 1 or not np.issubdtype(units.dtype, np.integer):
    raise ValueError(f"units must be a 1-D array of integer unit indices, got {units!r}")
  if units.size and (units.min() < 0 or units.max() >= hidden):
    raise ValueError(f"units must lie in [0, {hidden}), got {units.tolist()}")
  return units


# ----------------------------------------------------------------------------- fixed points


def speed(params: dict, states: jax.Array, input: jax.Array | None = None) -> jax.Array:
  """q(h) = |F(h) - h|^2 / 2 for each of `states` [N, H] at a constant input (default zero)."""
  _, hidden, _ = _sizes(params)
  _check_states("states", states, hidden)
  x = _constant_input(params, input, states.dtype)
  return _speed(params, states, x)


def _speed(params, states, x):
  x = jnp.broadcast_to(x[None, :], (states.shape[0], x.shape[0]))
  return 0.5 * jnp.sum((model.step(params, states, x) - states) ** 2, axis=-1)


def jacobians(params: dict, states: jax.Array, input: jax.Array | None = None) -> jax.Array:
  """dF_i/dh_j at each of `states` [N, H] -> [N, H, H]; for the ReLU map diag(1[a > 0]) W_hh^T
  (jax's ReLU derivative is 0 at a = 0)."""
  _, hidden, _ = _sizes(params)
  _check_states("states", states, hidden)
  x = _constant_input(params, input, states.dtype)
  return _jacobians(params, jnp.asarray(states), x)


@jax.jit
def _jacobians(params, states, x):
  return jax.vmap(jax.jacobian(lambda h: model.step(params, h, x)))(states)


def count_unstable(eigenvalues: jax.Array) -> jax.Array:
  """Eigenvalues outside the unit circle per row; the paper's Re((lam-1)/(lam+1)) > 0 is the same
  test, since Re((lam-1)/(lam+1)) = (|lam|^2 - 1) / |lam+1|^2."""
  return jnp.sum(jnp.abs(eigenvalues) > 1.0, axis=-1)


def find_fixed_points(params: dict, initial_states: jax.Array, *, input: jax.Array | None = None,
                      optimizer: optax.GradientTransformation | None = None,
                      num_steps: int = 5000, speed_tol: float = 1e-8, unique_tol: float = 1e-3,
                      outlier_tol: float = float("inf")) -> FixedPoints:
  """Fixed and slow points of h -> ReLU(x W_in + h W_hh) found by minimising q from every start.

  All starts descend sum_n q(h_n) together under one lax.scan; the gradient of that sum for point n
  is dq/dh_n alone and Adam is elementwise, so each start is optimised independently. The default
  optimizer is Adam at learning rate 5e-2 for the first half of num_steps, then decaying
  exponentially to 1e-6 (computation-thru-dynamics decays too): Adam's steps have about the
  learning rate's size, so each coordinate can travel ~0.025 num_steps and then settle to ~1e-6.
  Its b2 = 0.99 (ctd: 0.999) shortens the memory of the large early gradients, which otherwise
  stall the steps as the gradient shrinks (a start 20 away: 2000 steps reach q ~ 1e-4 at 0.999,
  ~1e-29 at 0.99).

  Then, as in computation-thru-dynamics: (1) outliers, here optimised points farther than
  outlier_tol from every initial state (the region the network visits; ctd instead measures the
  distance to the nearest other fixed point), are dropped; (2) points within unique_tol of a slower
  one are merged into it (greedy, slowest first); (3) every kept point gets its Jacobian and
  eigenvalues. Unlike ctd's fp_tol, points with q >= speed_tol are kept and flagged
  `is_fixed = False`: these are the slow points. Raises if every start is an outlier.
  """
  _, hidden, _ = _sizes(params)
  _check_states("initial_states", initial_states, hidden)
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  if unique_tol < 0 or speed_tol <= 0 or outlier_tol <= 0:
    raise ValueError(f"need speed_tol > 0, unique_tol >= 0 and outlier_tol > 0, got "
                     f"{speed_tol}, {unique_tol}, {outlier_tol}")
  initial_states = jnp.asarray(initial_states)
  x = _constant_input(params, input, initial_states.dtype)
  if optimizer is None:
    half = num_steps // 2
    optimizer = optax.adam(optax.exponential_decay(
        5e-2, transition_steps=max(num_steps - half, 1), decay_rate=2e-5, transition_begin=half),
        b2=0.99)

  @jax.jit
  def minimise(params, states, x):
    total = lambda h: jnp.sum(_speed(params, h, x))

    def one(carry, _):
      h, opt_state = carry
      updates, opt_state = optimizer.update(jax.grad(total)(h), opt_state, h)
      return (optax.apply_updates(h, updates), opt_state), None

    (h, _), _ = jax.lax.scan(one, (states, optimizer.init(states)), None, length=num_steps)
    return h, _speed(params, h, x)

  points, speeds = (np.asarray(a) for a in minimise(params, initial_states, x))
  start = np.asarray(initial_states, points.dtype)

  finite = np.all(np.isfinite(points), axis=1) & np.isfinite(speeds)
  if np.isfinite(outlier_tol):
    finite &= np.array([_distances(p, start).min() <= outlier_tol for p in points])
  if not finite.any():
    raise ValueError(f"every optimised start diverged or lies beyond outlier_tol={outlier_tol} "
                     "of the initial states")
  points, speeds = points[finite], speeds[finite]

  order = np.argsort(speeds, kind="stable")
  points, speeds = points[order], speeds[order]
  representative = np.full(len(points), -1)
  for i in range(len(points)):  # slowest first: each cluster is represented by its slowest member
    if representative[i] < 0:
      representative[(representative < 0) & (_distances(points[i], points) <= unique_tol)] = i
  keep = np.flatnonzero(representative == np.arange(len(points)))
  num_merged = np.array([np.sum(representative == i) for i in keep])
  points, speeds = points[keep], speeds[keep]

  jac = np.asarray(jacobians(params, jnp.asarray(points), x))
  eig = np.linalg.eigvals(jac)
  eig = np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=-1, kind="stable"), axis=-1)
  return FixedPoints(points, speeds, speeds < speed_tol, jac, eig, num_merged)


def _distances(point: np.ndarray, points: np.ndarray) -> np.ndarray:
  # One row at a time: an [N, N, H] difference array would not fit for N ~ 1000, H ~ 150, and
  # |a|^2 + |b|^2 - 2 a.b loses the small distances the tolerances are about.
  return np.sqrt(np.sum((points - point[None, :]) ** 2, axis=1))


def autonomous_endpoints(params: dict, states: jax.Array,
                         num_steps: int = 500) -> AutonomousEndpoints:
  """Runs the noise-free map h -> ReLU(h W_hh) for num_steps from each of `states` [N, H] (on-
  trajectory states, as statespace.py does) and reports where they end and how far apart."""
  _, hidden, _ = _sizes(params)
  _check_states("states", states, hidden)
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps}")
  return _autonomous(params, jnp.asarray(states), num_steps)


@functools.partial(jax.jit, static_argnames="num_steps")
def _autonomous(params, states, num_steps):
  zero = jnp.zeros((states.shape[0], params["w_in"].shape[0]), states.dtype)
  end = jax.lax.fori_loop(0, num_steps, lambda _, h: model.step(params, h, zero), states)
  center = jnp.mean(end, axis=0)
  farthest = lambda e: jnp.max(jnp.sum((end - e[None, :]) ** 2, axis=1))  # row by row, as above
  spread = jnp.sqrt(jnp.max(jax.lax.map(farthest, end)))
  center_speed = _speed(params, center[None, :], jnp.zeros(zero.shape[1], states.dtype))[0]
  return AutonomousEndpoints(end, center, spread, center_speed)


# ----------------------------------------------------------------------------- orbits


def principal_components(states: jax.Array, num_components: int) -> PrincipalComponents:
  """PCA of `states` [N, H] by SVD of the centred data (as sklearn: variances over N - 1)."""
  if jnp.ndim(states) != 2 or states.shape[0] < 2:
    raise ValueError(f"states must be [num_states >= 2, dim], got shape {jnp.shape(states)}")
  if not 1 <= num_components <= min(states.shape):
    raise ValueError(f"num_components must be in [1, {min(states.shape)}], got {num_components}")
  return _pca(jnp.asarray(states), num_components)


@functools.partial(jax.jit, static_argnames="num_components")
def _pca(states, num_components):
  mean = jnp.mean(states, axis=0)
  _, singular, vt = jnp.linalg.svd(states - mean[None, :], full_matrices=False)
  vt = vt[:num_components]
  # SVD signs are arbitrary: fix them so repeated fits (snapshots, seeds) are comparable.
  signs = jnp.sign(jnp.take_along_axis(vt, jnp.argmax(jnp.abs(vt), axis=1)[:, None], axis=1))
  variance = singular ** 2 / (states.shape[0] - 1)
  return PrincipalComponents(mean, vt * signs, variance[:num_components],
                             variance[:num_components] / jnp.sum(variance))


def project(pcs: PrincipalComponents, states: jax.Array) -> jax.Array:
  """Coordinates of `states` [..., H] on the components -> [..., k]."""
  if jnp.shape(states)[-1:] != pcs.mean.shape:
    raise ValueError(f"states must end in dimension {pcs.mean.shape[0]}, got {jnp.shape(states)}")
  mean = pcs.mean.reshape((1,) * (jnp.ndim(states) - 1) + pcs.mean.shape)
  return (states - mean) @ pcs.components.T


def winding_number(trajectory: jax.Array, center: jax.Array) -> jax.Array:
  """Net number of turns of a planar `trajectory` [T, 2] around `center` [2]: the sum of its angle
  increments, each wrapped to (-pi, pi], over 2 pi (counter-clockwise positive). Exact for a
  closed path sampled finely enough that no step turns by pi or more."""
  if jnp.ndim(trajectory) != 2 or trajectory.shape[1] != 2 or trajectory.shape[0] < 2:
    raise ValueError(f"trajectory must be [T >= 2, 2], got shape {jnp.shape(trajectory)}")
  if jnp.shape(center) != (2,):
    raise ValueError(f"center must have shape (2,), got {jnp.shape(center)}")
  return _winding(jnp.asarray(trajectory), jnp.asarray(center))


@jax.jit
def _winding(trajectory, center):
  rel = trajectory - center[None, :]
  angle = jnp.arctan2(rel[:, 1], rel[:, 0])
  step = jnp.diff(angle)
  step = jnp.mod(step + jnp.pi, 2 * jnp.pi) - jnp.pi
  return jnp.sum(step) / (2 * jnp.pi)


def orbit_winding(params: dict, key: jax.Array, center: jax.Array, *, noise_std: float = 1.0,
                  length: int = 2000, burn_in: int = 100, num_shuffles: int = 20,
                  pcs: PrincipalComponents | None = None) -> Orbit:
  """Winding number of one noise-driven trajectory around `center` [H] (e.g. the autonomous fixed
  point), both projected on the top-2 PCs (of this trajectory unless `pcs` is given).

  A cloud of points that merely surrounds the centre also winds: its angle steps are random and
  their sum drifts like a random walk, s.d. ~0.3 sqrt(T) turns for independent points (an
  untrained model.init net, H = 150, d = 100, gave 26 turns in 2000 steps). Hence the control
  `shuffled_windings`, the same points visited in num_shuffles random orders: an orbit's winding
  should stand well clear of them (`Orbit.z_score`), with the same sign under independent noise
  draws (an untrained net's sign is random)."""
  if num_shuffles < 2:
    raise ValueError(f"num_shuffles must be >= 2 (their s.d. is the control), got {num_shuffles}")
  d, hidden, _ = _sizes(params)
  if jnp.shape(center) != (hidden,):
    raise ValueError(f"center must be a hidden state of shape ({hidden},), got {jnp.shape(center)}")
  k_noise, k_order = jax.random.split(key)
  inputs = noise_std * jax.random.normal(k_noise, (1, burn_in + length, d))
  hidden_states = model.run(params, inputs)[0, burn_in:]
  if pcs is None:
    pcs = principal_components(hidden_states, 2)
  if pcs.components.shape[0] < 2:
    raise ValueError("orbit_winding needs at least 2 principal components")
  trajectory = project(pcs, hidden_states)[:, :2]
  center_2d = project(pcs, center[None, :])[0, :2]
  orders = jax.vmap(lambda k: jax.random.permutation(k, length))(
      jax.random.split(k_order, num_shuffles))
  shuffled = jax.vmap(lambda order: _winding(trajectory[order], center_2d))(orders)
  return Orbit(winding_number(trajectory, center_2d), shuffled, trajectory, center_2d, pcs)


# ----------------------------------------------------------------------------- residency times


def residency_times(sequence: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Along one observed sequence, the steps from t until the output first differs from the output
  at t: (times [T] int, censored [T] bool). `sequence` is [T] integer symbols, or [T, K] logits /
  one-hot (argmax taken). Where the output never changes again, times is T - t, a lower bound,
  and censored is True."""
  if jnp.ndim(sequence) == 2:
    sequence = jnp.argmax(sequence, axis=-1)
  elif jnp.ndim(sequence) != 1 or not jnp.issubdtype(jnp.asarray(sequence).dtype, jnp.integer):
    raise ValueError(f"sequence must be [T] integer symbols or [T, K] scores, got shape "
                     f"{jnp.shape(sequence)} and dtype {jnp.asarray(sequence).dtype}")
  if sequence.shape[0] < 1:
    raise ValueError("sequence is empty")
  return _residency(jnp.asarray(sequence))


@jax.jit
def _residency(sequence):
  length = sequence.shape[0]
  changes = sequence[1:] != sequence[:-1]  # changes[t]: the output at t + 1 differs from t's

  def back(next_change, inputs):
    t, changed = inputs
    next_change = jnp.where(changed, t + 1, next_change)
    return next_change, next_change

  _, nxt = jax.lax.scan(back, jnp.asarray(length), (jnp.arange(length - 1), changes), reverse=True)
  nxt = jnp.concatenate([nxt, jnp.full((1,), length, nxt.dtype)])
  return nxt - jnp.arange(length), nxt == length


def expected_residency_times(params: dict, key: jax.Array, states: jax.Array, *,
                             noise_std: float = 1.0, num_samples: int = 20,
                             max_steps: int = 50) -> jax.Array:
  """mechint.py's residency time of each of `states` [N, H]: from the state, run num_samples
  futures under fresh noise and count the steps until argmax(logits) differs from the state's own
  argmax (max_steps if it never does), averaged over the futures -> [N] floats in [1, max_steps]."""
  d, hidden, _ = _sizes(params)
  _check_states("states", states, hidden)
  if num_samples < 1 or max_steps < 1:
    raise ValueError(f"num_samples and max_steps must be >= 1, got {num_samples}, {max_steps}")
  return _expected_residency(params, key, jnp.asarray(states), noise_std, num_samples, max_steps)


@functools.partial(jax.jit, static_argnames=("num_samples", "max_steps"))
def _expected_residency(params, key, states, noise_std, num_samples, max_steps):
  n, hidden = states.shape
  d = params["w_in"].shape[0]
  start = jnp.argmax(states @ params["w_out"], axis=-1)
  start = jnp.broadcast_to(start[:, None], (n, num_samples))
  h0 = jnp.broadcast_to(states[:, None, :], (n, num_samples, hidden))
  first0 = jnp.full((n, num_samples), max_steps)

  def one(carry, inputs):
    h, first = carry
    k, step_key = inputs
    h = model.step(params, h, noise_std * jax.random.normal(step_key, (n, num_samples, d),
                                                            states.dtype))
    changed = jnp.argmax(h @ params["w_out"], axis=-1) != start
    first = jnp.where(changed & (first == max_steps), k, first)  # keep the first change
    return (h, first), None

  steps = jnp.arange(1, max_steps + 1)
  (_, first), _ = jax.lax.scan(one, (h0, first0), (steps, jax.random.split(key, max_steps)))
  return jnp.mean(first.astype(states.dtype), axis=1)


def max_probability(params: dict, states: jax.Array) -> jax.Array:
  """max_k softmax(h W_out)_k for each of `states` [..., H]: the cluster criterion's confidence."""
  return jnp.max(jax.nn.softmax(states @ params["w_out"], axis=-1), axis=-1)


def classify_regions(residency: jax.Array, max_prob: jax.Array, *, transition_below: float = 2.0,
                     kick_zone_max: float = 8.0, cluster_min_prob: float = 0.8) -> Regions:
  """Labels each state transition (RT < 2), kick zone (2 <= RT <= 8), cluster (RT > 8 and max
  softmax probability > 0.8) or unclassified (RT > 8, less confident), with mechint.py's thresholds
  as defaults, and the fraction of states in each."""
  if jnp.ndim(residency) != 1 or jnp.shape(max_prob) != jnp.shape(residency):
    raise ValueError(f"residency and max_prob must be 1-D of equal length, got shapes "
                     f"{jnp.shape(residency)} and {jnp.shape(max_prob)}")
  labels = jnp.where(residency < transition_below, TRANSITION,
                     jnp.where(residency <= kick_zone_max, KICK_ZONE,
                               jnp.where(max_prob > cluster_min_prob, CLUSTER, UNCLASSIFIED)))
  fractions = jnp.mean(jax.nn.one_hot(labels, len(REGION_NAMES)), axis=0)
  return Regions(labels, fractions)


# ----------------------------------------------------------------------------- kick neurons


def find_kick_neurons(activity: jax.Array, labels: jax.Array, top_k: int = 3) -> KickNeurons:
  """Units whose activity marks the kick zones and transitions: the top_k by the point-biserial
  correlation between a unit's activity a_i(t) and z(t) = 1[state t is a kick zone or transition],
  z(t) = 0 in clusters, over the states in one of those regions (unclassified states are left out).

  The correlation is high only when a unit is reliably active in kick zones / transitions and
  near-silent in clusters (a loud unit active everywhere scores ~0, as does one active in
  clusters), and it does not depend on the unit's scale. `activity` [T, H] is hidden states (or
  pre-activations), `labels` [T] from `classify_regions`."""
  if jnp.ndim(activity) != 2 or jnp.shape(labels) != (activity.shape[0],):
    raise ValueError(f"activity must be [T, H] and labels [T], got shapes {jnp.shape(activity)} "
                     f"and {jnp.shape(labels)}")
  if not 1 <= top_k <= activity.shape[1]:
    raise ValueError(f"top_k must be in [1, {activity.shape[1]}], got {top_k}")
  # numpy: the masks select data-dependent numbers of states, which jit cannot do.
  activity, labels = np.asarray(activity, dtype=float), np.asarray(labels)
  kick = (labels == TRANSITION) | (labels == KICK_ZONE)
  cluster = labels == CLUSTER
  if not kick.any() or not cluster.any():
    raise ValueError(f"need both kick-zone/transition and cluster states, got {int(kick.sum())} "
                     f"and {int(cluster.sum())}")
  a = activity[kick | cluster]
  z = kick[kick | cluster].astype(float)
  a_c = a - a.mean(axis=0)
  z_c = z - z.mean()
  norm = np.sqrt(np.sum(a_c * a_c, axis=0) * np.sum(z_c * z_c))
  scores = np.divide(z_c @ a_c, norm, out=np.zeros_like(norm), where=norm > 0)  # constant: 0
  units = np.argsort(-scores, kind="stable")[:top_k]
  return KickNeurons(units, scores, activity[kick].mean(axis=0), activity[cluster].mean(axis=0))


class AblationEffects(NamedTuple):
  units: np.ndarray  # [top_k] the units whose silencing cuts switching most, strongest first
  baseline: float  # output changes per sequence of the intact network
  changes: np.ndarray  # [H] changes per sequence with each unit's recurrent output silenced


def kick_neurons_by_ablation(params: dict, key: jax.Array, top_k: int = 3, *, batch: int = 512,
                             length: int = 100, noise_std: float = 1.0, burn_in: int = 20,
                             readout: str = "sample") -> AblationEffects:
  """A causal definition of kick neurons: silence one unit's recurrent output (w_hh[u, :] = 0; its
  readout weights stay, so it still votes on the symbol but can no longer push the network) and
  count the output changes per sequence; the kick neurons are the top_k units whose silencing
  lowers switching most. Common random numbers across units, so differences are not sampling
  noise. `find_kick_neurons` is the correlational counterpart (activity in kick zones)."""
  _check_switching(params, batch, length, burn_in, readout)
  _, hidden, _ = _sizes(params)
  if not 1 <= top_k <= hidden:
    raise ValueError(f"top_k must be in [1, {hidden}], got {top_k}")
  baseline = float(jnp.mean(_switching(params, key, noise_std, batch, length, burn_in,
                                       readout)[0]))

  def silenced(unit):
    ablated = dict(params, w_hh=params["w_hh"].at[unit, :].set(0.0))
    return jnp.mean(_switching(ablated, key, noise_std, batch, length, burn_in, readout)[0])

  changes = np.asarray(jax.lax.map(silenced, jnp.arange(hidden)))
  return AblationEffects(np.argsort(changes, kind="stable")[:top_k], baseline, changes)


def noise_integrating_populations(params: dict, kick_units, top_k: int = 60) -> np.ndarray:
  """mechint.py's `kprojected` union: for each kick unit k, the top_k units j with the largest
  recurrent weight onto k (w_hh[j, k] here, W_hh[k, j] in PyTorch's layout), pooled over the kick
  units and less the kick units themselves -> sorted indices. The paper used top_k = 60 for the
  population and the complement of the top-35 sets as its control group."""
  _, hidden, _ = _sizes(params)
  kick_units = _check_units(kick_units, hidden)
  if not 1 <= top_k <= hidden:
    raise ValueError(f"top_k must be in [1, {hidden}], got {top_k}")
  w = np.asarray(params["w_hh"])
  chosen = set()
  for k in kick_units:
    chosen.update(np.argsort(-w[:, k], kind="stable")[:top_k].tolist())
  return np.array(sorted(chosen - set(kick_units.tolist())), dtype=int)


# ----------------------------------------------------------------------------- ablation, sweeps


def scale_units(params: dict, units, factor, *, target: str | Sequence[str]) -> dict:
  """Params with the weights of `units` selected by `target` multiplied by `factor`:

    "output":          w_hh[units, :] and w_out[units, :], everything the units send (to the
                       network and the readout); factor 0 removes their influence entirely.
    "recurrent_input": w_hh[:, units], the recurrent drive they receive (mechint.py's `c`,
                       used there on kick neurons).
    "noise_input":     w_in[:, units], the noise they receive (mechint.py's `cn`, used there on
                       the noise-integrating populations).

  A tuple applies several (w_hh[units, units] then scales by factor^2 for output +
  recurrent_input). `factor` may be traced, so sweeps can vmap or jit over it."""
  _, hidden, _ = _sizes(params)
  units = _check_units(units, hidden)
  targets = (target,) if isinstance(target, str) else tuple(target)
  unknown = [t for t in targets if t not in SCALING_TARGETS]
  if unknown or not targets:
    raise ValueError(f"unknown scaling target(s) {unknown or targets}; "
                     f"choose from {SCALING_TARGETS}")
  return _scale_units(params, jnp.asarray(units, int), factor, frozenset(targets))


@functools.partial(jax.jit, static_argnames="targets")
def _scale_units(params, units, factor, targets):
  dtype = params["w_hh"].dtype
  scale = jnp.ones(params["w_hh"].shape[0], dtype).at[units].set(jnp.asarray(factor, dtype))
  out = dict(params)
  if "output" in targets:
    out["w_hh"] = out["w_hh"] * scale[:, None]
    out["w_out"] = out["w_out"] * scale[:, None]
  if "recurrent_input" in targets:
    out["w_hh"] = out["w_hh"] * scale[None, :]
  if "noise_input" in targets:
    out["w_in"] = out["w_in"] * scale[None, :]
  return out


@functools.partial(jax.jit, static_argnames=("batch", "length", "burn_in", "readout"))
def _switching(params, key, noise_std, batch, length, burn_in, readout):
  emissions = model.emit(params, key, batch, length, noise_std=noise_std, burn_in=burn_in)
  scores = emissions.logits if readout == "argmax" else emissions.symbols
  symbols = jnp.argmax(scores, axis=-1)  # [B, T]
  return (statistics.changes_per_sequence(symbols),
          statistics.symbol_frequencies(symbols, params["w_out"].shape[1]))


def _check_switching(params, batch, length, burn_in, readout):
  _sizes(params)
  if batch < 1 or length < 2 or burn_in < 0:
    raise ValueError(f"need batch >= 1, length >= 2 and burn_in >= 0, got {batch}, {length}, "
                     f"{burn_in}")
  if readout not in READOUTS:
    raise ValueError(f"unknown readout {readout!r}; choose from {READOUTS}")


def _collect(settings, results) -> Switching:
  changes = np.stack([np.asarray(c, dtype=float) for c, _ in results])
  return Switching(np.asarray(settings, dtype=float), changes.mean(axis=1), changes.std(axis=1),
                   np.stack([np.asarray(f) for _, f in results]))


def noise_sweep(params: dict, key: jax.Array, noise_stds: Sequence[float], *, batch: int = 256,
                length: int = 100, burn_in: int = 20, readout: str = "sample") -> Switching:
  """Output changes per sequence and symbol frequencies at each input-noise s.d. The same key (and
  so the same standard-normal draws, rescaled) serves every level, so differences between levels
  are not sampling noise.

  readout "sample" counts the Gumbel-sampled symbols the model emits (what the emission statistics
  count); "argmax" the network's deterministic output argmax(logits) (mechint.py's). Note that the
  bias-free ReLU net is positively homogeneous: from h0 = 0, input sigma x gives hidden states
  sigma h and logits sigma l exactly, so the argmax readout is the same at every sigma > 0 (under
  common random numbers), and the sampled readout at noise sigma is the unit-noise network sampled
  at temperature 1 / sigma. A noise sweep of this model is therefore a sweep of the logits' scale
  against the Gumbel noise, not of the dynamics. At sigma = 0 the logits are 0: argmax reads
  symbol 0 throughout, sampling a uniform symbol."""
  _check_switching(params, batch, length, burn_in, readout)
  results = [_switching(params, key, s, batch, length, burn_in, readout) for s in noise_stds]
  return _collect(noise_stds, results)


def changes_per_sequence_under_scaling(params: dict, key: jax.Array, units,
                                       factors: Sequence[float], *, target: str | Sequence[str],
                                       batch: int = 256, length: int = 100, noise_std: float = 1.0,
                                       burn_in: int = 20, readout: str = "argmax") -> Switching:
  """Output changes per sequence and symbol frequencies with `units` scaled by each factor (see
  `scale_units` for `target`; mechint.py sweeps mu in [0, 2] by 0.1), common random numbers across
  factors as in `noise_sweep`."""
  _check_switching(params, batch, length, burn_in, readout)
  results = [_switching(scale_units(params, units, f, target=target), key, noise_std, batch, length,
                        burn_in, readout) for f in factors]
  return _collect(factors, results)


# ----------------------------------------------------------------------------- critical pairs


def moebius(eigenvalues: jax.Array) -> jax.Array:
  """m = (lam - 1) / (lam + 1): the unit circle onto the imaginary axis, with Re m = (|lam|^2 - 1) /
  |lam + 1|^2 and Im m = 2 Im(lam) / |lam + 1|^2 (on the circle, i tan(angle / 2))."""
  return (eigenvalues - 1) / (eigenvalues + 1)


def count_critical_pairs(eigenvalues: jax.Array, *, real_tol: float = 0.1,
                         imag_min: float = 0.06) -> jax.Array:
  """Eigenvalues per row with |Re m| < real_tol and Im m > imag_min (m = `moebius(lam)`): near the
  unit circle and rotating, one per complex-conjugate pair (the thresholds of mechint.py's
  `compute_CE`)."""
  m = moebius(jnp.asarray(eigenvalues))
  return jnp.sum((jnp.abs(m.real) < real_tol) & (m.imag > imag_min), axis=-1)


def critical_pairs_near_changes(params: dict, key: jax.Array, units, factors: Sequence[float], *,
                                target: str | Sequence[str], length: int = 1000,
                                noise_std: float = 1.0, burn_in: int = 20, half_window: int = 15,
                                real_tol: float = 0.1, imag_min: float = 0.06,
                                jacobian_input: str = "next") -> CriticalPairs:
  """The paper's ablation measure (mechint.py `run_injected` + `compute_CE`): with `units` scaled
  by each factor (`scale_units`), one noise-driven run of `length` steps after `burn_in` (the same
  noise for every factor); at each argmax output change t (y_{t+1} != y_t) whose window fits, the
  Jacobians of the 2 * half_window steps [t - half_window, t + half_window) and their critical pairs
  (`count_critical_pairs`), summed over the window; mean and s.d. over the windows.

  The Jacobian at state h_t is that of the map at the input that follows it, x_{t+1} (the map that
  moves h_t on; `jacobian_input="next"`); mechint.py pairs h_t with x_t, the input that produced it
  (`jacobian_input="producing"`: a mask ReLU'(h_t W_hh + x_t W_in) of no actual step). A scaled
  network with fewer than two output changes is measured in windows at the intact network's
  changes, as there."""
  _check_switching(params, 1, length, burn_in, "argmax")
  if jacobian_input not in ("next", "producing"):
    raise ValueError(f"jacobian_input must be 'next' or 'producing', got {jacobian_input!r}")
  if half_window < 1 or 2 * half_window > length:
    raise ValueError(f"half_window must be in [1, length / 2 = {length // 2}], got {half_window}")
  d, _, _ = _sizes(params)
  inputs = noise_std * jax.random.normal(key, (1, burn_in + length + 1, d))

  def run(p):
    states = model.run(p, inputs)[0, burn_in:]  # h_t for t = 0..length (one spare)
    outputs = np.asarray(jnp.argmax(states[:length] @ p["w_out"], axis=-1))
    changes = np.nonzero(outputs[1:] != outputs[:-1])[0]
    return states, changes[(changes >= half_window) & (changes + half_window <= length)]

  _, intact_changes = run(params)
  per_factor = []  # (mean, s.d., windows, own changes)
  for factor in factors:
    scaled = scale_units(params, units, factor, target=target)
    states, changes = run(scaled)
    own = len(changes) >= 2
    centres = changes if own else intact_changes
    steps = (centres[:, None] + np.arange(-half_window, half_window)[None, :]).reshape(-1)
    if steps.size == 0:
      per_factor.append((np.nan, np.nan, 0, own))
      continue
    next_inputs = inputs[0, burn_in + (jacobian_input == "next"):][steps]
    jac = np.asarray(_jacobians_along(scaled, states[steps], next_inputs), dtype=np.float64)
    critical = np.asarray(count_critical_pairs(np.linalg.eigvals(jac), real_tol=real_tol,
                                               imag_min=imag_min))
    per_window = critical.reshape(len(centres), 2 * half_window).sum(axis=1)
    per_factor.append((per_window.mean(), per_window.std(), len(centres), own))
  means, stds, counts, owns = zip(*per_factor)
  return CriticalPairs(np.asarray(factors, dtype=float), np.asarray(means, dtype=float),
                       np.asarray(stds, dtype=float), np.asarray(counts), np.asarray(owns))


# ----------------------------------------------------------------------------- training snapshots


class Snapshot(NamedTuple):
  changes_mean: float  # output changes per sequence (Gumbel-sampled, after burn_in noisy steps)
  cluster_fraction: float  # fraction of on-trajectory states in clusters (`classify_regions`)
  mean_residency: float  # mean expected residency time of those states
  unstable_fraction: float  # fraction of those states whose Jacobian has an eigenvalue |lam| > 1
  trajectory_2d: np.ndarray  # [T, 2] the noise-driven trajectory on `pcs`' top-2 components


def summarise_snapshot(params: dict, key: jax.Array, *, noise_std: float = 1.0, length: int = 30,
                       batch: int = 1024, num_states: int = 1000, burn_in: int = 100,
                       pcs: PrincipalComponents | None = None) -> Snapshot:
  """What one training snapshot does (Torre et al.'s training evolution, mechint_evo.py, read with
  this module's measures): its switching rate, how much of its noise-driven trajectory sits in
  clusters (RT > 8, confident), the mean residency time, how often the local linearisation is
  unstable (mechint.py counts unstable eigenvalues along trajectories), and the trajectory itself
  on `pcs` (e.g. the final network's components, so snapshots share axes). The same key for every
  snapshot gives common random numbers, so differences between snapshots are not sampling noise."""
  d, hidden, _ = _sizes(params)
  if num_states < 2 or burn_in < 0:
    raise ValueError(f"need num_states >= 2 and burn_in >= 0, got {num_states}, {burn_in}")
  k_switch, k_traj, k_rt = jax.random.split(key, 3)
  changes, _ = _switching(params, k_switch, noise_std, batch, length, burn_in, "sample")
  inputs = noise_std * jax.random.normal(k_traj, (1, burn_in + num_states, d))
  states = model.run(params, inputs)[0, burn_in:]
  residency = expected_residency_times(params, k_rt, states, noise_std=noise_std)
  regions = classify_regions(residency, max_probability(params, states))
  # the Jacobian at a state is that of the map at the input that follows it: sample one
  next_inputs = noise_std * jax.random.normal(jax.random.fold_in(k_traj, 1), (num_states, d))
  radius = _spectral_radii(params, states, next_inputs)
  if pcs is None:
    pcs = principal_components(states, 2)
  return Snapshot(float(jnp.mean(changes)), float(regions.fractions[CLUSTER]),
                  float(jnp.mean(residency)), float(np.mean(radius > 1.0)),
                  np.asarray(project(pcs, states)[:, :2]))


def _spectral_radii(params, states, inputs):
  return np.max(np.abs(np.linalg.eigvals(np.asarray(_jacobians_along(params, states, inputs),
                                                    dtype=np.float64))), axis=-1)


@jax.jit
def _jacobians_along(params, states, inputs):
  return jax.vmap(lambda h, x: jax.jacobian(lambda s: model.step(params, s, x))(h))(states, inputs)
