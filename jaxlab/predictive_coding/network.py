"""Layered predictive-coding (PC) networks: the energy, its local gradients, and the feedforward pass.

Whittington & Bogacz 2017 (Neural Comput. 29:1229), sec. 2, with the post-activation convention of pcx
(Pinchetti et al. 2024): value nodes x_0 (the input, clamped), x_1 .. x_{L-1} (hidden, free) and x_L
(the output, clamped to the target while learning). Layer l predicts the node above it,

  mu_{l+1} = f(a_l),  a_l = layer_l(theta_l, x_l)   (f = identity for the last layer),

and the network's energy is the precision-weighted sum of squared prediction errors (W&B eq. 5),

  F = sum_{l=1}^{L-1} pi_l / 2 |x_l - mu_l|^2 + pi_L E_out(x_L, mu_L),

with E_out = |y - mu_L|^2 / 2 (squared) or -y . log softmax(mu_L) (cross-entropy, pcx's `ce_energy`).
Inference descends F in the hidden nodes (W&B eq. 9); learning descends F in the weights (W&B eq. 12).
Both gradients are local: layer l needs only its input x_l and the error of the node it predicts,
`local_gradients` computes them layer by layer as that message passing, and the tests check them
against autodiff of F. At a feedforward pass every hidden error is zero; a small output precision
pi_L keeps the equilibrium close to it, which is the limit where PC's weight updates equal pi_L times
backprop's (W&B sec. 2.3; Millidge, Tschantz & Buckley 2022, Neural Comput. 34:1329).

A `Network` is the static description (layers, activation, output energy); parameters, nodes and
precisions are pytrees/arrays passed in, so everything jits and vmaps.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Params = list  # one {"w": ..., "b": ...} per layer
Nodes = list  # hidden value nodes x_1 .. x_{L-1}, each (batch, ...)

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh, "relu": jax.nn.relu, "gelu": jax.nn.gelu, "sigmoid": jax.nn.sigmoid,
    "linear": lambda a: a,
}
OUTPUT_ENERGIES = ("squared", "cross_entropy")


@dataclasses.dataclass(frozen=True)
class Dense:
  """x -> x.reshape(batch, -1) @ w + b."""
  features: int


@dataclasses.dataclass(frozen=True)
class Conv:
  """A 2-D convolution over NHWC inputs with SAME padding."""
  features: int
  kernel: int = 3
  stride: int = 1


@dataclasses.dataclass(frozen=True)
class Network:
  """The static part of a PC network (hashable: safe to close over or mark static)."""
  layers: tuple[Dense | Conv, ...]
  activation: str = "tanh"
  output_energy: str = "squared"

  def __post_init__(self):
    if not self.layers:
      raise ValueError("a Network needs at least one layer")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")
    if self.output_energy not in OUTPUT_ENERGIES:
      raise ValueError(f"unknown output_energy {self.output_energy!r}; choose from {OUTPUT_ENERGIES}")
    if not isinstance(self.layers[-1], Dense):
      raise ValueError("the last layer must be Dense (it produces the output vector)")

  @property
  def num_layers(self) -> int:
    return len(self.layers)


def mlp(sizes: Sequence[int], activation: str = "tanh", output_energy: str = "squared") -> Network:
  """A fully connected PC network; `sizes` = (input, hidden..., output), the input size unused."""
  if len(sizes) < 2:
    raise ValueError(f"sizes needs an input and an output size, got {tuple(sizes)}")
  return Network(tuple(Dense(n) for n in sizes[1:]), activation, output_energy)


def precisions(network: Network, output_precision: float = 1.0) -> jax.Array:
  """Precisions pi_1 .. pi_L: 1 on every hidden node and `output_precision` on the output."""
  return jnp.ones(network.num_layers).at[-1].set(output_precision)


def init(key: jax.Array, network: Network, input_shape: Sequence[int]) -> Params:
  """LeCun-normal weights (variance 1 / fan-in), zero biases; `input_shape` excludes the batch."""
  params, shape = [], tuple(input_shape)
  for layer, layer_key in zip(network.layers, jax.random.split(key, network.num_layers)):
    if isinstance(layer, Dense):
      fan_in = math.prod(shape)
      w = jax.random.normal(layer_key, (fan_in, layer.features)) / math.sqrt(fan_in)
    else:
      if len(shape) != 3:
        raise ValueError(f"Conv layers take (height, width, channels) inputs, got shape {shape}")
      fan_in = layer.kernel * layer.kernel * shape[-1]
      w = jax.random.normal(layer_key, (layer.kernel, layer.kernel, shape[-1], layer.features))
      w = w / math.sqrt(fan_in)
    p = {"w": w, "b": jnp.zeros(layer.features)}
    shape = jax.eval_shape(lambda x, p=p, layer=layer: apply_layer(layer, p, x),
                           jax.ShapeDtypeStruct((1, *shape), w.dtype)).shape[1:]
    params.append(p)
  return params


def apply_layer(layer: Dense | Conv, params: dict, x: jax.Array) -> jax.Array:
  """The pre-activation a_l of one layer for a batch of inputs x_l."""
  if isinstance(layer, Dense):
    return x.reshape(x.shape[0], -1) @ params["w"] + params["b"][None, :]
  if x.ndim != 4:
    raise ValueError(f"Conv layer expects (batch, height, width, channels) inputs, got {x.shape}")
  a = jax.lax.conv_general_dilated(x, params["w"], (layer.stride, layer.stride), "SAME",
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return a + params["b"][None, None, None, :]


def predict(network: Network, params: Params, index: int, x: jax.Array) -> jax.Array:
  """mu_{index+1} = f(a_index): what layer `index` predicts for the node above its input."""
  return layer_prediction(network, index, params[index], x)


def layer_prediction(network: Network, index: int, layer_params: dict, x: jax.Array) -> jax.Array:
  """`predict` from layer `index`'s own parameters only (what the layer's local rule sees)."""
  a = apply_layer(network.layers[index], layer_params, x)
  return a if index == network.num_layers - 1 else ACTIVATIONS[network.activation](a)


def forward(network: Network, params: Params, inputs: jax.Array) -> list[jax.Array]:
  """The feedforward pass [x_1, ..., x_L]: the nodes at which every hidden error is zero."""
  _check_inputs(network, params, inputs)
  nodes, x = [], inputs
  for index in range(network.num_layers):
    x = predict(network, params, index, x)
    nodes.append(x)
  return nodes


def feedforward_loss(network: Network, params: Params, inputs: jax.Array,
                     targets: jax.Array) -> jax.Array:
  """Backprop's loss: the output energy E_out at the feedforward output, averaged over the batch."""
  return jnp.mean(output_energy(network, forward(network, params, inputs)[-1], targets))


