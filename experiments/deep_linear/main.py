"""Deep linear networks (Saxe et al. 2014). Kept short: the logic is in `experiment.run`.

  python -m experiments.deep_linear.main --config=experiments/deep_linear/config.py:quick \
      --workdir=/tmp/saxe [--config.learning_rate=5e-4]
"""

from absl import app, flags
from ml_collections import config_flags

from experiments.common import launch, parse_flags
from experiments.deep_linear import experiment

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/deep_linear/config.py[:quick]",
                                          lock_config=True)
flags.mark_flags_as_required(["config"])


def main(argv):
  launch(argv, experiment.run, _CONFIG.value)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
