"""Hierarchical Gaussian filters (Mathys et al. 2011, 2014; the eHGF order of Weber et al. 2024):
one-step updates against the closed forms of `theory.hgf` (hand-derived rational values, and random
settings for 3-level binary and continuous networks in both orders; 4 levels in the tests), the
Kalman steady state of a level with fixed volatility and the exact likelihood its surprises add up
to, and trajectories through volatile environments (the volatility estimate and the learning rate
rise, every precision stays positive). Writes `config.json`, `metrics.jsonl`, `figures/*.png`,
`results.json`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import common
from experiments.hgf import config as config_lib
from jaxlab import core
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.predictive_coding import hgf
from theory import hgf as theory

# One trial of the 3-level binary HGF from mu = 0, pi = 1, omega = 0, kappa = 1 with u = 1, worked
# by hand (derivation in tests/test_hgf.py): exact rationals.
HAND_DERIVED = (("pi_2", 3 / 4), ("mu_2", 2 / 3), ("Delta_2", -1 / 9), ("pi_3", 5 / 8),
                ("mu_3 (standard)", -2 / 45), ("mu_3 (ehgf)", -1 / 18))
HAND_TOLERANCE = 1e-12
CONTRACTION_TOLERANCE = 1e-3  # the measured ratio carries an O(|p_k - p*| / p*) nonlinearity
KALMAN_RATIO_TOLERANCE = 1e-9


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, [
      "one_step_settings", "one_step_tolerance", "stable_trials", "block_length", "num_blocks",
      "sequences", "walk_trials", "pi_u", "min_learning_rate_ratio"])
  if not 0.5 < config.p_high < 1.0:
    raise ValueError(f"config.p_high must lie in (0.5, 1), got {config.p_high}")
  if not 0 <= config.burn_in < min(config.stable_trials, config.walk_trials):
    raise ValueError("config.burn_in must be >= 0 and shorter than the first (stable) phase")
  if len(config.walk_log_step_variances) != 2:
    raise ValueError("config.walk_log_step_variances needs two entries: stable, then volatile")


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  key = jax.random.key(config.seed)
  writer = core.MetricWriter(os.path.join(workdir, "metrics.jsonl"), {"study": "hgf"})
  writer.clear()
  comparisons = _one_step_rows(config, writer)
  schedule = hgf.stable_volatile_schedule(config.stable_trials, config.block_length,
                                          config.num_blocks, config.p_high, 1.0 - config.p_high)
  binary_data, walk_data = _environments(config, schedule[:2], key)
  binary_rows, binary = _binary_volatility(config, binary_data, schedule[2], writer)
  continuous_rows, continuous = _continuous_volatility(config, walk_data, writer)
  steady_rows, steady = _steady_state(config, continuous)
  comparisons += steady_rows + binary_rows + continuous_rows
  # kappa = 0 runs are left out: with no volatility updates their precisions cannot go negative.
  min_precision = min(float(np.min(runs[order].pi)) for runs in (binary["runs"], continuous["runs"])
                      for order in hgf.ORDERS)
  comparisons.append(common.Comparison(
      "min posterior precision, every level and trial of the volatile-environment runs (binary "
      "and continuous, both orders)", 0.0, min_precision, relation=">="))
  writer.close()
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, steady, binary, continuous, figdir))
  return {"comparisons": comparisons, "figures": figures, "steady": steady, "binary": binary,
          "continuous": continuous}


def _one_step_rows(config, writer) -> list[common.Comparison]:
  rows = []
  rng = np.random.default_rng(config.seed)
  for kind in ("binary", "continuous"):
    check = one_step_check(rng, kind, 3, config.one_step_settings)
    writer.write_rows([{"check": "one_step", "kind": kind, "levels": 3, **check}])
    if kind == "binary":  # setting 0 is the hand-derived one
      for name, exact in HAND_DERIVED:
        rows.append(common.Comparison(
            f"binary HGF, one trial from mu=0, pi=1, omega=0, kappa=1, u=1: {name} "
            "(hand-derived)", exact, check["hand"][name], HAND_TOLERANCE))
    rows.append(common.Comparison(
        f"{kind} HGF (3 levels), one trial, {config.one_step_settings} random settings, both "
        "orders: max |jaxlab - theory/hgf.py| / max(1, |theory|) over every output",
        0.0, check["max_error"], config.one_step_tolerance))
    rows.append(common.Comparison(
        f"{kind} HGF: mu_standard - mu_ehgf of the volatility parent vs the closed-form gap "
        "-k^3 w Delta c / (2 pi_hat (pi_hat + k^2 c)), max abs error", 0.0,
        check["order_gap_error"], config.one_step_tolerance))
  return rows


def random_settings(rng: np.random.Generator, kind: str, levels: int, n: int) -> dict:
  """n random previous posteriors, parameters and inputs for one trial of a `levels`-level HGF;
  for a binary 3-level HGF, setting 0 is the hand-derived one (all mu, omega 0; pi, kappa, u 1)."""
  g = levels - 1 if kind == "binary" else levels
  u = rng.integers(0, 2, n).astype(float) if kind == "binary" else rng.normal(0.0, 1.5, n)
  s = {"mu": rng.normal(0.0, 1.0, (n, g)), "pi": rng.uniform(0.5, 3.0, (n, g)),
       "omega": rng.uniform(-4.0, 0.0, (n, g)), "kappa": rng.uniform(0.3, 2.0, (n, g - 1)),
       "pi_u": rng.uniform(0.5, 5.0, n), "u": u}
  if kind == "binary" and levels == 3:
    for name, value in (("mu", 0.0), ("omega", 0.0), ("pi", 1.0), ("kappa", 1.0), ("u", 1.0)):
      s[name][0] = value
  return s


def one_step_check(rng, kind: str, levels: int, n: int) -> dict:
  """One jaxlab trial from n random settings, both orders, against theory/hgf.py: the max relative
  error over every output, the max error of the order gap, and setting 0's values."""
  s = random_settings(rng, kind, levels, n)
  params = hgf.HGFParams(omega=s["omega"], kappa=s["kappa"], mu0=s["mu"], pi0=s["pi"],
                         pi_u=s["pi_u"] if kind == "continuous" else None)
  run_fn = hgf.binary_hgf if kind == "binary" else hgf.continuous_hgf
  steps = {order: run_each(run_fn, params, s["u"][:, None], order) for order in hgf.ORDERS}
  error, gap = 0.0, 0.0
  for i in range(n):
    args = (s["u"][i], list(s["mu"][i]), list(s["pi"][i]), list(s["omega"][i]),
            list(s["kappa"][i]))
    for order, step in steps.items():
      if kind == "binary":
        ref = theory.binary_hgf_one_step(*args, order=order)
      else:
        ref = theory.continuous_hgf_one_step(*args, pi_u=s["pi_u"][i], order=order)
      pairs = [(step.mu[i, 0], ref["mu"]), (step.pi[i, 0], ref["pi"]),
               (step.pi_hat[i, 0], ref["pi_hat"]), (step.volatility_pe[i, 0], ref["vope"]),
               (step.learning_rate[i, 0], ref["learning_rate"]),
               (step.surprise[i, 0], ref["surprise"]), (step.prediction[i, 0], ref["mu_hat_1"])]
      for got, want in pairs:
        got, want = np.atleast_1d(np.asarray(got)), np.atleast_1d(np.asarray(want, float))
        error = max(error, float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))))
    # The orders part at the first volatility parent by the derived gap (w, Delta from theory).
    measured = float(steps["standard"].mu[i, 0, 1] - steps["ehgf"].mu[i, 0, 1])
    predicted = theory.order_gap(s["kappa"][i][0], ref["w"][0], ref["vope"][0], ref["pi_hat"][1])
    gap = max(gap, abs(measured - predicted))
  std, ehgf = steps["standard"], steps["ehgf"]
  hand = {"pi_2": std.pi[0, 0, 0], "mu_2": std.mu[0, 0, 0], "Delta_2": std.volatility_pe[0, 0, 0],
          "pi_3": std.pi[0, 0, 1], "mu_3 (standard)": std.mu[0, 0, 1],
          "mu_3 (ehgf)": ehgf.mu[0, 0, 1]}
  return {"max_error": error, "order_gap_error": gap,
          "hand": {k: float(v) for k, v in hand.items()}}


