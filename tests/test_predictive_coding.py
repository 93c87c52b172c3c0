"""Predictive coding: local rules are gradients of F, inference descends F and finds the closed-form
equilibrium of a linear network, and the three ways PC meets backprop (small output precision, the
fixed-prediction assumption, Z-IL), each with a negative control that must fail."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.predictive_coding import inference as pci
from jaxlab.predictive_coding import network as pcn
from theory import predictive_coding as theory

MLP = pcn.mlp((16, 32, 32, 4))
CONV = pcn.Network((pcn.Conv(4, 3), pcn.Conv(6, 3, stride=2), pcn.Dense(5)))


def _normal(key, shape):
  """jax.random.normal(key, shape), drawn flat and reshaped: the same numbers bit for bit (threefry
  counts in row-major order), but XLA:CPU compiles the flat draw several times faster than an N-d
  one (~0.4 s against 1-2 s per shape), and this file's eager draws are compile-bound."""
  return jax.random.normal(key, (math.prod(shape),)).reshape(shape)


def _problem(net, output_energy="squared", seed=0, batch=8):
  net = pcn.Network(net.layers, net.activation, output_energy)
  k_p, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
  input_shape = (6, 6, 2) if isinstance(net.layers[0], pcn.Conv) else (16,)
  params = pcn.init(k_p, net, input_shape)
  x = _normal(k_x, (batch, *input_shape))
  out = net.layers[-1].features
  if output_energy == "squared":
    y = _normal(k_y, (batch, out))
  else:
    y = jax.nn.one_hot(jax.random.randint(k_y, (batch,), 0, out), out)
  return net, params, x, y


def _backprop(net, params, x, y):
  return jax.grad(lambda p: pcn.feedforward_loss(net, p, x, y))(params)


def _flat(tree):
  return jnp.concatenate([leaf.ravel() for leaf in jax.tree.leaves(tree)])


def _cosine_and_ratio(a, b):
  a, b = _flat(a), _flat(b)
  return float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b))), float(
      jnp.linalg.norm(a) / jnp.linalg.norm(b))


def _relative_error(a, b):
  a, b = _flat(a), _flat(b)
  return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _perturbed_nodes(net, params, x, scale=0.3):
  nodes = pcn.forward(net, params, x)[:-1]
  keys = jax.random.split(jax.random.key(7), len(nodes))
  return [n + scale * _normal(k, n.shape) for n, k in zip(nodes, keys)]


@pytest.mark.parametrize("net", [MLP, CONV], ids=["mlp", "conv"])
@pytest.mark.parametrize("output_energy", ["squared", "cross_entropy"])
def test_local_gradients_are_the_gradients_of_the_energy(net, output_energy):
  net, params, x, y = _problem(net, output_energy)
  nodes = _perturbed_nodes(net, params, x)  # away from equilibrium: every error non-zero
  precisions = jnp.array([0.7, 1.3, 0.2])
  node_grads, weight_grads = pcn.local_gradients(net, params, nodes, x, y, precisions)
  auto_nodes = jax.grad(lambda n: pcn.energy(net, params, n, x, y, precisions))(nodes)
  auto_weights = jax.grad(lambda p: jnp.mean(pcn.energies(net, p, nodes, x, y, precisions)))(params)
  assert _relative_error(node_grads, auto_nodes) < 1e-12
  assert _relative_error(weight_grads, auto_weights) < 1e-12


def test_dense_weight_update_is_the_hebbian_product_of_error_and_activity():
  net, params, x, y = _problem(MLP)
  nodes = _perturbed_nodes(net, params, x)
  precisions = jnp.array([1.0, 1.0, 0.5])
  _, weight_grads = pcn.local_gradients(net, params, nodes, x, y, precisions)
  below, above = [x, *nodes], [*nodes, y]
  for l in range(3):  # W&B eq. 12: -pi eps_{l+1} f'(a_l) times presynaptic x_l, batch-averaged
    a = below[l] @ params[l]["w"] + params[l]["b"][None, :]
    derivative = 1 - jnp.tanh(a) ** 2 if l < 2 else jnp.ones_like(a)
    mu = jnp.tanh(a) if l < 2 else a
    post = -precisions[l] * (above[l] - mu) * derivative
    np.testing.assert_allclose(weight_grads[l]["w"], below[l].T @ post / x.shape[0], atol=1e-14)
    np.testing.assert_allclose(weight_grads[l]["b"], post.mean(0), atol=1e-14)


