"""Experiment entrypoints end to end: the quick variants run into a workdir with every promised output,
re-running resumes, the reproduce job writes its report, and bad input fails naming the problem."""

import json
import os
import re
import subprocess
import sys

import pytest

from experiments import reproduce
from experiments.deep_linear import config as config_lib
from experiments.deep_linear import experiment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_GET_CONFIG = config_lib.get_config


def _small_config():
  config = _GET_CONFIG("quick")
  config.num_steps = 20_000
  config.checkpoint_every = 10_000
  config.layer_counts = (3, 4)
  config.population.num_seeds = 8
  config.population.num_steps = 16_000
  return config


def test_deep_linear_quick_run_writes_all_outputs_and_resumes(tmp_path):
  workdir = str(tmp_path)
  result = experiment.run(_small_config(), workdir)
  assert all(c.passed for c in result["comparisons"]), [c.as_dict() for c in result["comparisons"]]
  for name in ("config.json", "metrics.jsonl", "results.json", "figures/mode_strengths.png",
               "figures/population.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["decoupled_L3",
                                                                        "decoupled_L4"]
  assert json.load(open(os.path.join(workdir, "config.json")))["num_steps"] == 20_000
  rows_before = open(os.path.join(workdir, "metrics.jsonl")).read()
  again = experiment.run(_small_config(), workdir)  # finds the final checkpoints: no retraining
  assert open(os.path.join(workdir, "metrics.jsonl")).read() == rows_before
  assert [c.simulation for c in again["comparisons"]] == [c.simulation for c in result["comparisons"]]


def test_reproduce_writes_a_report_with_tables_and_figures(tmp_path, monkeypatch):
  monkeypatch.setattr(config_lib, "get_config", lambda variant="": _small_config())
  monkeypatch.setattr(reproduce, "STUDIES", reproduce.STUDIES[:1])  # deep_linear; others have tests
  path, passed = reproduce.reproduce(str(tmp_path), quick=True)
  report = open(path).read()
  assert passed
  assert "| quantity | theory | simulation | error | tolerance | pass |" in report
  assert "![mode_strengths](deep_linear/figures/mode_strengths.png)" in report
  assert "FAIL" not in report
  with pytest.raises(ValueError, match="unknown study"):
    reproduce.reproduce(str(tmp_path), quick=True, only=["nonexistent"])


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(num_steps=0), "config.num_steps must be positive, got 0"),
    (lambda c: c.population.update(num_seeds=-1), "config.population.num_seeds must be positive"),
    (lambda c: c.update(layer_counts=(1, 3)), "layer_counts must be >= 2"),
    (lambda c: c.update(singular_values=tuple(range(1, 10))), "more modes than the narrowest"),
])
def test_bad_config_values_are_named(tmp_path, change, message):
  config = config_lib.get_config("quick")
  change(config)
  with pytest.raises(ValueError, match=message):
    experiment.run(config, str(tmp_path))


def test_unknown_config_field_is_named_with_a_suggestion(tmp_path):
  config = config_lib.get_config("quick")
  config.learning_rat = 0.1
  with pytest.raises(ValueError, match=r"unknown config field\(s\): 'learning_rat' \(did you mean "
                     r"'learning_rate'\?\)"):
    experiment.run(config, str(tmp_path))
  with pytest.raises(ValueError, match="unknown variant 'fast'"):
    config_lib.get_config("fast")


def _main(*args):
  if not any(a.startswith("--compilation_cache") for a in args):
    args += ("--compilation_cache=",)  # tests leave the user's cache alone
  return subprocess.run([sys.executable, "-m", "experiments.deep_linear.main", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_a_rerun_loads_every_program_from_the_compilation_cache(tmp_path):
  cache = tmp_path / "cache"
  run = lambda workdir: subprocess.run(  # the smallest study: the HGF's, 15 programs
      [sys.executable, "-m", "experiments.hgf.main", "--config=experiments/hgf/config.py:quick",
       f"--compilation_cache={cache}", f"--workdir={workdir}"], cwd=ROOT, capture_output=True,
      text=True, timeout=300)
  first = run(tmp_path / "first")
  assert first.returncode == 0, first.stderr[-3000:]
  # Within one run too, a program another function compiled already (same HLO) may be loaded.
  loaded, compiled = map(int, re.search(r"(\d+) programs loaded, (\d+) compiled",
                                        first.stdout).groups())
  assert compiled > 10 and len(list(cache.glob("*-cache"))) == compiled
  second = run(tmp_path / "second")  # a fresh run of the same config
  assert second.returncode == 0, second.stderr[-3000:]
  assert f"{cache}: {loaded + compiled} programs loaded, 0 compiled" in second.stdout
  assert _table_rows(second.stdout) == _table_rows(first.stdout)


def _table_rows(stdout: str) -> list[str]:
  return [line for line in stdout.splitlines() if line.startswith("|")]


def test_command_line_rejects_unknown_flags_and_missing_workdir(tmp_path):
  cfg = "--config=experiments/deep_linear/config.py:quick"
  bad_field = _main(cfg, "--config.no_such_field=1", f"--workdir={tmp_path}")
  assert bad_field.returncode != 0 and "no_such_field" in bad_field.stderr
  no_workdir = _main(cfg)
  assert no_workdir.returncode != 0 and "--workdir is required" in no_workdir.stderr
  bad_variant = _main("--config=experiments/deep_linear/config.py:fast", f"--workdir={tmp_path}")
  assert bad_variant.returncode != 0 and "unknown variant 'fast'" in bad_variant.stderr


def test_command_line_overrides_reach_the_run(tmp_path):
  out = _main("--config=experiments/deep_linear/config.py:quick", "--config.layer_counts=(3,)",
              "--config.num_steps=16000", "--config.population.num_seeds=4",
              "--config.population.num_steps=16000", f"--workdir={tmp_path}")
  assert out.returncode == 0, out.stderr[-3000:]
  saved = json.load(open(tmp_path / "config.json"))
  assert saved["num_steps"] == 16000 and saved["layer_counts"] == [3]
  assert "| quantity | theory |" in out.stdout


@pytest.mark.slow
def test_full_deep_linear_variant_passes_every_comparison(tmp_path):
  result = experiment.run(config_lib.get_config(), str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
  assert len(result["comparisons"]) == 2 * 3 + 3  # three depths, two half-times, ordering


def test_comparison_rows_close_and_bounds():
  from experiments.common import Comparison, markdown_table
  assert Comparison("a", 2.0, 2.1, 0.06).passed and not Comparison("a", 2.0, 2.2, 0.06).passed
  assert Comparison("zero", 0.0, 0.004, 0.01).passed  # absolute error against a zero theory
  assert Comparison("sep", 5.0, 7.0, relation=">=").passed
  low = Comparison("sep", 5.0, 4.0, relation=">=")
  assert not low.passed and low.error == 1.0
  assert not Comparison("nan", 1.0, float("nan"), 1.0).passed
  assert ">= 5" in markdown_table([low]) and "**FAIL**" in markdown_table([low])
  with pytest.raises(ValueError, match="relation must be"):
    Comparison("x", 1.0, 1.0, relation=">")
