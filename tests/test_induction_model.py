"""Induction-head models, interventions and progress measures (jaxlab.induction.model, .metrics),
and the Reddy ICL study (experiments/induction_icl)."""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.induction import data, metrics, model

RCFG = data.ReddyConfig(num_classes=64, num_labels=16, context_pairs=4, burstiness=1, dim=12,
                        p_novel=1.0, num_novel_classes=32)
TASK = data.make_task(jax.random.key(0), RCFG)
NET = model.ReddyNetConfig(RCFG.input_dim, RCFG.num_labels)


def _batch(size=16, seed=1):
  return data.sample_batch(jax.random.key(seed), TASK, RCFG, size)


def test_reddy_network_shapes_and_activation_names():
  params = model.reddy_init(jax.random.key(2), NET)
  batch = _batch()
  logits, acts = jax.jit(model.reddy_apply)(params, batch.inputs)
  t = RCFG.seq_len
  chex.assert_shape(logits, (16, RCFG.num_labels))
  for l in (0, 1):
    chex.assert_shape(acts[f"layer{l}/pattern"], (16, 1, t, t))
    chex.assert_shape(acts[f"layer{l}/head_out"], (16, 1, t, RCFG.input_dim))
    np.testing.assert_allclose(acts[f"layer{l}/pattern"].sum(-1), 1.0, atol=1e-12)
    # causal: no attention to later tokens
    assert float(jnp.abs(jnp.triu(acts[f"layer{l}/pattern"][:, 0], 1)).max()) == 0.0
  chex.assert_shape(acts["mlp2"], (16, RCFG.input_dim))
  with pytest.raises(ValueError, match="inputs must be"):
    model.reddy_apply(params, batch.inputs[..., :-1])


def test_reddy_network_vmaps_over_seeds():
  keys = jax.random.split(jax.random.key(3), 3)
  params = jax.vmap(lambda k: model.reddy_init(k, NET))(keys)
  batch = _batch()
  logits = jax.vmap(lambda p: model.reddy_apply(p, batch.inputs)[0])(params)
  single = model.reddy_apply(jax.tree.map(lambda x: x[1], params), batch.inputs)[0]
  np.testing.assert_allclose(logits[1], single, atol=1e-12)


def test_ablating_a_layer_removes_its_write_and_everything_downstream_sees_it():
  params = model.reddy_init(jax.random.key(4), NET)
  batch = _batch()
  _, clean = model.reddy_apply(params, batch.inputs)
  _, ablated = model.reddy_apply(params, batch.inputs, {"layer0/head_out": model.ablate()})
  np.testing.assert_array_equal(ablated["resid1"], batch.inputs)
  assert float(jnp.abs(ablated["layer1/pattern"] - clean["layer1/pattern"]).max()) > 1e-3
  # the untouched upstream activation is identical
  np.testing.assert_array_equal(ablated["layer0/pattern"], clean["layer0/pattern"])


def test_clamp_mask_callable_and_pattern_preserving_ablation():
  params = model.reddy_init(jax.random.key(5), NET)
  batch = _batch()
  t = RCFG.seq_len
  prev = jnp.asarray(np.eye(t, k=-1) + np.eye(t)[:, :1] * (np.arange(t) == 0)[:, None])
  _, acts = model.reddy_apply(params, batch.inputs, {"layer0/pattern": model.clamp(prev)})
  np.testing.assert_array_equal(acts["layer0/pattern"][3, 0], prev)
  # a mask clamps only where it is set: here only the last query row of layer 2
  row_mask = jnp.asarray(np.arange(t) == t - 1)[:, None]
  _, acts = model.reddy_apply(params, batch.inputs,
                              {"layer1/pattern": model.Intervention(row_mask, 1.0 / t)})
  _, clean = model.reddy_apply(params, batch.inputs)
  np.testing.assert_allclose(acts["layer1/pattern"][:, 0, -1], 1.0 / t)
  np.testing.assert_array_equal(acts["layer1/pattern"][:, 0, :-1], clean["layer1/pattern"][:, 0, :-1])
  # a callable
  _, acts = model.reddy_apply(params, batch.inputs, {"mlp0": lambda h: 2.0 * h})
  np.testing.assert_allclose(acts["mlp0"], 2.0 * clean["mlp0"], rtol=1e-12)
  # pattern-preserving: zeroing layer-1 values keeps layer 2's pattern at its clean value
  ivs = model.pattern_preserving(clean, {"layer0/values": model.ablate()})
  _, pp = model.reddy_apply(params, batch.inputs, ivs)
  np.testing.assert_array_equal(pp["layer1/pattern"], clean["layer1/pattern"])
  np.testing.assert_array_equal(pp["resid1"], batch.inputs)
  with pytest.raises(ValueError, match="unknown activation"):
    model.reddy_apply(params, batch.inputs, {"layer7/pattern": model.ablate()})
  with pytest.raises(ValueError, match="returned shape"):
    model.reddy_apply(params, batch.inputs, {"mlp0": lambda h: h[:, :2]})


