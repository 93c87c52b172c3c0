"""Inference and learning rules of predictive coding, as pure functions.

- `inference(network, optimizer)`: relaxation of the hidden nodes on F as an optax-style
  `(init, update)` pair (Whittington & Bogacz 2017 eq. 9 with any optax optimizer on the nodes; pcx's
  loop), and `infer`, which runs it under `lax.scan` and records the energy of every step.
- `pc_gradients`: standard PC's weight update dF/dtheta at the relaxed nodes (W&B eq. 12).
- `fixed_prediction_gradients`: the fixed-prediction assumption (Millidge, Tschantz & Buckley 2022,
  sec. 3): predictions and their Jacobians stay at the feedforward pass, so the errors relax to
  backprop's deltas exactly, for any output precision.
- `zero_divergence_gradients`: Z-IL (Song, Lukasiewicz, Xu & Bogacz 2020, NeurIPS, Thm. 1): feedforward
  initialisation, inference rate 1 with unit hidden precisions, and layer l's weights read at
  inference step t = L - 1 - l (counted from the output layer at t = 0), which equals backprop exactly.
- `incremental_step`: incremental PC (Salvatori et al. 2024, ICLR, Alg. 1): nodes and weights take a
  gradient step on F together at every inference step.

`pc_loss` and `zero_divergence_loss` are surrogate losses whose autodiff gradient in the weights is the
corresponding PC update, so `jaxlab.core.make_train_step` trains with them unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlab.predictive_coding import network as pcn

VARIANTS = ("pc", "fixed_prediction", "zero_divergence", "backprop")


# Relaxations of at most this many steps compile unrolled: XLA then fuses across steps and with the
# weight gradient after them. The PC training step of a 64-1024-1024-10 MLP at T = 5 ran ~7% slower
# than pcx's (whose Python loop unrolls) until unrolled; a 1000-step relaxation gains nothing from
# unrolling (benchmarks/README.md).
MAX_UNROLLED_INFERENCE_STEPS = 8


class InferenceState(NamedTuple):
  nodes: pcn.Nodes
  opt_state: optax.OptState


class Inference(NamedTuple):
  """Node relaxation as an optax-style algorithm: `init(params, inputs)` starts from a feedforward
  pass; `update(state, params, inputs, targets, precisions) -> (state, energy before the step)`."""
  init: Any
  update: Any


def inference(network: pcn.Network, optimizer: optax.GradientTransformation) -> Inference:
  """Gradient descent of the summed energy F in the hidden nodes, with `optimizer` (e.g. optax.sgd)."""

  def init(params, inputs) -> InferenceState:
    nodes = pcn.forward(network, params, inputs)[:-1]
    return InferenceState(nodes, optimizer.init(nodes))

  def update(state, params, inputs, targets, node_precisions):
    value, grads = jax.value_and_grad(
        lambda nodes: pcn.energy(network, params, nodes, inputs, targets, node_precisions))(
            state.nodes)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.nodes)
    return InferenceState(optax.apply_updates(state.nodes, updates), opt_state), value

  return Inference(init, update)


def infer(network: pcn.Network, params: pcn.Params, inputs: jax.Array, targets: jax.Array,
          node_precisions: jax.Array, optimizer: optax.GradientTransformation,
          num_steps: int, *, unroll: int | bool | None = None) -> tuple[pcn.Nodes, jax.Array]:
  """Relaxes the hidden nodes for `num_steps` steps from the feedforward pass under `lax.scan`.

  `unroll` is lax.scan's (steps per compiled loop iteration; the values do not depend on it); by
  default a relaxation of at most MAX_UNROLLED_INFERENCE_STEPS steps is unrolled, a longer one not.

  Returns (nodes, energies) with energies[t] the summed F before step t and energies[-1] after the
  last step (length num_steps + 1).
  """
  algorithm = inference(network, optimizer)

  def step(state, _):
    return algorithm.update(state, params, inputs, targets, node_precisions)

  if unroll is None:
    unroll = num_steps <= MAX_UNROLLED_INFERENCE_STEPS
  state, history = jax.lax.scan(step, algorithm.init(params, inputs), length=num_steps,
                                unroll=unroll)
  final = pcn.energy(network, params, state.nodes, inputs, targets, node_precisions)
  return state.nodes, jnp.concatenate([history, final[None]])


def pc_gradients(network: pcn.Network, params: pcn.Params, inputs: jax.Array, targets: jax.Array,
                 node_precisions: jax.Array, optimizer: optax.GradientTransformation,
                 num_steps: int) -> pcn.Params:
  """Standard PC: relax the nodes, then take the local weight gradient dF/dtheta (batch-averaged)."""
  nodes, _ = infer(network, params, inputs, targets, node_precisions, optimizer, num_steps)
  return pcn.local_gradients(network, params, nodes, inputs, targets, node_precisions)[1]


def fixed_prediction_gradients(network: pcn.Network, params: pcn.Params, inputs: jax.Array,
                               targets: jax.Array, node_precisions: jax.Array, step_size: float,
                               num_steps: int) -> tuple[pcn.Params, list[jax.Array]]:
  """The fixed-prediction assumption: errors relax with the feedforward predictions mu_bar and
  Jacobians held fixed,  eps_l <- eps_l - step (pi_l eps_l - J_l^T g_l),  g_l = -pi_{l+1} eps_{l+1},
  from eps = 0 with the output error fixed at its feedforward value. At the fixed point
  pi_l eps_l = J_l^T(pi_{l+1} eps_{l+1}): backprop's recursion. Returns (weight gradients, the errors
  eps_1 .. eps_L, the last being the fixed output error)."""
  mus = pcn.forward(network, params, inputs)
  below = [inputs, *mus[:-1]]
  pullbacks = [jax.vjp(lambda p, x, i=i: pcn.layer_prediction(network, i, p, x), params[i],
                        below[i])[1]
               for i in range(network.num_layers)]
  if network.output_energy == "squared":
    output_grad = -node_precisions[-1] * (targets - mus[-1])
  else:
    output_grad = node_precisions[-1] * (jax.nn.softmax(mus[-1], axis=-1) - targets)

  def grads_to_mu(eps):  # g_l = dF/dmu_{l+1} for l = 0 .. L-1
    return [-node_precisions[i] * e for i, e in enumerate(eps)] + [output_grad]

  def step(eps, _):
    g = grads_to_mu(eps)
    return [e - step_size * (node_precisions[i] * e + pullbacks[i + 1](g[i + 1])[1])
            for i, e in enumerate(eps)], None

  eps, _ = jax.lax.scan(step, [jnp.zeros_like(m) for m in mus[:-1]], length=num_steps)
  g = grads_to_mu(eps)
  batch = inputs.shape[0]
  weight_grads = [jax.tree.map(lambda d: d / batch, pullbacks[i](g[i])[0])
                  for i in range(network.num_layers)]
  output_error = -output_grad / node_precisions[-1]
  return weight_grads, [*eps, output_error]


def zero_divergence_gradients(network: pcn.Network, params: pcn.Params, inputs: jax.Array,
                              targets: jax.Array, output_precision: float = 1.0,
                              inference_rate: float = 1.0) -> pcn.Params:
  """Z-IL: layer l's local weight gradient read at inference step L - 1 - l of a relaxation from the
  feedforward pass with unit hidden precisions. At inference_rate = 1 the error reaching layer l at
  that step is backprop's delta and x_l has not moved yet, so the result is exactly the output
  precision times backprop's gradient; other rates break it (the tests' negative control)."""
  node_precisions = pcn.precisions(network, output_precision)
  num_layers = network.num_layers
  nodes = pcn.forward(network, params, inputs)[:-1]
  grads = [None] * num_layers
  for t in range(num_layers):  # static and short: one step per layer
    node_grads, weight_grads = pcn.local_gradients(network, params, nodes, inputs, targets,
                                                   node_precisions)
    grads[num_layers - 1 - t] = weight_grads[num_layers - 1 - t]
    nodes = [x - inference_rate * g for x, g in zip(nodes, node_grads)]
  return grads


def weight_update(network: pcn.Network, variant: str, params: pcn.Params, inputs: jax.Array,
                  targets: jax.Array, *, output_precision: float = 1.0,
                  node_optimizer: optax.GradientTransformation | None = None,
                  num_inference_steps: int = 0) -> pcn.Params:
  """The weight gradient of `variant` divided by the output precision, so that every variant is on
  backprop's scale (and learning rates carry over): 'backprop'; 'pc' (relax `num_inference_steps`
  steps with `node_optimizer`); 'fixed_prediction' (`num_inference_steps` error steps of size
  FIXED_PREDICTION_STEP); 'zero_divergence' (L steps at rate 1)."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown PC variant {variant!r}; choose from {VARIANTS}")
  node_precisions = pcn.precisions(network, output_precision)
  if variant == "backprop":
    return jax.grad(lambda p: pcn.feedforward_loss(network, p, inputs, targets))(params)
  if variant == "zero_divergence":
    grads = zero_divergence_gradients(network, params, inputs, targets, output_precision)
  else:
    if num_inference_steps <= 0:
      raise ValueError(f"variant {variant!r} needs num_inference_steps > 0, got "
                       f"{num_inference_steps}")
    if variant == "pc":
      if node_optimizer is None:
        raise ValueError("variant 'pc' needs a node_optimizer (e.g. optax.sgd(0.1))")
      grads = pc_gradients(network, params, inputs, targets, node_precisions, node_optimizer,
                           num_inference_steps)
    else:
      grads = fixed_prediction_gradients(network, params, inputs, targets, node_precisions,
                                         FIXED_PREDICTION_STEP, num_inference_steps)[0]
  return jax.tree.map(lambda g: g / output_precision, grads)


