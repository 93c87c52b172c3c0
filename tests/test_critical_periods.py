"""Kleinman et al. 2024 critical periods: the two-pathway network against the exact per-mode
recursion and the flow ODE, the post-deficit invariants, winner-takes-more with depth, and the
deficit as an optax transform."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.critical_periods import config as config_lib
from experiments.critical_periods import experiment
from jaxlab import core
from jaxlab import deep_linear as dl
from jaxlab.lazy_rich import critical_periods as cp
from theory.lazy_rich import kleinman as theory

S = jnp.array([4.0, 2.0, 1.0, 0.5])
ETA, P0, STEPS, DEFICIT = 1e-3, 0.1, 4000, 500


@pytest.fixture(scope="module")
def task():
  return dl.make_task(jax.random.key(0), 4, 4, S)


def _simulate(task, depth, deficit_start, steps=STEPS):
  params = cp.init_pathways(task.U, task.V, jnp.full(4, P0), jnp.full(4, P0), depth, 4,
                            key=jax.random.key(depth))
  frozen = {"a": [False] * depth, "b": [True] * depth}
  optimizer = optax.chain(optax.sgd(ETA), cp.freeze_during(deficit_start, DEFICIT, frozen))
  state = core.init_train_state(params, optimizer, jax.random.key(0))
  _, history = jax.jit(lambda st: core.scan_train(
      core.make_train_step(cp.loss, optimizer), st, (task.x, task.y), num_steps=steps,
      log_every=100, eval_fn=lambda p, d: cp.mode_strengths(p, task.U, task.V, 4)))(state)
  return np.asarray(history["step"]), np.asarray(history["K_a"]), np.asarray(history["K_b"])


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_full_matrices_follow_the_per_mode_recursion_exactly_and_the_flow_closely(task, depth):
  steps, k_a, k_b = _simulate(task, depth, 0)
  _, map_a, map_b = theory.pathway_gd(S, P0, P0, learning_rate=ETA, depth=depth, num_steps=STEPS,
                                      deficit_start=0, deficit_length=DEFICIT, save_every=100)
  np.testing.assert_allclose(k_a, map_a, atol=1e-12)
  np.testing.assert_allclose(k_b, map_b, atol=1e-12)
  _, flow_a, flow_b = theory.pathway_flow(S, P0 ** depth, P0 ** depth, learning_rate=ETA,
                                          depth=depth, duration=float(STEPS), deficit_start=0.0,
                                          deficit_length=float(DEFICIT), num_saves=len(steps))
  assert max(np.abs(k_a - flow_a).max(), np.abs(k_b - flow_b).max()) < 0.02 * float(S[0])
  # Negative control: the recursion without the deficit is far from the simulation.
  _, free_a, _ = theory.pathway_gd(S, P0, P0, learning_rate=ETA, depth=depth, num_steps=STEPS,
                                   deficit_start=0, deficit_length=0, save_every=100)
  assert np.abs(k_a - free_a).max() > 0.1


def test_post_deficit_invariants_difference_ratio_and_winner_takes_more(task):
  after = lambda steps: steps >= DEFICIT
  steps, k_a, k_b = _simulate(task, 1, 0)
  gap = (k_a - k_b)[after(steps)]
  np.testing.assert_allclose(gap, np.broadcast_to(gap[0], gap.shape), rtol=1e-10, atol=1e-13)
  steps, k_a, k_b = _simulate(task, 2, 0)
  ratio = (k_a / k_b)[after(steps)]
  np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0], ratio.shape), rtol=1e-10)
  steps, k_a, k_b = _simulate(task, 3, 0)
  ratio = (k_a / k_b)[after(steps)]
  assert ratio[-1, 0] / ratio[0, 0] > 10.0  # measured ~37x
  # The flow's rate formula has the sign of K_a - K_b (and vanishes at depth 2).
  assert float(theory.log_ratio_rate(2.0, 1.0, 4.0, 3, ETA)) > 0
  assert float(theory.log_ratio_rate(2.0, 1.0, 4.0, 2, ETA)) == 0.0


def test_early_deficit_share_falls_with_depth_and_a_late_one_does_nothing(task):
  shares = []
  for depth in (1, 2, 3):
    _, k_a, k_b = _simulate(task, depth, 0, steps=8000)
    shares.append(k_b[-1, 0] / (k_a[-1, 0] + k_b[-1, 0]))
    _, late_a, late_b = _simulate(task, depth, 6000, steps=8000)
    np.testing.assert_allclose(late_b[-1, 0] / (late_a[-1, 0] + late_b[-1, 0]), 0.5, atol=1e-3)
  assert shares[0] > shares[1] > shares[2]
  for depth, share in zip((1, 2, 3), shares):
    _, map_a, map_b = theory.pathway_gd(S, P0, P0, learning_rate=ETA, depth=depth, num_steps=8000,
                                        deficit_start=0, deficit_length=DEFICIT, save_every=8000)
    np.testing.assert_allclose(share, map_b[-1, 0] / (map_a[-1, 0] + map_b[-1, 0]), rtol=1e-10)


def test_freeze_during_zeroes_only_the_marked_leaves_inside_the_window():
  transform = cp.freeze_during(2, 3, {"x": True, "y": False})
  state = transform.init(None)
  seen = []
  for _ in range(6):
    updates, state = transform.update({"x": jnp.ones(2), "y": jnp.ones(2)}, state)
    seen.append((float(updates["x"][0]), float(updates["y"][0])))
  assert seen == [(1, 1), (1, 1), (0, 1), (0, 1), (0, 1), (1, 1)]


def test_experiment_runs_end_to_end_on_a_small_completion_problem(tmp_path):
  config = config_lib.get_config("quick")
  config.depths = (1, 2)
  config.num_steps = 5000
  config.late_deficit_start = 4000
  config.checkpoint_every = 1000
  c = config.completion
  c.size, c.rank, c.deficit_rank, c.observed = 20, 2, 4, 150
  c.depths, c.deficit_steps, c.target_steps = (1,), (0, 200), 500
  result = experiment.run(config, str(tmp_path))
  pathway_rows = [r for r in result["comparisons"] if not r.quantity.startswith("completion")]
  failed = [r.as_dict() for r in pathway_rows if not r.passed]
  assert not failed, failed
  assert (tmp_path / "figures" / "pathways.png").exists()
  assert (tmp_path / "checkpoints" / "pathways_D2_deficit0").exists()


@pytest.mark.slow
def test_quick_variant_including_matrix_completion_passes(tmp_path):
  result = experiment.run(config_lib.get_config("quick"), str(tmp_path))
  failed = [r.as_dict() for r in result["comparisons"] if not r.passed]
  assert not failed, failed
