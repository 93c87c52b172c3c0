r"""Self-attention as interacting particles on the sphere (Geshkovski, Letrouit, Polyanskiy & Rigollet,
"A mathematical perspective on Transformers", 2023, eqs. (SA) and (USA); Rigollet, "The mean-field
dynamics of Transformers", 2025).

Tokens $x_i \in S^{d-1}$, $i = 1..n$, with $Q = K = V = I$ and temperature $\beta$; $P_x y = y - \langle x, y
\rangle x$ projects onto the tangent space at $x$ (the layer norm of the papers):

  (SA)   $\dot x_i = P_{x_i}\big(\frac{1}{Z_i} \sum_j e^{\beta \langle x_i, x_j\rangle} x_j\big)$,
         $Z_i = \sum_k e^{\beta\langle x_i, x_k\rangle}$;
  (USA)  $\dot x_i = P_{x_i}\big(\frac1n \sum_j e^{\beta \langle x_i, x_j\rangle} x_j\big)$.

Both are (rescaled) Riemannian gradient ascents of the interaction energy
$E = \frac{1}{2\beta} \sum_{i,j} e^{\beta\langle x_i, x_j\rangle}$: its Euclidean gradient in $x_i$ is
$\sum_j e^{\beta\langle x_i,x_j\rangle} x_j$ (the pair $(i,j)$ and $(j,i)$ each contribute half), so USA is
$\dot x_i = \frac1n \mathrm{grad}_i E$ and SA is $\dot x_i = \mathrm{grad}_i E / Z_i$, whence
$\dot E = n \sum_i \|\dot x_i\|^2$ (USA) and $\dot E = \sum_i Z_i \|\dot x_i\|^2$ (SA), both $\ge 0$.

Integration is classical RK4 in the ambient space under `lax.scan`. The exact flow stays on the sphere
(the field is tangent), so RK4 leaves it only by its local truncation error $O(dt^5)$ per step; with
`renormalize=True` each step is followed by $x_i \leftarrow x_i / |x_i|$, a retraction that moves the
point by that same $O(dt^5)$ and so keeps the method fourth order while pinning $|x_i| = 1$ exactly.

This module is the simulation side; the closed forms it is tested against live in
`theory/attention/particles.py`, derived independently.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

DYNAMICS = ("sa", "usa")


def tangent_projection(x_NxD, y_NxD):
  """P_{x_i} y_i = y_i - <x_i, y_i> x_i, row by row."""
  return y_NxD - jnp.sum(x_NxD * y_NxD, axis=-1, keepdims=True) * x_NxD


def gram(x_NxD):
  """<x_i, x_j> for all pairs."""
  return x_NxD @ jnp.swapaxes(x_NxD, -1, -2)


def attention_weights(x_NxD, beta, dynamics: str = "sa"):
  """The interaction matrix: softmax rows e^{beta <x_i,x_j>} / Z_i (SA) or e^{beta <x_i,x_j>} / n (USA)."""
  logits_NxN = beta * gram(x_NxD)
  if dynamics == "sa":
    return jax.nn.softmax(logits_NxN, axis=-1)
  if dynamics == "usa":
    return jnp.exp(logits_NxN) / x_NxD.shape[-2]
  raise ValueError(f"dynamics must be one of {DYNAMICS}, got {dynamics!r}")


def attention_output(x_NxD, beta, dynamics: str = "sa"):
  """One attention layer with Q = K = V = I, before the projection: y_i = sum_j w_ij x_j."""
  return attention_weights(x_NxD, beta, dynamics) @ x_NxD


def velocity(x_NxD, beta, dynamics: str = "sa"):
  """The vector field of (SA) or (USA): P_{x_i}(sum_j w_ij x_j)."""
  return tangent_projection(x_NxD, attention_output(x_NxD, beta, dynamics))


def energy(x_NxD, beta):
  """E = (1 / 2 beta) sum_{i,j} e^{beta <x_i, x_j>}, non-decreasing along both flows."""
  return jnp.sum(jnp.exp(beta * gram(x_NxD))) / (2.0 * beta)


def energy_rate(x_NxD, beta, dynamics: str = "sa"):
  """dE/dt by the rate identity of the module docstring: n sum |x_i'|^2 (USA), sum Z_i |x_i'|^2 (SA)."""
  v_NxD = velocity(x_NxD, beta, dynamics)
  speed2_N = jnp.sum(v_NxD ** 2, axis=-1)
  if dynamics == "usa":
    return x_NxD.shape[-2] * jnp.sum(speed2_N)
  z_N = jnp.sum(jnp.exp(beta * gram(x_NxD)), axis=-1)
  return jnp.sum(z_N * speed2_N)


class Trajectory(NamedTuple):
  t_T: jax.Array  # save times
  x_TxNxD: jax.Array  # tokens at the save times
  energy_T: jax.Array
  energy_gain_T: jax.Array  # int_0^t (identity's dE/dt) ds, integrated by the same RK4 as x


def integrate(x0_NxD, beta, *, dynamics: str = "sa", dt: float, num_saves: int,
              steps_per_save: int, renormalize: bool = True) -> Trajectory:
  """RK4 under `lax.scan` from x0 (rows on the sphere), saving every `steps_per_save` steps.

  The energy-rate identity is integrated alongside as a quadrature state q' = rate(x), so
  E(t) - E(0) - q(t) is the integrator's error on the identity, O(dt^4).
  """
  beta = jnp.asarray(beta, x0_NxD.dtype)

  def rhs(state):
    x_NxD, _ = state
    return velocity(x_NxD, beta, dynamics), energy_rate(x_NxD, beta, dynamics)

  def step(state, _):
    add = lambda s, k, h: jax.tree.map(lambda a, b: a + h * b, s, k)
    k1 = rhs(state)
    k2 = rhs(add(state, k1, 0.5 * dt))
    k3 = rhs(add(state, k2, 0.5 * dt))
    k4 = rhs(add(state, k3, dt))
    x_NxD, q = jax.tree.map(lambda a, b, c, d, e: a + dt / 6.0 * (b + 2 * c + 2 * d + e),
                            state, k1, k2, k3, k4)
    if renormalize:
      x_NxD = x_NxD / jnp.linalg.norm(x_NxD, axis=-1, keepdims=True)
    return (x_NxD, q), None

  def save(state, _):
    state, _ = jax.lax.scan(step, state, length=steps_per_save)
    return state, state

  q0 = jnp.zeros((), x0_NxD.dtype)
  _, (x_TxNxD, q_T) = jax.lax.scan(save, (x0_NxD, q0), length=num_saves)
  t_T = dt * steps_per_save * jnp.arange(1, num_saves + 1, dtype=x0_NxD.dtype)
  e_T = jax.vmap(energy, in_axes=(0, None))(x_TxNxD, beta)
  return Trajectory(t_T, x_TxNxD, e_T, q_T)


def one_minus_cosine(x_NxD):
  """1 - <x_i, x_j> computed as |x_i - x_j|^2 / 2 (no cancellation near 1; exact on the sphere)."""
  diff_NxNxD = x_NxD[..., :, None, :] - x_NxD[..., None, :, :]
  return 0.5 * jnp.sum(diff_NxNxD ** 2, axis=-1)


def off_diagonal(a_NxN):
  """The n(n-1) off-diagonal entries of a square matrix, flattened."""
  n = a_NxN.shape[-1]
  mask_NxN = ~np.eye(n, dtype=bool)  # numpy: a concrete mask, so this works under jit
  return a_NxN[..., mask_NxN]


def max_separation(x_NxD):
  """max_{i != j} (1 - <x_i, x_j>): the clustering measure; all tokens in one cluster of cosine >= 1 -
  delta iff max_separation <= delta."""
  return jnp.max(off_diagonal(one_minus_cosine(x_NxD)), axis=-1)


def is_clustered(x_NxD, delta):
  """Whether every pair has cosine >= 1 - delta (the phase-diagram event of Geshkovski et al.)."""
  return max_separation(x_NxD) <= delta


def equiangular(n: int, d: int, rho0, dtype=None):
  """x_i = sqrt(rho0) e_0 + sqrt(1 - rho0) e_i (needs d >= n + 1 and rho0 in [0, 1)): unit rows with
  <x_i, x_j> = rho0 for all i != j."""
  if d < n + 1:
    raise ValueError(f"an equiangular start of n={n} tokens this way needs d >= n + 1, got d={d}")
  dtype = dtype or jnp.result_type(float)
  rho0 = jnp.asarray(rho0, dtype)
  e_NxD = jnp.eye(n, d, k=1, dtype=dtype)
  first_NxD = jnp.zeros((n, d), dtype).at[:, 0].set(1.0)
  return jnp.sqrt(rho0) * first_NxD + jnp.sqrt(1.0 - rho0) * e_NxD


def circle(angles_N):
  """Tokens on S^1 at the given angles."""
  return jnp.stack([jnp.cos(angles_N), jnp.sin(angles_N)], axis=-1)


def random_sphere(key, n: int, d: int, dtype=None):
  """n i.i.d. uniform tokens on S^{d-1}."""
  z_NxD = jax.random.normal(key, (n, d), dtype or jnp.result_type(float))
  return z_NxD / jnp.linalg.norm(z_NxD, axis=-1, keepdims=True)
