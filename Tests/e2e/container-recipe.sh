#!/usr/bin/env bash
# docs/CONTAINERS.md's recipe, tested without a container engine (none runs on these machines):
#   1. packaging/containers/docker-compose.yml is checked (Tests/containers/check_compose.py: structure, the shared
#      socket volume, the agent's command line parsed and validated by the real binary);
#   2. the agent runs as its image runs it: uid 10001, every mount of the file system read-only except the socket
#      directory (a tmpfs owned by 10001, standing in for the shared volume), with --ingest-socket-mode 0660 and
#      --allow-user 0. A broker-like emitter as root (what Danube's broker image runs as) delivers exactly; one as
#      another uid is refused by the socket's mode; the agent cannot write anywhere else.
#   Tests/e2e/container-recipe.sh [bin-dir]     (bin-dir holds the agent and the load generator; default: debug build)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="$(cd "${1:-$(swift build --show-bin-path)}" && pwd)"
python3 Tests/containers/check_compose.py packaging/containers/docker-compose.yml "$bin/danube-metrics-agent"
if [ "$(id -u)" -ne 0 ]; then
    echo "container-recipe: the read-only, uid 10001 run needs root (sudo ./dev test)" >&2
    exit 0
fi
port=$((25000 + $$ % 5000))
socket_dir="/run/dma-container-$$"
mkdir -p "$socket_dir"
trap 'rmdir "$socket_dir" 2>/dev/null || true' EXIT
# A private mount namespace: what is mounted or made read-only here stays here.
unshare --mount --propagation private bash -euo pipefail -s "$bin" "$port" "$socket_dir" <<'INSIDE'
bin="$1" port="$2" socket_dir="$3"
fail() { echo "container-recipe: FAILED: $*" >&2; cat "$socket_dir/agent.log" >&2 2>/dev/null || true; exit 1; }
# Every mount read-only (per mount: the file systems themselves are untouched), then the socket volume.
awk '{print $5}' /proc/self/mountinfo | while read -r mountpoint; do
    case "$mountpoint" in /proc*|/sys*|/dev*) continue ;; esac
    mount -o remount,bind,ro "$mountpoint" 2>/dev/null || true
done
mount -t tmpfs -o mode=0750,uid=10001,gid=10001 tmpfs "$socket_dir"
! touch /var/tmp/dma-container-probe 2>/dev/null || fail "the root file system is still writable"
setpriv --reuid 10001 --regid 10001 --clear-groups "$bin/danube-metrics-agent" --log-format text \
    --ingest-socket "$socket_dir/ingest.sock" --ingest-socket-mode 0660 --allow-user 0 --listen "127.0.0.1:$port" \
    >"$socket_dir/agent.log" 2>&1 &
agent=$!
trap 'kill "$agent" 2>/dev/null; wait "$agent" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || fail "the agent did not start as uid 10001 on a read-only system"
[ "$(stat -c '%u %a' "$socket_dir/ingest.sock")" = "10001 660" ] || fail "socket: $(stat -c '%u %a' "$socket_dir/ingest.sock")"
setpriv --reuid 10001 --regid 10001 --clear-groups touch /var/tmp/dma-container-probe 2>/dev/null \
    && fail "uid 10001 could write outside the socket directory"
# The broker's image runs as root: admitted (--allow-user 0), its messages delivered exactly.
"$bin/danube-metrics-loadgen" --socket "$socket_dir/ingest.sock" --messages 500 --rate 0 --threads 1 --namespaces 1 \
    --topics 1 --partitions 1 --source-prefix broker --drain-timeout 10 >/dev/null 2>"$socket_dir/loadgen.log" \
    || fail "the root emitter could not deliver: $(tail -3 "$socket_dir/loadgen.log")"
total="$(curl -fs "http://127.0.0.1:$port/metrics" | awk '/^danube_topic_messages_in_total/ {s += $2} END {printf "%d", s}')"
[ "$total" = 500 ] || fail "500 messages recorded, $total on /metrics"
# Any other uid is refused by the socket's mode before the agent even sees it.
if setpriv --reuid 10002 --regid 10002 --clear-groups "$bin/danube-metrics-loadgen" --socket "$socket_dir/ingest.sock" \
    --messages 10 --rate 0 --threads 1 --namespaces 1 --topics 1 --partitions 1 --source-prefix other --drain-timeout 1 \
    >/dev/null 2>"$socket_dir/other.log"; then
    fail "uid 10002 delivered through a 0660 socket of uid 10001"
fi
grep -q "Permission denied" "$socket_dir/other.log" || fail "uid 10002 was not refused by the socket's mode: $(tail -2 "$socket_dir/other.log")"
echo "container-recipe: ok: uid 10001 on a read-only file system, only the socket volume writable; root's 500 messages exact, uid 10002 refused"
INSIDE
