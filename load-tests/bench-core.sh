#!/usr/bin/env bash
# Core fan-out benchmark of the Quiver gateway, in one command:
#
#   load-tests/bench-core.sh
#
# Builds release binaries, starts `quiver serve` on loopback with a temporary
# data dir and config (tenant `bench`, publish limits lifted), runs
#   1. latency: 100 subscribers, 1 publisher, 200 msg/s  (20,000 deliveries/s)
#   2. peak:    1000 subscribers, 1 publisher, as fast as acks allow
# and prints a markdown table with the machine, the figures and the exact
# commands. JSON results, logs and the table go to $RESULTS.
#
# Environment knobs: DURATION (s, default 10), WARMUP (s, default 2),
# RESULTS (default load-tests/results/<UTC time>), CARGO_TARGET_DIR, and
# NICE (e.g. -10, needs root): run server and generator at that priority so
# other work on a shared machine disturbs the figures less. BIN=DIR uses the
# `quiver` and `quiver-load` binaries in DIR instead of building them.
# Needs: cargo, curl, python3 (free ports and the table).
# Exits non-zero if a run failed its checks (gaps, duplicates, losses).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-10}"
export NICE="${NICE:-0}"
WARMUP="${WARMUP:-2}"
RESULTS="${RESULTS:-$ROOT/load-tests/results/$(date -u +%Y%m%dT%H%M%SZ)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PREBUILT="${BIN:+prebuilt binaries from $BIN}"
if [[ -z "${BIN:-}" ]]; then
    BIN="$CARGO_TARGET_DIR/release"
    echo "== building release binaries" >&2
    (cd "$ROOT" && cargo build --release -p quiver-server -p quiver-load)
fi

mkdir -p "$RESULTS"
WORK="$(mktemp -d -t quiver-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        # The server sends GoAway and drains; give it a few seconds.
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port the OS says is free right now (UDP for QUIC, TCP for ops).
free_port() {
    python3 -c 'import socket,sys
kind = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}
QUIC_PORT="$(free_port udp)"
OPS_PORT="$(free_port tcp)"
API_PORT="$(free_port tcp)"
SERVER="127.0.0.1:$QUIC_PORT"
# The secret only lives in the temp dir and the load generator's environment.
SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
DATA="$WORK/data"
cat >"$WORK/quiver.toml" <<EOF
[server]
listen = "$SERVER"
ops_listen = "127.0.0.1:$OPS_PORT"
data_dir = "$DATA"

# Not used by the benchmark; its own port so it never collides with a
# gateway already running on the default 8080.
[api]
listen = "127.0.0.1:$API_PORT"

[limits]
publish_rate_per_sec = 1000000
publish_burst = 1000000

[[tenants]]
id = "bench"
hs256_secret = "$SECRET"
EOF

# Other processes skew every figure on a 2-core machine: record the load
# average, and warn when the machine is not idle.
LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOADAVG%% *}" 'BEGIN { exit !(l > 0.5) }'; then
    echo "!! load average is $LOADAVG: other work is running, figures will be noisy" >&2
fi

echo "== starting quiver serve on $SERVER (ops 127.0.0.1:$OPS_PORT)" >&2
RUST_LOG="${SERVER_LOG:-warn}" nice -n "$NICE" "$BIN/quiver" serve --config "$WORK/quiver.toml" >"$RESULTS/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    if curl -fsS "http://127.0.0.1:$OPS_PORT/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "quiver serve exited; its log:" >&2
        cat "$RESULTS/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$OPS_PORT/healthz" >/dev/null

# CPU seconds (user + system) the server has used so far.
server_cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$SERVER_PID/stat"
}

export QUIVER_LOAD_SECRET="$SECRET"
COMMON=(--server "$SERVER" --ca "$DATA/tls/dev-cert.pem" --tenant bench
    --duration "$DURATION" --warmup "$WARMUP")
