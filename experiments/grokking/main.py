"""Grokking as the transition from lazy to rich (Kumar et al. 2024). The logic is in
`experiment.run`, importable from notebooks.

  python -m experiments.grokking.main --config=experiments/grokking/config.py:quick --workdir=/tmp/grokking
"""

from experiments.common import study_main
from experiments.grokking import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/grokking/config.py")
