r"""Closed forms for self-attention as interacting particles on the sphere (Geshkovski, Letrouit,
Polyanskiy & Rigollet 2023, "A mathematical perspective on Transformers", Sec. 3 and 6; long context
after Chen et al. 2025; survey: Rigollet 2025, arXiv 2512.01868). Derived here; pure jnp.

Dynamics (tokens on $S^{d-1}$, $Q=K=V=I$): (SA) $\dot x_i = P_{x_i}(\sum_j e^{\beta\langle x_i,x_j\rangle}
x_j / Z_i)$, (USA) the same with $Z_i$ replaced by $n$.

Energy rate. $E = \frac1{2\beta}\sum_{ij} e^{\beta\langle x_i,x_j\rangle}$ has Euclidean gradient $g_i =
\sum_j e^{\beta\langle x_i,x_j\rangle} x_j$; velocities are tangent, so $\dot E = \sum_i \langle g_i, \dot
x_i\rangle = \sum_i \langle P_{x_i} g_i, \dot x_i\rangle$, and $P_{x_i} g_i = c_i \dot x_i$ with $c_i = Z_i$
(SA) or $n$ (USA): $\dot E = \sum_i c_i \|\dot x_i\|^2 \ge 0$.

Equiangular reduction. If $\langle x_i,x_j\rangle = \rho$ for all $i\ne j$, then $P_{x_i}x_i = 0$ and
$P_{x_i} x_j = x_j - \rho x_i$, so $\dot x_i = \frac{e^{\beta\rho}}{c}\sum_{j\ne i}(x_j - \rho x_i)$ with
$c = e^\beta + (n-1)e^{\beta\rho}$ (SA) or $n$ (USA). Then $\frac{d}{dt}\langle x_i,x_k\rangle = \frac{2
e^{\beta\rho}}{c}\langle \sum_{j\ne i}(x_j - \rho x_i), x_k\rangle = \frac{2e^{\beta\rho}}{c}(1-\rho)(1+(n-1)\rho)$,
the same for every pair, so the configuration stays equiangular and
  (SA)  $\dot\rho = 2e^{\beta\rho}(1-\rho)(1+(n-1)\rho) / (e^\beta + (n-1)e^{\beta\rho})$,
  (USA) $\dot\rho = \frac2n e^{\beta\rho}(1-\rho)(1+(n-1)\rho)$.
Near $\rho = 1$, with $u = 1-\rho$: SA gives $\dot u = -2u\,(1+O(u))$ (the $e^\beta$ cancels: rate 2) and USA
gives $\dot u = -2e^\beta u\,(1+O(u))$ (rate $2e^\beta$). Both are separable; with the partial fractions
$\frac{1}{(1-r)(1+(n-1)r)} = \frac1n\big(\frac{1}{1-r} + \frac{1}{r + 1/(n-1)}\big)$ and
$\int e^{\beta(1-r)}\frac{dr}{1-r} = -\mathrm{Ei}(\beta(1-r))$,
$\int e^{-\beta r}\frac{dr}{r+a} = e^{\beta a}\mathrm{Ei}(-\beta(r+a))$, the time to go from $\rho_0$ to $\rho$ is
$G(\rho) - G(\rho_0)$ with ($a = 1/(n-1)$)
  (SA)  $G(r) = \frac{1}{2n}\big[(n-1)\log\frac{1+(n-1)r}{1-r} - \mathrm{Ei}(\beta(1-r))
         + e^{\beta(1+a)}\mathrm{Ei}(-\beta(r+a))\big]$,
  (USA) $G(r) = \frac12\big[-e^{-\beta}\mathrm{Ei}(\beta(1-r)) + e^{\beta a}\mathrm{Ei}(-\beta(r+a))\big]$.

Two-particle merge time (n = 2, any d; on the circle $\rho = \cos\varphi$). SA with $n=2$ is the
equiangular case: $\dot\varphi = -2\sin\varphi / (1 + e^{\beta(1-\cos\varphi)})$, so the time from angle
$\varphi_0$ to $\varphi_\epsilon$ is $\int_{\varphi_\epsilon}^{\varphi_0}\frac{1+e^{\beta(1-\cos\varphi)}}{2\sin
\varphi}d\varphi$, the SA formula for $G$ at $n=2$. For $\beta\to\infty$ the end $\varphi_0$ dominates
(Laplace): $T \approx e^{\beta(1-\cos\varphi_0)} / (2\beta\sin^2\varphi_0)$.

Long context (one layer, Chen et al.). For an equiangular input the attention output is $y_i = a x_i +
b\sum_{j\ne i}x_j = c\,x_i + b\,S$, $a = e^\beta/Z$, $b = e^{\beta\rho}/Z$, $c = a - b$, $S = \sum_j x_j$, and
$\langle x_i, S\rangle = s = 1+(n-1)\rho$, $|S|^2 = ns$, hence
  $\cos(y_i, y_k) = (c^2\rho + 2cbs + b^2ns) / (c^2 + 2cbs + b^2ns)$.
With $\beta = \gamma\log n$, $a/b = r = n^{\gamma(1-\rho)}$; dividing by $b^2 n^2$ the terms are
$(r/n)^2\rho$, $2(r/n)\rho$, $\rho$ up to $O(1/n)$, so the limit is 1 if $\gamma(1-\rho) < 1$ ($r/n\to0$), $\rho$ if
$\gamma(1-\rho) > 1$, and $(\rho + 2\rho + \rho)/(1 + 2\rho + \rho) = 4\rho/(1+3\rho)$ at $\gamma = 1/(1-\rho)$.

Phase diagram. Random tokens in high dimension are nearly orthogonal, so the equiangular SA curve from
$\rho_0 = 0$ predicts when all pairs have cosine $\ge 1-\delta$: at time $t$ the clustered region is
$\beta < \beta^*(t)$ with $T_{SA}(1-\delta;\beta) = t$; the hitting time is increasing in $\beta$ (its
integrand $(e^{\beta(1-r)} + n - 1)/(2(1-r)(1+(n-1)r))$ is), so $\beta^*$ is found by bisection.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import expi

from theory.integrate import rk4


def energy_rate_identity(speed2_N, z_N, n: int, dynamics: str):
  """dE/dt from the squared speeds |x_i'|^2: sum Z_i |x_i'|^2 (SA) or n sum |x_i'|^2 (USA)."""
  if dynamics == "sa":
    return jnp.sum(z_N * speed2_N, axis=-1)
  if dynamics == "usa":
    return n * jnp.sum(speed2_N, axis=-1)
  raise ValueError(f"dynamics must be 'sa' or 'usa', got {dynamics!r}")


