#!/usr/bin/env bash
# Times what a newcomer waits for: a fresh clone of this repo's HEAD with
# its own target directory, `cargo run --release` until the emulator says
# it is listening, then (with --process) the first start with every
# function as a process on moto, and the second. Prints seconds; keeps
# cargo's --timings report of the first build.
#
#   bash infra/time-first-run.sh            # in-process mode
#   bash infra/time-first-run.sh --process  # and process mode after it
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

work="$(mktemp -d /tmp/roomcast-first-run.XXXXXX)"
git clone -q "$REPO_ROOT" "$work/repo"
log "fresh clone of $(git rev-parse --short HEAD) in $work/repo"

# until_listening LOG PID: waits for the emulator's "listening" line.
until_listening() {
  until grep -q "listening" "$1" 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || die "the emulator exited; see $1"
    sleep 0.2
  done
}

# timed NAME ARGS...: one `cargo run --release --timings -- ARGS`, stopped
# once it listens.
timed() {
  local name="$1"; shift
  local out="$work/$name.log" start end pid
  start=$(date +%s.%N)
  (cd "$work/repo" && exec cargo run --release --timings -- --port 0 "$@") >"$out" 2>&1 &
  pid=$!
  until_listening "$out" "$pid"
  end=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  printf '%-28s %8.1f s\n' "$name" "$(echo "$end - $start" | bc)"
}

timed "first run, in process"
if [ "${1:-}" = "--process" ]; then
  endpoint="$(bash infra/moto-start.sh)"
  trap 'bash infra/moto-stop.sh' EXIT
  timed "first start, as processes" --functions process --dynamodb-endpoint "$endpoint" --table first --create-table
  timed "second start, as processes" --functions process --dynamodb-endpoint "$endpoint" --table second --create-table
fi
log "cargo's timings: $work/repo/target/cargo-timings/cargo-timing.html"
