"""Predictive-coding MLP training, jaxlab side by side with pcx (issue 6).

  bash benchmarks/pcx_peer.sh [--epochs=20] [--seeds=3]   (builds pcx's throwaway venv, then runs this)

pcx pins an old JAX, so it is never a jaxlab dependency: this module runs only in the venv that
`benchmarks/pcx_peer.sh` builds (jaxlab's JAX, pcx installed with --no-deps).

Both sides train the same network on the same data with the same algorithm:
  - scikit-learn digits (`jaxlab.predictive_coding.data.digits(0)`: 1437 train / 360 test, 64 inputs);
  - MLP 64-128-128-10, tanh hidden layers, linear output, post-activation nodes mu_{l+1} = f(W x_l + b);
  - energy F = sum_l 1/2 |x_l - mu_l|^2 over the hidden nodes + cross-entropy -y . log_softmax(mu_L) on
    the output clamped to the one-hot target (output precision 1): jaxlab's `output_energy=
    "cross_entropy"`, pcx's `se_energy` / `ce_energy` Vodes;
  - per batch: feedforward initialisation, T node steps of SGD on the batch-summed F, then one weight step
    with the batch-averaged dF/dW at the relaxed nodes (jaxlab's `make_loss(..., "pc")`; pcx's
    canonical loop with the weight gradient scaled by 1 / batch);
  - identical initial weights (jaxlab's LeCun-normal init copied into pcx's equinox Linears, which
    would otherwise draw U(+-1/sqrt(fan_in)) weights and biases) and an identical batch order.
So the two runs compute the same function in float32; the printed weight difference after training
checks that the comparison is like for like.

Timed runners, interleaved epoch by epoch so that load from other processes hits all of them alike:
  1. jaxlab PC, one epoch = one jitted `lax.scan` of `core.make_train_step` over the batches (jaxlab's
     idiom);
  2. jaxlab PC, one jitted train step per batch (the same loop shape as pcx's);
  both jaxlab PC runners donate their input state, as `core.train` does (without donation the
  step-per-batch loop allocated its 13.5 MB of weights and Adam moments afresh on every call and ran
  1.5x slower than pcx at width 1024);
  3. pcx PC, its canonical `pxf.jit`-ed `train_on_batch` per batch;
  4. jaxlab backprop on the same MLP (lax.scan epoch), for reference.
Seconds per epoch are medians over all epochs after the first (of every seed); the first epoch of seed 0
includes compilation, reported as first epoch minus that median. Wall-clock on whatever machine runs it.
"""

from __future__ import annotations

import importlib.metadata
import logging as std_logging
import os
import platform
import statistics
import time

from absl import app, flags

_EPOCHS = flags.DEFINE_integer("epochs", 20, "Training epochs per seed.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds (initial weights and batch order) to average over.")
_BATCH = flags.DEFINE_integer("batch", 64, "Batch size; the last incomplete batch is dropped.")
_HIDDEN = flags.DEFINE_list("hidden", ["128", "128"], "Hidden layer widths.")
_ACTIVATION = flags.DEFINE_enum("activation", "tanh", ["tanh", "gelu"], "Hidden activation.")
_T = flags.DEFINE_integer("inference_steps", 5, "Node (inference) steps per batch.")
_NODE_LR = flags.DEFINE_float("node_lr", 0.1, "SGD learning rate of the nodes.")
_LR = flags.DEFINE_float("lr", 1e-3, "Adam learning rate of the weights.")

PCX_MISSING = ("pcx is not importable in this environment: run benchmarks/pcx_peer.sh, which builds "
               "the throwaway env (pcx pins an old JAX and is never a jaxlab dependency)")


def _import_pcx():
  try:
    import pcx  # noqa: F401
    import pcx.functional as pxf
    import pcx.nn as pxnn
    import pcx.predictive_coding as pxc
    import pcx.utils as pxu
  except ImportError as e:
    raise SystemExit(f"{PCX_MISSING}\n(ImportError: {e})") from e
  return pcx, pxc, pxnn, pxf, pxu


