r"""Per-feature learning dynamics of deep linear JEPA and MAE (Littwin et al., NeurIPS 2024).

Littwin, Saremi, Advani, Thilak, Nakkiran, Huang & Susskind, "How JEPA avoids noisy features: the
implicit bias of deep linear self distillation networks", arXiv:2407.03475. The paper's full text
and code were not available to us; everything below is derived here from the setting, and each
result is tested in `tests/test_jepa.py` (against full-matrix gradient descent, or against a second
derivation).

**Setting.** Views $x, y$; encoder $\bar W = W_L\cdots W_1$; head $V$. JEPA: $\mathcal L = \frac12
\mathbb E\|V\bar Wx - \mathrm{sg}(\bar Wy)\|^2$. MAE: $\mathcal L = \frac12\mathbb E\|V\bar Wx -
y\|^2$. $\Sigma_{xx} = Q\Lambda Q^\top$, $\Sigma_{yx} = Q\Lambda RQ^\top$ with $\Lambda =
\mathrm{diag}(\lambda_i)$, $R = \mathrm{diag}(\rho_i)$ ($\rho_i$ the regression coefficient of $y$
on $x$ along feature $i$), and a decoupled init: every weight maps feature $i$ to itself with scalar
gains $w_{1}, \dots, w_{L}$ (encoder layers) and $v$ (head), $\bar w = \prod_l w_l$. Gradient flow,
$\dot\theta = -\nabla\mathcal L$.

**Per-feature flow (derived).** With $P = V\bar W$ the JEPA gradient is $\nabla_P = P\Sigma_{xx} -
\bar W\Sigma_{yx}$ (the target is held fixed; $\Sigma_{yy}$ never enters) and the MAE one
$P\Sigma_{xx} - \Sigma_{yx}$; both stay diagonal in the feature basis, so each feature evolves on
its own. With $p_l = \prod_{k \ne l} w_k$:

* JEPA: $\dot v = \lambda\bar w^2(\rho - v)$, $\dot w_l = \lambda v\bar w p_l(\rho - v)$;
* MAE: $\dot v = \lambda\bar w(\rho - v\bar w)$, $\dot w_l = \lambda v p_l(\rho - v\bar w)$;
* JEPA without stop-gradient (the ablation): $\dot v$ as JEPA, $\dot w_l = -\bar w p_l(\lambda v^2 -
  2\lambda\rho v + \lambda_y)$ with $\lambda_y$ the target view's variance. For $\lambda_y =
  \lambda$ this is $-\lambda\bar w p_l((v - \rho)^2 + 1 - \rho^2) \le 0$: every $|w_l|$ shrinks and
  the encoder collapses, for any init, when $|\rho| < 1$.

In both objectives $\frac{d}{dt}v^2 = \frac{d}{dt}w_l^2$, so $c_l = v^2 - w_l^2$ is conserved (the
scalar form of the balancedness invariant of deep linear nets).

**Balanced init** ($v = w_l = u$, the paper's init with $\bar w(0) = \varepsilon = u_0^L$). The
invariants keep it balanced (under gradient descent too, by symmetry of the update), and
* JEPA: $\dot u = \lambda u^{2L}(\rho - u)$, i.e. $\dot{\bar w} = L\lambda\rho\,\bar w^{3 - 1/L} -
  L\lambda\bar w^3$;
* MAE: $\dot u = \lambda u^{L}(\rho - u^{L+1})$, i.e. $\dot{\bar w} = L\lambda\rho\,
  \bar w^{2 - 1/L} - L\lambda\bar w^3$.

These are the forms recorded for the paper (the factor $L$ sets the time unit; we keep it so that
$t$ is the time of gradient flow on $\mathcal L$ itself, i.e. learning rate times steps).

**Fixed points: what converges to $\rho^L$.** JEPA: the head $v \to \rho$ for any init with $\bar w
\neq 0$ (the target moves with the encoder, so the encoder's scale is not fixed by the loss: every
$\bar w$ with $v = \rho$ is stationary). Which $\bar w$ is reached is set by the invariants: $w_l^2
\to \rho^2 - c_l$, so $\bar w_\infty = \prod_l \mathrm{sign}(w_l(0))\sqrt{\rho^2 - c_l}$ (for $v(0)
> 0$, $\rho > 0$ and $\rho^2 > \max_l c_l$). Otherwise the smallest layer reaches zero first and the
feature collapses, $\bar w \to 0$ with $v \to \pm\sqrt{\max_l c_l}$: e.g. a predictor that starts
with the wrong sign and is larger than the smallest layer (`jepa_limit`). Small random inits are not
balanced, so which features survive, and at what gain, depends on the draw. Only for the balanced
init ($c_l = 0$) is this the paper's $\bar w_\infty = \rho^L$, with every layer at $\rho$ and the
prediction $V\bar W$ at $\rho^{L+1}$. So "the JEPA encoder converges to $\rho^L$" means: the
encoder's gain on feature $i$, $\|\bar Wq_i\|$, tends to $\rho_i^L$ from a balanced init. MAE: the
end-to-end map $v\bar w \to \rho$, and with balance $u^{L+1} = \rho$, so $\bar w_\infty =
\rho^{L/(L+1)}$.

**Learning times (derived in closed form).** JEPA, by the partial fractions
$\frac{1}{u^n(\rho - u)} = \sum_{k=1}^{n}\rho^{k-n-1}u^{-k} + \frac{\rho^{-n}}{\rho - u}$ with
$n = 2L$:
$$\lambda t(u) = \sum_{k=2}^{2L}\frac{\rho^{k-2L-1}}{k-1}\big(u_0^{1-k} - u^{1-k}\big)
  + \rho^{-2L}\Big[\ln\frac{u}{u_0} + \ln\frac{\rho - u_0}{\rho - u}\Big].$$
Keeping only the $u_0$ terms ($n = k - 1$) gives the paper's critical time
$t^* \approx \lambda^{-1}\sum_{n=1}^{2L-1} 1/(n\rho^{2L-n}\varepsilon^{n/L})$, plus logarithms.
MAE, from $\frac{1}{u^L(\rho - u^{L+1})} = \frac1\rho\big[u^{-L} + \frac{u}{\rho - u^{L+1}}\big]$:
$\lambda\rho\,t(u) = \frac{u_0^{1-L} - u^{1-L}}{L-1} + \int_{u_0}^{u}\frac{s\,ds}{\rho - s^{L+1}}$
($\ln(u/u_0)$ in place of the first term when $L = 1$); the remaining integral, less its simple
pole at the fixed point (done in closed form), is smooth and done by Gauss-Legendre quadrature. Its leading term is
$t^* \approx 1/((L-1)\lambda\rho\,\varepsilon^{(L-1)/L})$.

**Why depth makes JEPA greedy in $\rho$ (derived).** Rescaling $u = \rho s$ turns the JEPA ODE into
$\dot s = \lambda\rho^{2L}s^{2L}(1 - s)$ from $s_0 = u_0/\rho$, so the time to reach a fixed
fraction of the fixed point is $F_L(u_0/\rho)/(\lambda\rho^{2L})$ with a universal $F_L$. When $u_0
\ll \rho$, $F_L(s_0) \approx s_0^{1-2L}/(2L-1)$ and the time is $\approx 1/((2L-1)\lambda\rho
u_0^{2L-1})$: ordered by $\lambda\rho$, like MAE. At a fixed end-to-end init $\varepsilon$ the
per-layer gain $u_0 = \varepsilon^{1/L}$ grows with depth, $u_0/\rho$ stops being small, and the
time's dependence on $\rho$ steepens: `rho_exponent` gives the local exponent $a = -\partial\ln
t/\partial\ln\rho = 2L - s_0^{1-2L}/((1 - s_0)F_L(s_0))$ of $t \propto 1/(\lambda\rho^a)$. It is 1
at small $s_0$ and grows with $s_0$ (at $L = 3$, time to half the fixed point: $a = 1.15, 1.46,
1.71$ at $s_0 = 0.1, 0.25, 0.4$) until the init nears the target level, where it falls again. MAE
rescales with $u = \rho^{1/(L+1)}s$ to $\dot s = \lambda\rho^{2L/(L+1)}s^L(1 - s^{L+1})$, so its
exponent is below $2L/(L+1) < 2$ and in practice near 1: MAE stays ordered by $\lambda\rho$. Two
features with $\lambda_A < \lambda_B$ and $\rho_A > \rho_B$ are learned A first roughly when $a >
\ln(\lambda_B/\lambda_A)/\ln(\rho_A/\rho_B)$. The depth effect needs $u_0$ comparable to $\rho$,
i.e. an init that is small end to end but not per layer; it is not monotone in depth at fixed
$\varepsilon$: once $u_0$ nears a feature's target level, that feature is nearly learned at $t = 0$
and the ratio turns back (for $(\lambda, \rho) = (1, 0.9)$ vs $(3, 0.4)$ at $\varepsilon = 10^{-2}$:
$t_A/t_B = 1.32, 1.07, 0.82, 1.21$ at $L = 1, \dots, 4$).

**Against the shared note** (`deep_linear_lazy_rich.md`, sec. 7, recalled, not read in the paper):
the ODEs, the conservation of $v^2 - w_l^2$, both fixed points and both critical times agree with
it; its table of $t_A/t_B$ at $\varepsilon = 10^{-3}$ (JEPA 1.33, 1.24, 1.06, 0.83, 0.61; MAE 1.42,
1.35, 1.34, 1.34, 1.33 at $L = 1..5$) is reproduced by `half_time` to the printed digits. Added
here: exact learning times (not only their leading terms); gradient descent keeps a balanced init
exactly balanced, so full-matrix descent is forward Euler on the reduced ODE and differs from it
only at first order in the learning rate; the invariants decide the JEPA end point, including
collapse; the no-stop-gradient flow; and the non-monotone ratio above, which qualifies the note's
test "the JEPA ratio falls strictly with $L$" (true at $\varepsilon = 10^{-3}$ up to $L = 5$, not at
larger $\varepsilon$).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from theory.integrate import rk4

OBJECTIVES = ("jepa", "mae")


def _check_objective(objective: str, allowed=OBJECTIVES) -> None:
  if objective not in allowed:
    raise ValueError(f"objective must be one of {allowed}, got {objective!r}")


# ---------------------------------------------------------------- balanced (reduced) dynamics


def balanced_rate(u, lam, rho, depth: int, objective: str):
  """du/dt of the per-layer gain u of a balanced feature (all L layers and the head equal u)."""
  _check_objective(objective)
  if objective == "jepa":
    return lam * u ** (2 * depth) * (rho - u)
  return lam * u ** depth * (rho - u ** (depth + 1))


def encoder_rate(wbar, lam, rho, depth: int, objective: str):
  r"""d wbar/dt in the paper's form: $L\lambda\rho\bar w^{3-1/L} - L\lambda\bar w^3$ (JEPA) or
  $L\lambda\rho\bar w^{2-1/L} - L\lambda\bar w^3$ (MAE), for $\bar w > 0$."""
  _check_objective(objective)
  power = 3.0 - 1.0 / depth if objective == "jepa" else 2.0 - 1.0 / depth
  return depth * lam * rho * wbar ** power - depth * lam * wbar ** 3


def balanced_gain(lam, rho, u0, depth: int, objective: str, *, num_saves: int, save_every: float,
                  substeps: int = 20):
  """Per-layer gain u at times save_every * (1, ..., num_saves), by RK4 with `substeps` per save.

  `lam`, `rho`, `u0` broadcast to one shape (one feature each); returns (times, u[num_saves, ...]).
  The encoder is u ** depth.
  """
  lam, rho, u0 = jnp.broadcast_arrays(*(jnp.asarray(a, float) for a in (lam, rho, u0)))
  rhs = lambda u, t: balanced_rate(u, lam, rho, depth, objective)
  return rk4(rhs, u0, 0.0, save_every / substeps, num_saves, substeps)


def encoder_strength(lam, rho, eps, depth: int, objective: str, *, num_saves: int,
                     save_every: float, substeps: int = 20):
  r"""The encoder gain $\bar w(t)$ of each feature from the balanced init $\bar w(0) =
  \varepsilon$, at the times of `balanced_gain`; returns (times, wbar[num_saves, ...])."""
  eps = jnp.asarray(eps, float)
  times, u = balanced_gain(lam, rho, eps ** (1.0 / depth), depth, objective, num_saves=num_saves,
                           save_every=save_every, substeps=substeps)
  return times, u ** depth


def fixed_point(rho, depth: int, objective: str):
  r"""(u*, wbar*, v*) of a balanced feature: JEPA $(\rho, \rho^L, \rho)$; MAE has
  $u^{*\,L+1} = \rho$, so $(\rho^{1/(L+1)}, \rho^{L/(L+1)}, \rho^{1/(L+1)})$."""
  _check_objective(objective)
  rho = jnp.asarray(rho, float)
  u = rho if objective == "jepa" else rho ** (1.0 / (depth + 1))
  return u, u ** depth, u


# ---------------------------------------------------------------- unbalanced per-feature flow


def _products_except(w):
  """p_l = prod_{k != l} w_k along axis 0 (no division, so a zero layer is fine)."""
  ones = jnp.ones_like(w[:1])
  before = jnp.cumprod(jnp.concatenate([ones, w[:-1]], axis=0), axis=0)
  after = jnp.flip(jnp.cumprod(jnp.concatenate([ones, jnp.flip(w, 0)[:-1]], axis=0), axis=0), 0)
  return before * after


def per_feature_rate(v, w, lam, rho, objective: str, lam_y=None):
  """(dv/dt, dw/dt) of one decoupled feature with head gain v [...] and layer gains w [L, ...].

  objective: 'jepa', 'mae', or 'jepa_no_sg' (JEPA with the gradient through the target; needs the
  target view's variance `lam_y`, default `lam`).
  """
  _check_objective(objective, OBJECTIVES + ("jepa_no_sg",))
  wbar = jnp.prod(w, axis=0)
  p = _products_except(w)
  if objective == "mae":
    err = rho - v * wbar
    return lam * wbar * err, (lam * v * err)[None] * p
  dv = lam * wbar ** 2 * (rho - v)
  if objective == "jepa":
    return dv, (lam * v * wbar * (rho - v))[None] * p
  lam_y = lam if lam_y is None else lam_y
  return dv, -(wbar * (lam * v ** 2 - 2.0 * lam * rho * v + lam_y))[None] * p


def per_feature_flow(v0, w0, lam, rho, objective: str, *, num_saves: int, save_every: float,
                     substeps: int = 20, lam_y=None):
  """RK4 of `per_feature_rate`; returns (times, v[num_saves, ...], w[num_saves, L, ...])."""
  v0, w0 = jnp.asarray(v0, float), jnp.asarray(w0, float)
  rhs = lambda state, t: per_feature_rate(state[0], state[1], lam, rho, objective, lam_y)
  times, (v, w) = rk4(rhs, (v0, w0), 0.0, save_every / substeps, num_saves, substeps)
  return times, v, w


def invariants(v, w):
  """c_l = v^2 - w_l^2 [L, ...], conserved by the JEPA and MAE flows."""
  return v[None] ** 2 - w ** 2


def jepa_limit(v0, w0, rho):
  r"""Where the JEPA flow ends from a decoupled init: head gain v0 [...], layer gains w0 [L, ...].

  Along the flow $w_l^2 = v^2 - c_l$ while $v$ moves monotonically from $v_0$ towards $\rho > 0$.
  The feature is learned ($v \to \rho$, $w_l \to \mathrm{sign}(w_l(0))\sqrt{\rho^2 - c_l}$) unless
  the smallest layer reaches zero first, i.e. unless $v^2$ falls to $c_{\max} = \max_l c_l$ on the
  way: that happens when $\rho^2 \le c_{\max}$, or when $v_0 < 0$ and $c_{\max} > 0$ (a predictor
  that starts with the wrong sign, larger than the smallest layer). Then the feature collapses:
  $v \to \mathrm{sign}(v_0)\sqrt{c_{\max}}$ and $\bar w \to 0$. Returns (v, w [L, ...], wbar,
  learned).
  """
  v0, w0 = jnp.asarray(v0, float), jnp.asarray(w0, float)
  rho = jnp.broadcast_to(jnp.asarray(rho, float), v0.shape)
  c = invariants(v0, w0)
  c_max = jnp.max(c, axis=0)
  learned = (rho ** 2 > c_max) & ((v0 > 0) | (c_max < 0))
  v = jnp.where(learned, rho, jnp.sign(v0) * jnp.sqrt(jnp.maximum(c_max, 0.0)))
  w = jnp.sign(w0) * jnp.sqrt(jnp.maximum(v[None] ** 2 - c, 0.0))
  return v, w, jnp.prod(w, axis=0), learned


# ---------------------------------------------------------------- learning times


def jepa_time(u, u0, lam, rho, depth: int):
  """Exact time for a balanced JEPA feature's layer gain to grow from u0 to u (0 < u0 <= u < rho).

  The partial-fraction integral of the module docstring; arguments broadcast.
  """
  u, u0, lam, rho = jnp.broadcast_arrays(*(jnp.asarray(a, float) for a in (u, u0, lam, rho)))
  n = 2 * depth
  total = rho ** (-n) * (jnp.log(u / u0) + jnp.log((rho - u0) / (rho - u)))
  for k in range(2, n + 1):
    total = total + rho ** (k - n - 1) * (u0 ** (1 - k) - u ** (1 - k)) / (k - 1)
  return total / lam


def mae_time(u, u0, lam, rho, depth: int, num_nodes: int = 64):
  """Exact time for a balanced MAE feature's gain to grow from u0 to u (0 < u0 <= u < u*).

  u* = rho^(1/(L+1)). The $u^{-L}$ part and the simple pole of $s/(\rho - s^{L+1})$ at u*, with
  residue $u_*^{1-L}/(L+1)$, are integrated in closed form; the smooth rest by `num_nodes`-point
  Gauss-Legendre quadrature, so the time stays accurate as u approaches u*.
  """
  u, u0, lam, rho = jnp.broadcast_arrays(*(jnp.asarray(a, float) for a in (u, u0, lam, rho)))
  if depth == 1:
    singular = jnp.log(u / u0)
  else:
    singular = (u0 ** (1 - depth) - u ** (1 - depth)) / (depth - 1)
  u_star = rho ** (1.0 / (depth + 1))
  residue = u_star ** (1 - depth) / (depth + 1)
  pole = residue * jnp.log((u_star - u0) / (u_star - u))
  nodes, weights = (jnp.asarray(a).reshape((1,) * u.ndim + (num_nodes,))
                    for a in np.polynomial.legendre.leggauss(num_nodes))
  half = (u - u0) / 2.0
  s = (u0 + half)[..., None] + half[..., None] * nodes
  rest = s / (rho[..., None] - s ** (depth + 1)) - residue[..., None] / (u_star[..., None] - s)
  smooth = half * jnp.sum(weights * rest, axis=-1)
  return (singular + pole + smooth) / (lam * rho)


def learning_time(fraction, lam, rho, eps, depth: int, objective: str):
  r"""Time for the encoder $\bar w$ to reach `fraction` of its fixed point from the balanced init
  $\bar w(0) = \varepsilon$; NaN where the init is already past that level."""
  _check_objective(objective)
  u_star, _, _ = fixed_point(rho, depth, objective)
  u = u_star * jnp.asarray(fraction, float) ** (1.0 / depth)
  u0 = jnp.asarray(eps, float) ** (1.0 / depth)
  t = jepa_time(u, u0, lam, rho, depth) if objective == "jepa" else mae_time(u, u0, lam, rho, depth)
  return jnp.where(u >= u0, t, jnp.nan)  # NaN: the init is already past the level


def half_time(lam, rho, eps, depth: int, objective: str):
  """Time for the encoder to reach half its fixed point (the learning time used for orderings)."""
  return learning_time(0.5, lam, rho, eps, depth, objective)


def critical_time(lam, rho, eps, depth: int, objective: str):
  r"""Leading small-$\varepsilon$ learning time: JEPA, the paper's $\lambda^{-1}\sum_{n=1}^{2L-1}
  1/(n\rho^{2L-n}\varepsilon^{n/L})$; MAE, $1/((L-1)\lambda\rho\varepsilon^{(L-1)/L})$, or
  $\ln(1/\varepsilon)/(\lambda\rho)$ at $L = 1$. Logarithmic and O(1) terms are dropped."""
  _check_objective(objective)
  lam, rho, eps = (jnp.asarray(a, float) for a in (lam, rho, eps))
  if objective == "jepa":
    return sum(1.0 / (n * rho ** (2 * depth - n) * eps ** (n / depth))
               for n in range(1, 2 * depth)) / lam
  if depth == 1:
    return jnp.log(1.0 / eps) / (lam * rho)
  return 1.0 / ((depth - 1) * lam * rho * eps ** ((depth - 1) / depth))


def rho_exponent(rho, eps, depth: int, objective: str, fraction: float = 0.5):
  r"""$a = -\partial\ln t/\partial\ln\rho$ at fixed $\lambda$, $\varepsilon$, for the learning time
  $t$ to `fraction` of the fixed point; locally $t \propto 1/(\lambda\rho^a)$, so $a = 1$ is
  ordering by $\lambda\rho$ and larger $a$ favours high-$\rho$ features.

  JEPA: $a = 2L - s_0^{1-2L}/((1 - s_0)F)$ with $s_0 = u_0/\rho$ and $F = \lambda\rho^{2L}t$.
  MAE: $a = \frac{2L}{L+1} - s_0^{1-L}/((L+1)(1 - s_0^{L+1})G)$ with $s_0 = u_0\rho^{-1/(L+1)}$ and
  $G = \lambda\rho^{2L/(L+1)}t$. The subtracted terms are positive, so $a < 2L$ (JEPA) and
  $a < 2L/(L+1) < 2$ (MAE).
  """
  _check_objective(objective)
  rho = jnp.asarray(rho, float)
  u0 = jnp.asarray(eps, float) ** (1.0 / depth)
  t = learning_time(fraction, 1.0, rho, eps, depth, objective)
  if objective == "jepa":
    s0 = u0 / rho
    return 2 * depth - s0 ** (1 - 2 * depth) / ((1.0 - s0) * t * rho ** (2 * depth))
  s0 = u0 * rho ** (-1.0 / (depth + 1))
  g = t * rho ** (2.0 * depth / (depth + 1))
  return (2.0 * depth - s0 ** (1 - depth) / ((1.0 - s0 ** (depth + 1)) * g)) / (depth + 1)
