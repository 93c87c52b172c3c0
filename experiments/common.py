"""What every experiment shares: the theory-vs-simulation rows of its results table, and the main()."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any


@dataclasses.dataclass(frozen=True)
class Comparison:
  """One row of a study's table: a quantity predicted by theory and measured in simulation.

  relation "close": `error` is |simulation - theory| / |theory| (relative), or |simulation - theory|
  when the theory value is 0 (e.g. a maximum deviation); the row passes when error <= tolerance.
  relation ">=" / "<=": the theory is a bound (e.g. a separation of at least 5 standard errors);
  `error` is the shortfall past the bound (0 when it holds) and the tolerance is ignored.
  """

  quantity: str
  theory: float
  simulation: float
  tolerance: float = 0.0
  relation: str = "close"

  def __post_init__(self):
    if self.relation not in ("close", ">=", "<="):
      raise ValueError(f"relation must be 'close', '>=' or '<=', got {self.relation!r}")

  @property
  def error(self) -> float:
    if self.relation == ">=":
      return max(0.0, self.theory - self.simulation)
    if self.relation == "<=":
      return max(0.0, self.simulation - self.theory)
    diff = abs(self.simulation - self.theory)
    return diff / abs(self.theory) if self.theory != 0 else diff

  @property
  def passed(self) -> bool:
    if not (math.isfinite(self.simulation) and math.isfinite(self.theory)):
      return False
    if self.relation != "close":
      return bool(self.error == 0.0)
    return bool(math.isfinite(self.error) and self.error <= self.tolerance)

  def as_dict(self) -> dict[str, Any]:
    return {"quantity": self.quantity, "theory": float(self.theory),
            "simulation": float(self.simulation), "tolerance": float(self.tolerance),
            "relation": self.relation, "error": float(self.error), "passed": self.passed}


def start_run(config, workdir: str) -> None:
  """What every `run` does first: float64 if the config asks, the workdir, and its config.json."""
  import jax
  from jaxlab.core import config as config_checks
  if config.x64:
    jax.config.update("jax_enable_x64", True)
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:
    config_checks.write_config(config, workdir)


def finish(workdir: str, comparisons: list[Comparison], draw) -> dict[str, str]:
  """What every `run` does last, on process 0 only: `draw(figdir) -> {name: png}` and results.json."""
  import jax
  if jax.process_index() != 0:
    return {}
  figures = draw(os.path.join(workdir, "figures"))
  write_results(workdir, comparisons, figures)
  return figures


def write_results(workdir: str, comparisons: list[Comparison], figures: dict[str, str]) -> str:
  path = os.path.join(workdir, "results.json")
  with open(path, "w") as f:
    json.dump({"comparisons": [c.as_dict() for c in comparisons],
               "figures": {k: os.path.relpath(v, workdir) for k, v in figures.items()}}, f, indent=2)
  return path


def markdown_table(comparisons: list[Comparison]) -> str:
  lines = ["| quantity | theory | simulation | error | tolerance | pass |",
           "|---|---|---|---|---|---|"]
  for c in comparisons:
    quantity = c.quantity.replace("|", "\\|")
    theory = f"{c.theory:.6g}" if c.relation == "close" else f"{c.relation} {c.theory:.6g}"
    tolerance = f"{c.tolerance:.2g}" if c.relation == "close" else "bound"
    lines.append(f"| {quantity} | {theory} | {c.simulation:.6g} | {c.error:.2e} | {tolerance} | "
                 f"{'pass' if c.passed else '**FAIL**'} |")
  return "\n".join(lines)


from absl import flags, logging  # noqa: E402

COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache",
    os.environ.get("JAXLAB_COMPILATION_CACHE", os.path.join("~", ".cache", "jaxlab", "xla")),
    "Directory of JAX's persistent compilation cache (default: $JAXLAB_COMPILATION_CACHE or "
    "~/.cache/jaxlab/xla): a re-run loads the XLA programs compiled before from it instead of "
    "compiling them again. Empty: off.")


@dataclasses.dataclass
class CompilationCacheCounts:
  """Programs a process loaded from the persistent cache and programs it had to compile."""

  directory: str
  loaded: int = 0
  compiled: int = 0

  def summary(self) -> str:
    return (f"compilation cache {self.directory}: {self.loaded} programs loaded, "
            f"{self.compiled} compiled")


def use_compilation_cache(directory: str) -> CompilationCacheCounts | None:
  """Turns on JAX's persistent compilation cache in `directory` for every program, however fast it
  compiles (the theory studies spend 30-70% of a run compiling many small programs:
  benchmarks/README.md), and counts hits and misses. Call it before anything is compiled: JAX
  decides at the process's first compilation whether the cache is used. Empty `directory`: off."""
  if not directory:
    return None
  import jax
  directory = os.path.abspath(os.path.expanduser(directory))
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  counts = CompilationCacheCounts(directory)

  def count(event: str, **kwargs) -> None:
    del kwargs
    if event == "/jax/compilation_cache/cache_hits":
      counts.loaded += 1
    elif event == "/jax/compilation_cache/cache_misses":
      counts.compiled += 1

  jax.monitoring.register_event_listener(count)
  return counts


