#!/usr/bin/env bash
# End-to-end test against a real systemd booted as PID 1 in throwaway namespaces, on a copy-on-write view of this
# machine (an overlay over /, thrown away at the end: nothing it installs or creates reaches the host).
# It runs README's "Deploy beside the broker" commands as written (the package build here, the rest inside, with a
# simulated broker as danube-broker.service and Debian's Prometheus), checks each outcome, then checks socket
# activation, journald fields, exact totals across restarts and SIGKILL, --allow-user/--allow-group, the sandbox
# rating, the watchdog and a clean stop against the installed package. Needs root.
#   Tests/e2e/systemd-e2e.sh [bin-dir]     (bin-dir holds danube-metrics-loadgen; default: the debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="$(cd "${1:-$(swift build --show-bin-path)}" && pwd)"
stage="$(mktemp -d /var/lib/dma-e2e.XXXXXX)"   # not under /tmp, /var/tmp or /run, which get fresh tmpfs
systemd_pid=""
passed=0
failed=0

cleanup() {
    if [ -n "$systemd_pid" ] && [ -d "/proc/$systemd_pid" ]; then
        nsenter -t "$systemd_pid" -a -r systemctl exit >/dev/null 2>&1 || true
        for _ in $(seq 50); do [ -d "/proc/$systemd_pid" ] || break; sleep 0.1; done
        [ -d "/proc/$systemd_pid" ] && kill -KILL "$systemd_pid" 2>/dev/null || true
        for _ in $(seq 50); do [ -d "/proc/$systemd_pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$stage"
}
trap cleanup EXIT

check() { # check "what" command...
    local what="$1"; shift
    if "$@"; then echo "ok: $what"; passed=$((passed + 1)); else echo "FAILED: $what"; failed=$((failed + 1)); fi
}
inside() { nsenter -t "$systemd_pid" -a -r "$@"; }
wait_for() { # wait_for seconds command...
    local seconds="$1"; shift
    for _ in $(seq $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
    return 1
}
# After README's block 4 the agent serves TLS with basic auth, as README says to scrape it.
scrape() {
    if inside test -f /etc/danube-metrics-agent/web.yml; then
        inside sh -c 'curl -fs --cacert /etc/danube-metrics-agent/agent.crt -u "prometheus:$(cat /etc/danube-metrics-agent/scrape.password)" https://localhost:9470/metrics'
    else
        inside curl -fs http://127.0.0.1:9470/metrics
    fi
}
messages() { scrape | awk '/^danube_topic_messages_in_total/ {s += $2} END {printf "%d", s}'; }
messages_are() { [ "$(messages)" = "$1" ]; }
main_pid() { inside systemctl show -p MainPID --value danube-metrics-agent.service; }
agent_is() { [ "$(inside systemctl show -p ActiveState,SubState --value danube-metrics-agent.service | tr '\n' ' ')" = "$1 " ]; }
# The total of danube_topic_messages_in_total the load generator's --report says it recorded.
recorded_in() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(v for k,v in d["counters"].items() if k.startswith("danube_topic_messages_in_total")))' "$1"; }
loadgen() { inside /usr/local/bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock "$@"; }

# README's deploy section: its sh blocks, in order.
python3 - "$stage" <<'PYTHON'
import re, sys
readme = open("README.md").read()
section = readme.split("## Deploy beside the broker (systemd)", 1)[1].split("\n## ", 1)[0]
for number, block in enumerate(re.findall(r"```sh\n(.*?)```", section, re.S), 1):
    open(f"{sys.argv[1]}/deploy-{number}.sh", "w").write(block)
PYTHON
blocks="$(find "$stage" -maxdepth 1 -name 'deploy-*.sh' | wc -l)"
[ "$blocks" -eq 7 ] || { echo "systemd-e2e: README's deploy section has $blocks sh blocks, this test knows 7" >&2; exit 1; }
deploy() { # deploy N: README's Nth deploy block, as root on the broker host, in a copy of the checkout's dist/
    echo "--- README deploy block $1:"; sed 's/^/    /' "$stage/deploy-$1.sh"
    inside bash -euo pipefail -c "cd '$stage/checkout' && . '$stage/deploy-$1.sh'"
}

# Block 1 runs on the build machine: the package.
echo "--- README deploy block 1 (build machine):"; sed 's/^/    /' "$stage/deploy-1.sh"
rm -rf dist
tmp_before="$(ls -A /tmp | sort)"
bash -euo pipefail "$stage/deploy-1.sh"
tmp_left="$(comm -13 <(echo "$tmp_before") <(ls -A /tmp | sort))"
check "the package build leaves nothing in /tmp${tmp_left:+ (left: $(echo $tmp_left | head -c 200))}" test -z "$tmp_left"
# What the broker host gets from the build machine. (The checkout itself may be under /tmp, which the booted
# system mounts over.)
mkdir -p "$stage/checkout/dist"
cp dist/*.deb "$stage/checkout/dist/"
cp "$bin/danube-metrics-loadgen" "$stage/"

# The broker host: this machine seen through an overlay, with private /run, /tmp and /var/tmp (all three are
# mandatory, or systemd-tmpfiles inside would clean the host's /tmp), booted into multi-user.target.
mkdir -p "$stage/upper" "$stage/work" "$stage/root"
setsid unshare --pid --fork --mount --mount-proc --net --uts --ipc sh -c "
    mount -t overlay overlay -o lowerdir=/,upperdir=$stage/upper,workdir=$stage/work $stage/root &&
    mount --rbind /dev $stage/root/dev && mount --rbind /sys $stage/root/sys && mount -t proc proc $stage/root/proc &&
    cd $stage/root && mkdir -p .oldroot && pivot_root . .oldroot && umount -l /.oldroot && cd / &&
    mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/system && mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp &&
    exec /lib/systemd/systemd --system --unit=multi-user.target" >"$stage/systemd.log" 2>&1 </dev/null &
unshare_pid=$!
wait_for 10 pgrep -P "$unshare_pid" >/dev/null
systemd_pid="$(pgrep -P "$unshare_pid" | head -1)"
wait_for 30 sh -c "nsenter -t $systemd_pid -a -r systemctl is-system-running 2>/dev/null | grep -qE 'running|degraded'"

# What the host had before: no agent installed, a broker service run by its own user, Debian's Prometheus. (A
# container image's policy-rc.d, which forbids starting services, is not part of a host.)
inside rm -f /usr/sbin/policy-rc.d
inside sh -c 'dpkg --purge danube-metrics-agent >/dev/null 2>&1; userdel danube-metrics 2>/dev/null; groupdel danube-metrics 2>/dev/null; true'
inside install -m 0755 "$stage/danube-metrics-loadgen" /usr/local/bin/danube-metrics-loadgen
inside useradd --system --no-create-home --shell /usr/sbin/nologin danube
inside sh -c 'printf "[Unit]\nDescription=Danube broker (simulated)\n[Service]\nUser=danube\nExecStart=/usr/local/bin/danube-metrics-loadgen --rate 200 --threads 1 --namespaces 1 --topics 2 --partitions 1 --flush-interval-ms 100\n" >/etc/systemd/system/danube-broker.service && systemctl daemon-reload'
inside systemctl start prometheus.service

deploy 2
check "the package installed the agent (its --version names the commit), its man page, dashboards and Prometheus files" \
    inside sh -c 'danube-metrics-agent --version | grep -Eq "^[0-9.]+ \(revision [0-9a-f]{12}(-modified)?, Swift " && test -f /usr/share/man/man8/danube-metrics-agent.8.gz && [ "$(ls /usr/share/danube-metrics-agent/grafana/*.json | wc -l)" -ge 4 ] && test -f /usr/share/danube-metrics-agent/prometheus/danube-alerts.yml'
check "the package created the user danube-metrics" inside id -u danube-metrics
check "both sockets listen, the agent is not running before the first connection" \
    sh -c "nsenter -t $systemd_pid -a -r systemctl is-active --quiet danube-metrics-agent.socket danube-metrics-agent-http.socket && ! nsenter -t $systemd_pid -a -r systemctl is-active --quiet danube-metrics-agent.service"
check "the ingest socket is 0660 danube-metrics:danube-metrics" \
    sh -c "nsenter -t $systemd_pid -a -r stat -c '%a %U %G' /run/danube-metrics-agent/ingest.sock | grep -qx '660 danube-metrics danube-metrics'"
inside systemctl start danube-broker.service
sleep 2
check "a broker without the group finds the installed socket, is refused by its mode and says what to do (the agent stays down)" \
    sh -c "! nsenter -t $systemd_pid -a -r systemctl is-active --quiet danube-metrics-agent.service && nsenter -t $systemd_pid -a -r journalctl -u danube-broker --no-pager | grep 'may not write to the agent.s socket (the installed agent admits the group danube-metrics' >/dev/null"

deploy 3
broker_connected() { scrape | grep -q '^danube_agent_source_connected{source="danube-broker"} 1$'; }
check "with SupplementaryGroups= and a restart, the broker's metrics arrive (source danube-broker connected)" wait_for 15 broker_connected
check "the first connection started the agent and it reached READY" agent_is "active running"
check "STATUS= reports sources and series" \
    sh -c "nsenter -t $systemd_pid -a -r systemctl show -p StatusText --value danube-metrics-agent.service | grep -q 'sources, .* series'"

deploy 4
check "the HTTP socket now listens on 0.0.0.0:9470 only" \
    sh -c "[ \"\$(nsenter -t $systemd_pid -a -r systemctl show -p Listen --value danube-metrics-agent-http.socket)\" = '0.0.0.0:9470 (Stream)' ]"
check "after the socket restart, a scrape (TLS, basic auth) starts the agent again and the broker reconnects" wait_for 30 broker_connected
check "the key, certificate and web configuration are root:danube-metrics 0640, the password root-only" \
    sh -c "[ \"\$(nsenter -t $systemd_pid -a -r stat -c '%a %U %G' /etc/danube-metrics-agent/agent.key /etc/danube-metrics-agent/web.yml /etc/danube-metrics-agent/scrape.password | tr '\n' ' ')\" = '640 root danube-metrics 640 root danube-metrics 600 root root ' ]"
check "a scrape without credentials is refused (401), a wrong password too, plain HTTP gets no answer" \
    sh -c "[ \"\$(nsenter -t $systemd_pid -a -r curl -s -o /dev/null -w '%{http_code}' --cacert /etc/danube-metrics-agent/agent.crt https://localhost:9470/metrics)\" = 401 ] &&
        [ \"\$(nsenter -t $systemd_pid -a -r curl -s -o /dev/null -w '%{http_code}' --cacert /etc/danube-metrics-agent/agent.crt -u prometheus:guess https://localhost:9470/metrics)\" = 401 ] &&
        ! nsenter -t $systemd_pid -a -r curl -fs -o /dev/null http://127.0.0.1:9470/metrics"
refusals_counted() { scrape | grep '^danube_agent_http_auth_failures_total{reason="wrong"} [1-9]' >/dev/null; }
check "the refusals are counted (danube_agent_http_auth_failures_total)" refusals_counted
inside sh -c 'printf "http_server_config:\n  headers:\n    X-Frame-Options: deny\n" >> /etc/danube-metrics-agent/web.yml'
inside systemctl reload danube-metrics-agent.service
header_served() {
    inside sh -c 'curl -fsS -D - -o /dev/null --cacert /etc/danube-metrics-agent/agent.crt -u "prometheus:$(cat /etc/danube-metrics-agent/scrape.password)" https://localhost:9470/healthz' |
        grep -i '^x-frame-options: deny' >/dev/null
}
check "systemctl reload re-reads the web configuration: a header added to it is served" wait_for 5 header_served

deploy 5
prometheus_has() { # prometheus_has query: the instant query returns at least one series
    inside curl -fsG http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)'
}
check "Debian's Prometheus scrapes the agent with the shipped https job (TLS, basic auth; up == 1, cluster label set)" \
    wait_for 60 prometheus_has 'up{job="danube-metrics-agent", cluster="danube"} == 1'
check "Prometheus has the broker's series from the agent, its process health included" \
    wait_for 30 prometheus_has 'danube_agent_source_connected{job="danube-metrics-agent", source="danube-broker"} == 1 and on (cluster, instance) danube_process_resident_memory_bytes{source="danube-broker"} > 1e6'
check "Prometheus loaded the package's recording rules and alerts, all healthy" \
    sh -c "nsenter -t $systemd_pid -a -r curl -fs http://127.0.0.1:9090/api/v1/rules | python3 -c '
import json, sys
groups = json.load(sys.stdin)[\"data\"][\"groups\"]
files = {g[\"file\"] for g in groups}
assert files == {\"/usr/share/danube-metrics-agent/prometheus/danube-rules.yml\", \"/usr/share/danube-metrics-agent/prometheus/danube-alerts.yml\"}, files
assert all(r[\"health\"] != \"err\" for g in groups for r in g[\"rules\"]), groups
'"

deploy 6
check "Grafana's provisioning file names the installed dashboards directory" \
    inside python3 -c '
import glob, json, re
text = open("/etc/grafana/provisioning/dashboards/danube-metrics-agent.yaml").read()
assert re.search(r"^apiVersion: 1$", text, re.M) and re.search(r"^    type: file$", text, re.M), text
path = re.search(r"^      path: (.*)$", text, re.M).group(1)
dashboards = glob.glob(path + "/*.json")
assert len(dashboards) >= 4, dashboards
assert all(json.load(open(d))["uid"] for d in dashboards)
'

deploy 7 >/dev/null
check "README's closing commands run" true

check "journald holds structured entries with PRIORITY, SYSLOG_IDENTIFIER and the source's fields" \
    sh -c "nsenter -t $systemd_pid -a -r journalctl -u danube-metrics-agent -o json --no-pager | python3 -c '
import json, sys
entries = [json.loads(line) for line in sys.stdin]
connected = [e for e in entries if e.get(\"MESSAGE\") == \"source connected\"]
assert connected, \"no source connected entry\"
e = connected[0]
assert e[\"PRIORITY\"] == \"6\" and e[\"SYSLOG_IDENTIFIER\"] == \"danube-metrics-agent\", e
assert e[\"SOURCE\"].startswith(\"danube-\") and e[\"SOURCE_PID\"].isdigit() and e[\"CODE_FILE\"] and e[\"CODE_LINE\"], e
'"

# From here on the broker is quiet, so totals can be compared exactly.
inside systemctl stop danube-broker.service
base="$(messages)"
report="$(loadgen --messages 2000 --rate 0 --threads 2 --namespaces 1 --topics 2 --partitions 2 --source-prefix first --report 2>/dev/null)"
total=$((base + $(recorded_in "$report")))
check "an emitter's messages are on /metrics exactly: $total in all" wait_for 10 messages_are "$total"

# Restart while an emitter keeps pushing: the drained agent saves its state, the new one restores it and tells
# the emitter what it already applied, so the total on /metrics is exactly what was recorded.
report="$(inside sh -c '/usr/local/bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock \
    --messages 6000 --rate 2000 --threads 2 --namespaces 1 --topics 2 --partitions 2 --source-prefix restart \
    --flush-interval-ms 50 --report 2>/dev/null & sleep 1; systemctl restart danube-metrics-agent.service; sleep 0.5;
    systemctl restart danube-metrics-agent.service; wait')"
total=$((total + $(recorded_in "$report")))
check "systemctl restart (twice) while an emitter pushes loses no count: $total in all" wait_for 10 messages_are "$total"

# Crash while an emitter keeps pushing: SIGKILL gives the agent no chance to drain. Its checkpoints (acknowledged
# only once on disk) and /metrics showing only durable state make the total exact anyway.
report="$(inside sh -c '/usr/local/bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock \
    --messages 6000 --rate 2000 --threads 2 --namespaces 1 --topics 2 --partitions 2 --source-prefix killed \
    --flush-interval-ms 50 --drain-timeout 30 --report 2>/dev/null & sleep 1; systemctl kill -s KILL danube-metrics-agent.service;
    sleep 1.5; systemctl kill -s KILL danube-metrics-agent.service; wait')"
total=$((total + $(recorded_in "$report")))
check "SIGKILL (twice) while an emitter pushes: systemd restarts the agent, nothing lost or counted twice: $total in all" \
    wait_for 15 messages_are "$total"

# --allow-user and --allow-group under the shipped unit's sandbox: the broker's user (allowed by name, then by a
# supplementary group) emits; another user, whom the socket's mode lets in, is refused and logged with its uid.
inside groupadd --system dma-e2e-producers
for user in dma-e2e-broker dma-e2e-other; do inside useradd --system --no-create-home --shell /usr/sbin/nologin "$user"; done
inside usermod -a -G danube-metrics,dma-e2e-producers dma-e2e-broker
inside usermod -a -G danube-metrics dma-e2e-other
inside cp /etc/default/danube-metrics-agent /etc/default/danube-metrics-agent.shipped
allow() { # allow agent-options: restart the agent with them added to the options in /etc/default, as README says
    inside sh -c "sed 's|^DANUBE_METRICS_AGENT_OPTS=\"\\(.*\\)\"|DANUBE_METRICS_AGENT_OPTS=\"\\1 $1\"|' /etc/default/danube-metrics-agent.shipped >/etc/default/danube-metrics-agent && systemctl restart danube-metrics-agent.service"
}
emit_as() { # emit_as user source-prefix: the load generator as that user; its exit status
    inside runuser -u "$1" -- /usr/local/bin/danube-metrics-loadgen --socket /run/danube-metrics-agent/ingest.sock \
        --messages 100 --rate 0 --threads 1 --namespaces 1 --topics 1 --partitions 1 --source-prefix "$2" \
        --drain-timeout 3 >/dev/null 2>&1
}
refused_as() { # refused_as user prefix: the load generator fails and the journal names the user's uid
    ! emit_as "$1" "$2" && inside journalctl -u danube-metrics-agent -o json --no-pager | grep "\"PEER_UID\" *: *\"$(inside id -u "$1")\"" >/dev/null  # not -q: pipefail would see journalctl's SIGPIPE
}
allow "--allow-user dma-e2e-broker"
check "--allow-user: the broker's user emits under the sandboxed unit" emit_as dma-e2e-broker allowed-user
total=$((total + 100))
check "--allow-user: its 100 messages are on /metrics" wait_for 10 messages_are "$total"
check "--allow-user: another user is refused (its emitter fails) and the journal names its uid" refused_as dma-e2e-other refused-user
allow "--allow-group dma-e2e-producers"
check "--allow-group: a supplementary group admits the broker" emit_as dma-e2e-broker allowed-group
check "--allow-group: another user is refused" refused_as dma-e2e-other refused-group
inside mv /etc/default/danube-metrics-agent.shipped /etc/default/danube-metrics-agent
inside systemctl restart danube-metrics-agent.service

exposure="$(inside systemd-analyze security danube-metrics-agent.service 2>/dev/null | sed -n 's/.*Overall exposure level for danube-metrics-agent.service: \([0-9.]*\).*/\1/p')"
check "systemd-analyze security rates the installed unit 1.2 or better (it says ${exposure:-nothing})" \
    awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 1.2) }'

restarts_before="$(inside systemctl show -p NRestarts --value danube-metrics-agent.service)"
frozen="$(main_pid)"
inside kill -STOP "$frozen"
restarted_by_watchdog() {
    [ "$(inside systemctl show -p NRestarts --value danube-metrics-agent.service)" -gt "$restarts_before" ] &&
        inside systemctl is-active --quiet danube-metrics-agent.service && [ "$(main_pid)" != "$frozen" ]
}
check "a frozen agent (SIGSTOP) is restarted by the watchdog" wait_for 60 restarted_by_watchdog
check "the watchdog was the reason" \
    sh -c "nsenter -t $systemd_pid -a -r journalctl -u danube-metrics-agent --no-pager | grep -q 'Watchdog timeout'"

inside systemctl stop danube-metrics-agent.service
check "systemctl stop ends it cleanly (result success, exit 0, the agent logged its drain)" \
    sh -c "nsenter -t $systemd_pid -a -r systemctl show -p Result,ExecMainStatus --value danube-metrics-agent.service | tr '\n' ' ' | grep -q '^success 0' && nsenter -t $systemd_pid -a -r journalctl -u danube-metrics-agent --no-pager | grep -q 'agent stopped'"

echo "systemd-e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
