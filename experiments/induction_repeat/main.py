"""Induction heads on repeated random tokens (Olsson et al. 2022). The logic is in `experiment.run`.

  python -m experiments.induction_repeat.main \
      --config=experiments/induction_repeat/config.py:quick --workdir=/tmp/induction_repeat
"""

from experiments.common import study_main
from experiments.induction_repeat import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/induction_repeat/config.py")
