"""Local linear attention as test-time regression. The logic is in `experiment.run`.

  python -m experiments.local_linear.main --config=experiments/local_linear/config.py:quick --workdir=/tmp/local_linear
"""

from experiments.common import study_main
from experiments.local_linear import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/local_linear/config.py")
