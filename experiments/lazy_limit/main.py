"""Chizat et al. 2019 lazy limit. Kept short: the logic is in `experiment.run`.

  python -m experiments.lazy_limit.main --config=experiments/lazy_limit/config.py:quick --workdir=/tmp/lazy
"""

from absl import app, flags
from ml_collections import config_flags

from experiments.common import launch, parse_flags
from experiments.lazy_limit import experiment

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/lazy_limit/config.py[:quick]",
                                          lock_config=True)
flags.mark_flags_as_required(["config"])


def main(argv):
  launch(argv, experiment.run, _CONFIG.value)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
