"""In-context vs in-weights learning as a function of the data (Reddy 2024; Chan et al. 2022). The
logic is in `experiment.run`.

  python -m experiments.induction_data.main --config=experiments/induction_data/config.py:quick \
      --workdir=/tmp/induction_data
"""

from experiments.common import study_main
from experiments.induction_data import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/induction_data/config.py")