def run_each(run_fn, params: hgf.HGFParams, u_SxT, order: str = "standard", batched_params=True):
  """Stacked trajectories of run_fn over each sequence u_SxT[s] (with params[s] if batched_params).

  A Python loop over one compiled scan rather than a vmap: XLA:CPU compiles the batched scan about
  4x slower than the unbatched one (~1 s against 0.25 s here), every call below shares that one
  compilation (the order is traced, not static), and the runs themselves take milliseconds.
  """
  u_SxT = np.asarray(u_SxT)
  trajectories = []
  for s in range(u_SxT.shape[0]):
    p = jax.tree.map(lambda x: x[s], params) if batched_params else params
    trajectories.append(run_fn(p, u_SxT[s], order))
  return jax.tree.map(lambda *x: np.stack(x), *trajectories)


def _steady_state(config, continuous):
  """kappa = 0: level 1 of the continuous HGF is a Kalman filter; its precision's fixed point, the
  rate it gets there and the likelihood its surprises add up to are closed forms (theory/hgf.py)."""
  omega, pi_u = config.continuous_omega[0], config.pi_u
  control, u = continuous["runs"]["kappa=0"], continuous["u"][0]
  pi_1 = np.asarray(control.pi[0, :, 0])  # data-independent: the same in every sequence
  p_star = theory.steady_state_precision(pi_u, omega)
  contraction = theory.steady_state_contraction(pi_u, omega)
  err = pi_1 - p_star
  # Ratios of successive errors where the error is small (linear regime) but far above round-off.
  near = np.flatnonzero((np.abs(err[:-1]) < 1e-4 * p_star) & (np.abs(err[:-1]) > 1e-9 * p_star))
  ratio = float(np.median(err[near + 1] / err[near])) if near.size else float("nan")
  mu0, pi0 = float(continuous["params"].mu0[0]), float(continuous["params"].pi0[0])
  nll = theory.random_walk_negative_log_likelihood(u, mu0, pi0, omega, pi_u)
  rows = [
      common.Comparison(f"continuous HGF, kappa=0 (pi_u={pi_u:g}, omega_1={omega:g}): pi_1 after "
                        f"{pi_1.size} trials vs the fixed point pi_u/2 + sqrt(pi_u^2/4 + pi_u "
                        "e^-omega_1)", p_star, float(pi_1[-1]), config.one_step_tolerance),
      common.Comparison("continuous HGF, kappa=0: per-trial contraction of pi_1 - p* vs "
                        "(1 - K*)^2, K* = pi_u / p*", contraction, ratio, CONTRACTION_TOLERANCE),
      common.Comparison(f"continuous HGF, kappa=0: sum of surprises over {u.size} trials vs the "
                        "exact Gaussian random-walk negative log-likelihood", nll,
                        float(np.sum(control.surprise[0])), config.one_step_tolerance)]
  return rows, {"pi_1": pi_1, "p_star": p_star, "contraction": contraction}


