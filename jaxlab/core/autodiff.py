r"""The gradient of an energy with respect to its input, with a second-order VJP taken
forward-over-reverse.

Models that predict by descending an energy (energy-based transformers: Gladstone et al. 2025,
arXiv 2507.02092, eqs. 1-2; the denoising EBT) train through the descent step
$y' = y - \alpha\, \nabla_y S(\theta, y)$, $S = \sum E$, so the training gradient needs the
vector-Jacobian product of $g(\theta, y) = \nabla_y S$. Reverse mode over reverse mode
transposes the whole backward pass. Because the Hessian of the scalar S is symmetric,

$$ v^\top \partial_{(\theta, y, c)}\, g
   = \partial_\epsilon \nabla_{(\theta, y, c)} S(\theta, y + \epsilon v, c) \big|_{\epsilon=0}, $$

the same product is a forward-mode derivative of the full gradient along v (Pearlmutter 1994,
"Fast exact multiplication by the Hessian", eq. 6; the forward-over-reverse Hessian-vector product
of the JAX autodiff cookbook). `energy_and_grad` computes it that way: the forward pass
linearises the gradient at (theta, y) (`jax.linearize`, whose residuals are kept), the backward pass
evaluates that linear map at v. Exact in exact arithmetic, the same FLOPs as reverse over reverse,
and on XLA:CPU the EBT's S1 training step runs 0.75x the time at 2 layers and 0.26x at 8
(benchmarks/README.md).

Gradients are taken only for the inputs that are differentiated (`symbolic_zeros`): parameters
under `stop_gradient` or integer context cost nothing. Forward-mode differentiation of the result
(`jax.jvp` through a descent step) is not supported (`jax.custom_vjp`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

PyTree = Any
EnergyFn = Callable[..., jax.Array]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def energy_and_grad(energy_fn: EnergyFn, params: PyTree, y: jax.Array,
                    *context) -> tuple[jax.Array, jax.Array]:
  """(E, dS/dy) for E = energy_fn(params, y, *context) of any shape and S = sum(E): with
  independent examples, every example's own gradient. `energy_fn` must be hashable and close over
  no traced values (pass those in `context`); its second-order VJP is forward-over-reverse."""
  return energy_and_grad_reverse(energy_fn, params, y, *context)


def energy_and_grad_reverse(energy_fn: EnergyFn, params: PyTree, y: jax.Array,
                            *context) -> tuple[jax.Array, jax.Array]:
  """The same values without the custom VJP, so that autodiff takes the second order reverse over
  reverse: the reference in tests and benchmarks."""
  energies, pullback = jax.vjp(lambda y: energy_fn(params, y, *context), y)
  (grad_y,) = pullback(jnp.ones_like(energies))
  return energies, grad_y


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _Differentiated:
  """Which inputs the caller differentiates (static): the parameters, each context argument."""
  params: bool
  context: tuple[bool, ...]

  def inputs(self, params, y, context) -> tuple:
    """The differentiated inputs, flat: [params], y, then each differentiated context argument."""
    return (((params,) if self.params else ()) + (y,)
            + tuple(c for c, d in zip(context, self.context) if d))

  def energy_of(self, energy_fn, params, context):
    """The energy as a function of `inputs(...)`, the other inputs held at their values."""
    def energy(*inputs):
      it = iter(inputs)
      p = next(it) if self.params else params
      y = next(it)
      return energy_fn(p, y, *[next(it) if d else c for c, d in zip(context, self.context)])
    return energy


def _any_perturbed(tree) -> bool:
  return any(leaf.perturbed for leaf in jax.tree.leaves(tree))


def _fwd(energy_fn, params, y, *context):
  which = _Differentiated(_any_perturbed(params), tuple(_any_perturbed(c) for c in context))
  params, y, context = jax.tree.map(lambda leaf: leaf.value, (params, y, context))
  inputs = which.inputs(params, y, context)
  energy = which.energy_of(energy_fn, params, context)
  y_at = 1 if which.params else 0

  def sum_and_energies(*inputs):
    energies = energy(*inputs)
    return jnp.sum(energies), energies

  def gradients(y):  # every differentiated input's gradient, as a function of y
    args = inputs[:y_at] + (y,) + inputs[y_at + 1:]
    return jax.grad(sum_and_energies, argnums=tuple(range(len(args))), has_aux=True)(*args)

  (grads, energies), linearized = jax.linearize(gradients, y)
  return (energies, grads[y_at]), (linearized, params, y, context, which)


def _bwd(energy_fn, residuals, cotangents):
  linearized, params, y, context, which = residuals
  ct_energies, ct_grad_y = cotangents
  inputs = which.inputs(params, y, context)
  if isinstance(ct_grad_y, SymbolicZero):
    grads = jax.tree.map(jnp.zeros_like, inputs)
  else:
    grads, _ = linearized(ct_grad_y)  # (H v) restricted to each differentiated input
  if not isinstance(ct_energies, SymbolicZero):  # E itself is differentiated: one more pullback
    _, pullback = jax.vjp(which.energy_of(energy_fn, params, context), *inputs)
    grads = jax.tree.map(jnp.add, tuple(grads), tuple(pullback(ct_energies)))
  grads = list(grads)
  ct_params = grads.pop(0) if which.params else None
  ct_y = grads.pop(0)
  return (ct_params, ct_y) + tuple(grads.pop(0) if d else None for d in which.context)


energy_and_grad.defvjp(_fwd, _bwd, symbolic_zeros=True)
