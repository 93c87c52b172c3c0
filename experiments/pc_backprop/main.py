"""Predictive coding vs backprop gradients. The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.pc_backprop.main --config=experiments/pc_backprop/config.py:quick --workdir=/tmp/pc_backprop
"""

from experiments.common import study_main
from experiments.pc_backprop import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/pc_backprop/config.py")
