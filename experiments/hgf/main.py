"""Hierarchical Gaussian filters. The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.hgf.main --config=experiments/hgf/config.py:quick --workdir=/tmp/hgf
"""

from experiments.common import study_main
from experiments.hgf import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/hgf/config.py")
