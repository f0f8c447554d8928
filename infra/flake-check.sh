#!/usr/bin/env bash
# Runs tests N times in a row and reports every failure with its output.
#
#   bash infra/flake-check.sh                  # the whole suite, 5 times
#   bash infra/flake-check.sh -n 20 floods     # tests whose name contains "floods", 20 times
#   bash infra/flake-check.sh -n 10 -- -E 'test(/as_processes/)'   # any nextest filter
#
# Starts moto like infra/test.sh, builds once, then runs cargo-nextest N
# times with no retries. Each run's log is kept in target/infra/flake/;
# at the end, each test that failed is listed with how many runs it failed,
# followed by its output from each failing run. Exits 1 if any run failed.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] && [ "$runs" -gt 0 ] || die "-n takes a positive count, not '$runs'"

ensure_venv
if ! "$VENV/bin/python" -c 'import awslambdaric' 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check awslambdaric || die "pip install awslambdaric failed"
fi
export ROOMCAST_TEST_PYTHON="$VENV/bin/python"
ensure_nextest
endpoint="$(bash infra/moto-start.sh)"
trap 'bash infra/moto-stop.sh' EXIT
export ROOMCAST_TEST_DYNAMODB_ENDPOINT="$endpoint"

log "building every binary and test once"
cargo build --workspace --bins --tests --quiet
ensure_example_runtimes

out="$STATE_DIR/flake"
rm -rf "$out" && mkdir -p "$out"
failed_runs=0
for i in $(seq 1 "$runs"); do
  log "run $i of $runs: cargo nextest run --workspace --profile ci --retries 0 $*"
  if cargo nextest run --workspace --profile ci --retries 0 "$@" >"$out/run-$i.log" 2>&1; then
    log "run $i: $(grep -E '^ *Summary' "$out/run-$i.log" | sed 's/^ *//' || true)"
  else
    failed_runs=$((failed_runs + 1))
    log "run $i FAILED: $(grep -E '^ *Summary' "$out/run-$i.log" | sed 's/^ *//' || true)"
  fi
done

if [ "$failed_runs" -eq 0 ]; then
  log "all $runs runs passed"
  exit 0
fi
log "$failed_runs of $runs runs failed. Failing tests (runs failed):"
{ grep -hE '^ *(FAIL|SIGSEGV|SIGABRT|TIMEOUT) ' "$out"/run-*.log || true; } \
  | sed -E 's/^ *[A-Z]+ *\[[^]]*\] (\( *[0-9]+\/[0-9]+\) )?//' | sort | uniq -c | sort -rn >&2
for i in $(seq 1 "$runs"); do
  if grep -qE '^ *(FAIL|SIGSEGV|SIGABRT|TIMEOUT) ' "$out/run-$i.log"; then
    printf '\n===== run %s: %s =====\n' "$i" "$out/run-$i.log" >&2
    # nextest prints each failing test's output after the run ("final").
    sed -n '/^ *\(--- STD\|FAIL\|SIGSEGV\|SIGABRT\|TIMEOUT\)/,$p' "$out/run-$i.log" >&2
  fi
done
exit 1
