r"""Prediction as energy minimisation: the EBT's inner optimisation, where gradients flow, and the
S1 / S2 training losses.

Gladstone et al. 2025 (arXiv 2507.02092, sec. 3.2 eqs. 1-2, sec. 3.3 "System 2 thinking"; app. C
for the recipes) as the authors' `model/nlp/ebt.py` computes it (read, not copied):

  y_0 ~ N(0, I)                               candidate logits, [B, S, V]
  repeat K times:
    p_k = softmax(y_k + sigma_LD eta)          optional Langevin noise
    y_{k+1} = p_k - alpha * dE(x, p_k)/dp_k    the gradient is taken w.r.t. the probabilities

and y_{k+1} serves as the logits of step k + 1 (cross-entropy against the next token). Positions
are independent (each p_i only sees its own prediction), so one gradient of sum(E) gives every
position its own gradient.

Where parameter gradients flow (`ThinkConfig.gradient`):
- "detach" (S1): the state is stop-gradient'ed at the start of every step; each step is
  differentiated to second order (through dE/dp, forward over reverse: `core.energy_and_grad`);
  the loss averages all steps.
- "truncate" (S2): steps 1..K-1 run under stop-gradient (state and parameters), only the last
  step is differentiable; the loss is on the last step. K may be drawn per batch in
  [min_steps, num_steps] (traced: one compilation), alpha per (batch, position) log-uniformly in
  [alpha / scale, alpha * scale] (the code draws uniformly in [alpha/2, 2 alpha]; see
  `step_sizes`).
- "full": the whole unrolled chain is differentiated (a reference for the tests).

S2 also trains with the causal replay buffer (`replay`): half a batch of stored records restart
from their stored final logits; the loss then carries the buffer (`make_loss`, `init_extra`).
Evaluation (`ThinkConfig.for_inference`) keeps alpha fixed, K fixed and the Langevin noise chosen.
With a model of L landscapes (`EBTConfig.num_landscapes`, the authors' `time_embed`), step k
descends landscape min(k, L - 1): thinking past the trained steps repeats the last landscape (the
code's `infer_steps_final_landscape`), and the candidate after K steps is scored on landscape
min(K, L - 1), the one a further step would descend.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxlab import core
from jaxlab.ebt import model as model_lib
from jaxlab.ebt import replay as replay_lib

MIN_STEP_SIZE = 1e-4  # the code clamps a learnable alpha to >= 1e-4


@dataclasses.dataclass(frozen=True)
class ThinkConfig:
  num_steps: int = 2  # K (the maximum when min_steps is set)
  min_steps: int | None = None  # S2: K drawn per batch uniformly in [min_steps, num_steps]
  step_size: float = 5.0  # alpha; the initial value when learnable
  learnable_step_size: bool = False  # S1: alpha is a parameter
  step_size_scale: float = 1.0  # S2: alpha per (batch, position) uniform in [alpha/s, alpha*s]
  langevin_std: float = 0.0  # sigma_LD
  gradient: str = "truncate"  # "detach" | "truncate" | "full"
  loss_on: str = "last"  # "last" | "all"
  replay_capacity: int = 0  # S2: records in the causal replay buffer (0: no buffer)
  replay_fraction: float = 0.5  # replayed records appended per step, as a fraction of the batch

  def __post_init__(self):
    def need(ok, field, msg):
      if not ok:
        raise ValueError(f"ThinkConfig.{field}={getattr(self, field)!r}: {msg}")
    need(isinstance(self.num_steps, int) and self.num_steps >= 1, "num_steps", "must be >= 1")
    need(self.min_steps is None or 1 <= self.min_steps <= self.num_steps, "min_steps",
         f"must be None or in [1, num_steps={self.num_steps}]")
    need(self.step_size > 0, "step_size", "must be > 0")
    need(self.step_size_scale >= 1, "step_size_scale", "must be >= 1")
    need(self.langevin_std >= 0, "langevin_std", "must be >= 0")
    need(self.gradient in ("detach", "truncate", "full"), "gradient",
         "must be 'detach', 'truncate' or 'full'")
    need(self.loss_on in ("last", "all"), "loss_on", "must be 'last' or 'all'")
    need(not (self.gradient == "truncate" and self.loss_on == "all"), "loss_on",
         "'all' needs every step differentiable; truncation keeps only the last")
    need(not (self.min_steps is not None and self.gradient != "truncate"), "min_steps",
         "a random number of steps is supported with gradient='truncate' (S2)")
    need(isinstance(self.replay_capacity, int) and self.replay_capacity >= 0, "replay_capacity",
         "must be an integer >= 0")
    need(0 < self.replay_fraction <= 1, "replay_fraction", "must be in (0, 1]")

  def for_inference(self, langevin_std: float = 0.0) -> "ThinkConfig":
    """The same descent at evaluation: fixed alpha, no random K, the given Langevin noise."""
    return dataclasses.replace(self, min_steps=None, step_size_scale=1.0,
                               langevin_std=langevin_std, replay_capacity=0)


S1 = ThinkConfig(num_steps=2, step_size=50.0, learnable_step_size=True, gradient="detach",
                 loss_on="all")
S2 = ThinkConfig(num_steps=3, min_steps=2, step_size=5.0, step_size_scale=2.0, langevin_std=3.0,
                 gradient="truncate", loss_on="last", replay_capacity=192, replay_fraction=0.5)


def init(key: jax.Array, cfg: model_lib.EBTConfig, think: ThinkConfig) -> model_lib.Params:
  """EBT parameters, plus `step_size` when alpha is learnable."""
  params = model_lib.init(key, cfg)
  if think.learnable_step_size:
    params["step_size"] = jnp.asarray(think.step_size)
  return params


def step_sizes(key: jax.Array, params, think: ThinkConfig, shape) -> jax.Array:
  """alpha of every (batch, position), [B, S, 1]: the parameter or the constant, times a uniform
  factor in [1/scale, scale] when randomised."""
  alpha = (jnp.maximum(params["step_size"], MIN_STEP_SIZE) if think.learnable_step_size
           else jnp.asarray(think.step_size))
  if think.step_size_scale > 1.0:
    s = think.step_size_scale
    alpha = alpha * jax.random.uniform(key, shape + (1,), minval=1.0 / s, maxval=s)
  else:
    alpha = jnp.broadcast_to(alpha, shape + (1,))
  return alpha


class Trace(NamedTuple):
  logits: jax.Array  # [K, B, S, V]: the state after each step
  energies: jax.Array  # [K, B, S]: E at the probabilities each step descended from


def descent_step(params, tokens, y, alpha, noise_key, cfg: model_lib.EBTConfig,
                 think: ThinkConfig, step: int | jax.Array = 0):
  """One step: (new logits [B, S, V], energies [B, S] of the probabilities it descended from).
  `step` (0-based, may be traced) picks the landscape, min(step, L - 1), when the model has L > 0."""
  if think.langevin_std > 0:
    y = y + think.langevin_std * jax.random.normal(noise_key, y.shape, y.dtype)
  probs = jax.nn.softmax(y, axis=-1)
  energies, grad_p = core.energy_and_grad(functools.partial(_energy, cfg=cfg), params, probs,
                                          tokens, step)
  return probs - alpha * grad_p, energies


def _energy(params, probs, tokens, landscape, cfg: model_lib.EBTConfig):
  return model_lib.energy(params, tokens, probs, cfg, landscape=landscape)


def initial_candidates(key: jax.Array, tokens: jax.Array, cfg: model_lib.EBTConfig) -> jax.Array:
  return jax.random.normal(key, tokens.shape + (cfg.vocab_size,))


@functools.partial(jax.jit, static_argnames=("cfg", "think", "num_steps"))
def think_trace(params, tokens, key, cfg: model_lib.EBTConfig, think: ThinkConfig,
                num_steps: int | None = None, y0: jax.Array | None = None) -> Trace:
  """Inference: `num_steps` (default K) descent steps from noise (or y0), every step detached,
  returning every step's logits and energies. Thinking longer = more steps."""
  k_init, k_alpha, k_noise = jax.random.split(key, 3)
  y = initial_candidates(k_init, tokens, cfg) if y0 is None else y0
  alpha = step_sizes(k_alpha, params, think, tokens.shape)
  params = jax.lax.stop_gradient(params)

  def body(y, inputs):
    k, step = inputs
    y_next, e = descent_step(params, tokens, jax.lax.stop_gradient(y), alpha, k, cfg, think, step)
    return y_next, (y_next, e)

  num_steps = num_steps or think.num_steps
  _, (logits, energies) = jax.lax.scan(
      body, y, (jax.random.split(k_noise, num_steps), jnp.arange(num_steps)))
  return Trace(logits, energies)


