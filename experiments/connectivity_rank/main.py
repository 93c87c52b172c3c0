"""Connectivity rank and lazy vs rich learning (Liu et al. 2024). The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.connectivity_rank.main --config=experiments/connectivity_rank/config.py:quick --workdir=/tmp/connectivity_rank
"""

from experiments.common import study_main
from experiments.connectivity_rank import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/connectivity_rank/config.py")
