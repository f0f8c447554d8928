#!/usr/bin/env bash
# Builds every Lambda binary for arm64 (provided.al2023) with cargo-lambda
# in the `lambda-release` profile (fat LTO, one codegen unit, panics abort:
# Cargo.toml), and prints each bootstrap.zip's size.
# cargo-lambda comes from PyPI (it brings zig for cross-linking); the Rust
# target aarch64-unknown-linux-gnu is added with rustup.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

pip_ensure cargo-lambda cargo-lambda
if command -v rustup >/dev/null && ! rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu
fi
PATH="$VENV/bin:$PATH" cargo lambda build --profile lambda-release --arm64 --output-format zip -p roomcast-aws
printf '%-12s %12s %12s\n' function bootstrap zip
for dir in target/lambda/*/; do
  name="$(basename "$dir")"
  [ -f "$dir/bootstrap.zip" ] || continue
  bin_size=$(unzip -l "$dir/bootstrap.zip" 2>/dev/null | awk '/bootstrap$/ {print $1}')
  zip_size=$(stat -c %s "$dir/bootstrap.zip")
  printf '%-12s %12s %12s\n' "$name" "${bin_size:-?}" "$zip_size"
done
