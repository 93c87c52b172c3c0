"""The HMM-emulation loss's Sinkhorn divergence against ott-jax's default solve (issue 9).

  python -m benchmarks.sinkhorn [--batches=256,512,1024] [--length=50] [--repeats=3]

The loss's solver is not ours: `jaxlab.hmm_rnn.emulation.sinkhorn_divergence` calls ott-jax's
`sinkhorn_divergence` with geomloss-style eps annealing (from 10 down to blur^2 = 0.04, decay 0.9), a
fixed budget of 200 iterations and Danskin gradients (potentials held fixed). This measures what that
configuration costs and how far its value is from ott's default solve at the same target eps
(no annealing, implicit differentiation, up to 2000 iterations, threshold 1e-3): value and gradient
w.r.t. the first cloud, between two batches of 2-state-chain HMM sequences (the loss's use), float32.
Printed: ms per value-and-gradient call (median), the default / jaxlab time ratio, and the relative
difference of the values. Wall-clock on whatever machine runs this; compare ratios.
(`emulation.geomloss_divergence`, geomloss's unconverged ~10-iteration estimate, exists only to
score and train on the paper's own scale; it is not benchmarked here.)
"""

from __future__ import annotations

from absl import app, flags

from benchmarks.steps import median_seconds

_BATCHES = flags.DEFINE_list("batches", ["256", "512", "1024"], "Sequences per cloud.")
_LENGTH = flags.DEFINE_integer("length", 50, "Symbols per sequence (the study's T).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed calls per runner.")



def main(argv):
  del argv
  import jax
  import jax.numpy as jnp
  from ott.geometry import pointcloud
  from ott.tools import sinkhorn_divergence as ott_divergence

  from jaxlab.hmm_rnn import emulation, hmm

  config = emulation.SinkhornConfig()

  def ott_default(x, y):
    with jax.numpy_rank_promotion("allow"):
      value, _ = ott_divergence.sinkhorn_divergence(
          pointcloud.PointCloud, x, y, epsilon=2 * config.blur ** 2,
          solve_kwargs={"threshold": config.threshold, "max_iterations": 2000})
    return value / 2

  chain = hmm.linear_chain(2)
  print(f"device: {jax.devices()[0].device_kind}; sequences of {_LENGTH.value} symbols, "
        f"{chain.num_symbols} symbols, float32")
  print(f"{'batch':>6} {'jaxlab ms':>10} {'ott default ms':>15} {'ratio':>7} {'jaxlab value':>13} "
        f"{'default value':>14} {'rel diff':>9}")
  for b in map(int, _BATCHES.value):
    _, sa = hmm.sample(jax.random.key(0), chain, b, _LENGTH.value)
    _, sb = hmm.sample(jax.random.key(1), chain, b, _LENGTH.value)
    x, y = (emulation.flatten(hmm.one_hot(s, chain.num_symbols)).astype(jnp.float32)
            for s in (sa, sb))
    ours = jax.jit(jax.value_and_grad(lambda x, y: emulation.sinkhorn_divergence(x, y, config)))
    theirs = jax.jit(jax.value_and_grad(ott_default))
    v_ours, v_theirs = float(ours(x, y)[0]), float(theirs(x, y)[0])
    ms_ours = 1e3 * median_seconds(lambda: ours(x, y), _REPEATS.value)
    ms_theirs = 1e3 * median_seconds(lambda: theirs(x, y), _REPEATS.value)
    print(f"{b:6d} {ms_ours:10.1f} {ms_theirs:15.1f} {ms_theirs / ms_ours:6.2f}x {v_ours:13.4f} "
          f"{v_theirs:14.4f} {abs(v_ours - v_theirs) / abs(v_theirs):9.2%}", flush=True)


if __name__ == "__main__":
  app.run(main)
