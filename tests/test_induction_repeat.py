"""Induction heads on repeated random tokens (jaxlab.induction.repeated and the study
experiments/induction_repeat; Olsson et al. 2022, Elhage et al. 2021).

The hand-built circuit scores 1 on prefix matching, previous-token and copying and predicts every
repeat; ablating its previous-token head drops prefix matching to chance (negative control). The
loss and masks match brute-force loops. Slow: a trained 2-layer model forms an induction head in an
abrupt phase change while a 1-layer one does not (every row of the study, two seeds), and with one
fixed period a single layer fakes a high prefix-matching score by attending a fixed distance back.
"""

import functools
import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.induction_repeat import config as config_lib
from experiments.induction_repeat import experiment
from jaxlab import core
from jaxlab.induction import data, metrics, model, repeated

V, H, REPS = 16, 8, 3
T = H * REPS
# One small random-model shape for every test, so that its programs compile once; its weights are
# drawn from RBG keys (threefry's 3-D normal draws take seconds each to compile on CPU).
CFG = model.TransformerConfig(num_outputs=V, num_layers=3, num_heads=2, d_model=32, vocab_size=V,
                              positions="rope", max_len=T)
ABLATE0 = {"layer0/head_out": model.ablate()}


@functools.partial(jax.jit, static_argnums=1)
def _everything(params, cfg, tokens):
  """Every quantity the tests read, in one compiled program per (cfg, token shape)."""
  logits, acts = model.transformer_apply(params, tokens, cfg)
  loss, aux = repeated.next_token_loss(params, tokens, cfg)
  loss_all, _ = repeated.next_token_loss(params, tokens, cfg, train_on="all")
  _, aux_ablated = repeated.next_token_loss(params, tokens, cfg, ABLATE0)
  return {"logits": logits, "acts": acts, "loss": loss, "aux": aux, "loss_all": loss_all,
          "scores": repeated.induction_scores(params, cfg, tokens),
          "report": repeated.evaluate_repeats(params, cfg, tokens),
          "ablated_scores": repeated.induction_scores(params, cfg, tokens, ABLATE0),
          "ablated_aux": aux_ablated,
          "no_copying": repeated.evaluate_repeats(params, cfg, tokens, copying=False),
          "copying_scores": repeated.copying_scores(params, cfg)}


def _tokens(seed=0, batch=32, vocab=V, half=H, reps=REPS):
  return data.repeated_tokens(jax.random.key(seed), batch, vocab, half, reps)


# ------------------------------------------------------------------------ hand-built circuit

def test_hand_built_circuit_is_an_induction_head_and_ablating_layer0_breaks_it():
  cfg, params = repeated.induction_head_construction(V, T, sharpness=20.0)
  tokens = _tokens()
  out = _everything(params, cfg, tokens)
  s, aux = out["scores"], out["aux"]
  assert float(s["prefix_matching"][1, 0]) >= 0.999
  assert float(s["previous_token"][0, 0]) >= 0.999
  assert float(s["copying"][1, 0]) > 0.999  # OV = 2 s I: a pure copier
  assert float(s["copying_fraction"][1, 0]) > 0.999
  # layer 0 only moves tokens into the previous-token subspace, which the unembedding ignores
  assert float(s["copying"][0, 0]) == 0.0
  assert float(aux["repeat_accuracy"]) == 1.0
  assert float(aux["repeat_loss"]) < 0.01
  # every token of the second and third repeats, position by position
  np.testing.assert_array_equal(np.argmax(out["logits"][:, H:-1], -1), tokens[:, H + 1:])

  # Negative control: without the previous-token write the layer-1 key carries no t_{j-1}.
  chance = float(repeated.chance_prefix_matching(tokens))
  assert 0.05 < chance < 0.2
  assert float(out["ablated_scores"]["prefix_matching"][1, 0]) < 1.5 * chance
  assert float(out["ablated_aux"]["repeat_accuracy"]) < 0.2
  assert float(out["ablated_aux"]["repeat_loss"]) > 1.0


