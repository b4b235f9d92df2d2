#!/usr/bin/env bash
# ./dev demo as a user runs it: Ctrl-C (SIGINT to the script), pressed twice, stops it cleanly, the load generator
# draining to the agent before the agent stops; a taken port is a clear error and leaves nothing running; a demo
# left running is named by its PIDs. Run by ./dev test.
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(mktemp -d /tmp/dma-demo.XXXXXX)"
port=$((30000 + $$ % 10000))
blocker=""
cleanup() {
    [ -n "$blocker" ] && kill "$blocker" 2>/dev/null
    pkill -f "danube-metrics-(agent|loadgen) .*$work" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "demo-test: FAILED: $*" >&2; cat "$work/demo.log" >&2; exit 1; }
export DANUBE_METRICS_LISTEN="127.0.0.1:$port" DANUBE_METRICS_SOCKET="$work/ingest.sock"

# With job control on, the background demo keeps SIGINT (a non-interactive shell would start it ignored), as a
# demo in a terminal has it for Ctrl-C.
set -m
./dev demo >"$work/demo.log" 2>&1 &
demo=$!
set +m
# The banner's last line (the example's command) says the whole banner is out.
for _ in $(seq 600); do grep -q -- "--example broker -- --socket" "$work/demo.log" && break; sleep 0.1; done
grep -q "is serving live Danube metrics" "$work/demo.log" || fail "the demo did not start"
# The banner names the socket and how to add the Rust broker example; run that, as a user would, with a bound.
grep -qx "Ingest socket: $work/ingest.sock" "$work/demo.log" || fail "the banner does not name the ingest socket"
example="$(grep -A1 "Add the Rust emitter's broker example" "$work/demo.log" | tail -1)"
[[ "$example" == *"cargo run --offline --example broker -- --socket '$work/ingest.sock')" ]] || fail "no example line: $example"
(eval "${example%)} --messages 300 --drain-timeout 10)") >"$work/example.log" 2>&1 || fail "the example failed: $(tail -5 "$work/example.log")"
curl -fs "http://127.0.0.1:$port/metrics" | grep -q '^danube_agent_source_last_seen_timestamp_seconds{source="danube-broker-example"}' \
    || fail "the example's source is not on /metrics"
echo "demo-test: ok: the banner's example line delivers to the demo, as its own source"
# Twice, quickly: the second Ctrl-C must not cut the stop short (it used to leave the agent running).
kill -INT "$demo"
sleep 0.05
kill -INT "$demo" 2>/dev/null || true
status=0
for _ in $(seq 300); do kill -0 "$demo" 2>/dev/null || break; sleep 0.1; done
kill -0 "$demo" 2>/dev/null && { kill -TERM "$demo"; fail "the demo did not stop within 30 s of Ctrl-C"; }
wait "$demo" || status=$?
[ "$status" -eq 0 ] || fail "Ctrl-C ended the demo with status $status"
! grep -q "unbound variable" "$work/demo.log" || fail "the demo's stop ran into an unbound variable"
[ "$(grep -cE 'msg="source finished".* source=danube-(broker|wal|cloud) ' "$work/demo.log")" -eq 3 ] || fail "the load generator's three sources did not finish (drain) before the agent stopped"
grep -q "agent stopped" "$work/demo.log" || fail "the agent did not stop cleanly"
! pgrep -f "danube-metrics-(agent|loadgen) .*$work/ingest.sock" >/dev/null || fail "processes left running"
[ ! -e "$work/demo.pids" ] || fail "the stopped demo left its PID file"
echo "demo-test: ok: Ctrl-C, twice, stops the demo cleanly, sources drain first"

# Another agent holds the port.
"$(swift build --show-bin-path)/danube-metrics-agent" --ingest-socket "$work/other.sock" --listen "127.0.0.1:$port" \
    >"$work/other.log" 2>&1 &
blocker=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
status=0
./dev demo >"$work/demo.log" 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "the demo succeeded on a taken port"
grep -q "dev: the agent did not start or stopped" "$work/demo.log" || fail "no clear error for a taken port"
grep -q "Address already in use" "$work/demo.log" || fail "the agent's reason is not shown"
! grep -q "is serving" "$work/demo.log" || fail "the demo claimed to serve"
! pgrep -f "danube-metrics-(agent|loadgen) .*$work/ingest.sock" >/dev/null || fail "processes left running"
echo "demo-test: ok: a taken port is a clear error and leaves nothing running"
kill "$blocker" 2>/dev/null; wait "$blocker" 2>/dev/null || true
blocker=""

# A demo whose script died (SIGKILL) left its agent running: the next demo names its PID instead of failing on the port.
"$(swift build --show-bin-path)/danube-metrics-agent" --ingest-socket "$work/ingest.sock" --listen "127.0.0.1:$port" \
    >"$work/other.log" 2>&1 &
blocker=$!
echo "$blocker" > "$work/demo.pids"
status=0
./dev demo >"$work/demo.log" 2>&1 || status=$?
[ "$status" -ne 0 ] || fail "the demo started beside a leftover one"
grep -q "dev: a previous demo is still running (PID $blocker); stop it with: kill $blocker" "$work/demo.log" \
    || fail "the leftover demo's PID is not named"
echo "demo-test: ok: a leftover demo is named by its PID"
