#!/usr/bin/env bash
# Starts moto's DynamoDB-compatible server on a free 127.0.0.1 port.
# Installs moto[server] into the repo's venv first if needed.
# Prints the endpoint (http://127.0.0.1:PORT) on stdout; the PID goes to
# target/infra/moto.pid so that moto-stop.sh stops exactly this process.
source "$(dirname "$0")/lib.sh"

pip_ensure moto_server 'moto[server]'
pidfile="$STATE_DIR/moto.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  cat "$STATE_DIR/moto.endpoint"
  exit 0
fi
port="$(free_port)"
endpoint="http://127.0.0.1:$port"
"$VENV/bin/python" "$REPO_ROOT/infra/moto_server.py" 127.0.0.1 "$port" >"$STATE_DIR/moto.log" 2>&1 &
echo $! >"$pidfile"
echo "$endpoint" >"$STATE_DIR/moto.endpoint"
for _ in $(seq 1 100); do
  if python3 - "$port" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
    log "moto_server up at $endpoint (pid $(cat "$pidfile"))"
    echo "$endpoint"
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || die "moto_server exited; see $STATE_DIR/moto.log"
  sleep 0.2
done
die "moto_server did not answer on $endpoint within 20 s; see $STATE_DIR/moto.log"
