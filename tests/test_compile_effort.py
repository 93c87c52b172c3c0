"""The test suite's compile effort (tests/conftest.py): fast tests compile without LLVM's
optimization passes, tests marked slow or `optimized_compile` as a user's run does, and the
environment carries the choice to subprocesses. Skipped where the user fixed it for the whole run."""

import os
import subprocess
import sys

import jax
import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("JAXLAB_USER_COMPILE_EFFORT") is not None,
    reason="JAX_DISABLE_MOST_OPTIMIZATIONS was set by the user for the whole run")


def _subprocess_setting() -> bool:
  code = "import jax; print(jax.config.read('jax_disable_most_optimizations'))"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  return out.stdout.strip() == "True"


def test_fast_tests_and_their_subprocesses_compile_with_less_optimization():
  assert jax.config.read("jax_disable_most_optimizations")
  assert _subprocess_setting()


@pytest.mark.optimized_compile
def test_marked_tests_and_their_subprocesses_compile_fully_optimized():
  assert not jax.config.read("jax_disable_most_optimizations")
  assert not _subprocess_setting()
