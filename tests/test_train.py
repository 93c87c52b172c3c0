"""The engine: a step equals a hand-written optax update, scan equals a Python loop, resume is bitwise,
NaN stops the run at the right step, and bad input fails with a message naming the problem."""

import importlib
import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab import core
from jaxlab.core import metrics
from jaxlab import deep_linear as dl
train_lib = importlib.import_module("jaxlab.core.train")  # the module (core.train is the function)


def _problem(width=6, seed=0):
  task = dl.make_task(jax.random.key(seed), width, width, [2.0, 1.0])
  params = dl.init(jax.random.key(seed + 1), dl.DeepLinearConfig((width, width, width), 0.3))
  return task, params


def test_step_is_one_optax_update_of_the_loss_gradient():
  task, params = _problem()
  optimizer = optax.adam(1e-2)
  state = core.init_train_state(params, optimizer, jax.random.key(3))
  new_state, metrics = core.make_train_step(dl.loss, optimizer)(state, (task.x, task.y))
  grads = jax.grad(lambda p: dl.loss(p, (task.x, task.y))[0])(params)
  updates, _ = optimizer.update(grads, optimizer.init(params), params)
  expected = optax.apply_updates(params, updates)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15),
               new_state.params, expected)
  assert int(new_state.step) == 1
  np.testing.assert_allclose(metrics["loss"], dl.loss(params, (task.x, task.y))[0], rtol=1e-14)


def _mean_loss(params, batch, key):
  """Saxe's loss averaged over examples, with a per-example metric and one random draw as aux."""
  total, aux = dl.loss(params, batch)
  return total / batch[0].shape[0], {**aux, "draw": jax.random.uniform(key)}


@pytest.mark.parametrize("num_microbatches", [2, 3, 6])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_microbatched_step_is_the_full_batch_step(num_microbatches, reduction):
  # Gradient accumulation only reorders the sum over examples: float64 agreement to ~1e-15.
  task, params = _problem()
  loss = _mean_loss if reduction == "mean" else lambda p, b, k: dl.loss(p, b)
  optimizer = optax.adam(1e-2)
  state = core.init_train_state(params, optimizer, jax.random.key(3))
  full_state, full = core.make_train_step(loss, optimizer)(state, (task.x, task.y))
  step = core.make_train_step(loss, optimizer, num_microbatches=num_microbatches,
                              microbatch_reduction=reduction)
  micro_state, micro = jax.jit(step)(state, (task.x, task.y))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14),
               micro_state.params, full_state.params)
  np.testing.assert_allclose(micro["loss"], full["loss"], rtol=1e-13)
  np.testing.assert_allclose(micro["mse"], full["mse"], rtol=1e-13)
  # Not vacuous: one microbatch alone gives a different step.
  alone = core.make_train_step(loss, optimizer)(state, (task.x[::num_microbatches],
                                                        task.y[::num_microbatches]))[0]
  assert not np.allclose(alone.params[0], full_state.params[0], rtol=1e-6)


def test_microbatch_i_draws_from_the_loss_key_folded_with_i():
  task, params = _problem()
  optimizer = optax.sgd(0.1)
  state = core.init_train_state(params, optimizer, jax.random.key(3))
  _, metrics = core.make_train_step(_mean_loss, optimizer, num_microbatches=3)(state,
                                                                                (task.x, task.y))
  loss_key, _ = train_lib.step_keys(state)
  expected = np.mean([jax.random.uniform(jax.random.fold_in(loss_key, i)) for i in range(3)])
  np.testing.assert_allclose(metrics["draw"], expected, rtol=1e-14)


@pytest.mark.parametrize("kwargs, batch, message", [
    (dict(num_microbatches=4), "task", r"must divide the leading \(batch\) axis of every batch "
     r"leaf; leaf \[0\] has shape \(6, 6\)"),
    (dict(num_microbatches=2), None, "needs a batch to split"),
    (dict(num_microbatches=0), "task", "num_microbatches=0: must be an integer >= 1"),
    (dict(num_microbatches=2, microbatch_reduction="max"), "task", "'mean' or 'sum'"),
    (dict(num_microbatches=2, carries_extra=True), "task", "replay buffer"),
])
def test_bad_microbatching_is_rejected_by_name(kwargs, batch, message):
  task, params = _problem()
  optimizer = optax.sgd(0.1)
  state = core.init_train_state(params, optimizer, jax.random.key(3))
  with pytest.raises(ValueError, match=message):
    step = core.make_train_step(lambda p, b, k: dl.loss(p, b), optimizer, **kwargs)
    step(state, (task.x, task.y) if batch == "task" else batch)


