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
source "$(dirname "${BASH_SOURCE[0]}")/peer_venv.sh"

VENV="${PCX_VENV:-/tmp/jaxlab-pcx-venv}"
PCX_VERSION="${PCX_VERSION:-0.6.3}"

# What jaxlab's imported modules need: jax/optax (everywhere), orbax-checkpoint and absl-py
# (jaxlab.core imports its checkpoint module), numpy; scikit-learn for the digits data; equinox
# (and the jaxtyping it brings) for pcx. ml_collections, matplotlib, flax, numpyro are not imported.
# pcx's own metadata asks for jax<0.5, equinox<0.12: it goes in without its resolver.
ensure_peer_venv pcx "$VENV" "pcx=$PCX_VERSION " -- "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" \
  "optax>=0.2.5" "equinox" "orbax-checkpoint>=0.12" "absl-py>=2.1" "numpy>=1.26" "scikit-learn" \
  --no-deps "pcx==$PCX_VERSION"

cd "$ROOT"
exec "$VENV/bin/python" -m benchmarks.pcx_peer "$@"
