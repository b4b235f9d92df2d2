"""Checks packaging/containers/docker-compose.yml without a container engine (none runs on these machines):
it parses as YAML, uses only Compose keys, refers only to declared volumes, networks, configs and services,
and wires the recipe as docs/CONTAINERS.md says: the agent and the broker mount the same volume at the socket's
directory, the broker's DANUBE_METRICS_SOCKET is the agent's --ingest-socket, the agent runs as a non-root uid
on a read-only root file system with a health check, and Prometheus scrapes the agent's port. Last, the agent's
command line is parsed and validated by the real binary (as it would be in the container).

Usage: check_compose.py COMPOSE-FILE AGENT-BINARY
"""
import subprocess
import sys

import yaml

path, agent_binary = sys.argv[1], sys.argv[2]
compose = yaml.safe_load(open(path))
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


TOP = {"services", "volumes", "networks", "configs", "secrets", "name"}
SERVICE = {"image", "build", "container_name", "command", "entrypoint", "environment", "volumes", "networks", "ports",
           "depends_on", "healthcheck", "restart", "user", "read_only", "configs", "group_add", "cap_drop", "tmpfs"}
check(set(compose) <= TOP, f"unknown top-level keys: {set(compose) - TOP}")
services = compose.get("services", {})
volumes = set(compose.get("volumes") or {})
networks = set(compose.get("networks") or {})
configs = set(compose.get("configs") or {})
for name, service in services.items():
    check(set(service) <= SERVICE, f"{name}: unknown keys {set(service) - SERVICE}")
    check("image" in service or "build" in service, f"{name}: neither image nor build")
    for mount in service.get("volumes", []):
        source = mount.split(":")[0]
        check(source.startswith((".", "/")) or source in volumes, f"{name}: volume {source} is not declared")
    for network in service.get("networks", []):
        check(network in networks, f"{name}: network {network} is not declared")
    for config in service.get("configs", []):
        check(config["source"] in configs, f"{name}: config {config['source']} is not declared")
    for dependency in service.get("depends_on", {}):
        check(dependency in services, f"{name}: depends on unknown service {dependency}")
    health = service.get("healthcheck")
    check(health is None or isinstance(health.get("test"), list), f"{name}: healthcheck.test must be a list")


def option(command, flag):
    return command[command.index(flag) + 1] if flag in command else None


agent = services["metrics-agent"]
broker = services["broker1"]
socket = option(agent["command"], "--ingest-socket")
socket_dir = socket.rsplit("/", 1)[0]
agent_mounts = {m.split(":")[1]: m.split(":")[0] for m in agent["volumes"]}
broker_mounts = {m.split(":")[1]: m.split(":")[0] for m in broker["volumes"]}
check(socket_dir in agent_mounts and agent_mounts[socket_dir] in volumes, "the agent's socket directory is not a named volume")
check(broker_mounts.get(socket_dir) == agent_mounts.get(socket_dir), "the broker does not mount the agent's socket volume there")
check(f"DANUBE_METRICS_SOCKET={socket}" in broker["environment"], "the broker's DANUBE_METRICS_SOCKET is not the agent's socket")
check(option(broker["command"], "--metrics") == "agent", "the broker is not switched to the agent (--metrics agent)")
uid = str(agent.get("user", "0")).split(":")[0]
check(uid.isdigit() and int(uid) != 0, "the agent must run as a numeric non-root uid")
check(agent.get("read_only") is True, "the agent's root file system must be read-only")
check("healthz" in " ".join(agent["healthcheck"]["test"]), "the agent's health check must ask /healthz")
check(broker.get("depends_on", {}).get("metrics-agent", {}).get("condition") == "service_healthy",
      "the broker must wait for a healthy agent")
port = option(agent["command"], "--listen").rsplit(":", 1)[1]
prometheus = yaml.safe_load(compose["configs"]["prometheus_config"]["content"])
targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
check(f"metrics-agent:{port}" in targets, f"Prometheus does not scrape metrics-agent:{port}: {targets}")

# The agent parses and validates its command line as it would in the container (--print-catalog then exits).
result = subprocess.run([agent_binary, *agent["command"], "--print-catalog", "json"], capture_output=True, text=True)
check(result.returncode == 0, f"the agent refuses its compose command line: {result.stderr.strip()}")

if problems:
    print("check_compose: FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"check_compose: ok: {path} ({len(services)} services, socket {socket} shared, agent uid {uid})")
