"""Energy-based transformer: the energy's independence structure, the inner optimisation and
where its gradients flow (jaxlab.ebt)."""

import dataclasses
import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab import core
from jaxlab.ebt import model, thinking

CFG = model.EBTConfig(vocab_size=11, d_model=16, num_heads=2, num_layers=1, max_len=8)
PARAMS = model.init(jax.random.key(0), CFG)
TOKENS = jax.random.randint(jax.random.key(1), (3, 8), 0, 11)
PROBS = jax.nn.softmax(jax.random.normal(jax.random.key(2), (3, 8, 11)))
energy = jax.jit(functools.partial(model.energy, cfg=CFG))


def test_energy_of_a_position_ignores_other_predictions_and_later_tokens():
  e = energy(PARAMS, TOKENS, PROBS)
  chex.assert_shape(e, (3, 8))
  other = jax.nn.softmax(jax.random.normal(jax.random.key(3), (3, 8, 11)))
  for i in (0, 4, 7):
    keep_i = PROBS.at[:, :i].set(other[:, :i]).at[:, i + 1:].set(other[:, i + 1:])
    np.testing.assert_allclose(energy(PARAMS, TOKENS, keep_i)[:, i], e[:, i], atol=1e-12)
    assert float(jnp.abs(energy(PARAMS, TOKENS, PROBS.at[:, i].set(other[:, i]))[:, i]
                         - e[:, i]).min()) > 1e-6  # its own candidate matters
  later = TOKENS.at[:, 5:].set((TOKENS[:, 5:] + 1) % 11)
  np.testing.assert_allclose(energy(PARAMS, later, PROBS)[:, :5], e[:, :5], atol=1e-12)
  assert float(jnp.abs(energy(PARAMS, later, PROBS)[:, 5:] - e[:, 5:]).max()) > 1e-6


def test_one_gradient_of_the_summed_energy_is_every_positions_own_gradient():
  summed = jax.jit(jax.grad(lambda p: energy(PARAMS, TOKENS, p).sum()))(PROBS)
  own_grad = jax.jit(jax.grad(lambda q, b, i: energy(PARAMS, TOKENS, PROBS.at[b, i].set(q))[b, i]))
  for b, i in ((0, 0), (1, 3), (2, 7)):
    own = own_grad(PROBS[b, i], b, i)
    np.testing.assert_allclose(summed[b, i], own, atol=1e-12)


def _no_noise(**kw):
  return thinking.ThinkConfig(**{"num_steps": 3, "step_size": 0.5, "langevin_std": 0.0, **kw})


def test_truncated_gradient_equals_the_unrolled_chain_stopped_before_the_last_step():
  think = _no_noise(gradient="truncate", langevin_std=0.7)
  batch = jax.random.randint(jax.random.key(4), (3, 9), 0, 11)
  key = jax.random.key(5)
  truncated = jax.jit(jax.grad(lambda p: thinking.make_loss(CFG, think)(p, batch, key)[0]))(
      PARAMS)

  def reference(p):  # unroll every step with parameter dependence, stop the state before the last
    tokens, targets = batch[:, :-1], batch[:, 1:]
    k_init, k_alpha, k_noise, _ = jax.random.split(key, 4)
    y = thinking.initial_candidates(k_init, tokens, CFG)
    alpha = thinking.step_sizes(k_alpha, p, think, tokens.shape)
    noise = jax.random.split(k_noise, 3)
    for k in range(2):
      y = thinking.descent_step(p, tokens, y, alpha, noise[k], CFG, think)[0]
    y = thinking.descent_step(p, tokens, jax.lax.stop_gradient(y), alpha, noise[2], CFG,
                              think)[0]
    return jnp.mean(thinking.cross_entropy(y, targets))

  expected = jax.jit(jax.grad(reference))(PARAMS)
  chex.assert_trees_all_close(truncated, expected, atol=1e-12)
  # negative control: differentiating the whole chain gives a different gradient
  full = jax.jit(jax.grad(lambda p: thinking.make_loss(
      CFG, _no_noise(gradient="full", langevin_std=0.7))(p, batch, key)[0]))(PARAMS)
  diff = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(full),
                                                         jax.tree.leaves(truncated)))
  assert diff > 1e-6