def test_feedforward_pass_zeroes_every_hidden_error():
  net, params, x, y = _problem(MLP)
  nodes = pcn.forward(net, params, x)[:-1]
  errs = pcn.errors(net, params, nodes, x, y)
  assert all(float(jnp.max(jnp.abs(e))) == 0.0 for e in errs[:-1])
  energy = pcn.energy(net, params, nodes, x, y, pcn.precisions(net, 0.3))
  np.testing.assert_allclose(energy, 0.3 * x.shape[0] * pcn.feedforward_loss(net, params, x, y),
                             rtol=1e-12)


def _linear_problem():
  net = pcn.mlp((5, 4, 3, 2), activation="linear")
  params = pcn.init(jax.random.key(3), net, (5,))
  params = [{"w": p["w"], "b": 0.1 * jnp.arange(p["b"].shape[0], dtype=p["w"].dtype)} for p in params]
  x = _normal(jax.random.key(4), (3, 5))
  y = _normal(jax.random.key(5), (3, 2))
  return net, params, x, y


def test_linear_network_relaxes_to_the_closed_form_equilibrium():
  net, params, x, y = _linear_problem()
  precisions = jnp.array([1.0, 2.0, 0.5])
  weights = [np.asarray(p["w"]).T for p in params]
  step = 0.9 * theory.critical_step_size(weights, np.asarray(precisions)) / 2  # well inside
  nodes, energies = pci.infer(net, params, x, y, precisions, optax.sgd(step), num_steps=3000)
  for i in range(x.shape[0]):
    expected = theory.linear_equilibrium(weights, [np.asarray(p["b"]) for p in params],
                                         np.asarray(precisions), np.asarray(x[i]), np.asarray(y[i]))
    for node, star in zip(nodes, expected):
      np.testing.assert_allclose(node[i], star, atol=1e-6)
  grads = jax.grad(lambda n: pcn.energy(net, params, n, x, y, precisions))(nodes)
  assert float(jnp.max(jnp.abs(_flat(grads)))) < 1e-6  # dF/dx = 0 at the equilibrium
  assert float(energies[-1]) < float(energies[0])


def test_inference_energy_falls_below_the_critical_step_and_diverges_above_it():
  net, params, x, y = _linear_problem()
  precisions = jnp.array([1.0, 2.0, 0.5])
  critical = theory.critical_step_size([np.asarray(p["w"]).T for p in params], np.asarray(precisions))
  _, below = pci.infer(net, params, x, y, precisions, optax.sgd(0.97 * critical), num_steps=400)
  assert bool(jnp.all(jnp.diff(below) <= 1e-12 * below[0]))  # non-increasing on every step
  _, above = pci.infer(net, params, x, y, precisions, optax.sgd(1.03 * critical), num_steps=400)
  assert float(above[-1]) > 1e3 * float(above[0])  # the stiffest mode oscillates and grows


@pytest.mark.parametrize("num_steps", [5, 12])
def test_short_relaxations_compile_unrolled_and_unrolling_changes_no_value(num_steps):
  net, params, x, y = _problem(MLP)
  precisions = pcn.precisions(net, 1.0)
  run = lambda unroll: jax.jit(lambda p: pci.infer(net, p, x, y, precisions, optax.sgd(0.1),
                                                   num_steps, unroll=unroll))
  rolled = run(1)(params)
  for unroll in (None, True, 4):
    for a, b in zip(jax.tree.leaves(run(unroll)(params)), jax.tree.leaves(rolled)):
      np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
  # The default unrolls at most 8 steps (MAX_UNROLLED_INFERENCE_STEPS): no loop is left in the
  # compiled 5-step relaxation; the 12-step one keeps its loop.
  hlo = run(None).lower(params).compile().as_text()
  assert (" while(" in hlo) == (num_steps == 12), num_steps