FIXED_PREDICTION_STEP = 0.5  # the error dynamics are linear with unit hidden precision: 0.5 is stable


def make_loss(network: pcn.Network, variant: str, *, output_precision: float = 1.0,
              node_optimizer: optax.GradientTransformation | None = None,
              num_inference_steps: int = 0):
  """A `loss(params, (inputs, targets), key) -> (value, aux)` for `jaxlab.core.make_train_step`.

  The value is backprop's loss at `params` (what one wants to log); the gradient is `variant`'s weight
  update (`weight_update`): value + <stop_gradient(update), params> - stop_gradient(same).
  """
  if variant not in VARIANTS:
    raise ValueError(f"unknown PC variant {variant!r}; choose from {VARIANTS}")

  def loss(params, batch, key):
    del key
    inputs, targets = batch
    value = pcn.feedforward_loss(network, params, inputs, targets)
    if variant == "backprop":
      return value, {}
    update = jax.lax.stop_gradient(weight_update(
        network, variant, params, inputs, targets, output_precision=output_precision,
        node_optimizer=node_optimizer, num_inference_steps=num_inference_steps))
    inner = sum(jnp.vdot(u, p) for u, p in zip(jax.tree.leaves(update), jax.tree.leaves(params)))
    return jax.lax.stop_gradient(value) + inner - jax.lax.stop_gradient(inner), {}

  return loss


