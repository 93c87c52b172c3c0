"""Predictive coding vs backprop training on digits. The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.pc_training.main --config=experiments/pc_training/config.py:quick --workdir=/tmp/pc_training
"""

from experiments.common import study_main
from experiments.pc_training import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/pc_training/config.py")