def _environments(config, schedule, key):
  """Both environments' sequences in one compiled call (random-number code compiles slowly on
  CPU; this is most of the quick run's time otherwise)."""
  t = config.walk_trials

  @jax.jit
  def draw(key):
    k_binary, k_walk = jax.random.split(key)
    return (hgf.volatile_binary_sequence(k_binary, *schedule, config.sequences),
            hgf.volatile_gaussian_walk(k_walk, config.walk_log_step_variances, [t, t],
                                       config.pi_u, config.sequences))

  return jax.tree.map(np.asarray, draw(key))


def phase_ratio(x_SxT, volatile: slice, stable: slice) -> np.ndarray:
  """Per sequence: the mean of x over the volatile phase over its mean over the stable phase."""
  x_SxT = np.asarray(x_SxT)
  return x_SxT[:, volatile].mean(1) / x_SxT[:, stable].mean(1)


def _binary_volatility(config, data, volatile, writer):
  u_SxT, p_T = data
  params = hgf.binary_params(3, config.binary_omega, config.binary_kappa, config.binary_mu0,
                             config.binary_pi0)
  control = params._replace(kappa=jnp.zeros_like(params.kappa))
  runs = {order: run_each(hgf.binary_hgf, params, u_SxT, order, batched_params=False)
          for order in hgf.ORDERS}
  runs["kappa=0"] = run_each(hgf.binary_hgf, control, u_SxT, batched_params=False)
  stable = slice(config.burn_in, config.stable_trials)
  rows, base = [], phase_ratio(runs["kappa=0"].learning_rate, volatile, stable)
  for order in hgf.ORDERS:
    r = runs[order]
    # Paired with the same sequence at kappa = 0, which takes out the sigmoid's share: the
    # implied rate s'(mu_hat)/pi_2 rises in a volatile phase even without volatility learning.
    gain = phase_ratio(r.learning_rate, volatile, stable) / base
    logit = phase_ratio(1.0 / r.pi[:, :, 0], volatile, stable)
    rise = r.mu[:, volatile, 1].mean(1) - r.mu[:, stable, 1].mean(1)
    writer.write_rows([{"check": "binary_volatility", "order": order, "sequence": s,
                        "learning_rate_ratio": gain[s] * base[s], "kappa0_ratio": base[s],
                        "logit_weight_ratio": logit[s], "mu3_rise": rise[s]}
                       for s in range(config.sequences)])
    rows += [
        common.Comparison(
            f"binary HGF, {order}: implied learning rate, volatile / stable phase, over the same "
            f"ratio with kappa=0 (the sigmoid's share), min over {config.sequences} sequences",
            1.0, float(gain.min()), relation=">="),
        common.Comparison(f"binary HGF, {order}: level-3 mean, volatile minus stable phase, min "
                          "over sequences", 0.0, float(rise.min()), relation=">="),
        common.Comparison(
            f"binary HGF, {order}: logit-scale weight 1/pi_2, volatile / stable, mean (measured: "
            "falls, the sigmoid's information mu_hat(1 - mu_hat) grows as predictions turn "
            "uncertain)", 1.0, float(logit.mean()), relation="<=")]
  drift = float(np.max(np.abs(runs["kappa=0"].mu[:, :, 1] - float(control.mu0[1]))))
  rows.append(common.Comparison("binary HGF, kappa=0 (negative control): max |mu_3 - mu_3(0)| "
                                "over every trial", 0.0, drift, 0.0))
  return rows, {"runs": runs, "u": u_SxT, "p": p_T, "volatile": volatile, "stable": stable}


