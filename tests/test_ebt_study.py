"""The EBT study (experiments/ebt): its recipes and config checks (fast), and the System-2
reproduction on CPython's help pages (slow)."""

import dataclasses

import pytest

from experiments.ebt import config as config_lib
from experiments.ebt import experiment
from jaxlab.ebt import thinking


def test_each_ablation_removes_exactly_one_s2_regulariser():
  config = config_lib.get_config("quick")
  s2 = experiment.think_config(config, "s2")
  assert s2 == dataclasses.replace(thinking.S2, step_size=config.s2_step_size)
  changed = {}
  for name in config_lib.ABLATIONS:
    ablated = experiment.think_config(config, name)
    changed[name] = {f.name for f in dataclasses.fields(s2)
                     if getattr(s2, f.name) != getattr(ablated, f.name)}
  assert changed == {"no_random_alpha": {"step_size_scale"}, "no_random_k": {"min_steps"},
                     "no_langevin": {"langevin_std"}, "no_replay": {"replay_capacity"}}
  s1 = experiment.think_config(config, "s1")
  assert s1.learnable_step_size and s1.gradient == "detach" and s1.loss_on == "all"
  assert experiment.think_config(config, "baseline") is None


def test_s1_descends_one_landscape_per_trained_step_and_s2_one_shared():
  config = config_lib.get_config("quick")
  assert experiment.model_config(config, 50, "s1").num_landscapes == thinking.S1.num_steps == 2
  assert experiment.model_config(config, 50, "s2").num_landscapes == 0
  assert experiment.model_config(config, 50, "baseline").num_landscapes == 0
  config.s1_landscapes = -1
  with pytest.raises(ValueError, match="s1_landscapes"):
    experiment.validate(config)


def test_bad_configs_are_rejected_naming_the_field():
  with pytest.raises(ValueError, match="variant"):
    config_lib.get_config("huge")
  config = config_lib.get_config("quick")
  config.ablations = ("no_langevin", "no_dropout")
  with pytest.raises(ValueError, match="no_dropout"):
    experiment.validate(config)
  config = config_lib.get_config("quick")
  config.max_think_steps = 2
  with pytest.raises(ValueError, match="max_think_steps"):
    experiment.validate(config)
  config = config_lib.get_config("quick")
  config.dyck_num_steps = 130
  with pytest.raises(ValueError, match="dyck_num_steps"):
    experiment.validate(config)


S1_ONE_SHOT = "S1 one-shot"  # reproduces only with S1's per-step landscapes (see the README)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
  """One seed of S2, S1 and the baseline at full size (about 12 minutes on 2 cores)."""
  config = config_lib.get_config("single")
  workdir = tmp_path_factory.mktemp("ebt_single")
  return config, workdir, experiment.run(config, str(workdir))


@pytest.mark.slow
def test_s2_thinks_s1_does_not_and_the_transformer_leads_at_equal_steps(single_run):
  """Every row: thinking longer, energy descent, self-verification against best-of-1 and a random
  pick, S1's one-step advantage, S1 worse with more steps and best-of-N, the equal-steps gap."""
  config, workdir, result = single_run
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, (failed, result["report"])
  s2 = result["runs"]["s2_seed0"]["validation"]
  assert s2["bon_oracle"] < s2["bon"][config.bon_n] < s2["bon"][1]
  assert (workdir / "summary.md").exists() and (workdir / "figures" / "system2.png").exists()


@pytest.mark.slow
def test_s1_is_the_better_one_step_predictor(single_run):
  """Reproduces once each S1 step has its own landscape token (the authors' time_embed): measured
  S1 CE@1 0.08 nats below S2 CE@3; with one shared landscape it was 0.08 above."""
  _, _, result = single_run
  (row,) = [c for c in result["comparisons"] if c.quantity.startswith(S1_ONE_SHOT)]
  assert row.passed, row.as_dict()
