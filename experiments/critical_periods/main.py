"""Critical learning periods in deep linear networks (Kleinman et al. 2024). The logic is in
`experiment.run`, importable from notebooks.

  python -m experiments.critical_periods.main --config=experiments/critical_periods/config.py:quick --workdir=/tmp/critical_periods
"""

from experiments.common import study_main
from experiments.critical_periods import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/critical_periods/config.py")