def equiangular_rhs(rho, beta, n: int, dynamics: str):
  """d rho / dt of the equiangular reduction (module docstring)."""
  growth = 2.0 * jnp.exp(beta * rho) * (1.0 - rho) * (1.0 + (n - 1) * rho)
  if dynamics == "sa":
    return growth / (jnp.exp(beta) + (n - 1) * jnp.exp(beta * rho))
  if dynamics == "usa":
    return growth / n
  raise ValueError(f"dynamics must be 'sa' or 'usa', got {dynamics!r}")


def equiangular_rho(rho0, beta, n: int, dynamics: str, *, dt: float, num_saves: int,
                    steps_per_save: int):
  """rho(t) by RK4 of the reduction ODE; returns (times, rho) at the save points (rho0, beta broadcast)."""
  rho0, beta = jnp.broadcast_arrays(jnp.asarray(rho0, jnp.result_type(float)), beta)
  return rk4(lambda r, t: equiangular_rhs(r, beta, n, dynamics), rho0, 0.0, dt, num_saves,
             steps_per_save)


def equiangular_log_rate(rho, beta, n: int, dynamics: str):
  """-d log(1 - rho) / dt; tends to 2 (SA) and 2 e^beta (USA) as rho -> 1."""
  return equiangular_rhs(rho, beta, n, dynamics) / (1.0 - rho)


def clustering_rate(beta, dynamics: str):
  """The exponential rate of 1 - rho -> 0: 2 for SA, 2 e^beta for USA (independent of n)."""
  if dynamics == "sa":
    return 2.0 * jnp.ones_like(jnp.asarray(beta, jnp.result_type(float)))
  if dynamics == "usa":
    return 2.0 * jnp.exp(beta)
  raise ValueError(f"dynamics must be 'sa' or 'usa', got {dynamics!r}")


