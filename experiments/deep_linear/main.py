"""Deep linear networks (Saxe et al. 2014). The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.deep_linear.main --config=experiments/deep_linear/config.py:quick --workdir=/tmp/deep_linear
"""

from experiments.common import study_main
from experiments.deep_linear import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/deep_linear/config.py")
