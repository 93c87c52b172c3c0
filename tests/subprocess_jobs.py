"""Helpers of the multi-device and multi-process tests (not collected: no `test_` prefix).

Workers run in subprocesses: the device count must be fixed (XLA_FLAGS) before JAX starts, and a
process joins at most one distributed job. Simulated-device collectives on few cores can deadlock;
XLA then SIGABRTs the process ("rendezvous ... Termination timeout"), which callers retry once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DEADLOCK_SIGNS = ("rendezvous", "Termination timeout")


def env(local_devices: int) -> dict[str, str]:
  """This environment with exactly `local_devices` CPU devices, set before the child imports JAX."""
  out = {k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"}
  flags = [f for f in out.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  out["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={local_devices}"])
  out["JAX_PLATFORMS"] = "cpu"
  return out


def deadlocked(returncode: int, log: str) -> bool:
  """Whether a worker died from XLA's rendezvous-timeout abort (a SIGABRT, not an exception)."""
  aborted = returncode in (-signal.SIGABRT, 128 + signal.SIGABRT)
  return aborted and any(sign in log for sign in DEADLOCK_SIGNS)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_processes(commands: list[list[str]], local_devices: int, cwd: Path, logdir: Path,
                  timeout_s: float, tag: str = "") -> list[tuple[int | None, str]]:
  """Starts every command at once (each with `local_devices` CPU devices) and returns
  [(returncode, combined output)]. If one fails or they outlive `timeout_s`, the survivors are
  killed at once (a process whose peer died would otherwise wait in a barrier until JAX's own,
  much longer, timeout)."""
  procs, logs = [], []
  try:
    for i, cmd in enumerate(commands):
      logs.append(open(logdir / f"process{i}{tag}.log", "w+"))
      procs.append(subprocess.Popen([sys.executable, *cmd], env=env(local_devices), cwd=cwd,
                                    stdout=logs[-1], stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
      codes = [p.poll() for p in procs]
      if all(c == 0 for c in codes) or any(c not in (None, 0) for c in codes):
        break
      time.sleep(0.1)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
    outcome = []
    for p, log in zip(procs, logs):
      log.seek(0)
      outcome.append((p.returncode, log.read()))
      log.close()
  return outcome
