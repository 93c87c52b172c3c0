"""In-context learning by gradient descent (von Oswald et al. 2023). The logic is in `experiment.run`.

  python -m experiments.icl_gd.main --config=experiments/icl_gd/config.py:quick --workdir=/tmp/icl_gd
"""

from experiments.common import study_main
from experiments.icl_gd import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/icl_gd/config.py")
