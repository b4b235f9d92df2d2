"""Decodes a protobuf exposition (varint-delimited io.prometheus.client.MetricFamily messages, read from stdin)
with classes generated from Prometheus' own metrics.proto, and prints the families as JSON (protobuf's JSON
mapping), each with "canonical": whether the schema's serializer writes the same bytes. Fails on bytes the schema
does not parse and on a message that runs past the end."""
import importlib.util
import json
import os
import sys
import tempfile

from grpc_tools import protoc
import grpc_tools


def generated_module(directory):
    proto_dir = os.path.dirname(os.path.abspath(__file__))
    includes = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    os.makedirs(os.path.join(directory, "io/prometheus/client"), exist_ok=True)
    with open(os.path.join(proto_dir, "metrics.proto"), "rb") as source:
        data = source.read()
    with open(os.path.join(directory, "io/prometheus/client/metrics.proto"), "wb") as target:
        target.write(data)
    status = protoc.main(["protoc", f"-I{directory}", f"-I{includes}", f"--python_out={directory}",
                          "io/prometheus/client/metrics.proto"])
    if status != 0:
        sys.exit(f"protoc failed: {status}")
    # Loaded by path: the package `io` would be the standard library's.
    spec = importlib.util.spec_from_file_location("metrics_pb2", os.path.join(directory, "io/prometheus/client/metrics_pb2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    from google.protobuf.internal.decoder import _DecodeVarint32
    from google.protobuf import json_format

    with tempfile.TemporaryDirectory() as directory:
        metrics_pb2 = generated_module(directory)
        data = sys.stdin.buffer.read()
        families, position = [], 0
        while position < len(data):
            length, position = _DecodeVarint32(data, position)
            if position + length > len(data):
                sys.exit(f"a message of {length} bytes at {position} runs past the end ({len(data)})")
            family = metrics_pb2.MetricFamily()
            family.ParseFromString(data[position:position + length])
            decoded = json_format.MessageToDict(family)
            # What the schema's own serializer writes for the parsed message: equal bytes mean every field was
            # known to the schema, of its declared type, in field order, and nothing was dropped.
            decoded["canonical"] = family.SerializeToString() == data[position:position + length]
            families.append(decoded)
            position += length
        json.dump(families, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
