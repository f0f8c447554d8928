#!/usr/bin/env bash
# Stops the moto_server started by moto-start.sh, and nothing else.
source "$(dirname "$0")/lib.sh"

pidfile="$STATE_DIR/moto.pid"
[ -f "$pidfile" ] || exit 0
pid="$(cat "$pidfile")"
if kill -0 "$pid" 2>/dev/null; then
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  log "moto_server (pid $pid) stopped"
fi
rm -f "$pidfile" "$STATE_DIR/moto.endpoint"
