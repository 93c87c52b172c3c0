#!/usr/bin/env bash
# Side-by-side benchmark of jaxlab's predictive-coding MLP training against pcx (issue 6).
#
# pcx 0.6.3 pins jax<0.5, so it is never a dependency of jaxlab: this script builds a throwaway venv
# (default /tmp/jaxlab-pcx-venv, override with PCX_VENV) with jaxlab's JAX version, installs pcx there
# with --no-deps, installs jaxlab itself (editable, --no-deps) plus only the packages that
# `jaxlab.core` and `jaxlab.predictive_coding` import, and runs `python -m benchmarks.pcx_peer`.
# Re-running reuses the venv (the installs are skipped while the recorded spec is unchanged).
#
#   bash benchmarks/pcx_peer.sh [--epochs=20] [--seeds=3] ...   (flags go to benchmarks/pcx_peer.py)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${PCX_VENV:-/tmp/jaxlab-pcx-venv}"
PYTHON="${PYTHON:-python3}"

# The JAX version jaxlab is developed against: the project's venv if it has one, else 0.10.2.
if [[ -z "${JAX_VERSION:-}" ]]; then
  JAX_VERSION="$("$ROOT/.venv/bin/python" -c 'import jax; print(jax.__version__)' 2>/dev/null \
                 || echo 0.10.2)"
fi
PCX_VERSION="${PCX_VERSION:-0.6.3}"

# What jaxlab's imported modules need: jax/optax (everywhere), orbax-checkpoint and absl-py
# (jaxlab.core imports its checkpoint module), numpy; scikit-learn for the digits data; equinox
# (and the jaxtyping it brings) for pcx. ml_collections, matplotlib, flax, numpyro are not imported.
DEPS=("jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" "optax>=0.2.5" "equinox" "orbax-checkpoint>=0.12"
      "absl-py>=2.1" "numpy>=1.26" "scikit-learn")
SPEC="root=$ROOT python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') pcx=$PCX_VERSION ${DEPS[*]}"
MARKER="$VENV/.jaxlab-pcx-spec"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "pcx_peer: creating the throwaway venv $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
if [[ ! -f "$MARKER" || "$(cat "$MARKER")" != "$SPEC" ]]; then
  echo "pcx_peer: installing into $VENV (jax $JAX_VERSION, pcx $PCX_VERSION --no-deps)" >&2
  rm -f "$MARKER"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "${DEPS[@]}"
  # pcx's own metadata asks for jax<0.5, equinox<0.12: skip its resolver, keep the JAX above.
  "$VENV/bin/pip" install --quiet --no-deps "pcx==$PCX_VERSION"
  "$VENV/bin/pip" install --quiet --no-deps -e "$ROOT"
  echo "$SPEC" > "$MARKER"
else
  echo "pcx_peer: reusing $VENV" >&2
fi

cd "$ROOT"
exec "$VENV/bin/python" -m benchmarks.pcx_peer "$@"
