"""Multi-query associative recall (MQAR) against state expansion, the experiment of Sieber et al.
2024 (DSF, sec. 5) at CPU size: one linear-attention layer whose state is $n \\times d_v$ recalls more
of P key-value pairs as n grows, and softmax attention (an infinite-state DSF) is the ceiling.

`run(config, workdir)` (1) trains every state size n at once: one compiled `scan_train` (the engine)
vmapped over feature masks that keep the first n channels of q and k, from the same initialisation
and on the same batches; (2) trains the softmax reference; (3) evaluates query accuracy on fresh
sequences; (4) checks that the trained layer, rewritten as a DSF (generic scan), reproduces its
native output to 1e-10. Writes `config.json`, `metrics.jsonl`, `figures/dsf_recall.png`,
`results.json`.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from experiments import common
from experiments.dsf_recall import config as config_lib
from jaxlab import core
from jaxlab.attention_dynamics import dsf
from jaxlab.attention_dynamics import linear_attention as la
from jaxlab.core import config as config_checks
from jaxlab.core import metrics as metrics_lib
from jaxlab.core import plotting

IDENTITY_TOLERANCE = 1e-10  # float64 identity


def state_dims(config) -> list[int]:
  return [int(s) for s in str(config.state_dims).split(",")]


def validate(config: ml_collections.ConfigDict) -> None:
  config_checks.check_fields(config, config_lib.get_config())
  config_checks.check_positive(config, ["num_pairs", "num_keys", "num_values", "d_model",
                                        "batch_size", "learning_rate", "num_steps", "log_every",
                                        "eval_sequences"])
  if config.num_pairs > config.num_keys:
    raise ValueError("config.num_pairs must not exceed config.num_keys (keys are distinct)")
  dims = state_dims(config)
  if sorted(dims) != dims or dims[0] < 1 or len(dims) < 2:
    raise ValueError(f"config.state_dims must be increasing positive ints, got {dims}")
  if not config.x64:
    raise ValueError("config.x64 must be True: the DSF identity is checked in float64")
  if config.param_dtype not in ("float32", "float64"):
    raise ValueError(f"config.param_dtype must be 'float32' or 'float64', got {config.param_dtype!r}")


def _batch_fn(data, key, *, config):
  batch = dsf.mqar_batch(key, config.batch_size, config.num_pairs, config.num_keys,
                         config.num_values)
  return {**batch, "mask": data["mask"]}


def _train_all(config, masks_SxK, mixer, init_key, train_key):
  """One jitted call: `scan_train` vmapped over state masks, same init and batches for every n."""
  vocab = config.num_keys + config.num_values
  dtype = jnp.dtype(config.param_dtype)
  optimizer = optax.adam(optax.cosine_decay_schedule(config.learning_rate, config.num_steps))
  step_fn = core.make_train_step(functools.partial(dsf.recall_loss, mixer=mixer), optimizer)
  init_fn = lambda k: dsf.recall_init(k, vocab, config.d_model, masks_SxK.shape[1], dtype)

  def one(mask_K):
    state = core.init_train_state(init_fn(init_key), optimizer, train_key)
    return core.scan_train(step_fn, state, {"mask": mask_K}, num_steps=config.num_steps,
                           log_every=config.log_every,
                           batch_fn=functools.partial(_batch_fn, config=config))

  return jax.jit(jax.vmap(one))(masks_SxK)


@functools.partial(jax.jit, static_argnames=("mixer", "num_pairs", "num_keys", "num_values",
                                             "count"))
def _evaluate(params_S, masks_SxK, key, *, mixer, num_pairs, num_keys, num_values, count):
  batch = dsf.mqar_batch(key, count, num_pairs, num_keys, num_values)
  return jax.vmap(lambda p, m: dsf.recall_loss(p, {**batch, "mask": m}, None, mixer=mixer)[1]
                  ["accuracy"])(params_S, masks_SxK)


def dsf_identity_error(params, tokens_T, mask_K) -> float:
  """The trained layer as a DSF on $u_i = [e(x_i); e(x_{i-1})]$: $W_Q' = [mW_Q, 0]$, $W_K' = [0,
  mW_K]$, $W_V' = [W_V, 0]$; generic scan vs the layer's native linear attention."""
  q, k, v = dsf.recall_mixer_inputs(params, tokens_T, mask_K)
  e = params["embed"][tokens_T]
  u = jnp.concatenate([e, jnp.concatenate([jnp.zeros_like(e[:1]), e[:-1]])], axis=1)
  zeros = jnp.zeros_like(params["w_q"])
  p = {"w_q": jnp.concatenate([params["w_q"] * mask_K[:, None], zeros], axis=1),
       "w_k": jnp.concatenate([zeros, params["w_k"] * mask_K[:, None]], axis=1),
       "w_v": jnp.concatenate([params["w_v"], jnp.zeros_like(params["w_v"])], axis=1)}
  sys = dsf.linear_attention_dsf(p, u, feature_map=dsf.identity_feature_map, normalize=False)
  native = la.linear_attention_parallel(q, k, v, normalize=False)
  return float(jnp.max(jnp.abs(dsf.dsf_scan(sys, u) - native)))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  validate(config)
  common.start_run(config, workdir)
  dims = state_dims(config)
  kmax = dims[-1]
  k_init, k_train, k_eval, k_check = jax.random.split(jax.random.key(config.seed), 4)
  dtype = jnp.dtype(config.param_dtype)
  masks = jnp.asarray(np.arange(kmax)[None, :] < np.asarray(dims)[:, None], dtype)
  full = jnp.ones((1, kmax), dtype)

  states, hist = _train_all(config, masks, "linear", k_init, k_train)
  soft_states, soft_hist = _train_all(config, full, "softmax", k_init, k_train)
  kw = dict(num_pairs=config.num_pairs, num_keys=config.num_keys, num_values=config.num_values,
            count=config.eval_sequences)
  acc = np.asarray(_evaluate(states.params, masks, k_eval, mixer="linear", **kw))
  soft_acc = float(_evaluate(soft_states.params, full, k_eval, mixer="softmax", **kw)[0])

  mid = len(dims) // 2
  tokens = dsf.mqar_batch(k_check, 1, config.num_pairs, config.num_keys,
                          config.num_values)["tokens"][0]
  # The identity is checked in float64 on the trained float32 weights (cast exactly).
  identity_error = dsf_identity_error(
      jax.tree.map(lambda x: jnp.asarray(x[mid], jnp.float64), states.params), tokens,
      jnp.asarray(masks[mid], jnp.float64))

  history = {"step": np.asarray(hist["step"][0]), "accuracy": np.asarray(hist["accuracy"]),
             "loss": np.asarray(hist["loss"]),
             "softmax_accuracy": np.asarray(soft_hist["accuracy"][0])}
  if jax.process_index() == 0:
    for s, n in enumerate(dims):
      writer = metrics_lib.MetricWriter(os.path.join(workdir, "metrics.jsonl"),
                                        tags={"run": f"linear_n{n}"})
      writer.write_rows([{"step": int(st), "loss": float(l), "accuracy": float(a)} for st, l, a in
                         zip(history["step"], history["loss"][s], history["accuracy"][s])])
      writer.close()
  measured = {"state_dims": dims, "accuracy": acc.tolist(), "softmax_accuracy": soft_acc,
              "identity_error": identity_error}
  logging.info("MQAR accuracy by state expansion %s: %s; softmax %.4f", dims,
               [round(a, 4) for a in acc.tolist()], soft_acc)
  comparisons = _comparisons(config, measured)
  figures = common.finish(workdir, comparisons,
                          lambda figdir: _figures(config, history, measured, figdir))
  return {"comparisons": comparisons, "figures": figures, "history": history,
          "measured": measured}


def _comparisons(config, m) -> list[common.Comparison]:
  dims, acc = m["state_dims"], m["accuracy"]
  steps = [b - a for a, b in zip(acc, acc[1:])]
  return [
      common.Comparison(f"trained layer (n={dims[len(dims) // 2]}): max |generic DSF scan - native "
                        "linear attention|", 0.0, m["identity_error"], IDENTITY_TOLERANCE),
      common.Comparison(f"MQAR accuracy gain from state expansion, acc(n={dims[-1]}) - "
                        f"acc(n={dims[0]}) (P={config.num_pairs} pairs)", config.min_gain,
                        acc[-1] - acc[0], relation=">="),
      common.Comparison("smallest step of accuracy between consecutive n (monotone up to slack)",
                        -config.monotone_slack, min(steps), relation=">="),
      common.Comparison("softmax attention (infinite-state DSF) accuracy",
                        config.softmax_min_accuracy, m["softmax_accuracy"], relation=">="),
  ]


def _figures(config, history, m, figdir) -> dict[str, str]:
  dims = m["state_dims"]
  fig, axes = plotting.figure_grid(2)
  colors = plotting.colors(len(dims))
  ax = axes[0]
  for s, n in enumerate(dims):
    ax.plot(history["step"], history["accuracy"][s], color=colors[s], label=f"linear, n={n}")
  ax.plot(history["step"], history["softmax_accuracy"], "k--", label="softmax")
  ax.set_xlabel("training step")
  ax.set_ylabel("query accuracy (training batches)")
  ax.set_title(f"MQAR, P={config.num_pairs} pairs")
  ax.legend(frameon=False, fontsize=7)
  ax = axes[1]
  ax.plot(dims, m["accuracy"], "o-", color="C0", label="linear attention (state n x d_v)")
  ax.axhline(m["softmax_accuracy"], color="k", linestyle="--", linewidth=1, label="softmax")
  ax.axvline(config.num_pairs, color="gray", linestyle=":", linewidth=1, label="n = P")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("state expansion n")
  ax.set_ylabel("held-out query accuracy")
  ax.set_title("accuracy rises with state expansion")
  ax.legend(frameon=False, fontsize=7)
  return {"dsf_recall": plotting.save(fig, os.path.join(figdir, "dsf_recall.png"))}
