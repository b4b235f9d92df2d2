#!/usr/bin/env bash
# End-to-end test against a real systemd booted as PID 1 in throwaway namespaces, with the shipped units
# (only the binary path rewritten). Needs root. Cleans up every process it started.
#   Tests/e2e/systemd-e2e.sh [bin-dir]     (default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-$(swift build --show-bin-path)}"
stage="$(mktemp -d /var/lib/dma-e2e.XXXXXX)"   # not under /tmp, /var/tmp or /run, which get fresh tmpfs
systemd_pid=""
passed=0
failed=0

cleanup() {
    if [ -n "$systemd_pid" ] && [ -d "/proc/$systemd_pid" ]; then
        nsenter -t "$systemd_pid" -a systemctl exit >/dev/null 2>&1 || true
        for _ in $(seq 50); do [ -d "/proc/$systemd_pid" ] || break; sleep 0.1; done
        [ -d "/proc/$systemd_pid" ] && kill -KILL "$systemd_pid" 2>/dev/null || true
    fi
    rm -rf "$stage" /var/lib/danube-metrics-agent
    for user in dma-e2e-broker dma-e2e-other; do getent passwd "$user" >/dev/null && userdel "$user"; done
    getent group dma-e2e-producers >/dev/null && groupdel dma-e2e-producers
    true
}
trap cleanup EXIT

