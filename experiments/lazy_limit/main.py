"""The lazy limit (Chizat et al. 2019). The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.lazy_limit.main --config=experiments/lazy_limit/config.py:quick --workdir=/tmp/lazy_limit
"""

from experiments.common import study_main
from experiments.lazy_limit import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/lazy_limit/config.py")
