"""The predictive-coding experiments end to end: gradient alignment (every row against theory) and
training on digits (a smoke run here; the quick variant's accuracy comparisons are slow)."""

import json
import os

import numpy as np
import pytest

from experiments.pc_backprop import config as backprop_config
from experiments.pc_backprop import experiment as backprop_experiment
from experiments.pc_training import config as training_config
from experiments.pc_training import experiment as training_experiment


def test_pc_backprop_quick_run_passes_every_row(tmp_path):
  config = backprop_config.get_config("quick")
  config.sizes = (64, 32, 32, 10)
  result = backprop_experiment.run(config, str(tmp_path))
  assert all(c.passed for c in result["comparisons"]), [c.as_dict() for c in result["comparisons"]]
  assert len(result["comparisons"]) == 8
  assert os.path.getsize(tmp_path / "figures" / "pc_backprop.png") > 0
  assert json.load(open(tmp_path / "results.json"))["comparisons"][0]["passed"]
  # the curves behind the rows: alignment improves as the output precision falls
  last_layer = [result["curves"][g]["cosine"][-1, -1] for g in config.output_precisions]
  assert np.all(np.diff(last_layer) > 0)


def _tiny_training_config():
  config = training_config.get_config("quick")
  config.num_seeds = 2
  config.hidden_layers = (1,)
  config.conv_features = (4, 4)
  config.num_steps = 100
  config.log_every = 50
  return config


@pytest.mark.optimized_compile  # running, not compiling, is its time: 14 -> 21 s unoptimized
def test_pc_training_smoke_run_writes_curves_for_every_rule(tmp_path):
  result = training_experiment.run(_tiny_training_config(), str(tmp_path))
  assert set(result["results"]) == {"mlp_1", "conv"}
  assert set(result["results"]["mlp_1"]) == {"backprop", "pc", "ipc"}
  for name, rules in result["results"].items():
    for rule, run in rules.items():
      assert run["test_accuracy"].shape == (2, 2), (name, rule)
      assert np.all(run["test_accuracy"][:, -1] > 0.5), (name, rule)  # 100 steps learn something
  assert len(result["comparisons"]) == 3  # one depth: no depth-gap row
  assert os.path.getsize(tmp_path / "figures" / "pc_training.png") > 0


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(rules=("pc",)), "must include 'backprop' and 'pc'"),
    (lambda c: c.update(rules=("backprop", "pc", "zil")), "must include 'backprop' and 'pc'"),
    (lambda c: c.update(hidden_layers=(0, 2)), "depths >= 1"),
    (lambda c: c.update(num_steps=150, log_every=100), "multiple of config.log_every"),
])
def test_pc_training_bad_config_is_named(tmp_path, change, message):
  config = _tiny_training_config()
  change(config)
  with pytest.raises(ValueError, match=message):
    training_experiment.run(config, str(tmp_path))


@pytest.mark.slow
def test_pc_training_quick_variant_reproduces_the_accuracy_claims(tmp_path):
  result = training_experiment.run(training_config.get_config("quick"), str(tmp_path))
  assert all(c.passed for c in result["comparisons"]), [c.as_dict() for c in result["comparisons"]]
