# Shared helpers for infra scripts. Source it; do not run it.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
STATE_DIR="$REPO_ROOT/target/infra"
mkdir -p "$STATE_DIR"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

# Creates the project's Python venv (ignored by git) and installs the named
# PyPI requirements into it unless their commands are already there.
ensure_venv() {
  command -v python3 >/dev/null || die "python3 is required (Debian: apt-get install python3 python3-venv)"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv at $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  fi
}

# pip_ensure COMMAND REQUIREMENT...: installs REQUIREMENT(s) if COMMAND is missing from the venv.
pip_ensure() {
  local cmd="$1"; shift
  ensure_venv
  if [ ! -x "$VENV/bin/$cmd" ]; then
    log "installing $* into the venv"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$@" || die "pip install $* failed"
  fi
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# cargo-nextest runs the tests (one process per test, per-test times). The
# machine image has it; elsewhere it is installed from crates.io once.
ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest from crates.io"
    cargo install --locked --quiet cargo-nextest || die "cargo install cargo-nextest failed"
  fi
}

# The examples' runtimes, as the suite runs them: Lambda's Node.js and
# Python runtimes include the AWS SDK, which the emulator installs into its
# cache; here that is done ahead, with the documented command, so that no
# test reaches past 127.0.0.1. The Python example runs on a Python with
# awslambdaric and no boto3 (as Lambda's runtime without its bundled SDK),
# so boto3 comes from the emulator's cache, as a user's would. Needs the
# roomcast binary built.
ensure_example_runtimes() {
  export ROOMCAST_CACHE_DIR="${ROOMCAST_CACHE_DIR:-$REPO_ROOT/target/roomcast-cache}"
  bare="$STATE_DIR/venv-bare"
  if [ ! -x "$bare/bin/python" ] || ! "$bare/bin/python" -c 'import awslambdaric' 2>/dev/null; then
    log "creating a Python venv with awslambdaric only at $bare"
    python3 -m venv "$bare" || die "python3 -m venv failed"
    "$bare/bin/pip" install --quiet --disable-pip-version-check awslambdaric || die "pip install awslambdaric (bare venv) failed"
  fi
  export ROOMCAST_TEST_PYTHON_BARE="$bare/bin/python"
  for t in examples/*/template.yaml; do
    log "runtime SDKs for $t (cache: $ROOMCAST_CACHE_DIR)"
    "${CARGO_TARGET_DIR:-target}/debug/roomcast" runtimes install --template "$t" --python "$bare/bin/python" >/dev/null \
      || die "roomcast runtimes install --template $t failed (needs npm and pip with the registries reachable)"
  done
}
