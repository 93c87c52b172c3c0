"""The HMM-emulating RNN: its straight-through emissions, the Sinkhorn loss (exact cases, floor and
control), emission statistics on hand-made sequences, and the experiment end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.hmm_emulation import config as config_lib
from experiments.hmm_emulation import experiment
from jaxlab import core
from jaxlab.hmm_rnn import emulation
from jaxlab.hmm_rnn import hmm as hmm_lib
from jaxlab.hmm_rnn import model
from jaxlab.hmm_rnn import statistics


def test_straight_through_sample_is_one_hot_with_the_softmax_gradient():
  logits = jnp.array([[0.3, -1.0, 2.0], [1.0, 1.0, 1.0]])
  key = jax.random.key(0)
  sample = model.straight_through_gumbel(key, logits)
  np.testing.assert_array_equal(jnp.sum(sample, -1), 1.0)
  assert set(np.unique(np.asarray(sample))) <= {0.0, 1.0}
  weights = jnp.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
  gumbel = jax.random.gumbel(key, logits.shape, logits.dtype)
  straight = jax.grad(lambda l: jnp.sum(weights * model.straight_through_gumbel(key, l)))(logits)
  soft = jax.grad(lambda l: jnp.sum(weights * jax.nn.softmax(l + gumbel, axis=-1)))(logits)
  np.testing.assert_allclose(straight, soft, atol=1e-12)


def test_emissions_start_from_zero_and_scale_with_the_noise():
  params = model.init(jax.random.key(1), 16, 4, 3)
  key = jax.random.key(2)
  small = model.emit(params, key, 5, 20, noise_std=1.0)
  large = model.emit(params, key, 5, 20, noise_std=3.0)
  # bias-free ReLU: hidden states are positively homogeneous in the input from h_0 = 0
  np.testing.assert_allclose(large.hidden, 3.0 * small.hidden, rtol=1e-12, atol=1e-12)
  random_start = model.emit(params, key, 5, 20, noise_std=3.0, initial_state_std=1.0)
  assert float(jnp.max(jnp.abs(random_start.hidden - large.hidden))) > 1e-3
  with pytest.raises(ValueError, match=r"inputs must be \[batch, time, 4\]"):
    model.run(params, jnp.ones((2, 3, 5)))


def test_sinkhorn_divergence_exact_cases():
  divergence = jax.jit(emulation.sinkhorn_divergence)  # one compile per shape, not op by op
  x = jnp.array([[0.0, 1.0, 2.0]])
  y = jnp.array([[1.0, -1.0, 2.0]])
  # one point each: every plan is the product plan, so S = c(x, y) = |x - y|^2 / 2 = 2.5
  np.testing.assert_allclose(divergence(x, y), 2.5, rtol=1e-6)
  cloud = jax.random.normal(jax.random.key(3), (40, 6))
  assert abs(float(divergence(cloud, cloud))) < 1e-6
  permuted = cloud[jax.random.permutation(jax.random.key(4), 40)]
  assert abs(float(divergence(cloud, permuted))) < 1e-6
  other = cloud + jnp.array([1.0, 0, 0, 0, 0, 0])[None, :]
  # a rigid shift by v costs |v|^2 / 2 for the debiased divergence up to O(eps) terms
  np.testing.assert_allclose(divergence(cloud, other), 0.5, rtol=0.05)
  with pytest.raises(ValueError, match="equal dim"):
    emulation.sinkhorn_divergence(cloud, other[:, :5])


def test_noise_floor_lies_below_the_time_shuffled_control():
  floor = emulation.noise_floor(jax.random.key(5), hmm_lib.by_name("two"), 128, 20, repeats=4)
  # shuffling keeps every sequence's symbol counts but destroys runs: far above the floor
  assert floor.shuffled_mean > floor.noise_floor_mean + 5 * floor.noise_floor_std  # 9 s.d. here
  assert floor.shuffled_mean > 1.5 * floor.noise_floor_mean


def test_divergence_between_hmms_resolves_large_differences_only():
  two = hmm_lib.by_name("two")
  key = jax.random.key(6)
  floor = emulation.noise_floor(key, two, 128, 20, repeats=4)
  same = emulation.divergence_between(key, two, two, 128, 20, repeats=4)
  # the same HMM against itself is the floor (other draws, so within its spread)
  assert abs(same[0] - floor.noise_floor_mean) < 3 * floor.noise_floor_std + 3 * same[1]
  # a chain that switches 5x as often is far off
  fast = emulation.divergence_between(key, two, hmm_lib.scale_switching(two, 5.0), 128, 20, 4)
  assert fast[0] > floor.noise_floor_mean + 5 * floor.noise_floor_std
  with pytest.raises(ValueError, match="emit 2 and 3 symbols"):
    emulation.divergence_between(key, two, hmm_lib.make([1.0], [[1.0]], [[0.5, 0.5]]), 8, 4)


def test_emission_statistics_on_a_hand_made_batch():
  symbols = jnp.array([[0, 0, 2, 2, 2], [1, 0, 0, 0, 0]])
  np.testing.assert_array_equal(statistics.changes_per_sequence(symbols), [1, 1])
  np.testing.assert_allclose(statistics.symbol_frequencies(symbols, 3), [0.6, 0.1, 0.3])
  bigrams = statistics.bigram_frequencies(symbols, 3)  # 8 pairs: 00 x4, 02, 22 x2, 10
  np.testing.assert_allclose(bigrams, np.array([[4, 0, 1], [1, 0, 0], [0, 0, 2]]) / 8)
  repeats = np.asarray(statistics.repeat_probabilities(symbols, 3))
  np.testing.assert_allclose(repeats[[0, 2]], [0.8, 1.0])
  onehot = jax.nn.one_hot(symbols, 3)
  np.testing.assert_array_equal(statistics.changes_per_sequence(onehot), [1, 1])


def _tiny_config():
  config = config_lib.get_config("quick")
  config.update(hidden_size=16, batch_size=64, length=10, num_steps=20, log_every=10,
                checkpoint_every=20, floor_repeats=2, eval_batches=2, stats_sequences=200,
                analysis_length=300, fixed_point_steps=200, population_size=5)
  return config


def test_experiment_smoke_run_writes_every_output_and_trains_in_two_stages(tmp_path):
  config = _tiny_config()
  config.update(large_batch_size=128, large_batch_steps=20)
  result = experiment.run(config, str(tmp_path))
  names = [c.quantity for c in result["comparisons"]]
  assert any("noise floor" in n for n in names) and any("fixed points" in n for n in names)
  for figure in ("emulation_two", "mechanism_two", "evolution_two"):
    assert (tmp_path / "figures" / f"{figure}.png").stat().st_size > 0
  study = result["studies"]["two"]
  assert np.all(np.isfinite(study["loss"]))
  homogeneity = [c for c in result["comparisons"] if "homogeneity" in c.quantity][0]
  assert homogeneity.passed  # an exact identity, trained or not
  # The larger-batch stage continues from the first, and the network is judged at its batch.
  np.testing.assert_array_equal(study["steps"], [10, 20, 30, 40])
  assert list(study["floors"]) == [128, 64] and study["floor"] is study["floors"][128]
  template = core.init_train_state(study["params"], experiment.make_optimizer(config),
                                   jax.random.key(0))

  def params(run, step):
    checkpointer = core.Checkpointer(tmp_path / "checkpoints" / run, every=1)
    try:
      return checkpointer.restore(step, template).params
    finally:
      checkpointer.close()

  first, second = params("rnn_two", 20), params("rnn_two_large_batch", 20)
  jax.tree.map(np.testing.assert_array_equal, second, study["params"])
  assert not np.allclose(first["w_hh"], second["w_hh"])
  np.testing.assert_array_equal(study["evolution"]["steps"], [0, 20])  # the first stage's snapshots


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(hmms=("two", "seven")), "seven"),
    (lambda c: c.update(large_batch_steps=15), "large_batch_steps=15 must be >= 0 and a multiple"),
    (lambda c: c.update(batch_size=0), "config.batch_size must be positive"),
    (lambda c: c.update(floor_repeats=1), "must be >= 2"),
])
def test_bad_config_is_named(tmp_path, change, message):
  config = _tiny_config()
  change(config)
  with pytest.raises(ValueError, match=message):
    experiment.run(config, str(tmp_path))


@pytest.mark.slow
def test_quick_variant_reaches_the_floor_and_the_hmm_statistics(tmp_path):
  config = config_lib.get_config("quick")
  with jax.enable_x64(config.x64):  # the config's precision (float32), as `make demo` runs it
    result = experiment.run(config, str(tmp_path))
  failed = [c.as_dict() for c in result["comparisons"] if not c.passed]
  assert not failed, failed
