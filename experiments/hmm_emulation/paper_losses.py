"""The paper's released networks on their own loss's scale (issue 5: do the paper's networks also
score below a perfect emulator, as ours do at T = 100?).

Torre et al. 2025 keep, for each network, the epoch with the lowest validation loss and write that
loss into the weights' file name (github.com/EliaTorre/hmmrnn, `TrainedModels/.../<M>HMM_..._<loss>
Loss.pth`, one decimal; `scripts/rnn.py` `train_model`, `scripts/manager.py`). `REPORTED_LOSSES`
holds those 150 numbers: 36 per linear chain (hidden sizes 50 / 150 / 200 x input dims 1 / 10 /
100 / 200 x 3 seeds) and 3 each for the fully connected and cyclic HMMs. Their validation loss is
geomloss's estimate of the debiased Sinkhorn divergence (`emulation.geomloss_divergence`, blur 0.2)
between 10 000 fixed HMM sequences and as many fresh RNN sequences, in batches of 4096, 4096 and
1808, averaged; 500 epochs (1000 for fully); sequence lengths `hmm.PAPER_LENGTHS`.

The weights themselves are not in the repository (Git LFS pointers), so this study scores, under
exactly that protocol, emulators whose law is known:

  * a perfect emulator (the HMM itself): the floor, mean and s.d. over `config.paper_repeats`
    draws of both sets; and its best epoch: one validation set, `paper_repeats` fresh emulator
    draws, mean + E[min of n standard normals] x their s.d. (n = the epochs; Gaussian tails);
  * chains switching at `config.rival_switching_factors` times the HMM's rate, with the HMM's
    emissions and with deterministic ones (`hmm.deterministic_emissions`: each state emits its
    most likely symbol; for "two", never the 1% symbol);
  * the time-shuffled control.

A row per HMM: "the released networks' median loss (rounded up by 0.05) is at least a perfect
emulator's best epoch - 3 floor s.d.": a network cannot score lower by emulating the HMM well. The
report interpolates, in each family, the switching rates that would score the median.

  python -m experiments.hmm_emulation.paper_losses --config=experiments/hmm_emulation/config.py \\
      --workdir=/tmp/hmm_paper_losses

Writes `results.json`, `paper_losses.json` and `figures/paper_losses.png`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from experiments import common
from experiments.hmm_emulation import experiment
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.hmm_rnn import emulation
from jaxlab.hmm_rnn import hmm as hmm_lib
from jaxlab.hmm_rnn import model
from theory import hmm as theory

# {HMM: {reported best validation loss: number of released networks}}, from the file names.
REPORTED_LOSSES = {
    "two": {9.6: 3, 9.7: 5, 9.8: 6, 9.9: 10, 10.0: 8, 10.1: 4},
    "three": {4.0: 12, 4.1: 24},
    "four": {4.5: 2, 4.6: 23, 4.7: 10, 6.4: 1},
    "five": {7.6: 12, 7.7: 12, 7.8: 11, 7.9: 1},
    "fully": {1.8: 2, 1.9: 1},
    "cyclic": {5.5: 3},
}
REPORTED_ROUNDING = 0.05  # one decimal
PAPER_EPOCHS = {"two": 500, "three": 500, "four": 500, "five": 500, "fully": 1000, "cyclic": 500}
FLOOR_SDS = 3.0


def validate(config: ml_collections.ConfigDict) -> None:
  experiment.validate(config)
  config_checks.check_positive(config, ["paper_validation_sequences", "paper_validation_batch"])
  if config.paper_repeats < 2:
    raise ValueError("config.paper_repeats must be >= 2 (a spread is needed)")
  unknown = [name for name in config.paper_hmms if name not in REPORTED_LOSSES]
  if unknown or not config.paper_hmms:
    raise ValueError(f"config.paper_hmms must name HMMs with released networks "
                     f"{list(REPORTED_LOSSES)}, got {list(config.paper_hmms)}")


def reported(name: str) -> np.ndarray:
  """The released networks' reported losses for one HMM, one entry per network."""
  return np.repeat(list(REPORTED_LOSSES[name]), list(REPORTED_LOSSES[name].values()))


