#!/usr/bin/env bash
# Profiles the emulator under a broadcast load with perf (cpu-clock
# sampling, which works where hardware counters are not available) and
# prints the top frames, then their shares grouped by owner
# (infra/perf-groups.py). Usage:
#   bash infra/profile-emulator.sh [sdk|in-process] [rate] [seconds recorded] [Hz]
# A low rate needs a longer recording or a higher frequency for enough
# samples, e.g. `sdk 2 30 10000`.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

gateway="${1:-sdk}"
rate="${2:-200}"
seconds="${3:-6}"
hz="${4:-999}"
command -v perf >/dev/null || die "perf is required (Debian: apt-get install linux-perf)"
cargo build --quiet --profile profiling --bin roomcast
bin=target/profiling/roomcast
out="$STATE_DIR/profile-$gateway"
ROOMCAST_RATE_PER_SEC=1000000 ROOMCAST_RATE_BURST=1000000 ROOMCAST_ABUSE_STRIKES=1000000 RUST_LOG=warn \
  "$bin" dev --port 0 --gateway "$gateway" --outbound-queue 4096 >"$out.emulator.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do
  port=$(grep -oE 'listening on 127.0.0.1:[0-9]+' "$out.emulator.log" | cut -d: -f2) && [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || die "the emulator did not start; see $out.emulator.log"
url="ws://127.0.0.1:$port/prod"
token=$("$bin" token --user profiler --url "$url")
"$bin" bench --url "$url" --token "$token" --no-reference --scenarios broadcast --rates "$rate" --seconds $((seconds + 6)) >"$out.bench.jsonl" &
bench=$!
sleep 4
perf record -e cpu-clock -F "$hz" -g -p "$pid" -o "$out.perf.data" -- sleep "$seconds" 2>/dev/null
wait $bench || true
cat "$out.bench.jsonl"
perf report -i "$out.perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | sed -E 's/ +(- +)*$//' >"$out.top.txt"
head -25 "$out.top.txt"
echo "--- grouped:"
python3 "$REPO_ROOT/infra/perf-groups.py" <"$out.top.txt"