def test_scan_matches_a_python_loop_of_steps_and_averages_each_interval():
  task, params = _problem()
  optimizer = optax.sgd(0.05)
  step = core.make_train_step(dl.loss, optimizer)
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  final, history = jax.jit(lambda s: core.scan_train(step, s, (task.x, task.y), num_steps=40,
                                                     log_every=10))(state)
  jitted, losses = jax.jit(step), []
  for _ in range(40):
    state, metrics = jitted(state, (task.x, task.y))
    losses.append(float(metrics["loss"]))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), final.params, state.params)
  np.testing.assert_array_equal(history["step"], [10, 20, 30, 40])
  np.testing.assert_allclose(history["loss"], np.mean(np.reshape(losses, (4, 10)), axis=1),
                             rtol=1e-12)
  np.testing.assert_array_equal(history["first_nonfinite"], -1)


def test_batch_fn_gets_a_fresh_data_key_each_step():

  def loss(params, batch, key):
    return jnp.sum((params - batch) ** 2), {}

  batch_fn = lambda data, key: jax.random.normal(key, (3,))
  optimizer = optax.sgd(0.0)
  step = core.make_train_step(loss, optimizer)
  state = core.init_train_state(jnp.zeros(3), optimizer, jax.random.key(0))
  _, history = core.scan_train(step, state, None, num_steps=2, log_every=1, batch_fn=batch_fn)
  assert history["loss"][0] != history["loss"][1]


def _run(workdir, num_steps, **kwargs):
  task, params = _problem()
  optimizer = optax.adam(1e-2)
  state = core.init_train_state(params, optimizer, jax.random.key(7))
  return core.train(core.make_train_step(dl.loss, optimizer), state, (task.x, task.y),
                    num_steps=num_steps, log_every=10, checkpoint_every=50, workdir=workdir,
                    progress=False, **kwargs)


def test_resume_continues_from_the_checkpoint_and_matches_an_uninterrupted_run_bitwise(tmp_path):
  full = _run(str(tmp_path / "full"), 200)
  _run(str(tmp_path / "split"), 100)
  resumed = _run(str(tmp_path / "split"), 200)
  jax.tree.map(np.testing.assert_array_equal, full.state.params, resumed.state.params)
  jax.tree.map(np.testing.assert_array_equal, full.state.opt_state, resumed.state.opt_state)
  assert full.history == resumed.history and len(full.history) == 20
  assert sorted(os.listdir(tmp_path / "split" / "checkpoints" / "train")) == ["100", "150", "200"]


def test_every_kept_checkpoint_restores_as_a_snapshot_of_training(tmp_path):
  full = _run(str(tmp_path / "full"), 100)
  kept = _run(str(tmp_path / "kept"), 200, keep_checkpoints=5)
  ckpt = core.Checkpointer(tmp_path / "kept" / "checkpoints" / "train", every=1)
  try:
    assert ckpt.steps() == [50, 100, 150, 200]
    # the snapshot at step 100 is the state a 100-step run ends in
    jax.tree.map(np.testing.assert_array_equal, ckpt.restore(100, kept.state).params,
                 full.state.params)
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at step 120 .*kept: \[50, 100, 150, 200\]"):
      ckpt.restore(120, kept.state)
  finally:
    ckpt.close()


def test_metrics_jsonl_has_one_row_per_log_interval_with_run_tag(tmp_path):
  _run(str(tmp_path), 100)
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == list(range(10, 101, 10))
  assert all(r["run"] == "train" and np.isfinite(r["loss"]) for r in rows)


def test_a_checkpoint_of_a_different_model_is_refused_by_name(tmp_path):
  _run(str(tmp_path), 50)
  task = dl.make_task(jax.random.key(0), 6, 6, [2.0, 1.0])
  params = dl.init(jax.random.key(1), dl.DeepLinearConfig((6, 9, 6), 0.3))  # wider hidden layer
  optimizer = optax.adam(1e-2)
  state = core.init_train_state(params, optimizer, jax.random.key(7))
  with pytest.raises(core.CheckpointMismatchError, match=r"params\.0: checkpoint has float64\[6, 6\], "
                     r"this model needs float64\[9, 6\]"):
    core.train(core.make_train_step(dl.loss, optimizer), state, (task.x, task.y), num_steps=100,
               log_every=10, checkpoint_every=50, workdir=str(tmp_path), progress=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_steps=0), "num_steps must be a positive integer, got 0"),
    (dict(num_steps=-5), "num_steps must be a positive integer"),
    (dict(num_steps=25), "num_steps=25 must be a multiple of log_every=10"),
    (dict(num_steps=100, checkpoint_every=35), "checkpoint_every=35 must be a multiple of "
     "log_every=10"),
    (dict(num_steps=100, checkpoint_every=40, steps_per_chunk=30), "steps_per_chunk=30 must be"),
])
def test_bad_step_counts_are_rejected(tmp_path, kwargs, message):
  task, params = _problem()
  optimizer = optax.sgd(0.1)
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  with pytest.raises(ValueError, match=message):
    core.train(core.make_train_step(dl.loss, optimizer), state, (task.x, task.y), log_every=10,
               progress=False, **kwargs)


