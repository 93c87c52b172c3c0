# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Self-attention as interacting particles on the sphere
#
# Geshkovski, Letrouit, Polyanskiy & Rigollet 2023, "A mathematical perspective on Transformers",
# sec. 3 and 6. Tokens $x_i \in S^{d-1}$ move under self-attention,
# $\dot x_i = P_{x_i}(\sum_j e^{\beta\langle x_i, x_j\rangle} x_j / Z_i)$ (SA; USA replaces $Z_i$ by $n$),
# and cluster. From an equiangular start every pairwise cosine $\rho$ follows one ODE,
# $\dot\rho = 2e^{\beta\rho}(1-\rho)(1+(n-1)\rho)/(e^\beta + (n-1)e^{\beta\rho})$ for SA
# (`theory/attention/particles.py`, which also gives its closed-form hitting time via $\mathrm{Ei}$), so
# $1 - \rho$ decays at the late rate 2 (SA) or $2e^\beta$ (USA). For random starts in high dimension
# (nearly orthogonal tokens) the equiangular curve from $\rho_0 = 0$ predicts the phase boundary
# $\beta^*(t)$: all tokens are within cosine $1 - \delta$ of each other by time $t$ when $\beta < \beta^*(t)$.
# Left and middle: $1 - \rho$ for $n = 16$ equiangular tokens, simulation solid, reduction ODE dashed.
# Right: the fraction of 8 random starts ($n = 32$, $d = 64$) clustered at each $(\beta, t)$, with
# $\beta^*(t)$ dashed. The study's energy identity and one-layer long-context check are left out here.

# %%
import jax

jax.config.update("jax_enable_x64", True)  # the equiangular and merge-time checks are at 1e-8

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from experiments.particles import config as config_lib
from jaxlab.attention_dynamics import particles as sim
from theory.attention import particles as theory

config = config_lib.get_config("quick")

# %%
eq = {}
for dynamics in ("sa", "usa"):
  for beta in config.betas:
    # integrate until theory says 1 - rho reaches 1e-9, in 20 saves
    duration = float(theory.equiangular_hitting_time(config.rho0, 1.0 - 1e-9, beta, config.n,
                                                     dynamics))
    dt, steps = duration / config.equiangular_steps, config.equiangular_steps // 20
    x0 = sim.equiangular(config.n, config.n + 1, config.rho0)
    traj = sim.integrate(x0, beta, dynamics=dynamics, dt=dt, num_saves=20, steps_per_save=steps)
    u = np.asarray(jax.vmap(lambda x: sim.one_minus_cosine(x)[0, 1])(traj.x_TxNxD))
    _, rho_ode = theory.equiangular_rho(config.rho0, beta, config.n, dynamics, dt=dt, num_saves=20,
                                        steps_per_save=steps)
    t = np.asarray(traj.t_T)
    eq[dynamics, beta] = {"t": t, "u": u, "u_ode": 1.0 - np.asarray(rho_ode)}
    rate = -np.log(u[-1] / u[-2]) / (t[-1] - t[-2])
    print(f"{dynamics.upper()} beta={beta:g}: max |rho - rho_ODE| = "
          f"{np.max(np.abs(u - eq[dynamics, beta]['u_ode'])):.1e}, late rate {rate:.6f} "
          f"(theory {float(theory.clustering_rate(beta, dynamics)):.6f})")

for beta in config.merge_betas:  # two particles: the Ei closed form of the merge time
  t_closed = float(theory.merge_time(config.merge_phi0, config.merge_phi_eps, beta))
  x = sim.integrate(sim.circle(jnp.array([0.0, config.merge_phi0])), beta, dt=t_closed / config.merge_steps,
                    num_saves=1, steps_per_save=config.merge_steps).x_TxNxD[-1]
  angle = float(jnp.arccos(jnp.clip(x[0] @ x[1], -1, 1)))
  print(f"two particles, beta={beta:g}: at the closed-form merge time {t_closed:.4f}, angle - "
        f"{config.merge_phi_eps:g} = {angle - config.merge_phi_eps:.1e}")

# %%
spacing, times = config.phase_save_every, np.asarray(config.phase_times)
keys = jax.random.split(jax.random.key(config.seed + 1), config.phase_runs)
x0 = jax.vmap(lambda k: sim.random_sphere(k, config.phase_n, config.phase_d))(keys)


def clustered(x, beta):  # at every save time, are all pairs within cosine 1 - delta?
  traj = sim.integrate(x, beta, dynamics="sa", dt=config.phase_dt,
                       num_saves=int(round(times[-1] / spacing)),
                       steps_per_save=int(round(spacing / config.phase_dt)))
  return jax.vmap(sim.is_clustered, in_axes=(0, None))(traj.x_TxNxD, config.phase_delta)


runs = jax.jit(jax.vmap(jax.vmap(clustered, in_axes=(0, None)), in_axes=(None, 0)))
p = np.asarray(runs(x0, jnp.asarray(config.phase_betas))).mean(axis=1)  # [beta, save]
p = p[:, np.round(times / spacing).astype(int) - 1]  # [beta, time]
beta_star = np.asarray(theory.critical_beta(jnp.asarray(times), config.phase_n, config.phase_delta))
betas = np.asarray(config.phase_betas)


def boundary(p_beta):  # the first beta where P drops below 1/2, linearly interpolated
  k = int(np.argmax(p_beta < 0.5)) if np.any(p_beta < 0.5) else len(betas) - 1
  if k == 0 or p_beta[k] >= 0.5:
    return float(betas[k])
  return float(betas[k - 1] + (p_beta[k - 1] - 0.5) / (p_beta[k - 1] - p_beta[k]) * (betas[k] - betas[k - 1]))


beta_emp = [boundary(p[:, j]) for j in range(len(times))]
for t, bs, be in zip(times, beta_star, beta_emp):
  print(f"t={t:g}: beta where P(clustered) = 1/2: {be:.2f}, equiangular beta* = {bs:.2f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
colors = plt.cm.viridis(np.linspace(0, 0.85, len(config.betas)))
for ax, dynamics in zip(axes[:2], ("sa", "usa")):
  for color, beta in zip(colors, config.betas):
    r = eq[dynamics, beta]
    ax.semilogy(r["t"], r["u"], color=color, lw=2, alpha=0.8, label=f"beta={beta:g}")
    ax.semilogy(r["t"], r["u_ode"], "k--", lw=1)
  ax.set(xlabel="t", ylabel="1 - rho", title=f"{dynamics.upper()}: equiangular, ODE dashed")
  ax.legend(fontsize=7)
im = axes[2].imshow(p, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                    extent=(times[0] - spacing / 2, times[-1] + spacing / 2,
                            betas[0] - 0.25, betas[-1] + 0.25))
fig.colorbar(im, ax=axes[2], label="P(all cosines >= 1 - delta)")
t_fine = jnp.linspace(times[0], times[-1], 30)
axes[2].plot(t_fine, theory.critical_beta(t_fine, config.phase_n, config.phase_delta), "w--",
             label="equiangular beta*(t)")
axes[2].plot(times, beta_emp, "ro", label="P = 1/2")
axes[2].set(xlabel="t", ylabel="beta", title=f"SA, n={config.phase_n}, d={config.phase_d}")
axes[2].legend(fontsize=7)
plt.show()
