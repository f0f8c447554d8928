#!/usr/bin/env bash
# The deploy rehearsal: `roomcast dev` runs the template `sam build` wrote
# (.aws-sam/build/template.yaml), every function as its built bootstrap
# (under QEMU's user-mode emulator when built for another machine than this
# one), on the DynamoDB at ROOMCAST_TEST_DYNAMODB_ENDPOINT, with the
# functions' roles checked as IAM checks them. The deployed-stack smoke test
# (tests/deployed.rs) then runs against it, and no call of any function may
# have been refused by its role. Run infra/sam-build.sh first; infra/test.sh
# runs both.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

built=.aws-sam/build/template.yaml
[ -f "$built" ] || die "no $built: run bash infra/sam-build.sh first"
endpoint="${ROOMCAST_TEST_DYNAMODB_ENDPOINT:-}"
[ -n "$endpoint" ] || die "ROOMCAST_TEST_DYNAMODB_ENDPOINT is not set (bash infra/moto-start.sh prints one)"
roomcast="${CARGO_TARGET_DIR:-target}/debug/roomcast"
[ -x "$roomcast" ] || die "no $roomcast: run cargo build first"

# The template's functions are arm64; on another machine they run under QEMU.
if [ "$(uname -m)" != aarch64 ] && { ! command -v qemu-aarch64 >/dev/null || [ ! -d /usr/aarch64-linux-gnu ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing QEMU's user-mode emulator and arm64's C library (Debian: qemu-user, libc6-arm64-cross)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user libc6-arm64-cross >"$STATE_DIR/apt-qemu.log" 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user libc6-arm64-cross >"$STATE_DIR/apt-qemu.log" 2>&1; } \
      || die "apt-get install qemu-user libc6-arm64-cross failed (log: $STATE_DIR/apt-qemu.log)"
  else
    die "the built functions are arm64: install qemu-user and libc6-arm64-cross (Debian) to run them here"
  fi
fi

port="$(free_port)"
table="rehearsal-$(date +%s)-$$"
log="$STATE_DIR/rehearsal.log"
log "roomcast dev on the built template, port $port, table $table (log: $log)"
"$roomcast" dev --template "$built" --functions process --dynamodb-endpoint "$endpoint" \
  --create-table --table "$table" --port "$port" --log-format json >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "roomcast dev exited at start-up"; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || die "roomcast dev did not answer within 60 s (log: $log)"

token="$(curl -fsS "http://127.0.0.1:$port/dev/token?user=smoke" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
ROOMCAST_DEPLOYED_URL="ws://127.0.0.1:$port/prod" ROOMCAST_DEPLOYED_TOKEN="$token" \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 \
  cargo nextest run --workspace --test deployed --run-ignored only --profile ci \
  || { tail -40 "$log" >&2; die "the smoke test failed against the built artifacts"; }

metrics="$(curl -fsS "http://127.0.0.1:$port/metrics")"
# Here-strings, not pipes: grep -q stops reading at its first match, and
# under pipefail the writer's SIGPIPE would fail the check.
denied="$(awk '$1 == "roomcast_iam_denied_total" {print $2}' <<<"$metrics")"
[ "$denied" = 0 ] || { grep AccessDeniedException "$log" | head -5 >&2; die "$denied calls were refused by the functions' roles (template.yaml lacks these rights)"; }
for route in authorizer '$connect' '$default' '$disconnect'; do
  grep -q "roomcast_handler_duration_seconds_count{route=\"$route\"} [1-9]" <<<"$metrics" \
    || die "the rehearsal never ran $route (log: $log)"
done
log "rehearsal passed: the built artifacts served the smoke test with every call within their roles"
