#!/usr/bin/env bash
# Side-by-side benchmark of jaxlab's HMM filtering and smoothing against dynamax (issue 9).
#
# dynamax needs tfp-nightly, so it is never a dependency of jaxlab: this script builds a throwaway venv
# (default /tmp/jaxlab-dynamax-venv, override with DYNAMAX_VENV) with jaxlab's JAX, dynamax and its
# own dependencies, jaxlab itself (editable, --no-deps) plus what `jaxlab.hmm_rnn.hmm` imports, and
# runs `python -m benchmarks.dynamax_peer`. Re-running reuses the venv.
#
#   bash benchmarks/dynamax_peer.sh [--sizes=5x1000x256] [--repeats=15]   (flags: benchmarks/dynamax_peer.py)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/peer_venv.sh"

VENV="${DYNAMAX_VENV:-/tmp/jaxlab-dynamax-venv}"
DYNAMAX_VERSION="${DYNAMAX_VERSION:-1.0.3}"

# jaxlab.hmm_rnn/__init__ imports the RNN and the Sinkhorn loss too: optax, ott-jax; jaxlab.core
# needs orbax-checkpoint and absl-py.
ensure_peer_venv dynamax "$VENV" "" -- "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" \
  "dynamax==$DYNAMAX_VERSION" "optax>=0.2.5" "ott-jax>=0.6" "orbax-checkpoint>=0.12" \
  "absl-py>=2.1" "ml-collections>=1.0" "numpy>=1.26"

cd "$ROOT"
exec "$VENV/bin/python" -m benchmarks.dynamax_peer "$@"
