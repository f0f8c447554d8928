#!/usr/bin/env bash
# The deploy build, as the README gives it: `sam build` of template.yaml as
# shipped (functions/Makefile: cargo-lambda, the lambda-release profile,
# the template's architecture), then a check of every function's artifact
# against what Lambda's provided.al2023 runtime takes (infra/check_artifacts.py).
# Installs what it needs: SAM CLI and cargo-lambda from PyPI into the venv
# (cargo-lambda brings zig, the cross-linker), and the Rust target with
# rustup.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

pip_ensure sam aws-sam-cli
pip_ensure cargo-lambda cargo-lambda
command -v make >/dev/null || die "make is required by SAM's makefile build method (Debian: apt-get install make)"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "adding the Rust target aarch64-unknown-linux-gnu (template.yaml: Architectures arm64)"
  rustup target add aarch64-unknown-linux-gnu || die "rustup target add aarch64-unknown-linux-gnu failed"
fi

log "sam build (template.yaml as shipped, samconfig.toml's settings)"
PATH="$VENV/bin:$PATH" SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" build || die "sam build failed (its output is above)"
"$VENV/bin/python" infra/check_artifacts.py .aws-sam/build/template.yaml || die "the built artifacts would not run on Lambda (above)"
