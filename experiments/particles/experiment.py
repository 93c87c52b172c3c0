"""Self-attention as interacting particles on the sphere (Geshkovski, Letrouit, Polyanskiy & Rigollet
2023): SA and USA flows against the closed forms of `theory.attention.particles`.

`run(config, workdir)` integrates (i) equiangular starts for SA and USA and compares the pairwise cosine
with the reduction ODE and the late clustering rate with 2 (SA) / 2 e^beta (USA); (ii) the energy along a
random-start trajectory with its rate identity; (iii) two particles' merge time with its Ei closed form;
(iv) one layer's output cosine on an equiangular input with the long-context formula; (v) the (beta, t)
phase diagram of random starts against the equiangular prediction beta*(t). Writes `config.json`,
`figures/*.png`, `results.json`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import common
from experiments.particles import config as config_lib
from jaxlab.attention_dynamics import particles as sim
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from theory.attention import particles as theory

ODE_TOLERANCE = 1e-8  # max |rho_sim - rho_ode|, both RK4 with dt x rate <= 0.03
RATE_TOLERANCE = 1e-3  # issue 7 catalogue #7
MERGE_TOLERANCE = 1e-8  # relative, catalogue #11
ENERGY_TOLERANCE = 1e-6  # relative, catalogue #9
LONG_CONTEXT_TOLERANCE = 1e-10
U_END = 1e-9  # equiangular runs stop where 1 - rho reaches this (theory's hitting time)


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, ["n", "equiangular_steps", "merge_steps", "energy_n",
                                        "energy_d", "energy_beta", "phase_n", "phase_d",
                                        "phase_runs", "phase_dt", "phase_delta"])
  if not 0.0 <= config.rho0 < 1.0:
    raise ValueError(f"config.rho0 must be in [0, 1), got {config.rho0}")
  if config.equiangular_steps % 20:
    raise ValueError("config.equiangular_steps must be a multiple of 20 (20 save points)")


def equiangular_runs(config):
  out = {}
  for dynamics in ("sa", "usa"):
    for beta in config.betas:
      duration = float(theory.equiangular_hitting_time(config.rho0, 1.0 - U_END, beta, config.n,
                                                       dynamics))
      dt = duration / config.equiangular_steps
      steps = config.equiangular_steps // 20
      x0 = sim.equiangular(config.n, config.n + 1, config.rho0)
      traj = sim.integrate(x0, beta, dynamics=dynamics, dt=dt, num_saves=20, steps_per_save=steps)
      u = np.asarray(jax.vmap(lambda x: sim.one_minus_cosine(x)[0, 1])(traj.x_TxNxD))
      _, rho_ode = theory.equiangular_rho(config.rho0, beta, config.n, dynamics, dt=dt,
                                          num_saves=20, steps_per_save=steps)
      t = np.asarray(traj.t_T)
      out[(dynamics, beta)] = {
          "t": t, "u": u, "u_ode": 1.0 - np.asarray(rho_ode),
          "rate": -float(np.log(u[-1] / u[-2]) / (t[-1] - t[-2])),
          "ode_gap": float(np.max(np.abs(u - (1.0 - np.asarray(rho_ode)))))}
  return out


def merge_runs(config):
  out = {}
  for beta in config.merge_betas:
    t_closed = float(theory.merge_time(config.merge_phi0, config.merge_phi_eps, beta))
    x0 = sim.circle(jnp.array([0.0, config.merge_phi0]))
    traj = sim.integrate(x0, beta, dynamics="sa", dt=t_closed / config.merge_steps, num_saves=1,
                         steps_per_save=config.merge_steps)
    x = traj.x_TxNxD[-1]
    rho = 1.0 - sim.one_minus_cosine(x)[0, 1]
    rho_dot = 2.0 * jnp.sum(sim.velocity(x, beta, "sa")[0] * x[1])
    out[beta] = (t_closed, t_closed - float((rho - jnp.cos(config.merge_phi_eps)) / rho_dot))
  return out


def energy_run(config):
  x0 = sim.random_sphere(jax.random.key(config.seed), config.energy_n, config.energy_d)
  out = {}
  for dynamics, dt in (("sa", 0.002), ("usa", 0.0002)):
    traj = sim.integrate(x0, config.energy_beta, dynamics=dynamics, dt=dt, num_saves=25,
                         steps_per_save=int(round(0.1 / dt)))
    gain = np.asarray(traj.energy_T - sim.energy(x0, config.energy_beta))
    out[dynamics] = {"t": np.asarray(traj.t_T), "gain": gain, "q": np.asarray(traj.energy_gain_T),
                     "energy": np.asarray(traj.energy_T)}
  return out


def phase_diagram(config):
  """P(all pairs have cosine >= 1 - delta) over the beta grid at the save times (SA, RK4)."""
  times = np.asarray(config.phase_times)
  spacing = config.phase_save_every
  steps = int(round(spacing / config.phase_dt))
  if not np.allclose(times / spacing, np.round(times / spacing)):
    raise ValueError("config.phase_times must be multiples of config.phase_save_every")
  num_saves = int(round(times[-1] / spacing))
  keys = jax.random.split(jax.random.key(config.seed + 1), config.phase_runs)
  x0 = jax.vmap(lambda k: sim.random_sphere(k, config.phase_n, config.phase_d))(keys)

  def one(x, beta):
    traj = sim.integrate(x, beta, dynamics="sa", dt=config.phase_dt, num_saves=num_saves,
                         steps_per_save=steps)
    return jax.vmap(sim.is_clustered, in_axes=(0, None))(traj.x_TxNxD, config.phase_delta)

  runs = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(None, 0)))
  clustered = runs(x0, jnp.asarray(config.phase_betas))  # [beta, run, save]
  idx = np.round(times / spacing).astype(int) - 1
  return np.asarray(clustered).mean(axis=1)[:, idx]  # [beta, time]


def boundary(betas, p):
  """The beta where p (decreasing in beta) crosses 1/2, by linear interpolation on the grid."""
  betas = np.asarray(betas)
  below = np.nonzero(p < 0.5)[0]
  if len(below) == 0:
    return float(betas[-1])
  k = below[0]
  if k == 0:
    return float(betas[0])
  return float(betas[k - 1] + (p[k - 1] - 0.5) / (p[k - 1] - p[k]) * (betas[k] - betas[k - 1]))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  eq = equiangular_runs(config)
  merges = merge_runs(config)
  energy = energy_run(config)
  n_lc = 64
  x_lc = sim.equiangular(n_lc, n_lc + 1, 0.5)
  long_context = {}
  for gamma in (1.0, 2.0, 4.0):
    beta = gamma * np.log(n_lc)
    y = sim.attention_output(x_lc, beta)
    y = y / jnp.linalg.norm(y, axis=-1, keepdims=True)
    long_context[gamma] = (float(theory.long_context_cosine(0.5, beta, n_lc)),
                           float(jnp.sum(y[0] * y[1])))
  p = phase_diagram(config)
  beta_star = np.asarray(theory.critical_beta(jnp.asarray(config.phase_times), config.phase_n,
                                              config.phase_delta))
  beta_emp = np.array([boundary(config.phase_betas, p[:, j]) for j in range(p.shape[1])])

  rows = []
  for (dynamics, beta), r in eq.items():
    rows.append(common.Comparison(f"{dynamics.upper()} beta={beta:g}: max |rho_sim - rho_ODE| "
                                  f"(equiangular, n={config.n})", 0.0, r["ode_gap"],
                                  ODE_TOLERANCE))
    rows.append(common.Comparison(f"{dynamics.upper()} beta={beta:g}: late rate -d log(1-rho)/dt",
                                  float(theory.clustering_rate(beta, dynamics)), r["rate"],
                                  RATE_TOLERANCE))
  for dynamics, e in energy.items():
    rows.append(common.Comparison(f"{dynamics.upper()}: E(t) - E(0) vs integrated dE/dt identity "
                                  "(t = 2.5)", float(e["q"][-1]), float(e["gain"][-1]),
                                  ENERGY_TOLERANCE))
    # Once clustered E is constant, and its steps are float64 roundoff of a sum of n^2 exponentials.
    roundoff = -1e-12 * float(np.max(e["energy"]))
    rows.append(common.Comparison(f"{dynamics.upper()}: min step of E (non-decreasing up to "
                                  "roundoff 1e-12 E)", roundoff,
                                  float(np.min(np.diff(e["energy"]))), relation=">="))
  for beta, (t_closed, t_sim) in merges.items():
    rows.append(common.Comparison(f"two-particle merge time, beta={beta:g}, angle "
                                  f"{config.merge_phi0:g} -> {config.merge_phi_eps:g}", t_closed,
                                  t_sim, MERGE_TOLERANCE))
  for gamma, (cos_theory, cos_sim) in long_context.items():
    rows.append(common.Comparison(f"one-layer output cosine, rho=0.5, n={n_lc}, beta={gamma:g} log n",
                                  cos_theory, cos_sim, LONG_CONTEXT_TOLERANCE))
  for t, bs, be in zip(config.phase_times, beta_star, beta_emp):
    rows.append(common.Comparison(f"phase boundary at t={t:g}: beta where P(clustered)=1/2 vs "
                                  f"equiangular beta*", float(bs), float(be), config.phase_tolerance))
  # A "close" row with tolerance in absolute units: express as relative to beta*.
  rows = [c if not c.quantity.startswith("phase") else
          common.Comparison(c.quantity, c.theory, c.simulation, config.phase_tolerance / c.theory)
          for c in rows]
  figures = common.finish(workdir, rows, lambda figdir: _figures(
      config, eq, energy, merges, p, beta_star, beta_emp, figdir))
  return {"comparisons": rows, "figures": figures, "phase_probability": p,
          "beta_star": beta_star, "beta_emp": beta_emp}


def _figures(config, eq, energy, merges, p, beta_star, beta_emp, figdir) -> dict[str, str]:
  fig, axes = plotting.figure_grid(3)
  colors = plotting.colors(len(config.betas))
  for ax, dynamics in zip(axes[:2], ("sa", "usa")):
    for color, beta in zip(colors, config.betas):
      r = eq[(dynamics, beta)]
      plotting.theory_over_simulation(ax, r["t"], r["u"], r["u_ode"], color=color,
                                      label=f"beta={beta:g}")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("1 - rho")
    ax.set_title(f"{dynamics.upper()}: equiangular, ODE dashed (rate "
                 f"{'2' if dynamics == 'sa' else '2 e^beta'})")
    ax.legend(frameon=False, fontsize=7)
  for dynamics, e in energy.items():
    plotting.theory_over_simulation(axes[2], e["t"], e["gain"], e["q"],
                                    color="C0" if dynamics == "sa" else "C1",
                                    label=dynamics.upper())
  axes[2].set_xlabel("t")
  axes[2].set_title("E(t) - E(0); integrated identity dashed")
  axes[2].legend(frameon=False, fontsize=7)
  rates = plotting.save(fig, os.path.join(figdir, "rates_and_energy.png"))

  fig, axes = plotting.figure_grid(2)
  ax = axes[0]
  times = np.asarray(config.phase_times)
  im = ax.imshow(p, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                 extent=(times[0] - 2.5, times[-1] + 2.5, config.phase_betas[0] - 0.25,
                         config.phase_betas[-1] + 0.25))
  fig.colorbar(im, ax=ax, label="P(all cosines >= 1 - delta)")
  t_fine = jnp.linspace(times[0], times[-1], 30)
  ax.plot(t_fine, theory.critical_beta(t_fine, config.phase_n, config.phase_delta), "w--",
          label="equiangular beta*(t)")
  ax.plot(times, beta_emp, "ro", label="P = 1/2")
  ax.set_xlabel("t")
  ax.set_ylabel("beta")
  ax.set_title(f"SA, n={config.phase_n}, d={config.phase_d}, {config.phase_runs} runs")
  ax.legend(frameon=False, fontsize=7)
  betas = np.linspace(0.5, 8.0, 40)
  ax = axes[1]
  ax.semilogy(betas, theory.merge_time(config.merge_phi0, config.merge_phi_eps, betas), "k-",
              label="closed form (Ei)")
  ax.semilogy(betas, theory.merge_time_asymptotic(config.merge_phi0, betas), "k:",
              label="e^{beta(1-cos)} / (2 beta sin^2)")
  ax.semilogy(list(merges), [v[1] for v in merges.values()], "o", label="simulation")
  ax.set_xlabel("beta")
  ax.set_title("two-particle merge time")
  ax.legend(frameon=False, fontsize=7)
  phase = plotting.save(fig, os.path.join(figdir, "phase_diagram.png"))
  return {"rates_and_energy": rates, "phase_diagram": phase}
