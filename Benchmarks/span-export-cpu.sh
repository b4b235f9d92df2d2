#!/usr/bin/env bash
# Agent CPU per 10,000 spans exported (docs/BENCHMARKS.md): a release agent exporting to the test suite's OTLP
# receiver (Python, decoding every request; its venv is made by the trace tests), fed by the Rust example that
# records TRACES four-span traces. Run from the repository root after
#   swift build -c release --product danube-metrics-agent
#   (cd clients/rust/danube-metrics && cargo build --offline --release --example spans)
# Usage: Benchmarks/span-export-cpu.sh [TRACES]
set -euo pipefail
traces=${1:-25000}
dir=$(mktemp -d)
port=$((20000 + RANDOM % 10000)); rport=$((port + 1))
"${XDG_CACHE_HOME:-$HOME/.cache}/danube-metrics-agent-tests/venv/bin/python" Tests/otlp/otlp_receiver.py $rport $dir/spans.jsonl > /dev/null 2>&1 &
receiver=$!
sleep 1.5
.build/release/danube-metrics-agent --ingest-socket $dir/ingest.sock --listen 127.0.0.1:$port --log-level error --otlp-endpoint http://127.0.0.1:$rport/v1/traces > $dir/agent.log 2>&1 &
agent=$!
for _ in $(seq 100); do curl -fs http://127.0.0.1:$port/healthz > /dev/null 2>&1 && break; sleep 0.05; done
cpu() { awk '{print $14 + $15}' /proc/$agent/stat; }
before=$(cpu)
clients/rust/danube-metrics/target/release/examples/spans $dir/ingest.sock $traces
want=$((traces * 4))
for _ in $(seq 600); do
  sent=$(curl -fs http://127.0.0.1:$port/metrics | awk -F' ' '/^danube_agent_otlp_spans_sent_total/ {print $2}')
  [ "${sent%.*}" = "$want" ] && break; sleep 0.1
done
after=$(cpu)
ticks=$(getconf CLK_TCK)
echo "spans exported: $sent of $want; agent CPU: $(( (after - before) * 1000 / ticks )) ms, $(awk -v t=$((after-before)) -v h=$ticks -v n=$want 'BEGIN {printf "%.1f", t*1000/h/n*10000}') ms per 10,000 spans"
kill $agent $receiver; wait 2>/dev/null || true
rm -rf $dir
