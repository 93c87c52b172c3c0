"""HMM filtering and smoothing, jaxlab side by side with dynamax (issue 9).

  bash benchmarks/dynamax_peer.sh [--sizes=5x1000x256,100x1000x16,3x10000x64] [--repeats=5]

dynamax (Linderman et al.; `dynamax.hidden_markov_model.hmm_filter` / `hmm_smoother`) needs
tfp-nightly, so it lives only in the throwaway venv that `benchmarks/dynamax_peer.sh` builds.

For each size M x T x B (states x steps x sequences): a random HMM (`hmm.random_hmm`, 4 symbols),
B sampled sequences, then the forward filter and the forward-backward smoother of both libraries,
each vmapped over the sequences and jitted, with the same inputs (dynamax takes the per-step
log-likelihoods log E[:, y_t], computed once outside the timed call for both). Printed: ms per call
(median of --repeats calls after a compile call, the two libraries timed in turn within each
repeat), the dynamax / jaxlab time ratio, and the largest
difference of the log-likelihoods and of the smoothed marginals (float64, so differences are
rounding). Wall-clock on whatever machine runs this; compare ratios.
"""

from __future__ import annotations

import importlib.metadata
import statistics
import time

from absl import app, flags

_SIZES = flags.DEFINE_list("sizes", ["5x1000x256", "100x1000x16", "3x10000x64"],
                           "States x steps x sequences.")
_REPEATS = flags.DEFINE_integer("repeats", 15, "Timed calls per runner.")
_X64 = flags.DEFINE_bool("x64", True, "float64 (the agreement check) or float32.")


def _interleaved_ms(fns, repeats: int) -> list[float]:
  """Median ms per call of each of `fns`, timed in turn within every repeat so that load from
  other processes falls on all of them alike (after one compile call each)."""
  import jax
  for fn in fns:
    jax.block_until_ready(fn())
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, out in zip(fns, times):
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      out.append(time.perf_counter() - t0)
  return [1e3 * statistics.median(t) for t in times]


def main(argv):
  del argv
  import jax
  jax.config.update("jax_enable_x64", _X64.value)
  import jax.numpy as jnp
  from dynamax.hidden_markov_model import hmm_filter, hmm_smoother

  from jaxlab.hmm_rnn import hmm as hmm_lib

  print(f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}, dynamax "
        f"{importlib.metadata.version('dynamax')}; {'float64' if _X64.value else 'float32'}")
  print(f"{'M x T x B':<14} {'runner':<9} {'jaxlab ms':>10} {'dynamax ms':>11} {'ratio':>7} "
        f"{'max |dlogL|':>12} {'max |dP|':>10}")
  for size in _SIZES.value:
    m, t, b = map(int, size.split("x"))
    hmm = hmm_lib.random_hmm(jax.random.key(m), m, 4)
    _, symbols = hmm_lib.sample(jax.random.key(1), hmm, b, t)
    loglik_BxTxM = jnp.log(hmm.emission).T[symbols]
    ours_filter = jax.jit(jax.vmap(lambda y: hmm_lib.forward_filter(hmm, y)))
    ours_smooth = jax.jit(jax.vmap(lambda y: hmm_lib.smoother(hmm, y)))
    theirs_filter = jax.jit(jax.vmap(lambda ll: hmm_filter(hmm.initial, hmm.transition, ll)))
    theirs_smooth = jax.jit(jax.vmap(lambda ll: hmm_smoother(hmm.initial, hmm.transition, ll)))
    for name, ours, theirs, field in (
        ("filter", lambda: ours_filter(symbols), lambda: theirs_filter(loglik_BxTxM),
         "filtered_probs"),
        ("smoother", lambda: ours_smooth(symbols), lambda: theirs_smooth(loglik_BxTxM),
         "smoothed_probs")):
      a, d = ours(), theirs()
      dlog = float(jnp.max(jnp.abs(a.marginal_loglik - d.marginal_loglik)))
      dprob = float(jnp.max(jnp.abs(getattr(a, field) - getattr(d, field))))
      ours_ms, theirs_ms = _interleaved_ms([ours, theirs], _REPEATS.value)
      print(f"{size:<14} {name:<9} {ours_ms:10.2f} {theirs_ms:11.2f} "
            f"{theirs_ms / ours_ms:6.2f}x {dlog:12.1e} {dprob:10.1e}", flush=True)


if __name__ == "__main__":
  app.run(main)
