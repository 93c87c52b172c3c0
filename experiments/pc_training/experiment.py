"""Predictive coding vs backprop training on real data (scikit-learn's 8x8 digits), at equal steps.

Rules (jaxlab.predictive_coding.inference): backprop; standard PC with T node steps from the
feedforward pass and unit output precision (the setting of the pcx benchmark, Pinchetti et al. 2024,
arXiv 2407.01163, sec. 4: T = 5 for MLPs); incremental PC (Salvatori et al. 2024, Alg. 1). Networks:
tanh MLPs of increasing depth and a small conv net. `run(config, workdir)` trains every (network,
rule) for `num_seeds` seeds in one vmapped, compiled call each, and compares test accuracies:
the small MLP and the conv net learn as well with PC as with backprop (within 1 point, issue 6), and
the deep MLP opens a gap, as in the pcx benchmark where PC falls behind BP with depth. The mechanism is
visible in `experiments/pc_backprop`: with T node steps, the error reaches only the top T layers.
Writes `config.json`, `figures/*.png`, `results.json`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import numpy as np
import optax

from experiments import common
from experiments.pc_training import config as config_lib
from jaxlab import core
from jaxlab.core import config as config_checks
from jaxlab.core import plotting
from jaxlab.predictive_coding import data as pc_data
from jaxlab.predictive_coding import inference as pci
from jaxlab.predictive_coding import network as pcn

SHALLOW_TOLERANCE = 1.0  # issue 6: PC within 1 point of backprop for a small MLP (points)
DEEP_GAP_BOUND = 1.0  # the deepest MLP's backprop - PC gap exceeds the shallow one by >= 1 point
RULES = ("backprop", "pc", "ipc")


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, ["num_seeds", "width", "num_inference_steps",
                                        "node_learning_rate", "output_precision", "learning_rate",
                                        "batch_size", "num_steps", "log_every"])
  if not config.hidden_layers or any(d < 1 for d in config.hidden_layers):
    raise ValueError(f"config.hidden_layers must be depths >= 1, got {config.hidden_layers}")
  unknown = set(config.rules) - set(RULES)
  if unknown or "backprop" not in config.rules or "pc" not in config.rules:
    raise ValueError(f"config.rules must include 'backprop' and 'pc' and come from {RULES}, got "
                     f"{config.rules}")
  if config.num_steps % config.log_every:
    raise ValueError(f"config.num_steps={config.num_steps} must be a multiple of config.log_every="
                     f"{config.log_every}")


def train_rule(config, network, dataset, input_shape, rule):
  """Trains `num_seeds` runs of one (network, rule); returns test accuracy [seed, row] and steps."""
  optimizer = optax.adam(config.learning_rate)

  def batch_fn(data, key):
    index = jax.random.randint(key, (config.batch_size,), 0, data.train_inputs.shape[0])
    return data.train_inputs[index], data.train_targets[index]

  def eval_fn(params, data):
    logits = pcn.forward(network, params, data.test_inputs)[-1]
    return {"test_accuracy": pc_data.accuracy(logits, data.test_targets)}

  def init_fn(key):
    return pcn.init(key, network, input_shape)

  if rule == "ipc":
    step = pci.make_incremental_train_step(
        network, optimizer, output_precision=config.output_precision,
        node_rate=config.node_learning_rate, num_inference_steps=config.num_inference_steps)
  else:
    step = core.make_train_step(pci.make_loss(
        network, rule, output_precision=config.output_precision,
        node_optimizer=optax.sgd(config.node_learning_rate),
        num_inference_steps=config.num_inference_steps), optimizer)

  def one_seed(key):
    state = core.init_run(init_fn, optimizer, key)
    return core.scan_train(step, state, dataset, num_steps=config.num_steps,
                           log_every=config.log_every, batch_fn=batch_fn, eval_fn=eval_fn)[1]

  keys = jax.random.split(jax.random.key(config.seed), config.num_seeds)
  if any(isinstance(layer, pcn.Conv) for layer in network.layers):
    # XLA:CPU runs a vmapped convolution as a grouped one, several times slower than one at a time.
    history = jax.jit(lambda k: jax.lax.map(one_seed, k))(keys)
  else:
    history = jax.jit(jax.vmap(one_seed))(keys)
  return {"steps": np.asarray(history["step"][0]),
          "test_accuracy": np.asarray(history["test_accuracy"]),
          "train_loss": np.asarray(history["loss"])}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  flat, images = pc_data.digits(config.seed), pc_data.digits(config.seed, images=True)
  networks = {f"mlp_{depth}": (pcn.mlp((64,) + (config.width,) * depth + (10,), config.activation,
                                       "cross_entropy"), flat, (64,))
              for depth in config.hidden_layers}
  conv_layers = (pcn.Conv(config.conv_features[0], 3), pcn.Conv(config.conv_features[1], 3, 2),
                 pcn.Dense(10))
  networks["conv"] = (pcn.Network(conv_layers, config.activation, "cross_entropy"), images, (8, 8, 1))
  results = {}
  for name, (network, dataset, input_shape) in networks.items():
    rules = config.rules if name != "conv" else ("backprop", "pc")
    results[name], seconds = core.wall_time(
        lambda: {rule: train_rule(config, network, dataset, input_shape, rule) for rule in rules})
    print(f"[pc_training] {name}: {seconds:.1f}s for {len(rules)} rules x {config.num_seeds} seeds")
  comparisons = _comparisons(config, results)
  figures = common.finish(workdir, comparisons, lambda figdir: _figures(config, results, figdir))
  return {"comparisons": comparisons, "figures": figures, "results": results}


def final_accuracy(result) -> tuple[float, float]:
  """Mean over seeds of the last test accuracy, in points, and its standard error."""
  last = 100 * result["test_accuracy"][:, -1]
  return float(last.mean()), float(last.std(ddof=1) / np.sqrt(len(last)) if len(last) > 1 else 0.0)


def backprop_gap(results, name, rule="pc") -> float:
  """Backprop's final test accuracy minus `rule`'s, in points (seed means)."""
  return final_accuracy(results[name]["backprop"])[0] - final_accuracy(results[name][rule])[0]


def _comparisons(config, results) -> list[common.Comparison]:
  shallow, deep = f"mlp_{config.hidden_layers[0]}", f"mlp_{config.hidden_layers[-1]}"
  t = config.num_inference_steps
  rows = [common.Comparison(f"{config.hidden_layers[0]}-hidden-layer MLP: PC (T={t}) - backprop test "
                            f"accuracy (points)", 0.0, -backprop_gap(results, shallow),
                            SHALLOW_TOLERANCE),
          common.Comparison(f"conv net: PC (T={t}) - backprop test accuracy (points)", 0.0,
                            -backprop_gap(results, "conv"), SHALLOW_TOLERANCE)]
  if "ipc" in config.rules:
    rows.append(common.Comparison(f"{config.hidden_layers[0]}-hidden-layer MLP: incremental PC - "
                                  f"backprop test accuracy (points)", 0.0,
                                  -backprop_gap(results, shallow, "ipc"), SHALLOW_TOLERANCE))
  if deep != shallow:
    rows.append(common.Comparison(
        f"depth gap: (backprop - PC) at {config.hidden_layers[-1]} hidden layers minus at "
        f"{config.hidden_layers[0]} (points)", DEEP_GAP_BOUND,
        backprop_gap(results, deep) - backprop_gap(results, shallow), relation=">="))
  return rows


def _figures(config, results, figdir) -> dict[str, str]:
  names = list(results)
  fig, axes = plotting.figure_grid(len(names) + 1)
  rule_colors = dict(zip(RULES, plotting.colors(len(RULES))))
  for ax, name in zip(axes, names):
    for rule, result in results[name].items():
      acc = 100 * result["test_accuracy"]
      mean, spread = acc.mean(0), acc.std(0)
      ax.plot(result["steps"], mean, color=rule_colors[rule], label=rule)
      ax.fill_between(result["steps"], mean - spread, mean + spread, color=rule_colors[rule],
                      alpha=0.2)
    ax.set_title(name.replace("mlp_", "MLP, hidden layers: "))
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(80, 100)
  axes[0].legend(frameon=False, fontsize=7)
  ax = axes[len(names)]
  depths = list(config.hidden_layers)
  for rule in config.rules:
    if rule == "backprop":
      continue
    gaps = [backprop_gap(results, f"mlp_{d}", rule) for d in depths]
    ax.plot(depths, gaps, "o-", color=rule_colors[rule], label=f"backprop - {rule}")
  ax.axhline(0.0, color="k", linewidth=1)
  ax.set_xlabel("hidden layers")
  ax.set_ylabel("final accuracy gap (points)")
  ax.set_title(f"T = {config.num_inference_steps} node steps")
  ax.legend(frameon=False, fontsize=7)
  return {"pc_training": plotting.save(fig, os.path.join(figdir, "pc_training.png"))}
