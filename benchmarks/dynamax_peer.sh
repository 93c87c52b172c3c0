#!/usr/bin/env bash
# Side-by-side benchmark of jaxlab's HMM filtering and smoothing against dynamax (issue 9).
#
# dynamax needs tfp-nightly, so it is never a dependency of jaxlab: this script builds a throwaway venv
# (default /tmp/jaxlab-dynamax-venv, override with DYNAMAX_VENV) with jaxlab's JAX, dynamax and its
# own dependencies, jaxlab itself (editable, --no-deps) plus what `jaxlab.hmm_rnn.hmm` imports, and
# runs `python -m benchmarks.dynamax_peer`. Re-running reuses the venv.
#
#   bash benchmarks/dynamax_peer.sh [--sizes=5x1000x256] [--repeats=5]   (flags: benchmarks/dynamax_peer.py)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DYNAMAX_VENV:-/tmp/jaxlab-dynamax-venv}"
PYTHON="${PYTHON:-python3}"

# The JAX version jaxlab is developed against: the project's venv if it has one, else 0.10.2.
if [[ -z "${JAX_VERSION:-}" ]]; then
  JAX_VERSION="$("$ROOT/.venv/bin/python" -c 'import jax; print(jax.__version__)' 2>/dev/null \
                 || echo 0.10.2)"
fi
DYNAMAX_VERSION="${DYNAMAX_VERSION:-1.0.3}"

# jaxlab.hmm_rnn/__init__ imports the RNN and the Sinkhorn loss too: optax, ott-jax; jaxlab.core
# needs orbax-checkpoint and absl-py.
DEPS=("jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" "dynamax==$DYNAMAX_VERSION" "optax>=0.2.5"
      "ott-jax>=0.6" "orbax-checkpoint>=0.12" "absl-py>=2.1" "ml-collections>=1.0" "numpy>=1.26")
SPEC="root=$ROOT python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') ${DEPS[*]}"
MARKER="$VENV/.jaxlab-dynamax-spec"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "dynamax_peer: creating the throwaway venv $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
if [[ ! -f "$MARKER" || "$(cat "$MARKER")" != "$SPEC" ]]; then
  echo "dynamax_peer: installing into $VENV (jax $JAX_VERSION, dynamax $DYNAMAX_VERSION)" >&2
  rm -f "$MARKER"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "${DEPS[@]}"
  "$VENV/bin/pip" install --quiet --no-deps -e "$ROOT"
  echo "$SPEC" > "$MARKER"
else
  echo "dynamax_peer: reusing $VENV" >&2
fi

cd "$ROOT"
exec "$VENV/bin/python" -m benchmarks.dynamax_peer "$@"
