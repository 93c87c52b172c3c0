"""Strict numerics for every test: float64, no silent rank promotion, absl flags usable under pytest;
fast tests compile with less optimization (`_set_compile_effort`)."""

import os

import jax
import pytest
from absl import flags

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


def _flat_threefry_bits():
  """Test-time speedup, bit-identical: XLA:CPU compiles JAX's partitionable threefry kernel for an
  N-d shape 5-10x slower than for the flat shape, and the bits of element i depend only on its flat
  index, so draw flat and reshape. Most of the suite's time is compiling; this saves minutes.
  Patches a private JAX function: skipped when it is missing (a JAX upgrade), checked once."""
  import math
  try:
    from jax._src import core as jax_core
    from jax._src.random import threefry2x32 as threefry
    original = threefry._threefry_random_bits_partitionable
  except (ImportError, AttributeError):
    return

  def flat(key, bit_width, shape):
    if len(shape) > 1 and all(jax_core.is_constant_dim(d) for d in shape):
      return original(key, bit_width, (math.prod(shape),)).reshape(shape)
    return original(key, bit_width, shape)

  key = jax.random.key(0)
  if bool((jax.random.bits(key, (3, 5)) == jax.random.bits(key, (15,)).reshape(3, 5)).all()):
    threefry._threefry_random_bits_partitionable = flat  # else not identical here: leave JAX alone


_flat_threefry_bits()


def pytest_configure(config):
  flags.FLAGS.mark_as_parsed()


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / "workdir")


_UNGROUPED = "jaxlab_ungrouped"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
  """Under `--dist loadgroup`, marks grouped tests whose node id lacks the group tag: the
  multi-device tests share expensive module fixtures and must run in one worker (pytest 9.2 with
  pytest-xdist 3.8 silently dropped the tags, scattering them and doubling their cost)."""
  if not getattr(config.option, "loadgroup", False):
    return
  for item in items:
    if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
      setattr(item, _UNGROUPED, True)


# Set by the user (e.g. `JAX_DISABLE_MOST_OPTIMIZATIONS=0 make test`): then every test compiles so.
_USER_COMPILE_EFFORT = os.environ.get("JAX_DISABLE_MOST_OPTIMIZATIONS")
if _USER_COMPILE_EFFORT is not None:
  os.environ["JAXLAB_USER_COMPILE_EFFORT"] = _USER_COMPILE_EFFORT  # for tests/test_compile_effort.py


def _set_compile_effort(item):
  """Fast tests compile without LLVM's optimization passes: their programs are tiny, compiling is
  most of their time, and the fast suite runs ~15% quicker (588 -> 498 s on 2 cores, 2026-12-07).
  The same HLO computes the same float64 values up to rounding. Slow tests (long training runs)
  and tests marked `optimized_compile` compile as a user's run does. Set before the item's fixtures
  so that module fixtures and subprocesses (through the environment) compile the same way."""
  if _USER_COMPILE_EFFORT is not None:
    return
  quick = not (item.get_closest_marker("slow") or item.get_closest_marker("optimized_compile"))
  jax.config.update("jax_disable_most_optimizations", quick)
  os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1" if quick else "0"


def pytest_runtest_setup(item):
  _set_compile_effort(item)
  if getattr(item, _UNGROUPED, False):
    pytest.fail("pytest-xdist's loadgroup did not tag this grouped test's node id, so its group "
                "is not kept in one worker: install the pytest / pytest-xdist versions pinned in "
                "pyproject.toml's `test` extra", pytrace=False)