def test_s1_learns_its_step_size_and_averages_every_step():
  params = thinking.init(jax.random.key(6), CFG, thinking.S1)
  batch = jax.random.randint(jax.random.key(7), (2, 9), 0, 11)
  (loss, aux), grads = jax.jit(jax.value_and_grad(thinking.make_loss(CFG, thinking.S1),
                                                  has_aux=True))(params, batch, jax.random.key(8))
  assert float(jnp.abs(grads["step_size"])) > 0
  logits, _ = jax.jit(functools.partial(thinking.train_logits, cfg=CFG, think=thinking.S1))(
      params, batch[:, :-1], jax.random.key(8))
  assert len(logits) == 2
  per_step = [float(jnp.mean(thinking.cross_entropy(l, batch[:, 1:]))) for l in logits]
  np.testing.assert_allclose(loss, np.mean(per_step), rtol=1e-12)
  np.testing.assert_allclose(aux["final_ce"], per_step[-1], rtol=1e-12)


def test_rematerialised_blocks_give_the_same_energy_and_gradient():
  remat = dataclasses.replace(CFG, remat=True)
  value_and_grad = lambda cfg: jax.jit(jax.value_and_grad(
      lambda p: model.energy(p, TOKENS, PROBS, cfg).sum()))(PARAMS)
  energy_sum, grads = value_and_grad(CFG)
  remat_energy_sum, remat_grads = value_and_grad(remat)
  np.testing.assert_allclose(remat_energy_sum, energy_sum, rtol=1e-13)
  chex.assert_trees_all_close(remat_grads, grads, rtol=1e-11, atol=1e-14)
  # jax.checkpoint is really in the program (its primitive), once per block, and only there.
  jaxpr = lambda cfg: str(jax.make_jaxpr(lambda p: model.energy(p, TOKENS, PROBS, cfg))(PARAMS))
  checkpoints = lambda cfg: len(re.findall(r"= (?:remat2|checkpoint)\[", jaxpr(cfg)))
  assert checkpoints(remat) == CFG.num_layers and checkpoints(CFG) == 0
  baseline = model.baseline_init(jax.random.key(9), CFG)
  np.testing.assert_allclose(model.baseline_apply(baseline, TOKENS, remat),
                             model.baseline_apply(baseline, TOKENS, CFG), rtol=1e-13)


@pytest.mark.parametrize("recipe", ["S1", "S2", "full"])
def test_training_gradient_equals_reverse_over_reverse_autodiff(recipe, monkeypatch):
  """The descent's second-order VJP (forward over reverse, `core.energy_and_grad`) gives the
  training gradient plain reverse-mode autodiff of the unrolled descent gives (float64, 1e-11)."""
  cfg = dataclasses.replace(CFG, num_landscapes=2)
  think = {"S1": thinking.S1, "S2": dataclasses.replace(thinking.S2, replay_capacity=4),
           "full": _no_noise(gradient="full", loss_on="all")}[recipe]
  params = thinking.init(jax.random.key(10), cfg, think)
  batch = jax.random.randint(jax.random.key(11), (3, 9), 0, 11)
  loss = thinking.make_loss(cfg, think)
  args = (batch, jax.random.key(12))
  if think.replay_capacity:  # half-filled buffer: replayed records restart from stored logits
    buffer = thinking.init_extra(cfg, think, 8)
    buffer = thinking.replay_lib.push(buffer, batch[:2], PROBS[:2])
    args += (buffer,)
  grad = lambda: jax.jit(jax.grad(lambda p: loss(p, *args)[0]))(params)
  ours = grad()
  monkeypatch.setattr(core, "energy_and_grad", core.autodiff.energy_and_grad_reverse)
  chex.assert_trees_all_close(ours, grad(), rtol=1e-11, atol=1e-13)


