r"""Exact dynamics of a two-layer single-neuron linear network (Kunin, Raventós, Dominé, Chen,
Klindt, Saxe & Ganguli, "Get rich quick", NeurIPS 2024, arXiv:2406.06158: sec. 3, the single-neuron
model whose implicit bias is its Theorem 3.1, and Fig. 3). The paper's full text was not available
to us, so results are cited by section and figure, not by equation number (sources: the paper's
quoted sections and the official notebook, github.com/allanraventos/getrichquick,
single-neuron/Single_Neuron.ipynb).

Setting (Kunin sec. 3): $f(x) = a\, w^\top x$, loss $L = \frac12 \sum_i (f(x_i) - y_i)^2$ (a sum),
gradient flow with layer learning rates $\dot a = -\eta_a \partial_a L$, $\dot w = -\eta_w \nabla_w
L$, whitened inputs $X^\top X = I$ and $\beta_* = X^\top y$, $s = \|\beta_*\|$, $\hat\beta_* =
\beta_*/s$. Then

* $\dot a = \eta_a (w^\top\beta_* - a\|w\|^2)$, $\dot w = \eta_w a (\beta_* - a w)$, and $\delta =
  \eta_w a^2 - \eta_a \|w\|^2$ is conserved (the paper's conserved quantity; $\delta > 0$ upstream,
  $= 0$ balanced, $< 0$ downstream).
* With $\mu = a\|w\|$ (signed with $a$) and $\phi = \cos\angle(w, \beta_*)$ (Kunin's reduced
  system): $\dot\mu = \kappa(\mu)(\phi s - \mu)$, $\dot\phi = 2\eta_a\eta_w \mu s (1 - \phi^2) /
  (\kappa(\mu) - \delta)$, with $\kappa(\mu) = \sqrt{\delta^2 + 4\eta_a\eta_w\mu^2} = \eta_w a^2 +
  \eta_a\|w\|^2$ (`mu_phi_rates`).
* The first-layer scale follows from $\mu$: $a^2 = (\delta + \kappa(\mu)) / (2\eta_w)$
  (`first_layer_sq`, the positive root of $\eta_w a^4 - \delta a^2 - \eta_a\mu^2 = 0$).
* Function space (Kunin sec. 3): $\dot\beta = -M X^\top(X\beta - y)$ with $M = \eta_w a^2 I + \eta_a
  w w^\top = \frac12(\kappa + \delta) I + \frac12(\kappa - \delta)\hat\beta\hat\beta^\top$
  (`function_space_matrix`). The $\eta$-weighted NTK on the whitened training inputs is $X M
  X^\top$, so the kernel distance $S(0, t) = 1 - \langle K_0, K_t\rangle_F / (\|K_0\|_F\|K_t\|_F)$
  (Fort et al. 2020, Kunin sec. 2) equals the same expression in $M_0$, $M_t$ (`kernel_distance`).
  (The official notebook's `kernel_distance` has $2a_0^2\|w_t\|^2$ where $2a_t^2\|w_t\|^2$ belongs
  in $\|K_t\|$; not ported.)
* Riccati equation (the paper's exact solution, in the variable of the official notebook's
  `theory()`): $\nu = w^\top\beta_* / a$ obeys $\dot\nu = \eta_w s^2 - \delta\nu - \eta_a\nu^2$,
  solved by $\nu(t) = [-\delta + \Delta \tanh(\Delta t/2 + \operatorname{artanh}((\delta +
  2\eta_a\nu_0)/\Delta))] / (2\eta_a)$, $\Delta = \sqrt{\delta^2 + 4\eta_a\eta_w s^2}$; when
  $|\delta + 2\eta_a\nu_0| > \Delta$ the coth branch ($\tanh \to \coth$, $\operatorname{artanh} z
  \to \operatorname{arcoth} z$) holds (`riccati_nu`).
* Balanced closed form ($\delta = 0$, $\mu_0 > 0$; Kunin sec. 3, written here for any $\eta_a,
  \eta_w$ by the time change $\bar\eta t$, $\bar\eta = \sqrt{\eta_a\eta_w}$): $\phi = \tanh\theta$,
  $\theta = \operatorname{artanh}\phi_0 + \bar\eta s t$, and $\mu = s(1 + \cosh 2\theta) / (2\theta
  + \sinh 2\theta + c)$ with $c = s(1 + \cosh 2\theta_0)/\mu_0 - 2\theta_0 - \sinh 2\theta_0$
  (`balanced_closed_form`).

Derivation of our own (`closed_form`): the full trajectory $(a(t), w(t))$, for every $\delta$ (the
balanced case included, with no switch), from $\nu$ and two linear equations.
(i) The Riccati solution in Möbius form, valid on both branches and through a pole: $T(t) = (z_0 +
\tanh x) / (1 + z_0 \tanh x)$, $x = \Delta t / 2$, $z_0 = (\delta + 2\eta_a\nu_0)/\Delta$, $\nu =
(-\delta + \Delta T)/(2\eta_a)$ (it equals $\tanh(Q_0 + x)$ with $\tanh Q_0 = z_0$ and $\coth(Q_0 +
x)$ with $\coth Q_0 = z_0$). With $D(t) = \cosh x + z_0 \sinh x$, $\Delta T / 2 = \dot D / D$, so
$\int_0^t (\delta + \eta_a\nu) = \delta t/2 + \ln D$.
(ii) The part of $w$ orthogonal to $\beta_*$ obeys $\dot w_\perp = -\eta_w a^2 w_\perp$, so $\rho =
e_\perp^\top w / a$ ($e_\perp$ the unit vector of $w_{\perp,0}$) obeys $\dot\rho = -(\delta +
\eta_a\nu)\rho$: $\rho(t) = \rho_0 e^{-\delta t/2} / D(t)$.
(iii) $\dot a / a = \eta_a\nu + \delta - \eta_w a^2$ (by the conservation law), so $u = 1/a^2$ obeys
the linear $\dot u = -2(\delta + \eta_a\nu) u + 2\eta_w$: $u(t) = [u_0 + 2\eta_w \int_0^t
e^{\delta\tau} D(\tau)^2 d\tau] / (e^{\delta t} D(t)^2)$, and with $D^2 = \frac{1 - z_0^2}{2} +
\frac{(1 + z_0)^2}{4} e^{\Delta\tau} + \frac{(1 - z_0)^2}{4} e^{-\Delta\tau}$ the integral is a sum
of three exponentials, $\int_0^t e^{\lambda\tau} d\tau = (e^{\lambda t} - 1)/\lambda$ for $\lambda
\in \{\delta, \delta \pm \Delta\}$ (evaluated with `expm1`, and $t$ at $\lambda = 0$, so $\delta =
0$ needs no special case; everything is scaled by $e^{-(\delta + \Delta)t}$ against overflow).
(iv) $a = \operatorname{sign}(a_0 D(t)) / \sqrt{u}$ ($a$ crosses zero exactly at the pole of $\nu$,
$D = 0$, which only the coth branch with $z_0 < -1$ reaches, and only for $\delta < 0$), and $w =
a(\nu\hat\beta_*/s + \rho e_\perp)$. Every observable ($\mu$, $\phi$, $\beta$, $S$) follows; at
$\delta = 0$ it reproduces the paper's balanced closed form (tested).

Gradient descent (our derivation, `gd_delta_drift_rate`): with step $h$, one step changes $\delta$
by exactly $h^2\eta_a\eta_w(\eta_a g_a^2 - \eta_w\|g_w\|^2)$ ($g = \nabla L$; the $O(h)$ terms
cancel because $a g_a = w^\top g_w$), so $\delta$ drifts by $h\int_0^T \eta_a\eta_w(\eta_a g_a^2 -
\eta_w\|g_w\|^2)\,dt + O(h^2)$ along the flow.

Pure jnp, float64 recommended; every function broadcasts or is vmappable.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from theory.integrate import rk4


def conserved_delta(a, w, eta_a=1.0, eta_w=1.0):
  """delta = eta_w a^2 - eta_a |w|^2, for a [...] and w [..., d]."""
  return eta_w * a ** 2 - eta_a * jnp.sum(w ** 2, axis=-1)


def riccati_rate(nu, delta, s, eta_a=1.0, eta_w=1.0):
  """d nu / dt = eta_w s^2 - delta nu - eta_a nu^2."""
  return eta_w * s ** 2 - delta * nu - eta_a * nu ** 2


def riccati_nu(t, nu0, delta, s, eta_a=1.0, eta_w=1.0, branch: str = "auto"):
  """The Riccati solution nu(t) in the paper's tanh / coth form (see the module docstring).

  Args:
    t: times (any shape, broadcasting with the other arguments).
    nu0, delta, s, eta_a, eta_w: nu(0), the conserved delta, |beta_*| and the layer learning rates.
    branch: "auto" picks tanh when |delta + 2 eta_a nu0| < Delta and coth otherwise; "tanh" or "coth"
      forces one (the wrong one gives non-finite or wrong values: a negative control).
  """
  if branch not in ("auto", "tanh", "coth"):
    raise ValueError(f"branch must be 'auto', 'tanh' or 'coth', got {branch!r}")
  big_delta = jnp.sqrt(delta ** 2 + 4.0 * eta_a * eta_w * s ** 2)
  z0 = (delta + 2.0 * eta_a * nu0) / big_delta
  x = 0.5 * big_delta * t
  on_tanh = jnp.tanh(x + jnp.arctanh(z0))
  on_coth = 1.0 / jnp.tanh(x + jnp.arctanh(1.0 / z0))  # arcoth z = artanh(1/z)
  if branch == "tanh":
    value = on_tanh
  elif branch == "coth":
    value = on_coth
  else:
    value = jnp.where(jnp.abs(z0) < 1.0, on_tanh, on_coth)
  return (-delta + big_delta * value) / (2.0 * eta_a)


def mu_phi_rates(mu, phi, delta, s, eta_a=1.0, eta_w=1.0):
  """(d mu/dt, d phi/dt) of Kunin's reduced system (module docstring).

  The factor 2 eta_a eta_w mu / (kappa - delta) equals (kappa + delta) / (2 mu); for delta > 0 the
  second form is used because kappa - delta cancels as mu -> 0.
  """
  kappa = jnp.sqrt(delta ** 2 + 4.0 * eta_a * eta_w * mu ** 2)
  upstream = delta > 0
  factor = jnp.where(upstream, (kappa + delta) / (2.0 * jnp.where(upstream, mu, 1.0)),
                     2.0 * eta_a * eta_w * mu / jnp.where(upstream, 1.0, kappa - delta))
  return kappa * (phi * s - mu), factor * s * (1.0 - phi ** 2)


def first_layer_sq(mu, delta, eta_a=1.0, eta_w=1.0):
  """a^2 = (delta + sqrt(delta^2 + 4 eta_a eta_w mu^2)) / (2 eta_w)."""
  return (delta + jnp.sqrt(delta ** 2 + 4.0 * eta_a * eta_w * mu ** 2)) / (2.0 * eta_w)


def function_space_matrix(beta, delta, eta_a=1.0, eta_w=1.0):
  """M = (kappa + delta)/2 I + (kappa - delta)/2 beta_hat beta_hat^T, [..., d, d], for beta [..., d].

  beta's batch axes and delta's shape broadcast together.
  """
  batch = jnp.broadcast_shapes(beta.shape[:-1], jnp.shape(delta))
  beta = jnp.broadcast_to(beta, batch + beta.shape[-1:])
  delta = jnp.broadcast_to(delta, batch)
  norm_sq = jnp.sum(beta ** 2, axis=-1)
  kappa = jnp.sqrt(delta ** 2 + 4.0 * eta_a * eta_w * norm_sq)
  safe_sq = jnp.where(norm_sq > 0, norm_sq, 1.0)
  outer = beta[..., :, None] * beta[..., None, :] / safe_sq[..., None, None]
  eye = jnp.broadcast_to(jnp.eye(beta.shape[-1], dtype=beta.dtype), outer.shape)
  plus, minus = 0.5 * (kappa + delta), 0.5 * (kappa - delta)
  return plus[..., None, None] * eye + minus[..., None, None] * outer


def kernel_distance(m1, m2):
  """1 - <M1, M2>_F / (|M1|_F |M2|_F) over the last two axes (equal to S of the NTKs X M X^T)."""
  inner = jnp.sum(m1 * m2, axis=(-2, -1))
  return 1.0 - inner / (jnp.sqrt(jnp.sum(m1 ** 2, axis=(-2, -1)))
                        * jnp.sqrt(jnp.sum(m2 ** 2, axis=(-2, -1))))


def balanced_closed_form(t, mu0, phi0, s, eta_a=1.0, eta_w=1.0):
  """(mu(t), phi(t)) for delta = 0 and mu0 > 0, |phi0| < 1 (module docstring), overflow-free in t."""
  theta0 = jnp.arctanh(phi0)
  theta = theta0 + jnp.sqrt(eta_a * eta_w) * s * t
  c = s * (1.0 + jnp.cosh(2.0 * theta0)) / mu0 - 2.0 * theta0 - jnp.sinh(2.0 * theta0)
  sech = 1.0 / jnp.cosh(2.0 * theta)  # divide through by cosh 2 theta: finite for any t
  mu = s * (1.0 + sech) / (jnp.tanh(2.0 * theta) + (2.0 * theta + c) * sech)
  return mu, jnp.tanh(theta)


class Trajectory(NamedTuple):
  """A closed-form trajectory at times t [T]: a [T], w [T, d], and the observables [T]."""

  a: jax.Array
  w: jax.Array
  mu: jax.Array  # a |w|
  phi: jax.Array  # cos angle(w, beta_*)
  nu: jax.Array  # w^T beta_* / a
  delta: jax.Array  # the conserved quantity, [] (from the initial condition)


def _plane(w0, beta_star):
  """beta_hat, s, the component of w0 along beta_hat, and the unit vector of its orthogonal part."""
  s = jnp.linalg.norm(beta_star)
  beta_hat = beta_star / s
  along = jnp.dot(w0, beta_hat)
  perp = w0 - along * beta_hat
  perp_norm = jnp.linalg.norm(perp)
  e_perp = perp / jnp.where(perp_norm > 0, perp_norm, 1.0)
  return beta_hat, s, along, perp_norm, e_perp


def _decay_integral(lam, t):
  """(1 - e^{-lam t}) / lam, i.e. e^{-lam t} * int_0^t e^{lam tau} d tau; t where lam = 0."""
  safe = jnp.where(lam == 0, 1.0, lam)
  return jnp.where(lam == 0, t, -jnp.expm1(-lam * t) / safe)


def _trajectory(t, a0, w0, beta_star, eta_a, eta_w):
  """Our closed form (module docstring, steps i-iv) for a0 > 0: returns (a [T], w [T, d], delta)."""
  beta_hat, s, along, perp_norm, e_perp = _plane(w0, beta_star)
  delta = conserved_delta(a0, w0, eta_a, eta_w)
  nu0, rho0 = s * along / a0, perp_norm / a0
  big_delta = jnp.sqrt(delta ** 2 + 4.0 * eta_a * eta_w * s ** 2)
  z0 = (delta + 2.0 * eta_a * nu0) / big_delta
  th = jnp.tanh(0.5 * big_delta * t)
  den = 1.0 + z0 * th  # D(t) / cosh(x): its sign is the sign of a
  nu = (-delta + big_delta * (z0 + th) / den) / (2.0 * eta_a)
  # rho0 e^{-delta t/2} / D(t), with e^{-delta t/2} / cosh(x) written without overflow.
  rho = rho0 * 2.0 * jnp.exp(-0.5 * (delta + big_delta) * t) / (1.0 + jnp.exp(-big_delta * t)) / den
  # u = 1/a^2 of step (iii), numerator and denominator multiplied by e^{-(delta + Delta) t} <= 1.
  plus, minus, middle = (1.0 + z0) ** 2 / 4.0, (1.0 - z0) ** 2 / 4.0, (1.0 - z0 ** 2) / 2.0
  e_big = jnp.exp(-big_delta * t)
  e_sum = jnp.exp(-(delta + big_delta) * t)
  scaled_d2 = middle * e_big + plus + minus * e_big ** 2  # e^{delta t} D^2 e^{-(delta + Delta) t}
  # e^{-(delta+Delta)t} int_0^t e^{lam tau} for lam = delta, delta + Delta, delta - Delta:
  i_delta = e_big * _decay_integral(delta, t)
  i_plus = _decay_integral(delta + big_delta, t)
  i_minus = e_sum * _decay_integral(big_delta - delta, t)
  scaled_u = e_sum / a0 ** 2 + 2.0 * eta_w * (middle * i_delta + plus * i_plus + minus * i_minus)
  a = jnp.sign(den) * jnp.sqrt(scaled_d2 / scaled_u)
  w = a[:, None] * ((nu / s)[:, None] * beta_hat[None, :] + rho[:, None] * e_perp[None, :])
  return a, w, delta


def closed_form(t, a0, w0, beta_star, eta_a=1.0, eta_w=1.0) -> Trajectory:
  """The exact gradient-flow trajectory from (a0, w0) on whitened data with target beta_*.

  Args:
    t: times [T] (1-D, >= 0; |delta| t below ~700 so that no exponential overflows).
    a0: [] first-layer weight, non-zero (a0 < 0 maps to a0 > 0 by the symmetry (a, w) -> (-a, -w)).
    w0: [d] the input weights; beta_star: [d] the regression target X^T y (non-zero).
    eta_a, eta_w: layer learning rates.

  Returns:
    A `Trajectory` from our closed form (module docstring), valid for every delta including 0.
    Jittable and vmappable over every argument.
  """
  t = jnp.asarray(t, dtype=jnp.result_type(float))
  sign0 = jnp.sign(a0)
  a, w, delta = _trajectory(t, sign0 * a0, sign0 * w0, beta_star, eta_a, eta_w)
  a, w = sign0 * a, sign0 * w
  w_norm = jnp.linalg.norm(w, axis=-1)
  s = jnp.linalg.norm(beta_star)
  return Trajectory(a=a, w=w, mu=a * w_norm, phi=(w @ beta_star) / (s * w_norm),
                    nu=(w @ beta_star) / a, delta=delta)


def kernel_distance_from_init(beta0, beta, delta, eta_a=1.0, eta_w=1.0):
  """S(0, t) of the eta-weighted NTK on whitened inputs, from beta0 [d], beta [..., d] and delta."""
  m0 = function_space_matrix(beta0, delta, eta_a, eta_w)
  m = function_space_matrix(beta, delta, eta_a, eta_w)
  return kernel_distance(jnp.broadcast_to(m0, m.shape), m)


def gd_delta_drift_rate(a, w, beta_star, eta_a=1.0, eta_w=1.0):
  """The drift of delta under gradient descent with step h is h times the time integral of this.

  Our derivation: one step changes delta by exactly h^2 eta_a eta_w (eta_a g_a^2 - eta_w |g_w|^2),
  g the loss gradient, because the O(h) terms cancel (a g_a = w^T g_w, as L(c a, w / c) = L(a, w));
  over t / h steps along (to leading order) the flow this sums to h * int_0^t (this) dt. On whitened
  data g_a = w^T(a w - beta_*) and g_w = a (a w - beta_*). a [...], w [..., d], beta_star [d].
  """
  residual = a[..., None] * w - jnp.broadcast_to(beta_star, w.shape)
  g_a = jnp.sum(w * residual, axis=-1)
  g_w_sq = a ** 2 * jnp.sum(residual ** 2, axis=-1)
  return eta_a * eta_w * (eta_a * g_a ** 2 - eta_w * g_w_sq)


def mu_phi_ode(mu0, phi0, delta, s, eta_a=1.0, eta_w=1.0, *, num_saves: int, save_every: float,
               substeps: int = 20):
  """(times, (mu, phi)) at save_every * (1..num_saves) by RK4 on `mu_phi_rates`."""
  rhs = lambda y, _: mu_phi_rates(y[0], y[1], delta, s, eta_a, eta_w)
  y0 = (jnp.asarray(mu0, float), jnp.asarray(phi0, float))
  return rk4(rhs, y0, 0.0, save_every / substeps, num_saves, substeps)