def test_interventions_act_on_every_training_step_and_block_gradients():
  params = model.reddy_init(jax.random.key(6), NET)
  batch = _batch()
  ivs = {"layer0/head_out": model.ablate()}
  grads = jax.grad(lambda p: model.reddy_loss(p, batch, None, ivs)[0])(params)
  for name in ("query", "key", "value"):
    assert float(jnp.abs(grads["attention"][0][name]).max()) == 0.0
    assert float(jnp.abs(grads["attention"][1][name]).max()) > 0.0


TCFG = model.TransformerConfig(num_outputs=11, vocab_size=11, num_layers=2, num_heads=4,
                               d_model=16)


def test_transformer_is_causal_and_heads_add_up():
  params = model.transformer_init(jax.random.key(7), TCFG)
  tokens = jax.random.randint(jax.random.key(8), (3, 9), 0, 11)
  logits, acts = model.transformer_apply(params, tokens, TCFG)
  chex.assert_shape(logits, (3, 9, 11))
  changed = tokens.at[:, 6:].set((tokens[:, 6:] + 1) % 11)
  logits2, _ = model.transformer_apply(params, changed, TCFG)
  np.testing.assert_allclose(logits2[:, :6], logits[:, :6], atol=1e-12)
  assert float(jnp.abs(logits2[:, 6:] - logits[:, 6:]).max()) > 1e-6
  for l in (0, 1):  # attention-only: the residual update is the sum of the heads' writes
    np.testing.assert_allclose(acts[f"resid{l + 1}"] - acts[f"resid{l}"],
                               acts[f"layer{l}/head_out"].sum(1), atol=1e-12)
  # ablating one head removes exactly its write
  mask = jnp.asarray(np.arange(4) == 2)[:, None, None]
  _, ab = model.transformer_apply(params, tokens, TCFG, {"layer0/head_out": model.ablate(mask)})
  np.testing.assert_allclose(ab["resid1"] - ab["resid0"],
                             acts["layer0/head_out"].sum(1) - acts["layer0/head_out"][:, 2],
                             atol=1e-12)


def test_per_head_writes_are_computed_only_when_read():
  """The stream's update is one contraction over heads and values; the [b, H, T, D] per-head
  writes (1.6x the training step's time at width 512, benchmarks.scaling) exist in the compiled
  program only when a caller reads `head_out` (interventions on it: see the test above)."""
  params = model.transformer_init(jax.random.key(7), TCFG)
  tokens = jnp.zeros((3, 9), jnp.int32)
  per_head = f"[3,{TCFG.num_heads},9,{TCFG.d_model}]"

  def hlo(fn):
    return jax.jit(fn).lower(params, tokens).compile().as_text()

  assert per_head not in hlo(lambda p, t: model.transformer_apply(p, t, TCFG)[0])
  assert per_head in hlo(lambda p, t: model.transformer_apply(p, t, TCFG)[1]["layer0/head_out"])