def _counting_run(workdir, blowup_step):
  """Parameter t counts steps (+1 each), loss log(blowup_step - t) is first -inf at `blowup_step`."""
  loss = lambda p, batch, key: (jnp.log(blowup_step - p), {})
  optimizer = optax.stateless(lambda g, p: jax.tree.map(jnp.ones_like, g))
  state = core.init_train_state(jnp.zeros(()), optimizer, jax.random.key(0))
  return core.train(core.make_train_step(loss, optimizer), state, None, num_steps=300,
                    log_every=10, checkpoint_every=50, workdir=workdir, progress=False)


def test_non_finite_loss_stops_at_the_exact_step_and_keeps_the_last_good_checkpoint(tmp_path):
  with pytest.raises(core.NonFiniteLossError, match=r"non-finite at step 137 .*last good checkpoint "
                     r"is step 100"):
    _counting_run(str(tmp_path), 137)
  assert sorted(os.listdir(tmp_path / "checkpoints" / "train")) == ["100", "50"]
  rows = core.read_metrics(tmp_path / "metrics.jsonl")
  assert rows[-1]["step"] == 130  # the interval holding step 137 is not logged


def test_set_hyperparams_changes_the_injected_learning_rate():
  optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=1.0)
  state = core.set_hyperparams(optimizer.init(jnp.zeros(2)), learning_rate=0.25)
  updates, _ = optimizer.update(jnp.ones(2), state)
  np.testing.assert_array_equal(updates, -0.25)
  with pytest.raises(ValueError, match="unknown hyperparameter 'lr'"):
    core.set_hyperparams(state, lr=0.1)
  with pytest.raises(ValueError, match="inject_hyperparams"):
    core.set_hyperparams(optax.sgd(0.1).init(jnp.zeros(2)), learning_rate=0.1)


def test_progress_reports_rate_loss_and_eta_on_a_plain_stream():
  stream = io.StringIO()
  progress = core.Progress(stream=stream, every_s=0.0)
  progress.start(0, 100)
  progress.update(50, {"loss": 0.5})
  progress.finish(100)
  out = stream.getvalue()
  assert "step 50/100" in out and "steps/s" in out and "loss 0.5" in out and "ETA" in out
  assert "done at step 100" in out


@pytest.mark.parametrize("steps_per_s, shown", [(23456.7, "23,457 steps/s"), (3.214, "3.21 steps/s"),
                                                (0.4878, "2.05 s/step"), (0.0, "? steps/s")])
def test_progress_rate_keeps_three_figures_and_turns_slow_steps_into_seconds(steps_per_s, shown):
  assert metrics._rate(steps_per_s) == shown


def test_metric_writer_keeps_non_finite_values_and_truncates_only_its_own_rows(tmp_path):
  path = tmp_path / "m.jsonl"
  a, b = core.MetricWriter(path, {"run": "a"}), core.MetricWriter(path, {"run": "b"})
  a.write_rows([{"step": 1, "loss": float("nan")}, {"step": 2, "loss": 1.0}])
  b.write_rows([{"step": 2, "loss": 3.0}])
  a.truncate_after(1)
  a.close(), b.close()
  assert [r["step"] for r in core.read_metrics(path, run="a")] == [1]
  assert core.read_metrics(path, run="a")[0]["loss"] == "nan"
  assert [r["step"] for r in core.read_metrics(path, run="b")] == [2]