def output_energy(network: Network, prediction: jax.Array, targets: jax.Array) -> jax.Array:
  """E_out per example, before its precision."""
  if prediction.shape != targets.shape:
    raise ValueError(f"targets have shape {targets.shape} but the network outputs "
                     f"{prediction.shape}")
  if network.output_energy == "squared":
    return 0.5 * jnp.sum((targets - prediction) ** 2, axis=-1)
  return -jnp.sum(targets * jax.nn.log_softmax(prediction, axis=-1), axis=-1)


def energies(network: Network, params: Params, nodes: Nodes, inputs: jax.Array,
             targets: jax.Array, node_precisions: jax.Array) -> jax.Array:
  """The energy F of each example (shape (batch,)) with the output clamped to `targets`."""
  _check_nodes(network, nodes)
  below = [inputs, *nodes]
  total = 0.0
  for index, x in enumerate(nodes):
    error = x - predict(network, params, index, below[index])
    total = total + 0.5 * node_precisions[index] * _sum_per_example(error ** 2)
  mu_out = predict(network, params, network.num_layers - 1, below[-1])
  return total + node_precisions[-1] * output_energy(network, mu_out, targets)


def energy(network: Network, params: Params, nodes: Nodes, inputs: jax.Array, targets: jax.Array,
           node_precisions: jax.Array) -> jax.Array:
  """Sum of F over the batch: inference descends this, so each example's nodes move independently
  of the batch size."""
  return jnp.sum(energies(network, params, nodes, inputs, targets, node_precisions))


