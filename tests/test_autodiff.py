"""core.energy_and_grad: its forward-over-reverse second-order VJP equals reverse over reverse."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import core
from jaxlab.core import autodiff

B, D, H = 5, 3, 7


def energy(params, y_BxD, context_BxD, scale):
  """Per-example energies [B]: a tanh MLP of the candidate and a float context, times a scale."""
  h = jnp.tanh(jnp.concatenate([y_BxD, context_BxD], -1) @ params["w"] + params["b"][None])
  return scale * (h @ params["v"]) ** 2 + jnp.sum(y_BxD ** 4, -1)


def reverse_over_reverse(energy_fn, params, y, *context):  # written out, not the library's
  energies, pullback = jax.vjp(lambda y: energy_fn(params, y, *context), y)
  return energies, pullback(jnp.ones_like(energies))[0]


@pytest.fixture(scope="module")
def problem():
  k = jax.random.split(jax.random.key(0), 5)
  params = {"w": jax.random.normal(k[0], (2 * D, H), jnp.float64) / 2,
            "b": jax.random.normal(k[1], (H,), jnp.float64),
            "v": jax.random.normal(k[2], (H,), jnp.float64)}
  y = jax.random.normal(k[3], (B, D), jnp.float64)
  context = jax.random.normal(k[4], (B, D), jnp.float64)
  return params, y, context


def _descent_loss(impl, uses_energies):
  def loss(params, y, context, scale):
    e, g = impl(energy, params, y, context, scale)
    y_next = y - 0.1 * g
    value = jnp.sum(jnp.sin(y_next)) + jnp.sum(y_next ** 2)
    return value + (jnp.sum(jnp.cos(e)) if uses_energies else 0.0)
  return loss


def _close(a, b, tol=1e-12):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    scale = max(float(jnp.max(jnp.abs(y))), 1e-30)
    assert float(jnp.max(jnp.abs(x - y))) / scale < tol


def test_the_library_reference_is_reverse_over_reverse(problem):
  params, y, context = problem
  loss = lambda impl: jax.jit(jax.grad(_descent_loss(impl, True), (0, 1, 2)))
  _close(loss(autodiff.energy_and_grad_reverse)(params, y, context, 2.0),
         loss(reverse_over_reverse)(params, y, context, 2.0), tol=1e-15)


def test_forward_values_are_the_energy_and_its_gradient(problem):
  params, y, context = problem
  e, g = jax.jit(functools.partial(core.energy_and_grad, energy))(params, y, context, 2.0)
  e_ref = energy(params, y, context, 2.0)
  g_ref = jax.grad(lambda y: jnp.sum(energy(params, y, context, 2.0)))(y)
  np.testing.assert_allclose(e, e_ref, rtol=1e-14)
  np.testing.assert_allclose(g, g_ref, rtol=1e-13)
  # examples are independent: example b's gradient is that of E_b alone
  g_first = jax.grad(lambda y0: energy(params, y.at[0].set(y0), context, 2.0)[0])(y[0])
  np.testing.assert_allclose(g[0], g_first, rtol=1e-13)


@pytest.mark.parametrize("uses_energies", [False, True])
@pytest.mark.parametrize("argnums", [(0,), (1,), (2,), (0, 1, 2)])
def test_second_order_vjp_equals_reverse_over_reverse(problem, argnums, uses_energies):
  """Every combination of differentiated inputs (parameters, candidate, float context), with and
  without a cotangent on the energies themselves, agrees to 1e-12 in float64."""
  params, y, context = problem
  ours = jax.jit(jax.grad(_descent_loss(core.energy_and_grad, uses_energies), argnums))
  ref = jax.jit(jax.grad(_descent_loss(reverse_over_reverse, uses_energies), argnums))
  _close(ours(params, y, context, 2.0), ref(params, y, context, 2.0))


def test_unrolled_chain_and_stopped_parameters(problem):
  """Three descent steps differentiated end to end (candidate and parameters), and the same chain
  with the parameters under stop_gradient (only the candidate's path is differentiated)."""
  params, y, context = problem

  def chain(impl, stop):
    def loss(params, y):
      p = jax.lax.stop_gradient(params) if stop else params
      for _ in range(3):
        y = y - 0.05 * impl(energy, p, y, context, 1.5)[1]
      return jnp.sum(jnp.tanh(y)) + jnp.sum(params["v"] ** 2)
    return jax.jit(jax.grad(loss, (0, 1)))

  for stop in (False, True):
    _close(chain(core.energy_and_grad, stop)(params, y),
           chain(reverse_over_reverse, stop)(params, y))


def test_vmaps_over_parameter_sets(problem):
  params, y, context = problem
  stacked = jax.tree.map(lambda x: jnp.stack([x, 0.5 * x, -x]), params)
  grad = jax.grad(_descent_loss(core.energy_and_grad, True))
  batched = jax.jit(jax.vmap(grad, (0, None, None, None)))(stacked, y, context, 2.0)
  for i in range(3):
    one = jax.tree.map(lambda x: x[i], stacked)
    _close(jax.tree.map(lambda x: x[i], batched), grad(one, y, context, 2.0))


def test_integer_context_needs_no_cotangent():
  """Token ids as context: the parameter gradient is reverse over reverse's."""
  params = {"table": jax.random.normal(jax.random.key(1), (4, D), jnp.float64)}
  tokens = jnp.array([0, 3, 1])
  y = jax.random.normal(jax.random.key(2), (3, D), jnp.float64)

  def lookup_energy(params, y, tokens):
    return jnp.sum(jnp.sin(y * params["table"][tokens]) ** 2, -1)

  def loss(impl):
    return lambda p: jnp.sum((y - impl(lookup_energy, p, y, tokens)[1]) ** 3)

  _close(jax.grad(loss(core.energy_and_grad))(params),
         jax.grad(loss(reverse_over_reverse))(params))