def cross_entropy(logits_BxSxV: jax.Array, targets_BxS: jax.Array) -> jax.Array:
  """[B, S] token cross-entropy (nats)."""
  logp = jax.nn.log_softmax(logits_BxSxV, axis=-1)
  return -jnp.take_along_axis(logp, targets_BxS[..., None], axis=-1)[..., 0]


def train_logits(params, tokens, key, cfg: model_lib.EBTConfig, think: ThinkConfig,
                 y0: jax.Array | None = None) -> tuple[list[jax.Array], jax.Array]:
  """The logits the loss sees (one per step for loss_on='all', else the last) and the number of
  steps taken, with gradients flowing as `think.gradient` says."""
  k_init, k_alpha, k_noise, k_steps = jax.random.split(key, 4)
  y = initial_candidates(k_init, tokens, cfg) if y0 is None else y0
  alpha = step_sizes(k_alpha, params, think, tokens.shape)
  noise = jax.random.split(k_noise, think.num_steps)
  if think.gradient == "truncate":
    if think.min_steps is None:
      num = jnp.asarray(think.num_steps)
    else:
      num = jax.random.randint(k_steps, (), think.min_steps, think.num_steps + 1)
    frozen = jax.lax.stop_gradient(params)
    fixed_alpha = jax.lax.stop_gradient(alpha)

    def body(k, y):  # steps 1..K-1: constants for the parameter gradient
      return descent_step(frozen, tokens, y, fixed_alpha, noise[k], cfg, think, k)[0]

    y = jax.lax.fori_loop(0, num - 1, body, jax.lax.stop_gradient(y))
    last = descent_step(params, tokens, jax.lax.stop_gradient(y), alpha,
                        noise[num - 1], cfg, think, num - 1)[0]
    return [last], num
  outputs = []
  for k in range(think.num_steps):
    if think.gradient == "detach":
      y = jax.lax.stop_gradient(y)
    y = descent_step(params, tokens, y, alpha, noise[k], cfg, think, k)[0]
    outputs.append(y)
  return (outputs if think.loss_on == "all" else outputs[-1:]), jnp.asarray(think.num_steps)