def _version(name: str) -> str:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return "?"


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _pcx_runner(sizes, activation, num_steps, node_lr, lr):
  """pcx's canonical PC training loop (its tutorial's structure), for a given MLP."""
  import jax
  import optax
  pcx, pxc, pxnn, pxf, pxu = _import_pcx()

  class Model(pxc.EnergyModule):

    def __init__(self):
      super().__init__()
      self.act_fn = pcx.static(activation)
      self.layers = [pxnn.Linear(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
      self.vodes = [pxc.Vode(pxc.se_energy) for _ in sizes[1:-1]] + [pxc.Vode(pxc.ce_energy)]
      self.vodes[-1].h.frozen = True  # the output node is clamped to the target while training

    def __call__(self, x, y):
      for vode, layer in zip(self.vodes[:-1], self.layers[:-1]):
        x = vode(self.act_fn(layer(x)))
      x = self.vodes[-1](self.layers[-1](x))
      if y is not None:
        self.vodes[-1].set("h", y)
      return self.vodes[-1].get("u")

  batched = pxu.M(pxc.VodeParam | pxc.VodeParam.Cache).to((None, 0))

  @pxf.vmap(batched, in_axes=(0, 0), out_axes=0)
  def forward(x, y, *, model):
    return model(x, y)

  @pxf.vmap(batched, in_axes=(0,), out_axes=(None, 0), axis_name="batch")
  def energy(x, *, model):
    out = model(x, None)
    return jax.lax.psum(model.energy(), "batch"), out

  @pxf.jit(static_argnums=0)
  def train_on_batch(steps, x, y, *, model, optim_w, optim_h):
    model.train()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
      forward(x, y, model=model)
    optim_h.init(pxu.M_hasnot(pxc.VodeParam, frozen=True)(model))
    for _ in range(steps):
      with pxu.step(model, clear_params=pxc.VodeParam.Cache):
        _, g = pxf.value_and_grad(pxu.M_hasnot(pxc.VodeParam, frozen=True).to([False, True]),
                                  has_aux=True)(energy)(x, model=model)
      optim_h.step(model, g["model"])
    optim_h.clear()
    with pxu.step(model, clear_params=pxc.VodeParam.Cache):
      _, g = pxf.value_and_grad(pxu.M(pxnn.LayerParam).to([False, True]), has_aux=True)(energy)(
          x, model=model)
    optim_w.step(model, g["model"], scale_by=1.0 / x.shape[0])

  @pxf.jit()
  def predict(x, *, model):
    model.eval()
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
      return forward(x, None, model=model)

  def make(params, batch_size, seed):
    pcx.RKG.seed(seed)
    model = Model()
    for layer, p in zip(model.layers, params):  # equinox Linear stores weight as (out, in)
      layer.nn.weight.set(jax.numpy.asarray(p["w"]).T)
      layer.nn.bias.set(jax.numpy.asarray(p["b"]))
    optim_w = pxu.Optim(lambda: optax.adam(lr), pxu.M(pxnn.LayerParam)(model))
    optim_h = pxu.Optim(lambda: optax.sgd(node_lr))
    # One forward pass gives the Vodes their batch shape, so the first train call does not retrace.
    with pxu.step(model, pxc.STATUS.INIT, clear_params=pxc.VodeParam.Cache):
      forward(jax.numpy.zeros((batch_size, sizes[0])), None, model=model)
    return model, optim_w, optim_h

  def epoch(state, batches):
    model, optim_w, optim_h = state
    for x, y in batches:
      train_on_batch(num_steps, x, y, model=model, optim_w=optim_w, optim_h=optim_h)
    jax.block_until_ready([layer.nn.weight.get() for layer in model.layers])
    return state

  def weights(state):
    return [{"w": layer.nn.weight.get().T, "b": layer.nn.bias.get()} for layer in state[0].layers]

  def logits(state, x):
    model = state[0]
    model.clear_params(pxc.VodeParam)  # the Vodes hold the training batch's shape
    out = predict(x, model=model)
    model.clear_params(pxc.VodeParam)
    return out

  return make, epoch, weights, logits


def main(argv):
  del argv
  std_logging.getLogger("jax").setLevel(std_logging.WARNING)  # no INFO line about an absent TPU
  _import_pcx()  # fail first, with the instructions, if this is the wrong env
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from jaxlab import core
  from jaxlab.predictive_coding import data as pcd
  from jaxlab.predictive_coding import inference as pci
  from jaxlab.predictive_coding import network as pcn

  hidden = tuple(int(h) for h in _HIDDEN.value)
  sizes = (64, *hidden, 10)
  epochs, batch, steps = _EPOCHS.value, _BATCH.value, _T.value
  if epochs < 2:
    raise app.UsageError("--epochs must be at least 2 (the first epoch carries compilation)")
  activation = {"tanh": jax.nn.tanh, "gelu": jax.nn.gelu}[_ACTIVATION.value]
  net = pcn.mlp(sizes, activation=_ACTIVATION.value, output_energy="cross_entropy")
  optimizer = optax.adam(_LR.value)
  ds = pcd.digits(0)
  num_train = ds.train_inputs.shape[0]
  num_batches = num_train // batch

  pc_loss = pci.make_loss(net, "pc", output_precision=1.0, node_optimizer=optax.sgd(_NODE_LR.value),
                          num_inference_steps=steps)
  bp_loss = pci.make_loss(net, "backprop")
  pc_step = core.make_train_step(pc_loss, optimizer)
  bp_step = core.make_train_step(bp_loss, optimizer)

  def scan_epoch(step_fn):
    return jax.jit(lambda state, xs, ys: jax.lax.scan(step_fn, state, (xs, ys)), donate_argnums=0)

  pc_scan, bp_scan = scan_epoch(pc_step), scan_epoch(bp_step)
  pc_jit = jax.jit(pc_step, donate_argnums=0)
  pcx_make, pcx_epoch, pcx_weights, pcx_logits = _pcx_runner(sizes, activation, steps,
                                                             _NODE_LR.value, _LR.value)

  def jaxlab_runner(kind):
    def epoch(state, batches):
      xs, ys, pairs = batches
      if kind == "pc_scan":
        state, _ = pc_scan(state, xs, ys)
      elif kind == "bp_scan":
        state, _ = bp_scan(state, xs, ys)
      else:
        for x, y in pairs:
          state, _ = pc_jit(state, (x, y))
      return jax.block_until_ready(state)
    return epoch

  runners = {  # printed name -> kind
      "jaxlab PC, epoch = jitted lax.scan": "pc_scan",
      "jaxlab PC, jitted step per batch": "pc_step",
      "pcx PC, pxf.jit train_on_batch": "pcx",
      "jaxlab backprop, lax.scan (reference)": "bp_scan",
  }
  times = {name: [] for name in runners}
  first = {name: None for name in runners}
  accuracy = {name: [] for name in runners}
  weight_gap = []

  for seed in range(_SEEDS.value):
    params0 = pcn.init(jax.random.key(seed), net, (sizes[0],))
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(num_train)[:num_batches * batch].reshape(num_batches, batch)
              for _ in range(epochs)]
    epoch_data = []
    for order in orders:  # every runner sees the same batches, already on device
      xs, ys = ds.train_inputs[order], ds.train_targets[order]
      pairs = [(xs[i], ys[i]) for i in range(num_batches)]
      epoch_data.append(jax.block_until_ready((xs, ys, pairs)))
    states = {}
    for name, kind in runners.items():
      if kind == "pcx":
        states[name] = pcx_make(params0, batch, seed)
      else:
        # A copy each: the donated state's buffers are gone after its first epoch.
        states[name] = core.init_train_state(jax.tree.map(jnp.copy, params0), optimizer,
                                             jax.random.key(seed))
    for e in range(epochs):
      for name, kind in runners.items():
        run, batches = ((pcx_epoch, epoch_data[e][2]) if kind == "pcx"
                        else (jaxlab_runner(kind), epoch_data[e]))
        begin = time.perf_counter()
        states[name] = run(states[name], batches)
        elapsed = time.perf_counter() - begin
        if e == 0:
          if seed == 0:
            first[name] = elapsed
        else:
          times[name].append(elapsed)
    final_weights = {}
    for name, kind in runners.items():
      if kind == "pcx":
        final_weights[name] = pcx_weights(states[name])
        logits = pcx_logits(states[name], ds.test_inputs)
      else:
        final_weights[name] = states[name].params
        logits = pcn.forward(net, states[name].params, ds.test_inputs)[-1]
      accuracy[name].append(float(pcd.accuracy(logits, ds.test_targets)))
    gap = max(float(jnp.max(jnp.abs(a[k] - b[k])))
              for a, b in zip(final_weights["jaxlab PC, epoch = jitted lax.scan"],
                              final_weights["pcx PC, pxf.jit train_on_batch"]) for k in ("w", "b"))
    weight_gap.append(gap)

  median = {name: statistics.median(t) for name, t in times.items()}
  cpus = os.cpu_count()
  affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
  print(f"machine: {_cpu_model()}, {cpus} CPUs ({affinity} usable), jax {jax.__version__} on "
        f"{jax.devices()[0].platform} ({jax.device_count()} device), pcx {_version('pcx')}, "
        f"equinox {_version('equinox')}, optax {_version('optax')}, python "
        f"{platform.python_version()}")
  print(f"task: digits {num_train} train / {ds.test_inputs.shape[0]} test; MLP "
        f"{'-'.join(map(str, sizes))} {_ACTIVATION.value}, cross-entropy output energy (precision 1); "
        f"T={steps} node SGD steps at lr {_NODE_LR.value}; weights adam {_LR.value}; batch {batch} "
        f"({num_batches} batches/epoch, remainder dropped); {epochs} epochs x {_SEEDS.value} seeds; "
        "identical initial weights and batch order on both sides")
  print(f"{'runner':<40} {'s/epoch':>9} {'ms/batch':>9} {'1st epoch s':>12} {'compile~ s':>11}"
        f"  test accuracy (mean; per seed)")
  for name in runners:
    accs = accuracy[name]
    print(f"{name:<40} {median[name]:>9.4f} {1e3 * median[name] / num_batches:>9.3f} "
          f"{first[name]:>12.3f} {first[name] - median[name]:>11.3f}  {np.mean(accs):.4f}; "
          + " ".join(f"{a:.4f}" for a in accs))
  pcx_t = median["pcx PC, pxf.jit train_on_batch"]
  print(f"ratio pcx / jaxlab (s/epoch): {pcx_t / median['jaxlab PC, epoch = jitted lax.scan']:.2f}x "
        f"vs jaxlab's lax.scan epoch, {pcx_t / median['jaxlab PC, jitted step per batch']:.2f}x vs "
        "jaxlab's jitted step per batch")
  pc_scan_t = median["jaxlab PC, epoch = jitted lax.scan"]
  print(f"jaxlab PC / backprop (s/epoch, both lax.scan): "
        f"{pc_scan_t / median['jaxlab backprop, lax.scan (reference)']:.2f}x")
  print("max |weight_pcx - weight_jaxlab| after training, per seed: "
        + " ".join(f"{g:.2e}" for g in weight_gap))


if __name__ == "__main__":
  app.run(main)
