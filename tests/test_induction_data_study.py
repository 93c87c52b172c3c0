"""The data-dependence study (experiments/induction_data): Reddy 2024 fig. 2 / Chan et al. 2022."""

import json
import os

import pytest

from experiments.induction_data import config as config_lib
from experiments.induction_data import experiment


def _config(**overrides):
  cfg = config_lib.get_config("quick")
  cfg.update(overrides)
  return cfg


def test_smoke_writes_every_output_and_skips_finished_cells(tmp_path):
  cfg = _config(num_steps=20, log_every=10, eval_size=32, batch_size=16, dim=13,
                num_classes_values=(64,), zipf_cell=(2, 64, 0.9))
  out = experiment.run(cfg, str(tmp_path))
  for name in ("phase_diagram", "curves"):
    assert os.path.exists(out["figures"][name])
  assert len(os.listdir(tmp_path / "cells")) == 4  # B in (0, 2) at K = 64, and the Zipf pair
  rows = json.load(open(tmp_path / "results.json"))["comparisons"]
  assert len(rows) == 6
  # a finished cell is read back, not retrained: corrupt one and see it come back as written
  path = tmp_path / "cells" / "B0_K64_p0_a0.json"
  saved = json.load(open(path))
  saved["final"]["iw"] = 0.123
  json.dump(saved, open(path, "w"))
  again = experiment.run(cfg, str(tmp_path))
  assert again["results"][experiment.Cell(0, 64, 0.0, 0.0)]["final"]["iw"] == 0.123


def test_config_errors_name_the_field():
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("tiny")
  with pytest.raises(ValueError, match="B=3 must be 0 or divide N=8"):
    experiment.validate(_config(burstiness_values=(3,)))
  with pytest.raises(ValueError, match="K=100 must be a multiple of L=32"):
    experiment.validate(_config(num_classes_values=(100,)))


@pytest.mark.slow
def test_bursts_and_many_classes_make_icl_few_classes_or_no_bursts_make_iwl_zipf_both(tmp_path):
  """Every row passes: B=2, K=1024 -> IC > 0.9, IW < 0.15; no bursts or K=64 -> IW > 0.9,
  IC < 0.1; IC rises by > 0.5 from K=64 to 1024; Zipf alpha = 1 -> IC and IW both > 0.5
  (measured 0.97/0.04, 1.00/0.00, 0.96/0.05, 0.70/0.74 at 2000 steps, seed 0)."""
  out = experiment.run(_config(num_classes_values=(64, 1024), zipf_cell=(2, 1024, 0.9),
                               num_steps=2000), str(tmp_path))
  failed = [(c.quantity, c.simulation) for c in out["comparisons"] if not c.passed]
  assert not failed, failed
