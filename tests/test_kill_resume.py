"""A run killed with SIGKILL mid-way resumes from its last checkpoint and ends bitwise equal to an
uninterrupted run, with the same metrics file (rows logged after the checkpoint are rewritten)."""

import os
import signal
import subprocess
import sys

import numpy as np

WORKER = os.path.join(os.path.dirname(__file__), "kill_worker.py")


def _worker(workdir, kill_step):
  return subprocess.run([sys.executable, WORKER, workdir, str(kill_step)], capture_output=True,
                        text=True, timeout=300)


def test_sigkill_loses_nothing_older_than_the_last_checkpoint(tmp_path):
  clean, killed = str(tmp_path / "clean"), str(tmp_path / "killed")
  assert _worker(clean, 0).returncode == 0
  died = _worker(killed, 260)  # checkpoints at 100 and 200; rows up to 260 were written
  assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
  assert sorted(os.listdir(os.path.join(killed, "checkpoints", "train"))) == ["100", "200"]
  assert not os.path.exists(os.path.join(killed, "final.npz"))
  resumed = _worker(killed, 0)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  a, b = np.load(os.path.join(clean, "final.npz")), np.load(os.path.join(killed, "final.npz"))
  for name in a.files:
    np.testing.assert_array_equal(a[name], b[name])
  with open(os.path.join(clean, "metrics.jsonl")) as f1, open(os.path.join(killed,
                                                                            "metrics.jsonl")) as f2:
    assert f1.read() == f2.read()