def test_rope_scores_depend_only_on_relative_position():
  q = jax.random.normal(jax.random.key(9), (1, 1, 1, 8))
  k = jax.random.normal(jax.random.key(10), (1, 1, 1, 8))
  t = 12
  rq = model.rope(jnp.tile(q, (1, 1, t, 1)))
  rk = model.rope(jnp.tile(k, (1, 1, t, 1)))
  scores = jnp.einsum("bhik,bhjk->ij", rq, rk)
  for offset in (-3, 0, 5):
    diag = jnp.diagonal(scores, offset=offset)
    np.testing.assert_allclose(diag, diag[0], atol=1e-12)
  np.testing.assert_allclose(model.rope(q), q, atol=1e-15)  # position 0 is not rotated


def test_transformer_config_errors_name_the_field():
  with pytest.raises(ValueError, match="num_heads"):
    model.TransformerConfig(num_outputs=4, vocab_size=4, num_heads=3, d_model=16)
  with pytest.raises(ValueError, match="vocab_size"):
    model.TransformerConfig(num_outputs=4)
  with pytest.raises(ValueError, match="positions"):
    model.TransformerConfig(num_outputs=4, vocab_size=4, positions="alibi")
  cfg = model.TransformerConfig(num_outputs=4, input_dim=6, positions="learned", max_len=5,
                                num_heads=2, d_model=8)
  params = model.transformer_init(jax.random.key(11), cfg)
  with pytest.raises(ValueError, match="max_len"):
    model.transformer_apply(params, jnp.zeros((1, 6, 6)), cfg)
  with pytest.raises(ValueError, match="inputs must be"):
    model.transformer_apply(params, jnp.zeros((1, 4), jnp.int32), cfg)


def _perfect_reddy_acts(batch):
  """Activations of an ideal induction head: labels attend to their items, the query to its
  label(s)."""
  b, n = batch.context_labels.shape
  t = 2 * n + 1
  p1 = np.zeros((b, 1, t, t))
  p1[:, 0, np.arange(t), np.arange(t)] = 1.0
  p1[:, 0, 2 * np.arange(n) + 1] = 0.0
  p1[:, 0, 2 * np.arange(n) + 1, 2 * np.arange(n)] = 1.0
  p2 = np.zeros((b, 1, t, t))
  correct = np.asarray(batch.context_labels == batch.target[:, None])
  p2[:, 0, -1, 2 * np.arange(n) + 1] = correct / correct.sum(1, keepdims=True)
  return {"layer0/pattern": jnp.asarray(p1), "layer1/pattern": jnp.asarray(p2)}


def test_reddy_progress_measures_on_ideal_and_uniform_attention():
  batch = _batch(32)
  logits = 10.0 * jax.nn.one_hot(batch.target, RCFG.num_labels)
  m = metrics.reddy_progress(logits, _perfect_reddy_acts(batch), batch)
  for name in ("accuracy", "ila1", "tila2", "tla2", "cla", "ih2"):
    np.testing.assert_allclose(m[name], 1.0, atol=1e-12, err_msg=name)
  t = RCFG.seq_len
  uniform = jnp.asarray(np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None])
  uni = {k: jnp.broadcast_to(uniform, (32, 1, t, t)) for k in ("layer0/pattern", "layer1/pattern")}
  wrong = 10.0 * jax.nn.one_hot((batch.target + 1) % RCFG.num_labels, RCFG.num_labels)
  m = metrics.reddy_progress(wrong, uni, batch)
  np.testing.assert_allclose(m["ih2"], 0.0, atol=1e-12)
  np.testing.assert_allclose(m["tla2"], RCFG.context_pairs / t, atol=1e-12)
  np.testing.assert_allclose(m["accuracy"], 0.0)