def incremental_step(network: pcn.Network, params: pcn.Params, nodes: pcn.Nodes,
                     inputs: jax.Array, targets: jax.Array, node_precisions: jax.Array,
                     node_rate: float) -> tuple[pcn.Nodes, pcn.Params]:
  """One iPC step: (node gradient step at `node_rate`, the weight gradient) from the same state."""
  node_grads, weight_grads = pcn.local_gradients(network, params, nodes, inputs, targets,
                                                 node_precisions)
  return [x - node_rate * g for x, g in zip(nodes, node_grads)], weight_grads


def make_incremental_train_step(network: pcn.Network, weight_optimizer: optax.GradientTransformation,
                                *, output_precision: float, node_rate: float,
                                num_inference_steps: int):
  """A `step(state, (inputs, targets)) -> (state, metrics)` for the engine that runs incremental PC:
  nodes start at the feedforward pass and then nodes and weights both move at every one of the
  `num_inference_steps` steps (weights through `weight_optimizer`, gradients / output precision)."""
  node_precisions = pcn.precisions(network, output_precision)

  def step(state, batch):
    inputs, targets = batch
    loss = pcn.feedforward_loss(network, state.params, inputs, targets)

    def one(carry, _):
      nodes, params, opt_state = carry
      nodes, grads = incremental_step(network, params, nodes, inputs, targets, node_precisions,
                                      node_rate)
      grads = jax.tree.map(lambda g: g / output_precision, grads)
      updates, opt_state = weight_optimizer.update(grads, opt_state, params)
      return (nodes, optax.apply_updates(params, updates), opt_state), None

    nodes = pcn.forward(network, state.params, inputs)[:-1]
    (_, params, opt_state), _ = jax.lax.scan(one, (nodes, state.params, state.opt_state),
                                             length=num_inference_steps)
    new_state = dataclasses.replace(state, step=state.step + 1, params=params,
                                    opt_state=opt_state)
    return new_state, {"loss": loss}

  return step
