r"""Critical learning periods in deep linear networks (Kleinman, Achille & Soatto, ICLR 2024).

Two pathways map the same input, $\Omega = \Omega_a + \Omega_b$, each a depth-$D$ linear chain. With whitened
inputs, a target correlation $U S V^\top$ and a balanced decoupled start, every mode $\alpha$ of pathway
$p$ keeps equal scalar weights $p$ in all $D$ layers, its strength is $K_p = p^D$, and gradient descent
with step $\eta$ on $\frac12\|Y - \Omega X\|_F^2$ acts mode by mode (derived here as in Saxe et al. 2014):

  $p \leftarrow p + \eta\, p^{D-1} (s - K_a - K_b)$   (exact for the discrete algorithm),
  $\dot K_p = \eta D K_p^{2 - 2/D} (s - K_a - K_b)$   (its gradient-flow limit, paper's eq. 3),

and during a deficit pathway $b$ is frozen ($\dot p_b = 0$) while its output still enters the loss.
After a deficit the discrete map multiplies $p_a$ and $p_b$ by factors that differ only through
$p^{D-2}$, hence exactly (derived here):
  * $D = 1$: $K_a - K_b$ is constant;
  * $D = 2$: $K_a / K_b$ is constant;
  * $D \ge 3$: $\frac{d}{dt}\ln(K_a/K_b) = D (s - \Sigma K)(K_a^{1-2/D} - K_b^{1-2/D})$ has the sign of
    $K_a - K_b$ while the mode is unlearned: the pathway ahead takes more ("winner takes more").
So a deficit early in learning is permanent for $D \ge 2$, and its effect sharpens with depth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from theory.integrate import rk4


def pathway_gd(s, p0_a, p0_b, *, learning_rate: float, depth: int, num_steps: int,
               deficit_start: int, deficit_length: int, save_every: int = 1):
  """The exact per-mode recursion of gradient descent; returns (steps, K_a, K_b) [num_steps/save, m]."""
  if num_steps % save_every:
    raise ValueError(f"num_steps={num_steps} must be a multiple of save_every={save_every}")
  s, p0_a, p0_b = jnp.broadcast_arrays(*map(jnp.asarray, (s, p0_a, p0_b)))

  def one(carry, t):
    p_a, p_b = carry
    error = s - p_a ** depth - p_b ** depth
    open_b = (t < deficit_start) | (t >= deficit_start + deficit_length)
    return (p_a + learning_rate * p_a ** (depth - 1) * error,
            p_b + open_b * learning_rate * p_b ** (depth - 1) * error), None

  def save(carry, t0):
    carry, _ = jax.lax.scan(one, carry, t0 + jnp.arange(save_every))
    return carry, (t0 + save_every, carry[0] ** depth, carry[1] ** depth)

  _, out = jax.lax.scan(save, (p0_a, p0_b), jnp.arange(0, num_steps, save_every))
  return out


def pathway_flow(s, k0_a, k0_b, *, learning_rate: float, depth: int, duration: float,
                 deficit_start: float, deficit_length: float, num_saves: int, substeps: int = 10):
  """The gradient-flow ODE (RK4); the deficit gate switches at save points only, so put the window's
  ends on the save grid. Returns (times, K_a, K_b) at the num_saves save points."""
  s, k0_a, k0_b = jnp.broadcast_arrays(*map(jnp.asarray, (s, k0_a, k0_b)))
  dt_save = duration / num_saves
  power = 2.0 - 2.0 / depth

  def rhs(k, t_save):
    k_a, k_b = k
    error = s - k_a - k_b
    open_b = (t_save < deficit_start) | (t_save >= deficit_start + deficit_length)
    rate = learning_rate * depth * error
    return (rate * jnp.abs(k_a) ** power, open_b * rate * jnp.abs(k_b) ** power)

  def save(carry, i):
    k, t = carry
    t_save = i * dt_save  # the gate is constant within a save interval
    _, ks = rk4(lambda y, tt: rhs(y, t_save), k, t, dt_save / substeps, 1, substeps)
    k = jax.tree.map(lambda a: a[0], ks)
    return (k, t + dt_save), (t + dt_save, k[0], k[1])

  _, out = jax.lax.scan(save, ((k0_a, k0_b), jnp.asarray(0.0, s.dtype)), jnp.arange(num_saves))
  return out


def log_ratio_rate(k_a, k_b, s, depth: int, learning_rate: float):
  """d ln(K_a / K_b) / dt of the flow after the deficit (module docstring): exactly 0 at depth 2,
  the sign of K_a - K_b at depth >= 3 while s > K_a + K_b (at depth 1 the difference is invariant)."""
  power = 1.0 - 2.0 / depth
  return learning_rate * depth * (s - k_a - k_b) * (k_a ** power - k_b ** power)