def _antiderivative(r, beta, n: int, dynamics: str):
  a = 1.0 / (n - 1)
  if dynamics == "sa":
    return ((n - 1) * (jnp.log1p((n - 1) * r) - jnp.log1p(-r)) - expi(beta * (1.0 - r))
            + jnp.exp(beta * (1.0 + a)) * expi(-beta * (r + a))) / (2.0 * n)
  if dynamics == "usa":
    return 0.5 * (-jnp.exp(-beta) * expi(beta * (1.0 - r))
                  + jnp.exp(beta * a) * expi(-beta * (r + a)))
  raise ValueError(f"dynamics must be 'sa' or 'usa', got {dynamics!r}")


def equiangular_hitting_time(rho0, rho, beta, n: int, dynamics: str):
  """Closed-form time for the equiangular cosine to go from rho0 to rho (beta > 0, -1/(n-1) < rho0 <=
  rho < 1), from the exponential integral Ei (module docstring)."""
  return _antiderivative(rho, beta, n, dynamics) - _antiderivative(rho0, beta, n, dynamics)


def merge_time(phi0, phi_eps, beta):
  """Time for two SA particles to go from angle phi0 to phi_eps (closed form, n = 2)."""
  return equiangular_hitting_time(jnp.cos(phi0), jnp.cos(phi_eps), beta, 2, "sa")


def merge_time_quadrature(phi0, phi_eps, beta, num_points: int = 20001):
  """The same time by composite Simpson quadrature of int (1 + e^{beta(1-cos)}) / (2 sin) dphi, an
  independent check of the Ei closed form (num_points odd)."""
  phi = jnp.linspace(phi_eps, phi0, num_points)
  f = (1.0 + jnp.exp(beta * (1.0 - jnp.cos(phi)))) / (2.0 * jnp.sin(phi))
  w = jnp.ones(num_points).at[1:-1:2].set(4.0).at[2:-1:2].set(2.0)
  return (phi[1] - phi[0]) / 3.0 * jnp.sum(w * f)


def merge_time_asymptotic(phi0, beta):
  """Large-beta form of the merge time: e^{beta(1 - cos phi0)} / (2 beta sin^2 phi0)."""
  return jnp.exp(beta * (1.0 - jnp.cos(phi0))) / (2.0 * beta * jnp.sin(phi0) ** 2)


def long_context_cosine(rho, beta, n):
  """Cosine between two outputs of one SA layer on an equiangular input (finite n, exact)."""
  log_z = jnp.logaddexp(beta, jnp.log(n - 1.0) + beta * rho)
  a, b = jnp.exp(beta - log_z), jnp.exp(beta * rho - log_z)
  c, s = a - b, 1.0 + (n - 1.0) * rho
  return (c ** 2 * rho + 2 * c * b * s + b ** 2 * n * s) / (c ** 2 + 2 * c * b * s + b ** 2 * n * s)


def long_context_limit(rho, gamma):
  """lim_{n -> inf} of `long_context_cosine` at beta = gamma log n: 1, 4 rho / (1 + 3 rho), or rho as
  gamma (1 - rho) <, =, > 1."""
  g = gamma * (1.0 - rho)
  return jnp.where(g < 1.0, 1.0, jnp.where(g > 1.0, rho, 4.0 * rho / (1.0 + 3.0 * rho)))


def critical_beta(t, n: int, delta: float, rho0: float = 0.0, *, beta_min: float = 1e-2,
                  beta_max: float = 50.0,
                  iterations: int = 60):
  """beta*(t): the beta at which the equiangular SA cosine from rho0 reaches 1 - delta exactly at time
  t; the equiangular prediction of the (beta, t) phase boundary (clustered for beta < beta*).
  Returns beta_min where even beta_min has not clustered by t, beta_max where beta_max already has.

  Bisection on the monotone hitting time, as a Python loop over one jitted evaluation (XLA compiles
  Ei inside a scan body very slowly).
  """
  t = jnp.asarray(t, jnp.result_type(float))
  hit = jax.jit(lambda beta: equiangular_hitting_time(rho0, 1.0 - delta, beta, n, "sa"))
  lo, hi = jnp.full_like(t, beta_min), jnp.full_like(t, beta_max)
  never, always = hit(lo) > t, hit(hi) <= t
  for _ in range(iterations):
    mid = 0.5 * (lo + hi)
    late = hit(mid) > t
    lo, hi = jnp.where(late, lo, mid), jnp.where(late, mid, hi)
  return jnp.where(never, beta_min, jnp.where(always, beta_max, 0.5 * (lo + hi)))
