"""Energy-based transformers: System-2 thinking at CPU scale (Gladstone et al. 2025). The logic is
in `experiment.run`.

  python -m experiments.ebt.main --config=experiments/ebt/config.py:quick --workdir=/tmp/ebt
"""

from experiments.common import study_main
from experiments.ebt import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/ebt/config.py")
