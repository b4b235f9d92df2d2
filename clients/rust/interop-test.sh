#!/usr/bin/env bash
# The Rust emitter against the Swift agent, run by ./dev test (so by CI):
#   1. the crate's own suite (cargo fmt --check and clippy -D warnings, always; cargo test --offline: golden vectors, hot path,
#      allocation budget, a real agent SIGKILLed while four threads record), and again with the portable platform
#      layer forced (--cfg danube_metrics_force_portable: what macOS and Windows compile);
#   2. the chaos command with the crate's Danube-style broker example as its emitters: the agent is SIGKILLed
#      again and again, and every counter, bucket, count and sum on /metrics must equal what they recorded;
#   3. an agent started with --allow-user for another uid refuses the example, which says so and exits 1;
#   4. a C program on the C ABI (static library + include/danube_metrics.h) delivers exact values;
#   5. rename-check, Danube-style code depending on the crate renamed to `metrics`, builds and delivers exactly.
#   clients/rust/interop-test.sh SWIFT-BIN-DIR [CHAOS-SECONDS]
set -euo pipefail
cd "$(dirname "$0")/danube-metrics"
bin="$(cd "$1" && pwd)"
seconds="${2:-20}"
work="$(mktemp -d /tmp/dma-interop.XXXXXX)"
agent_pid=""
cleanup() {
    [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "interop: FAILED: $*" >&2; [ -f "$work/agent.log" ] && tail -20 "$work/agent.log" >&2; exit 1; }

# rustfmt and clippy are part of the check, not optional: installed through rustup when it is there.
for component in rustfmt:fmt clippy:clippy; do
    cargo "${component#*:}" --version >/dev/null 2>&1 || rustup component add "${component%%:*}" >/dev/null 2>&1 \
        || fail "cargo ${component#*:} is missing: install the ${component%%:*} component (rustup component add ${component%%:*}, or Debian's rust-${component%%:*})"
done
cargo fmt --check || fail "cargo fmt --check"
cargo clippy --offline --all-targets -q -- -D warnings || fail "cargo clippy"
DANUBE_METRICS_AGENT="$bin/danube-metrics-agent" cargo test --offline
# The portable platform layer (what macOS and Windows builds compile), forced on Linux: lint-clean, and it
# records without delivering (tests/portable.rs; the unit tests run under it too).
portable=(env RUSTFLAGS="--cfg danube_metrics_force_portable" CARGO_TARGET_DIR=target/portable)
"${portable[@]}" cargo clippy --offline --all-targets -q -- -D warnings || fail "cargo clippy (portable)"
"${portable[@]}" cargo test --offline --lib --test portable || fail "cargo test (portable)"
# Publishable: the package builds on its own (what crates.io or a git dependency would get).
cargo package --offline --allow-dirty -q || fail "cargo package"
cargo build --offline --release --lib --examples -q

"$bin/danube-metrics-chaos" --duration "$seconds" --emitters 2 --emitter-command "$PWD/target/release/examples/broker" \
    || fail "chaos run with the Rust broker example"

start_agent() { # start_agent extra-arguments...
    rm -rf "$work/state" && mkdir -p "$work/state"
    "$bin/danube-metrics-agent" --ingest-socket "$work/ingest.sock" --listen "127.0.0.1:$port" --state-dir "$work/state" \
        --log-format text --catalog-mode strict "$@" >"$work/agent.log" 2>&1 &
    agent_pid=$!
    for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
    fail "the agent did not start"
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" 2>/dev/null || true; agent_pid=""; }
port=$((21000 + $$ % 10000))

other_uid=$([ "$(id -u)" -eq 0 ] && echo 65534 || echo 0)
start_agent --allow-user "$other_uid"
if target/release/examples/broker --socket "$work/ingest.sock" --messages 100 --drain-timeout 1 --report \
    >"$work/refused.json" 2>"$work/refused.log"; then
    fail "an agent allowing only uid $other_uid accepted the example run by uid $(id -u)"
fi
grep -q 'not_permitted' "$work/refused.json" || fail "the example did not report not_permitted: $(cat "$work/refused.json")"
grep -qE "msg=\"emitter connection refused: its user and groups are not allowed\".* peer_uid=$(id -u)( |$)" "$work/agent.log" || fail "the agent did not log the refusal"
stop_agent
echo "interop: ok: an --allow-user $other_uid agent refused the Rust emitter (uid $(id -u)): not_permitted"

# SIGTERM, as a service manager or a container runtime stops a broker: the example's workers stop, its bounded
# shutdown delivers, and every update recorded before the signal is on /metrics, exactly.
start_agent
target/release/examples/broker --socket "$work/ingest.sock" --rate 4000 --drain-timeout 10 --report \
    >"$work/sigterm.json" 2>"$work/sigterm.log" &
broker_pid=$!
sleep 2
kill -TERM "$broker_pid"
wait "$broker_pid" || fail "the example did not exit cleanly after SIGTERM: $(cat "$work/sigterm.log")"
curl -fs "http://127.0.0.1:$port/metrics" >"$work/sigterm.metrics"
python3 - "$work/sigterm.json" "$work/sigterm.metrics" <<'PYTHON' || fail "after SIGTERM, /metrics differs from what the example recorded"
import json, sys
recorded = json.load(open(sys.argv[1]))["recorded"]
shown = {}
for line in open(sys.argv[2]):
    if line and not line.startswith("#"):
        key, _, value = line.rstrip("\n").rpartition(" ")
        shown[key] = float(value)
wrong = {k: (v, shown.get(k)) for k, v in recorded.items() if shown.get(k) != v}
assert recorded and not wrong, f"{len(wrong)} of {len(recorded)} samples differ, e.g. {list(wrong.items())[:3]}"
orders = sum(v for k, v in recorded.items() if k.startswith("danube_topic_messages_in_total{"))
print(f"interop: {len(recorded)} samples equal, {int(orders)} messages recorded before SIGTERM")
PYTHON
stop_agent
echo "interop: ok: SIGTERM to the broker example: every update recorded before it is on /metrics"

cc -O2 -Wall -Werror -Iinclude tests/c/emit.c target/release/libdanube_metrics.a -lpthread -ldl -lm -o "$work/emit"
start_agent
"$work/emit" "$work/ingest.sock" || fail "the C program"
metrics="$(curl -fs "http://127.0.0.1:$port/metrics")"
expect() { grep -qxF "$1" <<<"$metrics" || fail "/metrics lacks: $1"; }
expect 'danube_topic_messages_in_total{broker="c",topic="/c/orders"} 200001'
expect 'danube_producer_send_latency_ms_count{broker="c",topic="/c/orders"} 200001'
expect 'danube_producer_send_latency_ms_bucket{broker="c",topic="/c/orders",le="1.0"} 22001'
expect 'danube_broker_topics_owned{broker="c"} 5'
openmetrics="$(curl -fs -H 'Accept: application/openmetrics-text; version=1.0.0' "http://127.0.0.1:$port/metrics")"
grep -q '^danube_producer_send_latency_ms_bucket{broker="c",topic="/c/orders",le="1.0"} 22001 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 0.55 ' <<<"$openmetrics" \
    || fail "the C program's histogram exemplar is not in the OpenMetrics scrape"
grep -q '^danube_topic_messages_in_total{broker="c",topic="/c/orders"} 200001 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 1 ' <<<"$openmetrics" \
    || fail "the C program's counter exemplar is not in the OpenMetrics scrape"
echo "interop: ok: the C ABI delivered 200001 increments and observations from 2 threads exactly, with exemplars"

# The one-line switch: a crate that depends on danube-metrics renamed to `metrics`, with Danube's call sites.
(cd ../rename-check && cargo build --offline -q && target/debug/rename-check "$work/ingest.sock") || fail "rename-check"
metrics="$(curl -fs "http://127.0.0.1:$port/metrics")"
expect 'danube_topic_messages_in_total{broker="7",topic="/default/orders"} 1000'
expect 'danube_producer_send_latency_ms_count{broker="7",topic="/default/orders"} 1000'
stop_agent
echo "interop: ok: Danube-style code compiled against danube-metrics renamed to metrics delivered exactly"