@pytest.mark.parametrize("output_energy", ["squared", "cross_entropy"])
def test_small_output_precision_pc_matches_backprop_in_every_layer(output_energy):
  net, params, x, y = _problem(MLP, output_energy)
  bp = _backprop(net, params, x, y)
  pc = pci.weight_update(net, "pc", params, x, y, output_precision=1e-3,
                         node_optimizer=optax.sgd(0.2), num_inference_steps=500)
  for layer_pc, layer_bp in zip(pc, bp):  # issue 6: cosine > 0.9999, magnitude within 1%
    cosine, ratio = _cosine_and_ratio(layer_pc["w"], layer_bp["w"])
    assert cosine > 0.9999, (output_energy, cosine)
    assert abs(ratio - 1) < 0.01, (output_energy, ratio)


def test_negative_control_unit_output_precision_misaligns_the_last_layer():
  net, params, x, y = _problem(MLP)
  bp = _backprop(net, params, x, y)
  pc = pci.weight_update(net, "pc", params, x, y, output_precision=1.0,
                         node_optimizer=optax.sgd(0.2), num_inference_steps=500)
  cosine, _ = _cosine_and_ratio(pc[-1]["w"], bp[-1]["w"])
  assert cosine < 0.99  # the equilibrium moved far from the feedforward pass


@pytest.mark.parametrize("net", [MLP, CONV], ids=["mlp", "conv"])
@pytest.mark.parametrize("output_energy", ["squared", "cross_entropy"])
def test_zero_divergence_inference_learning_is_backprop(net, output_energy):
  net, params, x, y = _problem(net, output_energy)
  bp = _backprop(net, params, x, y)
  zil = pci.zero_divergence_gradients(net, params, x, y, output_precision=0.25)
  assert _relative_error(jax.tree.map(lambda g: g / 0.25, zil), bp) < 1e-12
  wrong_rate = pci.zero_divergence_gradients(net, params, x, y, 0.25, inference_rate=0.5)
  assert _relative_error(jax.tree.map(lambda g: g / 0.25, wrong_rate), bp) > 1e-2


def test_fixed_prediction_errors_relax_to_backprop_deltas():
  net, params, x, y = _problem(MLP)
  output_precision = 1e-2  # any value: the assumption removes the small-precision requirement
  grads, eps = pci.fixed_prediction_gradients(net, params, x, y,
                                              pcn.precisions(net, output_precision), 0.5, 100)
  nodes = pcn.forward(net, params, x)

  def loss_from(l, node):  # backprop's loss as a function of the value at node l (1-based)
    for index in range(l, net.num_layers):
      node = pcn.predict(net, params, index, node)
    return jnp.sum(pcn.output_energy(net, node, y))

  for l in (1, 2):
    delta = -output_precision * jax.grad(loss_from, argnums=1)(l, nodes[l - 1])
    np.testing.assert_allclose(eps[l - 1], delta, atol=1e-12)
  np.testing.assert_allclose(eps[-1], y - nodes[-1], atol=1e-14)
  bp = _backprop(net, params, x, y)
  assert _relative_error(jax.tree.map(lambda g: g / output_precision, grads), bp) < 1e-12
  few_steps = pci.fixed_prediction_gradients(net, params, x, y,
                                             pcn.precisions(net, output_precision), 0.5, 2)[0]
  assert _relative_error(jax.tree.map(lambda g: g / output_precision, few_steps), bp) > 1e-2


# Two programs that XLA compiles to the same float64 operations: 6e-17 apart when optimized, 4e-14
# without LLVM's passes (different contractions over 30 inference steps), so the 1e-14 bound holds
# only for the compilation a user's run gets.
@pytest.mark.optimized_compile
def test_make_loss_logs_backprop_loss_and_differentiates_to_the_variant_update():
  net, params, x, y = _problem(MLP, "cross_entropy")
  kwargs = dict(output_precision=1e-2, node_optimizer=optax.sgd(0.1), num_inference_steps=30)
  loss = pci.make_loss(net, "pc", **kwargs)
  (value, _), grads = jax.value_and_grad(loss, has_aux=True)(params, (x, y), None)
  np.testing.assert_allclose(value, pcn.feedforward_loss(net, params, x, y), rtol=1e-14)
  expected = pci.weight_update(net, "pc", params, x, y, **kwargs)
  assert _relative_error(grads, expected) < 1e-14
  with pytest.raises(ValueError, match="unknown PC variant 'pcn'"):
    pci.make_loss(net, "pcn")


