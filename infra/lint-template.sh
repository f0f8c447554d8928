#!/usr/bin/env bash
# Lints template.yaml with cfn-lint and `sam validate --lint`, both from PyPI
# in the repo's venv. Any warning fails.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

pip_ensure cfn-lint cfn-lint
pip_ensure sam aws-sam-cli
# template.yaml (SAM's WebSocketApi), the same API as raw
# AWS::ApiGatewayV2 resources, which the emulator also reads, and the
# example apps, which must deploy as they are.
for t in template.yaml tests/fixtures/raw-apigatewayv2-template.yaml examples/*/template.yaml; do
  log "cfn-lint $t"
  "$VENV/bin/cfn-lint" "$t"
  log "sam validate --lint $t"
  # Offline: no credentials are needed, a region is.
  SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" validate --lint --region us-east-1 --template-file "$t"
done
