"""Strict numerics for every test: float64, no silent rank promotion, absl flags usable under pytest."""

import jax
import pytest
from absl import flags

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_configure(config):
  flags.FLAGS.mark_as_parsed()


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / "workdir")