def _continuous_volatility(config, data, writer):
  t = config.walk_trials
  u_SxT, x_SxT = data
  params = hgf.continuous_params(2, config.continuous_omega, config.pi_u, config.continuous_kappa,
                                 mu0=0.0, pi0=1.0)
  control = params._replace(kappa=jnp.zeros_like(params.kappa))
  runs = {order: run_each(hgf.continuous_hgf, params, u_SxT, order, batched_params=False)
          for order in hgf.ORDERS}
  runs["kappa=0"] = run_each(hgf.continuous_hgf, control, u_SxT, batched_params=False)
  stable, volatile = slice(config.burn_in, t), slice(t, 2 * t)
  jump = math.exp(config.walk_log_step_variances[1] - config.walk_log_step_variances[0])
  rows = []
  for order in hgf.ORDERS:
    lr = phase_ratio(runs[order].learning_rate, volatile, stable)
    writer.write_rows([{"check": "continuous_volatility", "order": order, "sequence": s,
                        "learning_rate_ratio": lr[s]} for s in range(config.sequences)])
    rows.append(common.Comparison(
        f"continuous HGF, {order}: learning rate pi_u/pi_1, volatile / stable phase (step "
        f"variance x{jump:.3g}), min over {config.sequences} sequences",
        config.min_learning_rate_ratio, float(lr.min()), relation=">="))
  base = phase_ratio(runs["kappa=0"].learning_rate, volatile, stable)
  rows.append(common.Comparison(
      "continuous HGF, kappa=0 (negative control): learning rate volatile / stable (a Kalman "
      "gain does not see the data), max over sequences", 1.0, float(base.max()),
      KALMAN_RATIO_TOLERANCE))
  return rows, {"runs": runs, "u": u_SxT, "x": x_SxT, "volatile": volatile, "params": params}