def test_a_relative_workdir_works(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  _run("relative/workdir", 100)
  assert sorted(os.listdir(tmp_path / "relative/workdir/checkpoints/train")) == ["100", "50"]


def test_a_run_that_died_before_its_first_checkpoint_does_not_duplicate_rows(tmp_path):
  writer = core.MetricWriter(tmp_path / "metrics.jsonl", {"run": "train"})
  writer.write_rows([{"step": 10, "loss": 1.0}, {"step": 20, "loss": 1.0}])  # left by a dead run
  writer.close()
  _run(str(tmp_path), 50)
  steps = [r["step"] for r in core.read_metrics(tmp_path / "metrics.jsonl", run="train")]
  assert steps == [10, 20, 30, 40, 50]


def test_metric_writer_clear_drops_only_its_rows(tmp_path):
  path = tmp_path / "m.jsonl"
  mine, other = core.MetricWriter(path, {"study": "a"}), core.MetricWriter(path, {"study": "b"})
  mine.write_rows([{"x": 1}]), other.write_rows([{"x": 2}])
  mine.clear()
  mine.close(), other.close()
  assert core.read_metrics(path, study="a") == [] and len(core.read_metrics(path, study="b")) == 1


def test_extra_state_is_carried_by_the_step_and_survives_a_resume(tmp_path):
  """`TrainState.extra` (e.g. a replay buffer): updated by the loss, never differentiated,
  checkpointed, and a resumed run equals an uninterrupted one."""
  task, params = _problem()
  opt = optax.sgd(0.05)

  def loss(p, batch, key, extra):
    value = dl.loss(p, batch, key)[0]
    return value, ({}, {"calls": extra["calls"] + 1, "last_loss": value})

  step = core.make_train_step(loss, opt, carries_extra=True)
  extra = {"calls": jnp.zeros((), jnp.int32), "last_loss": jnp.zeros(())}

  def run(workdir, num_steps):
    state = core.init_train_state(params, opt, jax.random.key(0), extra=extra)
    return core.train(step, state, (task.x, task.y), num_steps=num_steps, log_every=10,
                      checkpoint_every=20, workdir=workdir, progress=False)

  full = run(str(tmp_path / "full"), 40)
  assert int(full.state.extra["calls"]) == 40
  np.testing.assert_allclose(full.state.extra["last_loss"], full.history[-1]["loss"], rtol=0.5)
  run(str(tmp_path / "split"), 20)
  resumed = run(str(tmp_path / "split"), 40)
  jax.tree.map(np.testing.assert_array_equal, full.state.extra, resumed.state.extra)
  jax.tree.map(np.testing.assert_array_equal, full.state.params, resumed.state.params)


def test_training_traces_the_loss_once_across_chunks_calls_and_seeds(tmp_path):
  """No recompiles: every chunk of a run, a resumed run and a second seed reuse one compiled chunk
  (the loss is traced once: jit's trace counts, via a side effect that runs at trace time only)."""
  task, _ = _problem()
  traces = []

  def loss(params, batch, key):
    traces.append(1)
    return dl.loss(params, batch, key)

  optimizer = optax.sgd(0.05)
  step = core.make_train_step(loss, optimizer)
  run = lambda seed, steps, workdir=None: core.train(
      step, core.init_train_state(_problem(seed=seed)[1], optimizer, jax.random.key(seed)),
      (task.x, task.y), num_steps=steps, log_every=5, steps_per_chunk=10, checkpoint_every=20,
      workdir=workdir, progress=False)
  run(0, 40)  # four chunks
  run(1, 40)  # another seed
  run(2, 20, str(tmp_path))
  run(2, 40, str(tmp_path))  # resumed from step 20
  assert len(traces) == 1


def test_donated_chunks_leave_the_callers_state_valid_and_change_no_number(tmp_path):
  task, params = _problem()
  optimizer = optax.adam(1e-2)
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  step = core.make_train_step(dl.loss, optimizer)
  run = lambda donate, workdir=None, steps=40: core.train(
      step, state, (task.x, task.y), num_steps=steps, log_every=10, steps_per_chunk=20,
      workdir=workdir, checkpoint_every=20, progress=False, donate_state=donate)
  donated, kept = run(True), run(False)
  assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(state))
  jax.tree.map(np.testing.assert_array_equal, donated.state.params, kept.state.params)
  assert donated.history == kept.history
  run(True, str(tmp_path), steps=20)
  resumed = run(True, str(tmp_path))  # donates the restored state's buffers
  jax.tree.map(np.testing.assert_array_equal, resumed.state.params, kept.state.params)
  # The compiled chunk writes its output state into the donated input buffers.
  chunk = train_lib._chunk_runner(step, 10, None, None, (0,))
  hlo = chunk.lower(state, (task.x, task.y), 20).as_text()
  assert hlo.count("tf.aliasing_output") == len(jax.tree.leaves(state))
