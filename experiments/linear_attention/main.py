"""Linear attention and gated linear attention as RNNs: three forms of one map. The logic is in
`experiment.run`, importable from notebooks.

  python -m experiments.linear_attention.main --config=experiments/linear_attention/config.py:quick --workdir=/tmp/linear_attention
"""

from experiments.common import study_main
from experiments.linear_attention import experiment

if __name__ == "__main__":
  study_main(experiment.run, "experiments/linear_attention/config.py")
