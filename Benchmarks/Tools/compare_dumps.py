"""Compares two sets of RenderTiming dumps (DUMP=<prefix>) format by format, leaving out the agent's own families
(danube_agent_*, process_*: timings and memory differ between any two runs) and checking that both have the same
ones. Exits 1 on any difference.

    python3 compare_dumps.py /tmp/before/n /tmp/after/n
"""
import sys

FORMATS = ["text(DanubeMetricsAgent.ExpositionFormat.prometheusText)",
           "text(DanubeMetricsAgent.ExpositionFormat.openMetrics)", "protobuf"]


def volatile(name):
    return name.startswith("danube_agent_") or name.startswith("process_")


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def protobuf_families(data):
    """(name, message bytes) of every delimited MetricFamily; the name is field 1, written first."""
    families, at = [], 0
    while at < len(data):
        length, at = varint(data, at)
        message = data[at:at + length]
        at += length
        name_length, start = varint(message, 1)
        families.append((message[start:start + name_length].decode(), message))
    return families


def text_families(data):
    """(name, lines) per family, from the TYPE lines."""
    families = []
    for line in data.split(b"\n"):
        if line.startswith(b"# TYPE "):
            families.append((line.split(b" ")[2].decode(), []))
        elif families:
            families[-1][1].append(line)
    return families


def main(before, after):
    same = True
    for name in FORMATS:
        old = open(f"{before}.{name}", "rb").read()
        new = open(f"{after}.{name}", "rb").read()
        split = protobuf_families if name == "protobuf" else text_families
        old_families, new_families = split(old), split(new)
        kept_old = [f for f in old_families if not volatile(f[0])]
        kept_new = [f for f in new_families if not volatile(f[0])]
        names_equal = [f[0] for f in old_families] == [f[0] for f in new_families]
        equal = kept_old == kept_new and names_equal
        same &= equal
        print(f"{name}: {len(kept_old)} families compared, {len(old_families) - len(kept_old)} of the agent's own by name: "
              + ("identical" if equal else "DIFFERENT"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
