#!/usr/bin/env bash
# Lints template.yaml with cfn-lint and `sam validate --lint`, both from PyPI
# in the repo's venv. Any warning fails.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

pip_ensure cfn-lint cfn-lint
pip_ensure sam aws-sam-cli
log "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml
log "sam validate --lint"
# Offline: no credentials are needed, a region is.
SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" validate --lint --region us-east-1 --template-file template.yaml