def test_olsson_scores_on_constructed_patterns_and_circuits():
  tokens = data.repeated_tokens(jax.random.key(12), 4, 20, 6, repeats=3)
  mask = np.asarray(data.prefix_match_mask(tokens), float)
  t = tokens.shape[1]
  ideal = np.where(mask.any(-1, keepdims=True), mask / np.maximum(mask.sum(-1, keepdims=True), 1),
                   np.eye(t)[None])
  pattern = jnp.asarray(np.stack([ideal, np.broadcast_to(np.eye(t), ideal.shape)], axis=1))
  score = metrics.prefix_matching_score(pattern, tokens)
  np.testing.assert_allclose(score, [1.0, 0.0], atol=1e-12)
  prev = np.broadcast_to(np.eye(t, k=-1), (4, 1, t, t))
  np.testing.assert_allclose(metrics.previous_token_score(jnp.asarray(prev)), [1.0], atol=1e-12)
  eye = jnp.eye(7)
  np.testing.assert_allclose(metrics.copying_fraction(eye), 1.0, atol=1e-12)
  np.testing.assert_allclose(metrics.copying_eigenvalue_score(eye), 1.0, atol=1e-12)
  np.testing.assert_allclose(metrics.copying_eigenvalue_score(-eye), -1.0, atol=1e-12)
  assert float(metrics.copying_fraction(-eye)) < -0.9


def test_crossing_and_steepest_rise():
  steps = np.arange(0, 100, 10)
  values = np.array([0.1, 0.1, 0.12, 0.13, 0.8, 0.95, 0.97, 0.98, 0.98, 0.99])
  assert metrics.first_crossing(steps, values, 0.9) == 50
  assert np.isnan(metrics.first_crossing(steps, values, 1.5))
  assert metrics.first_crossing(steps, 1 - values, 0.5, above=False) == 40
  assert metrics.steepest_rise(steps, values)[0] == 35.0
  assert np.isnan(metrics.steepest_rise(steps[:1], values[:1])[0])
  assert metrics.jump_window(steps, values, 0.3, 0.9) == (30.0, 50.0)
  assert metrics.jump_window(steps, values + 0.5, 0.3, 0.9) == (0.0, 40.0)
  assert np.isnan(metrics.jump_window(steps, values, 0.3, 1.5)[1])


# ------------------------------------------------------------------------------- the ICL study

def _icl_config(**overrides):
  from experiments.induction_icl import config as config_lib
  cfg = config_lib.get_config("quick")
  cfg.update(overrides)
  return cfg


def test_icl_experiment_smoke_writes_every_output(tmp_path):
  from experiments.induction_icl import experiment
  cfg = _icl_config(num_steps=24, log_every=12, checkpoint_every=24, eval_size=32, batch_size=16,
                    dim=15, label_counts=(16, 8), theory_steps=300)
  out = experiment.run(cfg, str(tmp_path))
  for name in ("accuracy", "nested_logit", "attention"):
    assert os.path.exists(out["figures"][name])
  results = json.load(open(tmp_path / "results.json"))
  assert len(results["comparisons"]) == 12  # 10 ICL-forced rows + 2 L = N rows
  assert os.path.isdir(tmp_path / "checkpoints" / "L16_seed0")  # resumable (core.train)


def test_icl_config_errors():
  from experiments.induction_icl import config as config_lib
  from experiments.induction_icl import experiment
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("huge")
  with pytest.raises(ValueError, match="L=4 < N=8"):
    experiment.validate(_icl_config(label_counts=(4,)))


@pytest.mark.slow
def test_icl_forced_jumps_abruptly_and_l_equals_n_forms_no_head(tmp_path):
  """Reddy 2024 fig. 3 and fig. A.5 at CPU scale: every comparison row passes (slow phase at 1/N,
  a jump of <= 400 steps coinciding with IH2, final ICL > 0.95; L = N: ICL < 0.2, IH2 < 0.05)."""
  from experiments.induction_icl import experiment
  out = experiment.run(_icl_config(label_counts=(32, 8), num_steps=1500, checkpoint_every=500),
                       str(tmp_path))
  failed = [c.quantity for c in out["comparisons"] if not c.passed]
  assert not failed, failed
