#!/usr/bin/env bash
# The domain rule as a fact: roomcast-core (the domain and its ports) and
# roomcast-protocol (the wire format the clients share) must build without
# any AWS, Lambda, JWT or HTTP crate, including through dev-dependencies.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

forbidden='^(aws-|aws_|lambda_runtime|lambda_http|jsonwebtoken|hyper|reqwest|axum|tokio-tungstenite)'
check() {
  local crate="$1" found
  found="$(cargo tree -p "$crate" --all-features -e normal,build,dev --prefix none --format '{p}' \
    | awk '{print $1}' | sort -u | grep -E "$forbidden" || true)"
  [ -z "$found" ] || die "$crate depends on crates it must not (the domain rule, docs/architecture.md): $(echo $found)"
  log "$crate: no AWS, Lambda, JWT or HTTP crate in its tree"
}
check roomcast-core
check roomcast-protocol
# The protocol crate is what clients take: serde and nothing async.
if cargo tree -p roomcast-protocol -e normal --prefix none --format '{p}' | awk '{print $1}' | grep -qx tokio; then
  die "roomcast-protocol depends on tokio; it must stay serde only"
fi