def errors(network: Network, params: Params, nodes: Nodes, inputs: jax.Array,
           targets: jax.Array) -> list[jax.Array]:
  """Prediction errors eps_l = x_l - mu_l for l = 1 .. L (the last with x_L = targets)."""
  below = [inputs, *nodes]
  return [x - predict(network, params, index, below[index])
          for index, x in enumerate([*nodes, targets])]


def local_gradients(network: Network, params: Params, nodes: Nodes, inputs: jax.Array,
                    targets: jax.Array, node_precisions: jax.Array) -> tuple[Nodes, Params]:
  """(dF/dnodes, dF/dweights) computed layer by layer from local quantities only.

  Layer l receives g_l = dF/dmu_{l+1} from the node it predicts (-pi_{l+1} eps_{l+1}, or
  pi_L (softmax(mu_L) - y) for the cross-entropy output) and its own input x_l, and returns
    dF/dtheta_l = (dmu_{l+1}/dtheta_l)^T g_l   (dense: x_l^T (g_l * f'(a_l)), W&B eq. 12's Hebbian
                                               product of presynaptic activity and postsynaptic error),
    its message to x_l, (dmu_{l+1}/dx_l)^T g_l, which x_l adds to its own pi_l eps_l (W&B eq. 9).
  The weight gradient is averaged over the batch (as backprop's loss is), the node gradient is per
  example.
  """
  _check_nodes(network, nodes)
  below = [inputs, *nodes]
  batch = inputs.shape[0]
  node_grads, weight_grads = [], []
  for index in range(network.num_layers):
    mu, pullback = jax.vjp(lambda p, x, index=index: layer_prediction(network, index, p, x),
                           params[index], below[index])
    if index == network.num_layers - 1:
      if network.output_energy == "squared":
        g = -node_precisions[index] * (targets - mu)
      else:
        g = node_precisions[index] * (jax.nn.softmax(mu, axis=-1) - targets)
    else:
      g = -node_precisions[index] * (nodes[index] - mu)
    dparams, message = pullback(g)
    weight_grads.append(jax.tree.map(lambda d: d / batch, dparams))
    if index > 0:  # x_0 is the clamped input: it receives no update
      own = node_precisions[index - 1] * (nodes[index - 1] - predict(
          network, params, index - 1, below[index - 1]))
      node_grads.append(own + message)
  return node_grads, weight_grads


def _sum_per_example(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def _check_nodes(network: Network, nodes: Nodes) -> None:
  if len(nodes) != network.num_layers - 1:
    raise ValueError(f"expected {network.num_layers - 1} hidden nodes for a {network.num_layers}-layer "
                     f"network, got {len(nodes)}")


def _check_inputs(network: Network, params: Params, inputs: jax.Array) -> None:
  if len(params) != network.num_layers:
    raise ValueError(f"params has {len(params)} layers, the network {network.num_layers}")
  first = network.layers[0]
  if isinstance(first, Dense) and math.prod(inputs.shape[1:]) != params[0]["w"].shape[0]:
    raise ValueError(f"inputs of shape {inputs.shape} have {math.prod(inputs.shape[1:])} features "
                     f"per example; the first layer expects {params[0]['w'].shape[0]}")
  if isinstance(first, Conv) and (inputs.ndim != 4 or inputs.shape[-1] != params[0]["w"].shape[2]):
    raise ValueError(f"inputs of shape {inputs.shape} do not fit the first Conv layer, which expects "
                     f"(batch, height, width, {params[0]['w'].shape[2]})")
