#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs
# (Python venv with moto, cfn-lint and SAM CLI), lints the template, starts
# moto's DynamoDB server on a free 127.0.0.1 port, runs clippy and every
# test, and stops what it started.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

command -v cargo >/dev/null || die "cargo is required (https://rustup.rs)"

log "formatting check"
cargo fmt --all -- --check || die "cargo fmt reports differences: run cargo fmt --all"

bash infra/check-boundaries.sh
bash infra/lint-template.sh

# Python functions in the emulator's tests run with PyPI's awslambdaric.
ensure_venv
if ! "$VENV/bin/python" -c 'import awslambdaric' 2>/dev/null; then
  log "installing awslambdaric into the venv"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check awslambdaric || die "pip install awslambdaric failed"
fi
export ROOMCAST_TEST_PYTHON="$VENV/bin/python"

endpoint="$(bash infra/moto-start.sh)"
trap 'bash infra/moto-stop.sh' EXIT
export ROOMCAST_TEST_DYNAMODB_ENDPOINT="$endpoint"

log "clippy (warnings are errors), also on the library crates alone, without test features"
cargo clippy -p roomcast-core -p roomcast-protocol -p roomcast-aws --lib --bins --quiet -- -D warnings
cargo clippy --workspace --all-targets --quiet -- -D warnings

log "tests (DynamoDB tests against moto at $endpoint)"
cargo test --workspace --quiet 2>&1 | tee "$STATE_DIR/cargo-test.log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '[0-9]+ passed' "$STATE_DIR/cargo-test.log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$STATE_DIR/cargo-test.log" | awk '{s+=$1} END {print s+0}')
echo "cargo: $passed passed, $failed failed"
[ "$status" -eq 0 ] || die "cargo test failed"

bash infra/browser-test.sh
