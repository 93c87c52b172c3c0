"""Induction-head formation and clamping (Singh et al. 2024). The logic is in `experiment.run`.

  python -m experiments.induction_singh.main --config=experiments/induction_singh/config.py:quick \
      --workdir=/tmp/induction_singh
"""

from experiments.common import study_main
from experiments.induction_singh import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/induction_singh/config.py")
