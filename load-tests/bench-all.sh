#!/usr/bin/env bash
# Regenerates load-tests/BENCHMARKS.md, in one command (about 20 minutes):
#
#   load-tests/bench-all.sh
#
# Builds release binaries, starts a local CQL node for the persist bench
# (deploy/cql-node.sh, on CQL_PORT, default 19042 so a test node on 9042 is
# left alone; stopped again afterwards unless it was already running), raises
# the descriptor limit for the 100,000-connection run, and runs
# `quiver-load bench-all`, which runs every bench as its own process and
# writes the file. Extra arguments go to bench-all (e.g. --max-connections
# 20000, --no-core, --wait-quiet 600; --render-only rewrites the file from the
# last run's results). Set NO_CQL=1 to skip the persist bench.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
echo "== building release binaries" >&2
cargo build --release -p quiver-server -p quiver-load
BIN="$CARGO_TARGET_DIR/release"

# The load generator holds every client connection; quinn needs no
# descriptor per connection, but be generous anyway.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

CQL_ARGS=()
STARTED_CQL=""
if [[ -z "${NO_CQL:-}" ]]; then
    export CQL_PORT="${CQL_PORT:-19042}"
    export CQL_STORAGE_PORT="${CQL_STORAGE_PORT:-17100}"
    if ! deploy/cql-node.sh status >/dev/null 2>&1; then
        STARTED_CQL=1
    fi
    if NODE="$(deploy/cql-node.sh start | tail -n 1)"; then
        CQL_ARGS=(--cql "$NODE")
    else
        echo "!! no CQL node; the persist bench is skipped" >&2
        STARTED_CQL=""
    fi
fi
cleanup() {
    if [[ -n "$STARTED_CQL" ]]; then deploy/cql-node.sh stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

"$BIN/quiver-load" bench-all --quiver "$BIN/quiver" "${CQL_ARGS[@]}" "$@"
