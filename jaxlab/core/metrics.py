"""Metrics as JSON lines (written by process 0 only) and a progress line with steps/s and ETA.

JSONL is the source of truth for every run: one row per logged step, tagged with the run's name, so
plots and notebooks read the same file the run wrote. The writer follows the shape of clu's
`MetricWriter` (`write_rows`, `close`) without its TensorFlow dependency.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Iterable, Mapping, TextIO

import jax


def _is_writer() -> bool:
  return jax.process_index() == 0


def _clean(value: Any) -> Any:
  # JSON has no NaN/inf; keep them readable and round-trippable as strings.
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  if isinstance(value, list):
    return [_clean(v) for v in value]
  return value


class MetricWriter:
  """Appends rows `{**tags, **row}` to a JSONL file. A no-op on processes other than 0."""

  def __init__(self, path: str | os.PathLike, tags: Mapping[str, Any] | None = None):
    self.path = os.fspath(path)
    self.tags = dict(tags or {})
    self._file: TextIO | None = None
    if _is_writer():
      os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
      self._file = open(self.path, "a")

  def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
    if self._file is None:
      return
    for row in rows:
      self._file.write(json.dumps({**self.tags, **{k: _clean(v) for k, v in row.items()}}) + "\n")
    self._file.flush()
    os.fsync(self._file.fileno())

  def truncate_after(self, step: int, missing_step: int = -1) -> None:
    """Drops this run's rows logged after `step` (left by a run killed between checkpoints).

    Rows without a "step" count as step `missing_step`.
    """
    if self._file is None:
      return
    self._file.close()
    kept = []
    with open(self.path) as f:
      for line in f:
        if not line.strip():
          continue
        row = json.loads(line)
        mine = all(row.get(k) == v for k, v in self.tags.items())
        if not (mine and row.get("step", missing_step) > step):
          kept.append(line if line.endswith("\n") else line + "\n")
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(kept)
    os.replace(tmp, self.path)
    self._file = open(self.path, "a")

  def clear(self) -> None:
    """Drops every row with this writer's tags (a run that recomputes everything starts clean)."""
    self.truncate_after(-1, missing_step=0)

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None


def read_metrics(path: str | os.PathLike, **tags: Any) -> list[dict[str, Any]]:
  """The rows of a metrics.jsonl whose tags match, in order (e.g. `read_metrics(p, run="depth3")`)."""
  rows = []
  with open(path) as f:
    for line in f:
      if line.strip():
        row = json.loads(line)
        if all(row.get(k) == v for k, v in tags.items()):
          rows.append(row)
  return rows


class Progress:
  """Reports steps/s, loss and ETA: one refreshing line on a terminal, else a line every `every_s`."""

  def __init__(self, stream: TextIO | None = None, every_s: float = 10.0, label: str = ""):
    self.stream = stream or sys.stderr
    self.every_s = every_s
    self.label = label
    self._interactive = hasattr(self.stream, "isatty") and self.stream.isatty()

  def start(self, step: int, total: int) -> None:
    self.total, self._start_step = total, step
    self._t0 = self._last_print = time.perf_counter()

  def update(self, step: int, row: Mapping[str, Any]) -> None:
    now = time.perf_counter()
    rate = (step - self._start_step) / max(now - self._t0, 1e-9)
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    loss = row.get("loss", float("nan"))
    line = (f"{self.label}step {step}/{self.total}  {_rate(rate)}  loss {loss:.4g}  "
            f"ETA {_seconds(eta)}")
    if self._interactive:
      self.stream.write("\r" + line + "\x1b[K")
      self.stream.flush()
    elif now - self._last_print >= self.every_s or step == self.total:
      self.stream.write(line + "\n")
      self.stream.flush()
      self._last_print = now

  def finish(self, step: int) -> None:
    seconds = time.perf_counter() - self._t0
    end = "\n" if self._interactive else ""
    self.stream.write(f"{end}{self.label}done at step {step} in {_seconds(seconds)}\n")
    self.stream.flush()


def _rate(steps_per_s: float) -> str:
  """'12,345 steps/s', '3.21 steps/s', or '2.05 s/step' for slow steps (never '0 steps/s')."""
  if steps_per_s >= 100:
    return f"{steps_per_s:,.0f} steps/s"
  if steps_per_s >= 1:
    return f"{steps_per_s:.3g} steps/s"
  return f"{1 / steps_per_s:.3g} s/step" if steps_per_s > 0 else "? steps/s"


def _seconds(s: float) -> str:
  if not math.isfinite(s):
    return "?"
  m, s = divmod(int(round(s)), 60)
  h, m = divmod(m, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
