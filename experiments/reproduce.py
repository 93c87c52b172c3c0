"""The main job: runs every study's signature experiment and writes `report.md`.

  python -m experiments.reproduce --quick --outdir=runs/reproduce

Each study runs into `outdir/<study>/` (a normal workdir, so a re-run resumes) and contributes its
figures and its table (quantity, theory, simulation, error, tolerance, pass) to `outdir/report.md`.
A study joins by adding a `_study(name, title, citation)` line to `STUDIES`; a study whose result
has a "report" (markdown) gets it printed under its table. Exits non-zero if any
comparison fails.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time
from typing import Any, Callable

from absl import app, flags

from experiments import common

_QUICK = flags.DEFINE_bool("quick", False,
                           "Run each study's quick variant (seconds to a few minutes each).")
_OUTDIR = flags.DEFINE_string("outdir", "runs/reproduce", "Where the studies' workdirs and report go.")
_ONLY = flags.DEFINE_list("only", [], "Run just these studies (by name).")


@dataclasses.dataclass(frozen=True)
class Study:
  name: str
  title: str
  citation: str
  get_config: Callable[[str], Any]
  run: Callable[[Any, str], dict[str, Any]]


def _study(name: str, title: str, citation: str) -> Callable[[], Study]:
  """A study whose config and experiment live in experiments/<name>/ (imported on demand)."""

  def make() -> Study:
    config = importlib.import_module(f"experiments.{name}.config")
    experiment = importlib.import_module(f"experiments.{name}.experiment")
    return Study(name, title, citation, config.get_config, experiment.run)

  make.__name__ = name
  return make


STUDIES: list[Callable[[], Study]] = [
    _study("deep_linear", "Deep linear networks: exact learning dynamics",
           "Saxe, McClelland & Ganguli 2014, eqs. (5)-(7) and (15)"),
    _study("lazy_limit", "Lazy vs rich: the lazy limit in the output scale",
           "Chizat, Oyallon & Bach 2019, Thm. 2.3 (gap and weight change O(1/alpha))"),
    _study("connectivity_rank", "Lazy vs rich: connectivity rank at a fixed norm",
           "Liu et al. 2024, Theorem 1 and Proposition 1 (initial alignment derived in "
           "theory/lazy_rich/liu.py), and the RNN variant"),
    _study("get_rich_quick", "Lazy vs rich: exact dynamics of a single neuron with unbalanced layers",
           "Kunin et al. 2024, sec. 3 and Fig. 3 (closed form for every delta derived in "
           "theory/lazy_rich/kunin.py)"),
    _study("grokking", "Grokking as the transition from lazy to rich",
           "Kumar, Bordelon, Gershman & Pehlevan 2024, eq. 6 (test-loss decomposition, re-derived "
           "in theory/lazy_rich/kumar.py) and Figs. 3-4"),
    _study("critical_periods", "Critical learning periods in deep linear networks",
           "Kleinman, Achille & Soatto 2024, the multi-pathway model (per-mode recursion and "
           "invariants derived in theory/lazy_rich/kleinman.py) and matrix completion"),
    _study("jepa_vs_mae", "JEPA vs MAE: deep linear self-distillation avoids noisy features",
           "Littwin et al. 2024, per-feature ODEs, fixed point rho^L and learning order (exact "
           "learning times derived in theory/lazy_rich/jepa.py)"),
    _study("dsf_recall",
           "Attention dynamics: the Dynamical Systems Framework and recall vs state expansion",
           "Sieber et al. 2024 (DSF eq. 1, sec. 5 MQAR); SSD/linear-attention tie derived in "
           "theory/attention/dsf.py"),
    _study("linear_attention", "Attention dynamics: linear and gated linear attention as RNNs",
           "Katharopoulos et al. 2020 (eqs. 5, 16-20); Yang et al. 2024 (GLA, chunkwise form)"),
    _study("hebbian_memory", "Attention as Hebbian associative memory",
           "The 'Pavlovian conditioning' view of linear attention (Qiao 2025); retrieval error, "
           "capacity, depth and coherence bound derived in theory/attention/hebbian.py"),
    _study("icl_gd", "Attention dynamics: transformers learn in context by gradient descent",
           "von Oswald et al. 2023, eq. 5 and Prop. 1 (optimal step N/(N+d+1) and loss derived "
           "in theory/attention/icl_gd.py)"),
    _study("particles", "Self-attention as interacting particles on the sphere",
           "Geshkovski, Letrouit, Polyanskiy & Rigollet 2023, (SA)/(USA), equiangular reduction "
           "(rates 2, 2e^beta); merge time and phase boundary derived in "
           "theory/attention/particles.py"),
    _study("local_linear", "Attention dynamics: local linear attention as test-time regression",
           "Zuo et al. 2025 (closed-form weights derived in jaxlab/attention_dynamics/"
           "local_linear.py) and Fan 1992 boundary/interior bias"),
    _study("pc_backprop", "Predictive coding vs backprop: gradient alignment, Z-IL, fixed prediction",
           "Whittington & Bogacz 2017 (eqs. 5, 9, 12; sec. 2.3); Song et al. 2020 (Z-IL); Millidge, "
           "Tschantz & Buckley 2022 (fixed-prediction assumption); linear equilibrium and critical "
           "inference step derived in theory/predictive_coding.py"),
    _study("pc_training", "Predictive coding vs backprop: training on digits at equal steps",
           "Pinchetti et al. 2024 (pcx benchmark setting, T = 5); Salvatori et al. 2024 (iPC)"),
    _study("hgf", "Hierarchical Gaussian filters: binary and continuous, standard and eHGF orders",
           "Mathys et al. 2011, 2014; eHGF order of Weber et al. 2024 (one-step updates, order gap, "
           "Kalman steady state and exact likelihood derived in theory/hgf.py)"),
    _study("hmm_emulation", "RNNs emulating HMMs: Sinkhorn training, emission statistics, mechanism",
           "Torre, Viscione, Pompe, Grewe & Mante 2025 (sec. 2-5); exact HMM statistics derived in "
           "theory/hmm.py; fixed points as in Sussillo & Barak 2013"),
    _study("induction_icl", "Induction heads: abrupt in-context learning in Reddy's minimal network",
           "Reddy 2024 (ICLR, secs. 3-5: ICL forced, L = N, progress measures); nested-logit model "
           "in theory/induction.py"),
    _study("induction_data", "Induction heads: which data make in-context vs in-weights learning",
           "Reddy 2024 (fig. 2); Chan et al. 2022 (burstiness, number of classes, Zipf)"),
    _study("induction_singh", "Induction heads: diverse additive heads and clamping subcircuits",
           "Singh, Moskovitz, Hill, Chan & Saxe 2024 (ICML, secs. 3-5), Gaussian exemplars for "
           "Omniglot"),
    _study("induction_repeat", "Induction heads: 2-layer vs 1-layer attention on repeated tokens",
           "Olsson et al. 2022 (prefix-matching and copying scores, phase change); Elhage et al. "
           "2021 (K-composition; the hand-built circuit)"),
    _study("ebt", "Energy-based transformers: System-2 thinking (S2 vs S1 vs a transformer)",
           "Gladstone et al. 2025 (sec. 3.3 S1/S2 recipes, sec. 5.2 thinking longer and "
           "self-verification, Table 2 ablations)"),
    _study("ebt_denoise", "Energy-based transformers: image denoising vs a diffusion denoiser",
           "Gladstone et al. 2025 (sec. 5, Fig. 12: EBT vs DiT at equal forward passes, in "
           "distribution and OOD); Wiener filter and probability-flow map in theory/ebt_denoise.py"),
]


def reproduce(outdir: str, quick: bool, only: list[str] | None = None) -> tuple[str, bool]:
  """Runs the studies and writes the report; returns (report path, whether everything passed)."""
  studies = [make() for make in STUDIES]
  known = [s.name for s in studies]
  unknown = sorted(set(only or []) - set(known))
  if unknown:
    raise ValueError(f"unknown study {unknown}; known studies: {known}")
  os.makedirs(outdir, exist_ok=True)
  lines = ["# jaxlab: theory vs simulation", "",
           f"Variant: {'quick' if quick else 'full'}. Each table compares a closed-form or ODE "
           "prediction (`theory/`) with a simulation of the model (`jaxlab/`).", ""]
  all_passed = True
  for study in studies:
    if only and study.name not in only:
      continue
    workdir = os.path.join(outdir, study.name)
    begin = time.perf_counter()
    result = study.run(study.get_config("quick" if quick else ""), workdir)
    seconds = time.perf_counter() - begin
    passed = all(c.passed for c in result["comparisons"])
    all_passed &= passed
    lines += [f"## {study.title}", "", f"{study.citation}. Workdir `{study.name}/`, "
              f"{seconds:.1f} s, {'all pass' if passed else 'SOME FAIL'}.", "",
              common.markdown_table(result["comparisons"]), ""]
    if result.get("report"):  # a study's own summary table, beyond its comparisons
      lines += [result["report"], ""]
    for name, path in result["figures"].items():
      lines.append(f"![{name}]({os.path.relpath(path, outdir)})")
    lines.append("")
  path = os.path.join(outdir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path, all_passed


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  common.quiet_library_logs()
  cache = common.use_compilation_cache(common.COMPILATION_CACHE.value)
  path, passed = reproduce(_OUTDIR.value, _QUICK.value, _ONLY.value)
  if cache is not None:
    print(cache.summary())
  print(f"report: {path} ({'all comparisons pass' if passed else 'some comparisons FAIL'})")
  sys.exit(0 if passed else 1)


if __name__ == "__main__":
  app.run(main, flags_parser=common.parse_flags)