def test_s2_draws_the_number_of_steps_per_batch_in_one_compilation():
  params = thinking.init(jax.random.key(9), CFG, thinking.S2)
  batch = jax.random.randint(jax.random.key(10), (2, 9), 0, 11)
  traces = []

  @jax.jit
  def step_count(key):
    traces.append(1)
    buffer = thinking.init_extra(CFG, thinking.S2, 8)
    return thinking.make_loss(CFG, thinking.S2)(params, batch, key, buffer)[1][0]["num_steps"]

  counts = {int(step_count(jax.random.key(i))) for i in range(12)}
  assert counts == {2, 3}
  assert len(traces) == 1
  alpha = thinking.step_sizes(jax.random.key(11), params, thinking.S2, (64, 8))
  assert float(alpha.min()) >= 2.5 - 1e-12 and float(alpha.max()) <= 10.0 + 1e-12
  assert float(alpha.max() / alpha.min()) > 3.0


def test_best_of_n_picks_the_lowest_final_energy_per_position():
  chosen, (finals, energies) = thinking.best_of_n(PARAMS, TOKENS, jax.random.key(12), CFG,
                                                  thinking.S2, 5)
  chex.assert_shape(finals, (5, 3, 8, 11))
  pick = jnp.argmin(energies, axis=0)
  for b, i in ((0, 0), (2, 5)):
    np.testing.assert_array_equal(chosen[b, i], finals[pick[b, i], b, i])
  trace = thinking.think_trace(PARAMS, TOKENS, jax.random.key(13), CFG, thinking.S2, 6)
  chex.assert_shape(trace.logits, (6, 3, 8, 11))
  chex.assert_shape(trace.energies, (6, 3, 8))


def test_each_step_descends_its_own_landscape_and_later_steps_the_last():
  """L = 2 landscape tokens (the authors' time_embed S1): the trace equals manual steps on
  landscapes 0, 1, 1; the landscapes differ; the other parameters match an L = 0 model's."""
  cfg = model.EBTConfig(vocab_size=11, d_model=16, num_heads=2, num_layers=1, max_len=8,
                        num_landscapes=2)
  params = model.init(jax.random.key(0), cfg)
  chex.assert_shape(params["landscape"], (2, 16))
  chex.assert_trees_all_equal({k: v for k, v in params.items() if k != "landscape"}, PARAMS)
  e = [model.energy(params, TOKENS, PROBS, cfg, landscape=k) for k in range(3)]
  assert float(jnp.abs(e[0] - e[1]).min()) > 1e-6
  np.testing.assert_array_equal(e[2], e[1])
  other = jax.nn.softmax(jax.random.normal(jax.random.key(3), (3, 8, 11)))  # still per position
  np.testing.assert_allclose(model.energy(params, TOKENS, PROBS.at[:, 4:].set(other[:, 4:]), cfg,
                                          landscape=1)[:, :4], e[1][:, :4], atol=1e-12)
  think = _no_noise()
  key = jax.random.key(13)
  trace = thinking.think_trace(params, TOKENS, key, cfg, think, 3)
  k_init, k_alpha, _ = jax.random.split(key, 3)
  y = thinking.initial_candidates(k_init, TOKENS, cfg)
  alpha = thinking.step_sizes(k_alpha, params, think, TOKENS.shape)
  for k, landscape in enumerate((0, 1, 1)):
    y, energies = thinking.descent_step(params, TOKENS, y, alpha, None, cfg, think, landscape)
    np.testing.assert_allclose(trace.logits[k], y, atol=1e-10)
    np.testing.assert_allclose(trace.energies[k], energies, atol=1e-10)
  with pytest.raises(ValueError, match="num_landscapes"):
    model.EBTConfig(vocab_size=5, num_landscapes=-1)


def test_baseline_is_causal_and_configs_reject_bad_values():
  params = model.baseline_init(jax.random.key(14), CFG)
  logits = model.baseline_apply(params, TOKENS, CFG)
  chex.assert_shape(logits, (3, 8, 11))
  later = TOKENS.at[:, 6:].set((TOKENS[:, 6:] + 1) % 11)
  np.testing.assert_allclose(model.baseline_apply(params, later, CFG)[:, :6], logits[:, :6],
                             atol=1e-12)
  with pytest.raises(ValueError, match="max_len"):
    model.energy(PARAMS, jnp.zeros((1, 9), jnp.int32), jnp.zeros((1, 9, 11)), CFG)
  with pytest.raises(ValueError, match="candidates must be"):
    model.energy(PARAMS, TOKENS, PROBS[..., :5], CFG)
  with pytest.raises(ValueError, match="num_heads"):
    model.EBTConfig(vocab_size=5, d_model=10, num_heads=3)
  with pytest.raises(ValueError, match="loss_on"):
    thinking.ThinkConfig(gradient="truncate", loss_on="all")
  with pytest.raises(ValueError, match="min_steps"):
    thinking.ThinkConfig(num_steps=2, min_steps=3)