def init_extra(cfg: model_lib.EBTConfig, think: ThinkConfig, seq_len: int):
  """The state the loss carries beside the parameters (`core.TrainState.extra`): the replay buffer,
  or None without one."""
  if think.replay_capacity == 0:
    return None
  return replay_lib.init(think.replay_capacity, seq_len, cfg.vocab_size)


def num_replayed(think: ThinkConfig, batch_size: int) -> int:
  return max(1, round(think.replay_fraction * batch_size)) if think.replay_capacity else 0


def make_loss(cfg: model_lib.EBTConfig, think: ThinkConfig):
  """The training loss on batch tokens [B, S + 1] (inputs [:, :-1], next-token targets [:, 1:]).

  Without a replay buffer: `loss(params, batch, key) -> (loss, aux)` for `core.make_train_step`.
  With one (`think.replay_capacity > 0`): `loss(params, batch, key, buffer) -> (loss, (aux,
  buffer))` for `core.make_train_step(..., carries_extra=True)`: `replay_fraction * B` stored
  records join the batch and restart from their stored final logits (records not yet filled get
  zero weight), and the fresh records' final logits are pushed.
  """

  def descend(params, batch, key, y0, weights):
    tokens, targets = batch[:, :-1], batch[:, 1:]
    logits, num = train_logits(params, tokens, key, cfg, think, y0=y0)
    per_seq = jnp.stack([jnp.mean(cross_entropy(l, targets), axis=1) for l in logits])  # [L, B]
    losses = jnp.sum(per_seq * weights[None, :], axis=1) / jnp.sum(weights)
    aux = {"final_ce": losses[-1], "num_steps": num.astype(jnp.float32)}
    if think.learnable_step_size:
      aux["step_size"] = params["step_size"]
    return jnp.mean(losses), aux, logits[-1]

  def loss(params, batch, key):
    total, aux, _ = descend(params, batch, key, None, jnp.ones(batch.shape[0]))
    return total, aux

  def loss_with_replay(params, batch, key, buffer):
    b = batch.shape[0]
    k_sample, k_init, k_descent = jax.random.split(key, 3)
    old_tokens, old_logits, valid = replay_lib.sample(buffer, k_sample, num_replayed(think, b))
    tokens = jnp.concatenate([batch, old_tokens.astype(batch.dtype)], axis=0)
    y0 = initial_candidates(k_init, tokens[:, :-1], cfg)
    y0 = y0.at[b:].set(jnp.where(valid[:, None, None], old_logits, y0[b:]))
    weights = jnp.concatenate([jnp.ones(b), valid.astype(y0.dtype)])
    total, aux, final = descend(params, tokens, k_descent, y0, weights)
    aux["replay_size"] = buffer.size.astype(jnp.float32)
    return total, (aux, replay_lib.push(buffer, batch, final[:b]))

  return loss_with_replay if think.replay_capacity else loss


