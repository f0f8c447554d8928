#!/usr/bin/env bash
# The browser client's tests: unit tests under node's test runner, then the
# demo in headless Chromium (Debian's package) driven by playwright-core.
# Installs what is missing: chromium (apt, as root), npm packages (npm ci).
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing nodejs and npm from Debian"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm \
    || die "node and npm are required (Debian: apt-get install nodejs npm)"
fi
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium from Debian"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
    || die "Chromium is required at /usr/bin/chromium (Debian: apt-get install chromium)"
fi
if [ ! -d node_modules/playwright-core ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
# The browser tests start the emulator binary itself. The same command as
# infra/test.sh's build (same targets, so the same features): after it,
# nothing is rebuilt.
cargo build --workspace --bins --tests --quiet
log "browser client tests (node + headless Chromium)"
node --test --test-concurrency=1 tests/web/ tests/browser/