def batch_starts(config) -> list[int]:
  return list(range(0, config.paper_validation_sequences, config.paper_validation_batch))


def protocol_loss(config, length: int):
  """`loss(key, hmm, emulator, validation_key)`: the paper's validation loss of an emulator that
  emits `emulator`'s law, on the validation set `validation_key` draws from `hmm`."""
  sinkhorn = experiment.sinkhorn_config(config)._replace(solver="geomloss")
  n, size = config.paper_validation_sequences, config.paper_validation_batch
  starts = batch_starts(config)
  num_symbols = 3

  @jax.jit
  def loss(key, hmm, emulator, validation_key):
    k_emulator, k_shuffle = jax.random.split(key)
    one_hot = lambda s: jax.nn.one_hot(s, num_symbols, dtype=jnp.float32)  # the paper's dtype
    validation = one_hot(hmm_lib.sample(validation_key, hmm, n, length)[1])
    emitted = one_hot(hmm_lib.sample(k_emulator, emulator, n, length)[1])
    shuffled = emulation.shuffle_time(k_shuffle, emitted)
    batches = lambda x: [x[i:i + size] for i in starts]
    mean = lambda emitted: jnp.mean(jnp.stack([
        emulation.sequence_divergence(e, v, sinkhorn)
        for e, v in zip(batches(emitted), batches(validation))]))
    return mean(emitted), mean(shuffled)

  return loss


def network_losses(config, params: dict, name: str, key: jax.Array, *, noise_std: float = 1.0,
                   initial_state_std: float = 0.0) -> dict[str, float]:
  """A trained network's validation loss under the paper's protocol, read out as trained (Gumbel
  sampling) and by argmax, over `config.paper_repeats` draws of the validation set and the
  network's noise: {"sampled", "sampled_std", "argmax", "argmax_std"}. The paper's networks start
  from h_0 = 0 (`initial_state_std` 0)."""
  score = validation_scorer(config, name, noise_std=noise_std,
                            initial_state_std=initial_state_std)
  _check_symbols(params, name)
  num_batches = len(batch_starts(config))

  def one(key):
    keys = [jax.random.split(jax.random.fold_in(key, i)) for i in range(num_batches)]
    return np.asarray(score(params, jnp.stack([k[1] for k in keys]),
                            jnp.stack([k[0] for k in keys])))

  values = np.array([one(k) for k in jax.random.split(key, config.paper_repeats)])
  return {"sampled": float(values[:, 0].mean()), "sampled_std": float(values[:, 0].std(ddof=1)),
          "argmax": float(values[:, 1].mean()), "argmax_std": float(values[:, 1].std(ddof=1))}


def _check_symbols(params, name):
  hmm = hmm_lib.by_name(name)
  if params["w_out"].shape[1] != hmm.emission.shape[1]:
    raise ValueError(f"the network emits {params['w_out'].shape[1]} symbols, {name!r} "
                     f"{hmm.emission.shape[1]}")


def validation_scorer(config, name: str, *, length: int | None = None, noise_std: float = 1.0,
                      initial_state_std: float = 0.0):
  """`score(params, network_keys, validation_keys) -> [sampled, argmax]`: the paper's validation
  loss of a network on `name`'s validation set, one key of each kind per batch (4096, 4096, 1808).
  Fixed validation keys and fresh network keys score checkpoints as the paper's training loop
  does; params are an argument, so one compilation serves every checkpoint. Sequences of `length`
  steps (default the paper's for `name`)."""
  hmm, length = hmm_lib.by_name(name), length or hmm_lib.PAPER_LENGTHS[name]
  sinkhorn = experiment.sinkhorn_config(config)._replace(solver="geomloss")
  n, size = config.paper_validation_sequences, config.paper_validation_batch
  sizes = [min(size, n - start) for start in batch_starts(config)]
  num_symbols = hmm.emission.shape[1]

  @jax.jit
  def score(params, network_keys, validation_keys):
    values = []
    for i, batch in enumerate(sizes):
      validation = jax.nn.one_hot(hmm_lib.sample(validation_keys[i], hmm, batch, length)[1],
                                  num_symbols, dtype=jnp.float32)
      emitted = model.emit(params, network_keys[i], batch, length, noise_std=noise_std,
                           initial_state_std=initial_state_std)
      argmax = jax.nn.one_hot(jnp.argmax(emitted.logits, -1), num_symbols, dtype=jnp.float32)
      values.append(jnp.stack([
          emulation.sequence_divergence(emitted.symbols.astype(jnp.float32), validation, sinkhorn),
          emulation.sequence_divergence(argmax, validation, sinkhorn)]))
    return jnp.mean(jnp.stack(values), axis=0)

  return score