def test_hand_built_layout_and_sharpness():
  cfg, params = repeated.induction_head_construction(V, T, sharpness=20.0)
  d = 2 * V + T
  assert (cfg.d_model, cfg.num_heads, cfg.head_dim, cfg.num_layers) == (d, 1, d, 2)
  assert cfg.positions == "learned" and not cfg.layer_norm and cfg.mlp_ratio is None
  chex.assert_shape([params["embed"], params["position"], params["unembed"]],
                    [(V, d), (T, d), (d, V)])
  for layer in params["layers"]:
    chex.assert_shape([layer["query"], layer["key"], layer["value"], layer["out"]],
                      [(1, d, d)] * 4)
  # the residual stream: token one-hot | position one-hot | previous token (layer 0's write)
  tokens = _tokens(1)
  acts = _everything(params, cfg, tokens)["acts"]
  b = tokens.shape[0]
  np.testing.assert_allclose(acts["resid0"][:, :, :V], jax.nn.one_hot(tokens, V), atol=1e-12)
  np.testing.assert_allclose(acts["resid0"][:, :, V:V + T],
                             jnp.broadcast_to(jnp.eye(T)[None], (b, T, T)), atol=1e-12)
  np.testing.assert_allclose(acts["resid1"][:, 1:, V + T:], jax.nn.one_hot(tokens[:, :-1], V),
                             atol=1e-6)
  # a soft construction is a weaker head: the scores follow the sharpness
  _, soft = repeated.induction_head_construction(V, T, sharpness=2.0)
  s = _everything(soft, cfg, tokens)["scores"]
  assert 0.2 < float(s["previous_token"][0, 0]) < 0.9
  assert float(s["prefix_matching"][1, 0]) < 0.9


@pytest.mark.parametrize("kw, match", [
    (dict(vocab=1), "vocab"), (dict(vocab=2.5), "vocab"), (dict(vocab=True), "vocab"),
    (dict(max_len=1), "max_len"), (dict(sharpness=0.0), "sharpness"),
    (dict(sharpness=float("inf")), "sharpness"), (dict(sharpness=-1.0), "sharpness")])
def test_construction_errors_name_the_argument(kw, match):
  args = dict(vocab=V, max_len=T, sharpness=10.0) | kw
  with pytest.raises(ValueError, match=match):
    repeated.induction_head_construction(**args)


# ------------------------------------------------------------------ data, masks, loss, scores

def test_periodic_tokens_repeat_a_distinct_segment_with_a_per_sequence_period():
  toks = np.asarray(jax.jit(repeated.periodic_tokens, static_argnums=(1, 2, 3, 4, 5))(
      jax.random.key(2), 256, 20, 30, 3, 9))
  assert toks.shape == (256, 30) and toks.dtype == np.int32
  assert toks.min() >= 0 and toks.max() < 20
  periods = []
  for row in toks:
    period = next(p for p in range(1, 30) if np.array_equal(row[p:], row[:-p]))
    assert len(set(row[:period])) == period  # distinct within a period
    periods.append(period)
  assert set(periods) == set(range(3, 10))  # every period in range, and only those
  with pytest.raises(ValueError, match="vocab"):
    repeated.periodic_tokens(jax.random.key(0), 4, 8, 30, 3, 9)
  with pytest.raises(ValueError, match="seq_len"):
    repeated.periodic_tokens(jax.random.key(0), 4, 20, 9, 3, 9)
  with pytest.raises(ValueError, match="max_period"):
    repeated.periodic_tokens(jax.random.key(0), 4, 20, 30, 5, 4)


def _brute_force_loss(logits, tokens):
  """Per-sequence loops: which positions repeat, and the mean NLLs over each set."""
  logp = np.asarray(jax.nn.log_softmax(logits, -1))
  tokens = np.asarray(tokens)
  rep, first, allp = [], [], []
  for b in range(tokens.shape[0]):
    for i in range(tokens.shape[1] - 1):
      nll = -logp[b, i, tokens[b, i + 1]]
      (rep if tokens[b, i] in tokens[b, :i] else first).append(nll)
      allp.append(nll)
  return np.mean(rep), np.mean(first), np.mean(allp)


