"""Config checks shared by every experiment: unknown fields and bad values fail early, by name."""

from __future__ import annotations

import difflib
import json
import os
from typing import Any, Iterable

import ml_collections


def _flat_keys(config: Any, prefix: str = "") -> dict[str, Any]:
  out = {}
  for name, value in config.items():
    path = f"{prefix}{name}"
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      out.update(_flat_keys(value, path + "."))
    else:
      out[path] = value
  return out


def check_fields(config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming every field of `config` that `reference` (the defaults) lacks."""
  known = _flat_keys(reference)
  unknown = [k for k in _flat_keys(config) if k not in known]
  if unknown:
    hints = []
    for k in unknown:
      close = difflib.get_close_matches(k, known, n=1)
      hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise ValueError(f"unknown config field(s): {', '.join(hints)}; known fields: "
                     f"{', '.join(sorted(known))}")


def check_positive(config: ml_collections.ConfigDict, fields: Iterable[str]) -> None:
  """Raises ValueError if any of the dotted `fields` is not > 0."""
  flat = _flat_keys(config)
  for name in fields:
    value = flat[name]
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
      raise ValueError(f"config.{name} must be positive, got {value!r}")


def write_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Writes `workdir/config.json` (what this run was asked to do, next to what it did)."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  with open(path, "w") as f:
    json.dump(json.loads(config.to_json_best_effort()), f, indent=2, sort_keys=True)
  return path
