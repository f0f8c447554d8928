#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs
# (Python venv with moto, cfn-lint and SAM CLI), lints the template, starts
# moto's DynamoDB server on a free 127.0.0.1 port, runs clippy, builds
# everything once (the Lambda binaries included, which tests run as
# processes), runs every test with cargo-nextest, then the deploy build
# (`sam build` as the README gives it, its artifacts checked) and its
# rehearsal on the emulator, prints the ten slowest tests and how long
# each phase took, and stops what it started.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

command -v cargo >/dev/null || die "cargo is required (https://rustup.rs)"

suite_start=$SECONDS
phase_start=$SECONDS
phases=()
# phase NAME: closes the phase that ran since the last call.
phase() {
  phases+=("$(printf '%-34s %5ss' "$1" $((SECONDS - phase_start)))")
  phase_start=$SECONDS
}

log "formatting check"
cargo fmt --all -- --check || die "cargo fmt reports differences: run cargo fmt --all"
bash infra/check-boundaries.sh
phase "fmt, crate boundaries"

bash infra/lint-template.sh
# Python functions in the emulator's tests run with PyPI's awslambdaric.
ensure_venv
if ! "$VENV/bin/python" -c 'import awslambdaric' 2>/dev/null; then
  log "installing awslambdaric into the venv"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check awslambdaric || die "pip install awslambdaric failed"
fi
export ROOMCAST_TEST_PYTHON="$VENV/bin/python"
ensure_nextest
phase "template lint, Python tools"

endpoint="$(bash infra/moto-start.sh)"
trap 'bash infra/moto-stop.sh' EXIT
export ROOMCAST_TEST_DYNAMODB_ENDPOINT="$endpoint"

log "clippy (warnings are errors), also on the library crates alone, without test features"
cargo clippy -p roomcast-core -p roomcast-protocol -p roomcast-aws --lib --bins --quiet -- -D warnings
cargo clippy --workspace --all-targets --quiet -- -D warnings
phase "clippy"

# One build of every binary and test target, with the features the tests
# unify: the Lambda binaries the process-mode tests run come out of it, so
# no test calls cargo (tests/common/emulator.rs checks they are fresh).
log "building every binary and test"
cargo build --workspace --bins --tests --quiet
phase "build"

# The AWS SDKs the examples import, installed ahead (infra/lib.sh).
ensure_example_runtimes
phase "runtime SDKs for the examples"

log "tests (DynamoDB tests against moto at $endpoint)"
set +e
cargo nextest run --workspace --profile ci 2>&1 | tee "$STATE_DIR/nextest.log"
status=${PIPESTATUS[0]}
set -e
cargo test --workspace --doc --quiet 2>&1 | tee "$STATE_DIR/doctest.log"
doc_status=${PIPESTATUS[0]}
phase "tests"

# The ten slowest tests, from nextest's "PASS [ 1.234s] (n/N) binary test"
# lines. awk keeps the first ten rather than head, which would close the
# pipe early and, under pipefail, fail the suite with SIGPIPE.
slowest="$(sed -nE 's/^ *(PASS|FAIL|SIGSEGV|SIGABRT|TIMEOUT)[^[]*\[ *([0-9.]+)s\] (\( *[0-9]+\/[0-9]+\) )?(.*)$/\2 \4/p' "$STATE_DIR/nextest.log" \
  | sort -rn | awk 'NR <= 10 {printf "  %8.2fs  %s %s\n", $1, $2, $3}')"
slowest() { log "the ten slowest tests"; printf '%s\n' "$slowest" >&2; }
if [ "$status" -ne 0 ]; then
  slowest
  die "tests failed (nextest above; a flaky one: bash infra/flake-check.sh -n 5 NAME)"
fi
[ "$doc_status" -eq 0 ] || die "doc tests failed"

bash infra/browser-test.sh
phase "browser tests"

# What ships: `sam build` from this checkout, and the built artifacts run
# by the emulator with their roles checked.
bash infra/sam-build.sh
phase "deploy build (sam build)"
bash infra/rehearse.sh
phase "deploy rehearsal"

slowest
log "phase times"
for p in "${phases[@]}"; do printf '  %s\n' "$p" >&2; done
printf '  %-34s %5ss\n' "total" $((SECONDS - suite_start)) >&2
