"""Shared lazy/rich tools: NTK against an independent full-Jacobian computation, the closed-form
linearized training against training the linearized model directly, and each laziness metric on a
case whose answer is known by hand."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from jaxlab import core
from jaxlab import lazy_rich as lr
from jaxlab.nn import mlp_apply, mlp_init


@pytest.fixture(scope="module")
def net():
  params = mlp_init(jax.random.key(0), (3, 16, 2))
  x = jax.random.normal(jax.random.key(1), (10, 3))
  return params, x


def _full_jacobian(params, x):
  flat, unravel = ravel_pytree(params)
  return jax.jacfwd(lambda v: mlp_apply(unravel(v), x).reshape(-1))(flat)  # [N*O, P]


def test_ntk_equals_the_full_jacobian_product_and_chunking_changes_nothing(net):
  params, x = net
  j = _full_jacobian(params, x).reshape(10, 2, -1)
  full = jnp.einsum("iop,jqp->ijoq", j, j)
  np.testing.assert_allclose(lr.empirical_ntk(mlp_apply, params, x, trace_outputs=False), full,
                             rtol=1e-12, atol=1e-13)
  traced = lr.empirical_ntk(mlp_apply, params, x)
  np.testing.assert_allclose(traced, jnp.einsum("ijoo->ij", full), rtol=1e-12, atol=1e-13)
  np.testing.assert_allclose(lr.empirical_ntk(mlp_apply, params, x, x[:4], chunk_size=3),
                             traced[:, :4], rtol=1e-12, atol=1e-13)


def test_ntk_of_a_linear_model_is_the_input_gram_and_weights_scale_layers():
  w = jnp.array([[0.5, -1.0, 2.0]])
  apply = lambda p, x: x @ p["w"].T
  x = jax.random.normal(jax.random.key(0), (4, 3))
  np.testing.assert_allclose(lr.empirical_ntk(apply, {"w": w}, x), x @ x.T, rtol=1e-13)
  np.testing.assert_allclose(lr.empirical_ntk(apply, {"w": w}, x, param_weights={"w": 3.0}),
                             3.0 * x @ x.T, rtol=1e-13)


def test_linearized_model_is_exact_to_first_order(net):
  params, x = net
  f_lin = lr.linearize(mlp_apply, params)
  np.testing.assert_allclose(f_lin(params, x), mlp_apply(params, x), rtol=1e-14)
  direction = jax.tree.map(lambda p: jax.random.normal(jax.random.key(2), p.shape), params)
  errors = []
  for eps in (1e-2, 5e-3):
    moved = jax.tree.map(lambda p, d: p + eps * d, params, direction)
    errors.append(float(jnp.linalg.norm(f_lin(moved, x) - mlp_apply(moved, x))))
  assert 3.6 < errors[0] / errors[1] < 4.4  # the remainder is second order


def _scalar_net():
  params = mlp_init(jax.random.key(3), (3, 32, 1))
  x_train = jax.random.normal(jax.random.key(4), (8, 3))
  x_test = jax.random.normal(jax.random.key(5), (5, 3))
  y = jnp.sin(x_train[:, :1] * 2.0)
  return params, x_train, x_test, y


def test_closed_form_matches_gradient_descent_on_the_linearized_model():
  params, x_train, x_test, y = _scalar_net()
  f_lin = lr.linearize(mlp_apply, params)
  loss = lambda p, batch, key: (0.5 * jnp.mean((f_lin(p, batch[0]) - batch[1]) ** 2), {})
  eta, steps = 0.5, 300
  optimizer = optax.sgd(eta)
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  final, _ = core.scan_train(core.make_train_step(loss, optimizer), state, (x_train, y),
                             num_steps=steps, log_every=steps)
  k = lr.empirical_ntk(mlp_apply, params, x_train)
  k_test = lr.empirical_ntk(mlp_apply, params, x_test, x_train)
  f_train, f_test = lr.ntk_predict(k, k_test, y, mlp_apply(params, x_train),
                                   mlp_apply(params, x_test), learning_rate=eta,
                                   loss_scale=1 / 8, steps=steps)
  np.testing.assert_allclose(f_train, f_lin(final.params, x_train), rtol=1e-9, atol=1e-11)
  np.testing.assert_allclose(f_test, f_lin(final.params, x_test), rtol=1e-9, atol=1e-11)
  # The flow with t = eta * steps is close but not equal to GD; infinity interpolates the data.
  flow_train, _ = lr.ntk_predict(k, k_test, y, mlp_apply(params, x_train), mlp_apply(params, x_test),
                                 learning_rate=eta, loss_scale=1 / 8, steps=steps, mode="flow")
  assert 0 < float(jnp.max(jnp.abs(flow_train - f_train))) < 0.05
  inf_train, _ = lr.ntk_predict(k, k_test, y, mlp_apply(params, x_train), mlp_apply(params, x_test),
                                mode="infinity")
  np.testing.assert_allclose(inf_train, y, atol=1e-8)
  with pytest.raises(ValueError, match="needs `steps`"):
    lr.ntk_predict(k, k_test, y, y, y[:5], mode="gd")


def test_centered_model_starts_at_zero_and_scales_with_alpha(net):
  params, x = net
  moved = jax.tree.map(lambda p: p * 1.01, params)
  f1 = lr.centered(mlp_apply, params, 1.0)
  f8 = lr.centered(mlp_apply, params, 8.0)
  np.testing.assert_array_equal(f8(params, x), 0.0)
  np.testing.assert_allclose(f8(moved, x), 8.0 * f1(moved, x), rtol=1e-13)
  assert lr.lazy_learning_rate(0.1, 10.0) == pytest.approx(1e-3)


def test_weight_change_and_norm_by_hand():
  p0 = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([[1.0]])}
  p1 = {"a": jnp.array([3.0, 4.0]) * 2.0, "b": jnp.array([[1.0]])}
  assert float(lr.parameter_norm(p0)) == pytest.approx(np.sqrt(26.0))
  assert float(lr.relative_weight_change(p0, p1)) == pytest.approx(5.0 / np.sqrt(26.0))
  per_layer = lr.relative_weight_change_per_layer(p0, p1)
  assert float(per_layer["a"]) == pytest.approx(1.0) and float(per_layer["b"]) == 0.0


def test_kernel_distance_alignment_and_change_by_hand():
  k = jnp.array([[2.0, 1.0], [1.0, 2.0]])
  assert float(lr.kernel_distance(k, 5.0 * k)) == pytest.approx(0.0, abs=1e-15)
  assert float(lr.kernel_distance(jnp.diag(jnp.array([1.0, 0.0])),
                                  jnp.diag(jnp.array([0.0, 1.0])))) == pytest.approx(1.0)
  # <I, 11^T> / (|I| |11^T|) = 2 / (sqrt(2) * 2)
  assert float(lr.kernel_distance(jnp.eye(2), jnp.ones((2, 2)))) == pytest.approx(1 - 1 / np.sqrt(2))
  assert float(lr.relative_kernel_change(k, 1.5 * k)) == pytest.approx(0.5)
  y = jnp.array([1.0, -2.0, 0.5])
  assert float(lr.kernel_target_alignment(jnp.outer(y, y) * 3.0, y)) == pytest.approx(1.0)
  assert float(lr.kernel_target_alignment(jnp.eye(3), y)) == pytest.approx(
      float(y @ y) / (np.sqrt(3.0) * float(y @ y)))
  # Centering removes a constant offset from the kernel that the plain alignment rewards.
  y0 = y - jnp.mean(y)
  offset = jnp.outer(y0, y0) + 10.0
  assert float(lr.kernel_target_alignment(offset, y0, centered=True)) == pytest.approx(1.0)
  assert float(lr.kernel_target_alignment(offset, y0)) < 0.2


def test_linear_cka_by_hand():
  x = jax.random.normal(jax.random.key(0), (50, 4))
  q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(1), (4, 4)))
  assert float(lr.linear_cka(x, 3.0 * x @ q + 7.0)) == pytest.approx(1.0)  # rotation, scale, shift
  # One shared direction out of two equally strong ones in y: CKA = 1/sqrt(2) exactly when the
  # columns are orthogonal with equal norms.
  e = jnp.linalg.qr(jax.random.normal(jax.random.key(2), (50, 2)))[0]
  e = e - jnp.mean(e, axis=0, keepdims=True)
  e = jnp.linalg.qr(e)[0]
  assert float(lr.linear_cka(e[:, :1], e)) == pytest.approx(1 / np.sqrt(2), rel=1e-6)


def test_linearization_gap_is_zero_for_linear_models_and_known_for_a_square():
  x = jnp.array([[1.0], [2.0]])
  linear = lambda p, x: x * p
  assert float(lr.linearization_gap(linear, 1.0, 3.0, x)) == pytest.approx(0.0)
  square = lambda p, x: x * p ** 2  # from p0 = 1 to p = 2: f - f0 = 3x, f - f_lin = (p - 1)^2 x = x
  assert float(lr.linearization_gap(square, 1.0, 2.0, x)) == pytest.approx(1.0 / 3.0)


def test_closed_form_holds_for_large_stable_steps_and_refuses_divergent_ones():
  x = jax.random.normal(jax.random.key(7), (5, 3))
  y = jax.random.normal(jax.random.key(8), (5,))
  k = x @ x.T  # a linear model's NTK; rank 3 < 5 also exercises the zero eigenvalues
  eta = 1.5 / float(jnp.max(jnp.linalg.eigvalsh(k)))  # top mode oscillates: 1 - eta*lam = -0.5
  f = jnp.zeros(5)
  for _ in range(7):
    f = f - eta * k @ (f - y)  # gradient descent on the linear model, in function space
  f_train, _ = lr.ntk_predict(k, k[:2], y, jnp.zeros(5), jnp.zeros(2), learning_rate=eta, steps=7)
  np.testing.assert_allclose(f_train, f, rtol=1e-10, atol=1e-12)
  with pytest.raises(ValueError, match="diverges"):
    lr.ntk_predict(k, k[:2], y, jnp.zeros(5), jnp.zeros(2), learning_rate=2.1 * eta / 1.5, steps=3)
