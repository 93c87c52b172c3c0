"""A noise-driven RNN that emits symbols, trained to match an HMM's sequence statistics.

Torre, Viscione, Pompe, Grewe & Mante 2025 ("Mechanistic interpretability of RNNs emulating hidden
Markov models", NeurIPS; arXiv 2510.25674), sec. 2: a bias-free ReLU RNN

  h_t = ReLU(x_t W_in + h_{t-1} W_hh),   x_t ~ N(0, sigma^2 I_d),   logits_t = h_t W_out,

emits y_t = one_hot(argmax(logits_t + g_t)) with Gumbel noise g_t (a categorical sample), made
differentiable with the straight-through hard Gumbel-softmax estimator (Jang, Gu & Poole 2017,
sec. 2-3): the forward value is the one-hot sample, the gradient that of softmax((logits + g) / tau).
No bias anywhere, so h = 0 is a fixed point of the noise-free dynamics.

Params: {"w_in": [d, H], "w_hh": [H, H], "w_out": [H, K]} (row-vector convention, as jaxlab.nn).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Emissions(NamedTuple):
  symbols: jax.Array  # [B, T, K] one-hot (straight-through: carries the soft sample's gradient)
  hidden: jax.Array  # [B, T, H]
  logits: jax.Array  # [B, T, K]


def init(key: jax.Array, hidden_size: int, input_dim: int, num_symbols: int) -> dict:
  """PyTorch's nn.RNN / nn.Linear default: every weight U(-1/sqrt(H), 1/sqrt(H)) (the paper's code)."""
  for name, value in (("hidden_size", hidden_size), ("input_dim", input_dim),
                      ("num_symbols", num_symbols)):
    if value < 1:
      raise ValueError(f"{name} must be >= 1, got {value}")
  bound = 1.0 / math.sqrt(hidden_size)
  k_in, k_hh, k_out = jax.random.split(key, 3)
  uniform = lambda k, shape: jax.random.uniform(k, shape, minval=-bound, maxval=bound)
  return {"w_in": uniform(k_in, (input_dim, hidden_size)),
          "w_hh": uniform(k_hh, (hidden_size, hidden_size)),
          "w_out": uniform(k_out, (hidden_size, num_symbols))}


def step(params: dict, h: jax.Array, x: jax.Array) -> jax.Array:
  """One update h -> ReLU(x W_in + h W_hh) for any leading batch shape."""
  return jax.nn.relu(x @ params["w_in"] + h @ params["w_hh"])


def run(params: dict, inputs: jax.Array, h0: jax.Array | None = None) -> jax.Array:
  """Hidden states [B, T, H] driven by `inputs` [B, T, d] from h0 (default 0), under lax.scan."""
  if inputs.ndim != 3 or inputs.shape[-1] != params["w_in"].shape[0]:
    raise ValueError(f"inputs must be [batch, time, {params['w_in'].shape[0]}], got {inputs.shape}")
  if h0 is None:
    h0 = jnp.zeros((inputs.shape[0], params["w_hh"].shape[0]), inputs.dtype)

  def one(h, x):
    h = step(params, h, x)
    return h, h

  _, hidden = jax.lax.scan(one, h0, jnp.swapaxes(inputs, 0, 1))
  return jnp.swapaxes(hidden, 0, 1)


def straight_through_gumbel(key: jax.Array, logits: jax.Array, temperature: float = 1.0) -> jax.Array:
  """A one-hot categorical sample whose gradient is that of softmax((logits + g) / temperature)."""
  gumbel = jax.random.gumbel(key, logits.shape, logits.dtype)
  soft = jax.nn.softmax((logits + gumbel) / temperature, axis=-1)
  hard = jax.nn.one_hot(jnp.argmax(logits + gumbel, axis=-1), logits.shape[-1], dtype=logits.dtype)
  return hard + soft - jax.lax.stop_gradient(soft)


def emit(params: dict, key: jax.Array, batch_size: int, length: int, *, noise_std: float = 1.0,
         initial_state_std: float = 0.0, burn_in: int = 0, temperature: float = 1.0) -> Emissions:
  """Samples `batch_size` sequences of `length` symbols.

  Each sequence starts from h_0 ~ N(0, initial_state_std^2 I): the paper's default config trains
  with 1 (its `init=True`); its six HMM configs train, and its generation runs, with 0 (h_0 = 0,
  whose logits are 0). The first `burn_in` steps are run and discarded, so a sequence can start
  from the noise-driven state.
  """
  k_noise, k_gumbel, k_h0 = jax.random.split(key, 3)
  inputs = noise_std * jax.random.normal(
      k_noise, (batch_size, burn_in + length, params["w_in"].shape[0]))
  h0 = initial_state_std * jax.random.normal(k_h0, (batch_size, params["w_hh"].shape[0]))
  hidden = run(params, inputs, h0.astype(inputs.dtype))[:, burn_in:]
  logits = hidden @ params["w_out"]
  return Emissions(straight_through_gumbel(k_gumbel, logits, temperature), hidden, logits)