def data_parallel_mesh(config):
  """The mesh for `core.train(..., mesh=...)` when `config.data_parallel` is set: all devices of all
  processes on one data axis, each sampled batch split over them. None (one device) otherwise."""
  if not config.get("data_parallel", False):
    return None
  import jax
  from jaxlab.core import parallel
  mesh = parallel.data_mesh()
  if config.batch_size % mesh.devices.size:
    raise ValueError(f"config.batch_size={config.batch_size} must be a multiple of the "
                     f"{mesh.devices.size} devices that config.data_parallel splits it over "
                     f"({jax.process_count()} process(es))")
  return mesh


def study_main(run_fn, default_config: str) -> None:
  """The whole of a study's main.py: `--config=<default_config>[:variant]`, `--workdir`, run, table."""
  from absl import app
  from ml_collections import config_flags
  config = config_flags.DEFINE_config_file("config", None, f"{default_config}[:quick]",
                                           lock_config=True)
  flags.mark_flags_as_required(["config"])
  flags.DEFINE_string("workdir", None, "Output directory; re-running with it resumes.")
  flags.DEFINE_string("coordinator_address", None, "Multi-host: host:port of process 0 ('auto' "
                      "on TPU/Slurm/MPI). Unset: single process.")
  flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes.")
  flags.DEFINE_integer("process_id", None, "Multi-host: this process's index.")

  def main(argv):
    launch(argv, run_fn, config.value)  # returns nothing: app.run exits with main's return value

  app.run(main, flags_parser=parse_flags)


def launch(argv, run_fn, config) -> dict[str, Any]:
  """The body of every main(): checks argv, joins a multi-host job if asked, runs, prints the table."""
  if len(argv) > 1:
    raise app_usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
  workdir = flags.FLAGS.workdir
  if not workdir:
    raise app_usage_error("--workdir is required")
  quiet_library_logs()
  cache = use_compilation_cache(COMPILATION_CACHE.value)
  from jaxlab.core import parallel  # imported late: jax must not start before flags are parsed
  parallel.initialize_distributed(flags.FLAGS.coordinator_address, flags.FLAGS.num_processes,
                                  flags.FLAGS.process_id)
  import jax
  logging.info("process %d of %d, %d local / %d global devices", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  result = run_fn(config, workdir)
  if jax.process_index() == 0:
    print(markdown_table(result["comparisons"]))
    if cache is not None:
      print(cache.summary())
    print(f"outputs in {workdir}")
  return result


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with one-line errors: a mistyped `--config.x` names the field, no traceback."""
  import sys
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"{argv[0]}: {e}\nTry --helpfull for the list of flags.")
  except (AttributeError, KeyError) as e:  # ml_collections: an override of a field that is not there
    overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
    while isinstance(e, BaseException) and e.args:  # AttributeError(KeyError(KeyError(text)))
      e = e.args[0]
    first, *hint = str(e).split("\n")
    field = first.strip("'\"")
    named = [o for o in overrides if o.endswith("." + field)] or overrides
    sys.exit(f"{argv[0]}: unknown config field '{field}' (in {', '.join(named)}). "
             + " ".join(hint))


def quiet_library_logs() -> None:
  """orbax logs every save at INFO: keep the console for the progress line and warnings (>= 30)."""
  logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= 30 or "orbax" not in record.pathname)


def app_usage_error(message: str) -> Exception:
  from absl import app
  return app.UsageError(message)