def baseline_loss(cfg: model_lib.EBTConfig):
  """Next-token cross-entropy of the standard transformer, same batch format."""

  def loss(params, batch, key):
    del key
    ce = jnp.mean(cross_entropy(model_lib.baseline_apply(params, batch[:, :-1], cfg),
                                batch[:, 1:]))
    return ce, {"final_ce": ce}

  return loss


@functools.partial(jax.jit, static_argnames=("cfg", "think", "n", "num_steps"))
def best_of_n(params, tokens, key, cfg: model_lib.EBTConfig, think: ThinkConfig, n: int,
              num_steps: int | None = None) -> tuple[jax.Array, jax.Array]:
  """Self-verification: n candidate chains from fresh noise; per position keep the one with the
  lowest final energy. Returns (chosen logits [B, S, V], every chain's final logits and energies
  ([n, B, S, V], [n, B, S]) for random-pick and oracle comparisons)."""
  traces = jax.vmap(lambda k: think_trace(params, tokens, k, cfg, think, num_steps))(
      jax.random.split(key, n))
  final_logits = traces.logits[:, -1]  # [n, B, S, V]
  # the energy of the final candidate itself: one more energy evaluation (on the last landscape)
  probs = jax.nn.softmax(final_logits, axis=-1)
  final_e = jax.vmap(lambda p: model_lib.energy(jax.lax.stop_gradient(params), tokens, p, cfg,
                                                landscape=num_steps or think.num_steps))(probs)
  pick = jnp.argmin(final_e, axis=0)  # [B, S]
  chosen = jnp.take_along_axis(final_logits, pick[None, ..., None], axis=0)[0]
  return chosen, (final_logits, final_e)