STATUS=0
COMMANDS=()
# run NAME ARGS...: one quiver-load run; figures in $RESULTS/NAME.json.
run() {
    local name="$1"
    shift
    local cmd=(nice -n "$NICE" "$BIN/quiver-load" fanout "${COMMON[@]}" "$@" --json "$RESULTS/$name.json")
    COMMANDS+=("QUIVER_LOAD_SECRET=<bench secret> ${cmd[*]}")
    echo "== $name: ${cmd[*]}" >&2
    local before after
    before="$(server_cpu)"
    local TIMEFORMAT='%U %S'
    if ! { time "${cmd[@]}" >"$RESULTS/$name.txt" 2>"$RESULTS/$name.log"; } 2>"$RESULTS/$name.cpu"; then
        STATUS=1
        echo "!! $name failed; see $RESULTS/$name.txt and $name.log" >&2
    fi
    after="$(server_cpu)"
    echo "$before $after" >"$RESULTS/$name.server-cpu"
    cat "$RESULTS/$name.txt" >&2
}

run latency --subscribers 100 --publishers 1 --rate 200 --size 100
run peak --subscribers 1000 --publishers 1 --rate 0 --size 100

COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]]; then COMMIT="$COMMIT (with uncommitted changes)"; fi
if [[ -n "$PREBUILT" ]]; then COMMIT="checkout at $COMMIT, $PREBUILT"; fi
sed "s/^hs256_secret = .*/hs256_secret = \"<random>\"/" "$WORK/quiver.toml" >"$RESULTS/quiver.toml"

python3 - "$RESULTS" "$DURATION" "$WARMUP" "$LOADAVG" "$COMMIT" "${COMMANDS[@]}" >"$RESULTS/summary.md" <<'EOF'
import json, os, platform, subprocess, sys
from datetime import datetime, timezone

results, duration, warmup, loadavg, commit = sys.argv[1:6]
commands = sys.argv[6:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print(f"## Quiver core fan-out benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}\n")
print(f"- machine: {nproc} CPUs, {cpu}, Linux {platform.release()}; load average before: {loadavg}")
print(f"- commit: {commit}; nice {os.environ.get('NICE', '0')}")
print(f"- server and load generator share the machine; loopback; {warmup} s warmup, {duration} s measured")
print("- latency is publish→deliver from the scheduled send time; the server acks and fans out after the store's fsync\n")
print("| run | subs | pubs | target msg/s | acked msg/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | ack p50 ms | ack p99 ms | gaps | dups | undelivered | errors | server CPU s | load CPU s | result |")
print("|" + "---|" * 20)
for name in ("latency", "peak"):
    path = os.path.join(results, f"{name}.json")
    if not os.path.exists(path):
        print(f"| {name} | (no result: see {name}.log) |" + " |" * 18)
        continue
    r = json.load(open(path))
    lat, ack = r["latency"], r["ack_latency"]
    before, after = map(float, open(os.path.join(results, f"{name}.server-cpu")).read().split())
    user, system = map(float, open(os.path.join(results, f"{name}.cpu")).read().split()[-2:])
    target = "max" if r["target_rate"] == 0 else f"{r['target_rate']:,.0f}"
    errors = r["publish_errors"] + r["subscriptions_failed"]
    print(f"| {name} | {r['subscribers']:,} | {r['publishers']} | {target} | {r['publish_rate']:,.0f} "
          f"| {r['delivery_rate']:,.0f} | {lat['p50_ms']:.2f} | {lat['p90_ms']:.2f} | {lat['p99_ms']:.2f} "
          f"| {lat['p999_ms']:.2f} | {lat['max_ms']:.2f} | {ack['p50_ms']:.2f} | {ack['p99_ms']:.2f} "
          f"| {r['gaps']} | {r['duplicates']} | {r['undelivered']} | {errors} | {after - before:.1f} "
          f"| {user + system:.1f} | {'PASS' if r['passed'] else 'FAIL'} |")
print("\nCommands (the secret is the tenant's `hs256_secret` from the temporary config):\n")
print("```")
for command in commands:
    print(command)
print("```\n")
print("Server config (`quiver serve --config quiver.toml`):\n")
print("```toml")
print(open(os.path.join(results, "quiver.toml")).read().rstrip())
print("```")
EOF
cat "$RESULTS/summary.md"
echo "results in $RESULTS" >&2
exit "$STATUS"
