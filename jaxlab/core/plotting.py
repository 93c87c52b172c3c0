"""Theory-over-simulation figures (matplotlib, Agg backend: no display needed).

Convention used by every study: simulation drawn as solid lines or bands, theory as dashed black-edged
lines on top, so a reader sees at a glance where the two part.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def theory_over_simulation(ax, t, simulated, theory, *, color, label=None, band=None):
  """Draws one simulated curve (or a band of [lo, hi] rows) with its theory as a dashed line."""
  if band is not None:
    ax.fill_between(t, band[0], band[1], color=color, alpha=0.25, linewidth=0)
  if simulated is not None:
    ax.plot(t, simulated, color=color, linewidth=2.0, alpha=0.8, label=label)
  ax.plot(t, theory, color="k", linestyle="--", linewidth=1.0)
  ax.plot(t, theory, color=color, linestyle=(0, (2, 3)), linewidth=1.0)


def figure_grid(n_panels: int, *, width: float = 4.0, height: float = 3.2):
  fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), squeeze=False)
  return fig, axes[0]


def save(fig, path: str) -> str:
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def colors(n: int):
  return [plt.get_cmap("viridis")(x) for x in np.linspace(0.0, 0.85, n)]