def test_weight_update_vmaps_over_output_precision():
  net, params, x, y = _problem(MLP)
  gammas = jnp.array([1.0, 0.1, 0.01])

  @jax.jit  # one compile for every gamma below, not an eager re-trace of the scan per call
  def update(gamma):
    return pci.weight_update(net, "pc", params, x, y, output_precision=gamma,
                             node_optimizer=optax.sgd(0.1), num_inference_steps=20)

  batched = jax.vmap(update)(gammas)
  for i, gamma in enumerate(gammas):
    assert _relative_error(jax.tree.map(lambda g: g[i], batched), update(gamma)) < 1e-12


def test_incremental_pc_descends_the_joint_energy():
  net, params, x, y = _problem(MLP)
  precisions = pcn.precisions(net, 1.0)
  nodes = pcn.forward(net, params, x)[:-1]
  values = []
  for _ in range(60):  # nodes by the summed energy, weights by the batch mean: both descend F
    values.append(float(pcn.energy(net, params, nodes, x, y, precisions)))
    nodes, grads = pci.incremental_step(net, params, nodes, x, y, precisions, node_rate=0.1)
    params = jax.tree.map(lambda p, g: p - 0.05 * g, params, grads)
  assert np.all(np.diff(values) <= 0.0)
  assert values[-1] < 0.8 * values[0]


@pytest.mark.parametrize("call, message", [
    (lambda: pcn.Network((pcn.Dense(3),), activation="softplus"), "unknown activation 'softplus'"),
    (lambda: pcn.Network((pcn.Conv(3),)), "the last layer must be Dense"),
    (lambda: pcn.mlp((4,)), "needs an input and an output size"),
    (lambda: pcn.forward(MLP, pcn.init(jax.random.key(0), MLP, (16,)), jnp.ones((2, 15))),
     "have 15 features per example; the first layer expects 16"),
    (lambda: pcn.energy(MLP, pcn.init(jax.random.key(0), MLP, (16,)), [jnp.ones((2, 32))],
                        jnp.ones((2, 16)), jnp.ones((2, 4)), jnp.ones(3)),
     "expected 2 hidden nodes for a 3-layer network, got 1"),
    (lambda: pcn.feedforward_loss(MLP, pcn.init(jax.random.key(0), MLP, (16,)), jnp.ones((2, 16)),
                                  jnp.ones((2, 5))), r"targets have shape \(2, 5\)"),
    (lambda: pcn.init(jax.random.key(0), CONV, (36,)), "Conv layers take"),
    (lambda: pci.weight_update(MLP, "pc", None, None, None), "needs num_inference_steps > 0"),
])
def test_bad_input_is_named(call, message):
  with pytest.raises(ValueError, match=message):
    call()


def test_pc_trains_as_well_as_backprop_on_the_synthetic_teacher_task():
  from jaxlab import core
  from jaxlab.predictive_coding import data as pc_data
  dataset = pc_data.teacher_task(0)  # 4 classes: chance is 25%
  net = pcn.mlp((20, 32, 4), "tanh", "cross_entropy")

  def batch_fn(data, key):
    index = jax.random.randint(key, (64,), 0, data.train_inputs.shape[0])
    return data.train_inputs[index], data.train_targets[index]

  def eval_fn(params, data):
    return {"accuracy": pc_data.accuracy(pcn.forward(net, params, data.test_inputs)[-1],
                                         data.test_targets)}

  final = {}
  for rule in ("backprop", "pc"):
    loss = pci.make_loss(net, rule, node_optimizer=optax.sgd(0.1), num_inference_steps=5)
    _, history = core.train_population(
        lambda k: pcn.init(k, net, (20,)), loss, optax.adam(3e-3),
        jax.random.split(jax.random.key(0), 4), data=dataset, num_steps=600, log_every=300,
        batch_fn=batch_fn, eval_fn=eval_fn)
    final[rule] = float(history["accuracy"][:, -1].mean())
  assert final["backprop"] > 0.7  # measured 0.774 (4 seeds)
  assert abs(final["pc"] - final["backprop"]) < 0.02  # measured 0.771 for PC (T = 5)