def test_ebt_forward_costs_more_than_the_baseline_by_the_doubled_stream():
  ebt = model.forward_flops(CFG, 8, ebt=True)
  base = model.forward_flops(CFG, 8, ebt=False)
  assert 2.0 <= ebt / base <= 4.5  # 2x tokens in the blocks, 4x attention, same-size head


def test_replay_buffer_is_fifo_and_samples_only_filled_records():
  from jaxlab.ebt import replay
  buf = replay.init(capacity=5, seq_len=2, vocab_size=3)
  _, _, valid = replay.sample(buf, jax.random.key(0), 4)
  assert not bool(valid.any())
  push = jax.jit(replay.push)
  for start in (0, 3, 6):  # records numbered start..start+2
    toks = jnp.arange(start, start + 3)[:, None] * jnp.ones((1, 3), jnp.int32)
    buf = push(buf, toks, jnp.broadcast_to(toks[:, :2, None].astype(float), (3, 2, 3)))
  # 9 records into 5 slots: the last five (4..8) remain, the oldest overwritten first
  assert sorted(np.asarray(buf.tokens[:, 0]).tolist()) == [4, 5, 6, 7, 8]
  assert int(buf.size) == 5 and int(buf.head) == 4
  toks, logits, valid = replay.sample(buf, jax.random.key(1), 200)
  assert bool(valid.all()) and set(np.asarray(toks[:, 0]).tolist()) == {4, 5, 6, 7, 8}
  np.testing.assert_array_equal(logits[:, 0, 0], toks[:, 0].astype(float))
  half = replay.push(replay.init(5, 2, 3), jnp.ones((2, 3), jnp.int32), jnp.zeros((2, 2, 3)))
  toks, _, _ = replay.sample(half, jax.random.key(2), 100)
  np.testing.assert_array_equal(toks, 1)  # never an unfilled slot
  with pytest.raises(ValueError, match="capacity"):
    replay.push(half, jnp.ones((6, 3), jnp.int32), jnp.zeros((6, 2, 3)))


def test_replayed_records_restart_from_their_stored_logits_and_unfilled_ones_weigh_nothing():
  """One deterministic step (no noise, fixed alpha): the loss with a filled buffer minus the loss
  with an empty one is exactly the replayed records' cross-entropy after one step from their
  stored logits; the fresh records are pushed."""
  from jaxlab.ebt import replay
  think = thinking.ThinkConfig(num_steps=1, step_size=2.0, replay_capacity=4, replay_fraction=0.5)
  loss = jax.jit(thinking.make_loss(CFG, think))
  batch = jax.random.randint(jax.random.key(20), (4, 9), 0, 11)
  record = jax.random.randint(jax.random.key(21), (1, 9), 0, 11)
  stored = 3.0 * jax.random.normal(jax.random.key(22), (1, 8, 11))
  empty = thinking.init_extra(CFG, think, 8)
  filled = replay.push(empty, record, stored)
  key = jax.random.key(23)
  empty_loss, (_, pushed) = loss(PARAMS, batch, key, empty)
  filled_loss, _ = loss(PARAMS, batch, key, filled)
  n = thinking.num_replayed(think, 4)
  assert n == 2
  restart = filled.logits[:1].astype(stored.dtype)  # the buffer stores float32
  after, _ = thinking.descent_step(PARAMS, record[:, :-1], restart, 2.0, None, CFG, think)
  replayed_ce = jnp.mean(thinking.cross_entropy(after, record[:, 1:]))
  np.testing.assert_allclose(filled_loss * (4 + n) - empty_loss * 4, n * replayed_ce, rtol=1e-9)
  assert int(pushed.size) == 4
  np.testing.assert_array_equal(pushed.tokens, batch)
  assert float(jnp.abs(pushed.logits).min()) > 0  # the fresh records' final logits