def _figures(config, steady, binary, continuous, figdir) -> dict[str, str]:
  colors = dict(zip(hgf.ORDERS, plotting.colors(2)))
  fig, axes = plotting.figure_grid(3, width=5.0)
  runs, vol = binary["runs"], binary["volatile"]
  trials = np.arange(binary["u"].shape[1])
  for ax in axes:
    ax.axvspan(vol.start, vol.stop, color="0.92", linewidth=0)
  axes[0].plot(trials, binary["u"][0] * 1.04 - 0.02, "|", color="0.5", markersize=3,
               label="observations")
  axes[0].plot(trials, binary["p"], "k-", linewidth=1.0, label="true p")
  for order in hgf.ORDERS:
    r = runs[order]
    mu2, sd2 = r.mu[0, :, 0], 1.0 / np.sqrt(r.pi[0, :, 0])
    axes[0].fill_between(trials, _sigmoid(mu2 - sd2), _sigmoid(mu2 + sd2), color=colors[order],
                         alpha=0.2, linewidth=0)
    axes[0].plot(trials, _sigmoid(mu2), color=colors[order], linewidth=1.2,
                 label=f"s(mu_2) +- 1 sd, {order}")
    mu3, sd3 = r.mu[0, :, 1], 1.0 / np.sqrt(r.pi[0, :, 1])
    axes[1].fill_between(trials, mu3 - sd3, mu3 + sd3, color=colors[order], alpha=0.15,
                         linewidth=0)
    axes[1].plot(trials, mu3, color=colors[order], label=f"mu_3 +- 1 sd, {order}")
    axes[2].plot(trials, r.learning_rate[0], color=colors[order], linewidth=0.8, label=order)
  axes[2].plot(trials, runs["kappa=0"].learning_rate[0], color="k", linestyle="--",
               linewidth=0.8, label="kappa = 0")
  axes[0].set_title("binary HGF on a volatile sequence (shaded: reversals)")
  axes[0].set_ylabel("probability")
  axes[1].set_title("level 3: log-volatility estimate")
  axes[2].set_title("implied learning rate on the probability scale")
  for ax in axes:
    ax.set_xlabel("trial")
    ax.legend(frameon=False, fontsize=6)
  out = {"hgf_binary": plotting.save(fig, os.path.join(figdir, "hgf_binary.png"))}

  fig, axes = plotting.figure_grid(2, width=5.0)
  runs, vol = continuous["runs"], continuous["volatile"]
  trials = np.arange(continuous["u"].shape[1])
  axes[0].axvspan(vol.start, vol.stop, color="0.92", linewidth=0)
  for order in hgf.ORDERS:
    axes[0].plot(trials, runs[order].learning_rate[0], color=colors[order], label=order)
  axes[0].plot(trials, runs["kappa=0"].learning_rate[0], "k--", linewidth=0.8,
               label="kappa = 0 (Kalman)")
  axes[0].set_title("continuous HGF: pi_u / pi_1 (shaded: volatile)")
  axes[0].set_xlabel("trial")
  axes[0].legend(frameon=False, fontsize=7)
  err = np.abs(steady["pi_1"] - steady["p_star"]) / steady["p_star"]
  k = np.arange(1, np.argmax(err < 1e-13) + 1)  # until round-off
  # Theory: the error shrinks by (1 - K*)^2 per trial, anchored where it is already small (linear).
  k0 = int(np.argmax(err < 1e-6))
  plotting.theory_over_simulation(axes[1], k, err[k - 1],
                                  err[k0] * steady["contraction"] ** (k - 1.0 - k0),
                                  color=colors["standard"], label="|pi_1 - p*| / p*, kappa = 0")
  axes[1].set_yscale("log")
  axes[1].set_xlabel("trial")
  axes[1].set_title("pi_1 to its fixed point; dashed: rate (1 - K*)^2")
  axes[1].legend(frameon=False, fontsize=7)
  out["hgf_continuous"] = plotting.save(fig, os.path.join(figdir, "hgf_continuous.png"))
  return out


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))
