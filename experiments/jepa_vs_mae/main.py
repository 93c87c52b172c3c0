"""JEPA vs MAE in deep linear nets (Littwin et al. 2024). The logic is in `experiment.run`.

  python -m experiments.jepa_vs_mae.main --config=experiments/jepa_vs_mae/config.py:quick --workdir=/tmp/jepa
"""

from experiments.common import study_main
from experiments.jepa_vs_mae import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/jepa_vs_mae/config.py")
