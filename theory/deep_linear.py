r"""Exact learning dynamics of deep linear networks (Saxe, McClelland & Ganguli, ICLR 2014).

Setting (Saxe sec. 2): whitened inputs, $\Sigma^{11} = \sum_\mu x x^\top = I$, input-output
correlation $\Sigma^{31} = \sum_\mu y x^\top = U S V^\top$, squared error summed over examples, and
gradient descent with learning rate $\lambda$; time is counted in steps and $\tau = 1/\lambda$.
With a decoupled (SVD-aligned) initialisation each mode $\alpha$ evolves on its own with strength
$u_\alpha = $ the product of the layers' scalar weights on that mode.

* Two weight layers, balanced ($a = b$, $u = ab$): $\tau \dot u = 2u(s - u)$, whose solution is the
  sigmoid of Saxe eq. (6)-(7): $u(t) = s e^{2st/\tau} / (e^{2st/\tau} - 1 + s/u_0)$, and the time to
  go from $u_0$ to $u_f$ is $t = \frac{\tau}{2s} \ln\frac{u_f (s - u_0)}{u_0 (s - u_f)}$ (eq. 5).
* $N_l$ layers of units ($N_l - 1$ weight matrices), balanced:
  $\tau \dot u = (N_l - 1) u^{2 - 2/(N_l - 1)} (s - u)$ (eq. 15), integrated here with RK4.
* Small random initialisation of a two-layer net (a heuristic derived here, not in the paper): in the
  early linear phase $\tau \dot a = s b$, $\tau \dot b = s a$, so $c = (a + b)/2$ grows as $e^{st/\tau}$
  while $a - b$ decays; matching $u \approx |c_0|^2 e^{2st/\tau}$ to the sigmoid's early phase gives an
  effective initial strength $u_{0,\mathrm{eff}} = |a_0 + b_0|^2 / 4$, with $a_0$, $b_0$ the mode's
  initial input- and output-side weight vectors.
"""

from __future__ import annotations

import jax.numpy as jnp

from theory.integrate import rk4


def balanced_mode_strength(t, s, u0, tau):
  """Saxe eq. (7): u(t) for a balanced two-layer mode; written in a form that cannot overflow.

  Arguments broadcast against each other (e.g. t[:, None] with s[None, :] gives u[time, mode]).
  """
  t, s, u0, tau = jnp.broadcast_arrays(*map(jnp.asarray, (t, s, u0, tau)))
  return s / (1.0 + (s / u0 - 1.0) * jnp.exp(-2.0 * s * t / tau))


def learning_time(s, u0, uf, tau):
  """Saxe eq. (5): steps for a balanced two-layer mode to grow from u0 to uf (0 < u0, uf < s)."""
  s, u0, uf, tau = jnp.broadcast_arrays(*map(jnp.asarray, (s, u0, uf, tau)))
  return tau / (2.0 * s) * jnp.log(uf * (s - u0) / (u0 * (s - uf)))


def half_time(s, u0, tau):
  """Steps until a balanced two-layer mode reaches half its final strength s / 2."""
  return learning_time(s, u0, s / 2.0, tau)


def deep_mode_rate(u, s, n_layers, tau):
  """Saxe eq. (15): du/dt for a balanced mode of a net with `n_layers` layers of units."""
  p = 2.0 - 2.0 / (n_layers - 1)
  return (n_layers - 1) * jnp.abs(u) ** p * (s - u) / tau


def deep_mode_strength(s, u0, tau, n_layers, *, num_saves: int, save_every: float,
                       substeps: int = 20):
  """u at times save_every * (1, ..., num_saves) from eq. (15), by RK4 with `substeps` per save.

  `s` and `u0` may be arrays of the same shape (one mode each); returns (times, u[num_saves, ...]).
  """
  s, u0 = jnp.broadcast_arrays(jnp.asarray(s, float), jnp.asarray(u0, float))
  rhs = lambda u, t: deep_mode_rate(u, s, n_layers, tau)
  return rk4(rhs, u0, 0.0, save_every / substeps, num_saves, substeps)


def effective_initial_strength(a0, b0):
  """u0_eff = |a0 + b0|^2 / 4 for a two-layer mode started from small random weights (see above).

  a0: [..., hidden] the mode's input-side weights W21 v_alpha; b0: [..., hidden] its output-side
  weights (u_alpha^T W32)^T.
  """
  return jnp.sum((a0 + b0) ** 2, axis=-1) / 4.0
