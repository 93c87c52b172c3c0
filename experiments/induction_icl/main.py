"""Abrupt in-context learning in Reddy's minimal network (Reddy 2024). The logic is in `experiment.run`.

  python -m experiments.induction_icl.main --config=experiments/induction_icl/config.py:quick \
      --workdir=/tmp/induction_icl
"""

from experiments.common import study_main
from experiments.induction_icl import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/induction_icl/config.py")