def score_rivals(loss, hmm, base, factors, key, repeats) -> tuple[list[dict], list[float]]:
  """`base` rescaled to switch at each factor, scored by `loss` against `hmm`: (scored chains,
  the factors that make no chain)."""
  rivals, impossible = [], []
  for factor, k in zip(factors, jax.random.split(key, len(factors))):
    try:
      rival = hmm_lib.scale_switching(base, factor)
    except ValueError:  # e.g. five's interior states switch with probability .95 already
      impossible.append(float(factor))
      continue
    values = [float(loss(kk, hmm, rival, jax.random.fold_in(kk, 1))[0])
              for kk in jax.random.split(k, repeats)]
    rivals.append({"factor": float(factor), "loss": float(np.mean(values)),
                   "std": float(np.std(values, ddof=1))})
  return rivals, impossible


def measure(config, name: str, key) -> dict[str, Any]:
  hmm, length = hmm_lib.by_name(name), hmm_lib.PAPER_LENGTHS[name]
  loss = protocol_loss(config, length)
  k_floor, k_fixed, k_rivals, k_deterministic = jax.random.split(key, 4)
  floor, shuffled = np.array([[float(v) for v in loss(k, hmm, hmm, jax.random.fold_in(k, 1))]
                              for k in jax.random.split(k_floor, config.paper_repeats)]).T
  fixed_set = jax.random.fold_in(k_fixed, 1)
  within = np.array([float(loss(k, hmm, hmm, fixed_set)[0])
                     for k in jax.random.split(k_fixed, config.paper_repeats)])
  epochs = PAPER_EPOCHS[name]
  best_epoch = float(within.mean()
                     + theory.expected_minimum_of_normals(epochs) * within.std(ddof=1))
  factors = tuple(config.rival_switching_factors)
  rivals, impossible = score_rivals(loss, hmm, hmm, factors, k_rivals, config.paper_repeats)
  deterministic, _ = score_rivals(loss, hmm, hmm_lib.deterministic_emissions(hmm),
                                  (1.0,) + factors, k_deterministic, config.paper_repeats)
  losses = reported(name)
  median = float(np.median(losses))
  with_floor = rivals + [{"factor": 1.0, "loss": float(floor.mean())}]
  return {"length": length, "epochs": epochs,
          "floor": float(floor.mean()), "floor_std": float(floor.std(ddof=1)),
          "best_epoch": best_epoch, "within_set_std": float(within.std(ddof=1)),
          "shuffled": float(shuffled.mean()), "switching_rivals": rivals,
          "deterministic_rivals": deterministic, "impossible_factors": impossible,
          "reported_median": median, "reported_min": float(losses.min()),
          "reported_max": float(losses.max()), "networks": int(losses.size),
          "implied_factors": implied_factors(median, with_floor),
          "deterministic_implied_factors": implied_factors(median, deterministic)}


def implied_factors(target: float, chains: list[dict[str, float]]) -> list[float]:
  """The switching factors at which a family of chains would score `target`, linearly
  interpolated between neighbouring scored chains: none when `target` lies outside their range,
  several where the loss is not monotone in the rate."""
  points = sorted((c["factor"], c["loss"]) for c in chains)
  return [float(f0 + (target - l0) * (f1 - f0) / (l1 - l0))
          for (f0, l0), (f1, l1) in zip(points, points[1:])
          if min(l0, l1) <= target <= max(l0, l1) and l0 != l1]


