"""Get rich quick (Kunin et al. 2024). The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.get_rich_quick.main --config=experiments/get_rich_quick/config.py:quick --workdir=/tmp/grq
"""

from experiments.common import study_main
from experiments.get_rich_quick import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/get_rich_quick/config.py")
