"""Self-attention as interacting particles. The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.particles.main --config=experiments/particles/config.py:quick --workdir=/tmp/particles
"""

from experiments.common import study_main
from experiments.particles import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/particles/config.py")
