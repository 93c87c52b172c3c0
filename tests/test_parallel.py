"""Data parallelism and multi-host training of the engine (`jaxlab.core.parallel` + `train`).

Checks, on the deep linear network of `parallel_worker.py` in float64:
  * a data-parallel run on meshes of 8 and 4 simulated CPU devices (state replicated, batch split
    by `shard_batch`, `train(..., in_shardings=...)`) ends at the parameters of the same run on one
    device, and the batch really is split over every device of the mesh;
  * the same run with the gradient summed over 2 microbatches (`num_microbatches=2`) on 4
    devices ends there too;
  * `shard_batch` rejects a batch whose leading axis does not divide over the local devices;
  * two processes joined by `initialize_distributed` on loopback (2 devices each), each feeding
    only its own rows, train to the single-process parameters with a shared workdir: metrics.jsonl
    gets every row exactly once (process 0 writes), and a re-run resumes from the orbax checkpoint.

Why subprocesses: the device count must be fixed (XLA_FLAGS) before JAX starts, and a process joins
at most one distributed job, so neither can happen inside pytest's process. It also contains a known
hazard of simulated devices on few cores: collectives can deadlock, and XLA then SIGABRTs the whole
process ("rendezvous ... Termination timeout"). The worker blocks on every compiled chunk, which
avoids it in practice; a worker that dies that way anyway is retried once.

Tolerance: the runs differ only in the order in which the per-example gradients are summed (per
device, then an all-reduce), so each step's gradient differs by a few ulps (~1e-16 relative), and
40-60 small SGD steps on this well-conditioned problem amplify that far less than 1e4-fold. We
allow 1e-12 relative (observed: 0 to 3e-17 absolute, weights ~0.25). Real mistakes are many orders
larger: training on half of the rows (a missing all-reduce across processes) moves weights by 0.09.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from subprocess_jobs import deadlocked, env, free_port, run_processes

# Module-scoped fixtures: under `pytest -n 2 --dist loadgroup` each runs once, in one worker
# (tests/conftest.py fails these tests if the installed pytest-xdist does not keep the group).
pytestmark = [pytest.mark.multidevice, pytest.mark.xdist_group("parallel")]

WORKER = Path(__file__).with_name("parallel_worker.py")
REPO = WORKER.parent.parent
TIMEOUT_S = 240
RTOL = 1e-12
STEPS, RESUME_STEPS, LOG_EVERY, CHECKPOINT_EVERY = 40, 60, 5, 20
MESHES = (8, 4)


def _load_worker():
  spec = importlib.util.spec_from_file_location("parallel_worker", WORKER)
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
  spec.loader.exec_module(module)
  return module


def _assert_close(actual, expected, what: str) -> None:
  expected = np.asarray(expected)
  np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max(),
                             err_msg=what)


def _params(results, prefix: str) -> list[np.ndarray]:
  return [results[k] for k in sorted(k for k in results.files if k.startswith(prefix + "/w"))]


# --- single host: 8 simulated devices in one process ---------------------------------------------


@pytest.fixture(scope="module")
def single_host(tmp_path_factory):
  """The worker's single-host results (one subprocess for all single-host tests)."""
  out = tmp_path_factory.mktemp("single_host") / "results.npz"
  cmd = [sys.executable, str(WORKER), "single-host", "--out", str(out), "--local-devices", "8",
         "--steps", str(STEPS), "--log-every", str(LOG_EVERY), "--meshes", *map(str, MESHES)]
  for attempt in range(2):
    proc = subprocess.run(cmd, env=env(8), cwd=REPO, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    if proc.returncode == 0:
      return np.load(out)
    if attempt == 0 and deadlocked(proc.returncode, proc.stderr):
      continue
    pytest.fail(f"single-host worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


@pytest.mark.parametrize("n", MESHES)
def test_data_parallel_matches_single_device(single_host, n):
  ref, dp = _params(single_host, "ref"), _params(single_host, f"dp{n}")
  assert len(ref) == len(dp) == 2
  for i, (a, b) in enumerate(zip(dp, ref)):
    _assert_close(a, b, f"layer {i} after {STEPS} steps on {n} devices")
  np.testing.assert_array_equal(single_host[f"dp{n}/steps"], single_host["ref/steps"])
  _assert_close(single_host[f"dp{n}/loss"], single_host["ref/loss"], f"loss history, {n} devices")
  # The comparison is not vacuous: the run moved well away from its start.
  assert single_host["ref/loss"][-1] < 0.95 * single_host["ref/loss"][0]


def test_microbatched_data_parallel_step_matches_single_device(single_host):
  # Gradient accumulation (2 strided microbatches, each split over 4 devices) changes only the
  # order of summation, so the same 1e-12 tolerance holds.
  ref, mb = _params(single_host, "ref"), _params(single_host, "dp4_microbatched")
  assert len(ref) == len(mb) == 2
  for i, (a, b) in enumerate(zip(mb, ref)):
    _assert_close(a, b, f"layer {i} after {STEPS} microbatched steps on 4 devices")
  _assert_close(single_host["dp4_microbatched/loss"], single_host["ref/loss"],
                "loss history, microbatched on 4 devices")


@pytest.mark.parametrize("n", MESHES)
def test_batch_is_split_over_every_device(single_host, n):
  assert int(single_host["device_count"]) == 8
  assert int(single_host[f"dp{n}/x_devices"]) == n
  assert int(single_host[f"dp{n}/x_shard_devices"]) == n
  np.testing.assert_array_equal(single_host[f"dp{n}/x_shard_rows"], [8 // n] * n)
  assert bool(single_host[f"dp{n}/params_replicated"])


def test_shard_batch_rejects_indivisible_batch(single_host):
  error = str(single_host["shard_error"])
  assert error.startswith("ValueError:"), f"no ValueError for 6 rows over 8 devices: {error!r}"
  assert "(6, 8)" in error and "8 local devices" in error


# --- multi-host: two processes on loopback, 2 devices each ---------------------------------------


def _launch_pair(root: Path, attempt: int):
  """Runs both processes; returns [(returncode, log)] and the workdir."""
  workdir = root / f"workdir{attempt}"
  coordinator = f"127.0.0.1:{free_port()}"
  commands = [[str(WORKER), "multihost", "--out", str(root / f"process{i}.npz"),
               "--local-devices", "2", "--coordinator", coordinator, "--process-id", str(i),
               "--num-processes", "2", "--workdir", str(workdir), "--steps", str(STEPS),
               "--resume-steps", str(RESUME_STEPS), "--log-every", str(LOG_EVERY),
               "--checkpoint-every", str(CHECKPOINT_EVERY)] for i in range(2)]
  return run_processes(commands, 2, REPO, root, TIMEOUT_S, f"_attempt{attempt}"), workdir


@pytest.fixture(scope="module")
def multihost(tmp_path_factory):
  """Both processes' results and the shared workdir."""
  root = tmp_path_factory.mktemp("multihost")
  for attempt in range(2):
    outcome, workdir = _launch_pair(root, attempt)
    if all(code == 0 for code, _ in outcome):
      return [np.load(root / f"process{i}.npz") for i in range(2)], workdir
    if attempt == 0 and any(deadlocked(code, log) for code, log in outcome):
      continue
    report = "\n".join(f"--- process {i} (exit {code}):\n{log[-3000:]}"
                       for i, (code, log) in enumerate(outcome))
    pytest.fail(f"multihost workers failed:\n{report}")


@pytest.fixture(scope="module")
def reference():
  """The same run in this single-device process: results after STEPS, then after RESUME_STEPS."""
  worker = _load_worker()
  first = worker.train_reference(STEPS, LOG_EVERY)
  resumed = worker.train_reference(RESUME_STEPS, LOG_EVERY, start=first.state)
  return first, resumed


def _reference_losses(reference) -> list[float]:
  first, resumed = reference  # without a workdir, each call's history has only its own rows
  return [row["loss"] for row in first.history + resumed.history]


def test_multihost_forms_one_job_over_both_processes(multihost):
  results, _ = multihost
  for i, r in enumerate(results):
    assert int(r["process_index"]) == i
    assert int(r["process_count"]) == 2
    assert int(r["local_device_count"]) == 2 and int(r["device_count"]) == 4
    # Each process passed 4 of the 8 rows; the global batch has all 8, split over 4 devices.
    np.testing.assert_array_equal(r["x_global_shape"], [8, 8])
    assert int(r["x_devices"]) == 4


def test_multihost_matches_single_process(multihost, reference):
  results, _ = multihost
  for i, r in enumerate(results):
    for phase, ref in zip(("first", "resumed"), reference):
      for l, (a, b) in enumerate(zip(_params(r, phase), ref.state.params, strict=True)):
        _assert_close(a, b, f"process {i}, layer {l}, {phase} run ({int(ref.state.step)} steps)")
  _assert_close(results[0]["resumed/loss"], _reference_losses(reference), "process 0's history")


def test_multihost_writes_each_metrics_row_once(multihost, reference):
  results, workdir = multihost
  with open(workdir / "metrics.jsonl") as f:
    rows = [json.loads(line) for line in f if line.strip()]
  expected_steps = list(range(LOG_EVERY, RESUME_STEPS + 1, LOG_EVERY))
  assert [row["step"] for row in rows] == expected_steps  # once each, in order: only process 0
  assert {row["run"] for row in rows} == {"multihost"}
  _assert_close([row["loss"] for row in rows], _reference_losses(reference),
                "losses in metrics.jsonl")
  # Process 0 reads its history back from the file; the others keep this call's rows.
  np.testing.assert_array_equal(results[0]["resumed/steps"], expected_steps)


def test_multihost_resumes_from_shared_checkpoint(multihost):
  results, workdir = multihost
  steps = sorted(int(p.name) for p in (workdir / "checkpoints" / "multihost").iterdir()
                 if p.name.isdigit())
  assert steps == list(range(CHECKPOINT_EVERY, RESUME_STEPS + 1, CHECKPOINT_EVERY))
  # The re-run on process 1 trained only the steps after the restored checkpoint at STEPS.
  np.testing.assert_array_equal(results[1]["resumed/steps"],
                                list(range(STEPS + LOG_EVERY, RESUME_STEPS + 1, LOG_EVERY)))
