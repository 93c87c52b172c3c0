"""Attention as Hebbian associative memory. The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.hebbian_memory.main --config=experiments/hebbian_memory/config.py:quick --workdir=/tmp/hebbian_memory
"""

from experiments.common import study_main
from experiments.hebbian_memory import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/hebbian_memory/config.py")
