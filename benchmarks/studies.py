"""Per study: wall time, XLA compilations and their time, and the OS's peak memory of a whole run.

  python -m benchmarks.studies [--studies=deep_linear,ebt] [--variant=quick] [--double] [--cache]

Each study's `--variant` config runs in its own child process (a cold compilation cache, and a
peak resident memory, `ru_maxrss`, that belongs to that study alone), with a listener on JAX's
backend-compile events: how many programs XLA compiled and how long that took, as a fraction of
the run's wall time. A study that recompiles its step every chunk or every seed shows up here as a
compile count that grows with its seeds or steps: `--double` runs every study a second time with
each config field named `*num_steps` or `*seeds` doubled and prints both counts. `--cache` runs every
study twice more with JAX's persistent compilation cache in a fresh directory (what the experiment
entrypoints use by default, `experiments.common.use_compilation_cache`): once filling it, once
loading from it, as a re-run of the same study does. Studies run one
after another (the quick variants: about as long as `make demo`). Compare ratios across machines,
not seconds.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_STUDIES = flags.DEFINE_list("studies", None, "Studies to run (default: all of reproduce.STUDIES).")
_VARIANT = flags.DEFINE_string("variant", "quick", "Config variant of every study.")
_CHILD = flags.DEFINE_string("child", None, "Internal: run one study and print its measurements.")
_DOUBLE = flags.DEFINE_bool("double", False, "Also run each study with its steps and seeds doubled.")
_CACHE = flags.DEFINE_bool("cache", False, "Also run each study twice with a persistent compilation "
                           "cache: filling it, then loading from it.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Internal: the child's compilation cache.")
DOUBLED_SUFFIXES = ("num_steps", "seeds")


def double_steps_and_seeds(config) -> list[str]:
  """Doubles, in place, every integer field of `config` (nested too) whose name ends in one of
  DOUBLED_SUFFIXES; returns their dotted names."""
  doubled = []
  for name, value in config.items():
    if hasattr(value, "items"):
      doubled += [f"{name}.{n}" for n in double_steps_and_seeds(value)]
    elif isinstance(value, int) and not isinstance(value, bool) and name.endswith(DOUBLED_SUFFIXES):
      config[name] = 2 * value
      doubled.append(name)
  return doubled


def child(name: str, variant: str, double: bool = False, cache_dir: str | None = None) -> dict:
  from experiments import common
  cache = common.use_compilation_cache(cache_dir) if cache_dir else None  # before any compile
  import jax
  from experiments import reproduce
  compiles = []
  jax.monitoring.register_event_duration_secs_listener(
      lambda event, seconds, **kw: compiles.append(seconds)
      if event == "/jax/core/compile/backend_compile_duration" else None)
  (study,) = [make() for make in reproduce.STUDIES if make.__name__ == name]
  config = study.get_config(variant)
  doubled = double_steps_and_seeds(config) if double else []
  begin = time.perf_counter()
  with tempfile.TemporaryDirectory() as workdir:
    result = study.run(config, workdir)
  wall = time.perf_counter() - begin
  return {"wall_s": wall, "compiles": len(compiles), "compile_s": sum(compiles),
          "passed": all(c.passed for c in result["comparisons"]),
          "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
          "doubled": doubled, "cache_loaded": cache.loaded if cache else 0,
          "cache_compiled": cache.compiled if cache else 0}


def main(argv):
  del argv
  if _CHILD.value:
    print("RESULT " + json.dumps(child(_CHILD.value, _VARIANT.value, _DOUBLE.value,
                                       _CACHE_DIR.value)))
    return
  from experiments import reproduce
  known = [make.__name__ for make in reproduce.STUDIES]
  names = _STUDIES.value or known
  unknown = sorted(set(names) - set(known))
  if unknown:
    raise app.UsageError(f"--studies: unknown {unknown}; known: {known}")
  print(f"variant {_VARIANT.value!r}; one child process per study")
  print(f"{'study':<18} {'wall s':>8} {'compiles':>9} {'compile s':>10} {'compiling':>10} "
        f"{'peak GB':>8} {'rows pass':>9}" + ("  compiles with steps and seeds x2" if _DOUBLE.value
                                               else "")
        + ("  with a compilation cache: filling it / loading from it" if _CACHE.value else ""))
  for name in names:
    r = _run_child(name, double=False)
    if r is None:
      continue
    line = (f"{name:<18} {r['wall_s']:8.1f} {r['compiles']:9d} {r['compile_s']:10.1f} "
            f"{r['compile_s'] / r['wall_s']:9.0%} {r['rss_gb']:8.2f} {str(r['passed']):>9}")
    if _DOUBLE.value:
      d = _run_child(name, double=True)
      line += (f"  {d['compiles']} ({d['compiles'] / r['compiles']:.2f}x; doubled "
               f"{', '.join(d['doubled']) or 'nothing'})" if d else "  failed")
    if _CACHE.value:
      with tempfile.TemporaryDirectory() as cache_dir:
        fill = _run_child(name, double=False, cache_dir=cache_dir)
        load = _run_child(name, double=False, cache_dir=cache_dir)
      if fill and load:
        line += (f"  {fill['wall_s']:.1f} s / {load['wall_s']:.1f} s ({load['wall_s'] / r['wall_s']:.2f}x "
                 f"the uncached wall time; {load['cache_loaded']} loaded, {load['cache_compiled']} compiled)")
      else:
        line += "  failed"
    print(line, flush=True)


def _run_child(name: str, double: bool, cache_dir: str | None = None) -> dict | None:
  out = subprocess.run([sys.executable, "-m", "benchmarks.studies", f"--child={name}",
                        f"--variant={_VARIANT.value}", f"--double={double}"]
                       + ([f"--cache_dir={cache_dir}"] if cache_dir else []),
                       capture_output=True, text=True)
  lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
  if out.returncode or not lines:
    print(f"{name:<18} failed (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return None
  return json.loads(lines[-1][len("RESULT "):])


if __name__ == "__main__":
  app.run(main)