def comparisons(name: str, m: dict[str, Any]) -> list[common.Comparison]:
  bound = m["best_epoch"] - FLOOR_SDS * m["floor_std"]
  return [common.Comparison(
      f"{name}, T = {m['length']}: the {m['networks']} released networks' median loss "
      f"({m['reported_median']:.1f}) is at least a perfect emulator's best of {m['epochs']} epochs "
      f"- {FLOOR_SDS:g} s.d. (floor {m['floor']:.3f} +- {m['floor_std']:.2g}, best epoch "
      f"{m['best_epoch']:.3f}), the paper's protocol and loss",
      bound, m["reported_median"] + REPORTED_ROUNDING, relation=">=")]


def report(name: str, m: dict[str, Any]) -> str:
  scores = lambda chains: ", ".join(f"x{r['factor']:g} {r['loss']:.3f}" for r in chains)
  impossible = "".join(f", x{f:g} impossible" for f in m["impossible_factors"])
  rates = lambda factors: " or ".join(f"~x{f:.2f}" for f in factors) or "none scored"
  return (f"- {name} (T = {m['length']}): released {m['reported_min']:.1f}-{m['reported_max']:.1f}"
          f" (median {m['reported_median']:.1f}, {m['networks']} networks); perfect emulator "
          f"{m['floor']:.3f} +- {m['floor_std']:.3f}, its best epoch {m['best_epoch']:.3f}; "
          f"shuffled {m['shuffled']:.3f}; chains switching at other rates "
          f"{scores(m['switching_rivals'])}{impossible}; with deterministic emissions "
          f"{scores(m['deterministic_rivals'])}; rates that score the median: "
          f"{rates(m['implied_factors'])} (the HMM's emissions), "
          f"{rates(m['deterministic_implied_factors'])} (deterministic)")


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  os.makedirs(workdir, exist_ok=True)
  key = jax.random.key(config.seed)
  results, rows, lines = {}, [], []
  for name in config.paper_hmms:
    key, sub = jax.random.split(key)
    results[name] = measure(config, name, sub)
    rows += comparisons(name, results[name])
    lines.append(report(name, results[name]))
    if jax.process_index() == 0:
      print(lines[-1], flush=True)  # each HMM takes a minute or two
  text = ("The paper's released networks against emulators of known law, on the paper's own "
          "validation loss and protocol:\n" + "\n".join(lines))
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "paper_losses.json"), "w") as f:
      json.dump(results, f, indent=2)
    print(text)
  figures = common.finish(workdir, rows, lambda figdir: _figures(results, figdir))
  return {"comparisons": rows, "figures": figures, "results": results, "report": text}


def _figures(results, figdir) -> dict[str, str]:
  fig, axes = plotting.figure_grid(len(results))
  for ax, (name, m) in zip(axes, results.items()):
    rivals = sorted(m["switching_rivals"] + [{"factor": 1.0, "loss": m["floor"],
                                              "std": m["floor_std"]}], key=lambda r: r["factor"])
    ax.errorbar([r["factor"] for r in rivals], [r["loss"] for r in rivals],
                [r["std"] for r in rivals], fmt="o-", color="k",
                label="chain switching at x the rate (1: perfect emulator)")
    deterministic = sorted(m["deterministic_rivals"], key=lambda r: r["factor"])
    ax.errorbar([r["factor"] for r in deterministic], [r["loss"] for r in deterministic],
                [r["std"] for r in deterministic], fmt="s--", color="tab:blue",
                label="the same, deterministic emissions")
    ax.axhline(m["best_epoch"], color="k", linestyle=":", label="perfect emulator's best epoch")
    ax.axhspan(m["reported_min"] - REPORTED_ROUNDING, m["reported_max"] + REPORTED_ROUNDING,
               color="tab:orange", alpha=0.3, label="released networks (range)")
    ax.axhline(m["reported_median"], color="tab:orange", label="released networks (median)")
    ax.set_xlabel("switching rate / the HMM's")
    ax.set_ylabel("validation loss (geomloss estimate)")
    ax.set_title(f"{name}, T = {m['length']}")
  axes[0].legend(frameon=False, fontsize=7)  # the same five entries in every panel
  return {"paper_losses": plotting.save(fig, os.path.join(figdir, "paper_losses.png"))}


if __name__ == "__main__":
  common.study_main(run, "experiments/hmm_emulation/config.py")