check() { # check "what" command...
    local what="$1"; shift
    if "$@"; then echo "ok: $what"; passed=$((passed + 1)); else echo "FAILED: $what"; failed=$((failed + 1)); fi
}
inside() { nsenter -t "$systemd_pid" -a "$@"; }
metric() { inside curl -fs http://127.0.0.1:9470/metrics | awk -v name="$1" '$1 ~ "^"name {s += $2} END {printf "%d", s}'; }
main_pid() { inside systemctl show -p MainPID --value danube-metrics-agent.service; }
wait_for() { # wait_for seconds command...
    local seconds="$1"; shift
    for _ in $(seq $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
    return 1
}

getent group danube-metrics >/dev/null || groupadd --system danube-metrics
getent passwd danube-metrics >/dev/null || useradd --system --gid danube-metrics --no-create-home \
    --home-dir /var/lib/danube-metrics-agent --shell /usr/sbin/nologin danube-metrics

cp systemd/danube-metrics-agent.socket systemd/danube-metrics-agent-http.socket systemd/danube-metrics-agent.service "$stage/"
sed -i 's|/usr/bin/danube-metrics-agent|/run/dma-bin/danube-metrics-agent|' "$stage/danube-metrics-agent.service"
cp "$bin/danube-metrics-agent" "$bin/danube-metrics-loadgen" "$stage/"

# /run first (so the staged files are still visible to copy), then /tmp and /var/tmp: all three are mandatory,
# or systemd-tmpfiles inside would clean the host's /tmp.
setsid unshare --pid --fork --mount --mount-proc --net --uts --ipc sh -c "
    mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system /run/dma-bin &&
    cp $stage/*.socket $stage/*.service /run/systemd/system/ && cp $stage/danube-metrics-* /run/dma-bin/ &&
    mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp &&
    exec /lib/systemd/systemd --system --unit=multi-user.target" >"$stage/systemd.log" 2>&1 </dev/null &
unshare_pid=$!
wait_for 10 pgrep -P "$unshare_pid" >/dev/null
systemd_pid="$(pgrep -P "$unshare_pid" | head -1)"
wait_for 30 sh -c "nsenter -t $systemd_pid -a systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'"
inside systemctl start danube-metrics-agent.socket danube-metrics-agent-http.socket

check "sockets listen, agent not running before the first connection" \
    sh -c "! nsenter -t $systemd_pid -a systemctl is-active --quiet danube-metrics-agent.service"
check "ingest socket is 0660 danube-metrics:danube-metrics" \
    sh -c "nsenter -t $systemd_pid -a stat -c '%a %U %G' /run/danube-metrics-agent/ingest.sock | grep -qx '660 danube-metrics danube-metrics'"

report="$(inside /run/dma-bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock --messages 2000 \
    --rate 0 --threads 2 --namespaces 1 --topics 2 --partitions 2 --report 2>/dev/null)"
recorded="$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(v for k,v in d["counters"].items() if k.startswith("danube_topic_messages_in_total")))' "$report")"
check "the first connection started the agent and it reached READY" \
    sh -c "nsenter -t $systemd_pid -a systemctl show -p ActiveState,SubState --value danube-metrics-agent.service | tr '\n' ' ' | grep -q 'active running'"
check "STATUS= reports sources and series" \
    sh -c "nsenter -t $systemd_pid -a systemctl show -p StatusText --value danube-metrics-agent.service | grep -q 'sources, .* series'"
check "the emitter's $recorded messages are on /metrics, served from the activated HTTP socket" \
    wait_for 10 sh -c "[ \"\$(nsenter -t $systemd_pid -a curl -fs http://127.0.0.1:9470/metrics | awk '/^danube_topic_messages_in_total/ {s += \$2} END {printf \"%d\", s}')\" = $recorded ]"
check "journald holds structured entries with PRIORITY, SYSLOG_IDENTIFIER and the source's fields" \
    sh -c "nsenter -t $systemd_pid -a journalctl -u danube-metrics-agent -o json --no-pager | python3 -c '
import json, sys
entries = [json.loads(line) for line in sys.stdin]
connected = [e for e in entries if e.get(\"MESSAGE\") == \"source connected\"]
assert connected, \"no source connected entry\"
e = connected[0]
assert e[\"PRIORITY\"] == \"6\" and e[\"SYSLOG_IDENTIFIER\"] == \"danube-metrics-agent\", e
assert e[\"SOURCE\"].startswith(\"danube-\") and e[\"SOURCE_PID\"].isdigit() and e[\"CODE_FILE\"] and e[\"CODE_LINE\"], e
'"

# Restart while an emitter keeps pushing: the drained agent saves its state, the new one restores it and tells
# the emitter what it already applied, so the total on /metrics is exactly what was recorded.
report="$(inside sh -c '/run/dma-bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock \
    --messages 6000 --rate 2000 --threads 2 --namespaces 1 --topics 2 --partitions 2 --source-prefix restart \
    --flush-interval-ms 50 --report 2>/dev/null & sleep 1; systemctl restart danube-metrics-agent.service; sleep 0.5;
    systemctl restart danube-metrics-agent.service; wait')"
recorded_restart="$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(v for k,v in d["counters"].items() if k.startswith("danube_topic_messages_in_total")))' "$report")"
check "systemctl restart (twice) while an emitter pushes loses no count: $((recorded + recorded_restart)) in all" \
    wait_for 10 sh -c "[ \"\$(nsenter -t $systemd_pid -a curl -fs http://127.0.0.1:9470/metrics | awk '/^danube_topic_messages_in_total/ {s += \$2} END {printf \"%d\", s}')\" = $((recorded + recorded_restart)) ]"

# Crash while an emitter keeps pushing: SIGKILL gives the agent no chance to drain. Its checkpoints (acknowledged
# only once on disk) and /metrics showing only durable state make the total exact anyway.
report="$(inside sh -c '/run/dma-bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock \
    --messages 6000 --rate 2000 --threads 2 --namespaces 1 --topics 2 --partitions 2 --source-prefix killed \
    --flush-interval-ms 50 --drain-timeout 30 --report 2>/dev/null & sleep 1; systemctl kill -s KILL danube-metrics-agent.service;
    sleep 1.5; systemctl kill -s KILL danube-metrics-agent.service; wait')"
recorded_killed="$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(v for k,v in d["counters"].items() if k.startswith("danube_topic_messages_in_total")))' "$report")"
total=$((recorded + recorded_restart + recorded_killed))
check "SIGKILL (twice) while an emitter pushes: systemd restarts the agent, nothing lost or counted twice: $total in all" \
    wait_for 15 sh -c "[ \"\$(nsenter -t $systemd_pid -a curl -fs http://127.0.0.1:9470/metrics | awk '/^danube_topic_messages_in_total/ {s += \$2} END {printf \"%d\", s}')\" = $total ]"

# --allow-user and --allow-group under the shipped unit's sandbox: the broker's user (allowed by name, then by a
# supplementary group) emits; another user, whom the socket's mode lets in, is refused and logged with its uid.
getent group dma-e2e-producers >/dev/null || groupadd --system dma-e2e-producers
for user in dma-e2e-broker dma-e2e-other; do
    getent passwd "$user" >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
done
usermod -a -G danube-metrics,dma-e2e-producers dma-e2e-broker
usermod -a -G danube-metrics dma-e2e-other
allow() { # allow agent-options: restart the agent with them
    inside sh -c "mkdir -p /run/systemd/system/danube-metrics-agent.service.d && printf '[Service]\nEnvironment=\"DANUBE_METRICS_AGENT_OPTS=%s\"\n' '$1' >/run/systemd/system/danube-metrics-agent.service.d/allow.conf && systemctl daemon-reload && systemctl restart danube-metrics-agent.service"
}
emit_as() { # emit_as user source-prefix: the load generator as that user; its exit status
    inside runuser -u "$1" -- /run/dma-bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock \
        --messages 100 --rate 0 --threads 1 --namespaces 1 --topics 1 --partitions 1 --source-prefix "$2" \
        --drain-timeout 3 >/dev/null 2>&1
}
messages() { inside curl -fs http://127.0.0.1:9470/metrics | awk '/^danube_topic_messages_in_total/ {s += $2} END {printf "%d", s}'; }
refused_as() { # refused_as user prefix: the load generator fails and the journal names the user's uid
    ! emit_as "$1" "$2" && inside journalctl -u danube-metrics-agent -o json --no-pager | grep "\"PEER_UID\" *: *\"$(id -u "$1")\"" >/dev/null  # not -q: pipefail would see journalctl's SIGPIPE
}
before="$(messages)"
allow "--allow-user dma-e2e-broker"
check "--allow-user: the broker's user emits under the sandboxed unit" emit_as dma-e2e-broker allowed-user
check "--allow-user: its 100 messages are on /metrics" wait_for 10 sh -c "[ \"\$(nsenter -t $systemd_pid -a curl -fs http://127.0.0.1:9470/metrics | awk '/^danube_topic_messages_in_total/ {s += \$2} END {printf \"%d\", s}')\" = $((before + 100)) ]"
check "--allow-user: another user is refused (its emitter fails) and the journal names its uid" refused_as dma-e2e-other refused-user
allow "--allow-group dma-e2e-producers"
check "--allow-group: a supplementary group admits the broker" emit_as dma-e2e-broker allowed-group
check "--allow-group: another user is refused" refused_as dma-e2e-other refused-group
inside rm -rf /run/systemd/system/danube-metrics-agent.service.d
inside systemctl daemon-reload
inside systemctl restart danube-metrics-agent.service

exposure="$(inside systemd-analyze security danube-metrics-agent.service 2>/dev/null | sed -n 's/.*Overall exposure level for danube-metrics-agent.service: \([0-9.]*\).*/\1/p')"
check "systemd-analyze security rates the shipped unit 1.2 or better (it says ${exposure:-nothing})" \
    awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 1.2) }'

