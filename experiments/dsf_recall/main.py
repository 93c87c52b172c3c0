"""MQAR accuracy vs state expansion (Sieber et al. 2024, DSF). The logic is in `experiment.run`.

  python -m experiments.dsf_recall.main --config=experiments/dsf_recall/config.py:quick --workdir=/tmp/dsf_recall
"""

from experiments.common import study_main
from experiments.dsf_recall import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/dsf_recall/config.py")