def test_next_token_loss_matches_a_brute_force_loop():
  params = model.transformer_init(jax.random.key(3, impl="rbg"), CFG)
  params = jax.tree.map(lambda x: 20.0 * x, params)  # far from uniform predictions
  # distinct segments; behind a BOS (truncated to T); with within-segment repeats
  for tokens in (_tokens(4, batch=6), data.repeated_tokens(jax.random.key(5), 6, V, 8, 3,
                                                           bos=0)[:, :T],
                 data.repeated_tokens(jax.random.key(6), 6, V, 8, 3, distinct=False)):
    out = _everything(params, CFG, tokens)
    rep, first, allp = _brute_force_loss(out["logits"], tokens)
    aux = out["aux"]
    np.testing.assert_allclose([float(out["loss"]), float(aux["repeat_loss"]),
                                float(aux["first_loss"]), float(aux["in_context_score"]),
                                float(out["loss_all"])], [rep, rep, first, rep - first, allp],
                               rtol=1e-10)
  # the masks on distinct repeats: positions H.. (but not the last) repeat
  repeat, first = repeated.repeat_masks(_tokens(7, batch=3))
  np.testing.assert_array_equal(repeat, np.broadcast_to(np.arange(T - 1) >= H, (3, T - 1)))
  np.testing.assert_array_equal(first, ~repeat)
  with pytest.raises(ValueError, match="train_on"):
    repeated.next_token_loss(params, _tokens(), CFG, train_on="everything")
  with pytest.raises(ValueError, match="tokens must be"):
    repeated.next_token_loss(params, _tokens()[0], CFG)


def test_induction_scores_shapes_and_agreement_with_the_metrics():
  params = model.transformer_init(jax.random.key(8, impl="rbg"), CFG)
  tokens = _tokens(9, batch=6)
  out = _everything(params, CFG, tokens)
  s = out["scores"]
  assert set(s) == {"prefix_matching", "previous_token", "copying", "copying_fraction"}
  for v in s.values():
    chex.assert_shape(v, (3, 2))
  acts = out["acts"]
  np.testing.assert_allclose(s["prefix_matching"][2], metrics.prefix_matching_score(
      acts["layer2/pattern"], tokens), rtol=1e-10)
  np.testing.assert_allclose(s["previous_token"][0], metrics.previous_token_score(
      acts["layer0/pattern"]), rtol=1e-10)
  ov = np.asarray(model.ov_logit_circuit(params, CFG, 1, 1))
  lam = np.linalg.eigvals(ov)
  np.testing.assert_allclose(s["copying"][1, 1], lam.real.sum() / np.abs(lam).sum(), rtol=1e-8)
  # one forward pass for both: the same numbers; the copying scores alone, or left out
  for name, value in (s | out["aux"]).items():
    np.testing.assert_allclose(out["report"][name], value, rtol=1e-12, err_msg=name)
  for name, value in out["copying_scores"].items():
    np.testing.assert_array_equal(value, s[name])
  assert set(out["report"]) - set(out["no_copying"]) == {"copying", "copying_fraction"}
  # ablating layer 0 changes the later patterns but not the OV circuits
  np.testing.assert_array_equal(out["ablated_scores"]["copying"], s["copying"])
  assert float(jnp.abs(out["ablated_scores"]["prefix_matching"][1:]
                       - s["prefix_matching"][1:]).max()) > 0
  vector_cfg = model.TransformerConfig(num_outputs=V, input_dim=5, num_layers=1, num_heads=1,
                                       d_model=8)
  with pytest.raises(ValueError, match="vocab_size"):
    repeated.induction_scores({}, vector_cfg, tokens)


def test_chance_prefix_matching_is_uniform_attention():
  tokens = _tokens(10, batch=4)
  brute = []
  for row in np.asarray(tokens):
    for i in range(T):
      keys = [j for j in range(1, i + 1) if row[j - 1] == row[i]]
      if keys:
        brute.append(len(keys) / (i + 1))
  np.testing.assert_allclose(float(repeated.chance_prefix_matching(tokens)), np.mean(brute),
                             rtol=1e-12)


# ------------------------------------------------------------------------------- the study

def _tiny_config():
  c = config_lib.get_config("quick")
  c.num_steps, c.log_every, c.checkpoint_every = 50, 25, 50
  c.eval_size = 16
  return c


def test_config_variants_and_errors():
  assert config_lib.get_config("").seeds == 2 and config_lib.get_config("quick").seeds == 1
  with pytest.raises(ValueError, match="unknown variant"):
    config_lib.get_config("huge")
  for field, value, match in [("vocab", 8, "vocab"), ("seq_len", 12, "seq_len"),
                              ("min_period", 20, "min_period"), ("positions", "abs", "positions"),
                              ("train_on", "odd", "train_on"), ("num_heads", 3, "num_heads"),
                              ("learning_rate", 0.0, "learning_rate")]:
    c = config_lib.get_config("quick")
    c[field] = value
    with pytest.raises(ValueError, match=match):
      experiment.validate(c)
  c = config_lib.get_config("quick")
  c.unlisted = 1
  with pytest.raises(ValueError, match="unlisted"):
    experiment.validate(c)


