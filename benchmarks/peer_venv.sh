# Sourced by the peer benchmarks (dynamax_peer.sh, pcx_peer.sh): builds or reuses a throwaway venv
# with jaxlab's JAX, a peer library and jaxlab itself, so that a peer's pins never touch jaxlab's
# environment. Re-running reuses the venv while the recorded spec is unchanged.
#
#   ensure_peer_venv NAME VENV SPEC_EXTRA -- DEP... [--no-deps NODEP...]
# installs DEP... with pip's resolver, then NODEP... and jaxlab (editable) with --no-deps.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

# The JAX version jaxlab is developed against: the project's venv if it has one, else 0.10.2.
if [[ -z "${JAX_VERSION:-}" ]]; then
  JAX_VERSION="$("$ROOT/.venv/bin/python" -c 'import jax; print(jax.__version__)' 2>/dev/null \
                 || echo 0.10.2)"
fi

ensure_peer_venv() {
  local name="$1" venv="$2" extra="$3"
  shift 3
  [[ "${1:-}" == "--" ]] && shift
  local deps=() nodeps=()
  while [[ $# -gt 0 && "$1" != "--no-deps" ]]; do deps+=("$1"); shift; done
  [[ "${1:-}" == "--no-deps" ]] && shift
  nodeps=("$@")
  local spec="root=$ROOT python=$("$PYTHON" -c 'import sys; print(sys.version.split()[0])') ${extra}${deps[*]}"
  local marker="$venv/.jaxlab-$name-spec"
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "${name}_peer: creating the throwaway venv $venv" >&2
    "$PYTHON" -m venv "$venv"
  fi
  if [[ ! -f "$marker" || "$(cat "$marker")" != "$spec" ]]; then
    echo "${name}_peer: installing into $venv (jax $JAX_VERSION)" >&2
    rm -f "$marker"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "${deps[@]}"
    if [[ ${#nodeps[@]} -gt 0 ]]; then
      "$venv/bin/pip" install --quiet --no-deps "${nodeps[@]}"
    fi
    "$venv/bin/pip" install --quiet --no-deps -e "$ROOT"
    echo "$spec" > "$marker"
  else
    echo "${name}_peer: reusing $venv" >&2
  fi
}
