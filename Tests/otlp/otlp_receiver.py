"""An OTLP/HTTP trace receiver for the agent's tests: decodes every POST /v1/traces with the official
opentelemetry-proto package (a body that does not parse as ExportTraceServiceRequest fails the request with 400
and is recorded as an error) and writes one JSON line per span to OUTPUT.

Usage: otlp_receiver.py PORT OUTPUT [--fail-first N] [--reject N]
  --fail-first N  answer the first N requests 503 with Retry-After: 0 (retried by the agent)
  --reject N      answer the first successful request with a partial success rejecting N spans
With OTLP_RECEIVER_CERT and OTLP_RECEIVER_KEY in the environment it serves HTTPS, and with OTLP_RECEIVER_CLIENT_CA
too it requires a client certificate from that CA (its common name is recorded as "client").
"""
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PORT, OUTPUT = int(sys.argv[1]), sys.argv[2]
options = dict(zip(sys.argv[3::2], map(int, sys.argv[4::2])))
state = {"requests": 0, "reject": options.get("--reject", 0)}


def value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def client_name(connection):
    certificate = connection.getpeercert() if isinstance(connection, ssl.SSLSocket) else None
    for field in (certificate or {}).get("subject", ()):
        for key, value in field:
            if key == "commonName":
                return value
    return None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        state["requests"] += 1
        if state["requests"] <= options.get("--fail-first", 0):
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as error:  # noqa: BLE001 - anything unparsable is the agent's fault
            with open(OUTPUT, "a") as out:
                out.write(json.dumps({"error": str(error), "path": self.path}) + "\n")
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(OUTPUT, "a") as out:
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        out.write(json.dumps({
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "authorization": self.headers.get("Authorization"),
                            "tenant": self.headers.get("X-Scope-OrgID"),
                            "client": client_name(self.connection),
                            "resource": resource,
                            "scope": scope_spans.scope.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "trace_state": span.trace_state,
                            "name": span.name,
                            "kind": span.kind,
                            "start": span.start_time_unix_nano,
                            "end": span.end_time_unix_nano,
                            "attributes": attributes(span.attributes),
                            "events": [{"name": e.name, "time": e.time_unix_nano, "attributes": attributes(e.attributes)}
                                       for e in span.events],
                            "status_code": span.status.code,
                            "status_message": span.status.message,
                            "flags": span.flags,
                        }) + "\n")
        response = ExportTraceServiceResponse()
        if state["reject"]:
            response.partial_success.rejected_spans = state["reject"]
            response.partial_success.error_message = "test rejection"
            state["reject"] = 0
        payload = response.SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
if os.environ.get("OTLP_RECEIVER_CERT"):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.environ["OTLP_RECEIVER_CERT"], os.environ["OTLP_RECEIVER_KEY"])
    if os.environ.get("OTLP_RECEIVER_CLIENT_CA"):
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(os.environ["OTLP_RECEIVER_CLIENT_CA"])
    server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
