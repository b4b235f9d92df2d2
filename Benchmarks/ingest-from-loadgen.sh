#!/usr/bin/env bash
# Deltas per second the agent applies while the load generator pushes as fast as it can.
# Usage: Benchmarks/ingest-from-loadgen.sh [seconds]   (release build; agent and loadgen share the machine)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
swift build -c release --product danube-metrics-agent >/dev/null
swift build -c release --product danube-metrics-loadgen >/dev/null
bin="$(swift build -c release --show-bin-path)"
dir="$(mktemp -d)"
port=19479
"$bin/danube-metrics-agent" --ingest-socket "$dir/ingest.sock" --listen "127.0.0.1:$port" --log-level warning &
agent=$!
trap 'kill $loadgen $agent 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
sleep 1
"$bin/danube-metrics-loadgen" --socket "$dir/ingest.sock" --rate 0 --threads 2 --namespaces 4 --topics 8 \
    --partitions 4 --flush-interval-ms 5 2>/dev/null &
loadgen=$!
applied() { curl -fs "http://127.0.0.1:$port/metrics" | awk '/^danube_agent_deltas_applied_total /{print $2}'; }
frames() { curl -fs "http://127.0.0.1:$port/metrics" | awk '/^danube_agent_frames_received_total\{type="deltas"\} /{print $2}'; }
cpu() { awk '{print $14 + $15}' "/proc/$agent/stat"; }   # agent user+system time, clock ticks
sleep 2
a0=$(applied); f0=$(frames); c0=$(cpu); t0=$(date +%s.%N)
sleep "$seconds"
a1=$(applied); f1=$(frames); c1=$(cpu); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
messages=$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^danube_topic_messages_in_total\{/{s+=$2} END {printf "%d", s}')
awk -v a0="$a0" -v a1="$a1" -v f0="$f0" -v f1="$f1" -v t0="$t0" -v t1="$t1" -v m="$messages" \
    -v c0="$c0" -v c1="$c1" -v hz="$hz" 'BEGIN {
    d = t1 - t0
    printf "deltas applied: %.0f/s, delta frames: %.0f/s, %.0f deltas per frame, over %.1f s (%d messages simulated in all)\n",
        (a1 - a0) / d, (f1 - f0) / d, (a1 - a0) / (f1 - f0), d, m
    printf "agent CPU: %.1f%% of one core, %.0f ns of agent CPU per delta applied\n",
        (c1 - c0) / hz / d * 100, (c1 - c0) / hz / (a1 - a0) * 1e9 }'
