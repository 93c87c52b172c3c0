"""A classical fourth-order Runge-Kutta integrator under `lax.scan` (fixed step, jittable, vmappable)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp


def rk4(rhs: Callable[[Any, jax.Array], Any], y0: Any, t0: float, dt: float, num_saves: int,
        steps_per_save: int) -> tuple[jax.Array, Any]:
  """Integrates dy/dt = rhs(y, t) from `t0` and returns (times, states) at `num_saves` save points.

  The first save is after `steps_per_save` steps, at t0 + steps_per_save * dt; `y` may be any pytree.
  """

  def step(carry, _):
    y, t = carry
    k1 = rhs(y, t)
    k2 = rhs(jax.tree.map(lambda a, k: a + 0.5 * dt * k, y, k1), t + 0.5 * dt)
    k3 = rhs(jax.tree.map(lambda a, k: a + 0.5 * dt * k, y, k2), t + 0.5 * dt)
    k4 = rhs(jax.tree.map(lambda a, k: a + dt * k, y, k3), t + dt)
    y = jax.tree.map(lambda a, b, c, d, e: a + dt / 6.0 * (b + 2 * c + 2 * d + e), y, k1, k2, k3, k4)
    return (y, t + dt), None

  def save(carry, _):
    carry, _ = jax.lax.scan(step, carry, length=steps_per_save)
    return carry, carry

  t0 = jnp.asarray(t0, dtype=jnp.result_type(float))
  _, (ys, ts) = jax.lax.scan(save, (y0, t0), length=num_saves)
  return ts, ys