restarts_before="$(inside systemctl show -p NRestarts --value danube-metrics-agent.service)"
frozen="$(main_pid)"
inside kill -STOP "$frozen"
check "a frozen agent (SIGSTOP) is restarted by the watchdog" \
    wait_for 60 sh -c "[ \"\$(nsenter -t $systemd_pid -a systemctl show -p NRestarts --value danube-metrics-agent.service)\" -gt $restarts_before ] && nsenter -t $systemd_pid -a systemctl is-active --quiet danube-metrics-agent.service && [ \"\$(nsenter -t $systemd_pid -a systemctl show -p MainPID --value danube-metrics-agent.service)\" != $frozen ]"
check "the watchdog was the reason" \
    sh -c "nsenter -t $systemd_pid -a journalctl -u danube-metrics-agent --no-pager | grep -q 'Watchdog timeout'"

inside systemctl stop danube-metrics-agent.service
check "systemctl stop ends it cleanly (result success, exit 0, the agent logged its drain)" \
    sh -c "nsenter -t $systemd_pid -a systemctl show -p Result,ExecMainStatus --value danube-metrics-agent.service | tr '\n' ' ' | grep -q '^success 0' && nsenter -t $systemd_pid -a journalctl -u danube-metrics-agent --no-pager | grep -q 'agent stopped'"

echo "systemd-e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
