"""Self-attention as interacting particles (Geshkovski et al. 2023). Variants: '' (full) and 'quick'."""

import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.x64 = True  # the equiangular and merge-time checks are at 1e-8
  # Equiangular start x_i = sqrt(rho0) e_0 + sqrt(1 - rho0) e_i (d = n + 1), SA and USA.
  c.n = 16
  c.rho0 = 0.1
  c.betas = (0.5, 2.0, 5.0)
  c.equiangular_steps = 4000  # RK4 steps per run; dt = duration / steps
  c.sa_duration = 15.0  # SA clusters at rate 2; USA at 2 e^beta, so its duration is this / e^beta
  # Two particles: from angle phi0 to phi_eps.
  c.merge_betas = (1.0, 4.0)
  c.merge_phi0 = 1.5
  c.merge_phi_eps = 0.01
  c.merge_steps = 20000
  # Energy identity from a random start.
  c.energy_n = 12
  c.energy_d = 4
  c.energy_beta = 3.0
  # Phase diagram: n random tokens in S^{d-1}, P(all cosines >= 1 - delta) over (beta, t), SA.
  c.phase_n = 32
  c.phase_d = 64
  c.phase_delta = 1e-3
  c.phase_betas = (4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0)
  c.phase_runs = 16
  c.phase_dt = 0.1
  c.phase_times = (10.0, 15.0, 20.0, 25.0, 30.0)
  c.phase_save_every = 5.0  # phase_times must be multiples of this
  c.phase_tolerance = 0.6  # |beta_emp - beta*| (issue 7 reference, d >= 128 there)
  if variant == "quick":
    c.equiangular_steps = 2000
    c.betas = (0.5, 2.0)
    c.phase_betas = (4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5)
    c.phase_runs = 8
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of the particles config; use '' or 'quick'")
  return c
