"""An RNN emulating an HMM. The logic is in `experiment.run`, importable from notebooks.

  python -m experiments.hmm_emulation.main --config=experiments/hmm_emulation/config.py:quick --workdir=/tmp/hmm_emulation
"""

from experiments.common import study_main
from experiments.hmm_emulation import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/hmm_emulation/config.py")