def test_study_smoke_writes_every_output(tmp_path):
  workdir = str(tmp_path)
  result = experiment.run(_tiny_config(), workdir)
  for name in ("config.json", "metrics.jsonl", "results.json", "figures/loss.png",
               "figures/prefix_matching.png", "figures/attention.png"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  for run_name in ("layers1_seed0", "layers2_seed0"):
    assert os.listdir(os.path.join(workdir, "checkpoints", run_name))
  with open(os.path.join(workdir, "results.json")) as f:
    saved = json.load(f)
  assert len(saved["comparisons"]) == len(result["comparisons"]) == 18
  assert set(saved["figures"]) == {"loss", "prefix_matching", "attention"}
  # the hand-built rows hold whatever the training budget
  assert all(c.passed for c in result["comparisons"][:5])
  h = result["runs"][(2, 0)]
  chex.assert_shape(h["prefix_matching"], (2, 2, 2))


# ------------------------------------------------------------------------- slow: training

def _check_study(config, workdir):
  result = experiment.run(config, workdir)
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  m = result["measures"]
  assert not failed, (failed, m)
  for s in range(config.seeds):
    two, one = m[(2, s)], m[(1, s)]
    assert two["prefix"] > 0.5 and two["copying"] > 0.0
    assert two["repeat_loss"] < 0.1 * two["first_loss"]
    assert one["prefix"] < two["prefix"] - 0.4
    # the 1-layer model gains something from seen-token heuristics, far less than an induction head
    assert one["repeat_loss"] > 5.0 * two["repeat_loss"] + 1.0
    # phase change: the steepest drop of the repeat loss sits where prefix matching jumps
    assert two["t_jump_low"] <= two["t_loss_drop"] <= two["t_jump_high"] + config.log_every
  return result


@pytest.mark.slow
def test_two_layers_form_an_induction_head_and_one_layer_does_not(tmp_path):
  """The full variant: both seeds, every row."""
  _check_study(config_lib.get_config(""), str(tmp_path))


@pytest.mark.slow
def test_quick_variant_passes_every_row_and_resumes(tmp_path):
  result = _check_study(config_lib.get_config("quick"), str(tmp_path))
  # a second run on the same workdir resumes from the final checkpoints: the same table
  again = experiment.run(config_lib.get_config("quick"), str(tmp_path))
  assert [c.as_dict() for c in again["comparisons"]] == [c.as_dict()
                                                         for c in result["comparisons"]]


@pytest.mark.slow
def test_with_one_fixed_period_a_single_layer_fakes_prefix_matching():
  """Why the study trains on per-sequence periods: with Olsson's fixed-period repeats a 1-layer
  model attends period - 1 positions back, predicts the repeats and scores high on prefix
  matching, with no induction head; on another period it fails."""
  config = config_lib.get_config("quick")
  cfg = experiment.model_config(config, 1)
  period, reps = 8, config.seq_len // 8
  optimizer = optax.adam(config.learning_rate)

  def batch_fn(_, key):
    return data.repeated_tokens(key, config.batch_size, config.vocab, period, reps)

  loss = lambda p, tokens, key: repeated.next_token_loss(p, tokens, cfg, train_on="all")
  init = lambda k: jax.tree.map(lambda x: x.astype(jnp.float32), model.transformer_init(k, cfg))
  states, _ = core.train_population(init, loss, optimizer, jax.random.split(jax.random.key(0), 2),
                                    num_steps=config.num_steps, log_every=config.num_steps,
                                    batch_fn=batch_fn)
  same = data.repeated_tokens(jax.random.key(1), 64, config.vocab, period, reps)
  other = data.repeated_tokens(jax.random.key(2), 64, config.vocab, 6, 6)[:, :config.seq_len]
  for s in range(2):
    params = jax.tree.map(lambda x: x[s], states.params)
    out = _everything(params, cfg, same)
    aux, prefix = out["aux"], float(out["scores"]["prefix_matching"][0].max())
    aux_other = _everything(params, cfg, other)["aux"]
    assert float(aux["repeat_loss"]) < 0.3, float(aux["repeat_loss"])
    assert prefix > 0.5, prefix
    assert float(aux_other["repeat_loss"]) > 1.0, float(aux_other["repeat_loss"])
